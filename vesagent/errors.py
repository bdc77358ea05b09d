"""One error model for every adapter (A&AI, Keystone/Nova, VES collector, the state store).

Adapters classify a failure once, at the edge, with :func:`error_for_status` (HTTP answers) or
by raising one of these classes directly (connection errors, timeouts); the core and the REST
API only ever see these classes and decide by class, never by parsing messages:

- :class:`TemporaryError` is worth retrying later (connection refused, timeout, 5xx, 408, 429);
  its ``delay`` carries the server's ``Retry-After`` when it sent one.
- :class:`PermanentError` is not: the same request would fail the same way. Its subclasses say
  why, because the reaction differs: :class:`CredentialsRefused` (401: re-read the secret),
  :class:`PermissionDenied` (403: a missing role, re-reading the password will not help),
  :class:`NotFound`, :class:`Conflict` (409/412: read again, then retry the write) and
  :class:`Rejected` (any other 4xx: the request itself is wrong).

Every upstream error carries ``service`` (``"aai"``, ``"keystone"``, ``"nova"``, ``"ves"``),
``status`` (the HTTP status or None) and ``excerpt``: a short, cleaned piece of the upstream
body, safe to log and to show in an API error (never the whole body: an HTML error page can be
100 KB).
"""

from __future__ import annotations

import email.utils
import html
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime

#: The longest upstream excerpt kept in an error (characters).
EXCERPT_LIMIT = 200

_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


class VesagentError(Exception):
    """Base of every error vesagent raises on purpose."""

    def __init__(
        self,
        message: str = "",
        *,
        service: str | None = None,
        status: int | None = None,
        excerpt: str = "",
    ) -> None:
        super().__init__(message)
        self.service = service
        self.status = status
        self.excerpt = excerpt


class PermanentError(VesagentError):
    """Retrying the same request is useless: a 4xx, an invalid configuration."""


class TemporaryError(VesagentError):
    """Worth retrying: connection refused, timeout, 5xx, 408, 429.

    ``delay`` is the server's ``Retry-After`` in seconds when it sent one; retry policies wait
    at least that long.
    """

    def __init__(
        self,
        message: str = "",
        delay: float | None = None,
        *,
        service: str | None = None,
        status: int | None = None,
        excerpt: str = "",
    ) -> None:
        super().__init__(message, service=service, status=status, excerpt=excerpt)
        self.delay = delay


class CredentialsRefused(PermanentError):
    """401: the username/password (or token) were refused; a rotated secret is worth re-reading."""


class PermissionDenied(PermanentError):
    """403: authenticated, but not allowed (e.g. a missing admin role); the password is fine."""


class NotFound(PermanentError):
    """404: the thing asked for does not exist (for A&AI collections: an empty list)."""


class Conflict(PermanentError):
    """409 or 412: someone else changed it meanwhile; read again before writing."""


class Rejected(PermanentError):
    """Any other 4xx: the request itself is wrong (400, 413, 414, 422, ...)."""


class ConfigError(PermanentError):
    """A ``vesagent_config`` (or ``cloud-extra-info``) that cannot be used.

    ``problems`` holds ``(json_path, message)`` pairs, e.g. ``("backlogs[1].poll_interval",
    "must be at least 1")``.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {msg}" if path else msg for path, msg in problems))


def is_retryable_status(status: int) -> bool:
    """5xx, 408 (request timeout) and 429 (too many requests) are worth another try."""
    return status >= 500 or status in (408, 429)


def classify_http_status(status: int) -> type[VesagentError] | None:
    """The error class for an HTTP status: None for 2xx (and 1xx/3xx, which are not errors)."""
    if status < 400:
        return None
    if is_retryable_status(status):
        return TemporaryError
    return {
        401: CredentialsRefused,
        403: PermissionDenied,
        404: NotFound,
        409: Conflict,
        412: Conflict,
    }.get(status, Rejected)


def excerpt(body: str | bytes | None, limit: int = EXCERPT_LIMIT) -> str:
    """A short, single-line, tag-free piece of an upstream body, safe to log and to return."""
    if not body:
        return ""
    if isinstance(body, bytes):
        body = body[: limit * 20].decode("utf-8", errors="replace")
    text = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", body[: limit * 20]))).strip()
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_for_status(
    service: str,
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: str | bytes | None = None,
) -> VesagentError | None:
    """The one classification of an HTTP answer, shared by every adapter.

    Returns None for a non-error status. ``message`` says what was attempted (e.g. ``"A&AI GET
    cloud-regions"``); the status and a cleaned excerpt of ``body`` are appended.
    A 413 that carries ``Retry-After`` is how legacy Nova and some gateways rate-limit: it is
    temporary, like 429.
    """
    kind = classify_http_status(status)
    if kind is None:
        return None
    delay = retry_after_seconds((headers or {}).get("Retry-After"))
    if status == 413 and delay is not None:
        kind = TemporaryError
    text = excerpt(body)
    full = f"{message}: HTTP {status}" + (f": {text}" if text else "")
    if kind is TemporaryError:
        return TemporaryError(full, delay=delay, service=service, status=status, excerpt=text)
    return kind(full, service=service, status=status, excerpt=text)
