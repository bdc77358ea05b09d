"""What every simulator shares: a threaded Werkzeug server, request counting, fault knobs.

``SimServer`` serves a Flask app on 127.0.0.1 in a background thread. Its fault knobs work the
same way in all three simulators:

- ``inject(status=503, path_prefix="/v2.1", count=3)``: answer the next matching requests with
  an error (``count=None``: until cleared); ``latency=`` delays them instead or as well.
- ``refuse()`` / ``accept()``: close the listening socket (connection refused) and reopen it
  on the same port.
- ``hang(seconds)``: every request sleeps before being answered (a collector that outlives
  the client's timeout).

The same knobs are reachable over HTTP under ``/_sim/`` (``POST /_sim/faults``,
``DELETE /_sim/faults``, ``GET /_sim/requests``, ``POST /_sim/requests/reset``), so a person
running ``vesagent sim`` can use them with curl.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import socket
import threading
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Self

from flask import Flask, Response, has_request_context, jsonify, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


def current_socket() -> socket.socket | None:
    """The client connection of the request being handled, if any."""
    if not has_request_context():
        return None
    return request.environ.get("werkzeug.socket")


@dataclass
class FaultRule:
    """Answer matching requests with ``status`` (if set) after ``latency`` seconds."""

    path_prefix: str = "/"
    status: int | None = None
    latency: float = 0.0
    count: int | None = None  # None: until cleared
    body: Any = None
    method: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return path.startswith(self.path_prefix) and not path.startswith("/_sim")


@dataclass(frozen=True)
class Seen:
    """One request of the trail: when (``time.monotonic()``), what, and which client made it
    (a short digest of its ``X-Auth-Token``: tells agents apart without keeping a token)."""

    at: float
    method: str
    path: str
    client: str


@dataclass
class RequestLog:
    """Thread-safe counts of requests and of their response body bytes, by ``METHOD /path``
    (no query string), and, once :meth:`keep_trail` is called, every request in order (tests
    of who polled what when)."""

    counts: Counter[str] = field(default_factory=Counter)
    sizes: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    trail: list[Seen] | None = None

    def add(self, method: str, path: str, client: str = "") -> None:
        with self.lock:
            self.counts[f"{method} {path}"] += 1
            if self.trail is not None:
                self.trail.append(Seen(time.monotonic(), method, path, client))

    def keep_trail(self) -> None:
        """Record every request from now on (off by default: it grows with every request)."""
        with self.lock:
            self.trail = []

    def seen(self, prefix: str = "") -> list[Seen]:
        """The trail's requests whose path starts with ``prefix``."""
        with self.lock:
            return [s for s in self.trail or [] if s.path.startswith(prefix)]

    def add_bytes(self, method: str, path: str, size: int) -> None:
        """Count ``size`` response body bytes (as sent, before any transfer encoding)."""
        with self.lock:
            self.sizes[f"{method} {path}"] += size

    @staticmethod
    def _sum(counter: Counter[str], prefix: str, method: str | None) -> int:
        return sum(
            n
            for key, n in counter.items()
            if key.split(" ", 1)[1].startswith(prefix)
            and (method is None or key.split(" ", 1)[0] == method)
        )

    def total(self, prefix: str = "", method: str | None = None) -> int:
        """Requests whose path starts with ``prefix`` (and whose method is ``method``)."""
        with self.lock:
            return self._sum(self.counts, prefix, method)

    def total_bytes(self, prefix: str = "", method: str | None = None) -> int:
        """Response body bytes of the requests ``total`` counts with the same arguments."""
        with self.lock:
            return self._sum(self.sizes, prefix, method)

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()
            self.sizes.clear()


