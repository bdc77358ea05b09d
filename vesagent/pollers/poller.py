"""One region's cycles: the fault poll, heartbeats and measurements, all through the outbox.

**The fault poll** (at the smallest interval of the region's fault backlogs) costs one Nova
request when nothing changed (``changes-since`` with an overlap window), ``1 + ceil(changed /
1000)`` otherwise, plus one ``GET /os-services?binary=nova-compute`` when hosts are watched,
and a full paged listing at start and every ``full_every`` seconds (which also catches
deletions Nova archived away). From what it sees it decides VM faults, host faults, "host
unreachable" faults of the VMs on a down host, and the VIM fault (the region itself failing
to answer). While a VIM fault is open, VM and host alarms neither raise nor clear: a cloud
that is merely unreachable must not flood the collector. Partial (down-cell) records carry no
information about a VM and are never decided on.

**Heartbeats** (per heartbeat backlog, default every 60 s) are queued unbuffered: one that
cannot be delivered at once is dropped, since a stale heartbeat means nothing.

**Measurements** (per VM of the measurement and tca backlogs, default every 300 s) read
``GET /servers/{id}/diagnostics`` one VM at a time, spread over the first half of the
interval so a region of 3,000 VMs never bursts 3,000 requests; rates come from two successive
readings. Threshold crossings are decided from the same figures.

Events and the alarm state they announce are committed to the store in one transaction
before anything is sent.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from vesagent import AGENT_NAME, history
from vesagent.errors import PermanentError, TemporaryError
from vesagent.logs import get_logger
from vesagent.model import VesEvent
from vesagent.pollers.decide import (
    NO_CHANGE,
    VM_FAILURE,
    FaultContext,
    ServerView,
    Transition,
    decide_vm,
)
from vesagent.pollers.heartbeat import boundary_us, heartbeat_event
from vesagent.pollers.hosts import (
    HOST_CONDITION,
    VM_HOST_CONDITION,
    HostView,
    decide_host,
    decide_vm_host,
    host_is_down,
    host_selected,
)
from vesagent.pollers.measure import Reading, measurement_event, metric_values
from vesagent.pollers.tca import TCA_PREFIX, clear_tca, decide_tca, tca_condition
from vesagent.pollers.vim import HEALTHY, VIM_CONDITION, VimHealth, decide_vim, observe
from vesagent.spec import RegionSpec
from vesagent.store import AlarmRecord, OutboxItem, Store
from vesagent.ves_client.encode import dumps, encode

OVERLAP = timedelta(seconds=5)
# Without a Date header the window is based on our clock, which may differ from Nova's.
OVERLAP_OWN_CLOCK = timedelta(seconds=60)
FULL_EVERY = 600.0
FAILURE_LOG_EVERY = 60.0  # seconds between two log lines about the same failing region
HYPERVISORS_EVERY = 10  # polls between two GET /os-hypervisors (hosts change slowly)
MEASURE_SPREAD = 0.5  # diagnostics requests are spread over this share of the interval


# -- which backlogs ask for what (pure) ------------------------------------------------------
@dataclass(frozen=True)
class VmSelector:
    """Which servers one VM backlog watches; None in a field means "any"."""

    tenant_ids: frozenset[str] | None
    names: frozenset[str] | None
    ids: frozenset[str] | None

    def matches(self, server: ServerView) -> bool:
        if self.tenant_ids is not None and server.tenant_id not in self.tenant_ids:
            return False
        if self.ids is not None and server.id in self.ids:
            return True
        if self.names is not None and server.name in self.names:
            return True
        return self.ids is None and self.names is None


def _wild(value: str | None) -> bool:
    return value is None or value in ("", "*")


def selector_for(backlog: Any, resolve_tenant: Callable[[str], str | None]) -> VmSelector:
    """A VM backlog's filters; a tenant name that does not resolve matches nothing."""
    if not _wild(backlog.tenantid):
        tenants: frozenset[str] | None = frozenset({backlog.tenantid})
    elif not _wild(backlog.tenant):
        resolved = resolve_tenant(backlog.tenant)
        tenants = frozenset({resolved}) if resolved else frozenset()
    else:
        tenants = None
    ids = None if _wild(backlog.sourceid) else frozenset({backlog.sourceid})
    names = None if _wild(backlog.source) else frozenset({backlog.source})
    return VmSelector(tenants, names, ids)


