"""A loopback imitation of ONAP DCAE's VES collector, for tests and ``vesagent demo``.

``VesCollectorSim`` serves ``POST /eventListener/{v5|v7}`` (body ``{"event": {...}}``) and
``POST /eventListener/{v5|v7}/eventBatch`` (body ``{"eventList": [...]}``). It applies the real
collector's checks (onap/dcaegen2-collectors-ves 1.12.x) in the collector's order:

1. ``Content-Type`` must be ``application/json``, or Spring answers 415.
2. Basic auth when credentials are configured: 401 POL2000 (``None`` means ``noAuth``).
3. The API version needs a schema: anything but ``v5``/``v7`` gets 400
   ``API version vX is not supported``.
4. ``X-MinorVersion`` may be absent, ``4`` on v5 or ``2`` on v7; otherwise 400
   ``INVALID_CUSTOM_HEADER``.
5. The top-level key must be ``event`` (single) or ``eventList`` (batch): 400 SVC0002.
6. Draft-04 schema validation with format checking: 400 SVC0002, with no detail in the body.
7. Every event of a request must have the same ``domain``: 400 SVC0001.
8. Publishing: 202 ``Successfully send event`` (200 in the backwards-compatible mode), or the
   failure that ``outage()`` sets: 503, 500, a refused connection, or a hang.

Accepted events are recorded in arrival order. Rejected requests are recorded with the reason
the real collector would only have written to its log (the schema errors, for instance).
Tests use the Python handle (``events``, ``wait_for``, ``outage``...); people running
``vesagent sim`` use the same operations under ``/_sim/ves/...``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import numbers
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from http import HTTPStatus
from itertools import islice
from typing import Any
from urllib.parse import unquote

from flask import Response, jsonify, request
from jsonschema import Draft4Validator, FormatChecker, validators
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from vesagent import ves_schema
from vesagent.sim.base import FaultRule, SimServer, current_socket

SCHEMA_VERSIONS: tuple[str, ...] = tuple(ves_schema.SCHEMA_FILES)  # ("v5", "v7")
# The real collector also serves v1-v4 (against CommonEventFormat 27.2, which is not packaged
# here). The sim answers them the way the collector answers an unknown version.
ACCEPTED_MINOR_VERSIONS: dict[str, str] = {"v5": "4", "v7": "2"}
COMPAT_V72 = "v7.2"
OUTAGE_MODES: tuple[str, ...] = ("503", "500", "refuse", "hang")
SUCCESS_BODY = "Successfully send event"
HEALTHY_BODY = "I'm good"
JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain;charset=UTF-8"
MAX_DETAILS = 20
MAX_REJECTED = 1000
MAX_RAW_KEPT = 64 * 1024

EventPredicate = Callable[[dict[str, Any]], bool]


# -- the collector's answers -----------------------------------------------------------------
@dataclass(frozen=True)
class CollectorError:
    """One of the collector's ``ApiException`` answers: a status and a ``requestError`` body.

    The collector spells the exception keys in UpperCamel (``ServiceException``), whereas the
    specs write ``serviceException``.
    """

    status: int
    message_id: str
    text: str
    exception: str = "ServiceException"
    variables: tuple[str, ...] = ()

    def body(self) -> str:
        """The JSON text the collector writes."""
        detail: dict[str, Any] = {"messageId": self.message_id, "text": self.text}
        if self.variables:
            detail["variables"] = list(self.variables)
        return json.dumps({"requestError": {self.exception: detail}}, separators=(",", ":"))


INCORRECT_JSON = CollectorError(400, "SVC0002", "Incorrect JSON payload")
SCHEMA_FAILED = CollectorError(400, "SVC0002", "Bad Parameter (JSON does not conform to schema)")
MIXED_DOMAINS = CollectorError(400, "SVC0001", "Different value of domain fields in Batch Event")
MIXED_NAMESPACES = CollectorError(
    400,
    "SVC0001",
    "Value of stndDefinedNamespace fields have to be same when domain is stndDefined",
)
UNAUTHORIZED = CollectorError(401, "POL2000", "Unauthorized user", exception="PolicyException")
# Dublin and earlier answered this when their internal queue was full; it was removed later.
NO_SERVER_RESOURCES = CollectorError(
    503, "SVC1000", "No server resources (internal processing queue full)"
)
# What the current collector answers (compat v7.2) when publishing to the bus fails.
INTERNAL_ERROR = CollectorError(
    500,
    "SVC2000",
    "The following service error occurred: %1. Error code is %2",
    variables=("Internal Server Error", "500"),
)


@dataclass(frozen=True)
class Verdict:
    """The collector's answer to one request, plus what the sim keeps about it."""

    status: int
    body: str
    content_type: str
    reason: str = ""
    details: tuple[str, ...] = ()
    events: tuple[dict[str, Any], ...] = ()

    @property
    def accepted(self) -> bool:
        """True for 2xx."""
        return 200 <= self.status < 300


