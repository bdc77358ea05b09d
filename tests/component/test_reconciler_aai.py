"""The reconciler against the A&AI simulator over real HTTP: credentials that come late, slow
regions, backoff, and which refusals make it read esr-system-info again."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from tests.component.conftest import (
    API_PASSWORD,
    API_USER,
    OWNER,
    PREFIX,
    REGION,
    VIMID,
    RealAgent,
)
from tests.helpers import wait_until
from vesagent.aai_client import AaiClient, RegionRecord
from vesagent.errors import TemporaryError
from vesagent.model import RegionKey
from vesagent.reconciler.credentials import MISSING, CredentialReader, backoff_delay
from vesagent.reconciler.loop import Reconciler
from vesagent.sim.aai import ESR_LIST, AaiSim
from vesagent.ves_client.sender import CollectorDirectory

CONFIG = json.dumps(
    {
        "vesagent_config": {
            "ves_subscription": {"endpoint": "http://127.0.0.1:1/eventListener/v5"},
            "backlogs": [{"domain": "fault", "type": "vm"}],
        }
    }
)


@dataclass
class FakePollers:
    """The PollerSet's surface the reconciler uses, recording what it was told."""

    running: dict[RegionKey, Any] = field(default_factory=dict)

    def pollers(self) -> dict[RegionKey, Any]:
        return dict(self.running)

    def ensure(self, spec: Any) -> str:
        action = "start" if spec.key not in self.running else "update"
        if self.running.get(spec.key) is not None and self.running[spec.key].spec == spec:
            return "none"
        self.running[spec.key] = type("P", (), {"spec": spec})()
        return action

    def stop(self, key: RegionKey, reason: Any) -> None:
        self.running.pop(key, None)


@pytest.fixture(name="aai")
def _aai() -> Iterator[AaiSim]:
    sim = AaiSim().start()
    yield sim
    sim.stop()


def region(name: str, *, with_esr: bool = True) -> dict[str, Any]:
    body = AaiSim.make_region(
        "Owner",
        name,
        extra_info=CONFIG,
        keystone_url="http://127.0.0.1:5/identity/v3",
        username="u",
        password="p",
        project="admin",
    )
    if not with_esr:
        del body[ESR_LIST]
    return body


def esr(password: str = "p") -> dict[str, Any]:
    return {
        "esr-system-info-id": "esr-1",
        "service-url": "http://127.0.0.1:5/identity/v3",
        "user-name": "u",
        "password": password,
        "system-type": "VIM",
        "default-tenant": "admin",
    }


def reconciler(aai: AaiSim, **kw: Any) -> tuple[Reconciler, FakePollers]:
    pollers = FakePollers()
    client = AaiClient(aai.url, "AAI", "AAI", timeout=10.0)
    return Reconciler(client, pollers, CollectorDirectory(), **kw), pollers  # type: ignore[arg-type]


def names(pollers: FakePollers) -> set[str]:
    return {k.cloud_region_id for k in pollers.running}


def esr_reads(aai: AaiSim, name: str) -> int:
    return aai.requests.total(
        f"/aai/v13/cloud-infrastructure/cloud-regions/cloud-region/Owner/{name}/esr"
    )


def test_region_registered_before_its_credentials_starts_when_they_appear(aai: AaiSim) -> None:
    """onapsdk's order (region first, esr-system-info later) starts polling on the next pass."""
    aai.put_region(region("A", with_esr=False))
    rec, pollers = reconciler(aai)
    assert rec.sync() and names(pollers) == set()
    state = rec.cache.state[RegionKey("Owner", "A")]
    assert state.credentials_error == MISSING
    version = aai.region("Owner", "A")["resource-version"]  # type: ignore[index]
    rec.sync()
    assert esr_reads(aai, "A") == 2  # a missing answer is not remembered like a good one
    aai.set_credentials("Owner", "A", esr())
    assert aai.region("Owner", "A")["resource-version"] == version  # type: ignore[index]
    assert rec.sync() and names(pollers) == {"A"}
    assert state.credentials_error is None
    rec.sync()
    rec.sync()
    assert esr_reads(aai, "A") == 3  # good credentials are cached


