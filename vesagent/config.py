"""The ``vesagent_config`` of a cloud region: models, parsing, JSON-path errors, write-back.

A region is managed when its A&AI ``cloud-extra-info`` (a *string* holding a JSON object) has the
key ``vesagent_config`` (CONTRACT.md sections 3 and 4)::

    {"vesagent_config": {
        "ves_subscription": {"endpoint": "http://ves:8080/eventListener/v5",
                             "username": "user", "password": "password"},
        "poll_interval_default": 10,
        "backlogs": [{"domain": "fault", "type": "vm", "tenant": "admin"}]}}

The models are frozen and normalised, so two configurations with the same meaning compare equal
(``"10"`` and ``10``, ``pm`` and ``measurement``, ``"*"`` and an omitted filter): the reconciler
diffs these essences, never the raw text. Unknown keys are accepted, because other MultiCloud
tools share the same object, and ``warnings()`` reports them so that ``check-config`` can show
likely typos.

Every problem is a ``(json_path, message)`` pair whose path is relative to ``vesagent_config``
(``backlogs[1].poll_interval``); an empty path is the document itself. Secrets never appear in
a message, a ``repr`` or ``masked()`` output.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NoReturn, cast
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from vesagent.errors import ConfigError
from vesagent.notifications.settings import NotificationsConfig

CONFIG_KEY = "vesagent_config"
"""The key of ``cloud-extra-info`` that makes a region managed by vesagent."""

MAX_CLOUD_EXTRA_INFO_BYTES = 1024 * 1024
"""Larger ``cloud-extra-info`` values are refused before parsing (UTF-8 bytes)."""

MAX_BACKLOGS = 1000
MAX_THRESHOLDS = 100
MIN_INTERVAL = 1.0
MAX_INTERVAL = 86400.0
DEFAULT_POLL_INTERVAL = 10.0
"""``poll_interval_default`` when absent: the seed design's example value, in seconds."""

HEARTBEAT_INTERVAL = 60.0
"""Interval of a heartbeat backlog without ``poll_interval``: heartbeats are a liveness signal,
so they do not follow ``poll_interval_default`` (a 10 s heartbeat would flood the collector)."""

MEASUREMENT_INTERVAL = 300.0
"""Interval of a measurement backlog without ``poll_interval``: the VES default measurement
interval (``ves_measurement_interval_seconds``, ONAP VNF requirements chapter 7)."""

MIN_TIMEOUT = 0.5
MAX_TIMEOUT = 120.0
MIN_FAILURES = 1
MAX_FAILURES = 100

Domain = Literal["fault", "measurement", "heartbeat", "tca"]
SourceType = Literal["vm", "host", "vim"]
Severity = Literal["CRITICAL", "MAJOR", "MINOR", "WARNING"]
VesVersion = Literal["v5", "v7"]

DOMAIN_ALIASES: Mapping[str, Domain] = {
    "fault": "fault",
    "measurement": "measurement",
    "pm": "measurement",
    "measurementsforvfscaling": "measurement",
    "heartbeat": "heartbeat",
    "tca": "tca",
    "thresholdcrossingalert": "tca",
}
"""Lower-cased accepted spellings of ``domain`` and their canonical names."""

SOURCE_TYPES: tuple[SourceType, ...] = ("vm", "host", "vim")
SEVERITIES: tuple[Severity, ...] = ("CRITICAL", "MAJOR", "MINOR", "WARNING")

DOMAINS_BY_TYPE: Mapping[SourceType, tuple[Domain, ...]] = {
    "vm": ("fault", "heartbeat", "measurement", "tca"),
    "host": ("fault", "heartbeat"),
    "vim": ("fault", "heartbeat"),
}
"""The domains each source type can report: hosts and the VIM have no per-VM metrics."""