def error_verdict(error: CollectorError, reason: str, details: tuple[str, ...] = ()) -> Verdict:
    """A collector ``ApiException`` answer.

    Inference: the controller returns these bodies without setting a content type, so Spring
    sends them as ``text/plain``, although they are JSON.
    """
    return Verdict(error.status, error.body(), TEXT_TYPE, reason, details)


def spring_error(status: int, path: str, reason: str) -> Verdict:
    """Spring Boot's default error body, used for 404, 405 and 415 (the collector defines none)."""
    body = {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "status": status,
        "error": HTTPStatus(status).phrase,
        "path": path,
    }
    return Verdict(status, json.dumps(body), JSON_TYPE, reason)


# -- decisions -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ListenerRequest:
    """What the collector looks at in a ``POST /eventListener/...`` request."""

    path: str
    version: str
    batch: bool
    mimetype: str
    authorization: str | None
    minor_version: str | None
    raw: bytes


def java_split(text: str, sep: str) -> list[str]:
    """``String.split`` as Java does it: trailing empty strings are dropped."""
    parts = text.split(sep)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """The ``(user, password)`` the collector reads from an ``Authorization`` header, or None.

    This copies the collector's parsing (``ApiAuthInterceptor.isAuthorized``): the token is
    whatever follows the first space, whatever the scheme. The password is the text between the
    first and second ``:``, so a password containing ``:`` can never match. User and password
    are trimmed.
    """
    if authorization is None:
        return None
    words = java_split(authorization, " ")
    if len(words) < 2:
        return None
    token = words[1]
    try:
        # Java's decoder does not require the padding, Python's does.
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True).decode()
    except (binascii.Error, ValueError):
        return None
    pieces = java_split(decoded, ":")
    if len(pieces) < 2:
        return None
    return pieces[0].strip(), pieces[1].strip()


def _header(event: Any) -> Mapping[str, Any]:
    header = event.get("commonEventHeader") if isinstance(event, dict) else None
    return header if isinstance(header, dict) else {}


def batch_error(events: tuple[dict[str, Any], ...]) -> CollectorError | None:
    """The collector's ``BatchEventValidator``: one domain, and one namespace for stndDefined.

    The collector runs it on single events too, where it always passes. An empty ``eventList``
    fails it, because the set of domains has size 0.
    """
    domains = {_header(e).get("domain") for e in events}
    if len(domains) != 1:
        return MIXED_DOMAINS
    if domains == {"stndDefined"}:
        namespaces = {_header(e).get("stndDefinedNamespace", "") for e in events}
        if len(namespaces) != 1:
            return MIXED_NAMESPACES
    return None


def schema_problems(version: str, body: Any, limit: int = MAX_DETAILS) -> tuple[str, ...]:
    """Up to ``limit`` schema errors of ``body``, each as ``path: message``; empty when valid."""
    found = islice(fast_validator(version).iter_errors(body), limit)
    return tuple(
        f"{'/'.join(str(p) for p in err.absolute_path) or '(top)'}: {err.message[:300]}"
        for err in found
    )


