"""The agent's Prometheus metrics, read back from a fresh registry with ``get_sample_value``."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from vesagent.metrics import Metrics, OutboxCollector
from vesagent.store import Store


def record_poll(m: Metrics, vimid: str, outcome: str = "ok") -> None:
    """Record one poll cycle the way the poller does."""
    m.polls.labels(vimid, outcome).inc()
    m.poll_seconds.labels(vimid).observe(0.2)
    m.nova_requests.labels(vimid).inc(3)
    m.keystone_auths.labels(vimid).inc()
    m.tracked_servers.labels(vimid).set(7)
    m.active_alarms.labels(vimid).set(2)
    m.config_errors.labels(vimid).set(0)


def series_of(registry: CollectorRegistry, vimid: str) -> list[str]:
    """Every sample on the registry that carries ``vimid="<vimid>"``."""
    return [
        sample.name
        for family in registry.collect()
        for sample in family.samples
        if sample.labels.get("vimid") == vimid
    ]


def test_forget_region_removes_every_series_of_that_region() -> None:
    """After forget_region no sample of any metric names the stopped region."""
    registry = CollectorRegistry()
    m = Metrics(registry)
    record_poll(m, "CO_R1", "ok")
    record_poll(m, "CO_R1", "error")
    assert registry.get_sample_value("vesagent_poll_duration_seconds_count", {"vimid": "CO_R1"})
    m.forget_region("CO_R1")
    assert series_of(registry, "CO_R1") == []
    for name in (
        "vesagent_poll_duration_seconds_count",
        "vesagent_nova_requests_total",
        "vesagent_keystone_authentications_total",
        "vesagent_tracked_servers",
        "vesagent_active_alarms",
        "vesagent_config_error",
    ):
        assert registry.get_sample_value(name, {"vimid": "CO_R1"}) is None, name
    assert (
        registry.get_sample_value("vesagent_polls_total", {"vimid": "CO_R1", "outcome": "ok"})
        is None
    )


def test_forget_region_keeps_the_other_regions() -> None:
    """Forgetting one region leaves another region's values untouched."""
    registry = CollectorRegistry()
    m = Metrics(registry)
    record_poll(m, "CO_R1")
    record_poll(m, "CO_R2")
    m.forget_region("CO_R1")
    labels = {"vimid": "CO_R2"}
    assert registry.get_sample_value("vesagent_poll_duration_seconds_count", labels) == 1
    assert registry.get_sample_value("vesagent_nova_requests_total", labels) == 3
    assert registry.get_sample_value("vesagent_keystone_authentications_total", labels) == 1
    assert registry.get_sample_value("vesagent_tracked_servers", labels) == 7
    assert registry.get_sample_value("vesagent_polls_total", {**labels, "outcome": "ok"}) == 1


def test_forget_region_of_a_region_never_polled_is_harmless() -> None:
    """A region stopped before its first poll has no series; forgetting it raises nothing."""
    registry = CollectorRegistry()
    m = Metrics(registry)
    m.forget_region("CO_NEVER")
    assert series_of(registry, "CO_NEVER") == []


def test_a_region_polled_again_after_forgetting_starts_from_zero() -> None:
    """A restarted region's counters count from zero, not from the stopped run's values."""
    registry = CollectorRegistry()
    m = Metrics(registry)
    record_poll(m, "CO_R1")
    m.forget_region("CO_R1")
    record_poll(m, "CO_R1")
    assert registry.get_sample_value("vesagent_nova_requests_total", {"vimid": "CO_R1"}) == 3


def test_fixed_label_values_are_present_from_the_start() -> None:
    """A&AI read outcomes and reconcile actions show at 0 before anything happened."""
    registry = CollectorRegistry()
    Metrics(registry)
    for outcome in ("ok", "error"):
        assert registry.get_sample_value("vesagent_aai_reads_total", {"outcome": outcome}) == 0
    for action in ("start", "stop", "update"):
        value = registry.get_sample_value("vesagent_reconcile_actions_total", {"action": action})
        assert value == 0


def test_outbox_collector_reports_depth_age_and_known_collectors() -> None:
    """Depth, bytes and oldest age come from the store; known idle collectors show at 0."""
    registry = CollectorRegistry()
    stats = {"primary": {"depth": 4, "oldest_created": 990.0, "bytes": 2048}}
    registry.register(OutboxCollector(lambda: stats, lambda: ["primary", "idle"], lambda: 1000.0))
    assert registry.get_sample_value("vesagent_outbox_depth", {"collector": "primary"}) == 4
    assert registry.get_sample_value("vesagent_outbox_bytes", {"collector": "primary"}) == 2048
    age = registry.get_sample_value("vesagent_outbox_oldest_age_seconds", {"collector": "primary"})
    assert age == 10.0
    assert registry.get_sample_value("vesagent_outbox_depth", {"collector": "idle"}) == 0
    assert (
        registry.get_sample_value("vesagent_outbox_oldest_age_seconds", {"collector": "idle"}) == 0
    )


def test_outbox_series_are_left_out_while_the_store_cannot_be_read(tmp_path: Path) -> None:
    """A failing or known-unusable store drops the outbox series, never the whole scrape."""
    registry = CollectorRegistry()
    Metrics(registry)
    store = Store(tmp_path)
    usable = [True]
    registry.register(
        OutboxCollector(store.stats, lambda: ["http://ves"], usable=lambda: usable[0])
    )
    depth = {"collector": "http://ves"}
    assert registry.get_sample_value("vesagent_outbox_depth", depth) == 0
    usable[0] = False
    assert registry.get_sample_value("vesagent_outbox_depth", depth) is None
    assert registry.get_sample_value("vesagent_store_up") is not None  # the rest is scraped
    usable[0] = True
    store.close()  # reading it now raises StoreError
    assert registry.get_sample_value("vesagent_outbox_depth", depth) is None
