"""The agent's HTTP face: ``/healthz``, ``/readyz``, ``/metrics`` (REST API routes join later).

A Flask app built from the running ``Agent`` and served by waitress in a background thread.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from waitress.server import create_server


def create_app(agent: Any) -> Flask:
    """The WSGI app for one agent."""
    app = Flask("vesagent")

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response | tuple[Response, int]:
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


class ApiServer:
    """waitress serving the app in a daemon thread."""

    def __init__(self, app: Flask, host: str, port: int) -> None:
        self._server = create_server(app, host=host, port=port, threads=8, ident="vesagent")
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)

    @property
    def effective_listen(self) -> str:
        host, port = self._server.effective_host, self._server.effective_port  # type: ignore[attr-defined]
        return f"{host}:{port}"

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.close()


def serve(agent: Any) -> ApiServer:
    host, port = agent.settings.listen_host_port
    return ApiServer(create_app(agent), host, port).start()
