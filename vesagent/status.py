"""``vesagent status``: ask a running agent's REST API what it is doing and print it as tables.

Without ``--vimid``: one line per region of that replica (``GET /api/multicloud/v0/vesagent``).
With ``--vimid``: the region's collector, last poll, configuration errors and one line per
backlog (``GET /api/multicloud/v0/{vimid}/vesagent``). With ``--dead-letters``: the events the
collectors refused for their content, with the collector's answer (``GET .../deadletters``);
``--requeue ID,ID`` (or ``all``, with ``--collector``) puts them back in the outbox after a fix
(``POST .../deadletters/requeue``).

The answers are parsed into ``vesagent.status_model``, the same models the API builds and the
OpenAPI document describes: a field the agent does not send is a parse error here, not a
silent "-".

Exit status: 0 shown, 1 the agent answered with an error (or not with vesagent's JSON), 2 the
agent cannot be reached. Passwords are never printed: the API masks the configuration's, the
command shows none of it, and user:password in a URL is removed before the URL is shown.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO, TypeVar
from urllib.parse import quote, urlsplit

import requests
from pydantic import BaseModel, ValidationError

from vesagent.status_model import (
    ConfigView,
    DeadLetterList,
    RegionDetail,
    RegionList,
    RegionSummary,
    RequeueResult,
)

API_PREFIX = "/api/multicloud/v0"
DEFAULT_LISTEN = "127.0.0.1:9009"
DEFAULT_TIMEOUT = 10.0
EXIT_OK, EXIT_AGENT_ERROR, EXIT_UNREACHABLE = 0, 1, 2
# The agent listens on every interface in a container; the command then asks over loopback.
# scheme://user:password@ : userinfo cannot hold an unencoded / ? or #; greedy up to the last @.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")
_WILDCARD_HOSTS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]", "[::]": "[::1]"}
M = TypeVar("M", bound=BaseModel)


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


def fetch(
    url: str,
    auth: tuple[str, str] | None,
    timeout: float,
    *,
    method: str = "GET",
    body: Any = None,
) -> dict[str, Any]:
    """``method`` ``url`` and return its JSON object; raises ``Unreachable`` or ``AgentError``."""
    where = shown_url(url)
    try:
        response = requests.request(
            method,
            url,
            auth=auth,
            timeout=timeout,
            headers={"Accept": "application/json"},
            json=body,
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


def parse(model: type[M], body: Mapping[str, Any], where: str) -> M:
    """The agent's answer as ``model``; an answer of another shape is an ``AgentError``."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        path = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise AgentError(
            f"{where} answered with an unexpected {model.__name__} ({path}: {first['msg']}); "
            "is it a vesagent of another version?"
        ) from None


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
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _outcome(ok: bool | None) -> str:
    return "-" if ok is None else ("ok" if ok else "failed")


def _collector_state(up: bool | None, reason: str | None = None) -> str:
    if up is None:
        return "-"
    return "up" if up else (reason or "down")


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
    "DEAD",
    "COLLECTOR",
    "LAST POLL",
    "RESULT",
    "CONFIG",
)


def region_rows(regions: Sequence[RegionSummary]) -> list[list[str]]:
    """One row per region of ``GET /api/multicloud/v0/vesagent``, in REGION_HEADER order."""
    return [
        [
            r.vimid,
            _text(r.running),
            _text(r.backlogs),
            _text(r.tracked_servers),
            _text(r.active_alarms),
            _text(r.outbox_depth),
            _text(r.dead_letters),
            _collector_state(r.collector_up),
            _text(r.last_poll),
            _outcome(r.last_poll_ok),
            "error" if r.config_error else ("no credentials" if r.credentials_error else "ok"),
        ]
        for r in regions
    ]


def render_summary(body: RegionList, where: str) -> list[str]:
    """The agent-wide view: shard, A&AI freshness, then the region table."""
    lines = [
        f"agent {where}  shard {_text(body.shard)}",
        f"A&AI: last read {_text(body.aai.last_success)}, "
        f"last error: {body.aai.last_error or 'none'}",
    ]
    if not body.regions:
        return [*lines, "no region with a vesagent_config in this replica's shard"]
    return [*lines, "", *format_table(REGION_HEADER, region_rows(body.regions))]


BACKLOG_HEADER = (
    "BACKLOG",
    "DOMAIN",
    "TYPE",
    "SCOPE",
    "INTERVAL",
    "RUNNING",
    "VMS",
    "ALARMS",
    "LAST RUN",
    "RESULT",
)


def _scope(backlog: Any) -> str:
    if not isinstance(backlog, dict):
        return "-"
    tenant = backlog.get("tenant") or backlog.get("tenantid") or "*"
    source = backlog.get("source") or backlog.get("sourceid") or "*"
    return f"{tenant}/{source}"


def backlog_rows(status: RegionDetail, configured: Sequence[Any]) -> list[list[str]]:
    """One row per backlog in force; scope from the stored configuration when it lines up."""
    # The stored text may differ from what runs (an invalid edit keeps the last valid one).
    aligned = len(configured) == len(status.backlogs) and not status.config_errors
    return [
        [
            b.key,
            b.domain,
            b.type,
            _scope(configured[index]) if aligned else "-",
            _text(b.interval),
            _text(b.running),
            _text(b.matched_vms if b.matched_vms is not None else b.matched_hosts),
            _text(b.active_alarms),
            _text(b.last_run),
            _outcome(b.last_ok),
        ]
        for index, b in enumerate(status.backlogs)
    ]


