"""``vesagent status``: ask a running agent's REST API what it is doing and print it as tables.

Without ``--vimid``: one line per region of that replica (``GET /api/multicloud/v0/vesagent``).
With ``--vimid``: the region's collector, last poll, configuration errors and one line per
backlog (``GET /api/multicloud/v0/{vimid}/vesagent``).

Exit status: 0 shown, 1 the agent answered with an error (or not with vesagent's JSON), 2 the
agent cannot be reached. Passwords are never printed: the API masks the configuration's, the
command shows none of it, and user:password in a URL is removed before the URL is shown.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

import requests

API_PREFIX = "/api/multicloud/v0"
DEFAULT_LISTEN = "127.0.0.1:9009"
DEFAULT_TIMEOUT = 10.0
EXIT_OK, EXIT_AGENT_ERROR, EXIT_UNREACHABLE = 0, 1, 2
# The agent listens on every interface in a container; the command then asks over loopback.
# scheme://user:password@ : userinfo cannot hold an unencoded / ? or #; greedy up to the last @.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")
_WILDCARD_HOSTS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]", "[::]": "[::1]"}


class AgentError(Exception):
    """The agent answered, but not with what was asked for (exit 1)."""


class Unreachable(Exception):
    """No HTTP answer at all: refused, timed out, bad URL (exit 2)."""


def url_from_listen(listen: str) -> str:
    """The URL to reach an agent started with ``VESAGENT_LISTEN=listen`` from the same host."""
    if "://" in listen:
        return listen.rstrip("/")
    host, _, port = listen.rpartition(":")
    return f"http://{_WILDCARD_HOSTS.get(host, host)}:{port}"


def shown_url(url: str) -> str:
    """``url`` without ``user:password@``, safe to print (also when the URL is malformed)."""
    return _USERINFO.sub(r"\1", url)


def fetch(url: str, auth: tuple[str, str] | None, timeout: float) -> dict[str, Any]:
    """GET ``url`` and return its JSON object; raises ``Unreachable`` or ``AgentError``."""
    where = shown_url(url)
    try:
        response = requests.get(
            url, auth=auth, timeout=timeout, headers={"Accept": "application/json"}
        )
    except requests.exceptions.InvalidURL as exc:
        raise Unreachable(f"{where} is not a usable URL ({type(exc).__name__})") from None
    except requests.exceptions.MissingSchema:
        raise Unreachable(f"{where} is not a URL: it needs http:// or https://") from None
    except requests.exceptions.Timeout:
        raise Unreachable(f"no answer from {where} within {timeout:g} s") from None
    except requests.exceptions.RequestException as exc:
        # The exception text can be long (urllib3 pool details); its class says enough.
        reason = "connection refused" if _refused(exc) else type(exc).__name__
        raise Unreachable(f"cannot reach the agent at {where}: {reason}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 401:
        raise AgentError(
            f"{where} refused the credentials (HTTP 401): give --username/--password or "
            "VESAGENT_API_USERNAME/VESAGENT_API_PASSWORD"
        )
    if not 200 <= response.status_code < 300:
        message = body.get("error") if isinstance(body, dict) else None
        raise AgentError(f"{where} answered HTTP {response.status_code}: {message or 'no detail'}")
    if not isinstance(body, dict):
        raise AgentError(f"{where} did not answer with a JSON object (is it a vesagent?)")
    return body


def _refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _depth in range(10):  # the cause chain is short; bounded anyway
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError):
            return True
        if "refused" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__ or _reason(seen)
    return False


def _reason(exc: BaseException) -> BaseException | None:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        return reason
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], BaseException) else None


def _text(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _outcome(ok: Any) -> str:
    return ("ok" if ok else "failed") if isinstance(ok, bool) else "-"


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart, no trailing blanks."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *rows]
    ]


REGION_HEADER = (
    "VIMID",
    "RUNNING",
    "BACKLOGS",
    "VMS",
    "ALARMS",
    "OUTBOX",
    "LAST POLL",
    "RESULT",
    "CONFIG",
)


def region_rows(regions: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """One row per region of ``GET /api/multicloud/v0/vesagent``, in REGION_HEADER order."""
    return [
        [
            _text(r.get("vimid")),
            _text(r.get("running")),
            _text(r.get("backlogs")),
            _text(r.get("tracked_servers")),
            _text(r.get("active_alarms")),
            _text(r.get("outbox_depth")),
            _text(r.get("last_poll")),
            _outcome(r.get("last_poll_ok")),
            "error" if r.get("config_error") else "ok",
        ]
        for r in regions
    ]


def render_summary(body: Mapping[str, Any], where: str) -> list[str]:
    """The agent-wide view: shard, A&AI freshness, then the region table."""
    aai = body.get("aai") if isinstance(body.get("aai"), dict) else {}
    lines = [
        f"agent {where}  shard {_text(body.get('shard'))}",
        f"A&AI: last read {_text(aai.get('last_success'))}, "
        f"last error: {aai.get('last_error') or 'none'}",
    ]
    regions = [r for r in body.get("regions") or [] if isinstance(r, dict)]
    if not regions:
        return [*lines, "no region with a vesagent_config in this replica's shard"]
    return [*lines, "", *format_table(REGION_HEADER, region_rows(regions))]


BACKLOG_HEADER = (
    "BACKLOG",
    "DOMAIN",
    "TYPE",
    "SCOPE",
    "INTERVAL",
    "RUNNING",
    "VMS",
    "ALARMS",
    "LAST POLL",
    "RESULT",
)


def _scope(backlog: Any) -> str:
    if not isinstance(backlog, dict):
        return "-"
    tenant = backlog.get("tenant") or backlog.get("tenantid") or "*"
    source = backlog.get("source") or backlog.get("sourceid") or "*"
    return f"{tenant}/{source}"


def backlog_rows(status: Mapping[str, Any], configured: Sequence[Any]) -> list[list[str]]:
    """One row per backlog in force; scope from the stored configuration when it lines up."""
    backlogs = [b for b in status.get("backlogs") or [] if isinstance(b, dict)]
    # The stored text may differ from what runs (an invalid edit keeps the last valid one).
    aligned = len(configured) == len(backlogs) and not status.get("config_errors")
    rows = []
    for index, b in enumerate(backlogs):
        poll = b.get("last_poll") if isinstance(b.get("last_poll"), dict) else {}
        rows.append(
            [
                _text(b.get("key")),
                _text(b.get("domain")),
                _text(b.get("type")),
                _scope(configured[index]) if aligned else "-",
                _text(b.get("interval")),
                _text(b.get("running")),
                _text(b.get("matched_vms")),
                _text(b.get("active_alarms")),
                _text(poll.get("at")),
                _outcome(poll.get("ok")),
            ]
        )
    return rows


def render_region(body: Mapping[str, Any], where: str) -> list[str]:
    """The per-region view of ``GET /api/multicloud/v0/{vimid}/vesagent``."""
    status = body.get("status") if isinstance(body.get("status"), dict) else {}
    config = body.get("vesagent_config") if isinstance(body.get("vesagent_config"), dict) else {}
    running = "running" if status.get("running") else "not running"
    lines = [f"region {_text(body.get('vimid'))} at {where}: {running}"]
    if not status.get("managed", True):
        lines.append("  not managed by this replica (another shard, or not yet read from A&AI)")
    poll = status.get("last_poll") if isinstance(status.get("last_poll"), dict) else None
    if poll is not None:
        detail = f"{_outcome(poll.get('ok'))}"
        if poll.get("error"):
            detail += f": {poll['error']}"
        lines.append(
            f"  last poll: {_text(poll.get('at'))} {detail} "
            f"({_text(poll.get('servers_seen'))} servers seen, "
            f"{_text(poll.get('nova_requests'))} Nova requests)"
        )
    if "tracked_servers" in status:
        lines.append(
            f"  tracked VMs: {_text(status.get('tracked_servers'))}, "
            f"active alarms: {_text(status.get('active_alarms'))}, "
            f"last event: {_text(status.get('last_event'))}"
        )
    collector = status.get("collector") if isinstance(status.get("collector"), dict) else None
    if collector is not None:
        lines.append(
            f"  collector: {shown_url(str(collector.get('endpoint') or '-'))} "
            f"outbox {_text(collector.get('outbox_depth'))}, "
            f"last delivery {_text(collector.get('last_delivery'))}, "
            f"last error: {collector.get('last_error') or 'none'}"
        )
    if status.get("credentials_error"):
        lines.append(f"  VIM credentials: {status['credentials_error']}")
    errors = [e for e in status.get("config_errors") or [] if isinstance(e, dict)]
    if errors:
        lines.append("  configuration errors (the last valid configuration stays in force):")
        lines += [f"    {e.get('path') or '(top)'}: {e.get('message')}" for e in errors]
    configured = config.get("backlogs") if isinstance(config.get("backlogs"), list) else []
    rows = backlog_rows(status, configured)
    if rows:
        lines += ["", *format_table(BACKLOG_HEADER, rows)]
    else:
        lines.append("  no backlog in force")
    return lines


def run_status(
    url: str,
    vimid: str | None,
    username: str | None,
    password: str | None,
    out: TextIO,
    err: TextIO | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> int:
    """Print the agent's status (or one region's with ``vimid``); returns the exit status."""
    err = err if err is not None else sys.stderr
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        _port = parts.port  # raises on a port that is not a number
    except ValueError:
        usable = False
    if not usable:
        print(
            f"vesagent status: {shown_url(url)!r} is not an agent URL (expected http://host:port)",
            file=err,
        )
        return EXIT_UNREACHABLE
    base = url.rstrip("/")
    where = shown_url(base)
    auth = (username, password or "") if username else None
    path = f"/{quote(vimid, safe='')}/vesagent" if vimid else "/vesagent"
    target = f"{base}{API_PREFIX}{path}"
    try:
        body = fetch(target, auth, timeout)
    except Unreachable as exc:
        print(f"vesagent status: {exc}", file=err)
        return EXIT_UNREACHABLE
    except AgentError as exc:
        print(f"vesagent status: {exc}", file=err)
        return EXIT_AGENT_ERROR
    lines = render_region(body, where) if vimid else render_summary(body, where)
    out.write("\n".join(lines) + "\n")
    return EXIT_OK


def add_status_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``vesagent status``; defaults come from the environment at run time."""
    parser.add_argument(
        "--url",
        default=None,
        help="base URL of the agent [default: from env VESAGENT_LISTEN, else "
        f"http://{DEFAULT_LISTEN}]",
    )
    parser.add_argument("--vimid", default=None, help="show one region's backlogs in detail")
    parser.add_argument(
        "--username", default=None, help="REST API user [env VESAGENT_API_USERNAME]"
    )
    parser.add_argument(
        "--password",
        default=None,
        help="REST API password [env VESAGENT_API_PASSWORD; prefer the variable]",
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait for an answer"
    )


def resolve_target(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[str, str | None, str | None]:
    """(url, username, password): flags over environment variables over defaults."""
    url = args.url or url_from_listen(environ.get("VESAGENT_LISTEN") or DEFAULT_LISTEN)
    # Reading needs no more than the read-only user: prefer it when the environment has one.
    prefix = "VESAGENT_API_READ_" if environ.get("VESAGENT_API_READ_USERNAME") else "VESAGENT_API_"
    username = args.username or environ.get(f"{prefix}USERNAME") or None
    password = args.password or environ.get(f"{prefix}PASSWORD") or None
    if password is None and environ.get(f"{prefix}PASSWORD_FILE"):
        from vesagent.cli import read_secret_file

        password = read_secret_file(environ[f"{prefix}PASSWORD_FILE"], f"{prefix}PASSWORD_FILE")
    return url, username, password


def status_command(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """``vesagent status`` after argument parsing; returns the exit status."""
    url, username, password = resolve_target(args, environ)
    return run_status(url, args.vimid, username, password, sys.stdout, timeout=args.timeout)
