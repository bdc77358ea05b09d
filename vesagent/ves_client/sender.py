"""Delivery: drains the outbox to each VES collector, in order, one thread per collector.

An event leaves the outbox only on a 2xx. 5xx, 408, 429, timeouts and refused connections are
retried with capped, jittered exponential backoff (tenacity) for as long as the event is within
the outbox limits, with the same eventId and sequence; a collector that is down delays only its
own events. Other 4xx move the event to the dead-letter table with the response: a batch that
is refused is split and its events sent one by one, so one bad event never blocks the others.
Heartbeats are not buffered: a failed attempt drops them (a stale heartbeat means nothing).

Credentials are not stored with the events: the reconciler keeps a ``CollectorDirectory`` of the
current subscriptions, and events wait until their collector is known.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from tenacity import Retrying, retry_if_exception_type, stop_when_event_set, wait_exponential_jitter

from vesagent import history
from vesagent.errors import TemporaryError, classify_http_status
from vesagent.logs import get_logger
from vesagent.store import OutboxRow, Store
from vesagent.ves_client.encode import plan_batches

log = get_logger("vesagent.sender")

MAX_BATCH_BYTES = 1_000_000
MAX_BATCH_EVENTS = 500
FAILURE_LOG_EVERY = 60.0  # seconds between two log lines about the same failing collector


@dataclass(frozen=True)
class CollectorAuth:
    """How to reach one collector; ``repr`` hides the password."""

    endpoint: str
    username: str | None = None
    password: str | None = None
    timeout: float = 5.0
    verify: bool | str = True

    def __repr__(self) -> str:
        return f"CollectorAuth(endpoint={self.endpoint!r}, username={self.username!r})"

    @property
    def batch_url(self) -> str:
        return self.endpoint.rstrip("/") + "/eventBatch"


class CollectorDirectory:
    """Current collector endpoints and credentials, keyed by endpoint URL (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_endpoint: dict[str, CollectorAuth] = {}

    def replace(self, entries: dict[str, CollectorAuth]) -> None:
        with self._lock:
            self._by_endpoint = dict(entries)

    def merge(self, entries: dict[str, CollectorAuth]) -> None:
        with self._lock:
            self._by_endpoint.update(entries)

    def endpoints(self) -> list[str]:
        with self._lock:
            return list(self._by_endpoint)

    def get(self, endpoint: str) -> CollectorAuth | None:
        with self._lock:
            return self._by_endpoint.get(endpoint)


def wrap_batch(bodies: list[bytes]) -> bytes:
    """``{"eventList": [...]}`` from already-encoded events, without re-encoding them."""
    return b'{"eventList":[' + b",".join(bodies) + b"]}"


def wrap_single(body: bytes) -> bytes:
    return b'{"event":' + body + b"}"


@dataclass
class DeliveryOutcome:
    """A collector's answer that is not worth retrying: its status and (truncated) body."""

    status: int | None
    body: str


class Sender:
    """Owns one delivery thread per collector that has events waiting."""

    def __init__(
        self,
        store: Store,
        directory: CollectorDirectory,
        *,
        metrics: Any = None,
        max_batch_events: int = MAX_BATCH_EVENTS,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        backoff_initial: float = 0.5,
        backoff_max: float = 60.0,
        scan_interval: float = 1.0,
        session_factory: Callable[[], requests.Session] = requests.Session,
    ) -> None:
        self._store = store
        self._directory = directory
        self._metrics = metrics
        self._max_events = max_batch_events
        self._max_bytes = max_batch_bytes
        self._backoff = (backoff_initial, backoff_max)
        self._scan_interval = scan_interval
        self._session_factory = session_factory
        self._stop = threading.Event()
        self._wake: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None
        self.last_success: dict[str, float] = {}
        self.last_error: dict[str, str] = {}
        self._down_since: dict[str, float] = {}
        self._last_failure_log: dict[str, float] = {}

    def start(self) -> None:
        self._supervisor = threading.Thread(target=self._supervise, name="send-sup", daemon=True)
        self._supervisor.start()

    def wake(self, collector: str | None = None) -> None:
        """New events for ``collector``: deliver now rather than at the next scan."""
        with self._lock:
            if collector is not None and collector not in self._threads:
                self._spawn(collector)
            targets = [self._wake[collector]] if collector in self._wake else self._wake.values()
            for event in list(targets):
                event.set()

    def stop(self, grace: float = 5.0) -> None:
        """Flush what can be flushed within ``grace`` seconds, then stop every thread."""
        deadline = time.monotonic() + grace
        self.wake()
        while time.monotonic() < deadline and self._flushable():
            time.sleep(0.05)
        self._stop.set()
        self.wake()
        for thread in list(self._threads.values()):
            thread.join(max(0.1, deadline - time.monotonic()))
        if self._supervisor is not None:
            self._supervisor.join(1.0)

    def _flushable(self) -> bool:
        for collector in self._store.collectors():
            if self._directory.get(collector) is not None and collector not in self.last_error:
                return True
        return False

    # -- threads -------------------------------------------------------------------------
    def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                self._enforce_limits()
                for collector in self._store.collectors():
                    with self._lock:
                        if collector not in self._threads:
                            self._spawn(collector)
            except Exception:
                log.exception("sender.scan_failed")
            self._stop.wait(self._scan_interval)

    def _enforce_limits(self) -> None:
        """Drop the oldest events beyond the outbox limits (age, count, bytes), loudly."""
        for collector, domain, dropped in self._store.enforce_limits():
            self._count(collector, "dropped", dropped)
            log.warning("outbox.dropped_oldest", collector=collector, domain=domain, events=dropped)

    def _spawn(self, collector: str) -> None:
        self._wake[collector] = threading.Event()
        thread = threading.Thread(
            target=self._run, args=(collector,), name=f"send-{len(self._threads)}", daemon=True
        )
        self._threads[collector] = thread
        thread.start()

    def _run(self, collector: str) -> None:
        session = self._session_factory()
        wake = self._wake[collector]
        while not self._stop.is_set():
            wake.clear()  # before reading the outbox: a wake-up during delivery is not lost
            try:
                delivered = self._deliver_with_retry(collector, session)
            except Exception:  # never let the delivery thread die
                log.exception("sender.crashed", collector=collector)
                delivered = 0
            if not delivered:
                wake.wait(self._scan_interval)
        session.close()

    def _deliver_with_retry(self, collector: str, session: requests.Session) -> int:
        """Deliver one batch, retrying temporary failures with backoff; returns events sent."""
        initial, maximum = self._backoff
        retrying = Retrying(
            retry=retry_if_exception_type(TemporaryError),
            wait=wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial),
            stop=stop_when_event_set(self._stop),
            sleep=self._stop.wait,
            reraise=False,
            retry_error_callback=lambda state: 0,
        )
        return retrying(self._deliver_once, collector, session)

    def _deliver_once(self, collector: str, session: requests.Session) -> int:
        auth = self._directory.get(collector)
        if auth is None:
            return 0  # no subscription known (yet): wait, events age out by the outbox limits
        rows = self._store.pending(collector, limit=self._max_events, max_bytes=self._max_bytes)
        if not rows:
            return 0
        plan = plan_batches(
            [(r.domain, len(r.body)) for r in rows], self._max_bytes, self._max_events
        )
        batch = rows[plan[0]]
        try:
            outcome = self._post(session, auth, batch)
        except TemporaryError as exc:
            history.record_sent(batch, getattr(exc, "status", None), str(exc))  # console
            dropped = self._store.failed([r.id for r in batch])
            self._count(collector, "retried", len(batch) - dropped)
            self._count(collector, "dropped", dropped)
            self._failing(collector, str(exc), dropped)
            raise
        if outcome.status is not None and 200 <= outcome.status < 300:
            self._store.ack([r.id for r in batch])
            self._count(collector, "ok", len(batch))
            self._recovered(collector)
            return len(batch)
        # A permanent refusal: find the culprit(s) one by one, keep the rest flowing.
        if len(batch) > 1:
            sent = 0
            for row in batch:
                sent += self._deliver_single(collector, session, auth, row)
            return max(sent, 1)
        self._dead_letter(collector, batch, outcome)
        return 1

    def _failing(self, collector: str, error: str, dropped: int) -> None:
        """Log the first failure at once, then at most once a minute: a state, not a flood."""
        now = time.time()
        first = collector not in self.last_error
        self.last_error[collector] = error
        self._down_since.setdefault(collector, now)
        if self._metrics is not None:
            self._metrics.collector_up.labels(collector).set(0)
        if first or now - self._last_failure_log.get(collector, 0.0) >= FAILURE_LOG_EVERY:
            self._last_failure_log[collector] = now
            log.warning(
                "delivery.failing" if first else "delivery.still_failing",
                collector=collector,
                error=error,
                down_for_s=round(now - self._down_since[collector], 1),
                waiting=self._store.depth(collector),
                heartbeats_dropped=dropped,
            )

    def _recovered(self, collector: str) -> None:
        now = time.time()
        self.last_success[collector] = now
        if self._metrics is not None:
            self._metrics.collector_up.labels(collector).set(1)
        if self.last_error.pop(collector, None) is not None:
            since = self._down_since.pop(collector, now)
            self._last_failure_log.pop(collector, None)
            log.info(
                "delivery.recovered",
                collector=collector,
                down_for_s=round(now - since, 1),
                waiting=self._store.depth(collector),
            )

    def _deliver_single(
        self, collector: str, session: requests.Session, auth: CollectorAuth, row: OutboxRow
    ) -> int:
        outcome = self._post(session, auth, [row])  # TemporaryError propagates to the retry
        if outcome.status is not None and 200 <= outcome.status < 300:
            self._store.ack([row.id])
            self._count(collector, "ok", 1)
            self._recovered(collector)
            return 1
        self._dead_letter(collector, [row], outcome)
        return 0

    def _dead_letter(self, collector: str, rows: list[OutboxRow], outcome: DeliveryOutcome) -> None:
        self._store.dead_letter([r.id for r in rows], outcome.status or 0, outcome.body)
        self._count(collector, "dead_lettered", len(rows))
        log.error(
            "delivery.rejected",
            collector=collector,
            status=outcome.status,
            response=outcome.body[:500],
            event_ids=[r.event_id for r in rows][:10],
        )

    def _post(
        self, session: requests.Session, auth: CollectorAuth, rows: list[OutboxRow]
    ) -> DeliveryOutcome:
        if len(rows) == 1:
            url, data = auth.endpoint, wrap_single(rows[0].body)
        else:
            url, data = auth.batch_url, wrap_batch([r.body for r in rows])
        basic = (auth.username, auth.password or "") if auth.username else None
        try:
            response = session.post(
                url,
                data=data,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                auth=basic,
                timeout=auth.timeout,
                verify=auth.verify,
            )
        except requests.Timeout as exc:
            self._count_request(auth.endpoint, "timeout")
            raise TemporaryError(f"{url}: timed out after {auth.timeout}s") from exc
        except requests.ConnectionError as exc:
            self._count_request(auth.endpoint, "connection_error")
            raise TemporaryError(f"{url}: cannot connect ({type(exc).__name__})") from exc
        self._count_request(auth.endpoint, str(response.status_code))
        history.record_sent(rows, response.status_code, response.text[:300])  # console
        kind = classify_http_status(response.status_code)
        if kind is TemporaryError:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            raise TemporaryError(
                f"{url}: HTTP {response.status_code} {response.text[:200]}", delay=retry_after
            )
        if kind is not None and response.status_code == 401:
            log.error("delivery.unauthorized", collector=auth.endpoint)
        return DeliveryOutcome(response.status_code, response.text[:4096])

    def _count(self, collector: str, outcome: str, n: int) -> None:
        if self._metrics is not None and n:
            self._metrics.deliveries.labels(collector, outcome).inc(n)

    def _count_request(self, collector: str, status: str) -> None:
        if self._metrics is not None:
            self._metrics.delivery_requests.labels(collector, status).inc()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
