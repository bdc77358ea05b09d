"""Is the state store reachable? One small write every few seconds, its outcome kept for all.

``/readyz`` must answer at once (a kubelet probe waits one second) while a PostgreSQL that does
not answer makes every store call wait for its connect timeout. So a :class:`StoreWatch` thread
checks the store (a one-row write, the same as a commit needs: a read-only standby fails it) and
keeps the outcome: ``vesagent_store_up``, the reason ``/readyz`` gives, and the state-change
logs (``store.failing`` / ``store.still_failing`` / ``store.recovered``, by ``OutageLog``).
Other parts that see the store fail or succeed (the lease keeper) report to it as well, so the
state changes as soon as any of them notices.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from vesagent.logs import get_logger
from vesagent.metrics import Metrics
from vesagent.outage import OutageLog
from vesagent.store import StoreError

log = get_logger("vesagent.store")

CHECK_EVERY = 2.0
"""Seconds between two checks of the store by the watch thread."""


class StoreWatch:
    """The last known reachability of one store (``where``: its redacted name, for humans).

    ``check`` writes a timestamp into the store's meta table; :meth:`succeeded` and
    :meth:`failed` record an outcome seen elsewhere. Thread-safe (``OutageLog`` is).
    """

    def __init__(
        self,
        store: Any,
        where: str,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
        outages: OutageLog | None = None,
    ) -> None:
        self.store = store
        self.where = where
        self.metrics = metrics
        self._clock = clock
        self._outages = outages or OutageLog(log, "store", clock=clock)
        self.checked = False
        metrics.store_up.set(1)  # until a check says otherwise: startup opened it

    def check(self) -> bool:
        """Write to the store now; record and return whether it worked."""
        try:
            self.store.set_meta("last_write_check", repr(self._clock()))
        except StoreError as exc:
            self.failed(str(exc))
            return False
        finally:
            self.checked = True
        self.succeeded()
        return True

    def succeeded(self) -> None:
        """The store just answered a write."""
        self._outages.succeeded(self.where, store=self.where)
        self.metrics.store_up.set(1)

    def failed(self, error: str) -> None:
        """The store just failed (``error``: the StoreError's text, which has no secret)."""
        self._outages.failed(self.where, error, store=self.where)
        self.metrics.store_up.set(0)

    def reason(self) -> str | None:
        """Why the store is not usable now (for ``/readyz``), or None while it is."""
        since = self._outages.down_since(self.where)
        if since is None:
            return None
        down_for = max(0.0, self._clock() - since)
        return (
            f"state store {self.where} unreachable for {down_for:.0f}s: "
            f"{self._outages.last_error(self.where)}"
        )

    def run(self, stop: threading.Event, every: float = CHECK_EVERY) -> None:
        """Check every ``every`` seconds until ``stop`` is set (the watch's thread)."""
        while not stop.wait(every):
            try:
                self.check()
            except Exception:  # never let the watch die: /readyz would trust a stale answer
                log.exception("store.check_crashed")
