"""Never lose or duplicate an alarm: collector outages, kill -9, restarts, A&AI outages."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import requests

from tests.helpers import wait_until

ADMIN_ALL = [{"domain": "fault", "type": "vm", "tenant": "admin"}]
PREFIX = "/compute/RegionOne/v2.1/servers"


def run_agent_expecting_failure(world, state_dir) -> subprocess.CompletedProcess[str]:
    """``vesagent run`` that should stop at once: its exit code and stderr."""
    env = {
        **os.environ,
        "VESAGENT_AAI_URL": world.aai.url,
        "VESAGENT_STATE_DIR": str(state_dir),
        "VESAGENT_LISTEN": "127.0.0.1:0",
    }
    return subprocess.run(
        [sys.executable, "-m", "vesagent", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def raise_and_clear_counts(world, vm: str) -> tuple[int, int]:
    sev = [e["faultFields"]["eventSeverity"] for e in world.faults(vm)]
    return sum(s != "NORMAL" for s in sev), sum(s == "NORMAL" for s in sev)


def outbox_depth(state_dir) -> int:
    with sqlite3.connect(state_dir / "vesagent.sqlite3") as db:
        return db.execute("select count(*) from outbox").fetchone()[0]


@pytest.mark.parametrize("mode", ["503", "refuse", "hang"])
def test_collector_outage_delays_but_never_loses_events(world, agent_factory, mode) -> None:
    """Raises and clears made during an outage arrive afterwards, in order, exactly once."""
    vms = world.openstack.create_servers("RegionOne", 3, project="admin")
    world.add_region("RegionOne", ADMIN_ALL)
    agent = agent_factory()
    world.ves.outage(mode)
    polls = world.openstack.requests.total(PREFIX)
    world.openstack.set_status("RegionOne", vms[0], "ERROR")
    world.openstack.set_status("RegionOne", vms[1], "SHUTOFF")
    wait_until(lambda: world.openstack.requests.total(PREFIX) >= polls + 2, what="polls")
    world.openstack.set_status("RegionOne", vms[0], "ACTIVE")
    wait_until(lambda: world.openstack.requests.total(PREFIX) >= polls + 4, what="more polls")
    collector = f'collector="{world.ves.url}/eventListener/v5"'
    metrics = wait_until(  # a hanging collector shows only once the client times out (5 s)
        lambda: (
            (text := requests.get(agent.url + "/metrics", timeout=5).text)
            and f"vesagent_collector_up{{{collector}}} 0.0" in text
            and text
        ),
        what="collector_up 0",
    )
    assert f"vesagent_outbox_depth{{{collector}}} 0.0" not in metrics
    assert agent.logs().count('"delivery.failing"') == 1  # a state change, not a flood
    world.ves.restore()
    wait_until(lambda: len(world.faults()) == 3, timeout=30, what="the buffered events")
    wait_until(
        lambda: agent.metric(
            "vesagent_collector_up", collector=f"{world.ves.url}/eventListener/v5"
        ),
        what="collector_up 1",
    )
    # The recovery is logged right after collector_up is set: the log line itself is tested.
    wait_until(lambda: '"delivery.recovered"' in agent.logs(), 2, "the recovery in the log")
    assert raise_and_clear_counts(world, vms[0]) == (1, 1)
    assert raise_and_clear_counts(world, vms[1]) == (1, 0)
    first = [e["commonEventHeader"] for e in world.faults(vms[0])]
    assert first[0]["eventId"] == first[1]["eventId"]
    assert [h["sequence"] for h in first] == [1, 2]  # the raise before its clear


def test_kill_9_loses_nothing_and_restart_does_not_duplicate(
    world, agent_factory, tmp_path
) -> None:
    """kill -9 with events waiting; the restarted agent delivers them and raises nothing twice."""
    vms = world.openstack.create_servers("RegionOne", 2, project="admin")
    world.add_region("RegionOne", ADMIN_ALL)
    state = tmp_path / "state"
    agent = agent_factory(state_dir=state)
    world.ves.outage("503")
    world.openstack.set_status("RegionOne", vms[0], "ERROR")
    world.openstack.set_status("RegionOne", vms[1], "ERROR")
    wait_until(lambda: world.ves.requests.total("/eventListener") >= 1, what="a delivery try")
    assert agent.stop(signal.SIGKILL) == -signal.SIGKILL
    assert outbox_depth(state) >= 1
    # While the agent is down one VM recovers and the other is deleted.
    world.openstack.set_status("RegionOne", vms[0], "ACTIVE")
    world.openstack.delete_server("RegionOne", vms[1])
    world.ves.restore()
    agent_factory(state_dir=state)
    wait_until(lambda: len(world.faults()) == 4, timeout=30, what="raises + clears")
    assert raise_and_clear_counts(world, vms[0]) == (1, 1)
    assert raise_and_clear_counts(world, vms[1]) == (1, 1)
    polls = world.openstack.requests.total(PREFIX)
    wait_until(lambda: world.openstack.requests.total(PREFIX) >= polls + 3, what="more polls")
    assert len(world.faults()) == 4


def test_restart_with_open_fault_does_not_raise_again(world, agent_factory, tmp_path) -> None:
    """An alarm open across a clean restart is neither raised again nor forgotten."""
    (vm,) = world.openstack.create_servers("RegionOne", 1, project="admin")
    world.add_region("RegionOne", ADMIN_ALL)
    state = tmp_path / "state"
    agent = agent_factory(state_dir=state)
    world.openstack.set_status("RegionOne", vm, "ERROR")
    wait_until(lambda: world.faults(vm), what="raise")
    started = time.monotonic()
    assert agent.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 10
    agent_factory(state_dir=state)
    polls = world.openstack.requests.total(PREFIX)
    wait_until(lambda: world.openstack.requests.total(PREFIX) >= polls + 3, what="polls")
    assert raise_and_clear_counts(world, vm) == (1, 0)
    world.openstack.set_status("RegionOne", vm, "ACTIVE")
    wait_until(lambda: raise_and_clear_counts(world, vm) == (1, 1), what="clear after restart")


def test_rejected_event_is_dead_lettered_and_does_not_block(world, agent_factory, tmp_path) -> None:
    """A 400 from the collector dead-letters that event; the next ones still flow."""
    vms = world.openstack.create_servers("RegionOne", 2, project="admin")
    world.add_region("RegionOne", ADMIN_ALL)
    state = tmp_path / "state"
    agent = agent_factory(state_dir=state)
    world.ves.inject(
        status=400,
        path_prefix="/eventListener",
        count=1,
        body={"requestError": {"ServiceException": {"messageId": "SVC0002"}}},
    )
    world.openstack.set_status("RegionOne", vms[0], "ERROR")
    wait_until(lambda: world.ves.requests.total("/eventListener") >= 1, what="the refused try")
    world.openstack.set_status("RegionOne", vms[1], "ERROR")
    wait_until(lambda: world.faults(vms[1]), what="the next event")
    assert world.faults(vms[0]) == []
    agent.stop()
    with sqlite3.connect(state / "vesagent.sqlite3") as db:
        rows = db.execute("select status, response from dead_letter").fetchall()
    assert len(rows) == 1 and rows[0][0] == 400 and "SVC0002" in rows[0][1]


def test_aai_outage_keeps_pollers_running(world, agent_factory) -> None:
    """A&AI down: faults still flow on the last known config, and the outage is visible."""
    (vm,) = world.openstack.create_servers("RegionOne", 1, project="admin")
    world.add_region("RegionOne", ADMIN_ALL)
    agent = agent_factory(sync=0.3)
    world.aai.down("503")
    wait_until(
        lambda: "vesagent_aai_up 0.0" in requests.get(agent.url + "/metrics", timeout=5).text,
        what="aai_up 0",
    )
    world.openstack.set_status("RegionOne", vm, "ERROR")
    wait_until(lambda: world.faults(vm), what="raise during the A&AI outage")
    ready = requests.get(agent.url + "/readyz", timeout=5)
    assert ready.status_code == 200 and "stale" in ready.json()["aai"]
    assert "aai.unreachable" in agent.logs()
    world.aai.up()


def test_nova_errors_are_survived(world, agent_factory) -> None:
    """Nova 5xx and a Keystone outage fail polls; the agent keeps going and recovers."""
    (vm,) = world.openstack.create_servers("RegionOne", 1, project="admin")
    world.add_region("RegionOne", ADMIN_ALL)
    agent = agent_factory()
    world.openstack.inject(status=503, path_prefix="/compute/RegionOne", count=3)
    world.openstack.expire_tokens()
    world.openstack.inject(status=503, path_prefix="/identity", count=2)
    wait_until(lambda: agent.polls("RegionOne", "error"), what="a failed poll")
    assert '"poll.failing"' in agent.logs()  # logged before the poll is counted
    world.openstack.set_status("RegionOne", vm, "ERROR")
    wait_until(lambda: world.faults(vm), timeout=20, what="raise after recovery")
    assert '"poll.recovered"' in agent.logs()
    assert agent.logs().count('"poll.failing"') == 1


def test_unusable_state_file_is_a_clear_startup_error(world, tmp_path) -> None:
    """A state file that is not a database stops the start with an error naming the path."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "vesagent.sqlite3").write_bytes(b"this is not a database" * 100)
    done = run_agent_expecting_failure(world, state)
    assert done.returncode == 1
    assert str(state / "vesagent.sqlite3") in done.stderr


