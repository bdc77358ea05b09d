"""Who polled which region when, read from the Nova simulator's request trail (issue 16).

Pure helpers over ``RequestLog.seen()``: each ``GET /compute/<region>/v2.1/servers/detail`` is
one poll of ``<region>`` by the agent whose token made it (``Seen.client``: one Keystone token
per agent process). From that timeline: the longest time a region went unpolled, and the
hand-overs where two replicas polled one region within one poll interval. The scale test and
``make bench`` both judge replicas joining, leaving and dying by these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

from vesagent.sim.base import Seen

_LISTING = re.compile(r"^/compute/([^/]+)/v2\.1/servers/detail$")


@dataclass(frozen=True)
class Overlap:
    """Region ``region`` polled by ``first`` at ``at`` and by ``second`` ``after`` s later."""

    region: str
    first: str
    second: str
    at: float
    after: float


def poll_timeline(trail: Iterable[Seen]) -> dict[str, list[tuple[float, str]]]:
    """Region -> ``[(time, client)]`` of its server listings, in time order."""
    timeline: dict[str, list[tuple[float, str]]] = {}
    for seen in trail:
        match = _LISTING.match(seen.path)
        if match and seen.method == "GET":
            timeline.setdefault(match.group(1), []).append((seen.at, seen.client))
    for polls in timeline.values():
        polls.sort()
    return timeline


def largest_gaps(
    timeline: dict[str, list[tuple[float, str]]], regions: Iterable[str], start: float, end: float
) -> dict[str, float]:
    """Region -> the longest stretch of ``[start, end]`` in which nobody polled it."""
    gaps = {}
    for region in regions:
        times = [start, *(t for t, _ in timeline.get(region, []) if start <= t <= end), end]
        gaps[region] = max(b - a for a, b in pairwise(times))
    return gaps


def overlaps(timeline: dict[str, list[tuple[float, str]]], interval: float) -> list[Overlap]:
    """Every pair of consecutive polls of one region by two clients less than ``interval``
    apart: two replicas polled it within one interval."""
    found = []
    for region, polls in timeline.items():
        for (t1, c1), (t2, c2) in pairwise(polls):
            if c1 != c2 and t2 - t1 < interval:
                found.append(Overlap(region, c1, c2, t1, t2 - t1))
    return found


def handovers(timeline: dict[str, list[tuple[float, str]]]) -> list[float]:
    """The gaps between the last poll of one owner and the first of the next, every region."""
    return [
        t2 - t1 for polls in timeline.values() for (t1, c1), (t2, c2) in pairwise(polls) if c1 != c2
    ]
