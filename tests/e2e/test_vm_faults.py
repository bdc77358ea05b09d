"""VM faults end to end: A&AI config -> agent subprocess -> Nova simulator -> VES collector."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import OWNER
from tests.helpers import wait_until
from vesagent import ves_schema

ADMIN_ALL = [{"domain": "fault", "type": "vm", "tenant": "admin"}]


def severities(events) -> list[str]:
    return [e["faultFields"]["eventSeverity"] for e in events]


@pytest.mark.parametrize("version", ["v5", "v7"])
def test_error_vm_raises_once_and_clears_once(world, agent_factory, version) -> None:
    """An ERROR VM raises one fault; back to ACTIVE, one clear with the same eventId."""
    ids = world.openstack.create_servers("RegionOne", 3, project="admin")
    world.add_region("RegionOne", ADMIN_ALL, version=version)
    agent_factory()
    target = ids[1]
    world.openstack.set_status(
        "RegionOne", target, "ERROR", fault={"code": 500, "message": "No valid host was found."}
    )
    raised = wait_until(lambda: world.faults(target), what="the raise")
    header = raised[0]["commonEventHeader"]
    assert header["sourceName"] == world.openstack.server("RegionOne", target)["name"]
    assert raised[0]["faultFields"]["eventSourceType"] == "virtualMachine"
    assert severities(raised) == ["CRITICAL"]
    world.openstack.set_status("RegionOne", target, "ACTIVE")
    events = wait_until(
        lambda: len(world.faults(target)) >= 2 and world.faults(target), what="the clear"
    )
    assert severities(events) == ["CRITICAL", "NORMAL"]
    assert events[1]["commonEventHeader"]["eventId"] == header["eventId"]
    assert events[1]["commonEventHeader"]["sequence"] == header["sequence"] + 1
    for event in events:
        assert ves_schema.errors({"event": event}, version) == []
    # Several more polls: still exactly one raise and one clear.
    polls = world.openstack.requests.total("/compute/RegionOne/v2.1/servers")
    wait_until(
        lambda: world.openstack.requests.total("/compute/RegionOne/v2.1/servers") >= polls + 3,
        what="three more polls",
    )
    assert len(world.faults(target)) == 2
    assert len(world.faults()) == 2  # the healthy VMs raised nothing


def test_deleted_faulty_vm_clears(world, agent_factory) -> None:
    """A faulty VM that is deleted gets its clear."""
    (vm,) = world.openstack.create_servers("RegionOne", 1, project="admin")
    world.add_region("RegionOne", ADMIN_ALL)
    agent_factory()
    world.openstack.set_status("RegionOne", vm, "SHUTOFF")
    wait_until(lambda: world.faults(vm), what="the raise")
    world.openstack.delete_server("RegionOne", vm)
    events = wait_until(lambda: len(world.faults(vm)) == 2 and world.faults(vm), what="clear")
    assert severities(events) == ["MAJOR", "NORMAL"]


def test_wildcard_backlog_covers_new_vm_of_tenant(world, agent_factory) -> None:
    """A backlog without source covers every VM of its tenant, also ones created later."""
    world.openstack.add_project("tenant-x")
    world.openstack.create_servers("RegionOne", 2, project="tenant-x", prefix="x")
    (other,) = world.openstack.create_servers("RegionOne", 1, project="admin", prefix="other")
    world.add_region(
        "RegionOne", [{"domain": "fault", "type": "vm", "tenant": "tenant-x", "source": "*"}]
    )
    agent = agent_factory()
    wait_until(lambda: agent.polls("RegionOne"), what="a first poll")
    (late,) = world.openstack.create_servers("RegionOne", 1, project="tenant-x", prefix="late")
    world.openstack.set_status("RegionOne", late, "ERROR")
    world.openstack.set_status("RegionOne", other, "ERROR")
    wait_until(lambda: world.faults(late), what="the late VM's raise")
    assert world.faults(other) == []  # another tenant's VM is not watched


def test_backlog_added_and_removed_in_aai(world, agent_factory) -> None:
    """Editing cloud-extra-info starts and stops watching without a restart."""
    (vm,) = world.openstack.create_servers("RegionOne", 1, project="admin")
    world.add_region("RegionOne", [])
    agent = agent_factory(sync=0.5)
    world.openstack.set_status("RegionOne", vm, "ERROR")
    world.set_config("RegionOne", ADMIN_ALL)
    wait_until(lambda: world.faults(vm), timeout=5, what="raise after the backlog was added")
    world.set_config("RegionOne", [])
    events = wait_until(
        lambda: len(world.faults(vm)) == 2 and world.faults(vm),
        timeout=5,
        what="clear after the backlog was removed",
    )
    assert severities(events) == ["CRITICAL", "NORMAL"]
    # With no backlog left the region is not polled any more: two more A&AI passes, no polls.
    before = world.openstack.requests.total("/compute/RegionOne/v2.1/servers")
    syncs = world.aai.requests.total("/aai/v13/cloud-infrastructure/cloud-regions")
    wait_until(
        lambda: (
            world.aai.requests.total("/aai/v13/cloud-infrastructure/cloud-regions") >= syncs + 3
        ),
        what="more A&AI passes",
    )
    assert world.openstack.requests.total("/compute/RegionOne/v2.1/servers") <= before + 1
    del agent


def test_malformed_config_on_one_region_leaves_others_alone(world, agent_factory) -> None:
    """A broken cloud-extra-info on one region never disturbs another region."""
    (vm1,) = world.openstack.create_servers("RegionOne", 1, project="admin")
    (vm2,) = world.openstack.create_servers("RegionTwo", 1, project="admin")
    world.add_region("RegionOne", ADMIN_ALL)
    world.add_region("RegionTwo", ADMIN_ALL)
    agent = agent_factory()
    world.aai.set_extra_info(OWNER, "RegionTwo", '{"vesagent_config": {"backlogs": 5')
    world.openstack.set_status("RegionOne", vm1, "ERROR")
    wait_until(lambda: world.faults(vm1), what="RegionOne raise")
    wait_until(
        lambda: agent.metric("vesagent_config_error", vimid=f"{OWNER}_RegionTwo"),
        what="RegionTwo's config error on /metrics",
    )
    assert "config.invalid" in agent.logs()
    # RegionTwo keeps its last valid config: its VM is still watched.
    world.openstack.set_status("RegionTwo", vm2, "ERROR")
    wait_until(lambda: world.faults(vm2), what="RegionTwo raise on its last valid config")
    assert agent.metric("vesagent_config_error", vimid=f"{OWNER}_RegionTwo") == 1.0
    assert agent.metric("vesagent_config_error", vimid=f"{OWNER}_RegionOne") == 0.0


def test_poll_cost_at_3000_vms(world, agent_factory) -> None:
    """With 3,000 VMs an incremental poll costs one Nova request, not one per VM."""
    ids = world.openstack.create_servers("RegionOne", 3000, project="admin")
    world.add_region("RegionOne", ADMIN_ALL)
    agent_factory()
    prefix = "/compute/RegionOne/v2.1/servers"
    wait_until(lambda: world.openstack.requests.total(prefix) >= 3, what="full poll")
    wait_until(lambda: world.openstack.requests.total(prefix) >= 6, what="incremental polls")
    start = world.openstack.requests.total(prefix)
    world.openstack.set_status("RegionOne", ids[1234], "ERROR")
    wait_until(lambda: world.faults(ids[1234]), what="the raise")
    wait_until(lambda: world.openstack.requests.total(prefix) >= start + 5, what="5 more polls")
    polls_seen = world.openstack.requests.total(prefix) - start
    # Each incremental poll is one request; allow the polls in flight while we counted.
    assert polls_seen <= 8, world.openstack.requests.snapshot()
    assert len(world.faults()) == 1
