"""Delivery: drains the outbox to each VES collector, in order, one thread per collector.

An event leaves the outbox only on a 2xx. What else the collector answers is classified once by
``vesagent.errors.error_for_status`` and decides the event's fate (CONTRACT section 5):

- 5xx, 408, 429, timeouts and refused connections (``TemporaryError``) are retried with capped,
  jittered exponential backoff, never sooner than the collector's ``Retry-After``, for as long
  as the event is within the outbox limits, with the same eventId and sequence.
- 401 and 403 (``CredentialsRefused``, ``PermissionDenied``: the collector refuses the agent's
  credentials) are an outage of that collector too: its events stay queued,
  ``vesagent_collector_up`` is 0, the log says "credentials refused", and delivery resumes by
  itself when the reconciler hands over new credentials (``CollectorDirectory`` tells the
  sender, which retries at once).
- Only a verdict on an event's content (any other 4xx) moves it to the dead letters with the
  collector's status and a short excerpt of its answer. A refused batch is split and its events
  sent one by one, so one bad event never blocks the others. Dead letters can be re-queued
  after a fix (``Store.requeue_dead_letters``).

A collector that is down delays only its own events. Heartbeats are not buffered: a failed
attempt drops them (a stale heartbeat means nothing). Credentials are not stored with the
events: the reconciler keeps a ``CollectorDirectory`` of the current subscriptions, and events
wait until their collector is known.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import requests
from prometheus_client import CollectorRegistry
from tenacity import Retrying, retry_if_exception_type, stop_when_event_set, wait_exponential_jitter

from vesagent import history
from vesagent.errors import (
    CredentialsRefused,
    PermissionDenied,
    TemporaryError,
    error_for_status,
    excerpt,
)
from vesagent.logs import get_logger
from vesagent.metrics import Metrics
from vesagent.model import CollectorAuth as CollectorAuth  # moved to the domain model
from vesagent.outage import OutageLog
from vesagent.retrying import wait_honouring
from vesagent.store import OutboxRow, Store
from vesagent.ves_client.encode import plan_batches

log = get_logger("vesagent.sender")

MAX_BATCH_BYTES = 1_000_000
MAX_BATCH_EVENTS = 500
#: What makes a collector's events wait (an outage) rather than be dead-lettered.
HOLDING_ERRORS = (TemporaryError, CredentialsRefused, PermissionDenied)


class CollectorDirectory:
    """Current collector endpoints and credentials, keyed by endpoint URL (thread-safe).

    ``watch`` registers a callback told which endpoints are new or changed (e.g. a password
    fixed in A&AI), so a sender held by refused credentials retries at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_endpoint: dict[str, CollectorAuth] = {}
        self._watchers: list[Callable[[list[str]], None]] = []

    def watch(self, callback: Callable[[list[str]], None]) -> None:
        with self._lock:
            self._watchers.append(callback)

    def replace(self, entries: dict[str, CollectorAuth]) -> None:
        self._update(entries, keep_others=False)

    def merge(self, entries: dict[str, CollectorAuth]) -> None:
        self._update(entries, keep_others=True)

    def _update(self, entries: dict[str, CollectorAuth], *, keep_others: bool) -> None:
        with self._lock:
            changed = [e for e, auth in entries.items() if self._by_endpoint.get(e) != auth]
            if keep_others:
                self._by_endpoint.update(entries)
            else:
                self._by_endpoint = dict(entries)
            watchers = list(self._watchers)
        if changed:
            for callback in watchers:  # outside the lock: a watcher may read the directory
                callback(changed)

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


@dataclass(frozen=True)
class DeliveryOutcome:
    """A collector's answer that is not worth retrying: its status and a cleaned excerpt."""

    status: int | None
    excerpt: str


