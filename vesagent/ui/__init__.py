"""The operator's console at ``/ui/``: regions, alarms, events and the config editor.

Server-rendered HTML (Jinja, autoescaped), plain CSS, the vendored htmx for live updates and
the editor's validation, and one small script of our own; no build step, no CDN. Every value
comes from :mod:`vesagent.ui.data`. ``register_console`` is the one call ``create_app`` makes.

Protection, in one place (:func:`_guard` and :func:`_headers`):

- authentication: the REST API's own check, passed in by ``create_app`` and run first;
- writes (every POST) need the ``X-Vesagent-Console`` header, which a cross-site form cannot
  send and a cross-site script cannot send without a CORS preflight we never grant, and are
  refused when the browser says the request is cross-site (``Sec-Fetch-Site``) or comes from
  another origin (``Origin``);
- a strict Content-Security-Policy: scripts, styles and connections from this origin only,
  no inline script or style, no framing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask


def register_console(app: Flask, agent: Any, auth: Callable[[], Any] | None = None) -> None:
    """Serve the console under ``/ui/`` of ``app``, behind ``auth`` (the REST API's check)."""
    from vesagent.ui.views import build_blueprint  # imports vesagent.api, which imports us

    app.register_blueprint(build_blueprint(agent, auth), url_prefix="/ui")