def selectors_for(
    backlogs: Iterable[Any], resolve_tenant: Callable[[str], str | None]
) -> list[VmSelector]:
    """Selectors of the VM fault backlogs."""
    return [
        selector_for(b, resolve_tenant) for b in backlogs if b.domain == "fault" and b.type == "vm"
    ]


def backlogs_of(spec: RegionSpec, domain: str, kind: str | None = None) -> list[Any]:
    return [
        b for b in spec.config.backlogs if b.domain == domain and (kind is None or b.type == kind)
    ]


def fault_interval(spec: RegionSpec) -> float | None:
    """The fault poll runs at the smallest interval of the fault backlogs (None: none)."""
    intervals = [spec.config.interval_of(b) for b in backlogs_of(spec, "fault")]
    return min(intervals) if intervals else None


def heartbeat_interval(spec: RegionSpec) -> float | None:
    intervals = [spec.config.interval_of(b) for b in backlogs_of(spec, "heartbeat")]
    return min(intervals) if intervals else None


def measure_interval(spec: RegionSpec) -> float | None:
    """Measurements and threshold checks share the diagnostics readings."""
    wanted = backlogs_of(spec, "measurement") + backlogs_of(spec, "tca")
    intervals = [spec.config.interval_of(b) for b in wanted]
    return min(intervals) if intervals else None


def job_intervals(spec: RegionSpec) -> dict[str, float]:
    """The region's timed jobs and how often their timers fire.

    Heartbeats and measurements belong to interval boundaries (one per interval, start on the
    boundary), so their timers fire four times per interval and the job itself acts once per
    boundary: a timer's drift can then neither skip an interval nor repeat one.
    """
    heartbeat, measure = heartbeat_interval(spec), measure_interval(spec)
    jobs = {
        "poll": fault_interval(spec),
        "heartbeat": max(0.25, heartbeat / 4) if heartbeat else None,
        "measure": max(0.25, measure / 4) if measure else None,
    }
    return {name: interval for name, interval in jobs.items() if interval is not None}


def is_partial(body: Any) -> bool:
    """A 2.69 down-cell record: status UNKNOWN and most keys missing (no name, no flavor)."""
    return (
        isinstance(body, dict)
        and body.get("status") == "UNKNOWN"
        and "name" not in body
        and "flavor" not in body
    )


def settle(prev: AlarmRecord, ctx: FaultContext, reason: str = "gone") -> Transition:
    """The clear of any open alarm whose source is gone or no longer watched."""
    condition = prev.condition
    if condition == VM_FAILURE:
        return decide_vm(prev, None, ctx)
    if condition == HOST_CONDITION:
        return decide_host(prev, None, ctx)
    if condition == VM_HOST_CONDITION:
        return decide_vm_host(prev, prev.source_id, None, False, ctx)
    if condition == VIM_CONDITION:
        return decide_vim(prev, HEALTHY, 1, False, ctx)
    if condition.startswith(TCA_PREFIX):
        return clear_tca(prev, ctx, reason=reason)
    return NO_CHANGE


def severity_of_event(event: VesEvent) -> str:
    """The severity label of an event for metrics and logs ("" when the domain has none)."""
    return str(event.fields.get("severity") or event.fields.get("event_severity") or "")


@dataclass
class PollOutcome:
    """What one cycle did, for the canonical log line, metrics and the REST API."""

    ok: bool = True
    full: bool = False
    servers_seen: int = 0
    requests: int = 0
    authentications: int = 0
    events: int = 0
    error: str = ""
    finished: float = field(default_factory=time.time)


