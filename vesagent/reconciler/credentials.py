"""VIM credentials (A&AI esr-system-info) read off the reconcile pass's critical path.

Why: one region whose esr-system-info read is slow (or times out and retries) must not stall a
reconcile pass, nor a REST POST for another region. Reads run on ``max_reads`` daemon worker
threads (at most one read at a time per region); a pass waits for the reads it started for at
most ``wait`` seconds and goes on without the late ones, which are taken up by a later pass
(``on_late_result`` asks for one as soon as they land). Daemon threads, not an executor: a
read hanging on an unreachable A&AI must not hold up the agent's exit.

What is remembered, and for how long:

- good credentials, per ``(region, resource-version)``, for ``CREDENTIALS_TTL`` seconds
  (writing an esr-system-info does not change the region's resource-version, so a rotated
  password is only seen after the TTL, or at once when Keystone refuses the old one:
  ``forget``);
- a region without credentials (no esr-system-info yet: ONAP's onapsdk registers the
  cloud-region first and its esr-system-info seconds later) is NOT remembered: it is read again
  on every pass until they appear;
- a failed read (A&AI error or timeout) puts the region in an exponential backoff
  (``backoff_delay``), which a successful read resets. Meanwhile (and while a read for a new
  resource-version runs) the region's last good credentials stand in, so an edited
  ``vesagent_config`` is not held back by a slow esr-system-info read.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, wait
from dataclasses import dataclass

from cachetools import TTLCache

from vesagent.aai_client import RegionRecord
from vesagent.errors import PermanentError, TemporaryError
from vesagent.logs import get_logger
from vesagent.model import RegionKey, VimCredentials

log = get_logger("vesagent.reconciler")

CREDENTIALS_TTL = 300.0
BACKOFF_INITIAL = 5.0
BACKOFF_MAX = 300.0
MISSING = "no esr-system-info with a service-url"


def backoff_delay(
    failures: int, initial: float = BACKOFF_INITIAL, cap: float = BACKOFF_MAX
) -> float:
    """Seconds before the next read after ``failures`` failed ones in a row (0 after none)."""
    if failures <= 0:
        return 0.0
    return min(cap, initial * 2 ** min(failures - 1, 30))


@dataclass(frozen=True)
class CredentialsView:
    """What one pass knows of a region's credentials: them, or why not (``problem``)."""

    credentials: VimCredentials | None
    problem: str | None = None
    pending: bool = False  # a read is still running (slow A&AI): ask again next pass


