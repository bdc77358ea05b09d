"""``RegionSpec``: the desired state of one region, as computed from A&AI.

It is the "essence" the reconciler diffs (kopf's habit): the validated ``vesagent_config`` and
the VIM credentials, never raw A&AI bodies whose ``resource-version`` changes on every write.
"""

from __future__ import annotations

from dataclasses import dataclass

from vesagent.config import VesagentConfig
from vesagent.model import RegionKey, VimCredentials


@dataclass(frozen=True)
class RegionSpec:
    """What a region's poller must do: its config and the credentials to reach its VIM."""

    key: RegionKey
    config: VesagentConfig
    creds: VimCredentials

    @property
    def vimid(self) -> str:
        return self.key.vimid