def test_slow_region_does_not_stall_the_pass_for_the_others(aai: AaiSim) -> None:
    """A region whose esr read takes 3 s costs a pass at most the reader's wait."""
    aai.put_region(region("Fast"))
    aai.put_region(region("Slow"))
    aai.inject(
        status=None,
        latency=3.0,
        count=1,
        path_prefix="/aai/v13/cloud-infrastructure/cloud-regions/cloud-region/Owner/Slow/esr",
    )
    rec, pollers = reconciler(aai, credentials_wait=0.5)
    started = time.monotonic()
    assert rec.sync()
    assert time.monotonic() - started < 2.0
    assert names(pollers) == {"Fast"}
    started = time.monotonic()
    rec.sync()  # the slow read is still running: not started again, not waited for
    assert time.monotonic() - started < 1.0
    assert esr_reads(aai, "Slow") == 1
    wait_until(lambda: rec.sync() and "Slow" in names(pollers), timeout=10, what="Slow started")


def test_late_read_asks_for_a_pass(aai: AaiSim) -> None:
    """When a read lands after its pass stopped waiting, the loop runs another pass at once."""
    aai.put_region(region("Slow"))
    aai.inject(
        status=None,
        latency=1.0,
        count=1,
        path_prefix="/aai/v13/cloud-infrastructure/cloud-regions/cloud-region/Owner/Slow/esr",
    )
    rec, pollers = reconciler(aai, credentials_wait=0.1)
    rec.sync()
    assert names(pollers) == set()
    wait_until(rec._trigger.is_set, timeout=10, what="a pass requested by the late read")
    rec.sync()
    assert names(pollers) == {"Slow"}


def test_credentials_refused_reads_esr_again(aai: AaiSim) -> None:
    """Keystone refusing the password (invalidate_credentials) re-reads esr-system-info."""
    aai.put_region(region("A"))
    rec, pollers = reconciler(aai)
    rec.sync()
    spec = pollers.running[RegionKey("Owner", "A")].spec
    aai.set_credentials("Owner", "A", esr(password="rotated"))
    rec.sync()
    assert pollers.running[RegionKey("Owner", "A")].spec is spec  # cached: no re-read
    rec.invalidate_credentials(RegionKey("Owner", "A"))
    rec.sync()
    assert pollers.running[RegionKey("Owner", "A")].spec.creds.password == "rotated"


class ScriptedReads:
    """A read function whose answers the test sets, counting the calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = True

    def __call__(self, record: Any) -> Any:
        self.calls += 1
        if self.fail:
            raise TemporaryError("A&AI GET esr-system-info-list: HTTP 503")
        return object()


def test_failed_reads_back_off_exponentially_and_success_resets() -> None:
    """Failures space the reads out (5, 10, 20 s ...); one success resets the backoff."""
    now = [1000.0]
    reads = ScriptedReads()
    reader = CredentialReader(reads, clock=lambda: now[0], wait=5.0)
    record = RegionRecord(RegionKey("Owner", "A"), "1", CONFIG, {})
    view = reader.lookup([record])[record.key]
    assert view.credentials is None and "HTTP 503" in (view.problem or "")
    assert reads.calls == 1
    reader.lookup([record])
    assert reads.calls == 1  # backing off
    now[0] += backoff_delay(1)
    reader.lookup([record])
    assert reads.calls == 2
    now[0] += backoff_delay(1)
    reader.lookup([record])
    assert reads.calls == 2  # the second failure doubled the wait
    now[0] += backoff_delay(2)
    reads.fail = False
    assert reader.lookup([record])[record.key].credentials is not None
    assert [backoff_delay(n) for n in range(5)] == [0.0, 5.0, 10.0, 20.0, 40.0]
    assert backoff_delay(50) == 300.0


def test_slow_region_does_not_stall_a_rest_post_for_another(real: RealAgent) -> None:
    """With one region's esr reads taking 3 s, a POST for another answers within a second or so."""
    slow = AaiSim.make_region(
        OWNER,
        "RegionSlow",
        extra_info=CONFIG,
        keystone_url=real.openstack.keystone_url,
        username="admin",
        password="admin",
        project="admin",
    )
    real.aai.put_region(slow)
    real.aai.inject(
        status=None,
        latency=3.0,
        path_prefix=f"/aai/v13/cloud-infrastructure/cloud-regions/cloud-region/{OWNER}/RegionSlow/esr",
    )
    config = {
        "ves_subscription": {"endpoint": real.endpoint, "username": "sample1", "password": "x"},
        "backlogs": [{"domain": "fault", "type": "vm"}],
    }
    for _attempt in range(2):  # the first while the slow read is new, then while it runs
        started = time.monotonic()
        response = requests.post(
            f"{real.url}{PREFIX}/{VIMID}/vesagent",
            json={"vesagent_config": config},
            auth=(API_USER, API_PASSWORD),
            timeout=10,
        )
        assert response.status_code in (200, 201), response.text
        assert time.monotonic() - started < 2.5
        assert response.json()["status"]["running"] is True


