"""Small frozen types from the domain, shared by the reconciler, pollers and VES client."""

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