KNOWN_METRICS: tuple[str, ...] = (
    "cpu.percentUsage",
    "cpu.cpuIdle",
    "memory.percentUsage",
    "memory.memoryUsed",
    "memory.memoryFree",
    "memory.memoryConfigured",
    "disk.diskOctetsReadLast",
    "disk.diskOctetsWriteLast",
    "disk.diskOpsReadLast",
    "disk.diskOpsWriteLast",
    "nic.receivedOctetsDelta",
    "nic.transmittedOctetsDelta",
    "nic.receivedTotalPacketsDelta",
    "nic.transmittedTotalPacketsDelta",
    "nic.receivedDiscardedPacketsDelta",
    "nic.transmittedDiscardedPacketsDelta",
    "nic.receivedErrorPacketsDelta",
    "nic.transmittedErrorPacketsDelta",
)
"""Measurement names a ``tca`` threshold can watch: ``{block}.{VES field}``.

The block is the VES measurement array (``cpuUsage``, ``memoryUsage``, ``diskUsage``,
``vNicPerformance``/``nicPerformance``) and the field its VES name; ``memory.percentUsage`` is
memoryUsed / memoryConfigured in percent. Each is derivable from Nova's server diagnostics.
"""

_METRICS_BY_LOWER = {name.lower(): name for name in KNOWN_METRICS}
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_SHOW_MAX = 60
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


# --- error helpers -------------------------------------------------------------------------


def _fail(message: str) -> NoReturn:
    """Raise a validation error whose text is exactly ``message`` (no "Value error," prefix)."""
    raise PydanticCustomError("vesagent", "{message}", {"message": message})


def _fail_fields(problems: list[tuple[str, str]]) -> NoReturn:
    """Raise every cross-field problem of one model at once, each under its own field name."""
    summary = "; ".join(f"{field}: {msg}" if field else msg for field, msg in problems)
    raise PydanticCustomError(
        "vesagent_fields", "{summary}", {"summary": summary, "problems": tuple(problems)}
    )


def _show(value: object) -> str:
    """A short JSON-ish rendering of a bad value for messages; containers are only named."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        if not text.isprintable() or not _encodable(text):
            text = json.dumps(value)  # escaped: a message must survive any terminal
    elif value is None or isinstance(value, bool):
        text = json.dumps(value)
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, int):
        try:
            text = str(value)
        except ValueError:  # beyond Python's int-to-str digit limit
            text = "a number with thousands of digits"
    else:
        text = type(value).__name__
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 3] + "..."


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _fmt(number: float) -> str:
    """``1.0`` -> ``1``, ``0.5`` -> ``0.5``: bounds as people write them."""
    return str(int(number)) if float(number).is_integer() else str(number)


def _number(value: object, what: str) -> float:
    """A finite float from a JSON number or a numeric string; booleans are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        _fail(f"must be {what}, got {_show(value)}")
    if isinstance(value, str):
        text = value.strip()
        if not _NUMBER.fullmatch(text):
            _fail(f"must be {what}, got {_show(value)}")
        value = text
    try:
        number = float(value)
    except (OverflowError, ValueError):
        _fail(f"must be {what}, got {_show(value)}")
    if not math.isfinite(number):
        _fail(f"must be a finite number, got {_show(value)}")
    return number


def _seconds(value: object, low: float, high: float) -> float:
    """Seconds within ``[low, high]`` from a number or numeric string, with bound messages."""
    number = _number(value, "a number of seconds")
    if number < low:
        unit = "second" if low == 1 else "seconds"
        _fail(f"must be at least {_fmt(low)} {unit}, got {_show(value)}")
    if number > high:
        extra = " (1 day)" if high == 86400 else ""
        _fail(f"must be at most {_fmt(high)} seconds{extra}, got {_show(value)}")
    return number


def _optional_text(value: object, *, wildcard: bool = False, secret: bool = False) -> str | None:
    """None for null, blank (and ``"*"`` when ``wildcard``), else the string itself."""
    if value is None:
        return None
    if not isinstance(value, str):
        _fail("must be a string" if secret else f"must be a string, got {_show(value)}")
    if not _encodable(value):  # a lone surrogate from a "\ud800" escape
        _fail("is not valid Unicode text")
    if not value.strip() or (wildcard and value.strip() == "*"):
        return None
    return value


# --- models --------------------------------------------------------------------------------

_FROZEN = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)