@dataclass(frozen=True)
class CollectorRules:
    """How this collector is configured: auth, response compatibility, schema check."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    compat: str = COMPAT_V72
    validate: bool = True

    @property
    def success_status(self) -> int:
        """202 with ``collector.response.compatibility=v7.2`` (the default), 200 otherwise."""
        return 202 if self.compat == COMPAT_V72 else 200

    def authorized(self, authorization: str | None) -> bool:
        """True in noAuth mode, or when the Basic credentials match."""
        if self.username is None or self.password is None:
            return True
        credentials = basic_credentials(authorization)
        if credentials is None:
            return False
        user, password = credentials
        user_ok = hmac.compare_digest(user.encode(), self.username.encode())
        password_ok = hmac.compare_digest(password.encode(), self.password.encode())
        return user_ok and password_ok

    def judge(self, req: ListenerRequest) -> Verdict:
        """The collector's answer to ``req``, before publishing (outages come later)."""
        if req.mimetype != JSON_TYPE:
            return spring_error(415, req.path, f"unsupported Content-Type {req.mimetype!r}")
        if not self.authorized(req.authorization):
            return error_verdict(UNAUTHORIZED, "missing or wrong Basic credentials")
        if req.version not in SCHEMA_VERSIONS:
            # The collector really sends this plain text with Content-Type application/json.
            text = f"API version {req.version} is not supported"
            return Verdict(400, text, JSON_TYPE, "unsupported API version")
        expected_minor = ACCEPTED_MINOR_VERSIONS[req.version]
        if req.minor_version is not None and req.minor_version != expected_minor:
            detail = f"X-MinorVersion {req.minor_version!r}; {req.version} accepts {expected_minor}"
            return Verdict(400, "INVALID_CUSTOM_HEADER", TEXT_TYPE, "bad X-MinorVersion", (detail,))
        body: Any
        try:
            body = json.loads(req.raw)
        except ValueError as exc:
            body, problem = None, f"not JSON: {exc}"
        else:
            problem = f"top level is a JSON {type(body).__name__}, not an object"
        if not isinstance(body, dict):
            # The real collector throws an uncaught org.json JSONException here
            # (VesRestController.process) and so most likely answers Spring's generic 500; it
            # answered 400 before 2019. The sim keeps 400 because no retry can fix such a body.
            return error_verdict(INCORRECT_JSON, "body is not a JSON object", (problem,))
        return self._judge_body(req, body)

    def _judge_body(self, req: ListenerRequest, body: dict[str, Any]) -> Verdict:
        key = "eventList" if req.batch else "event"
        if key not in body:
            return error_verdict(
                INCORRECT_JSON, f"no top-level {key!r} key", (f"keys: {list(body)}",)
            )
        if self.validate:
            problems = schema_problems(req.version, body)
            if problems:
                return error_verdict(SCHEMA_FAILED, "does not conform to schema", problems)
        payload = body[key]
        events = tuple(payload) if req.batch and isinstance(payload, list) else (payload,)
        if not all(isinstance(e, dict) for e in events):
            return error_verdict(INCORRECT_JSON, "an event is not a JSON object")
        mixed = batch_error(events)
        if mixed is not None:
            domains = sorted({str(_header(e).get("domain")) for e in events})
            return error_verdict(mixed, "events of different domains", (f"domains: {domains}",))
        return Verdict(self.success_status, SUCCESS_BODY, JSON_TYPE, events=events)


# -- a faster validator with the same verdicts ----------------------------------------------
def _draft4_type_test(name: str) -> Callable[[Any], bool] | None:
    """Draft-04 type membership (bool is neither integer nor number; 1.0 is no integer)."""
    tests: dict[str, Callable[[Any], bool]] = {
        "string": lambda x: isinstance(x, str),
        "number": lambda x: isinstance(x, numbers.Number) and not isinstance(x, bool),
        "integer": lambda x: isinstance(x, int) and not isinstance(x, bool),
        "boolean": lambda x: isinstance(x, bool),
        "object": lambda x: isinstance(x, dict),
        "array": lambda x: isinstance(x, list),
        "null": lambda x: x is None,
    }
    return tests.get(name)


