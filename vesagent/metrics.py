"""Every ``vesagent_*`` Prometheus metric, created on a registry passed in (never at import).

Outbox depth and age are read from SQLite at scrape time by ``OutboxCollector``, because
they already live there.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from vesagent.store import StoreError

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
POLL_OUTCOMES = ("ok", "error")  # values of the ``outcome`` label of ``vesagent_polls``


class Metrics:
    """The agent's metrics on one registry; tests pass a fresh ``CollectorRegistry()``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        r = registry
        self.aai_reads = Counter(
            "vesagent_aai_reads", "A&AI cloud-region reads by outcome", ["outcome"], registry=r
        )
        self.aai_read_seconds = Histogram(
            "vesagent_aai_read_duration_seconds",
            "Duration of one full A&AI read (all pages and credentials)",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.aai_last_success = Gauge(
            "vesagent_aai_last_success_timestamp_seconds",
            "When A&AI was last read successfully",
            registry=r,
        )
        self.aai_up = Gauge(
            "vesagent_aai_up", "1 when the last A&AI read succeeded, else 0", registry=r
        )
        self.reconcile_passes = Counter("vesagent_reconcile_passes", "Reconcile passes", registry=r)
        self.reconcile_actions = Counter(
            "vesagent_reconcile_actions",
            "Poller actions taken by the reconciler",
            ["action"],
            registry=r,
        )
        self.regions = Gauge("vesagent_managed_regions", "Regions this replica manages", registry=r)
        self.backlogs = Gauge(
            "vesagent_backlogs",
            "Configured backlogs by domain and type",
            ["domain", "type"],
            registry=r,
        )
        self.config_errors = Gauge(
            "vesagent_config_error",
            "1 while a region's vesagent_config is invalid (the last valid one stays in force)",
            ["vimid"],
            registry=r,
        )
        self.polls = Counter(
            "vesagent_polls", "Poll cycles by region and outcome", ["vimid", "outcome"], registry=r
        )
        self.poll_seconds = Histogram(
            "vesagent_poll_duration_seconds",
            "Duration of one poll cycle",
            ["vimid"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.nova_requests = Counter(
            "vesagent_nova_requests", "Requests made to Nova", ["vimid"], registry=r
        )
        self.keystone_auths = Counter(
            "vesagent_keystone_authentications", "Keystone token issues", ["vimid"], registry=r
        )
        self.tracked_servers = Gauge(
            "vesagent_tracked_servers", "Servers known per region", ["vimid"], registry=r
        )
        self.events = Counter(
            "vesagent_events",
            "VES events produced, by domain and severity",
            ["domain", "severity"],
            registry=r,
        )
        self.deliveries = Counter(
            "vesagent_deliveries",
            "Events by delivery outcome (ok, retried, dead_lettered, dropped)",
            ["collector", "outcome"],
            registry=r,
        )
        self.delivery_requests = Counter(
            "vesagent_delivery_requests",
            "HTTP requests to VES collectors by status (or error)",
            ["collector", "status"],
            registry=r,
        )
        self.collector_up = Gauge(
            "vesagent_collector_up",
            "1 when the last delivery to the collector succeeded, 0 while it fails",
            ["collector"],
            registry=r,
        )
        self.active_alarms = Gauge(
            "vesagent_active_alarms", "Open fault alarms per region", ["vimid"], registry=r
        )
        self.shard = Gauge(
            "vesagent_shard_info", "This replica's shard", ["index", "count"], registry=r
        )
        # Issue 16: the store (SQLite file or shared PostgreSQL) and, in PostgreSQL mode, leases.
        self.store_up = Gauge(
            "vesagent_store_up",
            "1 when the last check of the state store (a write) succeeded, 0 while it fails",
            registry=r,
        )
        self.region_leases_held = Gauge(
            "vesagent_region_leases_held",
            "Region leases this replica holds (PostgreSQL mode; 0 with SQLite)",
            registry=r,
        )
        self.regions_unowned = Gauge(
            "vesagent_regions_unowned",
            "Regions of the A&AI listing with no live lease, as this replica saw them at its"
            " last lease sync (NaN while it cannot reach the database: it does not know)",
            registry=r,
        )
        for outcome in ("ok", "error"):
            self.aai_reads.labels(outcome)
        for action in ("start", "stop", "update"):
            self.reconcile_actions.labels(action)

    def forget_region(self, vimid: str) -> None:
        """Drop every series labelled with a stopped region's ``vimid``.

        A stopped region must vanish from /metrics: a frozen ``vesagent_active_alarms`` or
        ``vesagent_poll_duration_seconds`` series of a region nobody polls any more would
        look live to dashboards and alert rules.
        """
        per_region = (
            self.config_errors,
            self.poll_seconds,
            self.nova_requests,
            self.keystone_auths,
            self.tracked_servers,
            self.active_alarms,
        )
        for metric in per_region:
            # KeyError (older prometheus-client): the region never reported this series.
            with contextlib.suppress(KeyError):
                metric.remove(vimid)
        for outcome in POLL_OUTCOMES:
            with contextlib.suppress(KeyError):
                self.polls.remove(vimid, outcome)


class OutboxCollector:
    """Outbox depth and oldest-event age per collector, read from the store at scrape time.

    A store that cannot be read (``usable`` says so, or the read fails) leaves these series
    out of the scrape rather than failing it: ``vesagent_store_up`` must still be scraped then.
    """

    def __init__(
        self,
        stats: Callable[[], dict[str, dict[str, Any]]],
        known: Callable[[], Iterable[str]] = tuple,
        clock: Callable[[], float] = time.time,
        usable: Callable[[], bool] = lambda: True,
    ) -> None:
        self._stats = stats
        self._known = known  # collectors to show at depth 0 when nothing waits for them
        self._clock = clock
        self._usable = usable  # False: don't wait for a database known to be away

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily(
            "vesagent_outbox_depth", "Events waiting for delivery", labels=["collector"]
        )
        age = GaugeMetricFamily(
            "vesagent_outbox_oldest_age_seconds",
            "Age of the oldest event waiting for delivery",
            labels=["collector"],
        )
        size = GaugeMetricFamily(
            "vesagent_outbox_bytes", "Bytes waiting for delivery", labels=["collector"]
        )
        now = self._clock()
        stats: dict[str, dict[str, Any]] = {collector: {} for collector in self._known()}
        try:
            if not self._usable():
                return
            stats.update(self._stats())
        except StoreError:
            return  # unknown now: no series, rather than a wrong depth of 0
        for collector, row in stats.items():
            depth.add_metric([collector], row.get("depth", 0))
            oldest = row.get("oldest_created")
            age.add_metric([collector], max(0.0, now - oldest) if oldest else 0.0)
            size.add_metric([collector], row.get("bytes", 0))
        yield depth
        yield age
        yield size
