"""The agent's HTTP face: the seed's REST API per vimid, ``/metrics``, ``/healthz``, ``/readyz``.

A&AI stays the single source of truth: POST and DELETE edit the region's ``cloud-extra-info``
in A&AI by read-modify-write (every other key kept, ``resource-version`` honoured, re-read and
retried on 412) and then run a reconcile pass at once, so the pollers follow before the
response is sent. GET shows the configuration as A&AI stores it, passwords masked, with the
runtime status of each backlog. Routes are served under ``/api/multicloud/v0/`` and, like the
seed design, under ``/api/multicloud-ocata/v0/``.
"""

from __future__ import annotations

import base64
import hmac
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from waitress.server import create_server

from vesagent.aai_client import Conflict
from vesagent.config import (
    CONFIG_KEY,
    masked,
    merge_into_cloud_extra_info,
    parse_vesagent_config,
    remove_from_cloud_extra_info,
)
from vesagent.errors import ConfigError, PermanentError, TemporaryError
from vesagent.logs import REDACTED, get_logger
from vesagent.model import RegionKey
from vesagent.openapi import openapi_document
from vesagent.pollers.hosts import host_selected
from vesagent.pollers.poller import selector_for
from vesagent.ui import register_console

log = get_logger("vesagent.api")
PREFIXES = ("/api/multicloud/v0", "/api/multicloud-ocata/v0")
WRITE_ATTEMPTS = 5


def parse_vimid(vimid: str) -> RegionKey | None:
    """``{cloud-owner}_{cloud-region-id}``: the owner has no underscore (MultiCloud's rule)."""
    owner, sep, region = vimid.partition("_")
    if not sep or not owner or not region:
        return None
    return RegionKey(owner, region)


def _error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": message, **extra}), status


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def region_status(agent: Any, key: RegionKey) -> dict[str, Any]:
    """Runtime status of one region: per backlog and for the region as a whole."""
    poller = agent.pollers.get(key)
    state = agent.reconciler.cache.state.get(key)
    spec = agent.reconciler.cache.config.get(key)
    status: dict[str, Any] = {
        "managed": spec is not None,
        "running": poller is not None,
        "config_errors": [
            {"path": path, "message": message}
            for path, message in (state.config_errors if state else [])
        ],
        "config_warnings": [
            {"path": path, "message": message}
            for path, message in agent.reconciler.cache.warnings.get(key, [])
        ],
        "credentials_error": state.credentials_error if state else None,
        "backlogs": [],
    }
    if spec is not None:
        endpoint = spec.config.ves_subscription.endpoint
        status["collector"] = {
            "endpoint": endpoint,
            "outbox_depth": agent.store.depth(endpoint),
            "last_delivery": _iso(agent.sender.last_success.get(endpoint)),
            "last_error": agent.sender.last_error.get(endpoint),
        }
    if poller is None or spec is None:
        return status
    last = poller.last
    status["last_poll"] = {
        "at": _iso(last.finished) if last else None,
        "ok": last.ok if last else None,
        "error": (last.error or None) if last else None,
        "servers_seen": last.servers_seen if last else None,
        "nova_requests": last.requests if last else None,
    }
    status["tracked_servers"] = len(poller.servers)
    status["active_alarms"] = len(poller.alarms)
    status["last_event"] = _iso(poller.last_event_at)
    if poller.hypervisors:
        status["hypervisors"] = dict(sorted(poller.hypervisors.items()))
    status["vim"] = {
        "consecutive_failures": poller.health.consecutive_failures,
        "last_failure": poller.health.last_reason or None,
    }
    last_run = {
        "fault": status["last_poll"]["at"],
        "tca": _iso(poller.last_measure_at),
        "measurement": _iso(poller.last_measure_at),
        "heartbeat": _iso(poller.last_heartbeat_at),
    }
    servers = list(poller.servers.values())
    alarms = list(poller.alarms)
    for backlog in spec.config.backlogs:
        entry: dict[str, Any] = {
            "key": backlog.key,
            "domain": backlog.domain,
            "type": backlog.type,
            "interval": spec.config.interval_of(backlog),
            "running": True,
            "last_run": last_run.get(backlog.domain),
        }
        if backlog.type == "vm" and backlog.domain != "heartbeat":
            selector = selector_for(backlog, poller.cached_tenant)
            ids = {s.id for s in servers if selector.matches(s)}
            entry["matched_vms"] = len(ids)
            entry["active_alarms"] = sum(1 for sid, _c in alarms if sid in ids)
        elif backlog.type == "host" and backlog.domain == "fault":
            hosts = [h for h in poller.hosts if host_selected(backlog, h)]
            entry["matched_hosts"] = len(hosts)
            entry["active_alarms"] = sum(1 for sid, c in alarms if c == "Host" and sid in hosts)
        elif backlog.type == "vim" and backlog.domain == "fault":
            entry["active_alarms"] = sum(1 for _sid, c in alarms if c == "VIM")
        status["backlogs"].append(entry)
    return status


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
    except ValueError:
        return None
    return obj.get(CONFIG_KEY) if isinstance(obj, dict) else None


def keep_masked_password(posted: Any, stored: Any) -> Any:
    """A GET-modify-POST round trip sends ``***`` back: keep the stored password then."""
    try:
        sub = posted["ves_subscription"]
        if sub.get("password") != REDACTED:
            return posted
        old = stored["ves_subscription"]["password"]
    except (KeyError, TypeError, AttributeError):
        return posted
    return {**posted, "ves_subscription": {**sub, "password": old}}