def _leaf_test(subschema: Any) -> Callable[[Any], bool] | None:
    """A direct test for subschemas that only say ``type`` (and maybe a string ``enum``)."""
    if not isinstance(subschema, dict):
        return None
    keywords = subschema.keys() - {"description"}
    kind = subschema.get("type")
    test = _draft4_type_test(kind) if isinstance(kind, str) else None
    if test is None:
        return None
    if keywords == {"type"}:
        return test
    enum = subschema.get("enum")
    if (
        keywords == {"type", "enum"}
        and kind == "string"
        and isinstance(enum, list)
        and all(isinstance(e, str) for e in enum)
    ):
        allowed = frozenset(enum)
        return lambda x: isinstance(x, str) and x in allowed
    return None


def _walk(node: Any) -> Iterator[Any]:
    stack = [node]
    while stack:
        item = stack.pop()
        yield item
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _resolve_local(root: Any, ref: str) -> Any:
    node = root
    for part in ref[2:].split("/"):
        token = unquote(part).replace("~1", "/").replace("~0", "~")
        node = node[token] if isinstance(node, dict) else node[int(token)]
    return node


def _refs_are_local(root: dict[str, Any]) -> bool:
    """True when every ``$ref`` is ``#/...``, resolves, and no ``id`` changes the base URI."""
    for node in _walk(root):
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("id"), str):
            return False
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#/"):
                return False
            try:
                _resolve_local(root, ref)
            except (KeyError, IndexError, ValueError, TypeError):
                return False
    return True


@cache
def fast_validator(version: str) -> Draft4Validator:
    """``ves_schema.validator(version)`` with the same verdicts and errors, about 3x faster.

    jsonschema spends most of its time creating a child validator for every property. This
    subclass (made with ``jsonschema.validators.extend``) changes two keywords:

    - ``properties`` tests leaf subschemas that are only a ``type`` (or a string ``enum``)
      directly, and hands everything else, and every failure, to the normal ``descend``;
    - ``$ref`` looks up each local reference once. That is valid only when every reference is
      ``#/...`` and no ``id`` rebases them, which is checked first (else the plain validator).

    ``tests/sim/test_ves_sim.py`` checks that it agrees with the plain validator.
    """
    root = ves_schema.schema(version)
    if not _refs_are_local(root):
        return ves_schema.validator(version)
    # Keyed by id(); each entry keeps its key object alive, and schemas are never freed.
    plans: dict[int, tuple[Any, list[tuple[str, Callable[[Any], bool] | None, Any]]]] = {}
    targets: dict[str, Any] = {}

    def properties(validator: Any, props: Any, instance: Any, schema: Any) -> Iterator[Any]:
        if not isinstance(instance, dict):
            return
        plan = plans.get(id(props))
        if plan is None:
            plan = (props, [(name, _leaf_test(sub), sub) for name, sub in props.items()])
            plans[id(props)] = plan
        for name, test, sub in plan[1]:
            if name in instance:
                if test is not None and test(instance[name]):
                    continue
                yield from validator.descend(instance[name], sub, path=name, schema_path=name)

    def ref(validator: Any, target: str, instance: Any, schema: Any) -> Iterator[Any]:
        resolved = targets.get(target)
        if resolved is None:
            resolved = targets[target] = _resolve_local(root, target)
        yield from validator.descend(instance, resolved)

    cls = validators.extend(Draft4Validator, {"properties": properties, "$ref": ref})
    return cls(root, format_checker=FormatChecker())


