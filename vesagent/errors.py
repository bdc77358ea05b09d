"""Error classes shared by every adapter.

Adapters (A&AI, Keystone/Nova, VES) classify failures once, at the edge: the core only ever
sees these. A ``TemporaryError`` is worth retrying later; a ``PermanentError`` is not (retrying
the same request would fail the same way).
"""

from __future__ import annotations


class VesagentError(Exception):
    """Base of every error vesagent raises on purpose."""


class PermanentError(VesagentError):
    """Retrying is useless: bad credentials, a 4xx, an invalid configuration."""


class TemporaryError(VesagentError):
    """Worth retrying: connection refused, timeout, 5xx, 408, 429."""

    def __init__(self, message: str = "", delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class ConfigError(PermanentError):
    """A ``vesagent_config`` (or ``cloud-extra-info``) that cannot be used.

    ``problems`` holds ``(json_path, message)`` pairs, e.g. ``("backlogs[1].poll_interval",
    "must be at least 1")``.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {msg}" if path else msg for path, msg in problems))


def classify_http_status(status: int) -> type[VesagentError] | None:
    """Map an HTTP status to an error class: None for 2xx, Temporary for 5xx/408/429."""
    if 200 <= status < 300:
        return None
    if status >= 500 or status in (408, 429):
        return TemporaryError
    return PermanentError