class CredentialReader:
    """Reads esr-system-info per region in the background; the pass thread asks ``lookup``.

    ``read`` is ``(record) -> VimCredentials | None`` and raises ``TemporaryError`` or
    ``PermanentError``. Only ``lookup`` (one pass at a time) touches the caches; ``forget``
    may be called from any thread.
    """

    def __init__(
        self,
        read: Callable[[RegionRecord], VimCredentials | None],
        *,
        wait: float = 1.0,
        max_reads: int = 8,
        clock: Callable[[], float] = time.monotonic,
        on_late_result: Callable[[], None] = lambda: None,
        backoff_initial: float = BACKOFF_INITIAL,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self._read = read
        self._wait = wait
        self._max_reads = max_reads
        self._queue: queue.SimpleQueue[tuple[RegionRecord, Future[VimCredentials | None]]] = (
            queue.SimpleQueue()
        )
        self._workers: list[threading.Thread] = []
        self._clock = clock
        self._on_late_result = on_late_result
        self._backoff = (backoff_initial, backoff_max)
        self._good: TTLCache[tuple[RegionKey, str], VimCredentials] = TTLCache(
            100_000, CREDENTIALS_TTL, timer=clock
        )
        # The running read of a region, with the resource-version it was started for.
        self._reads: dict[RegionKey, tuple[str, Future[VimCredentials | None]]] = {}
        self._failures: dict[RegionKey, tuple[int, float, str]] = {}  # count, retry at, error
        self._problems: dict[RegionKey, str] = {}
        self._latest: dict[RegionKey, VimCredentials] = {}  # last good, whatever the version
        self._lock = threading.Lock()
        self._forgotten: set[RegionKey] = set()
        self._late: set[RegionKey] = set()
        self.reads_started = 0

    def forget(self, key: RegionKey) -> None:
        """Keystone refused this region's credentials: read them again at the next pass."""
        with self._lock:
            self._forgotten.add(key)

    def lookup(self, records: Iterable[RegionRecord]) -> dict[RegionKey, CredentialsView]:
        """Credentials for each record, reading what is not known (waits at most ``wait`` s)."""
        records = list(records)
        self._harvest(records, prune=True)
        views: dict[RegionKey, CredentialsView] = {}
        started: list[Future[VimCredentials | None]] = []
        now = self._clock()
        for record in records:
            key = record.key
            # The common case, every pass for every region: known for this resource-version.
            creds = self._good.get((key, record.resource_version))
            if creds is not None:
                views[key] = CredentialsView(creds)
                continue
            if key in self._reads:
                continue
            failure = self._failures.get(key)
            if failure is not None and now < failure[1]:
                continue  # backing off after failed reads
            started.append(self._start(record))
        if started:
            wait(started, timeout=self._wait)
            with self._lock:
                self._late.update(k for k, (_v, f) in self._reads.items() if not f.done())
            self._harvest(records, prune=False)
        for record in records:
            if record.key not in views:
                views[record.key] = self._view(record)
        return views

    def _view(self, record: RegionRecord) -> CredentialsView:
        key = record.key
        creds = self._good.get((key, record.resource_version))
        if creds is not None:
            return CredentialsView(creds)
        failure = self._failures.get(key)
        problem = self._problems.get(key) or (failure[2] if failure else None)
        standin = None if problem == MISSING else self._latest.get(key)
        return CredentialsView(standin, problem, pending=key in self._reads)

    def _start(self, record: RegionRecord) -> Future[VimCredentials | None]:
        future: Future[VimCredentials | None] = Future()
        self._reads[record.key] = (record.resource_version, future)
        self.reads_started += 1
        self._queue.put((record, future))
        if len(self._workers) < min(self._max_reads, len(self._reads)):
            worker = threading.Thread(
                target=self._work, name=f"esr-read-{len(self._workers)}", daemon=True
            )
            self._workers.append(worker)
            worker.start()
        return future

    def _work(self) -> None:
        """A worker thread: read what is queued, for ever (daemon)."""
        while True:
            record, future = self._queue.get()
            try:
                future.set_result(self._read(record))
            except BaseException as exc:  # delivered to the pass thread via the future
                future.set_exception(exc)
            with self._lock:
                late = record.key in self._late
                self._late.discard(record.key)
            if late:
                self._on_late_result()

    def _harvest(self, records: list[RegionRecord], *, prune: bool) -> None:
        """Take the finished reads' results into the caches (pass thread only); with
        ``prune``, forget the regions ``records`` no longer lists."""
        with self._lock:
            forgotten, self._forgotten = self._forgotten, set()
        for key in forgotten:
            self._latest.pop(key, None)
            for cache_key in [k for k in self._good if k[0] == key]:
                self._good.pop(cache_key, None)
        for key, (version, future) in list(self._reads.items()):
            if not future.done():
                continue
            del self._reads[key]
            try:
                creds = future.result()
            except (TemporaryError, PermanentError) as exc:
                self._failed(key, f"cannot read esr-system-info-list: {exc}")
                continue
            except Exception as exc:  # a bug must not end the reconcile loop
                self._failed(key, f"cannot read esr-system-info-list: {type(exc).__name__}")
                continue
            self._failures.pop(key, None)
            if creds is None:
                self._latest.pop(key, None)
                if self._problems.get(key) != MISSING:
                    log.error("credentials.missing", vimid=key.vimid, error=MISSING)
                self._problems[key] = MISSING  # not cached: read again next pass
            else:
                if key in self._problems:
                    log.info("credentials.found", vimid=key.vimid)
                self._problems.pop(key, None)
                if key not in forgotten:
                    self._good[(key, version)] = creds
                    self._latest[key] = creds
        if not prune:
            return
        # Regions no longer listed leave nothing behind.
        listed = {r.key for r in records}
        for table in (self._failures, self._problems, self._latest):
            for key in [k for k in table if k not in listed]:
                del table[key]

    def _failed(self, key: RegionKey, error: str) -> None:
        count = self._failures.get(key, (0, 0.0, ""))[0] + 1
        delay = backoff_delay(count, *self._backoff)
        self._failures[key] = (count, self._clock() + delay, error)
        self._problems.pop(key, None)
        log.warning(
            "credentials.unavailable", vimid=key.vimid, error=error, retry_in_s=round(delay, 1)
        )