class VesSubscription(BaseModel):
    """Where and how this region's events go: a VES collector's event listener.

    ``endpoint`` is the single-event URL (``.../eventListener/v5`` or ``v7``); batches go to
    ``batch_url``. ``ves_version`` is always set after validation: given explicitly, or derived
    from the endpoint (``v7`` when its path contains ``/eventListener/v7``, else ``v5``).
    ``username``/``password`` are HTTP Basic credentials (both or neither); ``password`` is a
    ``SecretStr`` and never shows in ``repr``, ``str`` or dumps.
    """

    model_config = _FROZEN

    endpoint: str
    username: str | None = None
    password: SecretStr | None = Field(
        None, json_schema_extra={"secret": "value", "sent_to": "endpoint"}
    )
    ves_version: VesVersion | None = None
    timeout: float = 5.0
    """Seconds to wait for the collector per request (0.5 .. 120)."""
    ssl_insecure: bool = False
    """Skip TLS verification of an https endpoint (explicit opt-in only)."""
    ca_file: str | None = None
    """CA bundle for an https endpoint, a path on the agent's host; system CAs when absent."""

    @model_validator(mode="before")
    @classmethod
    def _derive_version(cls, data: Any) -> Any:
        # Filled in before field validation so that an explicit version equal to the derived
        # one compares equal to no version at all.
        if isinstance(data, Mapping) and data.get("ves_version") is None:
            endpoint = data.get("endpoint")
            if isinstance(endpoint, str):
                try:
                    path = urlsplit(endpoint.strip()).path
                except ValueError:  # reported by the endpoint's own validator
                    path = ""
                return {**data, "ves_version": "v7" if "/eventListener/v7" in path else "v5"}
        return data

    @field_validator("endpoint", mode="before")
    @classmethod
    def _endpoint(cls, value: object) -> str:
        if not isinstance(value, str):
            _fail(f"must be an http or https URL, got {_show(value)}")
        text = value.strip()
        if not text.isascii() or not text.isprintable():
            _fail(f"must be printable ASCII (punycode for international names), got {_show(value)}")
        try:
            parts = urlsplit(text)
            _ = parts.port  # raises ValueError on a non-numeric or out-of-range port
        except ValueError:
            _fail(f"is not a valid URL: {_show(value)}")
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            _fail(f"must be an http or https URL with a host, got {_show(value)}")
        if " " in text:
            _fail(f"must not contain spaces, got {_show(value)}")
        if parts.username is not None or parts.password is not None:
            _fail("must not carry credentials: use ves_subscription.username and password")
        if parts.query or parts.fragment:
            _fail(f"must not have a query string or fragment, got {_show(value)}")
        path = parts.path.rstrip("/")
        if path.endswith("/eventBatch"):
            _fail("give the single-event URL (.../eventListener/v5): /eventBatch is added for you")
        return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, "", ""))

    @field_validator("username", "ca_file", mode="before")
    @classmethod
    def _text(cls, value: object) -> str | None:
        return _optional_text(value)

    @field_validator("password", mode="before")
    @classmethod
    def _password(cls, value: object) -> object:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return _optional_text(value, secret=True)

    @field_validator("ves_version", mode="before")
    @classmethod
    def _version(cls, value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or value.strip().lower() not in ("v5", "v7"):
            _fail(f'must be "v5" or "v7", got {_show(value)}')
        return value.strip().lower()

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: object) -> float:
        return 5.0 if value is None else _seconds(value, MIN_TIMEOUT, MAX_TIMEOUT)

    @model_validator(mode="after")
    def _credentials(self) -> VesSubscription:
        if self.password is not None and self.username is None:
            _fail_fields([("username", "is required when a password is given")])
        if self.username is not None and self.password is None:
            _fail_fields([("password", "is required when a username is given")])
        return self

    @property
    def version(self) -> VesVersion:
        """The VES major version events are encoded in and the listener speaks."""
        return self.ves_version or "v5"

    @property
    def batch_url(self) -> str:
        """``{endpoint}/eventBatch``: where several events of one domain are posted at once."""
        return f"{self.endpoint}/eventBatch"

    def basic_auth(self) -> tuple[str, str] | None:
        """``(username, password)`` for HTTP Basic auth, or None when no credentials are set."""
        if self.username is None or self.password is None:
            return None
        return self.username, self.password.get_secret_value()


