"""Changing the replica count, 3 -> 5 -> 2, with agents as processes on one PostgreSQL.

Judged from the Nova simulator's request trail (which agent's token listed which region's
servers when, ``vesagent.bench.leases``): over the whole change no region went unpolled for
longer than the lease TTL plus one poll interval, and no region was polled by two replicas
within one poll interval. Scaling down is what Kubernetes does: SIGTERM, so the leaving
replicas hand their leases back.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import OWNER, AgentProcess, World
from tests.helpers import wait_until
from vesagent.bench.leases import handovers, largest_gaps, overlaps, poll_timeline
from vesagent.leases import assign
from vesagent.model import RegionKey

ADMIN_ALL = [{"domain": "fault", "type": "vm", "tenant": "admin"}]
REGIONS = [f"Scale{n:02d}" for n in range(10)]
TTL = 3.0
POLL = 1.0


def listed(agent: AgentProcess) -> set[str]:
    """The regions an agent polls now."""
    body = requests.get(agent.url + "/api/multicloud/v0/vesagent", timeout=5).json()
    return {r["vimid"] for r in body["regions"]}


def expected_split(agents: list[AgentProcess]) -> list[set[str]]:
    """What rendezvous hashing over these agents' replica ids (host-pid) gives each."""
    ids = [f"{socket.gethostname()}-{a.proc.pid}" for a in agents if a.proc is not None]
    keys = {RegionKey(OWNER, r).path: RegionKey(OWNER, r).vimid for r in REGIONS}
    owners = assign({k: frozenset() for k in keys}, {i: frozenset() for i in ids})
    return [{keys[k] for k, o in owners.items() if o == i} for i in ids]


@pytest.mark.timeout(150)
def test_three_to_five_to_two_replicas_never_leave_a_region_unpolled_or_doubly_polled(
    world: World, agent_factory: Callable[..., AgentProcess], pg_url: str, tmp_path: Path
) -> None:
    """3 -> 5 -> 2 replicas: every region polled at least every TTL + interval, and never by
    two replicas within one interval (the Nova simulator's trail of who listed what)."""
    for region in REGIONS:
        world.openstack.add_region(region)
        world.openstack.create_servers(region, 1, "admin")
        world.add_region(region, ADMIN_ALL, poll=POLL)
    world.openstack.requests.keep_trail()
    count = 0

    def start(_: int) -> AgentProcess:
        nonlocal count
        count += 1
        return agent_factory(
            state_dir=tmp_path / f"state-{count}",
            VESAGENT_STATE_URL=pg_url,
            VESAGENT_LEASE_TTL=str(TTL),
        )

    def settled(agents: list[AgentProcess]) -> bool:
        return [listed(a) for a in agents] == expected_split(agents)

    with ThreadPoolExecutor(3) as pool:
        agents = list(pool.map(start, range(3)))
    wait_until(lambda: settled(agents), 30, "3 replicas to split the regions")
    begin = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        agents += list(pool.map(start, range(2)))
    wait_until(lambda: settled(agents), 30, "5 replicas to split the regions")
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda a: a.stop(signal.SIGTERM), agents[:3]))
    agents = agents[3:]
    wait_until(lambda: settled(agents), 30, "2 replicas to split the regions")
    settled_at = time.monotonic()
    # Judge the trail up to a moment every region has been polled again after the last move.
    wait_until(lambda: _all_polled_since(world, settled_at), 10, "a poll of every region")
    end = time.monotonic()

    timeline = poll_timeline(world.openstack.requests.seen())
    gaps = largest_gaps(timeline, REGIONS, begin, end)
    doubles = overlaps(timeline, POLL)
    moves = handovers(timeline)
    print(
        f"3->5->2 over {end - begin:.1f}s: largest unpolled gap {max(gaps.values()):.2f}s "
        f"(limit {TTL + POLL}s), {len(moves)} hand-overs, shortest {min(moves):.2f}s, "
        f"{len(doubles)} polled twice within {POLL}s"
    )
    assert max(gaps.values()) <= TTL + POLL, gaps
    assert not doubles, doubles[:5]


def _all_polled_since(world: World, since: float) -> bool:
    timeline = poll_timeline(world.openstack.requests.seen())
    return all(any(t >= since for t, _ in timeline.get(r, [])) for r in REGIONS)
