"""The store watch: ``vesagent_store_up``, the ``/readyz`` reason and the state-change logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from tests.helpers import FakeClock
from vesagent.metrics import Metrics
from vesagent.outage import OutageLog
from vesagent.store import Store
from vesagent.store_watch import StoreWatch


class Lines:
    """A structlog-style logger that keeps (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append(("warning", event, fields))

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append(("info", event, fields))


def test_a_store_that_fails_is_down_with_a_reason_then_recovers(tmp_path: Path) -> None:
    """A closed store fails the check: store_up 0, /readyz's reason names the store, the error
    and how long; one failing line, one still_failing a minute on, one recovered line."""
    registry, clock, lines = CollectorRegistry(), FakeClock(), Lines()
    store = Store(tmp_path)
    watch = StoreWatch(
        store, str(tmp_path), Metrics(registry), clock=clock,
        outages=OutageLog(lines, "store", clock=clock),
    )  # fmt: skip
    assert watch.check() and watch.reason() is None
    assert registry.get_sample_value("vesagent_store_up") == 1
    assert store.get_meta("last_write_check") == repr(clock.now)  # it really wrote
    store.close()
    assert not watch.check()
    assert registry.get_sample_value("vesagent_store_up") == 0
    clock.advance(30)
    assert not watch.check()
    reason = watch.reason()
    assert reason is not None and str(tmp_path) in reason and "for 30s" in reason
    clock.advance(31)
    watch.failed("database error: connection refused")  # the lease keeper saw it too
    assert "connection refused" in (watch.reason() or "")
    watch.succeeded()
    assert watch.reason() is None and registry.get_sample_value("vesagent_store_up") == 1
    assert [(level, event) for level, event, _ in lines.lines] == [
        ("warning", "store.failing"),
        ("warning", "store.still_failing"),
        ("info", "store.recovered"),
    ]
    assert lines.lines[-1][2]["down_for_s"] == 61.0