class Threshold(BaseModel):
    """One condition of a ``tca`` backlog: ``metric`` crossing ``above`` or ``below``.

    ``above: 90`` is crossed when the value is greater than 90 (``below``: less than); a value
    equal to the limit does not cross. ``cont``: send a CONT event on each poll while the
    condition holds, not only SET and CLEAR.
    """

    model_config = _FROZEN

    metric: str
    above: float | None = None
    below: float | None = None
    severity: Severity = "MAJOR"
    cont: bool = False

    @field_validator("metric", mode="before")
    @classmethod
    def _metric(cls, value: object) -> str:
        if not isinstance(value, str):
            _fail(f"must be a metric name, got {_show(value)}")
        canonical = _METRICS_BY_LOWER.get(value.strip().lower())
        if canonical is None:
            _fail(f"unknown metric {_show(value)}; known metrics: {', '.join(KNOWN_METRICS)}")
        return canonical

    @field_validator("above", "below", mode="before")
    @classmethod
    def _limit(cls, value: object) -> float | None:
        return None if value is None else _number(value, "a number")

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: object) -> str:
        if value is None:
            return "MAJOR"
        if not isinstance(value, str) or value.strip().upper() not in SEVERITIES:
            _fail(f"must be one of {', '.join(SEVERITIES)}, got {_show(value)}")
        return value.strip().upper()

    @model_validator(mode="after")
    def _one_limit(self) -> Threshold:
        if self.above is not None and self.below is not None:
            _fail_fields([("", "give either above or below, not both")])
        if self.above is None and self.below is None:
            _fail_fields([("", "needs a limit: above or below")])
        return self

    @property
    def direction(self) -> Literal["above", "below"]:
        """Which side of ``limit`` is the alarm side."""
        return "above" if self.above is not None else "below"

    @property
    def limit(self) -> float:
        """The threshold value, whichever side it is on."""
        return cast(float, self.above if self.above is not None else self.below)

    def crossed(self, value: float) -> bool:
        """True when ``value`` is strictly on the alarm side of the limit."""
        return value > self.limit if self.direction == "above" else value < self.limit


class Backlog(BaseModel):
    """One thing to watch in a region: a ``domain`` of events from sources of one ``type``.

    - ``type`` ``vm``: servers, filtered by ``tenant`` (project name) or ``tenantid`` and by
      ``source`` (server name) or ``sourceid``; an omitted, blank or ``"*"`` filter matches
      everything (blank follows the seed MultiCloud code, which treated "" as absent). An id
      wins over a name when both are given.
    - ``type`` ``host``: compute hosts, optionally ``source``/``sourceid``; fault or heartbeat.
    - ``type`` ``vim``: the region's APIs themselves; fault or heartbeat. A VIM fault is raised
      after ``failure_threshold`` consecutive failed polls.
    - ``domain`` ``tca`` (type ``vm`` only) needs ``thresholds``; ``measurement`` is vm only.
    - ``host_faults`` (vm fault backlogs): raise a "host unreachable" fault for each VM on a
      compute host that is down.

    ``poll_interval`` is optional: see ``effective_interval``.
    """

    model_config = _FROZEN

    domain: Domain
    type: SourceType = "vm"
    tenant: str | None = None
    tenantid: str | None = None
    source: str | None = None
    sourceid: str | None = None
    poll_interval: float | None = None
    thresholds: tuple[Threshold, ...] = ()
    host_faults: bool = True
    failure_threshold: int = 3

    @field_validator("domain", mode="before")
    @classmethod
    def _domain(cls, value: object) -> str:
        canonical = DOMAIN_ALIASES.get(value.strip().lower()) if isinstance(value, str) else None
        if canonical is None:
            known = "fault, measurement (pm, measurementsForVfScaling), heartbeat, tca"
            _fail(f"must be one of {known} (thresholdCrossingAlert), got {_show(value)}")
        return canonical

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: object) -> str:
        if value is None:
            return "vm"
        if not isinstance(value, str) or value.strip().lower() not in SOURCE_TYPES:
            _fail(f"must be one of vm, host, vim, got {_show(value)}")
        return value.strip().lower()

    @field_validator("tenant", "tenantid", "source", "sourceid", mode="before")
    @classmethod
    def _filter(cls, value: object) -> str | None:
        return _optional_text(value, wildcard=True)

    @field_validator("poll_interval", mode="before")
    @classmethod
    def _interval(cls, value: object) -> float | None:
        return None if value is None else _seconds(value, MIN_INTERVAL, MAX_INTERVAL)

    @field_validator("thresholds", mode="before")
    @classmethod
    def _thresholds(cls, value: object) -> object:
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            _fail(f"must be an array of thresholds, got {_show(value)}")
        if len(value) > MAX_THRESHOLDS:
            _fail(f"at most {MAX_THRESHOLDS} thresholds, got {len(value)}")
        return value

    @field_validator("failure_threshold", mode="before")
    @classmethod
    def _failures(cls, value: object) -> int:
        if value is None:
            return 3
        message = f"must be a whole number of polls from {MIN_FAILURES} to {MAX_FAILURES}"
        number = _number(value, message.replace("must be ", "", 1))
        if not number.is_integer() or not MIN_FAILURES <= number <= MAX_FAILURES:
            _fail(f"{message}, got {_show(value)}")
        return int(number)

    @model_validator(mode="after")
    def _combination(self) -> Backlog:
        problems: list[tuple[str, str]] = []
        allowed = DOMAINS_BY_TYPE[self.type]
        if self.domain not in allowed:
            problems.append(
                ("type", f"a {self.type} backlog reports {' or '.join(allowed)}, not {self.domain}")
            )
        if self.domain == "tca" and not self.thresholds:
            problems.append(("thresholds", "a tca backlog needs at least one threshold"))
        if self.domain != "tca" and "thresholds" in self.model_fields_set:
            problems.append(("thresholds", "only tca backlogs have thresholds"))
        scoped: tuple[str, ...] = ("tenant", "tenantid") if self.type == "host" else ()
        if self.type == "vim":
            scoped = ("tenant", "tenantid", "source", "sourceid")
        for name in scoped:
            if getattr(self, name) is not None:
                problems.append((name, f"does not apply to {self.type} backlogs"))
        fault_vm = self.domain == "fault" and self.type == "vm"
        if "host_faults" in self.model_fields_set and not fault_vm:
            problems.append(("host_faults", "applies only to fault backlogs of type vm"))
        if "failure_threshold" in self.model_fields_set and self.type != "vim":
            problems.append(("failure_threshold", "applies only to backlogs of type vim"))
        if problems:
            _fail_fields(problems)
        return self

    def effective_interval(self, default: float) -> float:
        """Seconds between polls: ``poll_interval`` when given, else by domain.

        heartbeat: ``HEARTBEAT_INTERVAL`` (60 s); measurement: ``MEASUREMENT_INTERVAL``
        (300 s); fault and tca (any type): ``default``, the config's ``poll_interval_default``.
        """
        if self.poll_interval is not None:
            return self.poll_interval
        if self.domain == "heartbeat":
            return HEARTBEAT_INTERVAL
        if self.domain == "measurement":
            return MEASUREMENT_INTERVAL
        return default

    @property
    def key(self) -> str:
        """16 hex digits of the normalised content: changes whenever the backlog's meaning does.

        Stable across processes and versions of Python (sha256 of sorted JSON), so the
        reconciler can tell unchanged backlogs from new ones and use it in ids and labels.
        """
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:16]


