"""Structured logging: one ``configure()`` call, JSON on stderr by default, secrets masked.

Every log line goes through structlog's processor chain, including lines from libraries that
use the standard ``logging`` module (cheroot, urllib3, keystoneauth1), so the output is one
JSON object per line whatever wrote it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

REDACTED = "***"
SECRET_WORDS = ("password", "secret", "token", "authorization")


def is_secret_key(key: object) -> bool:
    """True for keys whose values must never be shown (``VES_password``, ``X-Auth-Token``...)."""
    lowered = str(key).lower()
    return any(word in lowered for word in SECRET_WORDS)


# ``scheme://user:password@host``: the password part of a URL's userinfo (also after a comma,
# as in oslo.messaging's multi-host transport URLs).
_URL_PASSWORD = re.compile(r"((?://|,)[^:@/?#\s,]*):[^@/?#\s]*@")


def redact_text(text: str) -> str:
    """``text`` with every password inside a URL (``rabbit://user:***@host``) masked."""
    return _URL_PASSWORD.sub(rf"\1:{REDACTED}@", text) if "@" in text else text


def redact(value: Any) -> Any:
    """Copy ``value`` with every secret-named key's value and URL password masked, at any depth."""
    if isinstance(value, Mapping):
        return {k: (REDACTED if is_secret_key(k) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> dict[str, Any]:
    """structlog processor: mask values of keys containing password/secret/token/authorization."""
    return redact(event_dict)


_DICT_TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]


def configure(fmt: str = "json", level: str = "info", stream: Any = None) -> None:
    """Route structlog and stdlib logging to ``stream`` (stderr) as JSON or console text."""
    stream = stream or sys.stderr
    renderer: Any
    if fmt == "console":
        # plain_traceback: rich/better-exceptions would print locals if installed.
        renderer = structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    else:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Tracebacks as data, WITHOUT local variables: a frame's locals can hold a request
            # body or a password (structlog shows them by default).
            _DICT_TRACEBACKS if fmt != "console" else structlog.processors.format_exc_info,
            redact_secrets,  # again: the traceback and exception message are now in the event
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # Chatty libraries stay at WARNING unless we debug.
    for noisy in ("urllib3", "keystoneauth", "werkzeug", "cheroot"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))


def get_logger(name: str = "vesagent", **bindings: Any) -> Any:
    """A bound structlog logger; bind per-region context explicitly (threads share nothing)."""
    return structlog.get_logger(name).bind(**bindings)