def test_one_collector_down_does_not_delay_another(world, agent_factory) -> None:
    """Two regions report to two collectors; one collector's outage delays only its events."""
    from vesagent.sim.topology import VES_PASSWORD, VES_USER
    from vesagent.sim.ves import VesCollectorSim

    other = VesCollectorSim(username=VES_USER, password=VES_PASSWORD).start()
    try:
        (vm1,) = world.openstack.create_servers("RegionOne", 1, project="admin")
        (vm2,) = world.openstack.create_servers("RegionTwo", 1, project="admin")
        world.add_region("RegionOne", ADMIN_ALL)
        world.add_region("RegionTwo", ADMIN_ALL)
        second = world.aai.region("CloudOwner", "RegionTwo")["cloud-extra-info"]
        world.aai.set_extra_info(
            "CloudOwner", "RegionTwo", second.replace(world.ves.url, other.url)
        )
        agent_factory()
        world.ves.outage("hang")
        world.openstack.set_status("RegionOne", vm1, "ERROR")
        wait_until(lambda: world.ves.requests.total("/eventListener") >= 1, what="a stuck try")
        world.openstack.set_status("RegionTwo", vm2, "ERROR")
        (event,) = other.wait_for(timeout=10)
        assert event["commonEventHeader"]["sourceId"] == vm2
        world.ves.restore()
        wait_until(lambda: world.faults(vm1), timeout=30, what="the delayed event")
    finally:
        other.stop()


