"""The OpenStack simulator answers like Keystone v3 and Nova v2.1, over real HTTP on loopback.

keystoneauth1's own plugins and Session drive it; bodies are compared with the real API samples
copied under ``tests/fixtures/openstack`` (see PROVENANCE.md there).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from keystoneauth1 import adapter, session
from keystoneauth1.identity import generic, v3

from tests.helpers import FakeClock, fixture_json
from vesagent.sim.nova import ServerQuery
from vesagent.sim.openstack import OpenStackSim

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "openstack"
RECORDED = FIXTURES / "recorded"
REGION = "RegionOne"
T0 = 1_795_000_000.0  # 2026-11-18T09:46:40Z, a whole second
COMPUTE = {"service_type": "compute", "region_name": REGION}


@pytest.fixture(name="sim")
def fixture_sim() -> Iterator[OpenStackSim]:
    """A fresh simulator with two regions, on the real clock."""
    with OpenStackSim(regions=(REGION, "RegionTwo")) as sim:
        yield sim


@pytest.fixture(name="clock")
def fixture_clock() -> FakeClock:
    """A fake clock at T0."""
    return FakeClock()


@pytest.fixture(name="csim")
def fixture_clocked_sim(clock: FakeClock) -> Iterator[OpenStackSim]:
    """A fresh one-region simulator driven by the fake clock."""
    with OpenStackSim(regions=(REGION,), clock=clock, send_date=True) as sim:
        yield sim


def sample(name: str) -> Any:
    """A copied real sample body."""
    return fixture_json(f"openstack/{name}")


def password_body(user: str, password: str, project: str) -> dict[str, Any]:
    """``POST /v3/auth/tokens`` body, user and project by name (the real sample's shape)."""
    body = sample("keystone/auth/requests/project-name-password.json")
    spec = body["auth"]["identity"]["password"]["user"]
    spec.pop("id", None)
    spec.update({"name": user, "domain": {"name": "Default"}, "password": password})
    body["auth"]["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    return body


def issue(sim: OpenStackSim, user: str = "admin", project: str | None = None) -> str:
    """A token id for ``user`` (password = user name) scoped to ``project`` (default: same)."""
    response = requests.post(
        f"{sim.keystone_url}/auth/tokens",
        json=password_body(user, user, project or user),
        timeout=5,
    )
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"]


def nova(
    sim: OpenStackSim,
    path: str,
    token: str,
    mv: str | None = None,
    region: str = REGION,
    **params: Any,
) -> requests.Response:
    """A raw Nova GET at microversion ``mv`` (None: no header, i.e. 2.1)."""
    headers = {"X-Auth-Token": token}
    if mv is not None:
        headers["OpenStack-API-Version"] = f"compute {mv}"
    return requests.get(
        f"{sim.compute_url(region)}{path}", params=params, headers=headers, timeout=10
    )


def keystone_session(sim: OpenStackSim, user: str = "admin") -> session.Session:
    """keystoneauth1's v3.Password + Session, exactly as a client would build them."""
    auth = v3.Password(
        auth_url=sim.keystone_url,
        username=user,
        password=user,
        user_domain_name="Default",
        project_name=user,
        project_domain_name="Default",
    )
    return session.Session(auth=auth)


def iso(epoch: float) -> str:
    """A ``changes-since`` value with a Z."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_href(body: dict[str, Any], key: str = "servers_links") -> str | None:
    """The ``rel: next`` link of a collection, if any."""
    return next((link["href"] for link in body.get(key, []) if link["rel"] == "next"), None)


# -- Keystone --------------------------------------------------------------------------------
def test_keystoneauth_v3_password_lists_servers_through_the_catalog(sim: OpenStackSim) -> None:
    """v3.Password + Session find the compute endpoint of the region and list every server."""
    mine = sim.create_servers(REGION, 3) + sim.create_servers(REGION, 2, project="demo")
    sim.create_servers("RegionTwo", 4)
    ks = keystone_session(sim)
    response = ks.get("/servers/detail?all_tenants=1", endpoint_filter=COMPUTE)
    assert response.status_code == 200
    assert {s["id"] for s in response.json()["servers"]} == set(mine)
    other = ks.get("/servers", endpoint_filter={**COMPUTE, "region_name": "RegionTwo"})
    assert len(other.json()["servers"]) == 4
    assert ks.get_endpoint(**COMPUTE) == sim.compute_url(REGION)
    assert sim.auth_count == 1


@pytest.mark.parametrize("suffix", ["/identity", "/identity/v3"])
def test_generic_password_plugin_discovers_keystone(sim: OpenStackSim, suffix: str) -> None:
    """identity.Password reads the version documents and then authenticates with v3."""
    sim.create_servers(REGION, 2, project="demo")
    auth = generic.Password(
        auth_url=sim.url + suffix,
        username="demo",
        password="demo",
        user_domain_id="default",
        project_name="demo",
        project_domain_id="default",
    )
    response = session.Session(auth=auth).get("/servers", endpoint_filter=COMPUTE)
    assert len(response.json()["servers"]) == 2
    root = requests.get(sim.identity_url, timeout=5)
    assert root.status_code == 300
    assert root.json()["versions"]["values"][0]["id"].startswith("v3.")


def test_token_issue_matches_the_real_keystone_shape(sim: OpenStackSim) -> None:
    """201, token in X-Subject-Token, body keys of the real sample, compute per region."""
    response = requests.post(
        f"{sim.keystone_url}/auth/tokens", json=password_body("admin", "admin", "admin"), timeout=5
    )
    assert response.status_code == 201
    assert response.headers["X-Subject-Token"] not in response.text
    assert response.headers["Vary"] == "X-Auth-Token"
    assert response.headers["x-openstack-request-id"].startswith("req-")
    token = response.json()["token"]
    real = sample("keystone/auth/responses/project-scoped-password.json")["token"]
    assert set(token) == set(real)
    for key in ("expires_at", "issued_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", token[key])
    assert {r["name"] for r in token["roles"]} == {"admin", "member", "reader"}
    compute = next(c for c in token["catalog"] if c["type"] == "compute")
    assert set(compute) == set(real["catalog"][0])
    assert {(e["region_id"], e["interface"]) for e in compute["endpoints"]} == {
        (r, i) for r in (REGION, "RegionTwo") for i in ("public", "internal", "admin")
    }
    assert all(set(e) == set(real["catalog"][0]["endpoints"][0]) for e in compute["endpoints"])
    quiet = requests.post(
        f"{sim.keystone_url}/auth/tokens?nocatalog",
        json=password_body("admin", "admin", "admin"),
        timeout=5,
    )
    assert "catalog" not in quiet.json()["token"]


def test_user_and_project_by_id_and_bad_credentials(sim: OpenStackSim) -> None:
    """The sample's id form works; a wrong password or an unassigned project is a 401."""
    admin = issue(sim)
    info = requests.get(
        f"{sim.keystone_url}/auth/tokens",
        headers={"X-Auth-Token": admin, "X-Subject-Token": admin},
        timeout=5,
    ).json()["token"]
    body = sample("keystone/auth/requests/project-id-password.json")
    body["auth"]["identity"]["password"]["user"].update(
        {"id": info["user"]["id"], "password": "admin"}
    )
    body["auth"]["scope"]["project"]["id"] = sim.project_id("demo")
    by_id = requests.post(f"{sim.keystone_url}/auth/tokens", json=body, timeout=5)
    assert by_id.status_code == 201
    assert by_id.json()["token"]["project"]["name"] == "demo"
    for user, password, project in (("admin", "wrong", "admin"), ("demo", "demo", "admin")):
        bad = requests.post(
            f"{sim.keystone_url}/auth/tokens",
            json=password_body(user, password, project),
            timeout=5,
        )
        assert bad.status_code == 401
        assert bad.json() == {
            "error": {
                "code": 401,
                "message": "The request you have made requires authentication.",
                "title": "Unauthorized",
            }
        }
        assert bad.headers["WWW-Authenticate"] == f'Keystone uri="{sim.keystone_url}"'
    assert sim.auth_count == 2


def test_projects_and_catalog_endpoints(sim: OpenStackSim) -> None:
    """/v3/projects is admin-only; /v3/auth/projects and /v3/auth/catalog follow the token."""
    admin, demo = issue(sim), issue(sim, "demo")
    listed = requests.get(
        f"{sim.keystone_url}/projects", headers={"X-Auth-Token": admin}, timeout=5
    ).json()
    assert {p["name"] for p in listed["projects"]} == {"admin", "demo"}
    denied = requests.get(f"{sim.keystone_url}/projects", headers={"X-Auth-Token": demo}, timeout=5)
    assert denied.status_code == 403
    assert "identity:list_projects" in denied.json()["error"]["message"]
    mine = requests.get(
        f"{sim.keystone_url}/auth/projects", headers={"X-Auth-Token": demo}, timeout=5
    ).json()
    assert [p["name"] for p in mine["projects"]] == ["demo"]
    catalog = requests.get(
        f"{sim.keystone_url}/auth/catalog", headers={"X-Auth-Token": demo}, timeout=5
    ).json()
    assert set(catalog) == set(sample("keystone/admin/get-service-catalog-response.json"))
    assert "compute" in {c["type"] for c in catalog["catalog"]}


def test_expired_tokens_get_401_and_keystoneauth_reauthenticates(sim: OpenStackSim) -> None:
    """After expire_tokens() the old token is refused; the Session re-auths once and goes on."""
    sim.create_servers(REGION, 2)
    ks = keystone_session(sim)
    assert len(ks.get("/servers", endpoint_filter=COMPUTE).json()["servers"]) == 2
    old = ks.get_token()
    assert sim.expire_tokens() >= 1
    refused = nova(sim, "/servers", old)
    assert refused.status_code == 401
    assert refused.json()["error"]["title"] == "Unauthorized"
    assert refused.headers["WWW-Authenticate"] == f'Keystone uri="{sim.keystone_url}"'
    again = ks.get("/servers", endpoint_filter=COMPUTE)
    assert again.status_code == 200
    assert ks.get_token() != old
    assert sim.auth_count == 2
    # ok, our raw 401, then the Session: 401, re-auth, retried ok
    assert sim.requests.total("/compute/RegionOne/v2.1/servers") == 4


def test_request_log_counts_response_body_bytes(sim: OpenStackSim) -> None:
    """The request log adds up each response's body bytes by path, errors included."""
    sim.create_servers(REGION, 3)
    token = issue(sim)
    listed = nova(sim, "/servers/detail", token, mv="2.79")
    services = nova(sim, "/os-services", token, mv="2.79")
    refused = nova(sim, "/servers/detail", "no-such-token")
    assert listed.status_code == 200 and refused.status_code == 401
    prefix = f"/compute/{REGION}/v2.1"
    assert sim.requests.total_bytes(f"{prefix}/servers") == len(listed.content) + len(
        refused.content
    )
    assert sim.requests.total_bytes(f"{prefix}/os-services") == len(services.content)
    assert sim.requests.total_bytes("/compute/", method="POST") == 0
    sim.requests.reset()
    assert sim.requests.total_bytes() == 0


def test_tokens_expire_after_their_lifetime(clock: FakeClock) -> None:
    """A token is valid until expires_at by the sim's clock, then Nova answers 401."""
    with OpenStackSim(regions=(REGION,), token_lifetime=60.0, clock=clock) as sim:
        token = issue(sim)
        clock.advance(59)
        assert nova(sim, "/servers", token).status_code == 200
        clock.advance(1)
        assert nova(sim, "/servers", token).status_code == 401
        assert nova(sim, "/servers", "not-a-token").status_code == 401


# -- Nova: listing ---------------------------------------------------------------------------
@pytest.mark.parametrize(("count", "pages"), [(2500, [1000, 1000, 500]), (2000, [1000, 1000, 0])])
def test_paging_follows_servers_links(sim: OpenStackSim, count: int, pages: list[int]) -> None:
    """Pages of 1000 newest-first; a full page always has a next link, so the last may be empty."""
    created = set(sim.create_servers(REGION, count))
    token = issue(sim)
    url: str | None = f"{sim.compute_url(REGION)}/servers/detail?all_tenants=1&limit=1000"
    seen: list[dict[str, Any]] = []
    sizes = []
    for _ in range(10):
        if url is None:
            break
        body = requests.get(url, headers={"X-Auth-Token": token}, timeout=10).json()
        sizes.append(len(body["servers"]))
        seen.extend(body["servers"])
        url = next_href(body)
    assert sizes == pages
    assert {s["id"] for s in seen} == created
    keys = [(s["created"], s["id"]) for s in seen]
    assert keys == sorted(keys, reverse=True)


def test_limit_is_clamped_and_unknown_marker_is_400(clock: FakeClock) -> None:
    """limit above max_limit is clamped (the link keeps it); a foreign marker gets Nova's 400."""
    with OpenStackSim(regions=(REGION,), max_limit=50, clock=clock) as sim:
        sim.create_servers(REGION, 120)
        token = issue(sim)
        body = nova(sim, "/servers", token, all_tenants=1, limit=500).json()
        assert len(body["servers"]) == 50
        href = next_href(body)
        assert href is not None
        assert "limit=500" in href
        assert f"marker={body['servers'][-1]['id']}" in href
        ghost = "cdd5eb00-75d1-45ac-9cc3-9fded7e1e6e6"
        bad = nova(sim, "/servers/detail", token, all_tenants=1, marker=ghost)
        assert bad.status_code == 400
        assert bad.json() == {"badRequest": {"code": 400, "message": f"marker [{ghost}] not found"}}


def test_changes_since_is_inclusive_and_returns_deleted(
    csim: OpenStackSim, clock: FakeClock
) -> None:
    """updated >= changes-since (whole seconds), DELETED servers included, then archived away."""
    ids = csim.create_servers(REGION, 5)
    token = issue(csim)
    clock.advance(10)
    changed_at = clock.now
    csim.set_status(REGION, ids[1], "ERROR", fault={"code": 500, "message": "No valid host"})
    csim.delete_server(REGION, ids[3])
    clock.advance(5)

    def since(value: str) -> dict[str, dict[str, Any]]:
        response = nova(csim, "/servers/detail", token, "2.60", **{"changes-since": value})
        assert response.status_code == 200, response.text
        return {s["id"]: s for s in response.json()["servers"]}

    delta = since(iso(changed_at))
    assert set(delta) == {ids[1], ids[3]}
    assert delta[ids[1]]["status"] == "ERROR"
    assert delta[ids[1]]["fault"]["message"] == "No valid host"
    gone = delta[ids[3]]
    assert (gone["status"], gone["OS-EXT-STS:vm_state"]) == ("DELETED", "deleted")
    assert gone["OS-SRV-USG:terminated_at"] == iso(changed_at)[:-1] + ".000000"
    assert gone["host_status"] == ""
    assert "fault" not in gone and "progress" not in gone
    assert set(since(iso(changed_at + 1))) == set()
    assert set(since(iso(changed_at - 1)[:-1])) == {ids[1], ids[3]}  # no zone: UTC
    assert set(since(iso(changed_at).replace("Z", ".5+00:00"))) == set()  # updated is whole secs
    plain = nova(csim, "/servers/detail", token).json()["servers"]
    assert ids[3] not in {s["id"] for s in plain} and len(plain) == 4
    assert nova(csim, f"/servers/{ids[3]}", token).json() == {
        "itemNotFound": {"code": 404, "message": f"Instance {ids[3]} could not be found."}
    }
    garbage = nova(csim, "/servers/detail", token, **{"changes-since": "yesterday"})
    assert garbage.status_code == 400
    assert garbage.json()["badRequest"]["message"] == (
        "Invalid input for query parameters changes-since. Value: yesterday. "
        "'yesterday' is not a 'date-time'"
    )
    assert csim.archive_deleted(REGION) == 1
    assert set(since(iso(changed_at))) == {ids[1]}


def test_changes_before_and_filters(csim: OpenStackSim, clock: FakeClock) -> None:
    """changes-before (2.66+), status with Nova's quirk, name regex, host, project_id."""
    web = csim.create_servers(REGION, 3, prefix="web")
    clock.advance(10)
    db = csim.create_servers(REGION, 2, prefix="db", project="demo", host="compute-2")
    csim.set_status(REGION, web[0], "REBOOT")
    csim.set_status(REGION, db[0], "SHUTOFF")
    token = issue(csim)

    def ids(mv: str = "2.73", **params: Any) -> set[str]:
        response = nova(csim, "/servers", token, mv, all_tenants=1, **params)
        assert response.status_code == 200, response.text
        return {s["id"] for s in response.json()["servers"]}

    assert ids(**{"changes-before": iso(T0)}) == set(web[1:])
    assert ids("2.65", **{"changes-before": iso(T0)}) == set(web + db)  # unknown before 2.66
    assert ids(status="SHUTOFF") == {db[0]}
    assert ids(status="REBOOT") == {web[0]}
    assert ids(status="ACTIVE") == set(web + db[1:])  # vm_state active includes rebooting
    assert ids(name="^DB-") == set(db)
    assert ids(host="compute-2") == set(db)
    assert ids(project_id=csim.project_id("demo")) == set(db)
    invalid = nova(csim, "/servers", token, "2.73", status="FLYING")
    assert invalid.json() == {"badRequest": {"code": 400, "message": "Invalid status value"}}
    assert nova(csim, "/servers", token, "2.37", status="FLYING").json() == {"servers": []}


def test_all_tenants_is_forbidden_for_a_member(sim: OpenStackSim) -> None:
    """demo gets Nova's policy 403 for all_tenants and sees only its project, without host data."""
    sim.create_servers(REGION, 2)
    own = sim.create_servers(REGION, 2, project="demo")
    token = issue(sim, "demo")
    for path, kind in (("/servers/detail", "detail"), ("/servers", "index")):
        refused = nova(sim, path, token, "2.79", all_tenants=1)
        assert refused.status_code == 403
        assert refused.json() == {
            "forbidden": {
                "code": 403,
                "message": f"Policy doesn't allow os_compute_api:servers:{kind}:get_all_tenants "
                "to be performed.",
            }
        }
    listed = nova(sim, "/servers/detail", token, "2.79", host="compute-1").json()["servers"]
    assert {s["id"] for s in listed} == set(own)  # host filter silently dropped for members
    assert not any("host_status" in s or "OS-EXT-SRV-ATTR:host" in s for s in listed)
    services = nova(sim, "/os-services", token)
    assert services.json()["forbidden"]["message"] == (
        "Policy doesn't allow os_compute_api:os-services:list to be performed."
    )


def test_unknown_query_parameters(sim: OpenStackSim) -> None:
    """From 2.75 an unknown parameter is a 400 (Zed's wording); before it is ignored."""
    token = issue(sim)
    strict = nova(sim, "/servers/detail", token, "2.79", all_tenants=1, foo="x")
    assert strict.json() == {
        "badRequest": {"code": 400, "message": "'foo' does not match any of the regexes: '^_'"}
    }
    assert nova(sim, "/servers/detail", token, "2.74", foo="x").status_code == 200
    joined = nova(sim, "/servers/detail", token, "2.74", metadata="x")
    assert joined.json()["badRequest"]["message"] == "Invalid filter field: metadata."


# -- Nova: server state ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, "UP"),
        ({"up": False}, "UNKNOWN"),
        ({"enabled": False, "reason": "maintenance"}, "MAINTENANCE"),
        ({"forced_down": True}, "DOWN"),
        ({"forced_down": True, "enabled": False}, "DOWN"),
        ({"up": False, "enabled": False}, "MAINTENANCE"),
    ],
)
def test_host_status_follows_the_compute_service(
    sim: OpenStackSim, change: dict[str, Any], expected: str
) -> None:
    """host_status (2.16+) is DOWN > MAINTENANCE > UP/UNKNOWN from the host's nova-compute."""
    (vm,) = sim.create_servers(REGION, 1, host="compute-2")
    (other,) = sim.create_servers(REGION, 1, host="compute-1")
    sim.set_service(REGION, "compute-2", **change)
    token = issue(sim)
    assert nova(sim, f"/servers/{vm}", token, "2.16").json()["server"]["host_status"] == expected
    assert nova(sim, f"/servers/{other}", token, "2.16").json()["server"]["host_status"] == "UP"
    assert "host_status" not in nova(sim, f"/servers/{vm}", token, "2.15").json()["server"]
    sim.set_service(REGION, "compute-2", up=True, enabled=True, forced_down=False)
    assert nova(sim, f"/servers/{vm}", token, "2.16").json()["server"]["host_status"] == "UP"


