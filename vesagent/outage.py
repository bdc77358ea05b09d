"""Outages logged as state changes: failing once, still failing once a minute, recovered once.

A region whose Nova is down is polled every few seconds, a collector that is down is retried
with backoff; logging every failed attempt would bury the one line an operator needs. An
``OutageLog`` turns the stream of attempts into three kinds of line per key (a region, a
collector...): ``{prefix}.failing`` at the first failure, ``{prefix}.still_failing`` at most
every ``every`` seconds while it lasts, ``{prefix}.recovered`` at the first success after it,
each with ``down_for_s``. One instance serves many keys (the sender keys it by collector, a
poller by its vimid); it is thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

FAILURE_LOG_EVERY = 60.0
"""Seconds between two log lines about the same ongoing outage."""


@dataclass
class _Outage:
    since: float
    error: str
    logged_at: float


class OutageLog:
    """Which keys are failing, since when and why; logs only the changes of that state.

    ``log`` is a structlog-style logger (``warning``/``info`` with keyword fields). ``details``
    given to ``failed`` is called only when a line is actually written, so an expensive figure
    (e.g. the depth of a queue) costs nothing on the attempts that are not logged.
    """

    def __init__(
        self,
        log: Any,
        prefix: str,
        *,
        every: float = FAILURE_LOG_EVERY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._log = log
        self._prefix = prefix
        self._every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._outages: dict[Hashable, _Outage] = {}

    def failed(
        self,
        key: Hashable,
        error: str,
        details: Callable[[], Mapping[str, Any]] | None = None,
        **fields: Any,
    ) -> bool:
        """Record a failed attempt; returns True when it started a new outage."""
        now = self._clock()
        with self._lock:
            outage = self._outages.get(key)
            first = outage is None
            if outage is None:
                outage = self._outages[key] = _Outage(since=now, error=error, logged_at=now)
            else:
                outage.error = error
                if now - outage.logged_at < self._every:
                    return False
                outage.logged_at = now
            since = outage.since
        extra = dict(details()) if details is not None else {}
        self._log.warning(
            f"{self._prefix}.failing" if first else f"{self._prefix}.still_failing",
            error=error,
            down_for_s=round(now - since, 1),
            **fields,
            **extra,
        )
        return first

    def succeeded(
        self,
        key: Hashable,
        details: Callable[[], Mapping[str, Any]] | None = None,
        **fields: Any,
    ) -> float | None:
        """Record a successful attempt; returns how long the outage it ends lasted (or None)."""
        now = self._clock()
        with self._lock:
            outage = self._outages.pop(key, None)
        if outage is None:
            return None
        down_for = now - outage.since
        extra = dict(details()) if details is not None else {}
        self._log.info(
            f"{self._prefix}.recovered", down_for_s=round(down_for, 1), **fields, **extra
        )
        return down_for

    def down_since(self, key: Hashable) -> float | None:
        """When the ongoing outage of ``key`` began (None: not failing)."""
        with self._lock:
            outage = self._outages.get(key)
            return outage.since if outage else None

    def last_error(self, key: Hashable) -> str | None:
        """The last failure of the ongoing outage of ``key`` (None: not failing)."""
        with self._lock:
            outage = self._outages.get(key)
            return outage.error if outage else None

    def forget(self, key: Hashable) -> None:
        """Drop ``key`` without logging (it is no longer watched)."""
        with self._lock:
            self._outages.pop(key, None)
