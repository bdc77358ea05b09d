"""``PollerSet``: the running pollers, their timers and the thread pool they poll in.

``ensure(spec)`` is idempotent (start, or adopt a changed spec in place); ``stop(key, reason)``
ends one. ``schedule`` drives the timers, each region with a little jitter so that regions
configured alike do not fire together; the poll itself runs in a bounded thread pool, and a
region whose previous poll is still running is skipped rather than queued (polls of one
region never overlap).
"""

from __future__ import annotations

import enum
import functools
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import schedule

from vesagent.logs import get_logger
from vesagent.model import RegionKey
from vesagent.pollers.poller import RegionPoller, job_intervals
from vesagent.spec import RegionSpec

log = get_logger("vesagent.pollers")
# Doorbell polls of one region start at most this often: a burst of notifications is spread
# over seconds (Nova sends several per action), so it becomes a few polls, not hundreds.
DOORBELL_GAP = 0.5


class StopReason(enum.StrEnum):
    """Why a poller stopped; only a removal clears its alarms (a shutdown is not a recovery)."""

    REGION_REMOVED = "region_removed"
    NOT_MANAGED = "not_managed"
    SHARD_MOVED = "shard_moved"  # another replica owns it now and carries its open alarms
    SHUTDOWN = "shutdown"


class PollerSet:
    """Owns every ``RegionPoller`` of this replica."""

    def __init__(
        self,
        make_poller: Callable[[RegionSpec], RegionPoller],
        *,
        workers: int = 8,
        jitter: float = 0.1,
    ) -> None:
        self._make = make_poller
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll")
        # Measurements walk a region's VMs slowly on purpose: their own pool, so they never
        # hold up fault polls.
        self._slow_pool = ThreadPoolExecutor(
            max_workers=max(2, workers // 2), thread_name_prefix="measure"
        )
        self._scheduler = schedule.Scheduler()
        self._pollers: dict[RegionKey, RegionPoller] = {}
        self._jobs: dict[tuple[RegionKey, str], tuple[float, schedule.Job]] = {}
        self._running: dict[tuple[RegionKey, str], Future[Any]] = {}
        self._rerun: set[RegionKey] = set()  # a doorbell poll is promised
        self._rung_at: dict[RegionKey, float] = {}  # when the last doorbell poll started
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

    def ensure(self, spec: RegionSpec) -> str:
        """Start or update the region's poller; returns "start", "update" or "none"."""
        with self._lock:
            poller = self._pollers.get(spec.key)
            if poller is None:
                poller = self._make(spec)
                self._pollers[spec.key] = poller
                action = "start"
            elif poller.spec != spec:
                backlogs_changed = poller.spec.config.backlogs != spec.config.backlogs
                poller.update(spec)
                if backlogs_changed:
                    self._pool.submit(poller.reevaluate)
                action = "update"
            else:
                return "none"
            self._reschedule(spec.key, poller, first=action == "start")
            return action

    def stop(self, key: RegionKey, reason: StopReason) -> None:
        """Stop one region's poller; clears its alarms unless the agent is shutting down."""
        with self._lock:
            poller = self._pollers.pop(key, None)
            for job_key in [k for k in self._jobs if k[0] == key]:
                self._scheduler.cancel_job(self._jobs.pop(job_key)[1])
        if poller is None:
            return
        if reason not in (StopReason.SHUTDOWN, StopReason.SHARD_MOVED):
            poller.clear_all(reason.value)
        poller.close()
        log.info("poller.stopped", vimid=key.vimid, reason=reason.value)

    def poll_now(self, key: RegionKey) -> None:
        """Run one poll of the region soon (e.g. right after a config change)."""
        with self._lock:
            poller = self._pollers.get(key)
            if poller is not None:
                self._submit(key, poller, "poll")

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop timers and wait (bounded) for polls in flight; alarms stay as they are."""
        self._stop.set()
        for key in list(self.pollers()):
            self.stop(key, StopReason.SHUTDOWN)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._slow_pool.shutdown(wait=False, cancel_futures=True)
        self._thread.join(timeout)

    # -- notification seam (issue 19): minimal versions, the poller rework replaces them ---
    def poll_soon(self, key: RegionKey) -> None:
        """Doorbell: list the region's servers at once; coalesced, so a burst of rings gives
        a poll at once and then at most one every ``DOORBELL_GAP`` seconds, never one per ring."""
        with self._lock:
            poller = self._pollers.get(key)
            if poller is None or self._stop.is_set():
                return
            poller.want_listing()
            if key in self._rerun:
                return  # a poll is already promised; it lists what this ring announced
            self._rerun.add(key)
            self._poll_again(key)

    def _poll_again(self, key: RegionKey, _done: Any = None) -> None:
        """Run the promised poll now if the region is free and the gap is over, else later."""
        with self._lock:
            poller = self._pollers.get(key)
            if poller is None or self._stop.is_set():
                self._rerun.discard(key)
                return
            running = self._running.get((key, "poll"))
            if running is not None and not running.done():
                # The poll in flight may have listed before the change: one more after it.
                running.add_done_callback(functools.partial(self._poll_again, key))
                return
            wait = self._rung_at.get(key, -DOORBELL_GAP) + DOORBELL_GAP - time.monotonic()
            if wait > 0:
                timer = threading.Timer(wait, self._poll_again, (key,))
                timer.daemon = True
                timer.start()
                return
            self._rerun.discard(key)
            self._rung_at[key] = time.monotonic()
            self._submit(key, poller, "poll")

    def set_listing_interval(self, key: RegionKey, seconds: float | None) -> None:
        """While notifications are heard, list servers only every ``seconds`` (the safety
        net); None: back to every poll. Host liveness keeps the poll interval either way."""
        with self._lock:
            poller = self._pollers.get(key)
            if poller is not None:
                poller.listing_interval = seconds

    # -- timers --------------------------------------------------------------------------
    def _reschedule(self, key: RegionKey, poller: RegionPoller, *, first: bool) -> None:
        wanted = job_intervals(poller.spec)
        for job_key in [k for k in self._jobs if k[0] == key and k[1] not in wanted]:
            self._scheduler.cancel_job(self._jobs.pop(job_key)[1])
        for name, interval in wanted.items():
            current = self._jobs.get((key, name))
            if current is not None and current[0] == interval:
                continue
            if current is not None:
                self._scheduler.cancel_job(current[1])
            # schedule's own .to() jitter needs whole seconds; a random phase per region (the
            # first run below) keeps regions with the same interval from firing together.
            job = self._scheduler.every(interval).seconds.do(self._submit, key, poller, name)
            self._jobs[(key, name)] = (interval, job)
            if first or current is None:
                delay = random.uniform(0, min(1.0, interval * self._jitter))
                timer = threading.Timer(delay, self._submit, (key, poller, name))
                timer.daemon = True
                timer.start()

    def _submit(self, key: RegionKey, poller: RegionPoller, name: str) -> None:
        with self._lock:
            if self._stop.is_set() or self._pollers.get(key) is not poller:
                return
            running = self._running.get((key, name))
            if running is not None and not running.done():
                return  # the previous run of this job is still going: skip, never overlap
            pool = self._slow_pool if name == "measure" else self._pool
            self._running[(key, name)] = pool.submit(poller.run_job, name)

    def _tick(self) -> None:
        while not self._stop.wait(0.05):
            with self._lock:
                try:
                    self._scheduler.run_pending()
                except Exception:  # a failing job must not kill the timer thread
                    log.exception("scheduler.error")
