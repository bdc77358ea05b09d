"""What a region's poller needs from a compute cloud: the ``ComputeApi`` protocol.

``openstack.ComputeClient`` (Keystone v3 + Nova v2.1) is the implementation the agent runs;
a test or another cloud adapter may pass anything with these members. Every call raises
``vesagent.errors.TemporaryError`` or ``PermanentError`` on failure (the poller classifies
nothing itself) and returns Nova's JSON items as they came, untrusted: the pure parsers
(``ServerView.from_nova``, ``HostView.from_nova``, ``Reading.from_diagnostics``) read them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class ServerListing(Protocol):
    """One ``GET /servers/detail`` over all its pages (``openstack.ServerPage``).

    ``server_time`` is Nova's ``Date`` when ``server_clock`` is True, else the agent's clock
    when the request was sent; the poller's watermark prefers the servers' own ``updated``.
    """

    @property
    def servers(self) -> list[dict[str, Any]]: ...

    @property
    def server_time(self) -> datetime: ...

    @property
    def server_clock(self) -> bool: ...


class ComputeApi(Protocol):
    """The calls one poll cycle makes on a region's compute API, and its request counters."""

    @property
    def requests_made(self) -> int:
        """Compute requests sent so far (the poller reports the difference per poll)."""
        ...

    @property
    def auth_count(self) -> int:
        """Token requests made so far."""
        ...

    def list_servers(self, *, changes_since: datetime | None = None) -> ServerListing:
        """Every server (``all_tenants``); with ``changes_since``, only those updated at or
        after it, deleted ones included."""
        ...

    def list_services(self) -> list[dict[str, Any]]:
        """The ``nova-compute`` service records (host liveness)."""
        ...

    def list_hypervisors(self) -> list[dict[str, Any]]:
        """Hypervisor records (informative: state/status for the status API)."""
        ...

    def compute_endpoint(self) -> str:
        """The region's compute URL (authenticates: is the cloud reachable at all?)."""
        ...

    def diagnostics(self, server_id: str) -> dict[str, Any]:
        """One server's diagnostics (measurements)."""
        ...

    def resolve_project(self, name: str, domain: str = "Default") -> str | None:
        """A project's id by name (None: no such project)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
