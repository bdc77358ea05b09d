"""Liveness: progress clocks the agent's loops tick, and the verdict ``/healthz`` gives.

The HTTP server answers from its own threads, so answering proves nothing about the work: a
reconcile pass stuck forever (a deadlock, a socket without a timeout) or a dead or blocked poll
timer leaves ``/healthz`` green while nothing is polled or delivered. Each loop therefore ticks
its clock whenever it makes progress, having declared its period first; a loop is *stalled*
once it has been silent longer than ``misses`` periods plus its grace (a pass may legitimately
take a while: a slow A&AI answering each of many credential reads just inside its timeout and
retries must not restart the pod). Kubernetes' liveness probe then restarts the pod, which is
the only cure for a stuck thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# A loop is stalled after MISSES periods of silence plus GRACE seconds.
MISSES = 3
GRACE = 30.0


@dataclass(frozen=True)
class Clock:
    """One loop's progress clock: its declared period, its grace, and when it last moved."""

    period: float
    last_tick: float
    grace: float | None = None  # None: the Liveness default


@dataclass(frozen=True)
class Stalled:
    """A loop that has not moved for longer than it is allowed to."""

    loop: str
    silent_for: float
    allowed: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "loop": self.loop,
            "silent_seconds": round(self.silent_for, 1),
            "allowed_seconds": round(self.allowed, 1),
        }


def allowed_silence(period: float, misses: int = MISSES, grace: float = GRACE) -> float:
    """How long a loop with this period may go without a tick before it counts as stalled."""
    return misses * period + grace


def stalled_loops(
    clocks: Mapping[str, Clock], now: float, misses: int = MISSES, grace: float = GRACE
) -> list[Stalled]:
    """The loops silent for longer than ``allowed_silence``, by name."""
    found = []
    for loop, clock in sorted(clocks.items()):
        silent = now - clock.last_tick
        allowed = allowed_silence(
            clock.period, misses, grace if clock.grace is None else clock.grace
        )
        if silent > allowed:
            found.append(Stalled(loop, silent, allowed))
    return found


class Liveness:
    """The agent's progress clocks; loops ``expect`` once, then ``tick`` as they progress."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        misses: int = MISSES,
        grace: float = GRACE,
    ) -> None:
        self.clock = clock
        self.misses = misses
        self.grace = grace
        self._clocks: dict[str, Clock] = {}
        self._lock = threading.Lock()

    def expect(self, loop: str, period: float, grace: float | None = None) -> None:
        """Declare a loop from now on: silent since its declaration until its first tick."""
        with self._lock:
            self._clocks[loop] = Clock(period, self.clock(), grace)

    def tick(self, loop: str) -> None:
        """The loop made progress (a finished pass, a timer turn)."""
        with self._lock:
            old = self._clocks.get(loop, Clock(0.0, 0.0))
            self._clocks[loop] = Clock(old.period, self.clock(), old.grace)

    def ticker(self, loop: str) -> Callable[[], None]:
        """A no-argument callback that ticks ``loop`` (for the loops' ``on_pass``/``on_tick``)."""
        return lambda: self.tick(loop)

    def stalled(self) -> list[Stalled]:
        with self._lock:
            clocks = dict(self._clocks)
        return stalled_loops(clocks, self.clock(), self.misses, self.grace)

    def report(self) -> tuple[dict[str, Any], int]:
        """The body and status of ``/healthz``: 200 while every loop moves, else 503."""
        stalled = self.stalled()
        if stalled:
            return {"status": "stuck", "stuck": [s.as_dict() for s in stalled]}, 503
        with self._lock:
            loops = sorted(self._clocks)
        return {"status": "ok", "loops": loops}, 200