class VesagentConfig(BaseModel):
    """A region's whole ``vesagent_config``: one collector subscription and its backlogs."""

    model_config = _FROZEN

    ves_subscription: VesSubscription
    poll_interval_default: float = DEFAULT_POLL_INTERVAL
    """Seconds (1 .. 86400); a number or a numeric string as in the seed design."""
    backlogs: tuple[Backlog, ...] = ()
    """0 .. 1000 backlogs; two backlogs with the same meaning are refused as duplicates."""
    notifications: NotificationsConfig | None = None
    """Nova's versioned notifications as doorbells (issue 19); polling alone when absent."""

    @field_validator("poll_interval_default", mode="before")
    @classmethod
    def _default_interval(cls, value: object) -> float:
        if value is None:
            return DEFAULT_POLL_INTERVAL
        return _seconds(value, MIN_INTERVAL, MAX_INTERVAL)

    @field_validator("backlogs", mode="before")
    @classmethod
    def _backlogs(cls, value: object) -> object:
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            _fail(f"must be an array of backlogs, got {_show(value)}")
        if len(value) > MAX_BACKLOGS:
            _fail(f"at most {MAX_BACKLOGS} backlogs, got {len(value)}")
        return value

    @model_validator(mode="after")
    def _unique(self) -> VesagentConfig:
        first: dict[str, int] = {}
        problems: list[tuple[str, str]] = []
        for index, backlog in enumerate(self.backlogs):
            earlier = first.setdefault(backlog.key, index)
            if earlier != index:
                problems.append((f"backlogs[{index}]", f"duplicates backlogs[{earlier}]"))
        if problems:
            _fail_fields(problems)
        return self

    def interval_of(self, backlog: Backlog) -> float:
        """Seconds between polls of ``backlog`` under this config's ``poll_interval_default``."""
        return backlog.effective_interval(self.poll_interval_default)

    def backlogs_by_key(self) -> dict[str, Backlog]:
        """Backlogs indexed by ``Backlog.key`` (unique: duplicates are refused)."""
        return {backlog.key: backlog for backlog in self.backlogs}


