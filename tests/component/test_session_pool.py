"""Regions sharing VIM credentials share one Keystone token (SessionPool)."""

from __future__ import annotations

import dataclasses

import pytest

from vesagent.pollers.openstack import ComputeClient, SessionPool, VimCredentials
from vesagent.sim.openstack import OpenStackSim


@pytest.fixture(name="sim")
def _sim():
    sim = OpenStackSim(regions=("RegionOne", "RegionTwo", "RegionThree")).start()
    for region in sim.regions:
        sim.create_servers(region, 2)
    yield sim
    sim.stop()


def creds(sim: OpenStackSim, region: str, password: str = "admin") -> VimCredentials:
    return VimCredentials(sim.keystone_url, "admin", password, "admin", region_name=region)


def test_one_token_for_every_region_of_the_same_credentials(sim) -> None:
    """Three regions, one user: one token request in all, counted for the region that asked."""
    pool = SessionPool()
    clients = [
        ComputeClient(creds(sim, r), pool=pool) for r in ("RegionOne", "RegionTwo", "RegionThree")
    ]
    for client in clients:
        for _ in range(3):
            assert len(client.list_servers().servers) == 2
    assert sim.auth_count == 1
    assert [c.auth_count for c in clients] == [1, 0, 0]
    assert len(pool) == 1
    for client in clients:
        client.close()
    assert len(pool) == 0


def test_other_credentials_get_their_own_session(sim) -> None:
    """A different user (or password) is a different token."""
    sim.add_user("ops", "ops", {"admin": ["admin"]})
    pool = SessionPool()
    a = ComputeClient(creds(sim, "RegionOne"), pool=pool)
    b = ComputeClient(
        dataclasses.replace(creds(sim, "RegionTwo"), username="ops", password="ops"), pool=pool
    )
    a.list_servers()
    b.list_servers()
    assert sim.auth_count == 2 and len(pool) == 2
    a.close()
    assert len(pool) == 1
    b.list_servers()  # the other session is untouched
    b.close()