def test_second_agent_on_the_same_state_dir_refuses_to_start(world, agent_factory, tmp_path):
    """Two agents sharing one outbox would send twice: the second one stops with a clear error."""
    state = tmp_path / "state"
    agent_factory(state_dir=state)
    done = run_agent_expecting_failure(world, state)
    assert done.returncode == 1
    assert "in use by another vesagent" in done.stderr


def test_password_rotated_in_esr_only_is_picked_up(world, agent_factory) -> None:
    """A VIM password changed in esr-system-info (which does not bump the region's
    resource-version): Keystone's refusal makes the agent read the credentials again."""
    world.openstack.add_user("svc", "old", {"admin": ["admin"]})
    (vm,) = world.openstack.create_servers("RegionOne", 1, project="admin")
    world.add_region("RegionOne", ADMIN_ALL)
    esr = world.aai.region("CloudOwner", "RegionOne")["esr-system-info-list"]["esr-system-info"][0]
    world.aai.set_credentials(
        "CloudOwner", "RegionOne", {**esr, "user-name": "svc", "password": "old"}
    )
    region_version = world.aai.region("CloudOwner", "RegionOne")["resource-version"]
    agent = agent_factory()
    wait_until(lambda: agent.polls("RegionOne"), what="a good poll")
    # The password is rotated in Keystone and in A&AI's esr-system-info only.
    world.openstack.add_user("svc", "R0tated-S3cret", {"admin": ["admin"]})
    world.openstack.expire_tokens()
    world.aai.set_credentials(
        "CloudOwner", "RegionOne", {**esr, "user-name": "svc", "password": "R0tated-S3cret"}
    )
    assert world.aai.region("CloudOwner", "RegionOne")["resource-version"] == region_version
    world.openstack.set_status("RegionOne", vm, "ERROR")
    wait_until(lambda: world.faults(vm), timeout=20, what="the raise with the new password")
    assert "R0tated-S3cret" not in agent.logs()  # the password is never logged