# --- problems from pydantic ----------------------------------------------------------------


def _path(loc: Sequence[int | str]) -> str:
    """``("backlogs", 1, "poll_interval")`` -> ``backlogs[1].poll_interval``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part:
            text += f".{part}" if text else str(part)
    return text


def _message(error: Mapping[str, Any]) -> str:
    """Plain words for pydantic's built-in error types; ours pass through unchanged."""
    kind = error["type"]
    loc = error["loc"]
    secret = bool(loc) and loc[-1] == "password"
    got = "" if secret or "input" not in error else f", got {_show(error['input'])}"
    if kind == "vesagent":
        return str(error["msg"])
    if kind == "missing":
        return "is required"
    if kind in ("string_type", "string_unicode"):
        return f"must be a string{got}"
    if kind.startswith("bool_"):
        return f"must be true or false{got}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a JSON object{got}"
    if kind in ("tuple_type", "list_type", "iterable_type"):
        return f"must be a JSON array{got}"
    return str(error["msg"])


def problems_of(exc: ValidationError) -> list[tuple[str, str]]:
    """Every ``(json_path, message)`` in a ``ValidationError`` of ``VesagentConfig``."""
    found: list[tuple[str, str]] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if error["type"] == "vesagent_fields":
            for field, message in error["ctx"]["problems"]:
                found.append((_path(loc + ((field,) if field else ())), message))
        else:
            found.append((_path(loc), _message(error)))
    return found


# --- parsing -------------------------------------------------------------------------------


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not allowed in JSON")


def _load_json(text: str, what: str) -> object:
    """``json.loads`` with the size limit and every failure as a ConfigError."""
    if len(text) > MAX_CLOUD_EXTRA_INFO_BYTES or (
        len(text.encode("utf-8", "surrogatepass")) > MAX_CLOUD_EXTRA_INFO_BYTES
    ):
        size = len(text.encode("utf-8", "surrogatepass"))
        limit = MAX_CLOUD_EXTRA_INFO_BYTES
        raise ConfigError([("", f"{what} is too large: {size} bytes, at most {limit} (1 MiB)")])
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise ConfigError([("", f"{what} is not valid JSON: {exc.msg} at {where}")]) from None
    except RecursionError:
        raise ConfigError([("", f"{what} is not usable JSON: nested too deeply")]) from None
    except ValueError as exc:
        # parse_constant's NaN/Infinity, or an integer too long for int()
        reason = str(exc).split(";")[0]
        raise ConfigError([("", f"{what} is not usable JSON: {reason}")]) from None


def parse_vesagent_config(obj: object) -> VesagentConfig:
    """Validate a decoded ``vesagent_config`` object; raises ConfigError with every problem."""
    if not isinstance(obj, Mapping):
        raise ConfigError([("", f"vesagent_config must be a JSON object, got {_show(obj)}")])
    try:
        return VesagentConfig.model_validate(obj)
    except ValidationError as exc:
        found = problems_of(exc)
    except RecursionError:
        found = [("", "vesagent_config is nested too deeply")]
    # Raised outside the handler so that no __context__ keeps the ValidationError, whose
    # errors() hold the input, passwords included.
    raise ConfigError(found)


def parse_cloud_extra_info(text: str | None) -> VesagentConfig | None:
    """The region's config from its ``cloud-extra-info`` string, or None if it has none.

    None when ``text`` is absent or blank or its object has no ``vesagent_config`` key.
    Raises ConfigError when the text is over 1 MiB, is not JSON, is not a JSON object, or its
    ``vesagent_config`` is not a valid one (paths relative to ``vesagent_config``).
    """
    if text is None or not text.strip():
        return None
    obj = _load_json(text, "cloud-extra-info")
    if not isinstance(obj, dict):
        raise ConfigError([("", f"cloud-extra-info must be a JSON object, got {_show(obj)}")])
    if CONFIG_KEY not in obj:
        return None
    return parse_vesagent_config(obj[CONFIG_KEY])


_TOP_FIELDS = frozenset(VesagentConfig.model_fields)


