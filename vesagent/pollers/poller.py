"""``RegionPoller``: one region's jobs as a thin shell: fetch (I/O) -> decide (pure) -> enqueue.

Follow one VM fault from Nova to the outbox:

1. ``RegionPoller.poll`` fetches: ``ComputeApi.list_servers`` with ``changes-since`` from the
   ``ServerCache`` (``servers.py``: the watermark and the full-listing rules), the compute
   services when hosts are watched, and the project ids of tenant names, all before deciding;
2. ``cycle.decide_poll`` decides, purely: VIM gating, partial records, VM and host transitions
   (``decide.decide_vm`` for the VM fault itself);
3. ``vesagent.enqueue.enqueue`` encodes the events and commits them with the alarm changes in
   one outbox transaction; the ``Sender`` delivers them afterwards.

The fault poll costs one Nova request when nothing changed, ``1 + ceil(changed / 1000)``
otherwise, plus one ``GET /os-services?binary=nova-compute`` when hosts are watched, and a
full paged listing at start and every ``full_every`` seconds. ``listing_interval`` (set by the
notification listener through ``PollerSet.set_listing_interval``) makes the server listing
run at its own pace while the services are still read at the fault interval; ``poll(listing=
True)`` lists servers now whatever the pace, and ``hosts=True`` reads the services now too
(``PollerSet.poll_soon``, for a notification that a compute host changed).

Heartbeats and paced measurements (``periodic.py``) go through the same enqueue step.
Every job classifies and reports its failures; none raises.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from vesagent import history
from vesagent.config import Backlog
from vesagent.enqueue import enqueue
from vesagent.errors import CredentialsRefused, PermanentError, TemporaryError
from vesagent.logs import get_logger
from vesagent.metrics import Metrics
from vesagent.model import AlarmRecord, RegionKey, VimCredentials
from vesagent.outage import OutageLog
from vesagent.pollers.cycle import (
    AlarmKey,
    Job,
    Observation,
    PollState,
    VmSelector,
    apply,
    backlogs_of,
    decide_again,
    decide_poll,
    fault_context,
    fault_interval,
    selector_for,
    settle,
    tenant_names,
    watches_hosts,
    watches_servers,
)
from vesagent.pollers.decide import VM_FAILURE, ServerView, Transition
from vesagent.pollers.hosts import VM_HOST_CONDITION, HostView
from vesagent.pollers.measure import Reading
from vesagent.pollers.periodic import (
    MeasurePlan,
    due_heartbeats,
    measure_period,
    measured_transitions,
    plan_measurements,
    superseded_prefix,
)
from vesagent.pollers.ports import ComputeApi, ServerListing
from vesagent.pollers.servers import FULL_EVERY, ServerCache
from vesagent.pollers.vim import HEALTHY, VimHealth
from vesagent.spec import RegionSpec
from vesagent.store import Outbox

# Alarm conditions whose source is a server: gone when a full listing no longer shows it.
_VM_CONDITIONS = frozenset({VM_FAILURE, VM_HOST_CONDITION})
HYPERVISORS_EVERY = 10  # polls between two GET /os-hypervisors (hosts change slowly)
# A timer fires a little early or late: a part of the poll is due once this share of its
# interval has passed, so that jitter never skips a whole interval.
DUE_SLACK = 0.9


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


def _due(last: float | None, interval: float | None, now: float) -> bool:
    """Whether a part of the poll paced at ``interval`` (None: every poll) is due."""
    return interval is None or last is None or now - last >= interval * DUE_SLACK


class RegionPoller:
    """Polls one region; its jobs never raise, they classify and report."""

    def __init__(
        self,
        spec: RegionSpec,
        store: Outbox,
        client_factory: Callable[[VimCredentials], ComputeApi],
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        full_every: float = FULL_EVERY,
        on_events: Callable[[str], None] | None = None,
        on_refused: Callable[[RegionKey], None] | None = None,
        may_poll: Callable[[], bool] | None = None,
    ) -> None:
        self.spec = spec
        # PostgreSQL mode: False once this replica no longer holds the region's lease; its
        # jobs then do nothing until the reconciler stops it (a few ms), so two replicas
        # never poll one region at once (the lease rests before the next owner takes it).
        self._may_poll = may_poll or (lambda: True)
        self._store = store
        self._client_factory = client_factory
        self._client: ComputeApi | None = None
        # Metrics are always there: a poller built without the agent's counts into its own.
        self._metrics = metrics if metrics is not None else Metrics(CollectorRegistry())
        self._clock = clock
        self._on_events = on_events or (lambda collector: None)
        # Told when the VIM refuses us for good (e.g. a rotated password): re-read A&AI.
        self._on_refused = on_refused or (lambda key: None)
        self._lock = threading.Lock()  # one fault poll at a time, and state changes
        self._client_lock = threading.Lock()
        self._stopped = threading.Event()
        self.log = get_logger("vesagent.poller", vimid=spec.vimid)
        self._outage = OutageLog(self.log, "poll", clock=clock)
        self.cache = ServerCache(full_every)
        self.hosts: dict[str, HostView] = {}
        self._hosts_partial = False
        # Hypervisor state/status by name, refreshed every few polls, for the status API.
        self.hypervisors: dict[str, str] = {}
        self._heartbeat_periods: dict[str, int] = {}
        self._measured_period: int | None = None
        self._polls = 0
        self.alarms: dict[AlarmKey, AlarmRecord] = store.alarms(spec.vimid)
        self.health: VimHealth = HEALTHY
        self.readings: dict[str, Reading] = {}
        self._tenant_cache: dict[str, str | None] = {}
        # Server listing pace (None: every poll) and when its parts last ran.
        self.listing_interval: float | None = None
        self._last_listing: float | None = None
        self._last_services: float | None = None
        self.last: PollOutcome | None = None
        self.last_event_at: float | None = None
        self.last_heartbeat_at: float | None = None
        self.last_measure_at: float | None = None

    @property
    def servers(self) -> Mapping[str, ServerView]:
        """The region's servers as last listed."""
        return self.cache.servers

    # -- configuration -------------------------------------------------------------------
    def update(self, spec: RegionSpec) -> None:
        """Adopt a new spec; a credentials change rebuilds the OpenStack session."""
        with self._lock:
            if spec.creds != self.spec.creds:
                with self._client_lock:
                    self._close_client()
                self._tenant_cache.clear()
            if spec.config.backlogs != self.spec.config.backlogs:
                self._tenant_cache.clear()
            self.spec = spec

    def close(self) -> None:
        """Stop the paced jobs and release the connections."""
        self._stopped.set()
        with self._client_lock:
            self._close_client()

    def _close_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing is best effort
                self._client.close()
            self._client = None

    def _ensure_client(self) -> ComputeApi:
        with self._client_lock:
            if self._client is None:
                self._client = self._client_factory(self.spec.creds)
            return self._client

    def _now_us(self) -> int:
        return int(self._clock() * 1_000_000)

    def run_job(self, job: Job) -> None:
        """Entry point of the timers (see ``cycle.job_intervals``)."""
        if not self._may_poll():
            return
        if job is Job.POLL:
            self.poll()
        elif job is Job.HEARTBEAT:
            self.heartbeat()
        else:
            self.measure()

    # -- the fault poll: fetch -> decide -> enqueue ----------------------------------------
    def poll(self, *, listing: bool = False, hosts: bool = False) -> PollOutcome:
        """One fault cycle (``listing``: list servers now, whatever their pace; ``hosts``:
        read the compute hosts now, whatever theirs).

        Safe to call from any thread; concurrent calls are serialised.
        """
        with self._lock:
            started = time.monotonic()
            outcome = PollOutcome()
            if not self._may_poll():
                outcome.ok, outcome.error = False, "skipped: this replica no longer owns it"
                return outcome
            try:
                seen, page = self._fetch(outcome, force_listing=listing, force_hosts=hosts)
            except (TemporaryError, PermanentError) as exc:
                outcome.ok, outcome.error = False, str(exc)
                seen, page = Observation(error=outcome.error), None
                if isinstance(exc, PermanentError):
                    # Rebuild the session next time (the catalog or the roles may change).
                    with self._client_lock:
                        self._close_client()
                if isinstance(exc, CredentialsRefused):
                    # Only a refused password may have rotated in A&AI: have it read again.
                    # (A 403 for a missing role would not change by re-reading it.)
                    self._on_refused(self.spec.key)
            except Exception as exc:  # an unclassified failure: report it, decide nothing
                outcome.ok, outcome.error = False, f"{type(exc).__name__}: {exc}"
                self.log.exception("poll.crashed")
                return self._finish(outcome, started)
            decision = decide_poll(self._state(), seen, self.spec, self._now_us())
            self.health = decision.state.health
            self.hosts = dict(decision.state.hosts)
            self._hosts_partial = decision.state.hosts_partial
            try:
                outcome.events += self._enqueue(decision.transitions)
            except Exception as exc:
                self.cache.list_everything_next()  # nothing was promised: look at all again
                outcome.ok, outcome.error = False, f"{type(exc).__name__}: {exc}"
                self.log.exception("poll.enqueue_failed")
                return self._finish(outcome, started)
            # Advance only once the decisions are committed, and not while VM decisions are
            # frozen: the changes seen meanwhile are listed again when the VIM recovers.
            if page is not None and not decision.frozen:
                self.cache.advance(page)
            if outcome.ok:
                self._polls += 1
            return self._finish(outcome, started)

    def _state(self) -> PollState:
        return PollState(
            alarms=self.alarms,
            health=self.health,
            servers=self.cache.servers,
            hosts=self.hosts,
            hosts_partial=self._hosts_partial,
        )

    def _fetch(
        self, outcome: PollOutcome, *, force_listing: bool, force_hosts: bool = False
    ) -> tuple[Observation, ServerListing | None]:
        """Everything the decision needs from the cloud, parsed (the I/O half of a poll)."""
        spec = self.spec
        now = self._clock()
        list_now = watches_servers(spec) and (
            force_listing or _due(self._last_listing, self.listing_interval, now)
        )
        paced = fault_interval(spec) if self.listing_interval is not None else None
        services_now = watches_hosts(spec) and (
            force_hosts or _due(self._last_services, paced, now)
        )
        client = self._ensure_client()
        before, auths = client.requests_made, client.auth_count
        page: ServerListing | None = None
        services: list[dict[str, object]] | None = None
        full = self.cache.wants_full(now)
        try:
            if list_now:
                page = client.list_servers(changes_since=self.cache.changes_since(full))
                self._last_listing = now
            if services_now:
                services = client.list_services()
                self._last_services = now
                if backlogs_of(spec, "fault", "host") and self._polls % HYPERVISORS_EVERY == 0:
                    self._refresh_hypervisors(client)
            if page is None and services is None:
                client.compute_endpoint()  # nothing else to read: is the cloud reachable?
        finally:
            outcome.requests = client.requests_made - before
            outcome.authentications = client.auth_count - auths

        changed: dict[str, ServerView | None] = {}
        if page is not None:
            outcome.full, outcome.servers_seen = full, len(page.servers)
            alarmed = [sid for sid, condition in self.alarms if condition in _VM_CONDITIONS]
            changed = self.cache.absorb(page, full, now, alarmed)
            for sid, view in changed.items():
                if view is None:
                    self.readings.pop(sid, None)
        if not watches_hosts(spec):
            parsed: tuple[HostView, ...] | None = ()
        elif services is None:
            parsed = None  # not read this time: keep the last ones
        else:
            parsed = tuple(v for v in map(HostView.from_nova, services) if v is not None)
        return (
            Observation(
                changed=changed,
                services=parsed,
                servers_partial=self.cache.partial,
                tenants=self._resolve_tenants(tenant_names(spec)),
            ),
            page,
        )

    def _refresh_hypervisors(self, client: ComputeApi) -> None:
        """Hypervisor state/status for the status API; informative, so never fails a poll."""
        try:
            self.hypervisors = {
                str(h.get("hypervisor_hostname")): f"{h.get('state')}/{h.get('status')}"
                for h in client.list_hypervisors()
                if isinstance(h, dict)
            }
        except (TemporaryError, PermanentError) as exc:
            self.log.debug("hypervisors.unavailable", error=str(exc))

    def _finish(self, outcome: PollOutcome, started: float) -> PollOutcome:
        outcome.finished = self._clock()
        self.last = outcome
        duration = time.monotonic() - started
        self._record(outcome, duration)
        history.record_poll(self.spec.vimid, duration, outcome.ok)  # the console's poll chart
        return outcome

    def _record(self, outcome: PollOutcome, duration: float) -> None:
        vimid = self.spec.vimid
        fields: dict[str, Any] = {
            "full": outcome.full,
            "servers": outcome.servers_seen,
            "requests": outcome.requests,
            "events": outcome.events,
            "duration_ms": round(duration * 1000, 1),
        }
        if outcome.ok:
            self.log.debug("poll.done", **fields)
            self._outage.succeeded(vimid)
        else:
            # The first failure at once, then once a minute: an outage is a state, not a flood.
            self._outage.failed(
                vimid,
                outcome.error,
                consecutive_failures=self.health.consecutive_failures,
                **fields,
            )
        m = self._metrics
        m.polls.labels(vimid, "ok" if outcome.ok else "error").inc()
        m.poll_seconds.labels(vimid).observe(duration)
        m.nova_requests.labels(vimid).inc(outcome.requests)
        m.keystone_auths.labels(vimid).inc(outcome.authentications)
        m.tracked_servers.labels(vimid).set(len(self.cache.servers))
        m.active_alarms.labels(vimid).set(len(self.alarms))

    # -- heartbeats ----------------------------------------------------------------------
    def heartbeat(self) -> int:
        """One heartbeat per heartbeat backlog and interval; queued unbuffered."""
        events, self._heartbeat_periods = due_heartbeats(
            self.spec, self._heartbeat_periods, self._now_us()
        )
        self.last_heartbeat_at = self._clock()
        collector = self.spec.config.ves_subscription.endpoint
        for event in events:
            # Only the newest heartbeat of a source is worth sending: never replay old ones.
            self._store.drop_superseded(collector, superseded_prefix(event))
        return self._enqueue([Transition(tuple(events))])

    # -- measurements and threshold crossings ---------------------------------------------
    def measure(self) -> int:
        """Read diagnostics of every measured VM, spread over the interval; emit and decide."""
        spec = self.spec
        period = measure_period(spec, self._now_us())
        if period is None or self._measured_period == period:
            return 0  # nothing to measure, or this interval is measured already
        self._measured_period = period
        if fault_interval(spec) is None:
            self.poll()  # no fault poll keeps the server list fresh: list servers now
        tenants = self._resolve_tenants(tenant_names(spec))
        plan = plan_measurements(spec, list(self.cache.servers.values()), tenants, self._now_us())
        if plan is None:
            return 0
        sent = 0
        for server in plan.targets:
            if self._stopped.is_set():
                break
            sent += self._measure_one(plan, server)
            self._stopped.wait(plan.gap)
        self.last_measure_at = self._clock()
        return sent

    def _measure_one(self, plan: MeasurePlan, server: ServerView) -> int:
        try:
            body = self._ensure_client().diagnostics(server.id)
        except (TemporaryError, PermanentError) as exc:
            # A stopped VM has no diagnostics (409): start its rates afresh next time.
            self.readings.pop(server.id, None)
            self.log.debug("diagnostics.unavailable", server=server.id, error=str(exc))
            return 0
        reading = Reading.from_diagnostics(body, self._now_us())
        if reading is None:
            return 0
        previous = self.readings.get(server.id)
        self.readings[server.id] = reading
        with self._lock:
            return self._enqueue(
                measured_transitions(plan, self.spec, server, previous, reading, self.alarms)
            )

    # -- after a config change, and at the end -------------------------------------------
    def reevaluate(self) -> int:
        """Decide again for every known source after a config change, without polling Nova."""
        with self._lock:
            if self.cache.watermark is None:
                return 0
            tenants = self._resolve_tenants(tenant_names(self.spec))
            return self._enqueue(decide_again(self._state(), self.spec, tenants, self._now_us()))

    def clear_all(self, reason: str) -> int:
        """Clear every open alarm of this region (its monitoring was removed)."""
        with self._lock:
            ctx = fault_context(self.spec, self._now_us())
            count = self._enqueue([settle(prev, ctx, reason) for prev in self.alarms.values()])
            if count:
                self.log.info("alarms.cleared", count=count, reason=reason)
            return count

    # -- the enqueue step ----------------------------------------------------------------
    def _enqueue(self, transitions: Iterable[Transition]) -> int:
        """Commit through the outbox, then mirror the alarm changes; returns events queued."""
        now = self._clock()
        subscription = self.spec.config.ves_subscription
        kept = enqueue(
            self._store, transitions, subscription, metrics=self._metrics, log=self.log, now=now
        )
        if not kept:
            return 0
        apply(self.alarms, kept)
        self._metrics.active_alarms.labels(self.spec.vimid).set(len(self.alarms))
        count = sum(len(t.events) for t in kept)
        if count:
            self.last_event_at = now
            history.record_queued(self.spec.vimid, [e for t in kept for e in t.events])  # console
            self._on_events(subscription.endpoint)
        return count

    # -- tenants -------------------------------------------------------------------------
    def cached_tenant(self, name: str) -> str | None:
        """A tenant's project id as last resolved, without asking Keystone (for status pages)."""
        return self._tenant_cache.get(name)

    def selector(self, backlog: Backlog) -> VmSelector:
        """A VM backlog's selector with tenants as last resolved, without asking Keystone."""
        return selector_for(backlog, dict(self._tenant_cache))

    def _resolve_tenants(self, names: Iterable[str]) -> dict[str, str | None]:
        """Project ids of tenant names (Keystone), cached; a name not found is asked again."""
        resolved: dict[str, str | None] = {}
        for name in names:
            if self._tenant_cache.get(name) is None:
                domain = self.spec.creds.project_domain
                try:
                    self._tenant_cache[name] = self._ensure_client().resolve_project(name, domain)
                except (TemporaryError, PermanentError) as exc:
                    self.log.warning("tenant.unresolved", tenant=name, error=str(exc))
                    self._tenant_cache[name] = None
            resolved[name] = self._tenant_cache[name]
        return resolved