def _esr_reads(real: RealAgent) -> int:
    prefix = f"/aai/v13/cloud-infrastructure/cloud-regions/cloud-region/{OWNER}/{REGION}/esr"
    return real.aai.requests.total(prefix)


def _vim_failures(real: RealAgent) -> int:
    status = real.get(f"/{VIMID}/vesagent").json()["status"]
    return (status.get("vim") or {}).get("consecutive_failures", 0)


def test_missing_admin_role_does_not_reread_credentials(real: RealAgent) -> None:
    """Nova's 403 (a member, not admin) fails polls but never re-reads esr-system-info."""
    esr_of_member = {**esr(password="demo"), "user-name": "demo", "default-tenant": "demo"}
    esr_of_member["service-url"] = real.openstack.keystone_url
    real.aai.set_credentials(OWNER, REGION, esr_of_member)
    real.configure()
    wait_until(lambda: _vim_failures(real) >= 3, what="three failed polls")
    assert _esr_reads(real) == 1


def test_refused_password_rereads_credentials_until_fixed(real: RealAgent) -> None:
    """Keystone's 401 has esr-system-info read again; the fixed password is picked up."""
    wrong = {**esr(password="wrong"), "user-name": "admin"}
    wrong["service-url"] = real.openstack.keystone_url
    real.aai.set_credentials(OWNER, REGION, wrong)
    real.configure()
    wait_until(lambda: _esr_reads(real) >= 3, what="esr read again after 401s")
    real.aai.set_credentials(OWNER, REGION, {**wrong, "password": "admin"})
    wait_until(
        lambda: (real.get(f"/{VIMID}/vesagent").json()["status"].get("last_poll") or {}).get("ok"),
        what="a good poll with the fixed password",
    )


def test_config_edit_is_not_held_back_by_a_slow_credentials_read(aai: AaiSim) -> None:
    """A new resource-version re-reads esr; while that read is slow the last good ones serve."""
    aai.put_region(region("A"))
    rec, pollers = reconciler(aai, credentials_wait=0.2)
    rec.sync()
    key = RegionKey("Owner", "A")
    before = pollers.running[key].spec
    aai.inject(
        status=None,
        latency=2.0,
        count=1,
        path_prefix="/aai/v13/cloud-infrastructure/cloud-regions/cloud-region/Owner/A/esr",
    )
    edited = json.loads(CONFIG)
    edited["vesagent_config"]["backlogs"][0]["tenant"] = "demo"
    aai.set_extra_info("Owner", "A", json.dumps(edited))
    started = time.monotonic()
    rec.sync()
    assert time.monotonic() - started < 1.5
    after = pollers.running[key].spec
    assert after.config != before.config and after.creds == before.creds
