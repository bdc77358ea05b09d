"""The shared PostgreSQL goes away under two replicas, and comes back (issue 16, faults).

Its own PostgreSQL server (tests/pg.py), stopped at once (``pg_ctl -m immediate``: a crash, for
the clients; connections refused until it starts again) while two ``vesagent run`` processes
poll four regions with open faults. While it is down: nothing reaches the collector, both
replicas say why on ``/readyz`` and ``vesagent_store_up`` is 0, and their leases lapse (the
pollers stop). Faults that end or begin meanwhile are announced once the database is back, each
exactly once: the next full listing finds them, because no poll advanced the alarm state it
could not commit. At no sampled moment do two replicas poll one region.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import OWNER, AgentProcess, World
from tests.helpers import wait_until
from tests.pg import PostgresServer, private_server
from vesagent.model import RegionKey

ADMIN_ALL = [{"domain": "fault", "type": "vm", "tenant": "admin"}]
REGIONS = [f"Outage{n}" for n in range(4)]
TTL = 2.0
POLL = 1.0


@pytest.fixture
def own_pg() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own: the test stops and restarts it."""
    with private_server() as server:
        yield server


def listed(agent: AgentProcess) -> set[str]:
    """The regions an agent polls now."""
    body = requests.get(agent.url + "/api/multicloud/v0/vesagent", timeout=5).json()
    return {r["vimid"] for r in body["regions"]}


def readiness(agent: AgentProcess) -> tuple[int, dict[str, object]]:
    answer = requests.get(agent.url + "/readyz", timeout=5)
    return answer.status_code, answer.json()


def severities(world: World, vm: str) -> list[str]:
    return [e["faultFields"]["eventSeverity"] for e in world.faults(vm)]


@pytest.mark.timeout(150)
def test_database_outage_sends_nothing_uncommitted_and_catches_up_once_back(
    world: World,
    agent_factory: Callable[..., AgentProcess],
    own_pg: PostgresServer,
    tmp_path: Path,
) -> None:
    """PostgreSQL down: no event sent, /readyz and vesagent_store_up say so, leases lapse;
    back: every fault that ended or began meanwhile is cleared or raised exactly once, and
    no region is ever listed by two replicas."""
    sick, healthy = {}, {}
    for region in REGIONS:
        world.openstack.add_region(region)
        sick[region], healthy[region] = world.openstack.create_servers(region, 2, "admin")
        world.openstack.set_status(region, sick[region], "ERROR")
        world.add_region(region, ADMIN_ALL, poll=POLL)
    everything = {RegionKey(OWNER, r).vimid for r in REGIONS}
    url = own_pg.url()

    def start(i: int) -> AgentProcess:
        return agent_factory(
            state_dir=tmp_path / f"state-{i}", VESAGENT_STATE_URL=url, VESAGENT_LEASE_TTL=str(TTL)
        )

    with ThreadPoolExecutor(2) as pool:
        agents = list(pool.map(start, range(2)))
    double: list[tuple[set[str], set[str]]] = []

    def split_once() -> bool:
        a, b = (listed(agent) for agent in agents)
        if a & b:
            double.append((a, b))
        return a | b == everything and not a & b

    wait_until(split_once, 30, "the regions split between the two replicas")
    wait_until(lambda: all(world.faults(sick[r]) for r in REGIONS), 20, "every raise")
    wait_until(
        lambda: all(a.metric("vesagent_regions_unowned") == 0 for a in agents), 10, "no unowned"
    )
    assert all(a.metric("vesagent_store_up") == 1 for a in agents)
    sent = len(world.ves.events())

    own_pg.stop(remove=False)
    # Faults change while the database is away: they may be seen, but nothing may be sent.
    for region in REGIONS:
        world.openstack.set_status(region, sick[region], "ACTIVE")
        world.openstack.set_status(region, healthy[region], "ERROR")

    def says_why(agent: AgentProcess) -> bool:
        status, body = readiness(agent)
        reasons = " ".join(map(str, body.get("reasons", [])))
        return status == 503 and "state store postgresql://" in reasons and "unreachable" in reasons

    for agent in agents:
        wait_until(lambda a=agent: says_why(a), 20, "/readyz to name the unreachable store")
        wait_until(lambda a=agent: a.metric("vesagent_store_up") == 0, 10, "store_up 0")
        # The leases lapse here as they do in the database: the pollers stop, none is held.
        wait_until(lambda a=agent: not listed(a), TTL + 15, "the pollers to stop")
        assert agent.metric("vesagent_region_leases_held") == 0
        assert "store.failing" in agent.logs() and "leases.failing" in agent.logs()
    assert len(world.ves.events()) == sent, "an event went out while the database was down"

    own_pg.start()
    wait_until(
        lambda: (
            all(
                severities(world, sick[r]) == ["CRITICAL", "NORMAL"]
                and severities(world, healthy[r]) == ["CRITICAL"]
                for r in REGIONS
            )
            and split_once()
        ),
        60,
        "each changed fault cleared or raised once, every region owned once",
    )
    for agent in agents:
        wait_until(lambda a=agent: readiness(a)[0] == 200, 10, "/readyz 200 again")
        assert agent.metric("vesagent_store_up") == 1
        assert "store.recovered" in agent.logs()
    # Nothing more trickles in: each raise and clear exactly once, by eventId too.
    for region in REGIONS:
        wait_until(split_once, 5, "steady split")
        assert severities(world, sick[region]) == ["CRITICAL", "NORMAL"], region
        assert severities(world, healthy[region]) == ["CRITICAL"], region
        ids = {e["commonEventHeader"]["eventId"] for e in world.faults(sick[region])}
        assert len(ids) == 1, ids
    assert not double, f"a region listed by two replicas at once: {double[:3]}"
