"""``BusListener``: one oslo.messaging notification listener and its health.

oslo.messaging (OpenStack's own library) does the protocol work: it unwraps the messagingv2
envelope, takes the transport URL formats operators already use (several hosts, TLS), and
reconnects a dropped connection by itself. What it lacks is a health API, so this module adds
the little that vesagent needs around it:

- the first connection is made in our own thread with our own backoff (a refused login raises
  out of oslo at once; an unreachable broker makes oslo retry forever inside ``start``);
- "connected" is read from the connection kombu holds under oslo (the only place it exists);
- oslo's own log records (a reconnect loop logs every attempt; an undecodable body is logged
  and skipped) are captured instead of propagated: they give the failure reason and count
  bad bodies, and our state-change logs replace their flood.

The listener consumes from a ``pool`` queue bound to the exchange (``nova``), so it gets a
copy of every notification and never takes one from another consumer of the topic.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Callable
from typing import Any

from vesagent.logs import get_logger
from vesagent.notifications.settings import ListenerKey, mask_transport_url

log = get_logger("vesagent.notifications")

OnMessage = Callable[[str, Any], None]
"""``(event_type, payload)`` of one notification, from oslo's dispatch thread."""
OnBadBody = Callable[[], None]
OnState = Callable[[bool, str], None]
"""``(connected, reason)``: called on every change of the connection state."""

CHECK_EVERY = 0.2  # seconds between two looks at the connection
_OSLO_LOGGERS = ("oslo_messaging", "oslo.messaging")  # module name, and oslo_log's spelling


def failure_reason(text: str) -> str:
    """A short, secret-free reason from an oslo/kombu error text."""
    lower = text.lower()
    if "access_refused" in lower or ("login" in lower and "refused" in lower):
        return "credentials refused"
    if "check login credentials" in lower:
        return "credentials refused (connection closed at login)"
    if "refused" in lower or "unreachable" in lower or "timed out" in lower:
        return "broker unreachable"
    if "name or service not known" in lower or "nodename nor servname" in lower:
        return "broker host unknown"
    return mask_transport_url(text.strip().splitlines()[0] if text.strip() else "error")[:200]


class _OsloLogCapture(logging.Handler):
    """Routes oslo.messaging's log records to the listener whose thread logged them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._by_thread: dict[int, BusListener] = {}
        self._lock = threading.Lock()

    def adopt(self, thread_id: int | None, listener: BusListener) -> None:
        if thread_id is not None:
            with self._lock:
                self._by_thread[thread_id] = listener

    def forget(self, listener: BusListener) -> None:
        with self._lock:
            for tid in [t for t, v in self._by_thread.items() if v is listener]:
                del self._by_thread[tid]

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock:
            listener = self._by_thread.get(record.thread or 0)
        if listener is not None:
            with contextlib.suppress(Exception):  # logging must never break the listener
                listener._oslo_record(record)


_capture = _OsloLogCapture()
_capture_installed = threading.Lock()


def _install_capture() -> None:
    with _capture_installed:
        # oslo.messaging's helpers announce their plugins and backends at INFO/DEBUG, and
        # oslo.service warns about eventlet, which vesagent does not use (threading executor).
        warnings.filterwarnings("ignore", message=r"(?s).*[Ee]ventlet is deprecated")
        warnings.filterwarnings("ignore", message="DSA is deprecated")  # dnspython, via eventlet
        for name in ("oslo_service", "stevedore", "kombu", "amqp", "oslo_config"):
            logging.getLogger(name).setLevel(logging.WARNING)
        for name in _OSLO_LOGGERS:
            oslo = logging.getLogger(name)
            if _capture not in oslo.handlers:
                oslo.addHandler(_capture)
                oslo.setLevel(logging.INFO)
                oslo.propagate = False  # it logs every retry: ours log state changes


class _Endpoint:
    """oslo's dispatcher calls one method per priority; every priority means the same here."""

    def __init__(self, on_message: OnMessage) -> None:
        self._on_message = on_message

    def _any(
        self, ctxt: Any, publisher_id: Any, event_type: Any, payload: Any, metadata: Any
    ) -> None:
        self._on_message(event_type, payload)

    info = warn = error = critical = audit = _any