def test_status_and_states_stay_consistent(sim: OpenStackSim) -> None:
    """Every settable status maps back through Nova's _STATE_MAP; ERROR keeps the power state."""
    token = issue(sim)
    (vm,) = sim.create_servers(REGION, 1)
    for status in ("SHUTOFF", "PAUSED", "REBOOT", "VERIFY_RESIZE", "SHELVED", "BUILD", "ACTIVE"):
        sim.set_status(REGION, vm, status)
        body = nova(sim, f"/servers/{vm}", token, "2.73").json()["server"]
        assert body["status"] == status == sim.server(REGION, vm)["status"]
    sim.set_status(REGION, vm, "ERROR")
    body = nova(sim, f"/servers/{vm}", token).json()["server"]
    assert (body["OS-EXT-STS:vm_state"], body["OS-EXT-STS:power_state"]) == ("error", 1)
    assert "fault" not in body  # like os-resetState: no fault recorded
    sim.set_state(REGION, vm, "active", None, 6)  # CRASHED while ACTIVE
    body = nova(sim, f"/servers/{vm}", token).json()["server"]
    assert (body["status"], body["OS-EXT-STS:power_state"]) == ("ACTIVE", 6)


def test_fault_is_shown_only_in_error_and_details_only_to_admins(sim: OpenStackSim) -> None:
    """fault {code, created, message}: only on ERROR; details hidden from members for 500."""
    (vm,) = sim.create_servers(REGION, 1, project="demo")
    fault = {"code": 500, "message": "No valid host was found.", "details": "Traceback ..."}
    sim.set_status(REGION, vm, "ERROR", fault=fault)
    admin, demo = issue(sim), issue(sim, "demo")
    shown = nova(sim, f"/servers/{vm}", admin).json()["server"]["fault"]
    assert set(shown) == {"code", "created", "message", "details"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", shown["created"])
    assert "details" not in nova(sim, f"/servers/{vm}", demo).json()["server"]["fault"]
    sim.set_status(REGION, vm, "ACTIVE")
    assert "fault" not in nova(sim, f"/servers/{vm}", admin).json()["server"]


def test_updated_moves_in_whole_seconds_and_date_follows_the_clock(
    csim: OpenStackSim, clock: FakeClock
) -> None:
    """updated/created are whole-second Z times; the Date header is the sim's clock."""
    (vm,) = csim.create_servers(REGION, 1)
    token = issue(csim)
    clock.advance(42.7)
    csim.set_status(REGION, vm, "SHUTOFF")
    response = nova(csim, f"/servers/{vm}", token)
    body = response.json()["server"]
    assert body["created"] == iso(T0)
    assert body["updated"] == iso(T0 + 42)
    assert parsedate_to_datetime(response.headers["Date"]).timestamp() == T0 + 42
    assert response.headers["x-compute-request-id"] == response.headers["x-openstack-request-id"]


# -- Nova: services, hypervisors, diagnostics ------------------------------------------------
def test_os_services_fields_by_microversion(csim: OpenStackSim, clock: FakeClock) -> None:
    """Integer ids before 2.53, UUIDs after; forced_down from 2.11; filters; state down."""
    token = issue(csim)
    csim.set_service(REGION, "compute-2", up=False)
    csim.set_service(REGION, "compute-1", enabled=False, reason="patching")

    def services(mv: str | None, **params: Any) -> list[dict[str, Any]]:
        return nova(csim, "/os-services", token, mv, **params).json()["services"]

    old = services(None)
    assert all(isinstance(s["id"], int) and "forced_down" not in s for s in old)
    assert {s["binary"] for s in old} == {"nova-scheduler", "nova-conductor", "nova-compute"}
    assert all("forced_down" in s for s in services("2.11"))
    computes = {s["host"]: s for s in services("2.53", binary="nova-compute")}
    assert all(re.fullmatch(r"[0-9a-f-]{36}", s["id"]) for s in computes.values())
    assert (computes["compute-1"]["status"], computes["compute-1"]["state"]) == ("disabled", "up")
    assert computes["compute-1"]["disabled_reason"] == "patching"
    down = computes["compute-2"]
    assert (down["state"], down["status"], down["forced_down"]) == ("down", "enabled", False)
    heartbeat = datetime.strptime(down["updated_at"], "%Y-%m-%dT%H:%M:%S.%f")
    assert clock.now - heartbeat.replace(tzinfo=UTC).timestamp() > 60
    assert [s["host"] for s in services("2.53", host="compute-2")] == ["compute-2"]


def test_hypervisors_state_status_and_paging(sim: OpenStackSim) -> None:
    """state follows the service liveness, status its enabled flag; 2.33 pages; 2.88 trims."""
    sim.create_servers(REGION, 3, host="compute-2")
    sim.set_service(REGION, "compute-2", forced_down=True)
    sim.set_service(REGION, "compute-3", enabled=False)
    token = issue(sim)
    listed = nova(sim, "/os-hypervisors", token, "2.53").json()["hypervisors"]
    assert [(h["hypervisor_hostname"], h["state"], h["status"]) for h in listed] == [
        ("compute-1", "up", "enabled"),
        ("compute-2", "down", "enabled"),
        ("compute-3", "up", "disabled"),
    ]
    first = nova(sim, "/os-hypervisors/detail", token, "2.53", limit=2).json()
    assert len(first["hypervisors"]) == 2
    assert first["hypervisors"][1]["running_vms"] == 3
    href = next_href(first, "hypervisors_links")
    assert href is not None
    rest = requests.get(
        href, headers={"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.53"}, timeout=5
    )
    assert [h["hypervisor_hostname"] for h in rest.json()["hypervisors"]] == ["compute-3"]
    trimmed = nova(sim, "/os-hypervisors/detail", token, "2.88").json()["hypervisors"][0]
    assert "vcpus" not in trimmed and "uptime" in trimmed
    assert nova(sim, "/os-hypervisors", token, "2.53", marker="nope").status_code == 400


def test_diagnostics_counters_grow_while_running(csim: OpenStackSim, clock: FakeClock) -> None:
    """2.48 standard diagnostics; counters grow with time since boot; a stopped guest reads 0."""
    (vm,) = csim.create_servers(REGION, 1)
    token = issue(csim)
    clock.advance(30)
    first = nova(csim, f"/servers/{vm}/diagnostics", token, "2.48").json()
    clock.advance(30)
    second = nova(csim, f"/servers/{vm}/diagnostics", token, "2.48").json()
    assert set(first) == {
        "state", "driver", "hypervisor", "hypervisor_os", "uptime", "num_cpus", "num_disks",
        "num_nics", "memory_details", "cpu_details", "nic_details", "disk_details",
        "config_drive",
    }  # fmt: skip
    assert set(first["memory_details"]) == {"maximum", "used"}
    assert set(first["disk_details"][0]) == {
        "read_bytes", "read_requests", "write_bytes", "write_requests", "errors_count"
    }  # fmt: skip
    assert (first["state"], first["uptime"], second["uptime"]) == ("running", 30, 60)
    assert second["cpu_details"][0]["time"] > first["cpu_details"][0]["time"] > 0
    for key in ("rx_octets", "tx_octets", "rx_packets", "tx_packets"):
        assert second["nic_details"][0][key] > first["nic_details"][0][key] > 0
    assert second["disk_details"][0]["read_bytes"] > first["disk_details"][0]["read_bytes"]
    again = nova(csim, f"/servers/{vm}/diagnostics", token, "2.48").json()
    assert again == second  # deterministic per server and time
    legacy = nova(csim, f"/servers/{vm}/diagnostics", token).json()
    assert legacy["cpu0_time"] == second["cpu_details"][0]["time"]
    csim.set_status(REGION, vm, "SHUTOFF")
    stopped = nova(csim, f"/servers/{vm}/diagnostics", token, "2.48").json()
    assert (stopped["state"], stopped["uptime"], stopped["nic_details"][0]["rx_octets"]) == (
        "shutdown",
        0,
        0,
    )
    assert nova(csim, f"/servers/{vm}/diagnostics", issue(csim, "demo")).status_code == 403


def test_down_cell_gives_partial_records(sim: OpenStackSim) -> None:
    """2.69+: UNKNOWN partial records without filters/paging, skipped otherwise, as Nova does."""
    ids = sim.create_servers(REGION, 3)
    sim.set_cell_down(REGION, True)
    token = issue(sim)
    detail = nova(sim, "/servers/detail", token, "2.69", all_tenants=1).json()["servers"]
    assert {s["id"] for s in detail} == set(ids)
    assert all(s["status"] == "UNKNOWN" for s in detail)
    assert all(set(s) == {"created", "id", "status", "tenant_id", "links"} for s in detail)
    index = nova(sim, "/servers", token, "2.69").json()["servers"]
    assert all(set(s) == {"id", "status", "links"} for s in index)
    assert nova(sim, "/servers/detail", token, "2.69", limit=10).json() == {"servers": []}
    assert nova(sim, "/servers/detail", token, "2.68").json() == {"servers": []}
    shown = nova(sim, f"/servers/{ids[0]}", token, "2.71").json()["server"]
    assert set(shown) == set(sample("nova/servers/v2.71/server-get-down-cell-resp.json")["server"])
    services = nova(sim, "/os-services", token, "2.69").json()["services"]
    assert {"binary": "nova-compute", "host": "compute-1", "status": "UNKNOWN"} in services
    assert all(
        s["binary"] != "nova-compute"
        for s in nova(sim, "/os-services", token, "2.68").json()["services"]
    )
    sim.set_cell_down(REGION, False)
    assert len(nova(sim, "/servers/detail", token, "2.69", limit=10).json()["servers"]) == 3


def test_microversion_negotiation(sim: OpenStackSim) -> None:
    """Both headers work (OpenStack-API-Version wins), latest = max, 406 outside, 400 garbage."""
    token = issue(sim)
    url = f"{sim.compute_url(REGION)}/servers"

    def get(**headers: str) -> requests.Response:
        return requests.get(url, headers={"X-Auth-Token": token, **headers}, timeout=5)

    assert get().headers["X-OpenStack-Nova-API-Version"] == "2.1"
    assert get(**{"X-OpenStack-Nova-API-Version": "2.53"}).headers["OpenStack-API-Version"] == (
        "compute 2.53"
    )
    both = get(**{"X-OpenStack-Nova-API-Version": "2.10", "OpenStack-API-Version": "compute 2.60"})
    assert both.headers["X-OpenStack-Nova-API-Version"] == "2.60"
    assert (
        get(**{"OpenStack-API-Version": "compute latest"}).headers["X-OpenStack-Nova-API-Version"]
        == "2.96"
    )
    too_new = get(**{"OpenStack-API-Version": "compute 2.97"})
    assert too_new.status_code == 406
    assert too_new.json() == {
        "computeFault": {
            "code": 406,
            "message": "Version 2.97 is not supported by the API. Minimum is 2.1 and maximum "
            "is 2.96.",
        }
    }
    assert get(**{"X-OpenStack-Nova-API-Version": "two"}).status_code == 400
    doc = requests.get(f"{sim.compute_url(REGION)}/", timeout=5).json()["version"]
    assert (doc["min_version"], doc["version"]) == ("2.1", "2.96")


def test_keystoneauth_microversion_discovery(sim: OpenStackSim) -> None:
    """An Adapter negotiating a microversion range discovers 2.1..2.96 from the version doc."""
    ks = keystone_session(sim)
    nova_adapter = adapter.Adapter(
        ks, service_type="compute", region_name=REGION, min_version="2.1", max_version="2.latest"
    )
    data = nova_adapter.get_endpoint_data()
    assert data is not None
    assert (data.min_microversion, data.max_microversion) == ((2, 1), (2, 96))
    response = nova_adapter.get("/os-hypervisors", microversion="2.88")
    assert response.headers["OpenStack-API-Version"] == "compute 2.88"


# -- control, faults, performance ------------------------------------------------------------
def test_http_control_drives_the_same_knobs(sim: OpenStackSim) -> None:
    """/_sim/openstack creates servers, changes status, services, cells and expires tokens."""
    base = f"{sim.url}/_sim/openstack/regions/{REGION}"
    created = requests.post(f"{base}/servers", json={"count": 2, "prefix": "c"}, timeout=5)
    assert created.status_code == 201
    vm = created.json()["ids"][0]
    changed = requests.post(
        f"{base}/servers/{vm}/status", json={"status": "ERROR", "fault": {"code": 500}}, timeout=5
    )
    assert changed.json()["server"]["status"] == "ERROR"
    requests.post(f"{base}/services/compute-1", json={"forced_down": True}, timeout=5)
    assert sim.server(REGION, vm)["host_status"] == "DOWN"
    assert requests.delete(f"{base}/servers/{vm}", timeout=5).status_code == 204
    assert vm not in sim.server_ids(REGION)
    requests.post(f"{base}/cell", json={"down": True}, timeout=5)
    assert sim.regions[REGION].cell_down
    token = issue(sim)
    requests.post(f"{sim.url}/_sim/openstack/tokens/expire", timeout=5)
    assert nova(sim, "/servers", token).status_code == 401
    summary = requests.get(f"{sim.url}/_sim/openstack", timeout=5).json()
    assert summary["regions"][REGION]["servers"] == 1
    assert (
        requests.post(
            f"{base}/servers/nope/status", json={"status": "ACTIVE"}, timeout=5
        ).status_code
        == 404
    )


def test_refuse_and_accept_keep_the_port(sim: OpenStackSim) -> None:
    """refuse() closes the socket; accept() listens again on the same port, state kept."""
    (vm,) = sim.create_servers(REGION, 1)
    token = issue(sim)
    port = sim.port
    sim.refuse()
    with pytest.raises(requests.ConnectionError):
        nova(sim, "/servers", token)
    sim.accept()
    assert sim.port == port
    assert [s["id"] for s in nova(sim, "/servers", token).json()["servers"]] == [vm]


def test_injected_faults_have_the_api_shape(sim: OpenStackSim) -> None:
    """inject() answers with Nova's or Keystone's error body, then service resumes."""
    token = issue(sim)
    sim.inject(status=503, path_prefix=f"/compute/{REGION}", count=1)
    failed = nova(sim, "/servers", token)
    assert failed.json() == {"serviceUnavailable": {"code": 503, "message": "injected 503"}}
    assert nova(sim, "/servers", token).status_code == 200
    sim.inject(status=500, path_prefix="/identity", count=1)
    broken = requests.post(
        f"{sim.keystone_url}/auth/tokens", json=password_body("admin", "admin", "admin"), timeout=5
    )
    assert broken.json()["error"]["code"] == 500


def test_indexes_answer_changes_since_and_markers_at_100000_servers() -> None:
    """At 100,000 servers, changes-since finds the one changed server and a marker page is the
    next 1,000 in Nova's order (created desc, id desc).

    How fast is measured by ``make bench`` (``nova_empty_changes_per_s``), not asserted here.
    """
    clock = FakeClock()
    with OpenStackSim(regions=(REGION,), clock=clock) as sim:
        ids = sim.create_servers(REGION, 100_000)
        clock.advance(5)
        sim.set_status(REGION, ids[54_321], "ERROR")
        region = sim.regions[REGION]
        with region.lock:
            changed = region.list_servers(
                ServerQuery(project_id=None, changes_since=clock.now, deleted=None)
            )
            every = region.list_servers(ServerQuery(project_id=None, limit=100_000))
            position = [s.id for s in every].index(ids[50_000])
            page = region.list_servers(ServerQuery(project_id=None, marker=ids[50_000], limit=1000))
        assert [s.id for s in changed] == [ids[54_321]]
        assert [s.id for s in page] == [s.id for s in every[position + 1 : position + 1001]]
        token = issue(sim)
        response = nova(
            sim, "/servers/detail", token, all_tenants=1, **{"changes-since": iso(clock.now)}
        )
        assert [s["id"] for s in response.json()["servers"]] == [ids[54_321]]


# -- fidelity against the real samples -------------------------------------------------------
FREE_FORM = {"addresses", "metadata", "extra_specs", "properties"}
NO_PORTS = {"security_groups"}  # servers booted with networks "none" have no such key (real)


def shape_problems(real: Any, mine: Any, path: str = "$") -> list[str]:
    """Differences of keys and value types (null matches any type; free-form maps skipped)."""
    if real is None or mine is None:
        return []
    if isinstance(real, dict):
        if not isinstance(mine, dict):
            return [f"{path}: dict expected, got {type(mine).__name__}"]
        if path.rsplit(".", 1)[-1] in FREE_FORM:
            return []
        problems = [f"{path}.{k}: missing" for k in sorted(real.keys() - mine.keys())]
        problems += [f"{path}.{k}: unexpected" for k in sorted(mine.keys() - real.keys())]
        for key in sorted(real.keys() & mine.keys()):
            problems += shape_problems(real[key], mine[key], f"{path}.{key}")
        return problems
    if isinstance(real, list):
        if not isinstance(mine, list):
            return [f"{path}: list expected"]
        return shape_problems(real[0], mine[0], f"{path}[0]") if real and mine else []
    if type(real) is not type(mine):
        return [f"{path}: {type(real).__name__} expected, got {type(mine).__name__}"]
    return []


def server_problems(real: dict[str, Any], mine: dict[str, Any]) -> list[str]:
    """shape_problems for a server body, minus the no-ports difference."""
    real = {k: v for k, v in real.items() if k not in NO_PORTS}
    return shape_problems(real, mine)


SERVER_SAMPLES = [
    ("", 1, "admin"),
    ("v2.3/", 3, "admin"),
    ("v2.9/", 9, "admin"),
    ("v2.16/", 16, "admin"),
    ("v2.19/", 19, "admin"),
    ("v2.47/", 47, "admin"),
    ("v2.52/", 52, "admin"),
    ("v2.63/", 63, "admin"),
    ("v2.73/", 73, "admin"),
    ("v2.90/", 90, "demo"),
    ("v2.94/", 94, "demo"),
    ("v2.96/", 96, "demo"),
]


def populate(sim: OpenStackSim) -> dict[str, Any]:
    """Two servers per project and tokens for both users."""
    sim.create_servers(REGION, 2)
    demo_ids = sim.create_servers(REGION, 2, project="demo")
    return {"admin": issue(sim), "demo": issue(sim, "demo"), "server": demo_ids[0]}


@pytest.fixture(name="world")
def fixture_world(sim: OpenStackSim) -> dict[str, Any]:
    """A populated simulator of this test only (for tests that change it)."""
    return populate(sim)


@pytest.fixture(name="shared", scope="module")
def fixture_shared() -> Iterator[tuple[OpenStackSim, dict[str, Any]]]:
    """One populated simulator for the read-only fidelity checks."""
    with OpenStackSim(regions=(REGION,)) as sim:
        yield sim, populate(sim)


@pytest.mark.parametrize(("folder", "mv", "who"), SERVER_SAMPLES)
def test_server_bodies_match_the_nova_samples(
    shared: tuple[OpenStackSim, dict[str, Any]], folder: str, mv: int, who: str
) -> None:
    """GET /servers/{id} and /servers/detail have the sample's keys and value types."""
    sim, world = shared
    token = world[who]
    shown = nova(sim, f"/servers/{world['server']}", token, f"2.{mv}").json()
    real_show = sample(f"nova/servers/{folder}server-get-resp.json")
    assert server_problems(real_show["server"], shown["server"]) == []
    listed = nova(sim, "/servers/detail", token, f"2.{mv}", limit=1).json()
    real_list = sample(f"nova/servers/{folder}servers-details-resp.json")
    assert server_problems(real_list["servers"][0], listed["servers"][0]) == []
    if "servers_links" in real_list:
        assert shape_problems(real_list["servers_links"], listed["servers_links"]) == []


def test_index_and_down_cell_bodies_match_the_samples(
    sim: OpenStackSim, world: dict[str, Any]
) -> None:
    """GET /servers, and the 2.69/2.71 down-cell records and services, have the samples' shapes."""
    token = world["admin"]
    index = nova(sim, "/servers", token, limit=1).json()
    assert shape_problems(sample("nova/servers/servers-list-resp.json"), index) == []
    sim.set_cell_down(REGION, True)
    real = sample("nova/os-services/v2.69/services-list-get-resp.json")["services"]
    mine = nova(sim, "/os-services", token, "2.69", binary="nova-compute").json()["services"]
    assert len(mine) == 2
    assert all(shape_problems(real[0], item) == [] for item in mine)
    for name, path, mv in (
        ("v2.69/servers-details-resp.json", "/servers/detail", "2.69"),
        ("v2.69/servers-list-resp.json", "/servers", "2.69"),
        ("v2.69/server-get-resp.json", f"/servers/{world['server']}", "2.69"),
        ("v2.71/server-get-down-cell-resp.json", f"/servers/{world['server']}", "2.71"),
    ):
        mine = nova(sim, path, token, mv).json()
        assert shape_problems(sample(f"nova/servers/{name}"), mine) == [], name


@pytest.mark.parametrize(
    ("name", "mv"),
    [
        ("services-list-get-resp.json", None),
        ("v2.11/services-list-get-resp.json", "2.11"),
        ("v2.53/services-list-get-resp.json", "2.53"),
    ],
)
def test_service_bodies_match_the_nova_samples(
    shared: tuple[OpenStackSim, dict[str, Any]], name: str, mv: str | None
) -> None:
    """os-services items have the sample's keys and types (ids int before 2.53, str after)."""
    sim, world = shared
    real = sample(f"nova/os-services/{name}")["services"]
    mine = nova(sim, "/os-services", world["admin"], mv, binary="nova-compute").json()
    assert mine["services"]
    for item in mine["services"]:
        assert shape_problems(real[-1], item) == []


@pytest.mark.parametrize(
    ("name", "mv", "path", "params"),
    [
        ("hypervisors-list-resp.json", None, "/os-hypervisors", {}),
        ("hypervisors-detail-resp.json", None, "/os-hypervisors/detail", {}),
        ("v2.28/hypervisors-detail-resp.json", "2.28", "/os-hypervisors/detail", {}),
        ("v2.33/hypervisors-list-resp.json", "2.33", "/os-hypervisors", {"limit": 1}),
        ("v2.33/hypervisors-detail-resp.json", "2.33", "/os-hypervisors/detail", {"limit": 1}),
        ("v2.53/hypervisors-list-resp.json", "2.53", "/os-hypervisors", {"limit": 1}),
        ("v2.53/hypervisors-detail-resp.json", "2.53", "/os-hypervisors/detail", {"limit": 1}),
        (
            "v2.53/hypervisors-with-servers-resp.json",
            "2.53",
            "/os-hypervisors",
            {"with_servers": "true", "hypervisor_hostname_pattern": "compute-1"},
        ),
        ("v2.88/hypervisors-list-resp.json", "2.88", "/os-hypervisors", {"limit": 1}),
        ("v2.88/hypervisors-detail-resp.json", "2.88", "/os-hypervisors/detail", {"limit": 1}),
    ],
)
def test_hypervisor_bodies_match_the_nova_samples(
    shared: tuple[OpenStackSim, dict[str, Any]],
    name: str,
    mv: str | None,
    path: str,
    params: dict[str, Any],
) -> None:
    """os-hypervisors list/detail: the sample's keys and types at each microversion."""
    sim, world = shared
    mine = nova(sim, path, world["admin"], mv, **params).json()
    assert shape_problems(sample(f"nova/os-hypervisors/{name}"), mine) == []


def test_version_documents_match_the_nova_samples(
    shared: tuple[OpenStackSim, dict[str, Any]],
) -> None:
    """GET /compute/R/ and /compute/R/v2.1/ have the sample's shapes."""
    sim, _ = shared
    root = requests.get(sim.compute_url(REGION).rsplit("/", 1)[0] + "/", timeout=5).json()
    assert shape_problems(sample("nova/versions/versions-get-resp.json"), root) == []
    v21 = requests.get(sim.compute_url(REGION) + "/", timeout=5).json()
    assert shape_problems(sample("nova/versions/v21-version-get-resp.json"), v21) == []


RECORDED_CASES = [
    ("server_show", "/servers/{server}", "2.79", "admin"),
    ("servers_detail_as_demo_project", "/servers/detail", "2.79", "demo"),
    ("os_services", "/os-services", "2.79", "admin"),
    ("os_hypervisors_detail", "/os-hypervisors/detail", "2.79", "admin"),
    ("os_hypervisors_detail_v2.88", "/os-hypervisors/detail", "2.88", "admin"),
    ("server_diagnostics", "/servers/{server}/diagnostics", "2.79", "admin"),
]


def recorded(name: str) -> Any:
    """The body of a response recorded from a real Nova, or skip when it is not in the repo."""
    file = RECORDED / f"{name}.json"
    if not file.exists():
        pytest.skip(f"{file.name} not recorded in this checkout")
    return json.loads(file.read_text(encoding="utf-8"))["response"]["body"]


@pytest.mark.parametrize(("name", "path", "mv", "who"), RECORDED_CASES)
def test_bodies_match_responses_recorded_from_real_nova(
    shared: tuple[OpenStackSim, dict[str, Any]], name: str, path: str, mv: str, who: str
) -> None:
    """Where a response recorded from a real Nova (Zed) is in the repo, the shapes agree."""
    real = recorded(name)
    sim, world = shared
    mine = nova(sim, path.format(server=world["server"]), world[who], mv).json()
    if "servers" in real:
        assert server_problems(real["servers"][0], mine["servers"][0]) == []
    else:
        assert shape_problems(real, mine) == []


@pytest.mark.parametrize("mv", ["2.79", None])
def test_deleted_server_matches_the_recorded_real_one(
    sim: OpenStackSim, world: dict[str, Any], mv: str | None
) -> None:
    """A DELETED server from changes-since has the real one's keys, with and without 2.79."""
    suffix = "" if mv else "_v2.1"
    real = recorded(f"servers_detail_changes_since_deleted{suffix}")["servers"][0]
    since = sim.server(REGION, world["server"])["updated"]
    sim.delete_server(REGION, world["server"])
    params = {"all_tenants": 1, "changes-since": since}
    mine = nova(sim, "/servers/detail", world["admin"], mv, **params).json()["servers"]
    (deleted,) = [s for s in mine if s["status"] == "DELETED"]
    assert server_problems(real, deleted) == []
    assert deleted.get("host_status") == real.get("host_status")