def render_region(body: ConfigView, where: str) -> list[str]:
    """The per-region view of ``GET /api/multicloud/v0/{vimid}/vesagent``."""
    status = body.status
    running = "running" if status.running else "not running"
    lines = [f"region {body.vimid} at {where}: {running}"]
    if not status.managed:
        lines.append("  not managed by this replica (another shard, or not yet read from A&AI)")
    poll = status.last_poll
    if poll is not None:
        detail = _outcome(poll.ok) + (f": {poll.error}" if poll.error else "")
        lines.append(
            f"  last poll: {_text(poll.at)} {detail} "
            f"({_text(poll.servers_seen)} servers seen, "
            f"{_text(poll.nova_requests)} Nova requests)"
        )
    if status.tracked_servers is not None:
        lines.append(
            f"  tracked VMs: {_text(status.tracked_servers)}, "
            f"active alarms: {_text(status.active_alarms)}, "
            f"last event: {_text(status.last_event)}"
        )
    collector = status.collector
    if collector is not None:
        lines.append(
            f"  collector: {shown_url(collector.endpoint)} "
            f"{_collector_state(collector.up, collector.reason)}, "
            f"outbox {collector.outbox_depth}, dead letters {collector.dead_letters}, "
            f"last delivery {_text(collector.last_delivery)}, "
            f"last error: {collector.last_error or 'none'}"
        )
    if status.credentials_error:
        lines.append(f"  VIM credentials: {status.credentials_error}")
    if status.config_errors:
        lines.append("  configuration errors (the last valid configuration stays in force):")
        lines += [f"    {e.path or '(top)'}: {e.message}" for e in status.config_errors]
    backlogs = body.vesagent_config.get("backlogs")
    rows = backlog_rows(status, backlogs if isinstance(backlogs, list) else [])
    if rows:
        lines += ["", *format_table(BACKLOG_HEADER, rows)]
    else:
        lines.append("  no backlog in force")
    return lines


DEAD_LETTER_HEADER = ("ID", "COLLECTOR", "DOMAIN", "EVENT ID", "STATUS", "FAILED AT", "ANSWER")


def render_dead_letters(body: DeadLetterList, where: str) -> list[str]:
    """The dead letters, newest first, with the collector's answer."""
    if not body.dead_letters:
        return [f"no dead letters at {where}"]
    shown = len(body.dead_letters)
    rows = [
        [
            str(d.id),
            shown_url(d.collector),
            d.domain,
            d.event_id,
            str(d.status),
            _text(d.failed_at),
            d.response or "-",
        ]
        for d in body.dead_letters
    ]
    more = f" (newest {shown} shown)" if body.total > shown else ""
    return [
        f"dead letters at {where}: {body.total}{more}",
        "",
        *format_table(DEAD_LETTER_HEADER, rows),
    ]


def parse_requeue(value: str) -> list[int] | str:
    """``--requeue`` value: ``all`` (every one of ``--collector``) or ``ID,ID,...``."""
    if value.strip().lower() == "all":
        return "all"
    try:
        ids = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give dead-letter ids separated by commas, or 'all'"
        ) from None
    if not ids:
        raise argparse.ArgumentTypeError("give at least one dead-letter id, or 'all'")
    return ids


def run_status(
    url: str,
    vimid: str | None,
    username: str | None,
    password: str | None,
    out: TextIO,
    err: TextIO | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    dead_letters: bool = False,
    requeue: bool = False,
    requeue_ids: list[int] | None = None,
    collector: str | None = None,
) -> int:
    """Print the agent's status (one region's with ``vimid``; its dead letters with
    ``dead_letters``; re-queue them with ``requeue``); returns the exit status."""
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
    if requeue and requeue_ids is None and collector is None:
        print("vesagent status: --requeue all needs --collector URL", file=err)
        return EXIT_AGENT_ERROR
    base = url.rstrip("/")
    where = shown_url(base)
    auth = (username, password or "") if username else None
    api = f"{base}{API_PREFIX}"
    try:
        if requeue:
            request = {"ids": requeue_ids, "collector": collector}
            answer = fetch(f"{api}/deadletters/requeue", auth, timeout, method="POST", body=request)
            done = parse(RequeueResult, answer, where).requeued
            lines = [f"re-queued {len(done)} dead letters" + (f": {done}" if done else "")]
        elif dead_letters:
            query = f"?collector={quote(collector, safe='')}" if collector else ""
            answer = fetch(f"{api}/deadletters{query}", auth, timeout)
            lines = render_dead_letters(parse(DeadLetterList, answer, where), where)
        elif vimid:
            answer = fetch(f"{api}/{quote(vimid, safe='')}/vesagent", auth, timeout)
            lines = render_region(parse(ConfigView, answer, where), where)
        else:
            answer = fetch(f"{api}/vesagent", auth, timeout)
            lines = render_summary(parse(RegionList, answer, where), where)
    except Unreachable as exc:
        print(f"vesagent status: {exc}", file=err)
        return EXIT_UNREACHABLE
    except AgentError as exc:
        print(f"vesagent status: {exc}", file=err)
        return EXIT_AGENT_ERROR
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
        "--dead-letters",
        action="store_true",
        help="show the events the collectors refused for their content, newest first",
    )
    parser.add_argument(
        "--requeue",
        type=parse_requeue,
        default=None,
        metavar="ID,ID|all",
        help="put these dead letters back in the outbox (all: every one of --collector)",
    )
    parser.add_argument(
        "--collector",
        default=None,
        help="only this collector's dead letters (its endpoint URL)",
    )
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
    choice = getattr(args, "requeue", None)
    return run_status(
        url,
        args.vimid,
        username,
        password,
        sys.stdout,
        timeout=args.timeout,
        dead_letters=getattr(args, "dead_letters", False),
        requeue=choice is not None,
        requeue_ids=choice if isinstance(choice, list) else None,
        collector=getattr(args, "collector", None),
    )
