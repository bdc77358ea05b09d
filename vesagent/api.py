"""The agent's HTTP face: the seed's REST API per vimid, ``/metrics``, ``/healthz``, ``/readyz``.

A&AI stays the single source of truth: POST and DELETE edit the region's ``cloud-extra-info``
in A&AI by read-modify-write (every other key kept, ``resource-version`` honoured, re-read and
retried on 412) and then run a reconcile pass at once, so the pollers follow before the
response is sent. GET shows the configuration as A&AI stores it, passwords masked, with the
runtime status of each backlog. Routes are served under ``/api/multicloud/v0/`` and, like the
seed design, under ``/api/multicloud-ocata/v0/``.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import ssl
import threading
from collections.abc import Callable
from typing import Any

from cheroot import server as cheroot_server
from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from flask import Blueprint, Flask, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from vesagent.config import (
    CONFIG_KEY,
    MAX_CLOUD_EXTRA_INFO_BYTES,
    masked,
    merge_into_cloud_extra_info,
    parse_cloud_extra_info,
    parse_vesagent_config,
    remove_from_cloud_extra_info,
)
from vesagent.errors import (
    ConfigError,
    Conflict,
    CredentialsRefused,
    PermanentError,
    PermissionDenied,
    Rejected,
    TemporaryError,
)
from vesagent.logs import get_logger
from vesagent.model import RegionKey
from vesagent.openapi import openapi_document
from vesagent.secrets import keep_masked_secrets
from vesagent.status_model import (
    RequeueRequest,
    RequeueResult,
    dead_letter_list,
    region_detail,
    region_list,
)
from vesagent.ui import register_console
from vesagent.vimid import InvalidVimid
from vesagent.vimid import parse_vimid as checked_vimid

log = get_logger("vesagent.api")
PREFIXES = ("/api/multicloud/v0", "/api/multicloud-ocata/v0")
WRITE_ATTEMPTS = 5
MAX_BODY_BYTES = MAX_CLOUD_EXTRA_INFO_BYTES
"""Request bodies over 1 MiB get 413 before they are read: cloud-extra-info cannot be larger."""
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def parse_vimid(vimid: str) -> RegionKey | None:
    """``{cloud-owner}_{cloud-region-id}`` following A&AI's rules, else None (vesagent.vimid)."""
    try:
        return checked_vimid(vimid)
    except InvalidVimid:
        return None


def _error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": message, **extra}), status


class Refused(Exception):
    """A request refused with ``status`` and a JSON error, raised from deep inside an edit."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra


def aai_error_answer(exc: PermanentError | TemporaryError) -> tuple[int, str]:
    """The REST API's status and message for an A&AI failure, decided by class.

    Unreachable, timed out or 5xx: 503. A refusal the request caused (400, 414, other 4xx):
    400, since the vimid or body is what A&AI disliked. Refused credentials or permissions of
    the agent itself: 502, the gateway's problem, not the caller's. Only A&AI's short cleaned
    excerpt is shown, never its body.
    """
    detail = f" (HTTP {exc.status})" if exc.status else ""
    detail += f": {exc.excerpt}" if exc.excerpt else ""
    if isinstance(exc, TemporaryError):
        return 503, f"A&AI unreachable{detail}"
    if isinstance(exc, CredentialsRefused | PermissionDenied):
        return 502, f"A&AI refused the agent's credentials{detail}"
    if isinstance(exc, Rejected):
        return 400, f"A&AI refused the request{detail}"
    return 502, f"A&AI answered an error{detail}"


def region_status(agent: Any, key: RegionKey) -> dict[str, Any]:
    """Runtime status of one region (``status_model.RegionDetail``) as JSON."""
    return region_detail(agent, key).model_dump(mode="json")


class RegionNotFound(LookupError):
    """No such cloud-region in A&AI (or not a vimid at all): a 404 on every route."""

    def __str__(self) -> str:
        arg = self.args[0] if self.args else ""
        if isinstance(arg, RegionKey):
            return f"no cloud-region {arg.cloud_owner}/{arg.cloud_region_id} in A&AI"
        return str(arg)


class RegionEditor:
    """Read-modify-write of a region's ``cloud-extra-info`` in A&AI, safe against races."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent

    def edit(
        self, key: RegionKey, change: Callable[[str | None], str | None]
    ) -> tuple[str | None, str | None]:
        """Apply ``change`` to the current text; returns (old, new). Retries on 412."""
        aai = self.agent.aai
        for _attempt in range(WRITE_ATTEMPTS):
            body = aai.get_region(key)
            if body is None:
                raise RegionNotFound(key)
            old = body.get("cloud-extra-info")
            old = old if isinstance(old, str) else None
            new = change(old)
            if new == old:
                return old, new
            body = {k: v for k, v in body.items() if k != "cloud-extra-info"}
            if new is not None:
                body["cloud-extra-info"] = new
            try:
                aai.put_region(key, body)
            except Conflict:
                log.info("api.write_conflict", vimid=key.vimid)  # someone else wrote: re-read
                continue
            return old, new
        raise TemporaryError(f"A&AI kept changing {key.vimid} during {WRITE_ATTEMPTS} attempts")


