"""Small frozen types from the domain, shared by the reconciler, pollers, store and VES client.

Adapters (the A&AI, Nova and VES clients, the store) take and return these; none of them
defines a domain type of its own, so the core imports no adapter to name what it handles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, order=True)
class RegionKey:
    """A cloud region's identity in A&AI: ``cloud-owner`` + ``cloud-region-id``."""

    cloud_owner: str
    cloud_region_id: str

    @property
    def vimid(self) -> str:
        """The id the seed design and the REST API use: ``{cloud-owner}_{cloud-region-id}``."""
        return f"{self.cloud_owner}_{self.cloud_region_id}"

    @property
    def path(self) -> str:
        """``cloud-owner/cloud-region-id``, the input of the shard hash."""
        return f"{self.cloud_owner}/{self.cloud_region_id}"


@dataclass(frozen=True)
class VesEvent:
    """One event, independent of the VES version it will be encoded in.

    ``fields`` holds the domain block in vesagent's own neutral vocabulary; ``ves_client``
    turns it into v5 or v7 JSON. ``domain`` is one of ``fault``, ``heartbeat``,
    ``measurement``, ``tca``.
    """

    domain: str
    event_id: str
    event_name: str
    source_name: str
    reporting_entity_name: str
    start_epoch_us: int
    last_epoch_us: int
    sequence: int
    source_id: str | None = None
    priority: str = "Normal"
    event_type: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AlarmRecord:
    """An open fault instance: what must be reused for its re-raise and clear events."""

    vimid: str
    source_id: str
    condition: str
    event_id: str
    start_epoch_us: int
    sequence: int
    severity: str
    source_name: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VimCredentials:
    """How to reach one VIM, as A&AI's ``esr-system-info`` describes it.

    ``verify`` is True (system CAs), False (``ssl-insecure``) or the path of a CA bundle
    (``ssl-cacert``). ``project_id``, when set, scopes the token by id instead of by name.
    The password never appears in ``repr`` or ``str``.
    """

    auth_url: str
    username: str
    password: str = field(repr=False)
    project_name: str | None
    user_domain: str = "Default"
    project_domain: str = "Default"
    region_name: str | None = None
    verify: bool | str = True
    project_id: str | None = None


@dataclass(frozen=True)
class CollectorAuth:
    """How to reach one VES collector (built from a region's ``ves_subscription``).

    ``repr`` hides the password.
    """

    endpoint: str
    username: str | None = None
    password: str | None = None
    timeout: float = 5.0
    verify: bool | str = True

    def __repr__(self) -> str:
        return f"CollectorAuth(endpoint={self.endpoint!r}, username={self.username!r})"

    @property
    def batch_url(self) -> str:
        """The ``eventBatch`` URL of the collector."""
        return self.endpoint.rstrip("/") + "/eventBatch"
