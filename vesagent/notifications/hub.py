"""``NotificationHub``: one listener per distinct bus, doorbells for the regions on it.

Level-triggered like the reconciler: ``sync(specs)`` takes every running region's spec and
converges (start the listeners now needed, stop those no region uses, re-apply each region's
listing interval); the hub's thread calls it every second with what the ``PollerSet`` runs,
so neither the reconciler nor the pollers need to know about notifications.

A notification is a doorbell (``Doorbell.poll_soon``): the region's next changes-since poll
runs at once, and the poll, with Nova's API as the truth, decides raise or clear, so a change
seen by a notification and a scheduled poll gives one event. While a region's listener is
connected its server listing runs every ``safety_poll_interval``
(``Doorbell.set_listing_interval``); when it is not, at once back to ``poll_interval``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from vesagent.logs import get_logger
from vesagent.model import RegionKey
from vesagent.notifications.events import Change, Ignored, classify, watched
from vesagent.notifications.listener import BusListener
from vesagent.notifications.metrics import NotificationMetrics, event_type_label
from vesagent.notifications.settings import ListenerKey, NotificationsConfig

log = get_logger("vesagent.notifications")

STILL_FAILING_EVERY = 60.0  # seconds between two "still failing" lines of one listener
SYNC_EVERY = 1.0


class Doorbell(Protocol):
    """What the hub needs from the pollers (``PollerSet`` implements it)."""

    def poll_soon(self, key: RegionKey, *, hosts: bool = False) -> None:
        """List the region's servers at once (and read its compute hosts, with ``hosts``);
        coalesced with polls already due."""

    def set_listing_interval(self, key: RegionKey, seconds: float | None) -> None:
        """List servers every ``seconds`` (None: every poll, as without notifications)."""


@dataclass
class _Bus:
    """One listener and the regions subscribed to it."""

    listener: BusListener
    regions: dict[RegionKey, tuple[NotificationsConfig, Any]] = field(default_factory=dict)
    since: float = field(default_factory=time.time)  # of the current state
    failing_logged: float = 0.0
    seen_kinds: set[str] = field(default_factory=set)
    last_message_at: float | None = None
    received: int = 0


def desired_buses(specs: Mapping[RegionKey, Any]) -> dict[ListenerKey, dict[RegionKey, Any]]:
    """Which bus each region with ``notifications`` listens on (pure)."""
    out: dict[ListenerKey, dict[RegionKey, Any]] = {}
    for key, spec in specs.items():
        notif = getattr(spec.config, "notifications", None)
        if notif is not None:
            out.setdefault(notif.listener_key, {})[key] = (notif, spec.config)
    return out


class NotificationHub:
    """Every notification listener of this agent; see the module docstring."""

    def __init__(
        self,
        doorbell: Doorbell,
        specs: Callable[[], Mapping[RegionKey, Any]] | None = None,
        *,
        registry: CollectorRegistry | None = None,
        pool: str = "vesagent",
        retry_max: float = 30.0,
        sync_every: float = SYNC_EVERY,
        make_listener: Callable[..., BusListener] = BusListener,
    ) -> None:
        self._doorbell = doorbell
        self._specs = specs
        self._metrics = NotificationMetrics(registry)
        self._pool = pool
        self._retry_max = retry_max
        self._sync_every = sync_every
        self._make_listener = make_listener
        self._buses: dict[ListenerKey, _Bus] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> NotificationHub:
        """Sync every ``sync_every`` seconds with ``specs()`` until ``stop``."""
        self._thread = threading.Thread(target=self._loop, name="notify-sync", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self._specs is not None:
                    self.sync(self._specs())
                self.remind()
            except Exception:  # one bad pass must not end notifications for everyone
                log.exception("notifications.sync_failed")
            self._stop.wait(self._sync_every)

    def stop(self) -> None:
        """Stop every listener (bounded); regions keep polling as before."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        with self._lock:
            buses, self._buses = list(self._buses.values()), {}
        for bus in buses:
            bus.listener.stop()

    # -- converge -------------------------------------------------------------------------
    def sync(self, specs: Mapping[RegionKey, Any]) -> None:
        """Converge listeners and subscriptions on ``specs`` (every running region)."""
        wanted = desired_buses(specs)
        to_stop: list[_Bus] = []
        with self._lock:
            for lkey, bus in list(self._buses.items()):
                gone = [k for k in bus.regions if k not in wanted.get(lkey, {})]
                for key in gone:
                    del bus.regions[key]
                    self._leave(key, still_running=key in specs)
                if lkey not in wanted:
                    to_stop.append(self._buses.pop(lkey))
            for lkey, regions in wanted.items():
                found = self._buses.get(lkey)
                if found is None:
                    bus = self._buses[lkey] = self._new_bus(lkey)
                    log.info(
                        "notifications.listening",
                        bus=lkey.shown,
                        pool=lkey.pool(self._pool),
                        regions=sorted(k.vimid for k in regions),
                    )
                    bus.listener.start()
                else:
                    bus = found
                joined = [k for k in regions if k not in bus.regions]
                bus.regions.update(regions)
                connected = bus.listener.connected
                for key, (notif, _config) in regions.items():
                    # Re-applied on every pass: a restarted poller starts without it.
                    self._doorbell.set_listing_interval(
                        key, notif.safety_poll_interval if connected else None
                    )
                    self._metrics.up.labels(key.vimid).set(1 if connected else 0)
                for key in joined:
                    log.info("notifications.subscribed", vimid=key.vimid, bus=lkey.shown)
        for bus in to_stop:
            log.info("notifications.stopped", bus=bus.listener.key.shown)
            bus.listener.stop()

    def remind(self, now: float | None = None) -> None:
        """ "Still failing", once a minute per listener that stays down (the reason may not
        change, so the listener itself has nothing new to say)."""
        now = time.time() if now is None else now
        with self._lock:
            for bus in self._buses.values():
                if bus.listener.connected or not bus.failing_logged:
                    continue
                if now - bus.failing_logged >= STILL_FAILING_EVERY:
                    bus.failing_logged = now
                    log.warning(
                        "notifications.still_failing",
                        reason=bus.listener.reason,
                        down_for_s=round(now - bus.since, 1),
                        fallback="polling at poll_interval",
                        bus=bus.listener.key.shown,
                        regions=sorted(k.vimid for k in bus.regions),
                    )

    def _leave(self, key: RegionKey, *, still_running: bool) -> None:
        if still_running:
            self._doorbell.set_listing_interval(key, None)
            self._doorbell.poll_soon(key)  # what we may have missed while switching
        self._metrics.forget(key.vimid)

    def _new_bus(self, lkey: ListenerKey) -> _Bus:
        holder: list[_Bus] = []
        listener = self._make_listener(
            lkey,
            lkey.pool(self._pool),
            lambda event_type, payload: self._on_message(holder[0], event_type, payload),
            lambda connected, reason: self._on_state(holder[0], connected, reason),
            lambda: self._on_bad_body(holder[0]),
            retry_max=self._retry_max,
        )
        holder.append(_Bus(listener))
        return holder[0]

    # -- from the listeners ---------------------------------------------------------------
    def _on_message(self, bus: _Bus, event_type: Any, payload: Any) -> None:
        """One notification: count it for each region on the bus, ring those it concerns."""
        outcome = classify(event_type, payload)
        label = event_type_label(event_type)
        ring: list[RegionKey] = []
        # A host changed (service.update) or anything may have (compute.exception): the
        # doorbell poll reads the hosts now too, not at their own pace.
        hosts = isinstance(outcome, Change) and outcome.scope != "server"
        with self._lock:
            bus.last_message_at = time.time()
            bus.received += 1
            regions = list(bus.regions.items())
        for key, (_notif, config) in regions:
            self._metrics.received.labels(key.vimid, label).inc()
            if isinstance(outcome, Change) and watched(config, outcome):
                ring.append(key)
            else:
                kind = outcome.kind if isinstance(outcome, Ignored) else "not_watched"
                self._ignored(bus, key, kind, outcome)
        for key in ring:
            self._metrics.doorbells.labels(key.vimid).inc()
            self._doorbell.poll_soon(key, hosts=hosts)

    def _ignored(self, bus: _Bus, key: RegionKey, kind: str, outcome: Change | Ignored) -> None:
        self._metrics.ignored.labels(key.vimid, kind).inc()
        if kind in ("irrelevant", "no_state_change"):
            return  # the normal traffic of a healthy cloud, not bad input
        with self._lock:
            first = kind not in bus.seen_kinds
            bus.seen_kinds.add(kind)
        if first:  # once per kind: a misbehaving publisher must not flood the log
            log.warning(
                "notifications.ignored",
                kind=kind,
                event_type=str(outcome.event_type)[:80],
                detail=getattr(outcome, "detail", ""),
                bus=bus.listener.key.shown,
                note="counted in vesagent_notifications_ignored_total; logged once per kind",
            )

    def _on_bad_body(self, bus: _Bus) -> None:
        with self._lock:
            regions = list(bus.regions)
        for key in regions:
            self._ignored(bus, key, "not_json", Ignored("?", "malformed", "body is not JSON"))

    def _on_state(self, bus: _Bus, connected: bool, reason: str) -> None:
        """Connection state changed: switch the regions' listing interval, log the change."""
        now = time.time()
        with self._lock:
            regions = list(bus.regions.items())
            was_since = bus.since
            fields = {"bus": bus.listener.key.shown, "regions": sorted(k.vimid for k, _ in regions)}
            if connected:
                if bus.failing_logged:
                    log.info(
                        "notifications.recovered", down_for_s=round(now - was_since, 1), **fields
                    )
                else:
                    log.info("notifications.connected", **fields)
                bus.failing_logged = 0.0
                bus.since = now
            elif not bus.failing_logged or now - bus.failing_logged >= STILL_FAILING_EVERY:
                first = not bus.failing_logged
                if first:
                    bus.since = now
                bus.failing_logged = now
                log.warning(
                    "notifications.failing" if first else "notifications.still_failing",
                    reason=reason,
                    fallback="polling at poll_interval",
                    **fields,
                )
        for key, (notif, _config) in regions:
            self._metrics.up.labels(key.vimid).set(1 if connected else 0)
            self._doorbell.set_listing_interval(
                key, notif.safety_poll_interval if connected else None
            )
            # Connected: what happened before we listened; failing: what we may miss.
            self._doorbell.poll_soon(key)

    # -- for the REST API -----------------------------------------------------------------
    def region_status(self, key: RegionKey) -> dict[str, Any] | None:
        """The region's listener as the API shows it (password masked), or None."""
        with self._lock:
            for bus in self._buses.values():
                entry = bus.regions.get(key)
                if entry is None:
                    continue
                notif = entry[0]
                listener = bus.listener
                return {
                    "state": (
                        "connected"
                        if listener.connected
                        else "connecting"
                        if listener.reason == "connecting"
                        else "failing"
                    ),
                    "reason": None if listener.connected else listener.reason,
                    "since": _iso(bus.since),
                    "transport_url": notif.shown_url,
                    "topic": notif.topic,
                    "exchange": notif.exchange,
                    "pool": listener.pool,
                    "server_listing_every": (
                        notif.safety_poll_interval if listener.connected else "poll_interval"
                    ),
                    "received": bus.received,
                    "last_message": _iso(bus.last_message_at),
                }
        return None


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