def _stored_config(text: str | None) -> Any:
    try:
        obj = json.loads(text or "")
    except (ValueError, RecursionError):
        return None
    return obj.get(CONFIG_KEY) if isinstance(obj, dict) else None


def checked_cloud_extra_info(new: str) -> str:
    """``new`` if the agent would accept it as the region's cloud-extra-info, else Refused.

    The API must not write what the reconciler then refuses: that would silently stop the
    region from being managed.
    """
    size = len(new.encode("utf-8", "surrogatepass"))
    if size > MAX_CLOUD_EXTRA_INFO_BYTES:
        raise Refused(
            413,
            f"cloud-extra-info would be {size} bytes with this vesagent_config, at most "
            f"{MAX_CLOUD_EXTRA_INFO_BYTES} (1 MiB): A&AI was not changed",
        )
    try:
        parse_cloud_extra_info(new)
    except ConfigError as exc:
        problems = [{"path": p, "message": m} for p, m in exc.problems]
        raise Refused(400, "invalid vesagent_config", problems=problems) from None
    return new


def _read_json_body() -> Any:
    """The request's JSON, or Refused(400) saying why not (never a 500 for deep nesting)."""
    if request.content_length is None:
        # Chunked: werkzeug would silently cut it at the limit; read one byte past it instead.
        try:
            data = request.environ["wsgi.input"].read(MAX_BODY_BYTES + 1)
        except OSError:  # cheroot's own limit, reached while fetching a whole chunk
            data = b"\0" * (MAX_BODY_BYTES + 1)
        if len(data) > MAX_BODY_BYTES:
            raise Refused(413, f"the request body is larger than {MAX_BODY_BYTES} bytes (1 MiB)")
    else:
        data = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH: 413, nothing read
    try:
        return json.loads(data)
    except RecursionError:
        raise Refused(400, "the body is nested too deeply to be a vesagent_config") from None
    except (ValueError, UnicodeDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8 JSON"
        raise Refused(400, f"the body is not valid JSON: {reason}") from None


def _authorised(header: str, users: dict[str, tuple[str, bool]]) -> tuple[bool, bool]:
    """(authenticated, may_change) for an ``Authorization`` header; constant-time compare."""
    import base64
    import binascii

    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False, False
    try:
        name, _, given = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False, False
    found = False
    may_change = False
    for user, (password, writer) in users.items():
        same_user = hmac.compare_digest(name.encode(), user.encode())
        same_password = hmac.compare_digest(given.encode(), password.encode())
        if same_user and same_password:
            found, may_change = True, writer
    return found, may_change


def create_app(agent: Any) -> Flask:
    """The WSGI app for one running agent."""
    app = Flask("vesagent")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # werkzeug refuses larger bodies with 413 (also chunked ones, as they are read).
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    api = Blueprint("api", __name__)
    editor = RegionEditor(agent)
    settings = agent.settings
    users: dict[str, tuple[str, bool]] = getattr(settings, "api_users", None) or {}
    if not users and getattr(settings, "api_username", None):  # settings without api_users
        password = getattr(settings, "api_password", None)
        users = {settings.api_username: (password.get_secret_value() if password else "", True)}

    @api.before_request
    def _auth() -> Any:
        # Before the body is touched: an anonymous request never gets it read.
        if not users:
            return None
        authenticated, may_change = _authorised(request.headers.get("Authorization", ""), users)
        if not authenticated:
            response, status = _error(401, "authentication required")
            response.headers["WWW-Authenticate"] = 'Basic realm="vesagent"'
            return response, status
        if request.method not in READ_METHODS and not may_change:
            return _error(403, "this user may only read: changing needs VESAGENT_API_USERNAME")
        return None

    def region_key(vimid: str) -> RegionKey:
        return checked_vimid(vimid)  # InvalidVimid: 400, before anything is sent to A&AI

    def read_region(key: RegionKey) -> dict[str, Any]:
        body = agent.aai.get_region(key)
        if body is None:
            raise RegionNotFound(key)
        return body

    # The same failures mean the same answers on every route.
    @api.errorhandler(RegionNotFound)
    def _not_found(exc: RegionNotFound) -> Any:
        return _error(404, str(exc))

    @api.errorhandler(InvalidVimid)
    def _bad_vimid(exc: InvalidVimid) -> Any:
        return _error(400, str(exc))

    @api.errorhandler(Refused)
    def _refused(exc: Refused) -> Any:
        return _error(exc.status, str(exc), **exc.extra)

    @api.errorhandler(ConfigError)
    def _not_ours(exc: ConfigError) -> Any:
        return _error(409, str(exc))  # cloud-extra-info holds something we must not overwrite

    @api.errorhandler(TemporaryError)
    @api.errorhandler(PermanentError)
    def _aai_failed(exc: PermanentError | TemporaryError) -> Any:
        status, message = aai_error_answer(exc)
        log.warning("api.aai_failed", status=status, error=message)
        return _error(status, message)

    @api.get("/<vimid>/vesagent")
    def get_config(vimid: str) -> Any:
        key = region_key(vimid)
        stored = _stored_config(read_region(key).get("cloud-extra-info"))
        if stored is None:
            return _error(404, f"cloud-region {vimid} has no vesagent_config", vimid=vimid)
        return jsonify(
            {
                "vimid": vimid,
                "vesagent_config": masked(stored) if isinstance(stored, dict) else stored,
                "status": region_status(agent, key),
            }
        )

    @api.post("/<vimid>/vesagent")
    def post_config(vimid: str) -> Any:
        key = region_key(vimid)
        body = _read_json_body()
        if not isinstance(body, dict) or CONFIG_KEY not in body:
            return _error(400, 'the body must be a JSON object {"vesagent_config": {...}}')
        try:
            parse_vesagent_config(body[CONFIG_KEY])
        except ConfigError as exc:
            problems = [{"path": p, "message": m} for p, m in exc.problems]
            return _error(400, "invalid vesagent_config", problems=problems)

        def change(text: str | None) -> str:
            try:
                config = keep_masked_secrets(body[CONFIG_KEY], _stored_config(text))
            except ConfigError as exc:
                problems = [{"path": p, "message": m} for p, m in exc.problems]
                raise Refused(400, "a masked secret cannot be kept", problems=problems) from None
            return checked_cloud_extra_info(merge_into_cloud_extra_info(text, config))

        old, _new = editor.edit(key, change)
        created = _stored_config(old) is None
        _reconcile_now(agent)
        log.info("api.config_written", vimid=vimid, created=created)
        stored = _stored_config(merge_into_cloud_extra_info(None, body[CONFIG_KEY]))
        response = {
            "vimid": vimid,
            "vesagent_config": masked(stored),
            "status": region_status(agent, key),
        }
        return jsonify(response), 201 if created else 200

    @api.delete("/<vimid>/vesagent")
    def delete_config(vimid: str) -> Any:
        key = region_key(vimid)
        old, _new = editor.edit(key, remove_from_cloud_extra_info)
        if _stored_config(old) is None:
            return _error(404, f"cloud-region {vimid} has no vesagent_config")
        _reconcile_now(agent)
        log.info("api.config_deleted", vimid=vimid)
        return Response(status=204)

    @api.get("/vesagent")
    def list_regions() -> Any:
        return jsonify(region_list(agent).model_dump(mode="json"))

    # -- dead letters: what the collectors refused for its content, and re-queueing it ------
    @api.get("/deadletters")
    def list_dead_letters() -> Any:
        limit = request.args.get("limit", default=100, type=int)
        if limit is None or not 1 <= limit <= 1000:
            return _error(400, "limit must be an integer from 1 to 1000")
        letters = dead_letter_list(agent.store, request.args.get("collector"), limit)
        return jsonify(letters.model_dump(mode="json"))

    @api.post("/deadletters/requeue")
    def requeue_dead_letters() -> Any:
        try:
            wanted = RequeueRequest.model_validate(_read_json_body())
        except ValidationError as exc:
            problems = [
                {"path": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in exc.errors(include_url=False, include_input=False)
            ]
            return _error(400, "invalid requeue request", problems=problems)
        if wanted.ids is None and wanted.collector is None:
            return _error(400, 'give "ids", "collector" or both')
        requeued = agent.store.requeue_dead_letters(wanted.ids, wanted.collector)
        log.info("api.dead_letters_requeued", count=len(requeued), collector=wanted.collector)
        agent.sender.wake(wanted.collector)  # None: every collector
        return jsonify(RequeueResult(requeued=requeued).model_dump(mode="json"))

    @api.get("/swagger.json")
    def swagger() -> Any:
        return jsonify(openapi_document())

    for prefix in PREFIXES:
        app.register_blueprint(api, url_prefix=prefix, name=f"api{len(app.blueprints)}")
    register_console(app, agent, auth=_auth)  # the operator's console at /ui/ (issue 17)

    @app.get("/healthz")
    def healthz() -> Any:
        # 503 naming the stuck loop when the reconciler or the poll timer stopped moving.
        body, status = agent.liveness.report()
        return jsonify(body), status

    @app.get("/readyz")
    def readyz() -> Any:
        reasons = []
        if not agent.reconciler.ready:
            reasons.append(
                "A&AI has not been read yet"
                + (f": {agent.reconciler.last_error}" if agent.reconciler.last_error else "")
            )
        watch = getattr(agent, "store_watch", None)
        if watch is None:
            if not agent.store.writable():
                reasons.append(f"state store {agent.settings.state_dir} is not writable")
        else:
            # The watch thread's last answer: a database that does not answer would make
            # this probe wait for its connect timeout. Checked here only before the first.
            if not watch.checked:
                watch.check()
            if (why := watch.reason()) is not None:
                reasons.append(why)
        if reasons:
            return jsonify({"status": "not ready", "reasons": reasons}), 503
        body: dict[str, Any] = {"status": "ready"}
        if agent.reconciler.last_error:
            body["aai"] = f"stale: {agent.reconciler.last_error}"
        return jsonify(body)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(agent.registry), content_type=CONTENT_TYPE_LATEST)

    # Every error is small JSON: unknown routes, 405s, 413s and bugs too (never Flask's HTML).
    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        message = {
            404: "no such route",
            405: f"method {request.method} is not allowed here",
            413: f"the request body is larger than {MAX_BODY_BYTES} bytes (1 MiB)",
        }.get(status, exc.name)
        response, _ = _error(status, message)
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        if status == 413:
            response.headers["Connection"] = "close"
        return response, status

    @app.errorhandler(Exception)
    def _bug(exc: Exception) -> Any:
        # The traceback is logged without locals (vesagent.logs): they could hold the body.
        log.exception("api.internal_error", path=request.path[:200])
        return _error(500, "internal error; see the agent's log")

    return app


def _reconcile_now(agent: Any) -> None:
    """Converge right away so the response reflects the new configuration."""
    try:
        agent.reconciler.sync()
    except Exception:  # the write succeeded; the periodic pass will converge anyway
        log.exception("api.reconcile_failed")


class _JsonErrorsRequest(cheroot_server.HTTPRequest):
    """cheroot's own refusals (413 over the body limit, 400 bad headers, 414) as JSON too."""

    def simple_response(self, status: Any, msg: str = "") -> None:
        code = str(status)[:3]
        if not code.startswith(("4", "5")):
            super().simple_response(status, msg)
            return
        text = {"413": f"the request body is larger than {MAX_BODY_BYTES} bytes (1 MiB)"}.get(
            code, str(msg) or str(status)
        )
        body = json.dumps({"error": text}).encode()
        self.close_connection = True  # never read (or drain) what follows a refused request
        head = (
            f"{self.server.protocol} {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode("ISO-8859-1")
        with contextlib.suppress(OSError):  # the client went away: nothing to tell it
            self.conn.wfile.write(head + body)


class _JsonErrorsConnection(cheroot_server.HTTPConnection):
    RequestHandlerClass = _JsonErrorsRequest


class ApiServer:
    """cheroot serving the app in a daemon thread, over HTTPS when a certificate is given.

    cheroot streams request bodies to the app instead of spooling them first (waitress
    buffered a 100 MB body to /tmp before the app could answer 401), refuses a
    ``Content-Length`` over 1 MiB before reading the body, and terminates TLS itself.
    """

    def __init__(
        self,
        app: Flask,
        host: str,
        port: int,
        *,
        tls_cert: str | None = None,
        tls_key: str | None = None,
    ) -> None:
        self._server = wsgi.Server(
            (host, port), app, numthreads=8, server_name="vesagent", timeout=30
        )
        # A little above the app's limit: the app answers 413 itself (as JSON, before reading)
        # for anything over MAX_BODY_BYTES, chunked bodies included; cheroot's own limit only
        # bounds what it would drain after an early answer.
        self._server.max_request_body_size = MAX_BODY_BYTES + 64 * 1024
        self._server.max_request_header_size = 64 * 1024
        self._server.ConnectionClass = _JsonErrorsConnection
        self.scheme = "http"
        if tls_cert and tls_key:
            adapter = BuiltinSSLAdapter(tls_cert, tls_key)
            adapter.context.minimum_version = ssl.TLSVersion.TLSv1_2
            self._server.ssl_adapter = adapter
            self.scheme = "https"
        self._server.prepare()  # binds now: a port in use fails here, not in the thread
        self._thread = threading.Thread(target=self._server.serve, name="api", daemon=True)

    @property
    def effective_listen(self) -> str:
        host, port = self._server.bind_addr[:2]
        return f"{host}:{port}"

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.stop()
        self._thread.join(timeout=5)


def serve(agent: Any) -> ApiServer:
    host, port = agent.settings.listen_host_port
    settings = agent.settings
    server = ApiServer(
        create_app(agent),
        host,
        port,
        tls_cert=getattr(settings, "tls_cert", None),
        tls_key=getattr(settings, "tls_key", None),
    )
    return server.start()
