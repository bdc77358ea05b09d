"""The console's ONE window on the agent: every value a page shows is read (or written) here.

Pages never reach into the agent's parts themselves. This module calls the functions the REST
API already uses (``api.region_status``, ``RegionEditor``, ``keep_masked_password``), the
store (``alarms``, ``dead_letters``, ``depth``, ``oldest_created``), the sender's delivery
state, the reconciler's cache and :mod:`vesagent.history`, and turns them into small view
objects with display-ready fields. When the typed status model replaces ``region_status``'s
dicts, only this module changes.

Secrets stop here: configs leave this module masked (``config.masked``), and the fingerprint
the editor carries to detect concurrent edits is an HMAC with a per-process key, so it tells
the browser nothing about the password.
"""

from __future__ import annotations

import calendar
import difflib
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vesagent.api import (
    Refused,
    RegionEditor,
    RegionNotFound,
    checked_cloud_extra_info,
    region_status,
)
from vesagent.config import (
    CONFIG_KEY,
    check_config_text,
    check_config_warnings,
    masked,
    merge_into_cloud_extra_info,
)
from vesagent.errors import ConfigError, Conflict, PermanentError, TemporaryError
from vesagent.history import HISTORY, EventRecord, PollRecord
from vesagent.logs import get_logger
from vesagent.model import RegionKey
from vesagent.secrets import keep_masked_secrets
from vesagent.ui.jsonpos import line_of

log = get_logger("vesagent.ui")

#: Severities in display order, most severe first (VES v5 and v7 use the same words).
SEVERITIES = ("CRITICAL", "MAJOR", "MINOR", "WARNING")
_FINGERPRINT_KEY = secrets.token_bytes(32)
_SYNTAX_LINE = re.compile(r"not valid JSON: .* at line (\d+) column \d+")


# -- view objects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A ``check-config`` problem (or warning) with the editor line its path points at."""

    path: str
    message: str
    line: int | None = None


@dataclass
class RegionSummary:
    """One row of the overview: everything about a region worth a glance."""

    vimid: str
    running: bool
    config_errors: list[Problem]
    poll_at: float | None = None
    poll_ok: bool | None = None
    poll_error: str = ""
    failing_since: float | None = None
    consecutive_failures: int = 0
    notifications: str | None = None  # None: this agent has no notification listener
    collector: str = ""
    collector_up: bool | None = None
    collector_error: str = ""
    last_delivery: float | None = None
    outbox_depth: int = 0
    oldest_age: float | None = None
    alarms_by_severity: dict[str, int] = field(default_factory=dict)
    credentials_error: str | None = None

    @property
    def alarm_total(self) -> int:
        return sum(self.alarms_by_severity.values())

    @property
    def health(self) -> str:
        """``bad``, ``warn`` or ``ok``: the colour of the row's marker."""
        if self.config_errors and not self.running:
            return "bad"
        if self.poll_ok is False or self.collector_up is False or self.credentials_error:
            return "bad"
        if self.config_errors or self.alarm_total:
            return "warn"
        return "ok"


@dataclass(frozen=True)
class AlarmView:
    """An open alarm as the region page lists it."""

    source_name: str
    source_id: str
    condition: str
    severity: str
    since: float


@dataclass
class RegionDetail:
    """The region page: the summary plus alarms, recent events, dead letters and history."""

    summary: RegionSummary
    alarms: list[AlarmView]
    events: list[EventRecord]
    dead_letters: list[dict[str, Any]]
    polls: list[PollRecord]
    per_minute: list[tuple[int, dict[str, int]]]
    backlogs: list[dict[str, Any]]
    warnings: list[Problem]


@dataclass
class EditorState:
    """What the editor opens with: A&AI's config, masked and pretty, and its fingerprint."""

    vimid: str
    text: str
    fingerprint: str
    resource_version: str
    exists: bool


@dataclass
class CheckResult:
    """The validation endpoint's answer: problems, warnings and the diff against A&AI."""

    problems: list[Problem]
    warnings: list[Problem]
    diff: list[str]


@dataclass
class SaveResult:
    """A save: ``saved``, or refused for ``problems``, or stopped by a concurrent edit."""

    saved: bool
    problems: list[Problem] = field(default_factory=list)
    conflict_text: str | None = None  # A&AI's current config (masked) when someone else edited
    conflict_diff: list[str] = field(default_factory=list)
    error: str = ""
    resource_version: str = ""


# -- reads ----------------------------------------------------------------------------------


def parse_key(vimid: str) -> RegionKey:
    """The region of a vimid in a console URL; RegionNotFound when it is not one."""
    owner, sep, region = vimid.partition("_")
    if not sep or not owner or not region:
        raise RegionNotFound(f"{vimid!r} is not a vimid ({{cloud-owner}}_{{cloud-region-id}})")
    return RegionKey(owner, region)


