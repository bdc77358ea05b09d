"""Simulator fidelity: each situation the poller depends on, replayed in ``OpenStackSim`` and
compared with the response a real Nova/Keystone (Zed) gave in the same situation.

The real exchanges are in ``tests/fixtures/openstack/recorded/`` (see PROVENANCE.md there).
For each we produce the same situation in the simulator (same calls, same microversion, same
user) and compare what a client can depend on: status, keys and value types, the state fields
(``status`` / ``OS-EXT-STS:*`` / ``host_status``), timestamp formats, paging links, error bodies
and headers. Shapes already compared by ``test_openstack_sim.py`` (server show/detail, deleted
server, services, hypervisor detail, diagnostics) are not compared again here.

Five differences found this way were fixed in the simulator: ``Date``/``Server`` headers
(real uwsgi sends neither), ``Vary`` as two headers, ``charset=UTF-8`` on Nova's errors, the
406 echoing the requested microversion, and whole-second token times.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from tests.helpers import FakeClock
from tests.sim.test_openstack_sim import (
    RECORDED,
    REGION,
    T0,
    iso,
    issue,
    nova,
    server_problems,
    shape_problems,
)
from vesagent.sim.openstack import OpenStackSim

GHOST = "cdd5eb00-75d1-45ac-9cc3-9fded7e1e6e6"  # the unknown server id the recorder used
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# Timestamp formats as the real APIs write them.
ISO_Z = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"  # server created/updated: whole seconds, Z
DB_MICRO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000"  # launched_at, service updated_at: no Z
TOKEN_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000Z"  # Keystone fernet: whole seconds


# -- recorded exchanges --------------------------------------------------------------------------
@dataclass(frozen=True)
class Exchange:
    """One recorded HTTP exchange, or the simulator's answer to the same request."""

    status: int
    headers: list[tuple[str, str]]  # as sent: order and duplicates kept
    body: Any

    def header(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def header_names(self) -> set[str]:
        """The header names, lower case."""
        return {k.lower() for k, _ in self.headers}

    @classmethod
    def of(cls, response: requests.Response) -> Exchange:
        """The simulator's response with its raw header list (duplicates not merged)."""
        raw = response.raw.headers
        headers = [(k, v) for k in dict.fromkeys(raw.keys()) for v in raw.getlist(k)]
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return cls(response.status_code, headers, body)


def real(name: str) -> Exchange:
    """A recorded real exchange (the file must be in the repo: the fixtures are committed)."""
    data = json.loads((RECORDED / f"{name}.json").read_text(encoding="utf-8"))
    response = data["response"]
    headers = [(str(k), str(v)) for k, v in response["headers"]]
    return Exchange(response["status"], headers, response["body"])


def real_request(name: str) -> dict[str, Any]:
    """The recorded request of an exchange."""
    return json.loads((RECORDED / f"{name}.json").read_text(encoding="utf-8"))["request"]


def _seconds(text: str) -> float:
    """Epoch seconds of an ISO 8601 time with a ``Z``."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# -- the simulator in the recorder's situations --------------------------------------------------
@dataclass
class World:
    """One region of its own, tokens of both users, servers of both projects like the
    recorder's (three admin, two demo), in a simulator shared by the module."""

    sim: OpenStackSim
    clock: FakeClock
    region: str
    admin: str
    demo: str
    admin_servers: list[str]
    demo_servers: list[str]

    def get(
        self, path: str, mv: str | None = "2.79", who: str = "admin", **params: Any
    ) -> Exchange:
        """A Nova GET of this world's region as ``who`` at ``mv``, as an ``Exchange``."""
        token = self.admin if who == "admin" else self.demo
        return Exchange.of(nova(self.sim, path, token, mv, self.region, **params))


@pytest.fixture(name="shared", scope="module")
def fixture_shared() -> Iterator[tuple[OpenStackSim, FakeClock, Iterator[int]]]:
    """One simulator on a settable clock for the module (a server per test costs 0.1 s to stop)."""
    clock = FakeClock()
    with OpenStackSim(regions=(REGION,), clock=clock) as sim:
        yield sim, clock, itertools.count(1)


@pytest.fixture(name="world")
def fixture_world(shared: tuple[OpenStackSim, FakeClock, Iterator[int]]) -> World:
    """A fresh region (hosts compute-1, compute-2) laid out like the recorder's cloud.

    The clock moves on by whole seconds, as the recorder's steps did, so that ``updated``
    values and ``changes-since`` windows behave as they did against the real cloud.
    """
    sim, clock, numbers = shared
    region = f"Fidelity{next(numbers)}"
    sim.add_region(region)
    clock.advance(10)
    admin_servers = sim.create_servers(region, 3, prefix="rec-admin")
    clock.advance(4)
    demo_servers = sim.create_servers(region, 2, project="demo", prefix="rec-demo")
    clock.advance(1)
    return World(sim, clock, region, issue(sim), issue(sim, "demo"), admin_servers, demo_servers)


# -- server states -------------------------------------------------------------------------------
STATE_KEYS = ("status", "OS-EXT-STS:vm_state", "OS-EXT-STS:task_state", "OS-EXT-STS:power_state")


def state_of(server: dict[str, Any]) -> tuple[Any, ...]:
    """What the poller reads of a server's state, and which optional keys are present."""
    return (
        *(server.get(k) for k in STATE_KEYS),
        server.get("host_status"),
        "progress" in server,
        "fault" in server,
    )


def format_problems(real_server: dict[str, Any], mine: dict[str, Any]) -> list[str]:
    """Timestamp fields whose format differs from the real one (null must stay null)."""
    problems = []
    for key, pattern in (
        ("created", ISO_Z),
        ("updated", ISO_Z),
        ("OS-SRV-USG:launched_at", DB_MICRO),
        ("OS-SRV-USG:terminated_at", DB_MICRO),
    ):
        want, got = real_server.get(key), mine.get(key)
        if want is None or got is None:
            if (want is None) != (got is None):
                problems.append(f"{key}: {want!r} vs {got!r}")
            continue
        assert re.fullmatch(pattern, want), f"recording changed: {key}={want}"
        if not re.fullmatch(pattern, got):
            problems.append(f"{key}: {got!r} does not look like {want!r}")
    return problems


def _reset_error(w: World) -> str:
    w.clock.advance(1)
    w.sim.set_status(w.region, w.admin_servers[2], "ERROR")  # os-resetState error: no fault
    return w.admin_servers[2]


def _shutoff(w: World) -> str:
    w.clock.advance(1)
    w.sim.set_status(w.region, w.admin_servers[1], "SHUTOFF")
    return w.admin_servers[1]


def _host_forced_down(w: World) -> str:
    w.sim.set_service(w.region, "compute-1", forced_down=True)
    return w.admin_servers[0]


def _host_disabled(w: World) -> str:
    w.sim.set_service(w.region, "compute-1", enabled=False, reason="recorder maintenance")
    return w.admin_servers[0]


def _host_round_trip(w: World) -> None:
    """What the recorder did to its host: forced down, disabled, then both undone."""
    _host_forced_down(w)
    _host_disabled(w)
    w.clock.advance(1)
    w.sim.set_service(w.region, "compute-1", forced_down=False, enabled=True)


def _stopped_host_restored(w: World) -> str:
    server = _shutoff(w)
    _host_round_trip(w)
    return server


SERVER_CASES: dict[str, Callable[[World], str]] = {
    "server_show_reset_error": _reset_error,
    "server_show_shutoff": _shutoff,
    "server_show_host_forced_down": _host_forced_down,
    "server_show_host_disabled": _host_disabled,
    "server_show_stopped_host_ok": _stopped_host_restored,
    "server_show": lambda w: w.admin_servers[0],
}


@pytest.mark.parametrize("name", list(SERVER_CASES))
def test_server_states_match_the_real_ones(world: World, name: str) -> None:
    """Same operation, same state fields, same optional keys, same timestamp formats."""
    recorded = real(name)
    server_id = SERVER_CASES[name](world)
    mine = world.get(f"/servers/{server_id}")
    assert mine.status == recorded.status == 200
    want, got = recorded.body["server"], mine.body["server"]
    assert state_of(got) == state_of(want)
    assert format_problems(want, got) == []
    if name != "server_show":  # the ACTIVE one's keys are compared in test_openstack_sim
        assert server_problems(want, got) == []


@pytest.mark.parametrize("mv", ["2.79", None])
def test_deleted_server_state_matches_the_real_one(world: World, mv: str | None) -> None:
    """A server deleted after ``changes-since``: DELETED/deleted, power 0, terminated_at set."""
    name = "servers_detail_changes_since_deleted" + ("" if mv else "_v2.1")
    (want,) = real(name).body["servers"]
    since = iso(world.clock.now)
    world.sim.delete_server(world.region, world.demo_servers[1])
    listed = world.get("/servers/detail", mv, all_tenants=1, limit=1000, **{"changes-since": since})
    (got,) = listed.body["servers"]
    assert state_of(got) == state_of(want)
    assert format_problems(want, got) == []
    assert listed.body.keys() == real(name).body.keys()


# -- server lists and their paging ---------------------------------------------------------------
def link_query(body: dict[str, Any]) -> list[tuple[str, str]] | None:
    """The parsed query of the ``next`` link (None: no ``servers_links``)."""
    links = body.get("servers_links")
    if links is None:
        return None
    (link,) = links
    assert link["rel"] == "next"
    return parse_qsl(urlsplit(link["href"]).query)


def paging(world: World, params: dict[str, Any], marker_from: list[str]) -> list[Exchange]:
    """Follow ``marker`` paging as the recorder did (the markers are the listed ids)."""
    pages = [world.get("/servers/detail", **params)]
    for _ in range(5):
        body = pages[-1].body
        if "servers_links" not in body:
            break
        pages.append(world.get("/servers/detail", **params, marker=body["servers"][-1]["id"]))
    marker_from.extend(s["id"] for p in pages for s in p.body["servers"])
    return pages


@pytest.mark.parametrize(
    ("prefix", "params"),
    [
        ("servers_detail_limit2_page", {"all_tenants": 1, "limit": 2}),
        (
            "servers_detail_changes_since_limit2_page",
            {"all_tenants": 1, "changes-since": iso(T0 - 2), "limit": 2},
        ),
        (
            "servers_detail_full_page_then_empty_page",
            {"all_tenants": 1, "changes-since": iso(T0 - 2), "limit": 5},
        ),
    ],
)
def test_paging_matches_the_real_pages(world: World, prefix: str, params: dict[str, Any]) -> None:
    """Page sizes, the next link's parameters (in order), and its absence on the last page."""
    files = sorted(p.stem for p in RECORDED.glob(f"{prefix}*.json"))
    recorded = [real(f) for f in files]
    seen: list[str] = []
    mine = paging(world, params, seen)
    assert [len(p.body["servers"]) for p in mine] == [len(p.body["servers"]) for p in recorded]
    assert [set(p.body) for p in mine] == [set(p.body) for p in recorded]
    for want, got in zip(recorded, mine, strict=True):
        want_query, got_query = link_query(want.body), link_query(got.body)
        if want_query is None:
            assert got_query is None
            continue
        assert got_query is not None
        assert [k for k, _ in got_query] == [k for k, _ in want_query]
        assert dict(got_query)["marker"] == got.body["servers"][-1]["id"]
        assert {k: v for k, v in got_query if k != "marker"} == {
            k: str(v) for k, v in params.items()
        }
    assert sorted(seen) == sorted(world.admin_servers + world.demo_servers)


def test_changes_since_ignores_host_changes_like_real_nova(world: World) -> None:
    """Forcing the host down, disabling it and restoring it leaves every ``updated`` alone."""
    recorded = real("servers_detail_changes_since_after_host_changes")
    world.clock.advance(2)
    since = iso(world.clock.now)
    _host_round_trip(world)
    mine = world.get("/servers/detail", all_tenants=1, limit=1000, **{"changes-since": since})
    assert mine.body == recorded.body == {"servers": []}


# -- compute services and hypervisors ------------------------------------------------------------
SERVICE_CASES: dict[str, Callable[[World], object]] = {
    "os_services_nova_compute": lambda w: None,
    "os_services_forced_down": _host_forced_down,
    "os_services_disabled": _host_disabled,
}


@pytest.mark.parametrize("name", list(SERVICE_CASES))
def test_compute_services_match_the_real_ones(world: World, name: str) -> None:
    """``?binary=nova-compute``: up / forced down / disabled, as the host poller reads them."""
    (want,) = real(name).body["services"]
    SERVICE_CASES[name](world)
    mine = world.get("/os-services", binary="nova-compute").body["services"]
    got = next(s for s in mine if s["host"] == "compute-1")
    assert shape_problems(want, got) == []
    fields = ("binary", "zone", "state", "status", "forced_down", "disabled_reason")
    assert {k: got[k] for k in fields} == {k: want[k] for k in fields}
    assert re.fullmatch(DB_MICRO, got["updated_at"]) and re.fullmatch(DB_MICRO, want["updated_at"])
    assert re.fullmatch(UUID, got["id"]) and re.fullmatch(UUID, want["id"])


@pytest.mark.parametrize(
    ("name", "change"), [("os_hypervisors_page1", None), ("os_hypervisors_forced_down", "down")]
)
def test_hypervisor_list_matches_the_real_one(world: World, name: str, change: str | None) -> None:
    """``GET /os-hypervisors``: keys, and state down / status enabled for a forced-down host."""
    (want,) = real(name).body["hypervisors"]
    if change:
        _host_forced_down(world)
    params = {"limit": 1000} if name.endswith("page1") else {}
    body = world.get("/os-hypervisors", **params).body
    assert set(body) == set(real(name).body)
    got = next(h for h in body["hypervisors"] if h["hypervisor_hostname"] == "compute-1")
    assert shape_problems(want, got) == []
    assert (got["state"], got["status"]) == (want["state"], want["status"])


# -- error bodies --------------------------------------------------------------------------------
ERROR_CASES: dict[str, tuple[str, str | None, str, dict[str, Any]]] = {
    # recorded file: (path, microversion, user, query); checked in test_openstack_sim with
    # literal bodies already: unknown marker, unknown query parameter, all_tenants as demo.
    "error_400_bad_changes_since": (
        "/servers/detail",
        "2.79",
        "admin",
        {"all_tenants": 1, "changes-since": "yesterday"},
    ),
    "error_401_bad_token": ("/servers/detail", "2.79", "nobody", {"all_tenants": 1}),
    "error_403_os_services_as_demo": ("/os-services", "2.79", "demo", {}),
    "error_404_unknown_server": (f"/servers/{GHOST}", "2.79", "admin", {}),
    "error_404_unknown_server_diagnostics": (f"/servers/{GHOST}/diagnostics", "2.79", "admin", {}),
    "error_406_unsupported_microversion": ("/servers/detail", "2.999", "admin", {}),
}


def error_exchange(world: World, name: str) -> Exchange:
    """The simulator's answer to the recorded failing request."""
    path, mv, who, params = ERROR_CASES[name]
    if who == "nobody":
        return Exchange.of(nova(world.sim, path, "not-a-token", mv, world.region, **params))
    return world.get(path, mv, who, **params)


def comparable(body: Any) -> Any:
    """A body with the deployment's maximum microversion (Zed 2.93, sim 2.96) blanked."""
    return json.loads(re.sub(r"maximum is 2\.\d+\.", "maximum is <max>.", json.dumps(body)))


@pytest.mark.parametrize("name", list(ERROR_CASES))
def test_error_bodies_match_the_real_ones(world: World, name: str) -> None:
    """Same status and the same body, message included (the poller logs it)."""
    recorded, mine = real(name), error_exchange(world, name)
    assert mine.status == recorded.status
    assert comparable(mine.body) == comparable(recorded.body)


def test_keystone_403_matches_the_real_one(world: World) -> None:
    """Listing projects as a member: the 403 that ``resolve_project`` falls back on.

    (The bad-password 401 is already compared literally in test_openstack_sim.)
    """
    forbidden = real("keystone_projects_as_demo")
    mine = Exchange.of(
        requests.get(
            f"{world.sim.keystone_url}/projects",
            params={"name": "demo"},
            headers={"X-Auth-Token": world.demo},
            timeout=5,
        )
    )
    assert (mine.status, mine.body) == (forbidden.status, forbidden.body)


# -- Keystone bodies the poller reads ------------------------------------------------------------
def token_issue(world: World) -> Exchange:
    """``POST /v3/auth/tokens`` exactly as the recorder sent it (names, Default domain)."""
    body = real_request("keystone_token_issue")["body"]
    body["auth"]["identity"]["password"]["user"]["password"] = "admin"
    return Exchange.of(requests.post(f"{world.sim.keystone_url}/auth/tokens", json=body, timeout=5))


def test_token_issue_matches_the_real_one(world: World) -> None:
    """201, token in X-Subject-Token, the recorded body's keys, a one-hour lifetime."""
    recorded, mine = real("keystone_token_issue"), token_issue(world)
    assert mine.status == recorded.status == 201
    assert len(mine.header("X-Subject-Token")) == 1
    want, got = recorded.body["token"], mine.body["token"]
    assert shape_problems(want, got) == []
    assert {r["name"] for r in got["roles"]} == {r["name"] for r in want["roles"]}
    assert {c["type"] for c in got["catalog"]} >= {"identity", "compute"}
    for token in (want, got):
        assert _seconds(token["expires_at"]) - _seconds(token["issued_at"]) == 3600


def test_token_times_are_whole_seconds(world: World) -> None:
    """``expires_at`` / ``issued_at`` end in ``.000000Z`` like the real ones."""
    want = real("keystone_token_issue").body["token"]
    world.clock.advance(0.25)  # a clock between two seconds, as a real one mostly is
    got = token_issue(world).body["token"]
    for key in ("expires_at", "issued_at"):
        assert re.fullmatch(TOKEN_TIME, want[key])
        assert re.fullmatch(TOKEN_TIME, got[key]), got[key]


@pytest.mark.parametrize(
    ("name", "path", "who", "params"),
    [
        (
            "keystone_projects_by_name",
            "/projects",
            "admin",
            {"name": "demo", "domain_id": "default"},
        ),
        ("keystone_auth_projects_as_demo", "/auth/projects", "demo", {}),
    ],
)
def test_project_lookups_match_the_real_ones(
    world: World, name: str, path: str, who: str, params: dict[str, Any]
) -> None:
    """The two calls ``resolve_project`` makes: same keys, same project fields and links."""
    recorded = real(name)
    token = world.admin if who == "admin" else world.demo
    mine = Exchange.of(
        requests.get(
            f"{world.sim.keystone_url}{path}",
            params=params,
            headers={"X-Auth-Token": token},
            timeout=5,
        )
    )
    assert mine.status == recorded.status == 200
    assert shape_problems(recorded.body, mine.body) == []
    (got,) = mine.body["projects"]
    assert (got["name"], got["domain_id"]) == ("demo", "default")


# -- the microversion the agent sends ------------------------------------------------------------
def test_microversion_279_is_served_and_echoed(world: World) -> None:
    """The agent sends 2.79: accepted, echoed in both headers; the version document's shape."""
    recorded = real("compute_version_root")
    mine = world.get("/")
    assert mine.status == recorded.status == 200
    for header in ("OpenStack-API-Version", "X-OpenStack-Nova-API-Version"):
        assert mine.header(header) == recorded.header(header)
    assert shape_problems(recorded.body, mine.body) == []
    want, got = recorded.body["version"], mine.body["version"]
    assert got["min_version"] == want["min_version"] == "2.1"
    # Zed's maximum is 2.93; the sim serves a newer Nova (2.96). Both are above 2.79.
    assert tuple(map(int, got["version"].split("."))) >= (2, 93)
    listed = world.get("/servers/detail", all_tenants=1)
    assert listed.header("OpenStack-API-Version") == ["compute 2.79"]


# -- headers -------------------------------------------------------------------------------------
# Every recorded exchange this module replays, with a way to replay it.
def _header_cases() -> dict[str, Callable[[World], Exchange]]:
    cases: dict[str, Callable[[World], Exchange]] = {
        name: (lambda w, n=name: error_exchange(w, n)) for name in ERROR_CASES
    }
    cases["server_show"] = lambda w: w.get(f"/servers/{w.admin_servers[0]}")
    cases["servers_detail_limit2_page1"] = lambda w: w.get(
        "/servers/detail", all_tenants=1, limit=2
    )
    cases["os_services_nova_compute"] = lambda w: w.get("/os-services", binary="nova-compute")
    cases["os_hypervisors_page1"] = lambda w: w.get("/os-hypervisors", limit=1000)
    cases["keystone_token_issue"] = token_issue
    return cases


HEADER_CASES = _header_cases()
# Headers whose presence differs by design of a test bed, or that are checked separately below.
SEPARATE = {"date", "server", "vary"}


@pytest.mark.parametrize("name", [n for n in HEADER_CASES if "406" not in n])
def test_header_names_match_the_real_ones(world: World, name: str) -> None:
    """The same set of headers (request ids, microversion, auth, length, Connection: close).

    The 406 is left to ``test_406_echoes_the_requested_microversion``.
    """
    recorded, mine = real(name), HEADER_CASES[name](world)
    assert mine.header_names() - SEPARATE == recorded.header_names() - SEPARATE


@pytest.mark.parametrize("name", ["server_show", "keystone_token_issue"])
def test_no_date_and_no_server_header(world: World, name: str) -> None:
    """Neither ``Date`` nor ``Server`` on Nova or Keystone responses."""
    recorded, mine = real(name), HEADER_CASES[name](world)
    assert recorded.header("Date") == recorded.header("Server") == []
    assert (mine.header("Date"), mine.header("Server")) == ([], [])


def test_vary_is_sent_as_two_headers(world: World) -> None:
    """Nova's two ``Vary`` headers, in the real order."""
    recorded, mine = real("server_show"), HEADER_CASES["server_show"](world)
    assert mine.header("Vary") == recorded.header("Vary")


@pytest.mark.parametrize("name", [n for n in ERROR_CASES if "401" not in n])
def test_nova_error_content_type(world: World, name: str) -> None:
    """Nova error Content-Type as sent."""
    recorded, mine = real(name), error_exchange(world, name)
    assert mine.header("Content-Type") == recorded.header("Content-Type")


def test_401_and_keystone_content_type(world: World) -> None:
    """Where the real one has no charset (401 from keystonemiddleware, Keystone), same here."""
    for name, mine in (
        ("error_401_bad_token", error_exchange(world, "error_401_bad_token")),
        ("keystone_token_issue", token_issue(world)),
    ):
        assert (
            mine.header("Content-Type") == real(name).header("Content-Type") == ["application/json"]
        )


def test_406_echoes_the_requested_microversion(world: World) -> None:
    """The microversion headers on an unsupported version."""
    recorded = real("error_406_unsupported_microversion")
    mine = error_exchange(world, "error_406_unsupported_microversion")
    for header in ("OpenStack-API-Version", "X-OpenStack-Nova-API-Version"):
        assert mine.header(header) == recorded.header(header)