# -- what the sim remembers --------------------------------------------------------------------
@dataclass(frozen=True)
class VesRecord:
    """One accepted event (a batch gives one record per event, in order)."""

    version: str
    event: dict[str, Any]
    batch: bool
    received_at: float  # time.time()
    request_id: str  # like the collector's VESuniqueId: one uuid per request
    index: int  # position in the batch (0 for a single event)
    user: str | None  # Basic user presented, also in noAuth mode (never the password)
    path: str

    @property
    def domain(self) -> str | None:
        """``commonEventHeader.domain``."""
        return _header(self.event).get("domain")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict for ``GET /_sim/ves/events``."""
        return asdict(self)


@dataclass(frozen=True)
class VesRejection:
    """One rejected request: the answer sent and the reason the collector would only log."""

    status: int
    body: str
    reason: str
    details: tuple[str, ...]
    raw_body: str  # decoded, cut at MAX_RAW_KEPT bytes
    path: str
    method: str
    received_at: float
    request_id: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict for ``GET /_sim/ves/rejected``."""
        return asdict(self)


def _raw_text(raw: bytes) -> str:
    if len(raw) <= MAX_RAW_KEPT:
        return raw.decode("utf-8", errors="replace")
    kept = raw[:MAX_RAW_KEPT].decode("utf-8", errors="replace")
    return f"{kept}...(cut, {len(raw)} bytes in all)"


def _matches(predicate: EventPredicate | None, event: dict[str, Any]) -> bool:
    if predicate is None:
        return True
    try:
        return bool(predicate(event))
    except (KeyError, IndexError, TypeError):
        # An event without the field the predicate reads simply does not match.
        return False


def describe_event(record: VesRecord) -> str:
    """A one-line summary for error messages: version, domain, name, source, eventId."""
    header = _header(record.event)
    return (
        f"{record.version} {header.get('domain')} eventName={header.get('eventName')!r} "
        f"sourceName={header.get('sourceName')!r} eventId={header.get('eventId')!r}"
    )