def _config_object(text: str) -> object:
    """The ``vesagent_config`` object inside ``check-config`` input, in any accepted form.

    Accepted: a cloud-extra-info object (has ``vesagent_config``), a bare ``vesagent_config``
    object, or a JSON string holding either (as A&AI returns ``cloud-extra-info``).
    """
    if not text.strip():
        raise ConfigError([("", "empty input: expected a JSON object")])
    obj = _load_json(text, "input")
    if isinstance(obj, str):
        if not obj.strip():
            raise ConfigError([("", "the JSON string is empty: expected a JSON object in it")])
        obj = _load_json(obj, "the JSON string")
    if not isinstance(obj, dict):
        expected = "a cloud-extra-info or vesagent_config object"
        raise ConfigError([("", f"expected {expected}, got {_show(obj)}")])
    if CONFIG_KEY in obj:
        return obj[CONFIG_KEY]
    if _TOP_FIELDS.intersection(obj):
        return obj
    message = (
        "no vesagent_config key and no vesagent_config fields (ves_subscription, backlogs): "
        "vesagent would not manage this region"
    )
    raise ConfigError([("", message)])


def check_config_text(text: str) -> list[tuple[str, str]]:
    """Every problem of ``check-config`` input as ``(json_path, message)``; [] when valid.

    Warnings (unknown keys) are not problems: see ``check_config_warnings``.
    """
    try:
        parse_vesagent_config(_config_object(text))
    except ConfigError as exc:
        return list(exc.problems)
    return []


def check_config_warnings(text: str) -> list[tuple[str, str]]:
    """``warnings()`` of the config in ``check-config`` input; [] when it cannot be read."""
    try:
        return warnings(_config_object(text))
    except ConfigError:
        return []


def _unknown_keys(
    obj: Mapping[Any, Any], known: frozenset[str], where: str, found: list[tuple[str, str]]
) -> None:
    for name in obj:
        if name in known:
            continue
        text = str(name)
        message = "unknown key, ignored"
        close = difflib.get_close_matches(text, sorted(known), n=1, cutoff=0.75)
        if close:
            message += f' (did you mean "{close[0]}"?)'
        if _PLAIN_KEY.fullmatch(text):
            found.append((f"{where}.{text}" if where else text, message))
        else:  # odd names are quoted and escaped so the path stays one readable line
            found.append((f"{where}[{json.dumps(text)}]", message))


def warnings(obj: object) -> list[tuple[str, str]]:
    """Unknown keys of a decoded ``vesagent_config`` as ``(json_path, message)``.

    Unknown keys are accepted for forward compatibility (other MultiCloud tools share the
    object), but are usually typos, so ``check-config`` prints them, with the closest known
    key as a hint. The path is the unknown key's own (``backlogs[0].sorce``; odd names are
    quoted: ``backlogs[0]["a b"]``). Only objects vesagent reads are looked at.
    """
    found: list[tuple[str, str]] = []
    if not isinstance(obj, Mapping):
        return found
    _unknown_keys(obj, _TOP_FIELDS, "", found)
    subscription = obj.get("ves_subscription")
    if isinstance(subscription, Mapping):
        known = frozenset(VesSubscription.model_fields)
        _unknown_keys(subscription, known, "ves_subscription", found)
    notifications = obj.get("notifications")
    if isinstance(notifications, Mapping):
        known = frozenset(NotificationsConfig.model_fields)
        _unknown_keys(notifications, known, "notifications", found)
    backlogs = obj.get("backlogs")
    if not isinstance(backlogs, list):
        return found
    for index, backlog in enumerate(backlogs[:MAX_BACKLOGS]):
        if not isinstance(backlog, Mapping):
            continue
        where = f"backlogs[{index}]"
        _unknown_keys(backlog, frozenset(Backlog.model_fields), where, found)
        thresholds = backlog.get("thresholds")
        if isinstance(thresholds, list):
            for number, threshold in enumerate(thresholds[:MAX_THRESHOLDS]):
                if isinstance(threshold, Mapping):
                    known = frozenset(Threshold.model_fields)
                    _unknown_keys(threshold, known, f"{where}.thresholds[{number}]", found)
    return found


# --- writing back to cloud-extra-info ------------------------------------------------------

_JSON_SPACE = " \t\n\r"