class SimServer:
    """A Flask app on 127.0.0.1 in a daemon thread, with fault knobs and request counts.

    Subclasses build ``self.app`` routes in ``__init__`` (call ``super().__init__`` first).
    """

    name = "sim"
    # A subclass may serve with its own handler (e.g. to control the Date header).
    request_handler: type[WSGIRequestHandler] | None = None

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.app = Flask(f"vesagent.sim.{self.name}")
        self.app.json.sort_keys = False  # type: ignore[attr-defined]
        self.requests = RequestLog()
        self._faults: list[FaultRule] = []
        self._faults_lock = threading.Lock()
        self._hang = 0.0
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._connections_lock = threading.Lock()
        self.app.before_request(self._before)
        self.app.after_request(self._count_bytes)
        self.app.add_url_rule("/_sim/faults", "sim_faults_add", self._http_inject, methods=["POST"])
        self.app.add_url_rule(
            "/_sim/faults", "sim_faults_clear", self._http_clear, methods=["DELETE"]
        )
        self.app.add_url_rule("/_sim/requests", "sim_requests", self._http_requests)
        self.app.add_url_rule(
            "/_sim/requests/reset", "sim_requests_reset", self._http_reset, methods=["POST"]
        )

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Self:
        """Bind (port 0 picks a free port) and serve in a background thread."""
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make_server(
            self.host, self.port, self.app, threaded=True, request_handler=self.request_handler
        )
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sim-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self.host}:{self.port}"

    # -- fault knobs -----------------------------------------------------------------------
    def refuse(self) -> None:
        """Close the listening socket and open keep-alive connections: 'connection refused'."""
        self.stop()
        # Called from a control request, the connection asking must still get its answer.
        self.close_connections(keep=current_socket())

    def close_connections(self, keep: socket.socket | None = None) -> None:
        """Shut down the connections clients keep alive (they outlive the listening socket)."""
        with self._connections_lock:
            open_now = [s for s in self._connections if s is not keep]
            self._connections.clear()
            if keep is not None:
                self._connections.add(keep)
        for sock in open_now:
            # OSError: already closed by the client or by its handler thread.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def accept(self) -> None:
        """Listen again on the same port after ``refuse()``."""
        if self._server is None:
            self.start()

    def hang(self, seconds: float) -> None:
        """Delay every non-control request by ``seconds`` (0 to stop)."""
        self._hang = seconds

    def inject(
        self,
        status: int | None = 503,
        path_prefix: str = "/",
        count: int | None = None,
        latency: float = 0.0,
        body: Any = None,
        method: str | None = None,
    ) -> FaultRule:
        """Add a fault rule; the first matching rule answers a request."""
        rule = FaultRule(path_prefix, status, latency, count, body, method)
        with self._faults_lock:
            self._faults.append(rule)
        return rule

    def clear_faults(self) -> None:
        """Remove every fault rule and stop hanging."""
        with self._faults_lock:
            self._faults.clear()
        self._hang = 0.0

    def _take_fault(self, method: str, path: str) -> FaultRule | None:
        with self._faults_lock:
            for rule in self._faults:
                if rule.matches(method, path):
                    if rule.count is not None:
                        rule.count -= 1
                        if rule.count <= 0:
                            self._faults.remove(rule)
                    return rule
        return None

    def fault_response(self, rule: FaultRule) -> Response:
        """The body a simulator answers with for an injected error status (override per API)."""
        if rule.body is not None:
            return Response(
                rule.body if isinstance(rule.body, str) else jsonify(rule.body).get_data(),
                status=rule.status,
                content_type="application/json",
            )
        return Response(
            f'{{"error": "injected {rule.status}"}}',
            status=rule.status,
            content_type="application/json",
        )

    def _before(self) -> Response | None:
        sock = current_socket()
        if sock is not None:
            with self._connections_lock:
                self._connections.add(sock)
        path = request.path
        if path.startswith("/_sim"):
            return None
        token = request.headers.get("X-Auth-Token", "")
        client = hashlib.blake2b(token.encode(), digest_size=4).hexdigest() if token else ""
        self.requests.add(request.method, path, client)
        if self._hang:
            time.sleep(self._hang)
        rule = self._take_fault(request.method, path)
        if rule is None:
            return None
        if rule.latency:
            time.sleep(rule.latency)
        if rule.status is None:
            return None
        return self.fault_response(rule)

    def _count_bytes(self, response: Response) -> Response:
        path = request.path
        if not path.startswith("/_sim"):
            size = response.calculate_content_length()  # None only for streamed bodies
            self.requests.add_bytes(request.method, path, size or 0)
        return response

    # -- HTTP control ----------------------------------------------------------------------
    def _http_inject(self) -> Response:
        spec = request.get_json(force=True) or {}
        if "hang" in spec:
            self.hang(float(spec["hang"]))
            return jsonify({"hang": self._hang})
        rule = self.inject(
            status=spec.get("status", 503),
            path_prefix=spec.get("path_prefix", "/"),
            count=spec.get("count"),
            latency=float(spec.get("latency", 0.0)),
            body=spec.get("body"),
            method=spec.get("method"),
        )
        return jsonify(rule.__dict__)

    def _http_clear(self) -> Response:
        self.clear_faults()
        return Response(status=204)

    def _http_requests(self) -> Response:
        return jsonify(self.requests.snapshot())

    def _http_reset(self) -> Response:
        self.requests.reset()
        return Response(status=204)