class BusListener:
    """One listener for one (transport_url, topic, exchange); reconnects until stopped."""

    def __init__(
        self,
        key: ListenerKey,
        pool: str,
        on_message: OnMessage,
        on_state: OnState,
        on_bad_body: OnBadBody,
        *,
        retry_max: float = 30.0,
        heartbeat: int = 15,
    ) -> None:
        self.key = key
        self.pool = pool
        self._on_message = on_message
        self._on_state = on_state
        self._on_bad_body = on_bad_body
        self._retry_max = retry_max
        self._heartbeat = heartbeat
        self._stop = threading.Event()
        self._server: Any = None
        self._transport: Any = None
        self.connected = False
        self.reason = "connecting"
        self._thread = threading.Thread(target=self._run, name=f"notify-{key.topic}", daemon=True)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> BusListener:
        _install_capture()
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop consuming and close the connection (bounded wait)."""
        self._stop.set()
        self._thread.join(timeout)

    # -- the supervisor thread ------------------------------------------------------------
    def _run(self) -> None:
        _capture.adopt(threading.get_ident(), self)
        delay = 0.5
        try:
            while not self._stop.is_set():
                try:
                    self._start_server()
                except Exception as exc:  # refused login, bad URL, broker gone mid-start
                    self._close_server()
                    self._set_state(False, failure_reason(f"{type(exc).__name__}: {exc}"))
                    self._stop.wait(delay)
                    delay = min(self._retry_max, delay * 2)
                    continue
                if self._stop.is_set():
                    break
                delay = 0.5
                self._watch()
        finally:
            self._close_server()
            _capture.forget(self)

    def _start_server(self) -> None:
        import oslo_messaging
        from oslo_config import cfg

        conf = cfg.ConfigOpts()
        conf(args=[], project="vesagent", default_config_files=[], default_config_dirs=[])
        self._transport = oslo_messaging.get_notification_transport(
            conf, url=self.key.transport_url
        )
        rabbit = "oslo_messaging_rabbit"
        conf.set_override("heartbeat_timeout_threshold", self._heartbeat, group=rabbit)
        conf.set_override("rabbit_interval_max", max(1, int(self._retry_max)), group=rabbit)
        conf.set_override("kombu_reconnect_delay", 0.5, group=rabbit)
        target = oslo_messaging.Target(topic=self.key.topic, exchange=self.key.exchange)
        self._server = oslo_messaging.get_notification_listener(
            self._transport,
            [target],
            [_Endpoint(self._deliver)],
            executor="threading",
            pool=self.pool,
        )
        # Blocks while the broker is unreachable (oslo retries inside); a refused login
        # raises. Our thread, so a stop() is never held up by it for longer than its join.
        self._server.start()
        _capture.adopt(self._listen_thread_id(), self)

    def _watch(self) -> None:
        while not self._stop.wait(CHECK_EVERY):
            up = self._kombu_connected()
            if up != self.connected:
                self._set_state(up, "connected" if up else self._last_error or "dropped")

    def _deliver(self, event_type: Any, payload: Any) -> None:
        if not self.connected:  # a message proves the connection before our next look
            self._set_state(True, "connected")
        self._on_message(event_type, payload)

    _last_error = ""

    def _oslo_record(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "Failed to process message" in text:
            self._on_bad_body()  # oslo could not decode the body; it rejects and goes on
        elif record.levelno >= logging.ERROR:
            self._last_error = failure_reason(text)
            if self.connected or self.reason != self._last_error:
                self._set_state(False, self._last_error)

    def _set_state(self, connected: bool, reason: str) -> None:
        changed = connected != self.connected or reason != self.reason
        self.connected, self.reason = connected, reason
        if connected:
            self._last_error = ""
        if changed:
            self._on_state(connected, reason)

    # -- oslo internals, read only --------------------------------------------------------
    def _poll_listener(self) -> Any:
        adapter = getattr(self._server, "listener", None)
        return getattr(adapter, "_poll_style_listener", None), adapter

    def _listen_thread_id(self) -> int | None:
        _poll, adapter = self._poll_listener()
        thread = getattr(adapter, "_listen_thread", None)
        return getattr(thread, "ident", None)

    def _kombu_connected(self) -> bool:
        # ConnectionContext -> impl_rabbit.Connection -> kombu.Connection; oslo has no API
        # for "is this listener connected", and kombu's flag is what its reconnect loop uses.
        poll, _adapter = self._poll_listener()
        try:
            return bool(poll.conn.connection.connection.connected)
        except Exception:
            return False

    def _close_server(self) -> None:
        server, transport = self._server, self._transport
        self._server = self._transport = None
        if server is not None:
            with contextlib.suppress(Exception):
                server.stop()
            waiter = threading.Thread(target=server.wait, daemon=True)
            waiter.start()
            waiter.join(2.0)
        if transport is not None:
            with contextlib.suppress(Exception):
                transport.cleanup()
        if self.connected and not self._stop.is_set():
            self._set_state(False, "restarting")

    def __repr__(self) -> str:
        return f"BusListener({self.key!r}, pool={self.pool!r})"