def known_regions(agent: Any) -> list[RegionKey]:
    """This replica's regions that carry a vesagent_config, valid or not, sorted."""
    reconciler = agent.reconciler
    keys = set(reconciler.cache.config)
    for key, (_text, config, error) in list(reconciler.cache.parsed.items()):
        if (config is not None or error is not None) and reconciler.shard.owns(key.path):
            keys.add(key)
    return sorted(keys)


def _timestamp(iso: str | None) -> float | None:
    """``region_status``'s ISO times back to epoch seconds (the pages show ages)."""
    if not iso:
        return None
    return float(calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")))


def _problems(pairs: list[Any], text: str = "") -> list[Problem]:
    """``(path, message)`` pairs (or their dict form) as Problems, lines resolved in ``text``.

    A JSON syntax error has no path: its line is the one ``check-config``'s message names.
    """
    found = []
    for pair in pairs:
        path, message = (pair["path"], pair["message"]) if isinstance(pair, Mapping) else pair
        line = line_of(text, path) if text else None
        syntax = _SYNTAX_LINE.search(message) if not path else None
        found.append(Problem(path, message, int(syntax[1]) if syntax else line))
    return found


def summary(agent: Any, key: RegionKey) -> RegionSummary:
    """The overview row of one region."""
    status = region_status(agent, key)
    row = RegionSummary(
        vimid=key.vimid,
        running=bool(status.get("running")),
        config_errors=_problems(status.get("config_errors", [])),
        credentials_error=status.get("credentials_error"),
        notifications=_notifications(agent, key),
    )
    last = status.get("last_poll") or {}
    row.poll_at = _timestamp(last.get("at"))
    row.poll_ok = last.get("ok")
    row.poll_error = last.get("error") or ""
    poller = agent.pollers.get(key)
    if poller is not None:
        health = poller.health
        row.consecutive_failures = health.consecutive_failures
        if health.failed_since_us:
            row.failing_since = health.failed_since_us / 1_000_000
    collector = status.get("collector")
    if collector:
        endpoint = collector["endpoint"]
        row.collector = endpoint
        row.outbox_depth = collector["outbox_depth"]
        row.collector_error = collector.get("last_error") or ""
        row.last_delivery = agent.sender.last_success.get(endpoint)
        if row.collector_error:
            row.collector_up = False
        elif row.last_delivery is not None:
            row.collector_up = True
        oldest = agent.store.oldest_created(endpoint)
        row.oldest_age = None if oldest is None else max(0.0, time.time() - oldest)
    counts: dict[str, int] = {}
    for alarm in agent.store.alarms(key.vimid).values():
        counts[alarm.severity] = counts.get(alarm.severity, 0) + 1
    row.alarms_by_severity = counts
    return row


def _notifications(agent: Any, key: RegionKey) -> str | None:
    """The notification listener's state for a region, once the agent has one (issue 19)."""
    hub = getattr(agent, "notifications", None)
    if hub is None:
        return None
    shown = hub.region_status(key)  # None: the region configures no notifications
    return None if shown is None else str(shown["state"])


def overview(agent: Any) -> list[RegionSummary]:
    """Every known region's summary, sorted by vimid."""
    return [summary(agent, key) for key in known_regions(agent)]


def agent_facts(agent: Any) -> dict[str, Any]:
    """The header line: A&AI freshness, shard, totals."""
    reconciler = agent.reconciler
    return {
        "shard": str(agent.settings.shard),
        "aai_last_success": reconciler.last_success,
        "aai_error": reconciler.last_error or "",
        "outbox_depth": agent.store.depth(),
        "alarms": agent.store.alarm_count(),
        "started": agent.started,
    }


def region_detail(agent: Any, key: RegionKey) -> RegionDetail:
    """Everything the region page shows."""
    if key not in known_regions(agent):
        raise RegionNotFound(
            f"{key.vimid}: no vesagent_config for this agent (not in A&AI, not configured, "
            "or another shard's region)"
        )
    row = summary(agent, key)
    alarms = sorted(
        (
            AlarmView(
                source_name=a.source_name,
                source_id=a.source_id,
                condition=a.condition,
                severity=a.severity,
                since=a.start_epoch_us / 1_000_000,
            )
            for a in agent.store.alarms(key.vimid).values()
        ),
        key=lambda a: (_severity_rank(a.severity), -a.since),
    )
    status = region_status(agent, key)
    letters = agent.store.dead_letters(row.collector, limit=20) if row.collector else []
    for letter in letters:
        letter.pop("body", None)  # the event itself: not needed on the page, and large
    return RegionDetail(
        summary=row,
        alarms=alarms,
        events=list(reversed(HISTORY.events(key.vimid)))[:50],
        dead_letters=letters,
        polls=HISTORY.polls(key.vimid),
        per_minute=HISTORY.per_minute(key.vimid),
        backlogs=status.get("backlogs", []),
        warnings=_problems(status.get("config_warnings", [])),
    )


def _severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


# -- the editor -----------------------------------------------------------------------------


def fingerprint(config: Any) -> str:
    """A tag of a stored config that changes whenever it changes and reveals nothing of it."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hmac.new(_FINGERPRINT_KEY, canonical.encode(), hashlib.sha256).hexdigest()[:32]


def stored_config(extra_info: Any) -> Any:
    """The ``vesagent_config`` inside a cloud-extra-info string (None when there is none)."""
    try:
        obj = json.loads(extra_info) if isinstance(extra_info, str) else None
    except ValueError:
        return None
    return obj.get(CONFIG_KEY) if isinstance(obj, dict) else None


def pretty(config: Any) -> str:
    """A masked config as the editor shows it."""
    if config is None:
        return ""
    return json.dumps(masked(config) if isinstance(config, dict) else config, indent=2) + "\n"


def editor_state(agent: Any, key: RegionKey) -> EditorState:
    """A&AI's current config of a region for the editor (masked)."""
    body = agent.aai.get_region(key)
    if body is None:
        raise RegionNotFound(key)
    config = stored_config(body.get("cloud-extra-info"))
    return EditorState(
        vimid=key.vimid,
        text=pretty(config),
        fingerprint=fingerprint(config),
        resource_version=str(body.get("resource-version", "")),
        exists=config is not None,
    )


def check(text: str) -> tuple[list[Problem], list[Problem]]:
    """Exactly ``vesagent check-config``'s problems and warnings, each with its editor line."""
    return (
        _problems(check_config_text(text), text),
        _problems(check_config_warnings(text), text),
    )


def diff_lines(before: str, after: str, before_name: str, after_name: str) -> list[str]:
    """A unified diff of two editor texts (empty when equal)."""
    return list(
        difflib.unified_diff(
            before.splitlines(), after.splitlines(), before_name, after_name, lineterm="", n=2
        )
    )


def check_against_aai(agent: Any, key: RegionKey, text: str) -> CheckResult:
    """The validation endpoint: ``check-config``'s verdict plus the diff against A&AI."""
    problems, warnings = check(text)
    try:
        current = editor_state(agent, key).text
    except (TemporaryError, PermanentError, RegionNotFound) as exc:
        current = ""
        warnings.append(Problem("", f"cannot read A&AI for the diff: {exc}"))
    return CheckResult(problems, warnings, diff_lines(current, text, "A&AI", "editor"))


def save(agent: Any, key: RegionKey, text: str, base: str) -> SaveResult:
    """Write the editor's config to A&AI by read-modify-write, never over someone else's edit.

    ``base`` is the fingerprint of the config the editor was opened with: if A&AI's config no
    longer matches it, someone else changed it meanwhile and nothing is written. Other keys of
    cloud-extra-info are kept (``merge_into_cloud_extra_info``), and a password left masked
    keeps its stored value only while it would go to the same place (``keep_masked_secrets``),
    and A&AI gets only what the agent would accept (``checked_cloud_extra_info``): the REST
    API's POST rules, not a copy of them.
    """
    problems, _warnings = check(text)
    if problems:
        return SaveResult(False, problems=problems)
    posted = json.loads(text)
    if isinstance(posted, str):  # check-config also takes the config as a JSON string
        posted = json.loads(posted)
    if isinstance(posted, dict) and CONFIG_KEY in posted:
        posted = posted[CONFIG_KEY]
    theirs: dict[str, Any] = {}

    def change(extra_info: str | None) -> str | None:
        stored = stored_config(extra_info)
        if fingerprint(stored) != base:
            theirs["config"] = stored
            raise Conflict("the config in A&AI changed since the editor opened it", service="aai")
        config = keep_masked_secrets(posted, stored)  # ConfigError: a secret sent elsewhere
        return checked_cloud_extra_info(merge_into_cloud_extra_info(extra_info, config))

    try:
        RegionEditor(agent).edit(key, change)
    except Conflict:
        current = pretty(theirs.get("config"))
        log.info("ui.write_conflict", vimid=key.vimid)
        return SaveResult(
            False,
            conflict_text=current,
            conflict_diff=diff_lines(current, text, "A&AI (changed meanwhile)", "your edit"),
        )
    except ConfigError as exc:  # before PermanentError, its base: the editor's own mistake
        return SaveResult(
            False, problems=[Problem(path, message) for path, message in exc.problems]
        )
    except Refused as exc:
        return SaveResult(False, error=str(exc))
    except (TemporaryError, PermanentError) as exc:
        return SaveResult(False, error=f"A&AI refused or could not be reached: {exc}")
    log.info("ui.config_written", vimid=key.vimid)
    try:
        agent.reconciler.sync()  # follow at once, as the REST API does after a write
    except Exception:  # the write succeeded; the periodic pass converges anyway
        log.exception("ui.reconcile_failed")
    return SaveResult(True, resource_version=editor_state(agent, key).resource_version)
