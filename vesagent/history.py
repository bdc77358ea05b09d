"""Recent activity the console shows and nothing else keeps: events and polls, in memory.

The outbox deletes an event once the collector accepts it, and Prometheus keeps counters, not
the last few events; so the operator's console ("what did the agent send for this region, and
did the collector take it?") needs its own small record. It is bounded (a ring per region) and
in memory on purpose: losing it on restart loses nothing the agent promises.

Three hooks feed it, each one line at its call site:

- :func:`record_queued` when a region's events enter the outbox (the poller's enqueue step),
- :func:`record_sent` when the collector answers (or cannot be reached) for some of them
  (the sender; outcomes are found by ``(eventId, sequence)``),
- :func:`record_poll` after each fault poll (the poller), with its duration.

A process runs one agent, so one module-level :data:`HISTORY` serves every hook without
threading an object through constructors that other work is changing; tests call
:meth:`History.reset`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from vesagent.errors import is_retryable_status

#: Events kept per region (the console's "last events sent").
EVENTS_PER_REGION = 200
#: Polls kept per region (the poll-duration chart).
POLLS_PER_REGION = 120
#: Minutes of events-per-minute counts kept per region.
MINUTES_KEPT = 30


@dataclass
class EventRecord:
    """One queued event and what became of it (``outcome`` changes as answers arrive)."""

    vimid: str
    event_id: str
    sequence: int
    domain: str
    severity: str
    source: str
    queued_at: float
    outcome: str = "queued"  # queued | delivered | retrying | refused
    status: int | None = None
    detail: str = ""
    answered_at: float | None = None


@dataclass(frozen=True)
class PollRecord:
    """One fault poll: when it finished, how long it took, whether it succeeded."""

    at: float
    seconds: float
    ok: bool


def delivery_outcome(status: int | None) -> str:
    """The console's word for a collector answer: None means no answer at all (timeout...)."""
    if status is None or is_retryable_status(status):
        return "retrying"
    if 200 <= status < 300:
        return "delivered"
    return "refused"


class History:
    """Bounded, thread-safe record of recent events and polls per region."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._events: dict[str, deque[EventRecord]] = {}
            self._index: dict[tuple[str, int], EventRecord] = {}
            self._minutes: dict[str, dict[int, dict[str, int]]] = {}
            self._polls: dict[str, deque[PollRecord]] = {}

    # -- hooks -----------------------------------------------------------------------------
    def record_queued(self, vimid: str, events: Iterable[Any]) -> None:
        """``events`` (``VesEvent``s) of ``vimid`` were committed to the outbox."""
        now = self._clock()
        minute = int(now // 60)
        events = list(events)
        with self._lock:
            ring = self._events.setdefault(vimid, deque())
            counts = self._minutes.setdefault(vimid, {})
            bucket = counts.setdefault(minute, {})
            for event in events:
                bucket[event.domain] = bucket.get(event.domain, 0) + 1
            # A measurement cycle can queue thousands: only the newest ones can stay in the ring.
            for event in events[-EVENTS_PER_REGION:]:
                fields = getattr(event, "fields", {}) or {}
                record = EventRecord(
                    vimid=vimid,
                    event_id=event.event_id,
                    sequence=event.sequence,
                    domain=event.domain,
                    severity=str(fields.get("severity") or fields.get("event_severity") or ""),
                    source=str(event.source_name or event.source_id or ""),
                    queued_at=now,
                )
                if len(ring) >= EVENTS_PER_REGION:
                    old = ring.popleft()
                    self._index.pop((old.event_id, old.sequence), None)
                ring.append(record)
                self._index[(record.event_id, record.sequence)] = record
            for stale in [m for m in counts if m <= minute - MINUTES_KEPT]:
                del counts[stale]

    def record_sent(self, rows: Iterable[Any], status: int | None, detail: str = "") -> None:
        """The collector answered ``status`` (None: no answer) for these outbox rows."""
        now = self._clock()
        outcome = delivery_outcome(status)
        with self._lock:
            for row in rows:
                record = self._index.get((row.event_id, row.sequence))
                if record is not None:
                    record.outcome, record.status = outcome, status
                    record.detail, record.answered_at = detail[:300], now

    def record_poll(self, vimid: str, seconds: float, ok: bool) -> None:
        """One fault poll of ``vimid`` took ``seconds``."""
        with self._lock:
            ring = self._polls.setdefault(vimid, deque(maxlen=POLLS_PER_REGION))
            ring.append(PollRecord(self._clock(), seconds, ok))

    # -- reads (copies, newest last) --------------------------------------------------------
    def events(self, vimid: str) -> list[EventRecord]:
        with self._lock:
            return [replace(r) for r in self._events.get(vimid, ())]

    def polls(self, vimid: str) -> list[PollRecord]:
        with self._lock:
            return list(self._polls.get(vimid, ()))

    def per_minute(
        self, vimid: str, minutes: int = MINUTES_KEPT
    ) -> list[tuple[int, dict[str, int]]]:
        """``(minute, {domain: count})`` for the last ``minutes`` minutes, oldest first."""
        now = int(self._clock() // 60)
        with self._lock:
            counts = self._minutes.get(vimid, {})
            return [(m, dict(counts.get(m, {}))) for m in range(now - minutes + 1, now + 1)]


HISTORY = History()
record_queued = HISTORY.record_queued
record_sent = HISTORY.record_sent
record_poll = HISTORY.record_poll
