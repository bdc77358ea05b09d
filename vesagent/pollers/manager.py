"""``PollerSet``: the running pollers, their timers and the thread pool they poll in.

``ensure(spec)`` is idempotent (start, or adopt a changed spec in place); ``stop(key, reason)``
ends one. ``schedule`` drives the timers, each region with a little jitter so that regions
configured alike do not fire together; the poll itself runs in a bounded thread pool, and a
region whose previous poll is still running is skipped rather than queued (polls of one
region never overlap).

Two hooks serve an event source such as the notification listener: ``poll_soon(key)`` is a
doorbell (the region's server poll runs as soon as possible, and reads the compute hosts too
when ``hosts`` says one changed; a burst of rings while a poll is in flight adds exactly one
poll after it) and ``set_listing_interval(key, seconds)`` paces the
region's server listing on its own (e.g. rarely, while notifications report the changes),
while compute-host liveness keeps the fault interval.
"""

from __future__ import annotations

import enum
import math
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import schedule

from vesagent.logs import get_logger
from vesagent.model import RegionKey
from vesagent.pollers.cycle import Job, job_intervals
from vesagent.pollers.poller import RegionPoller
from vesagent.spec import RegionSpec

DOORBELL_GAP = 0.5
"""Seconds between the starts of two doorbell polls of one region: a burst of notifications
costs Nova a poll every half second at most, while the first ring is answered at once."""

log = get_logger("vesagent.pollers")


class StopReason(enum.StrEnum):
    """Why a poller stopped; only a removal clears its alarms (a shutdown is not a recovery)."""

    REGION_REMOVED = "region_removed"
    NOT_MANAGED = "not_managed"
    SHARD_MOVED = "shard_moved"  # another replica owns it now and carries its open alarms
    SHUTDOWN = "shutdown"


class Ensured(enum.StrEnum):
    """What ``PollerSet.ensure`` did (the values are the reconciler's metric labels)."""

    STARTED = "start"
    UPDATED = "update"
    UNCHANGED = "none"