def create_app(agent: Any) -> Flask:
    """The WSGI app for one running agent."""
    app = Flask("vesagent")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    api = Blueprint("api", __name__)
    editor = RegionEditor(agent)
    username = getattr(agent.settings, "api_username", None)
    password = getattr(agent.settings, "api_password", None)

    @api.before_request
    def _auth() -> Any:
        if not username:
            return None
        header = request.headers.get("Authorization", "")
        expected = (
            "Basic "
            + base64.b64encode(
                f"{username}:{password.get_secret_value() if password else ''}".encode()
            ).decode()
        )
        if hmac.compare_digest(header.encode(), expected.encode()):
            return None
        response, status = _error(401, "authentication required")
        response.headers["WWW-Authenticate"] = 'Basic realm="vesagent"'
        return response, status

    def region_key(vimid: str) -> RegionKey:
        key = parse_vimid(vimid)
        if key is None:
            raise RegionNotFound(f"{vimid!r} is not a vimid ({{cloud-owner}}_{{cloud-region-id}})")
        return key

    def read_region(key: RegionKey) -> dict[str, Any]:
        body = agent.aai.get_region(key)
        if body is None:
            raise RegionNotFound(key)
        return body

    # The same failures mean the same answers on every route.
    @api.errorhandler(RegionNotFound)
    def _not_found(exc: RegionNotFound) -> Any:
        return _error(404, str(exc))

    @api.errorhandler(ConfigError)
    def _not_ours(exc: ConfigError) -> Any:
        return _error(409, str(exc))  # cloud-extra-info holds something we must not overwrite

    @api.errorhandler(TemporaryError)
    @api.errorhandler(PermanentError)
    def _aai_down(exc: Exception) -> Any:
        return _error(503, f"A&AI unreachable: {exc}")

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
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or CONFIG_KEY not in body:
            return _error(400, 'the body must be a JSON object {"vesagent_config": {...}}')
        try:
            parse_vesagent_config(body[CONFIG_KEY])
        except ConfigError as exc:
            problems = [{"path": p, "message": m} for p, m in exc.problems]
            return _error(400, "invalid vesagent_config", problems=problems)
        old, _new = editor.edit(
            key,
            lambda text: merge_into_cloud_extra_info(
                text, keep_masked_password(body[CONFIG_KEY], _stored_config(text))
            ),
        )
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
        regions = []
        for key, spec in sorted(agent.reconciler.cache.config.items()):
            poller = agent.pollers.get(key)
            state = agent.reconciler.cache.state.get(key)
            last = poller.last if poller else None
            regions.append(
                {
                    "vimid": key.vimid,
                    "backlogs": len(spec.config.backlogs),
                    "running": poller is not None,
                    "last_poll": _iso(last.finished) if last else None,
                    "last_poll_ok": last.ok if last else None,
                    "tracked_servers": len(poller.servers) if poller else 0,
                    "active_alarms": len(poller.alarms) if poller else 0,
                    "outbox_depth": agent.store.depth(spec.config.ves_subscription.endpoint),
                    "config_error": bool(state and state.config_errors),
                }
            )
        return jsonify(
            {
                "shard": str(agent.settings.shard),
                "aai": {
                    "last_success": _iso(agent.reconciler.last_success),
                    "last_error": agent.reconciler.last_error,
                },
                "regions": regions,
            }
        )

    @api.get("/swagger.json")
    def swagger() -> Any:
        return jsonify(openapi_document())

    for prefix in PREFIXES:
        app.register_blueprint(api, url_prefix=prefix, name=f"api{len(app.blueprints)}")
    register_console(app, agent, auth=_auth)  # the operator's console at /ui/ (issue 17)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Any:
        reasons = []
        if not agent.reconciler.ready:
            reasons.append(
                "A&AI has not been read yet"
                + (f": {agent.reconciler.last_error}" if agent.reconciler.last_error else "")
            )
        if not agent.store.writable():
            reasons.append(f"state store {agent.settings.state_dir} is not writable")
        if reasons:
            return jsonify({"status": "not ready", "reasons": reasons}), 503
        body: dict[str, Any] = {"status": "ready"}
        if agent.reconciler.last_error:
            body["aai"] = f"stale: {agent.reconciler.last_error}"
        return jsonify(body)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(agent.registry), content_type=CONTENT_TYPE_LATEST)

    return app


def _reconcile_now(agent: Any) -> None:
    """Converge right away so the response reflects the new configuration."""
    try:
        agent.reconciler.sync()
    except Exception:  # the write succeeded; the periodic pass will converge anyway
        log.exception("api.reconcile_failed")


class ApiServer:
    """waitress serving the app in a daemon thread."""

    def __init__(self, app: Flask, host: str, port: int) -> None:
        self._server = create_server(app, host=host, port=port, threads=8, ident="vesagent")
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)

    @property
    def effective_listen(self) -> str:
        server: Any = self._server
        return f"{server.effective_host}:{server.effective_port}"

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.close()


def serve(agent: Any) -> ApiServer:
    host, port = agent.settings.listen_host_port
    return ApiServer(create_app(agent), host, port).start()