@dataclass(frozen=True)
class _Member:
    """Where one ``"key": value`` member of a JSON object sits in its text."""

    key: str
    start: int  # the key's opening quote
    value_start: int
    end: int  # just past the value


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in _JSON_SPACE:
        index += 1
    return index


def _members(text: str) -> tuple[list[_Member], int]:
    """The members of the JSON object ``text`` (already known to be valid) and where ``}`` is.

    Positions let callers edit one member and keep every other byte as it was: another
    system's values must survive exactly, not re-serialised.
    """
    decoder = json.JSONDecoder()
    index = _skip_space(text, _skip_space(text, 0) + 1)  # past "{"
    members: list[_Member] = []
    while text[index] != "}":
        start = index
        key, index = json.decoder.scanstring(text, index + 1)  # type: ignore[attr-defined]
        value_start = _skip_space(text, _skip_space(text, index) + 1)  # past ":"
        _value, index = decoder.raw_decode(text, value_start)
        members.append(_Member(key, start, value_start, index))
        index = _skip_space(text, index)
        if text[index] == ",":
            index = _skip_space(text, index + 1)
    return members, index


def _existing_object(existing: str) -> None:
    """Refuse to edit a ``cloud-extra-info`` that is not a JSON object: it is not ours."""
    try:
        obj = json.loads(existing)
    except (ValueError, RecursionError):
        obj = None
        message = "cloud-extra-info is not JSON; refusing to overwrite another system's data"
    else:
        message = "cloud-extra-info is not a JSON object; refusing to overwrite it"
    if not isinstance(obj, dict):
        raise ConfigError([("", message)])


def merge_into_cloud_extra_info(existing: str | None, config: Mapping[str, Any]) -> str:
    """``existing`` with its ``vesagent_config`` set to ``config``; every other byte kept.

    Read-modify-write for the REST API's POST: the other keys belong to other systems and
    stay exactly as they were (text, order, spacing). Raises ConfigError when ``existing`` is
    a non-blank string that is not a JSON object, since overwriting it would destroy data.
    """
    fragment = json.dumps(config, separators=(",", ":"), allow_nan=False)
    if existing is None or not existing.strip():
        return f'{{"{CONFIG_KEY}":{fragment}}}'
    _existing_object(existing)
    members, close = _members(existing)
    ours = [m for m in members if m.key == CONFIG_KEY]
    if not ours:
        at = members[-1].end if members else close
        comma = "," if members else ""
        return f'{existing[:at]}{comma}"{CONFIG_KEY}":{fragment}{existing[at:]}'
    pieces: list[str] = []
    done = 0
    for member in ours:  # every duplicate, so no JSON reader can see an old value
        pieces += [existing[done : member.value_start], fragment]
        done = member.end
    pieces.append(existing[done:])
    return "".join(pieces)


def remove_from_cloud_extra_info(existing: str | None) -> str | None:
    """``existing`` without ``vesagent_config``, every other byte kept; None if nothing is left.

    Returns ``existing`` unchanged when it is absent, blank or has no ``vesagent_config``.
    Raises ConfigError when it is a non-blank string that is not a JSON object.
    """
    if existing is None or not existing.strip():
        return existing
    _existing_object(existing)
    members, _close = _members(existing)
    doomed = [i for i, m in enumerate(members) if m.key == CONFIG_KEY]
    if not doomed:
        return existing
    if len(doomed) == len(members):
        return None
    kept = [i for i in range(len(members)) if i not in doomed]
    cuts: list[tuple[int, int]] = []
    for i in doomed:
        if kept[-1] > i:  # a kept member follows: cut this one and the separator after it
            cuts.append((members[i].start, members[i + 1].start))
        else:  # only removed ones follow: cut from the last kept member's end
            previous = max(j for j in kept if j < i)
            cuts.append((members[previous].end, members[i].end))
    text = existing
    for start, end in _merge_spans(cuts)[::-1]:
        text = text[:start] + text[end:]
    return text


def _merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping union of ``[start, end)`` spans."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def masked(config_obj: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a decoded config with every secret as ``***`` (see ``vesagent.secrets``).

    Secrets are the fields the schema marks (``json_schema_extra={"secret": ...}``: the VES
    password, a password inside a transport URL), plus unknown keys whose name looks secret;
    a null stays null so "no password" remains visible.
    """
    from vesagent.secrets import masked_config  # secrets reads these models: no import cycle

    return masked_config(config_obj)