class PollerSet:
    """Owns every ``RegionPoller`` of this replica."""

    def __init__(
        self,
        make_poller: Callable[[RegionSpec], RegionPoller],
        *,
        workers: int = 8,
        jitter: float = 0.1,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self._make = make_poller
        self._on_tick = on_tick  # liveness: the timer still turns (vesagent/liveness.py)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll")
        # Measurements walk a region's VMs slowly on purpose: their own pool, so they never
        # hold up fault polls.
        self._slow_pool = ThreadPoolExecutor(
            max_workers=max(2, workers // 2), thread_name_prefix="measure"
        )
        self._scheduler = schedule.Scheduler()
        self._pollers: dict[RegionKey, RegionPoller] = {}
        self._jobs: dict[tuple[RegionKey, Job], tuple[float, schedule.Job]] = {}
        self._running: dict[tuple[RegionKey, Job], Future[Any]] = {}
        # Regions whose doorbell rang while a poll was in flight: one more poll after it.
        self._rung: set[RegionKey] = set()
        self._rung_hosts: set[RegionKey] = set()  # ... and a ring asked for the hosts too
        self._rung_at: dict[RegionKey, float] = {}  # when the last doorbell poll started
        # Server listing pace per region, as the event source set it (kept across restarts
        # of the region's poller).
        self._listing: dict[RegionKey, float] = {}
        self._lock = threading.RLock()
        self._jitter = jitter
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="poll-timer", daemon=True)
        self._thread.start()

    def __contains__(self, key: RegionKey) -> bool:
        with self._lock:
            return key in self._pollers

    def get(self, key: RegionKey) -> RegionPoller | None:
        with self._lock:
            return self._pollers.get(key)

    def pollers(self) -> dict[RegionKey, RegionPoller]:
        with self._lock:
            return dict(self._pollers)

    def ensure(self, spec: RegionSpec) -> Ensured:
        """Start or update the region's poller, or leave it be; says which."""
        with self._lock:
            poller = self._pollers.get(spec.key)
            if poller is None:
                poller = self._make(spec)
                poller.listing_interval = self._listing.get(spec.key)
                self._pollers[spec.key] = poller
                action = Ensured.STARTED
            elif poller.spec != spec:
                backlogs_changed = poller.spec.config.backlogs != spec.config.backlogs
                poller.update(spec)
                if backlogs_changed:
                    self._pool.submit(poller.reevaluate)
                action = Ensured.UPDATED
            else:
                return Ensured.UNCHANGED
            self._reschedule(spec.key, poller, first=action is Ensured.STARTED)
            return action

    def stop(self, key: RegionKey, reason: StopReason) -> None:
        """Stop one region's poller; clears its alarms unless the agent is shutting down."""
        with self._lock:
            poller = self._pollers.pop(key, None)
            self._rung.discard(key)
            self._rung_hosts.discard(key)
            self._rung_at.pop(key, None)
            for job_key in [k for k in self._jobs if k[0] == key]:
                self._scheduler.cancel_job(self._jobs.pop(job_key)[1])
        if poller is None:
            return
        if reason not in (StopReason.SHUTDOWN, StopReason.SHARD_MOVED):
            poller.clear_all(reason.value)
        poller.close()
        log.info("poller.stopped", vimid=key.vimid, reason=reason.value)

    def poll_soon(self, key: RegionKey, *, hosts: bool = False) -> None:
        """Ring the region's doorbell: its server poll runs as soon as possible.

        Coalesced: while a poll of the region is in flight, any number of rings adds one
        poll after it, and doorbell polls start at most every ``DOORBELL_GAP`` seconds, so a
        burst of 500 is a handful of polls, and polls of one region never overlap.
        The poll lists servers (``changes-since``) whatever their pace; with ``hosts`` (a
        compute host changed) it reads the hosts' state (os-services) now as well, instead of
        at their own pace. Unknown regions are ignored.
        """
        with self._lock:
            poller = self._pollers.get(key)
            if poller is None or self._stop.is_set():
                return
            self._rung.add(key)
            if hosts:
                self._rung_hosts.add(key)
            self._answer_ring(key, poller)

    def set_listing_interval(self, key: RegionKey, seconds: float | None) -> None:
        """List the region's servers every ``seconds`` instead of at the fault interval.

        None goes back to normal. The compute-host liveness check (os-services) keeps the
        fault interval either way. Applies to a region started later too.
        """
        if seconds is not None and (
            isinstance(seconds, bool) or not math.isfinite(seconds) or seconds <= 0
        ):
            raise ValueError(f"listing interval must be a positive number of seconds: {seconds!r}")
        with self._lock:
            if seconds is None:
                self._listing.pop(key, None)
            else:
                self._listing[key] = float(seconds)
            poller = self._pollers.get(key)
            if poller is not None:
                poller.listing_interval = self._listing.get(key)
                self._reschedule(key, poller, first=False)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop timers and wait (bounded) for polls in flight; alarms stay as they are."""
        self._stop.set()
        for key in list(self.pollers()):
            self.stop(key, StopReason.SHUTDOWN)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._slow_pool.shutdown(wait=False, cancel_futures=True)
        self._thread.join(timeout)

    # -- timers --------------------------------------------------------------------------
    def _reschedule(self, key: RegionKey, poller: RegionPoller, *, first: bool) -> None:
        wanted = job_intervals(poller.spec, poller.listing_interval)
        for job_key in [k for k in self._jobs if k[0] == key and k[1] not in wanted]:
            self._scheduler.cancel_job(self._jobs.pop(job_key)[1])
        for job, interval in wanted.items():
            current = self._jobs.get((key, job))
            if current is not None and current[0] == interval:
                continue
            if current is not None:
                self._scheduler.cancel_job(current[1])
            # schedule's own .to() jitter needs whole seconds; a random phase per region (the
            # first run below) keeps regions with the same interval from firing together.
            # schedule takes float seconds although its annotation says int.
            every = self._scheduler.every(interval)  # type: ignore[arg-type]
            timed = every.seconds.do(self._submit, key, poller, job)
            self._jobs[(key, job)] = (interval, timed)
            if first or current is None:
                delay = random.uniform(0, min(1.0, interval * self._jitter))
                timer = threading.Timer(delay, self._submit, (key, poller, job))
                timer.daemon = True
                timer.start()

    def _submit(self, key: RegionKey, poller: RegionPoller, job: Job) -> None:
        with self._lock:
            if self._stop.is_set() or self._pollers.get(key) is not poller:
                return
            running = self._running.get((key, job))
            if running is not None and not running.done():
                return  # the previous run of this job is still going: skip, never overlap
            if job is Job.POLL:
                self._start_poll(key, poller, listing=False, hosts=False)
                return
            # Measurements walk a region's VMs slowly on purpose: their own pool.
            pool = self._slow_pool if job is Job.MEASURE else self._pool
            self._running[(key, job)] = pool.submit(poller.run_job, job)

    def _start_poll(
        self, key: RegionKey, poller: RegionPoller, *, listing: bool, hosts: bool
    ) -> None:
        """Submit one poll of the region (the caller holds the lock and checked none runs)."""
        future = self._pool.submit(poller.poll, listing=listing, hosts=hosts)
        self._running[(key, Job.POLL)] = future
        future.add_done_callback(lambda _done: self._after_poll(key, poller))

    def _after_poll(self, key: RegionKey, poller: RegionPoller) -> None:
        """A poll ended: if the doorbell rang meanwhile, poll once more (gap permitting)."""
        with self._lock:
            self._answer_ring(key, poller)

    def _answer_ring(self, key: RegionKey, poller: RegionPoller | None) -> None:
        """Start the poll a ring asked for, unless one runs or the gap is not over yet (then
        the poll's end or the timer thread comes back to it). The caller holds the lock."""
        if key not in self._rung:
            return
        if self._stop.is_set() or poller is None or self._pollers.get(key) is not poller:
            self._rung.discard(key)
            self._rung_hosts.discard(key)
            return
        running = self._running.get((key, Job.POLL))
        if running is not None and not running.done():
            return  # its end serves the ring
        now = time.monotonic()
        if now - self._rung_at.get(key, -DOORBELL_GAP) < DOORBELL_GAP:
            return
        self._rung.discard(key)
        hosts = key in self._rung_hosts
        self._rung_hosts.discard(key)
        self._rung_at[key] = now
        self._start_poll(key, poller, listing=True, hosts=hosts)

    def _tick(self) -> None:
        while not self._stop.wait(0.05):
            with self._lock:
                try:
                    self._scheduler.run_pending()
                except Exception:  # a failing job must not kill the timer thread
                    log.exception("scheduler.error")
                for key in list(self._rung):  # rings that waited for the doorbell gap
                    self._answer_ring(key, self._pollers.get(key))
            if self._on_tick is not None:
                self._on_tick()
