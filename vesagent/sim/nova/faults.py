"""Nova's API faults: the ``{"<faultName>": {"code": ..., "message": ...}}`` documents."""

from __future__ import annotations

from typing import Any

_FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}


class NovaError(Exception):
    """A Nova API fault: rendered as ``{"<faultName>": {"code": ..., "message": ...}}``."""

    def __init__(self, status: int, message: str, echo_version: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.echo_version = echo_version  # a 406 repeats the version that was asked for

    def body(self) -> dict[str, Any]:
        """The real fault document."""
        name = _FAULT_NAMES.get(self.status, "computeFault")
        return {name: {"code": self.status, "message": self.message}}


class NovaUnauthorized(Exception):
    """No valid token: keystonemiddleware's 401 body, before Nova itself runs."""


def nova_fault_body(status: int, message: str) -> dict[str, Any]:
    """The fault document Nova would send for ``status``."""
    return NovaError(status, message).body()


def policy_error(rule: str) -> NovaError:
    """403 with Nova's policy message."""
    return NovaError(403, f"Policy doesn't allow {rule} to be performed.")