class RegionPoller:
    """Polls one region; its jobs never raise, they classify and report."""

    def __init__(
        self,
        spec: RegionSpec,
        store: Store,
        client_factory: Callable[[Any], Any],
        *,
        metrics: Any = None,
        clock: Callable[[], float] = time.time,
        full_every: float = FULL_EVERY,
        on_events: Callable[[str], None] | None = None,
        on_refused: Callable[[Any], None] | None = None,
    ) -> None:
        self.spec = spec
        self._store = store
        self._client_factory = client_factory
        self._client: Any = None
        self._metrics = metrics
        self._clock = clock
        self._full_every = full_every
        self._on_events = on_events or (lambda collector: None)
        # Told when the VIM refuses us for good (e.g. a rotated password): re-read A&AI.
        self._on_refused = on_refused or (lambda key: None)
        self._lock = threading.Lock()  # one fault poll at a time, and state changes
        self._client_lock = threading.Lock()
        self._stopped = threading.Event()
        self.log = get_logger("vesagent.poller", vimid=spec.vimid)
        self.servers: dict[str, ServerView] = {}
        self.hosts: dict[str, HostView] = {}
        # Hypervisor state/status by name, refreshed every few polls, for the status API.
        self.hypervisors: dict[str, str] = {}
        # The interval boundary each periodic job last ran for: exactly one run per interval.
        self._periods: dict[str, int] = {}
        self._failing_since: float | None = None
        self._last_failure_log = 0.0
        self._polls = 0
        self.alarms: dict[tuple[str, str], AlarmRecord] = store.alarms(spec.vimid)
        self.health: VimHealth = HEALTHY
        self.readings: dict[str, Reading] = {}
        self._watermark: datetime | None = None
        self._server_clock = True
        self._last_full = 0.0
        self._tenant_cache: dict[str, str | None] = {}
        self.last: PollOutcome | None = None
        self.last_event_at: float | None = None
        self.last_heartbeat_at: float | None = None
        self.last_measure_at: float | None = None

    # -- configuration -------------------------------------------------------------------
    def update(self, spec: RegionSpec) -> None:
        """Adopt a new spec; a credentials change rebuilds the OpenStack session."""
        with self._lock:
            if spec.creds != self.spec.creds:
                self._close_client()
                self._tenant_cache.clear()
            if spec.config.backlogs != self.spec.config.backlogs:
                self._tenant_cache.clear()
            self.spec = spec

    def close(self) -> None:
        self._stopped.set()
        with self._client_lock:
            self._close_client()

    def _close_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing is best effort
                self._client.close()
            self._client = None

    def _ensure_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = self._client_factory(self.spec.creds)
            return self._client

    def _ctx(self, now_us: int | None = None) -> FaultContext:
        return FaultContext(
            vimid=self.spec.vimid,
            reporter=AGENT_NAME,
            now_us=now_us if now_us is not None else int(self._clock() * 1_000_000),
        )

    def run_job(self, name: str) -> None:
        """Entry point of the timers (see ``job_intervals``)."""
        {"poll": self.poll, "heartbeat": self.heartbeat, "measure": self.measure}[name]()

    # -- the fault poll ------------------------------------------------------------------
    def poll(self) -> PollOutcome:
        """One fault cycle. Safe to call from any thread; concurrent calls are serialised."""
        with self._lock:
            started = time.monotonic()
            outcome = PollOutcome()
            try:
                self._poll_once(outcome)
                self._polls += 1
            except (TemporaryError, PermanentError) as exc:
                outcome.ok, outcome.error = False, str(exc)
                if isinstance(exc, PermanentError):
                    # Credentials may have rotated in A&AI: rebuild the session next time,
                    # from credentials read again.
                    with self._client_lock:
                        self._close_client()
                    self._on_refused(self.spec.key)
                self._after_failure(outcome)
            except Exception as exc:  # an unclassified failure is treated as temporary
                outcome.ok, outcome.error = False, f"{type(exc).__name__}: {exc}"
                self.log.exception("poll.crashed")
            outcome.finished = self._clock()
            self.last = outcome
            self._record(outcome, time.monotonic() - started)
            return outcome

    def _record(self, outcome: PollOutcome, duration: float) -> None:
        vimid = self.spec.vimid
        fields = {
            "full": outcome.full,
            "servers": outcome.servers_seen,
            "requests": outcome.requests,
            "events": outcome.events,
            "duration_ms": round(duration * 1000, 1),
        }
        failures = self.health.consecutive_failures
        if outcome.ok:
            self.log.debug("poll.done", **fields)
            if self._failing_since is not None:
                self.log.info(
                    "poll.recovered", down_for_s=round(self._clock() - self._failing_since, 1)
                )
                self._failing_since = None
        elif self._failing_since is None or (
            self._clock() - self._last_failure_log >= FAILURE_LOG_EVERY
        ):
            # The first failure at once, then once a minute: an outage is a state, not a flood.
            first = self._failing_since is None
            self._failing_since = self._failing_since or self._clock()
            self._last_failure_log = self._clock()
            self.log.warning(
                "poll.failing" if first else "poll.still_failing",
                error=outcome.error,
                consecutive_failures=failures,
                **fields,
            )
        history.record_poll(vimid, duration, outcome.ok)  # the console's poll chart
        m = self._metrics
        if m is not None:
            m.polls.labels(vimid, "ok" if outcome.ok else "error").inc()
            m.poll_seconds.labels(vimid).observe(duration)
            m.nova_requests.labels(vimid).inc(outcome.requests)
            m.keystone_auths.labels(vimid).inc(outcome.authentications)
            m.tracked_servers.labels(vimid).set(len(self.servers))
            m.active_alarms.labels(vimid).set(len(self.alarms))

    def _vim_threshold(self) -> int | None:
        vims = backlogs_of(self.spec, "fault", "vim")
        return min(b.failure_threshold for b in vims) if vims else None

    def _after_failure(self, outcome: PollOutcome) -> None:
        """Count the failure; past the threshold a VIM backlog raises the VIM fault."""
        now_us = int(self._clock() * 1_000_000)
        self.health = observe(self.health, False, outcome.error, at_us=now_us)
        threshold = self._vim_threshold()
        if threshold is not None:
            prev = self.alarms.get((self.spec.vimid, VIM_CONDITION))
            outcome.events += self._commit(
                [decide_vim(prev, self.health, threshold, False, self._ctx(now_us))]
            )

    def _poll_once(self, outcome: PollOutcome) -> None:
        spec = self.spec
        vm_faults = backlogs_of(spec, "fault", "vm")
        host_faults = backlogs_of(spec, "fault", "host")
        watch_servers = bool(vm_faults) or measure_interval(spec) is not None
        watch_hosts = bool(host_faults) or any(b.host_faults for b in vm_faults)
        client = self._ensure_client()
        now = self._clock()
        before = getattr(client, "requests_made", 0)
        auths = getattr(client, "auth_count", 0)
        page = None
        services: list[Any] = []
        full = self._watermark is None or now - self._last_full >= self._full_every
        try:
            if watch_servers:
                overlap = OVERLAP if self._server_clock else OVERLAP_OWN_CLOCK
                since = None if full else self._watermark - overlap  # type: ignore[operator]
                page = client.list_servers(changes_since=since)
            if watch_hosts:
                services = client.list_services()
                if host_faults and self._polls % HYPERVISORS_EVERY == 0:
                    self._refresh_hypervisors(client)
            if not watch_servers and not watch_hosts:
                client.compute_endpoint()  # a VIM-only region: is the cloud reachable?
        finally:
            outcome.requests = getattr(client, "requests_made", 0) - before
            outcome.authentications = getattr(client, "auth_count", 0) - auths

        now_us = int(page.server_time.timestamp() * 1_000_000) if page else int(now * 1_000_000)
        ctx = self._ctx(now_us)
        self.health = observe(self.health, True, None, at_us=now_us)
        hosts = [v for v in (HostView.from_nova(item) for item in services) if v is not None]
        changed: dict[str, ServerView | None] = {}
        partial = any(not h.known for h in hosts)
        if page is not None:
            outcome.full = full
            outcome.servers_seen = len(page.servers)
            changed, partial_servers = self._absorb_servers(page, full, now)
            partial = partial or partial_servers
        if watch_hosts:
            self.hosts = {h.host: h for h in hosts if h.known}

        transitions: list[Transition] = []
        threshold = self._vim_threshold()
        if threshold is not None:
            prev = self.alarms.get((spec.vimid, VIM_CONDITION))
            transitions.append(decide_vim(prev, self.health, threshold, partial, ctx))
        vim_open = any(t.upsert and t.upsert.condition == VIM_CONDITION for t in transitions) or (
            (spec.vimid, VIM_CONDITION) in self.alarms
            and not any(t.delete and t.delete[2] == VIM_CONDITION for t in transitions)
        )

        if not vim_open:  # a cloud that cannot be seen must not flood the collector
            transitions += self._vm_transitions(changed, ctx, vm_faults)
            transitions += self._host_transitions(ctx, host_faults, vm_faults)
        try:
            outcome.events += self._commit(transitions)
        except Exception:
            self._last_full = 0.0  # nothing was promised: look at everything again next time
            raise
        # Advance only once the decisions are committed, and not while VM decisions are
        # frozen: the changes seen meanwhile are listed again when the VIM recovers.
        if page is not None and not vim_open:
            self._watermark = page.server_time
            self._server_clock = getattr(page, "server_clock", True)

    def _refresh_hypervisors(self, client: Any) -> None:
        """Hypervisor state/status for the status API; informative, so never fails a poll."""
        try:
            self.hypervisors = {
                str(h.get("hypervisor_hostname")): f"{h.get('state')}/{h.get('status')}"
                for h in client.list_hypervisors()
                if isinstance(h, dict)
            }
        except (TemporaryError, PermanentError) as exc:
            self.log.debug("hypervisors.unavailable", error=str(exc))

    def _absorb_servers(
        self, page: Any, full: bool, now: float
    ) -> tuple[dict[str, ServerView | None], bool]:
        """Update the server cache; return the servers whose state may have changed, and
        whether Nova answered partial (down-cell) records."""
        changed: dict[str, ServerView | None] = {}
        listed: set[str] = set()
        partial = False
        for body in page.servers:
            if is_partial(body):
                partial = True
                if isinstance(body.get("id"), str):
                    listed.add(body["id"])  # unknown, not gone: keep what we knew
                continue
            view = ServerView.from_nova(body)
            if view is None:
                continue
            listed.add(view.id)
            if view.status == "DELETED":
                self.servers.pop(view.id, None)
                self.readings.pop(view.id, None)
                changed[view.id] = None
            else:
                self.servers[view.id] = view
                changed[view.id] = view
        if full:
            for gone in [sid for sid in self.servers if sid not in listed]:
                del self.servers[gone]
                self.readings.pop(gone, None)
                changed[gone] = None
            for source_id, condition in list(self.alarms):
                if condition in (VM_FAILURE, VM_HOST_CONDITION) and source_id not in listed:
                    changed[source_id] = None  # deleted while we were not looking
            for sid, view in self.servers.items():
                changed.setdefault(sid, view)
            self._last_full = now
        return changed, partial

    def _vm_transitions(
        self, changed: dict[str, ServerView | None], ctx: FaultContext, vm_faults: list[Any]
    ) -> list[Transition]:
        selectors = [selector_for(b, self._resolve_tenant) for b in vm_faults]
        out = []
        for source_id, view in changed.items():
            watched = view is not None and any(s.matches(view) for s in selectors)
            prev = self.alarms.get((source_id, VM_FAILURE))
            if watched or prev is not None:
                out.append(decide_vm(prev, view if watched else None, ctx))
        return out

    def _host_transitions(
        self, ctx: FaultContext, host_faults: list[Any], vm_faults: list[Any]
    ) -> list[Transition]:
        out = []
        for name, view in self.hosts.items():
            if any(host_selected(b, name) for b in host_faults):
                out.append(decide_host(self.alarms.get((name, HOST_CONDITION)), view, ctx))
        for (source_id, condition), prev in list(self.alarms.items()):
            if condition == HOST_CONDITION and (
                source_id not in self.hosts
                or not any(host_selected(b, source_id) for b in host_faults)
            ):
                out.append(decide_host(prev, None, ctx))
        # Children: one "host unreachable" alarm per watched VM on a down host.
        child_selectors = [
            selector_for(b, self._resolve_tenant) for b in vm_faults if b.host_faults
        ]
        down = {name for name, view in self.hosts.items() if host_is_down(view)}
        for sid, server in self.servers.items():
            prev = self.alarms.get((sid, VM_HOST_CONDITION))
            on_down = server.host in down and any(s.matches(server) for s in child_selectors)
            if on_down or prev is not None:
                host_alarm = self.alarms.get((server.host, HOST_CONDITION))
                out.append(
                    decide_vm_host(
                        prev,
                        sid,
                        server.name,
                        on_down,
                        ctx,
                        host=server.host,
                        since_us=host_alarm.start_epoch_us if host_alarm else None,
                    )
                )
        for (source_id, condition), prev in list(self.alarms.items()):
            if condition == VM_HOST_CONDITION and source_id not in self.servers:
                out.append(decide_vm_host(prev, source_id, None, False, ctx))
        return out

    # -- heartbeats ----------------------------------------------------------------------
    def heartbeat(self) -> int:
        """One heartbeat per heartbeat backlog; queued unbuffered (dropped if undeliverable)."""
        spec = self.spec
        now_us = int(self._clock() * 1_000_000)
        events = []
        for backlog in backlogs_of(spec, "heartbeat"):
            interval = spec.config.interval_of(backlog)
            period = boundary_us(now_us, interval)
            if self._periods.get(backlog.key) == period:
                continue  # this interval's heartbeat is already out
            self._periods[backlog.key] = period
            source = backlog.source if not _wild(backlog.source) else spec.vimid
            events.append(
                heartbeat_event(
                    vimid=spec.vimid,
                    source_name=source,
                    interval=interval,
                    now_us=now_us,
                    # One heartbeat per interval: its boundary numbers it, never repeating.
                    counter=boundary_us(now_us, interval) // 1_000_000,
                    reporter=AGENT_NAME,
                )
            )
        self.last_heartbeat_at = self._clock()
        collector = spec.config.ves_subscription.endpoint
        for event in events:
            # Only the newest heartbeat of a source is worth sending: never replay old ones.
            self._store.drop_superseded(collector, event.event_id.rsplit("-", 1)[0] + "-")
        return self._commit([Transition(tuple(events))])

    # -- measurements and threshold crossings ---------------------------------------------
    def measure(self) -> int:
        """Read diagnostics of every measured VM, spread over the interval; emit and decide."""
        spec = self.spec
        interval = measure_interval(spec)
        if interval is None:
            return 0
        period = boundary_us(int(self._clock() * 1_000_000), interval)
        if self._periods.get("measure") == period:
            return 0  # this interval is measured already
        self._periods["measure"] = period
        if fault_interval(spec) is None:
            self.poll()  # no fault poll keeps the server list fresh: list servers now
        measured = [
            (b, selector_for(b, self._resolve_tenant))
            for b in backlogs_of(spec, "measurement", "vm")
        ]
        checked = [
            (b, selector_for(b, self._resolve_tenant)) for b in backlogs_of(spec, "tca", "vm")
        ]
        targets = [
            s
            for s in list(self.servers.values())
            if any(sel.matches(s) for _b, sel in measured + checked)
        ]
        gap = interval * MEASURE_SPREAD / max(1, len(targets))
        sent = 0
        for server in targets:
            if self._stopped.is_set():
                break
            sent += self._measure_one(server, interval, period, measured, checked)
            self._stopped.wait(gap)
        self.last_measure_at = self._clock()
        return sent

    def _measure_one(
        self, server: ServerView, interval: float, period: int, measured: list, checked: list
    ) -> int:
        try:
            body = self._ensure_client().diagnostics(server.id)
        except (TemporaryError, PermanentError) as exc:
            # A stopped VM has no diagnostics (409): start its rates afresh next time.
            self.readings.pop(server.id, None)
            self.log.debug("diagnostics.unavailable", server=server.id, error=str(exc))
            return 0
        now_us = int(self._clock() * 1_000_000)
        reading = Reading.from_diagnostics(body, now_us)
        if reading is None:
            return 0
        prev_reading = self.readings.get(server.id)
        self.readings[server.id] = reading
        event = measurement_event(
            prev_reading,
            reading,
            vimid=self.spec.vimid,
            server_id=server.id,
            server_name=server.name,
            interval=interval,
            counter=period // 1_000_000,
            reporter=AGENT_NAME,
            now_us=now_us,
            period_us=period,
        )
        if event is None:
            return 0
        transitions: list[Transition] = []
        if any(sel.matches(server) for _b, sel in measured):
            transitions.append(Transition((event,)))
        values = metric_values(event.fields)
        ctx = self._ctx(now_us)
        with self._lock:
            for backlog, sel in checked:
                if not sel.matches(server):
                    continue
                for threshold in backlog.thresholds:
                    prev = self.alarms.get((server.id, tca_condition(threshold)))
                    transitions.append(
                        decide_tca(
                            prev,
                            threshold,
                            values.get(threshold.metric),
                            vimid=self.spec.vimid,
                            server_id=server.id,
                            server_name=server.name,
                            ctx=ctx,
                        )
                    )
            return self._commit(transitions)

    # -- after a config change, and at the end -------------------------------------------
    def reevaluate(self) -> int:
        """Decide again for every known source after a config change, without polling Nova."""
        with self._lock:
            if self._watermark is None:
                return 0
            spec = self.spec
            ctx = self._ctx()
            vm_faults = backlogs_of(spec, "fault", "vm")
            changed: dict[str, ServerView | None] = dict(self.servers)
            for source_id, condition in list(self.alarms):
                if condition == VM_FAILURE:
                    changed.setdefault(source_id, None)
            transitions = self._vm_transitions(changed, ctx, vm_faults)
            transitions += self._host_transitions(
                ctx, backlogs_of(spec, "fault", "host"), vm_faults
            )
            wanted = {
                (sid, tca_condition(t))
                for b in backlogs_of(spec, "tca", "vm")
                for t in b.thresholds
                for sid in self.servers
            }
            for key, prev in list(self.alarms.items()):
                if key[1].startswith(TCA_PREFIX) and key not in wanted:
                    transitions.append(settle(prev, ctx, "threshold removed"))
                if key[1] == VIM_CONDITION and self._vim_threshold() is None:
                    transitions.append(settle(prev, ctx))
            return self._commit(transitions)

    def clear_all(self, reason: str) -> int:
        """Clear every open alarm of this region (its monitoring was removed)."""
        with self._lock:
            ctx = self._ctx()
            count = self._commit([settle(prev, ctx, reason) for prev in self.alarms.values()])
            if count:
                self.log.info("alarms.cleared", count=count, reason=reason)
            return count

    # -- the outbox ----------------------------------------------------------------------
    def _commit(self, transitions: list[Transition]) -> int:
        transitions = [t for t in transitions if t.events or t.upsert or t.delete]
        if not transitions:
            return 0
        sub = self.spec.config.ves_subscription
        version = sub.version
        collector = sub.endpoint
        items: list[OutboxItem] = []
        events: list[VesEvent] = []
        created = self._clock()
        for t in transitions:
            for event in t.events:
                encoded = encode(event, version)
                items.append(
                    OutboxItem(
                        collector=collector,
                        domain=encoded["commonEventHeader"]["domain"],
                        event_id=event.event_id,
                        sequence=event.sequence,
                        body=dumps(encoded),
                        created=created,
                        buffered=event.domain != "heartbeat",
                    )
                )
                events.append(event)
        upserts = [t.upsert for t in transitions if t.upsert]
        deletes = [t.delete for t in transitions if t.delete]
        self._store.commit(items, upsert=upserts, delete=deletes)
        history.record_queued(self.spec.vimid, events)  # the console's recent events
        for rec in upserts:
            self.alarms[(rec.source_id, rec.condition)] = rec
        for _vimid, source_id, condition in deletes:
            self.alarms.pop((source_id, condition), None)
        if self._metrics is not None:
            for event in events:
                self._metrics.events.labels(event.domain, severity_of_event(event)).inc()
            self._metrics.active_alarms.labels(self.spec.vimid).set(len(self.alarms))
        if events:
            self.last_event_at = created
            faults = [e for e in events if e.domain in ("fault", "tca")]
            if faults:
                self.log.info(
                    "events.queued",
                    count=len(faults),
                    raised=sum(severity_of_event(e) != "NORMAL" for e in faults),
                    cleared=sum(severity_of_event(e) == "NORMAL" for e in faults),
                    conditions=sorted(
                        {str(e.fields.get("alarm_condition", e.domain)) for e in faults}
                    ),
                )
            self._on_events(collector)
        return len(events)

    # -- tenants -------------------------------------------------------------------------
    def cached_tenant(self, name: str) -> str | None:
        """A tenant's project id as last resolved, without asking Keystone (for status pages)."""
        return self._tenant_cache.get(name)

    def _resolve_tenant(self, name: str) -> str | None:
        if self._tenant_cache.get(name) is None:
            domain = self.spec.creds.project_domain
            try:
                self._tenant_cache[name] = self._ensure_client().resolve_project(name, domain)
            except (TemporaryError, PermanentError) as exc:
                self.log.warning("tenant.unresolved", tenant=name, error=str(exc))
                self._tenant_cache[name] = None
        return self._tenant_cache[name]