# -- the server --------------------------------------------------------------------------------
class VesCollectorSim(SimServer):
    """DCAE's VES collector on 127.0.0.1: judges, records, and fails on demand.

    ``username``/``password`` ``None`` is the collector's ``noAuth`` (any credentials are
    ignored). ``compat`` other than ``"v7.2"`` answers 200 instead of 202. ``validate=False``
    skips schema validation (for benchmarks only). A request that hangs in ``outage("hang")``
    is held for ``hang_seconds``, or until ``restore()``/``stop()``.

    Unlike the real collector, Basic auth is served on plain HTTP. The real one serves it
    only over HTTPS and answers 400 "Operation not permitted" on its HTTP port.
    """

    name = "ves"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        username: str | None = None,
        password: str | None = None,
        compat: str = COMPAT_V72,
        validate: bool = True,
        hang_seconds: float = 30.0,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither (noAuth)")
        super().__init__(host, port)
        self.rules = CollectorRules(username, password, compat, validate)
        self.hang_seconds = hang_seconds
        self._arrived = threading.Condition(threading.RLock())
        self._records: list[VesRecord] = []
        self._rejected: deque[VesRejection] = deque(maxlen=MAX_REJECTED)
        self._generation = 0  # bumped by clear(), so wait_for rescans
        self._outage_lock = threading.RLock()
        self._outage: str | None = None
        self._refused = False
        self._release = threading.Event()
        self._timer: threading.Timer | None = None
        self._add_routes()

    def _add_routes(self) -> None:
        app = self.app
        app.add_url_rule("/eventListener/<version>", "ves_single", self._single, methods=["POST"])
        app.add_url_rule(
            "/eventListener/<version>/eventBatch", "ves_batch", self._batch, methods=["POST"]
        )
        app.add_url_rule("/healthcheck", "ves_health", self._health, methods=["GET"])
        app.add_url_rule("/_sim/ves/events", "ves_events", self._http_events, methods=["GET"])
        app.add_url_rule(
            "/_sim/ves/events", "ves_events_clear", self._http_clear_events, methods=["DELETE"]
        )
        app.add_url_rule("/_sim/ves/rejected", "ves_rejected", self._http_rejected)
        app.add_url_rule("/_sim/ves/status", "ves_status", self._http_status)
        app.add_url_rule("/_sim/ves/outage", "ves_outage", self._http_outage, methods=["POST"])
        app.add_url_rule("/_sim/ves/restore", "ves_restore", self._http_restore, methods=["POST"])
        app.register_error_handler(404, self._routing_error)
        app.register_error_handler(405, self._routing_error)

    # -- Python handle ---------------------------------------------------------------------
    def events(self, predicate: EventPredicate | None = None) -> list[dict[str, Any]]:
        """The accepted event dicts (as sent) in arrival order, optionally filtered.

        These are the stored dicts themselves, not copies: read them, don't change them.
        """
        with self._arrived:
            return [r.event for r in self._records if _matches(predicate, r.event)]

    def records(self) -> list[VesRecord]:
        """Every accepted event with its version, batch flag, arrival time and request id."""
        with self._arrived:
            return list(self._records)

    def rejected(self) -> list[VesRejection]:
        """The last ``MAX_REJECTED`` rejected requests, oldest first."""
        with self._arrived:
            return list(self._rejected)

    @property
    def accepted_count(self) -> int:
        """Number of events accepted since start or the last ``clear()``."""
        with self._arrived:
            return len(self._records)

    def clear(self) -> None:
        """Forget accepted events and rejected requests (request counts stay)."""
        with self._arrived:
            self._records.clear()
            self._rejected.clear()
            self._generation += 1

    def wait_for(
        self, predicate: EventPredicate | None = None, timeout: float = 10.0, count: int = 1
    ) -> list[dict[str, Any]]:
        """Block until ``count`` accepted events match ``predicate``; return all that match.

        A predicate that raises KeyError/IndexError/TypeError counts as no match. On timeout,
        raises ``TimeoutError`` describing what did arrive and what was rejected.
        """
        deadline = time.monotonic() + timeout
        matched: list[dict[str, Any]] = []
        scanned, generation = 0, -1
        with self._arrived:
            while True:
                if generation != self._generation:
                    generation, scanned, matched = self._generation, 0, []
                fresh = self._records[scanned:]
                matched.extend(r.event for r in fresh if _matches(predicate, r.event))
                scanned += len(fresh)
                if len(matched) >= count:
                    return matched
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(self._timeout_message(predicate, timeout, count, matched))
                self._arrived.wait(remaining)

    def _timeout_message(
        self,
        predicate: EventPredicate | None,
        timeout: float,
        count: int,
        matched: list[dict[str, Any]],
    ) -> str:
        name = getattr(predicate, "__qualname__", repr(predicate)) if predicate else "any event"
        lines = [
            f"VES sim: {len(matched)} of {count} wanted event(s) matched {name} "
            f"within {timeout:g} s (outage now: {self.outage_mode})."
        ]
        lines.append(f"{len(self._records)} event(s) accepted" + (":" if self._records else "."))
        lines.extend(f"  {describe_event(r)}" for r in self._records[-15:])
        lines.append(
            f"{len(self._rejected)} request(s) rejected" + (":" if self._rejected else ".")
        )
        lines.extend(
            f"  {r.status} {r.path}: {r.reason} {list(r.details[:2])}"
            for r in list(self._rejected)[-5:]
        )
        return "\n".join(lines)

    # -- outages ---------------------------------------------------------------------------
    def outage(self, mode: str, seconds: float | None = None) -> None:
        """Fail from now on: ``"503"``, ``"500"``, ``"refuse"`` or ``"hang"``.

        ``503`` is SVC1000 "No server resources", as the pre-Dublin collector answered when its
        queue was full. ``500`` is SVC2000, as today's collector answers when publishing
        fails. ``refuse`` closes the listening socket and every open connection. ``hang``
        holds requests for ``hang_seconds``, then answers 500, with nothing recorded. Requests
        that fail a check before publishing still get their 4xx, as with the real collector.
        ``seconds`` restores automatically after that long.
        """
        if mode not in OUTAGE_MODES:
            raise ValueError(f"unknown outage mode {mode!r}; known: {', '.join(OUTAGE_MODES)}")
        with self._outage_lock:
            self._restore_locked(reopen=mode != "refuse")
            if mode == "refuse":
                self._refused = True
                SimServer.stop(self)
                self.close_connections(keep=current_socket())
            else:
                if mode == "hang":
                    self._release = threading.Event()
                self._outage = mode
            if seconds is not None:
                self._timer = threading.Timer(seconds, self._expire)
                self._timer.daemon = True
                self._timer.start()

    def restore(self) -> None:
        """End any outage: listen again (same port), release hanging requests."""
        with self._outage_lock:
            self._restore_locked(reopen=True)

    def _expire(self) -> None:
        # Runs in the timer's own thread. A timer that was cancelled too late (the outage was
        # changed or the sim stopped meanwhile) is no longer self._timer and does nothing.
        with self._outage_lock:
            if threading.current_thread() is self._timer:
                self._restore_locked(reopen=True)

    def _restore_locked(self, reopen: bool) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._outage = None
        self._release.set()
        if self._refused and reopen:
            self._refused = False
            self.accept()

    @property
    def outage_mode(self) -> str | None:
        """The current outage mode, or None."""
        return "refuse" if self._refused else self._outage

    def stop(self) -> None:
        """Stop serving; hanging requests are released and open connections closed."""
        with self._outage_lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._refused = False
            self._outage = None
            self._release.set()
        super().stop()
        self.close_connections()

    def fault_response(self, rule: FaultRule) -> Response:
        """Injected errors (``inject()``) carry the collector's error bodies."""
        if rule.body is not None or rule.status is None:
            return super().fault_response(rule)
        known = {503: NO_SERVER_RESOURCES, 500: INTERNAL_ERROR, 401: UNAUTHORIZED}
        error = known.get(rule.status)
        if error is None:
            try:
                phrase = HTTPStatus(rule.status).phrase
            except ValueError:
                phrase = "Error"
            error = CollectorError(
                rule.status, "SVC2000", INTERNAL_ERROR.text, variables=(phrase, str(rule.status))
            )
        return Response(error.body(), status=rule.status, content_type=TEXT_TYPE)

    # -- connections -----------------------------------------------------------------------
    # -- the listener ----------------------------------------------------------------------
    def _single(self, version: str) -> Response:
        return self._listen(version, batch=False)

    def _batch(self, version: str) -> Response:
        return self._listen(version, batch=True)

    def _listen(self, version: str, batch: bool) -> Response:
        arrived = time.time()
        req = ListenerRequest(
            path=request.path,
            version=version,
            batch=batch,
            mimetype=request.mimetype,
            authorization=request.headers.get("Authorization"),
            minor_version=request.headers.get("X-MinorVersion"),
            raw=request.get_data(cache=False),
        )
        request_id = str(uuid.uuid4())
        verdict = self.rules.judge(req)
        if verdict.accepted:
            verdict = self._publish(verdict)
        if verdict.accepted:
            self._remember_events(req, verdict, request_id, arrived)
        else:
            self._remember_rejection(req.path, req.raw, verdict, request_id, arrived)
        return Response(verdict.body, status=verdict.status, content_type=verdict.content_type)

    def _publish(self, verdict: Verdict) -> Verdict:
        """Where the real collector publishes to the bus, and where outages strike."""
        mode = self._outage
        if self._refused:
            # A request that slipped in on a connection opened before "refuse": drop it.
            self.close_connections()
            return error_verdict(INTERNAL_ERROR, "outage refuse: connection dropped")
        if mode == "503":
            return error_verdict(NO_SERVER_RESOURCES, "outage 503")
        if mode == "500":
            return error_verdict(INTERNAL_ERROR, "outage 500")
        if mode == "hang":
            release = self._release
            released = release.wait(self.hang_seconds)
            why = "released by restore/stop" if released else f"after {self.hang_seconds:g} s"
            return error_verdict(INTERNAL_ERROR, f"outage hang: answered {why}")
        return verdict

    def _remember_events(
        self, req: ListenerRequest, verdict: Verdict, request_id: str, arrived: float
    ) -> None:
        credentials = basic_credentials(req.authorization)
        user = credentials[0] if credentials else None
        fresh = [
            VesRecord(req.version, event, req.batch, arrived, request_id, i, user, req.path)
            for i, event in enumerate(verdict.events)
        ]
        with self._arrived:
            self._records.extend(fresh)
            self._arrived.notify_all()

    def _remember_rejection(
        self, path: str, raw: bytes, verdict: Verdict, request_id: str, arrived: float
    ) -> None:
        rejection = VesRejection(
            status=verdict.status,
            body=verdict.body,
            reason=verdict.reason,
            details=verdict.details,
            raw_body=_raw_text(raw),
            path=path,
            method=request.method,
            received_at=arrived,
            request_id=request_id,
        )
        with self._arrived:
            self._rejected.append(rejection)

    def _routing_error(self, exc: HTTPException) -> Response:
        status = exc.code or 404
        verdict = spring_error(status, request.path, f"no route ({status})")
        if not request.path.startswith("/_sim"):
            raw = request.get_data()
            self._remember_rejection(request.path, raw, verdict, str(uuid.uuid4()), time.time())
        response = Response(verdict.body, status=status, content_type=verdict.content_type)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    def _health(self) -> Response:
        return Response(HEALTHY_BODY, status=200, content_type=TEXT_TYPE)

    # -- HTTP control ----------------------------------------------------------------------
    def _http_events(self) -> Response:
        domain = request.args.get("domain")
        version = request.args.get("version")
        chosen = [
            r.to_json()
            for r in self.records()
            if (domain is None or r.domain == domain) and (version is None or r.version == version)
        ]
        return jsonify({"count": len(chosen), "events": chosen})

    def _http_clear_events(self) -> Response:
        self.clear()
        return Response(status=204)

    def _http_rejected(self) -> Response:
        chosen = [r.to_json() for r in self.rejected()]
        return jsonify({"count": len(chosen), "rejected": chosen})

    def _http_status(self) -> Response:
        return jsonify(
            {
                "outage": self.outage_mode,
                "accepted": self.accepted_count,
                "rejected": len(self.rejected()),
                "auth": "basic" if self.rules.username is not None else "noAuth",
                "compat": self.rules.compat,
                "validate": self.rules.validate,
            }
        )

    def _http_outage(self) -> Response | tuple[Response, int]:
        spec = request.get_json(force=True, silent=True)
        if not isinstance(spec, dict):
            return jsonify({"error": 'body must be {"mode": ..., "seconds": ...}'}), 400
        mode, seconds = spec.get("mode"), spec.get("seconds")
        if mode not in OUTAGE_MODES:
            return jsonify({"error": f"mode must be one of {list(OUTAGE_MODES)}"}), 400
        number = isinstance(seconds, int | float) and not isinstance(seconds, bool)
        if seconds is not None and (not number or seconds <= 0):
            return jsonify({"error": "seconds must be a positive number"}), 400
        if mode == "refuse" and seconds is None:
            # Nothing could reach /_sim/ves/restore while the socket is closed.
            return jsonify({"error": "refuse over HTTP needs seconds (auto restore)"}), 400
        self.outage(str(mode), None if seconds is None else float(seconds))
        response = jsonify({"outage": mode, "seconds": seconds})
        if mode == "refuse":
            response.headers["Connection"] = "close"
        return response

    def _http_restore(self) -> Response:
        self.restore()
        return jsonify({"outage": None})
