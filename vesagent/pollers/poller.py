"""One region's poll cycle: list what changed in Nova, decide raise/clear, commit to the outbox.

A cycle costs one Nova request when nothing changed (``changes-since`` with an overlap window),
``1 + ceil(changed/1000)`` otherwise, and a full paged listing at start and every
``full_every`` seconds (which also catches deletions Nova archived away). Events and the alarm
state they announce are committed to the store in one transaction before anything is sent.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from vesagent import AGENT_NAME
from vesagent.errors import PermanentError, TemporaryError
from vesagent.logs import get_logger
from vesagent.model import VesEvent
from vesagent.pollers.decide import FaultContext, ServerView, Transition, decide_vm
from vesagent.spec import RegionSpec
from vesagent.store import AlarmRecord, OutboxItem, Store
from vesagent.ves_client.encode import dumps, encode

OVERLAP = timedelta(seconds=5)
# Without a Date header the window is based on our clock, which may differ from Nova's.
OVERLAP_OWN_CLOCK = timedelta(seconds=60)
FULL_EVERY = 600.0


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


def selectors_for(
    backlogs: Iterable[Any], resolve_tenant: Callable[[str], str | None]
) -> list[VmSelector]:
    """VM fault backlogs -> selectors; a tenant name that does not resolve matches nothing."""
    out = []
    for b in backlogs:
        if b.domain != "fault" or b.type != "vm":
            continue
        if not _wild(b.tenantid):
            tenants: frozenset[str] | None = frozenset({b.tenantid})
        elif not _wild(b.tenant):
            resolved = resolve_tenant(b.tenant)
            tenants = frozenset({resolved}) if resolved else frozenset()
        else:
            tenants = None
        ids = None if _wild(b.sourceid) else frozenset({b.sourceid})
        names = None if _wild(b.source) else frozenset({b.source})
        out.append(VmSelector(tenants, names, ids))
    return out


def fault_interval(spec: RegionSpec) -> float | None:
    """A region polls at the smallest interval of its VM fault backlogs (None: no such backlog)."""
    cfg = spec.config
    intervals = [cfg.interval_of(b) for b in cfg.backlogs if b.domain == "fault" and b.type == "vm"]
    return min(intervals) if intervals else None


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
    """Polls one region; ``poll()`` never raises, it classifies and reports."""

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
    ) -> None:
        self.spec = spec
        self._store = store
        self._client_factory = client_factory
        self._client: Any = None
        self._metrics = metrics
        self._clock = clock
        self._full_every = full_every
        self._on_events = on_events or (lambda collector: None)
        self._lock = threading.Lock()  # one poll at a time per region
        self.log = get_logger("vesagent.poller", vimid=spec.vimid)
        self.servers: dict[str, ServerView] = {}
        self.alarms: dict[tuple[str, str], AlarmRecord] = store.alarms(spec.vimid)
        self._watermark: datetime | None = None
        self._server_clock = True
        self._last_full = 0.0
        self._tenant_cache: dict[str, str | None] = {}
        self.last: PollOutcome | None = None
        self.last_event_at: float | None = None

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
        with self._lock:
            self._close_client()

    def _close_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing is best effort
                self._client.close()
            self._client = None

    def _ensure_client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory(self.spec.creds)
        return self._client

    # -- the poll cycle ------------------------------------------------------------------
    def poll(self) -> PollOutcome:
        """One cycle. Safe to call from any thread; concurrent calls are serialised."""
        with self._lock:
            started = time.monotonic()
            outcome = PollOutcome()
            try:
                self._poll_once(outcome)
            except (TemporaryError, PermanentError) as exc:
                outcome.ok, outcome.error = False, str(exc)
                if isinstance(exc, PermanentError):
                    # Credentials may have rotated in A&AI: rebuild the session next time.
                    self._close_client()
            except Exception as exc:  # an unclassified failure is treated as temporary
                outcome.ok, outcome.error = False, f"{type(exc).__name__}: {exc}"
                self.log.exception("poll.crashed")
            outcome.finished = self._clock()
            self.last = outcome
            duration = time.monotonic() - started
            self._record(outcome, duration)
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
        if outcome.ok:
            self.log.debug("poll.done", **fields)
        else:
            self.log.warning("poll.failed", error=outcome.error, **fields)
        m = self._metrics
        if m is not None:
            m.polls.labels(vimid, "ok" if outcome.ok else "error").inc()
            m.poll_seconds.labels(vimid).observe(duration)
            m.nova_requests.labels(vimid).inc(outcome.requests)
            m.keystone_auths.labels(vimid).inc(outcome.authentications)
            m.tracked_servers.labels(vimid).set(len(self.servers))
            m.active_alarms.labels(vimid).set(len(self.alarms))

    def _poll_once(self, outcome: PollOutcome) -> None:
        spec = self.spec
        client = self._ensure_client()
        now = self._clock()
        full = self._watermark is None or now - self._last_full >= self._full_every
        overlap = OVERLAP if self._server_clock else OVERLAP_OWN_CLOCK
        since = None if full else self._watermark - overlap  # type: ignore[operator]
        before = getattr(client, "requests_made", 0)
        auths = getattr(client, "auth_count", 0)
        try:
            page = client.list_servers(changes_since=since)
        finally:
            outcome.requests = getattr(client, "requests_made", 0) - before
            outcome.authentications = getattr(client, "auth_count", 0) - auths
        outcome.full = full
        outcome.servers_seen = len(page.servers)

        changed: dict[str, ServerView | None] = {}
        for body in page.servers:
            view = ServerView.from_nova(body)
            if view is None:
                continue
            if view.status == "DELETED":
                self.servers.pop(view.id, None)
                changed[view.id] = None
            else:
                self.servers[view.id] = view
                changed[view.id] = view
        if full:
            listed = {v.id for v in (ServerView.from_nova(b) for b in page.servers) if v}
            for gone in [sid for sid in self.servers if sid not in listed]:
                del self.servers[gone]
                changed[gone] = None
            # Alarms whose server is not listed any more (deleted while we were not looking).
            for source_id, _cond in list(self.alarms):
                if source_id not in listed:
                    changed[source_id] = None
            changed.update({sid: self.servers[sid] for sid in self.servers})
            self._last_full = now

        selectors = selectors_for(spec.config.backlogs, self._resolve_tenant)
        ctx = FaultContext(
            vimid=spec.vimid,
            reporter=AGENT_NAME,
            now_us=int(page.server_time.timestamp() * 1_000_000),
        )
        transitions = []
        for source_id, view in changed.items():
            watched = view is not None and any(s.matches(view) for s in selectors)
            prev = self.alarms.get((source_id, "VMFailure"))
            if not watched and prev is None:
                continue
            transitions.append(decide_vm(prev, view if watched else None, ctx))
        outcome.events = self._commit(transitions)
        self._watermark = page.server_time
        self._server_clock = getattr(page, "server_clock", True)

    def reevaluate(self) -> int:
        """Decide again for every known server (after a config change), without polling Nova."""
        with self._lock:
            if self._watermark is None:
                return 0
            selectors = selectors_for(self.spec.config.backlogs, self._resolve_tenant)
            ctx = FaultContext(self.spec.vimid, AGENT_NAME, int(self._clock() * 1_000_000))
            transitions = []
            for (source_id, _cond), prev in list(self.alarms.items()):
                view = self.servers.get(source_id)
                if view is None or not any(s.matches(view) for s in selectors):
                    transitions.append(decide_vm(prev, None, ctx))
            for view in self.servers.values():
                if (view.id, "VMFailure") not in self.alarms and any(
                    s.matches(view) for s in selectors
                ):
                    transitions.append(decide_vm(None, view, ctx))
            return self._commit(transitions)

    def _commit(self, transitions: list[Transition]) -> int:
        transitions = [t for t in transitions if t.events or t.upsert or t.delete]
        if not transitions:
            return 0
        sub = self.spec.config.ves_subscription
        version = sub.version
        collector = sub.endpoint
        items: list[OutboxItem] = []
        events: list[VesEvent] = []
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
                        created=self._clock(),
                        buffered=event.domain != "heartbeat",
                    )
                )
                events.append(event)
        upserts = [t.upsert for t in transitions if t.upsert]
        deletes = [t.delete for t in transitions if t.delete]
        self._store.commit(items, upsert=upserts, delete=deletes)
        for rec in upserts:
            self.alarms[(rec.source_id, rec.condition)] = rec
        for vimid_, source_id, cond in deletes:
            del vimid_
            self.alarms.pop((source_id, cond), None)
        if self._metrics is not None:
            for event in events:
                self._metrics.events.labels(event.domain, event.fields.get("severity", "")).inc()
        if events:
            self.last_event_at = self._clock()
            self.log.info(
                "events.queued",
                count=len(events),
                raised=sum(1 for e in events if e.fields.get("severity") != "NORMAL"),
                cleared=sum(1 for e in events if e.fields.get("severity") == "NORMAL"),
            )
            self._on_events(collector)
        return len(events)

    def cached_tenant(self, name: str) -> str | None:
        """A tenant's project id as last resolved, without asking Keystone (for status pages)."""
        return self._tenant_cache.get(name)

    def _resolve_tenant(self, name: str) -> str | None:
        if name not in self._tenant_cache or self._tenant_cache[name] is None:
            domain = self.spec.creds.project_domain
            try:
                self._tenant_cache[name] = self._ensure_client().resolve_project(name, domain)
            except (TemporaryError, PermanentError) as exc:
                self.log.warning("tenant.unresolved", tenant=name, error=str(exc))
                self._tenant_cache[name] = None
        return self._tenant_cache[name]

    def clear_all(self, reason: str) -> int:
        """Clear every open alarm of this region (its monitoring was removed)."""
        with self._lock:
            ctx = FaultContext(self.spec.vimid, AGENT_NAME, int(self._clock() * 1_000_000))
            transitions = [decide_vm(prev, None, ctx) for prev in self.alarms.values()]
            count = self._commit(transitions)
            if count:
                self.log.info("alarms.cleared", count=count, reason=reason)
            return count


def utcnow() -> datetime:
    return datetime.now(UTC)
