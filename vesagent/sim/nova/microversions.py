"""Compute API microversion negotiation (2.1 .. ``MAX_MICROVERSION``), as Nova's wsgi layer."""

from __future__ import annotations

import re
from typing import Any

from vesagent.sim.nova.faults import NovaError

MIN_MICROVERSION = 1  # 2.1
MAX_MICROVERSION = 96  # 2.96


_VERSION_RE = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


def format_microversion(minor: int) -> str:
    """``2.x``."""
    return f"2.{minor}"


def negotiate_microversion(headers: Any) -> int:
    """The requested minor version (2.x -> x); NovaError 400/406 like Nova's wsgi layer."""
    requested = None
    for item in headers.get("OpenStack-API-Version", "").split(","):
        parts = item.strip().split()
        if len(parts) == 2 and parts[0].lower() == "compute":
            requested = parts[1]
    if requested is None:
        requested = headers.get("X-OpenStack-Nova-API-Version")
    if requested is None or not requested.strip():
        return MIN_MICROVERSION
    requested = requested.strip()
    if requested.lower() == "latest":
        return MAX_MICROVERSION
    match = _VERSION_RE.match(requested)
    if match is None:
        raise NovaError(
            400,
            f"API Version String {requested} is of invalid format. Must be of format "
            "MajorNum.MinorNum.",
        )
    major, minor = int(match.group(1)), int(match.group(2))
    if major != 2 or not MIN_MICROVERSION <= minor <= MAX_MICROVERSION:
        raise NovaError(
            406,
            f"Version {requested} is not supported by the API. Minimum is "
            f"{format_microversion(MIN_MICROVERSION)} and maximum is "
            f"{format_microversion(MAX_MICROVERSION)}.",
            echo_version=requested,
        )
    return minor