class Sender:
    """Owns one delivery thread per collector that has events waiting.

    ``last_error`` and ``last_reason`` (``"unreachable"``, ``"credentials refused"``) say why
    a collector is failing; ``last_success`` when it last accepted something.
    """

    def __init__(
        self,
        store: Store,
        directory: CollectorDirectory,
        *,
        metrics: Metrics | None = None,
        max_batch_events: int = MAX_BATCH_EVENTS,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        backoff_initial: float = 0.5,
        backoff_max: float = 60.0,
        scan_interval: float = 1.0,
        session_factory: Callable[[], requests.Session] = requests.Session,
    ) -> None:
        self._store = store
        self._directory = directory
        # A private registry when none is shared: the counting code never checks for None.
        self._metrics = metrics if metrics is not None else Metrics(CollectorRegistry())
        self._max_events = max_batch_events
        self._max_bytes = max_batch_bytes
        self._backoff = (backoff_initial, backoff_max)
        self._scan_interval = scan_interval
        self._session_factory = session_factory
        self._stop = threading.Event()
        self._wake: dict[str, threading.Event] = {}
        # Set to cut a backoff short: new credentials for the collector, or stop().
        self._interrupt: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None
        self.last_success: dict[str, float] = {}
        self.last_error: dict[str, str] = {}
        self.last_reason: dict[str, str] = {}
        self._outages = OutageLog(log, "delivery")
        directory.watch(self._credentials_changed)

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

    def _credentials_changed(self, collectors: Iterable[str]) -> None:
        """The directory has new settings for these collectors: retry a held one now."""
        with self._lock:
            for collector in collectors:
                if collector in self._interrupt:
                    self._interrupt[collector].set()
                    self._wake[collector].set()

    def stop(self, grace: float = 5.0) -> None:
        """Flush what can be flushed within ``grace`` seconds, then stop every thread."""
        deadline = time.monotonic() + grace
        self.wake()
        while time.monotonic() < deadline and self._flushable():
            time.sleep(0.05)
        self._stop.set()
        with self._lock:
            for event in self._interrupt.values():
                event.set()
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
        self._interrupt[collector] = threading.Event()
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
        """Deliver one batch, retrying an outage with backoff; returns events sent."""
        initial, maximum = self._backoff
        interrupt = self._interrupt[collector]

        def pause(seconds: float) -> None:
            # New credentials (or stop) end the wait early; new events do not: a collector
            # that is down is not hammered because the pollers keep producing.
            if interrupt.wait(seconds):
                interrupt.clear()

        retrying = Retrying(
            retry=retry_if_exception_type(HOLDING_ERRORS),
            wait=wait_honouring(
                wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)
            ),
            stop=stop_when_event_set(self._stop),
            sleep=pause,
            reraise=False,
            retry_error_callback=lambda state: 0,
        )
        return retrying(self._deliver_once, collector, session)

    def _deliver_once(self, collector: str, session: requests.Session) -> int:
        auth = self._directory.get(collector)
        if auth is None:
            return 0  # no subscription known (yet): wait, events age out by the outbox limits
        if not self._store.claim_collector(collector):
            return 0  # shared store: another replica delivers this queue; we take over if it dies
        rows = self._store.pending(collector, limit=self._max_events, max_bytes=self._max_bytes)
        if not rows:
            return 0
        plan = plan_batches(
            [(r.domain, len(r.body)) for r in rows], self._max_bytes, self._max_events
        )
        batch = rows[plan[0]]
        try:
            outcome = self._post(session, auth, batch)
        except HOLDING_ERRORS as exc:
            history.record_sent(batch, exc.status, str(exc))  # the console's last events
            self._held(collector, batch, exc)
            raise
        if outcome is None:
            self._delivered(collector, batch)
            return len(batch)
        # A verdict on the content: find the culprit(s) one by one, keep the rest flowing.
        if len(batch) > 1:
            sent = 0
            for row in batch:
                sent += self._deliver_single(collector, session, auth, row)
            return max(sent, 1)
        self._dead_letter(collector, batch, outcome)
        return 1

    def _deliver_single(
        self, collector: str, session: requests.Session, auth: CollectorAuth, row: OutboxRow
    ) -> int:
        try:
            outcome = self._post(session, auth, [row])
        except HOLDING_ERRORS as exc:
            self._held(collector, [row], exc)
            raise  # to the retry loop of _deliver_with_retry
        if outcome is None:
            self._delivered(collector, [row])
            return 1
        self._dead_letter(collector, [row], outcome)
        return 0

    def _delivered(self, collector: str, rows: list[OutboxRow]) -> None:
        self._store.ack([r.id for r in rows])
        self._count(collector, "ok", len(rows))
        self._recovered(collector)

    def _held(self, collector: str, rows: list[OutboxRow], exc: Exception) -> None:
        """An outage: the events stay queued (heartbeats excepted) for the next attempt."""
        dropped = self._store.failed([r.id for r in rows])
        self._count(collector, "retried", len(rows) - dropped)
        self._count(collector, "dropped", dropped)
        refused = isinstance(exc, CredentialsRefused | PermissionDenied)
        self._failing(collector, str(exc), "credentials refused" if refused else "unreachable")

    def _failing(self, collector: str, error: str, reason: str) -> None:
        """Log the first failure at once, then at most once a minute: a state, not a flood."""
        if self.last_reason.get(collector, reason) != reason:
            self._outages.forget(collector)  # a new kind of outage is logged as a new one
        self.last_error[collector] = error
        self.last_reason[collector] = reason
        self._metrics.collector_up.labels(collector).set(0)
        self._outages.failed(
            collector,
            error,
            details=lambda: {"waiting": self._store.depth(collector)},
            collector=collector,
            reason=reason,
        )

    def _recovered(self, collector: str) -> None:
        self.last_success[collector] = time.time()
        self._metrics.collector_up.labels(collector).set(1)
        self.last_reason.pop(collector, None)
        self.last_error.pop(collector, None)
        self._outages.succeeded(
            collector,
            details=lambda: {"waiting": self._store.depth(collector)},
            collector=collector,
        )

    def _dead_letter(self, collector: str, rows: list[OutboxRow], outcome: DeliveryOutcome) -> None:
        self._store.dead_letter([r.id for r in rows], outcome.status or 0, outcome.excerpt)
        self._count(collector, "dead_lettered", len(rows))
        log.error(
            "delivery.rejected",
            collector=collector,
            status=outcome.status,
            response=outcome.excerpt,
            event_ids=[r.event_id for r in rows][:10],
        )

    def _post(
        self, session: requests.Session, auth: CollectorAuth, rows: list[OutboxRow]
    ) -> DeliveryOutcome | None:
        """POST the rows: None when accepted, the verdict when refused for their content.

        Raises ``TemporaryError``, ``CredentialsRefused`` or ``PermissionDenied`` when the
        collector cannot take them now (``HOLDING_ERRORS``).
        """
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
            raise TemporaryError(
                f"POST {url}: timed out after {auth.timeout}s", service="ves"
            ) from exc
        except requests.ConnectionError as exc:
            self._count_request(auth.endpoint, "connection_error")
            raise TemporaryError(
                f"POST {url}: cannot connect ({type(exc).__name__})", service="ves"
            ) from exc
        self._count_request(auth.endpoint, str(response.status_code))
        history.record_sent(rows, response.status_code, excerpt(response.content))  # console
        message = f"POST {url}"
        if response.status_code in (401, 403):
            message += f": credentials refused (user {auth.username or '(none)'!r})"
        error = error_for_status(
            "ves", response.status_code, message, headers=response.headers, body=response.content
        )
        if error is None:
            if 200 <= response.status_code < 300:
                return None
            # 1xx/3xx (requests follows redirects): not accepted, not the content's fault.
            raise TemporaryError(f"{message}: HTTP {response.status_code}", service="ves")
        if isinstance(error, HOLDING_ERRORS):
            raise error
        return DeliveryOutcome(response.status_code, error.excerpt)

    def _count(self, collector: str, outcome: str, n: int) -> None:
        if n:
            self._metrics.deliveries.labels(collector, outcome).inc(n)

    def _count_request(self, collector: str, status: str) -> None:
        self._metrics.delivery_requests.labels(collector, status).inc()
