"""The console's routes: pages, the fragments htmx polls, the validation endpoint and Save."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for

from vesagent.api import RegionNotFound
from vesagent.errors import PermanentError, TemporaryError
from vesagent.ui import charts, data

#: The header every console write carries (htmx adds it from ``hx-headers``).
WRITE_HEADER = "X-Vesagent-Console"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
REFRESH_SECONDS = 2


def cross_site_reason(method: str, headers: Any, host_url: str) -> str | None:
    """Why a request must be refused as a possible cross-site write (None: allowed)."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return None
    if headers.get(WRITE_HEADER) != "1":
        return f"console writes need the {WRITE_HEADER} header"
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return f"cross-site request refused (Sec-Fetch-Site: {site})"
    origin = headers.get("Origin")
    if origin and origin != "null":
        ours = urlsplit(host_url)
        theirs = urlsplit(origin)
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
            return "cross-origin request refused"
    return None


def age(ts: float | None) -> str:
    """``12s``, ``4m``, ``3h``, ``2d``: how long ago (or ``—`` for never)."""
    if ts is None:
        return "—"
    seconds = max(0.0, time.time() - ts)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def duration(seconds: float | None) -> str:
    """A span of seconds in the same short words as :func:`age`."""
    return "—" if seconds is None else age(time.time() - seconds)


def utc(ts: float | None) -> str:
    return "—" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def build_blueprint(agent: Any, auth: Callable[[], Any] | None) -> Blueprint:
    """The console for one agent."""
    ui = Blueprint(
        "ui", __name__, template_folder="templates", static_folder="static", static_url_path="/s"
    )

    @ui.before_request
    def _guard() -> Any:
        if auth is not None:
            refused = auth()
            if refused is not None:
                return refused
        reason = cross_site_reason(request.method, request.headers, request.host_url)
        if reason is not None:
            return Response(reason, status=403, mimetype="text/plain")
        return None

    @ui.after_request
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        if not request.path.startswith("/ui/s/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @ui.app_template_filter("age")
    def _age(ts: float | None) -> str:
        return age(ts)

    @ui.app_template_filter("duration")
    def _duration(seconds: float | None) -> str:
        return duration(seconds)

    @ui.app_template_filter("utc")
    def _utc(ts: float | None) -> str:
        return utc(ts)

    @ui.errorhandler(RegionNotFound)
    def _not_found(exc: RegionNotFound) -> Any:
        return page("ui/error.html", message=str(exc)), 404

    @ui.errorhandler(TemporaryError)
    @ui.errorhandler(PermanentError)
    def _aai_down(exc: Exception) -> Any:
        return page("ui/error.html", message=f"A&AI unreachable: {exc}"), 503

    def page(name: str, **context: Any) -> str:
        return render_template(
            name,
            facts=data.agent_facts(agent),
            refresh=REFRESH_SECONDS,
            severities=data.SEVERITIES,
            **context,
        )

    @ui.get("/")
    def overview() -> Any:
        return page("ui/overview.html", regions=data.overview(agent))

    @ui.get("/fragments/overview")
    def overview_fragment() -> Any:
        return page("ui/_overview_table.html", regions=data.overview(agent))

    def region_context(vimid: str) -> dict[str, Any]:
        detail = data.region_detail(agent, data.parse_key(vimid))
        return {
            "d": detail,
            "r": detail.summary,
            "events_chart": charts.events_per_minute(detail.per_minute),
            "poll_chart": charts.poll_durations(detail.polls),
        }

    @ui.get("/regions/<vimid>")
    def region(vimid: str) -> Any:
        return page("ui/region.html", **region_context(vimid))

    @ui.get("/regions/<vimid>/fragment")
    def region_fragment(vimid: str) -> Any:
        return page("ui/_region_live.html", **region_context(vimid))

    @ui.get("/regions/<vimid>/config")
    def editor(vimid: str) -> Any:
        key = data.parse_key(vimid)
        state = data.editor_state(agent, key)
        problems, warnings = data.check(state.text) if state.exists else ([], [])
        return page(
            "ui/editor.html",
            state=state,
            check=data.CheckResult(problems, warnings, []),
            saved=request.args.get("saved"),
        )

    @ui.post("/regions/<vimid>/config/check")
    def check(vimid: str) -> Any:
        """The one validation endpoint: ``check-config``'s rules, lines and the A&AI diff."""
        key = data.parse_key(vimid)
        text = request.form.get("config", "")
        result = data.check_against_aai(agent, key, text)
        if request.accept_mimetypes.best == "application/json":
            return jsonify(
                {
                    "valid": not result.problems,
                    "problems": [vars(p) for p in result.problems],
                    "warnings": [vars(p) for p in result.warnings],
                    "diff": result.diff,
                }
            )
        return page("ui/_check.html", check=result)

    @ui.post("/regions/<vimid>/config")
    def save(vimid: str) -> Any:
        key = data.parse_key(vimid)
        text = request.form.get("config", "")
        base = request.form.get("base", "")
        result = data.save(agent, key, text, base)
        if result.saved:
            target = url_for("ui.editor", vimid=vimid, saved=result.resource_version or "yes")
            if request.headers.get("HX-Request"):
                response = Response("", status=200)
                response.headers["HX-Redirect"] = target
                return response
            return redirect(target, code=303)
        return page("ui/_save.html", result=result)

    @ui.get("/regions")
    def regions_redirect() -> Any:
        return redirect(url_for("ui.overview"))

    return ui
