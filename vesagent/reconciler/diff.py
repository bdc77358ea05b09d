"""The pure diff of desired region specs against running ones."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vesagent.model import RegionKey
from vesagent.spec import RegionSpec


@dataclass(frozen=True)
class Plan:
    """What converging takes: regions to start, to stop, and to adopt a changed spec."""

    start: tuple[RegionSpec, ...] = ()
    stop: tuple[RegionKey, ...] = ()
    update: tuple[RegionSpec, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.start or self.stop or self.update)


def diff(desired: Mapping[RegionKey, RegionSpec], running: Mapping[RegionKey, RegionSpec]) -> Plan:
    """Compare essences (validated configs + credentials); order is by region key."""
    start = tuple(desired[k] for k in sorted(desired.keys() - running.keys()))
    stop = tuple(sorted(running.keys() - desired.keys()))
    update = tuple(
        desired[k] for k in sorted(desired.keys() & running.keys()) if desired[k] != running[k]
    )
    return Plan(start, stop, update)
