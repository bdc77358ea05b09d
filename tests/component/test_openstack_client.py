"""ComputeClient over real HTTP on loopback.

Three kinds of server answer here:
- ``replay``: a tiny Keystone + Nova that answers with responses recorded from a real OpenStack
  Zed (``tests/fixtures/openstack/recorded``), so the client is checked against genuine bodies,
  links and headers (e.g. uwsgi-served Nova sends no ``Date``);
- ``sim``: the project's OpenStack simulator, for volume (2,500 servers), state changes, token
  expiry and fault knobs;
- a real OpenStack, only when ``OS_AUTH_URL`` (and friends) are set in the environment.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from vesagent.errors import (
    CredentialsRefused,
    NotFound,
    PermanentError,
    PermissionDenied,
    TemporaryError,
    retry_after_seconds,
)
from vesagent.pollers.openstack import (
    ComputeClient,
    VimCredentials,
    keystone_v3_url,
)

RECORDED = Path(__file__).resolve().parent.parent / "fixtures" / "openstack" / "recorded"
REGION = "RegionOne"
SECRET = "N0t-the-Pa55word-7d3f"
REQUEST_ID = re.compile(
    r"^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)

Reply = tuple[int, list[tuple[str, str]], Any]


def recorded(name: str) -> dict[str, Any]:
    """One exchange recorded from the real OpenStack."""
    return json.loads((RECORDED / f"{name}.json").read_text(encoding="utf-8"))


def replay(name: str) -> Reply:
    """The recorded response: status, headers as Nova sent them (minus framing), body."""
    response = recorded(name)["response"]
    headers = [
        (k, v) for k, v in response["headers"] if k.lower() not in ("content-length", "connection")
    ]
    return response["status"], headers, response["body"]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def wait_next_second() -> None:
    """Nova keeps ``updated`` in whole seconds: let the clock enter a fresh second."""
    start = datetime.now(UTC).replace(microsecond=0)
    wait_for(lambda: datetime.now(UTC).replace(microsecond=0) > start, "the next second")


# -- replay server ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Seen:
    """A request the replay server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class ReplayCloud:
    """Keystone (``/identity/v3``) and Nova (``/compute/v2.1``) answering recorded responses.

    ``routes`` maps a path below the compute (or identity) root to a function of the query
    that returns a ``Reply``. Tokens are the recorded token body with the catalog pointed at
    this server and a fresh ``expires_at``.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[dict[str, str]], Reply]] = {}
        self.seen: list[Seen] = []
        self.auth_count = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def keystone_url(self) -> str:
        return f"{self.url}/identity/v3"

    def start(self) -> ReplayCloud:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def compute_requests(self) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path.startswith("/compute/")]

    def token_reply(self) -> Reply:
        status, headers, body = replay("keystone_token_issue")
        text = json.dumps(body)
        text = text.replace("http://127.0.0.1:8774", f"{self.url}/compute")
        text = text.replace("http://127.0.0.1:5000", f"{self.url}/identity")
        token = json.loads(text)
        now = datetime.now(UTC)
        token["token"]["issued_at"] = now.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        token["token"]["expires_at"] = (now + timedelta(hours=1)).strftime(
            "%Y-%m-%dT%H:%M:%S.000000Z"
        )
        with self._lock:
            self.auth_count += 1
            number = self.auth_count
        headers = [(k, f"gAAAA-replay-token-{number}" if k == "X-Subject-Token" else v)
                   for k, v in headers]  # fmt: skip
        return status, headers, token

    def _answer(self, method: str, raw_path: str, headers: dict[str, str]) -> Reply:
        parts = urlsplit(raw_path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self._lock:
            self.seen.append(Seen(method, parts.path, query, headers))
        if method == "POST" and parts.path == "/identity/v3/auth/tokens":
            return self.token_reply()
        for root in ("/compute/v2.1", "/identity/v3"):
            if parts.path.startswith(root) and parts.path[len(root) :] in self.routes:
                return self.routes[parts.path[len(root) :]](query)
        return (
            404,
            [("Content-Type", "application/json")],
            {"itemNotFound": {"code": 404, "message": "no route in the replay server"}},
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        cloud = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                status, headers, body = cloud._answer(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}
                )
                payload = b"" if body is None else json.dumps(body).encode()
                # send_response_only: no automatic Date/Server header, exactly like uwsgi Nova.
                self.send_response_only(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                return

        return Handler


@pytest.fixture(name="cloud")
def fixture_cloud() -> Iterator[ReplayCloud]:
    cloud = ReplayCloud().start()
    yield cloud
    cloud.stop()


def replay_client(cloud: ReplayCloud, **kwargs: Any) -> ComputeClient:
    creds = VimCredentials(cloud.keystone_url, "admin", SECRET, "admin", region_name=REGION)
    return ComputeClient(creds, timeout=5.0, **kwargs)


def pages_by_marker(prefix: str) -> dict[str | None, str]:
    """Recorded page files ``{prefix}{n}`` keyed by the marker their request carried."""
    found: dict[str | None, str] = {}
    for path in sorted(RECORDED.glob(f"{prefix}*.json")):
        query = dict(parse_qsl(urlsplit(recorded(path.stem)["request"]["url"]).query))
        found[query.get("marker")] = path.stem
    return found


def recorded_ids(names: list[str]) -> list[str]:
    return [s["id"] for name in names for s in recorded(name)["response"]["body"]["servers"]]


# -- against responses recorded from the real OpenStack ----------------------------------------
def test_follows_real_servers_links_across_pages(cloud: ReplayCloud) -> None:
    """limit=2 over the recorded pages: every page is fetched once, in order, and merged."""
    pages = pages_by_marker("servers_detail_limit2_page")
    cloud.routes["/servers/detail"] = lambda q: replay(pages[q.get("marker")])
    with replay_client(cloud) as client:
        page = client.list_servers(limit=2)
    assert [s["id"] for s in page.servers] == recorded_ids(sorted(pages.values()))
    assert page.requests == len(pages) == client.requests_made
    seen = cloud.compute_requests()
    assert all(s.query["all_tenants"] == "1" and s.query["limit"] == "2" for s in seen)
    assert [s.query.get("marker") for s in seen] == list(pages)


def test_full_last_page_costs_one_more_request(cloud: ReplayCloud) -> None:
    """Real Nova adds a next link to a full page; the client stops at the empty page after."""
    pages = pages_by_marker("servers_detail_full_page_then_empty_page")
    cloud.routes["/servers/detail"] = lambda q: replay(pages[q.get("marker")])
    first = recorded(pages[None])["request"]["url"]
    since_text = dict(parse_qsl(urlsplit(first).query))["changes-since"]
    since = datetime.fromisoformat(since_text.replace("Z", "+00:00"))
    with replay_client(cloud) as client:
        page = client.list_servers(changes_since=since, limit=5)
    assert len(page.servers) == 5
    assert page.requests == 2
    assert {s.query["changes-since"] for s in cloud.compute_requests()} == {since_text}


def test_no_date_header_falls_back_to_local_clock(cloud: ReplayCloud) -> None:
    """uwsgi-served Nova sends no Date: server_time is our clock before sending, flagged so."""
    cloud.routes["/servers/detail"] = lambda q: replay("servers_detail_changes_since_deleted")
    before = datetime.now(UTC)
    with replay_client(cloud) as client:
        page = client.list_servers(changes_since=before)
    assert page.server_clock is False
    assert before <= page.server_time <= datetime.now(UTC)
    assert [s["status"] for s in page.servers] == ["DELETED"]


def test_date_header_is_the_server_time(cloud: ReplayCloud) -> None:
    """Behind a proxy that adds Date, that Date (not our clock) is the server time."""
    status, headers, body = replay("servers_detail_changes_since_deleted")
    headers = [*headers, ("Date", "Wed, 25 Nov 2026 14:00:09 GMT")]
    cloud.routes["/servers/detail"] = lambda q: (status, headers, body)
    with replay_client(cloud) as client:
        page = client.list_servers()
    assert page.server_clock is True
    assert page.server_time == datetime(2026, 11, 25, 14, 0, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "call", "error", "needle"),
    [
        ("error_403_all_tenants_as_demo", "servers", PermissionDenied,
         "the user lacks the admin role needed for all_tenants"),
        ("error_403_os_services_as_demo", "services", PermissionDenied,
         "the user lacks the admin role needed for os-services"),
        ("error_400_unknown_marker", "servers", PermanentError, "not found"),
        ("error_400_bad_changes_since", "servers", PermanentError, "changes-since"),
        ("error_400_unknown_query_param", "servers", PermanentError, "HTTP 400"),
        ("error_406_unsupported_microversion", "servers", PermanentError,
         "does not support microversion 2.79"),
        ("error_404_unknown_server_diagnostics", "diagnostics", NotFound,
         "could not be found"),
    ],
)  # fmt: skip
def test_real_error_bodies_are_classified(
    cloud: ReplayCloud, name: str, call: str, error: type[Exception], needle: str
) -> None:
    """Each real Nova error body becomes the right error class with a useful message."""
    for path in ("/servers/detail", "/os-services", "/servers/abc/diagnostics"):
        cloud.routes[path] = lambda q: replay(name)
    with replay_client(cloud) as client:
        calls = {
            "servers": client.list_servers,
            "services": client.list_services,
            "diagnostics": lambda: client.diagnostics("abc"),
        }
        with pytest.raises(error) as info:
            calls[call]()
    message = str(info.value)
    assert needle in message
    assert REGION in message and "/compute/v2.1/" in message
    assert SECRET not in message and "gAAAA" not in message


def test_401_twice_is_permanent_after_one_reauth(cloud: ReplayCloud) -> None:
    """keystoneauth re-authenticates once on 401; a second 401 is a PermanentError."""
    cloud.routes["/servers/detail"] = lambda q: replay("error_401_bad_token")
    with replay_client(cloud) as client, pytest.raises(CredentialsRefused, match="re-auth"):
        client.list_servers()
    assert cloud.auth_count == 2 == client.auth_count
    assert len(cloud.compute_requests()) == 2


def test_401_once_recovers_with_a_new_token(cloud: ReplayCloud) -> None:
    """A revoked token (401) costs one re-auth and the call still succeeds."""
    answers = iter([replay("error_401_bad_token")])
    ok = replay("servers_detail_as_demo_project")
    cloud.routes["/servers/detail"] = lambda q: next(answers, ok)
    with replay_client(cloud) as client:
        page = client.list_servers()
    assert len(page.servers) == 2
    assert client.auth_count == 2
    tokens = [s.headers.get("x-auth-token") for s in cloud.compute_requests()]
    assert tokens == ["gAAAA-replay-token-1", "gAAAA-replay-token-2"]


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("7", 7.0), ("Wed, 25 Nov 2026 14:00:39 GMT", 30.0), (None, None), ("soon", None)],
)
def test_429_is_temporary_with_retry_after(
    cloud: ReplayCloud, retry_after: str | None, expected: float | None
) -> None:
    """429 (a rate-limiting proxy in front of Nova) → TemporaryError carrying Retry-After."""
    headers = [("Content-Type", "application/json"), ("Date", "Wed, 25 Nov 2026 14:00:09 GMT")]
    if retry_after is not None:
        headers.append(("Retry-After", retry_after))
    body = {"message": "Too many requests"}
    cloud.routes["/servers/detail"] = lambda q: (429, headers, body)
    with replay_client(cloud) as client, pytest.raises(TemporaryError) as info:
        client.list_servers()
    assert info.value.delay == expected
    assert len(cloud.compute_requests()) == 1  # no retry inside the client


def test_paging_that_does_not_advance_stops(cloud: ReplayCloud) -> None:
    """A next link that repeats its marker ends in PermanentError, not an endless loop."""
    status, headers, body = replay("servers_detail_limit2_page1")
    cloud.routes["/servers/detail"] = lambda q: (status, headers, body)
    with replay_client(cloud) as client, pytest.raises(PermanentError, match="does not advance"):
        client.list_servers(limit=2)
    assert len(cloud.compute_requests()) == 2


def test_connection_refused_is_temporary() -> None:
    """Nothing listening (Keystone or Nova gone) → TemporaryError naming the URL."""
    cloud = ReplayCloud().start()
    client = replay_client(cloud)
    cloud.stop()
    with client, pytest.raises(TemporaryError, match="cannot reach") as info:
        client.list_services()
    assert cloud.url in str(info.value) and REGION in str(info.value)


def test_sends_request_id_and_microversion_on_every_call(cloud: ReplayCloud) -> None:
    """Each Nova call carries its own X-OpenStack-Request-ID and the pinned microversion."""
    cloud.routes["/os-services"] = lambda q: replay("os_services_forced_down")
    cloud.routes["/os-hypervisors"] = lambda q: replay("os_hypervisors_page1")
    with replay_client(cloud) as client:
        services = client.list_services()
        hypervisors = client.list_hypervisors()
    assert services[0]["forced_down"] is True and services[0]["state"] == "down"
    assert hypervisors[0]["hypervisor_hostname"] == "fake-compute-1"
    seen = cloud.compute_requests()
    assert [s.query for s in seen] == [{"binary": "nova-compute"}, {"limit": "1000"}]
    ids = [s.headers["x-openstack-request-id"] for s in seen]
    assert all(REQUEST_ID.match(i) for i in ids) and len(set(ids)) == len(ids)
    assert {s.headers["openstack-api-version"] for s in seen} == {"compute 2.79"}


def test_resolve_project_admin_and_member_fallback(cloud: ReplayCloud) -> None:
    """/v3/projects for an admin; a member's 403 falls back to /v3/auth/projects; cached."""
    expected = recorded("keystone_projects_by_name")["response"]["body"]["projects"][0]["id"]
    cloud.routes["/projects"] = lambda q: replay("keystone_projects_by_name")
    with replay_client(cloud) as client:
        assert client.resolve_project("demo") == expected
        assert client.resolve_project("demo") == expected
        assert client.resolve_project("nope") is None
    identity = [s for s in cloud.seen if s.path == "/identity/v3/projects"]
    assert len(identity) == 2  # the cached hit made no request; the miss did
    assert identity[0].query == {"name": "demo", "domain_id": "default"}

    cloud.routes["/projects"] = lambda q: replay("keystone_projects_as_demo")
    cloud.routes["/auth/projects"] = lambda q: replay("keystone_auth_projects_as_demo")
    with replay_client(cloud) as client:
        assert client.resolve_project("demo") == expected


# -- pure helpers and secrets -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://k:5000", "http://k:5000/v3"),
        ("http://k:5000/v3/", "http://k:5000/v3"),
        ("https://k/identity", "https://k/identity/v3"),
    ],
)
def test_auth_url_normalised_to_v3(given: str, expected: str) -> None:
    """The auth URL works with or without /v3."""
    assert keystone_v3_url(given) == expected


def test_v2_auth_url_is_rejected_clearly() -> None:
    """A v2.0 Keystone URL is refused up front with a message saying v2 is unsupported."""
    creds = VimCredentials("http://k:5000/v2.0/", "u", SECRET, "p")
    with pytest.raises(PermanentError, match=r"v2\.0 is unsupported"):
        ComputeClient(creds)


def test_retry_after_date_is_relative_to_server_clock() -> None:
    """Retry-After as an HTTP-date counts from the response's Date, never negative."""
    now = datetime(2026, 11, 25, 14, 0, 9, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=12), usegmt=True)
    assert retry_after_seconds(later, now) == 12.0
    assert retry_after_seconds("-3", now) == 0.0
    assert retry_after_seconds("inf", now) is None


def test_password_never_shown(cloud: ReplayCloud, caplog: pytest.LogCaptureFixture) -> None:
    """repr/str of credentials and client, error messages and debug logs never hold it."""
    caplog.set_level(logging.DEBUG)
    creds = VimCredentials(cloud.keystone_url, "admin", SECRET, "admin", region_name=REGION)
    cloud.routes["/servers/detail"] = lambda q: replay("error_403_all_tenants_as_demo")
    with ComputeClient(creds, timeout=5.0) as client:
        with pytest.raises(PermanentError) as info:
            client.list_servers()
        shown = [repr(creds), str(creds), repr(client), str(info.value), repr(info.value)]
    assert all(SECRET not in text for text in shown)
    assert SECRET not in caplog.text
    assert "gAAAA-replay-token" not in caplog.text  # keystoneauth logs only a hash of it


# -- against the project's OpenStack simulator ---------------------------------------------------
@pytest.fixture(name="sim_class")
def fixture_sim_class() -> Any:
    module = pytest.importorskip("vesagent.sim.openstack")
    return module.OpenStackSim


@pytest.fixture(name="sim")
def fixture_sim(sim_class: Any) -> Iterator[Any]:
    sim = sim_class(regions=(REGION,), token_lifetime=3600.0, max_limit=1000).start()
    yield sim
    sim.stop()


def sim_client(sim: Any, user: str = "admin", password: str | None = None, **kw: Any) -> Any:
    creds = VimCredentials(sim.keystone_url, user, password or user, user, region_name=REGION)
    return ComputeClient(creds, timeout=kw.pop("timeout", 5.0), **kw)


def sim_count(sim: Any, fragment: str) -> int:
    """Requests the simulator received whose path contains ``fragment``."""
    return sum(n for key, n in sim.requests.snapshot().items() if fragment in key)


def compute_prefix(client: ComputeClient) -> str:
    return urlsplit(client.compute_endpoint()).path


@pytest.mark.parametrize(("count", "requests"), [(2500, 3), (2000, 3)])
def test_sim_paging_thousands_of_servers(sim: Any, count: int, requests: int) -> None:
    """2,500 servers take ceil(2500/1000) = 3 requests; 2,000 take 3 (full page → empty page)."""
    created = sim.create_servers(REGION, count)
    with sim_client(sim) as client:
        page = client.list_servers()
    ids = [s["id"] for s in page.servers]
    assert len(ids) == len(set(ids)) == count
    assert set(ids) == set(created)
    assert page.requests == requests == sim_count(sim, "/servers/detail")


def test_sim_limit_is_clamped_to_max_limit(sim_class: Any) -> None:
    """Asking for 1000 per page from a cloud whose max_limit is 50 still returns everything."""
    sim = sim_class(regions=(REGION,), max_limit=50).start()
    try:
        sim.create_servers(REGION, 120)
        with sim_client(sim) as client:
            page = client.list_servers(limit=1000)
        assert len({s["id"] for s in page.servers}) == 120
        assert page.requests == 3
    finally:
        sim.stop()


def test_sim_changes_since_returns_changed_and_deleted_only(sim: Any) -> None:
    """After a full list, changes-since brings back the changed server and the deleted one."""
    ids = sim.create_servers(REGION, 10)
    wait_next_second()
    with sim_client(sim) as client:
        first = client.list_servers()
        assert len(first.servers) == 10
        sim.set_status(REGION, ids[3], "ERROR", fault={"code": 500, "message": "boom"})
        sim.delete_server(REGION, ids[7])
        delta = client.list_servers(changes_since=first.server_time)
    by_id = {s["id"]: s for s in delta.servers}
    assert set(by_id) == {ids[3], ids[7]}
    assert by_id[ids[3]]["status"] == "ERROR"
    assert by_id[ids[7]]["status"] == "DELETED"


def test_sim_token_reused_across_calls(sim: Any) -> None:
    """One token serves 20 calls of every kind."""
    sim.create_servers(REGION, 3)
    with sim_client(sim) as client:
        for i in range(20):
            [client.list_servers, client.list_services, client.list_hypervisors][i % 3]()
        assert client.auth_count == 1
        assert client.requests_made == 20
    assert sim.auth_count == 1


def test_sim_expired_token_costs_one_reauth(sim: Any) -> None:
    """When Keystone expires the token, the next call re-authenticates once and succeeds."""
    sim.create_servers(REGION, 2)
    with sim_client(sim) as client:
        client.list_servers()
        sim.expire_tokens()
        page = client.list_servers()
        assert len(page.servers) == 2
        assert client.auth_count == 2
        client.list_services()
        assert client.auth_count == 2
    assert sim.auth_count == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_sim_transient_status_is_temporary_and_not_retried(sim: Any, status: int) -> None:
    """5xx, 408 and 429 → TemporaryError after exactly one request; the next call works."""
    sim.create_servers(REGION, 2)
    with sim_client(sim) as client:
        client.list_servers()
        sim.inject(status=status, path_prefix=compute_prefix(client), count=1)
        with pytest.raises(TemporaryError, match=f"HTTP {status}"):
            client.list_servers()
        assert len(client.list_servers().servers) == 2
    assert sim_count(sim, "/servers/detail") == 3


def test_sim_refused_and_timeout_are_temporary(sim: Any) -> None:
    """Connection refused and a read timeout → TemporaryError; the same token works after."""
    with sim_client(sim, timeout=0.3) as client:
        client.list_services()
        sim.refuse()
        with pytest.raises(TemporaryError, match="cannot reach"):
            client.list_services()
        sim.accept()
        client.list_services()
        sim.hang(1.0)
        try:
            with pytest.raises(TemporaryError):
                client.list_services()
        finally:
            sim.hang(0)
        client.list_services()
        assert client.auth_count == 1


def test_sim_all_tenants_as_member_is_permanent(sim: Any) -> None:
    """A member listing all_tenants gets Nova's 403 → PermissionDenied naming the admin role."""
    with sim_client(sim, "demo") as client, pytest.raises(PermissionDenied) as info:
        client.list_servers()
    assert "the user lacks the admin role needed for all_tenants" in str(info.value)
    assert REGION in str(info.value)


def test_sim_bad_credentials_and_unknown_region_are_permanent(sim: Any) -> None:
    """Wrong password → CredentialsRefused; a region missing from the catalog is not one."""
    with sim_client(sim, "admin", SECRET) as client, pytest.raises(CredentialsRefused) as info:
        client.list_servers()
    assert "rejected the credentials" in str(info.value)
    assert (info.value.service, info.value.status) == ("keystone", 401)
    assert SECRET not in str(info.value) and sim.keystone_url in str(info.value)
    creds = VimCredentials(sim.keystone_url, "admin", "admin", "admin", region_name="RegionX")
    with ComputeClient(creds) as client, pytest.raises(PermanentError, match="RegionX") as other:
        client.list_servers()
    assert not isinstance(other.value, CredentialsRefused)


def test_sim_services_diagnostics_and_projects(sim: Any) -> None:
    """Forced-down host in os-services, diagnostics (404 → NotFound), project lookup."""
    ids = sim.create_servers(REGION, 1, project="demo")
    sim.set_service(REGION, "compute-1", up=False, enabled=True, forced_down=True)
    with sim_client(sim) as client:
        services = {s["host"]: s for s in client.list_services()}
        assert services["compute-1"]["forced_down"] is True
        assert services["compute-1"]["state"] == "down"
        assert isinstance(client.diagnostics(ids[0]), dict)
        with pytest.raises(NotFound):
            client.diagnostics("00000000-0000-4000-8000-000000000000")
        tenant = client.list_servers().servers[0]["tenant_id"]
        assert client.resolve_project("demo") == tenant
        assert client.resolve_project("no-such-project") is None


# -- against a real OpenStack, when the environment names one ------------------------------------
def env_credentials() -> VimCredentials:
    """Credentials from the usual OS_* variables (openrc)."""
    env = os.environ
    verify: bool | str = env.get("OS_CACERT") or True
    if env.get("OS_INSECURE", "").lower() in ("1", "true", "yes"):
        verify = False
    return VimCredentials(
        auth_url=env["OS_AUTH_URL"],
        username=env["OS_USERNAME"],
        password=env["OS_PASSWORD"],
        project_name=env.get("OS_PROJECT_NAME"),
        user_domain=env.get("OS_USER_DOMAIN_NAME", "Default"),
        project_domain=env.get("OS_PROJECT_DOMAIN_NAME", "Default"),
        region_name=env.get("OS_REGION_NAME"),
        verify=verify,
        project_id=env.get("OS_PROJECT_ID"),
    )


@pytest.mark.skipif(
    not (os.environ.get("OS_AUTH_URL") and os.environ.get("OS_PASSWORD")),
    reason="no real OpenStack: set OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, "
    "OS_REGION_NAME (admin credentials) to run",
)
def test_real_openstack_read_only_cycle() -> None:
    """The calls of one poll cycle against a real cloud (read-only), with a single token."""
    creds = env_credentials()
    with ComputeClient(creds, timeout=30.0) as client:
        full = client.list_servers()
        assert all({"id", "status", "updated"} <= set(s) for s in full.servers)
        since = full.server_time - timedelta(seconds=5)
        delta = client.list_servers(changes_since=since)
        # Only servers updated inside the window (a minute of slack for clock skew).
        assert all(
            datetime.fromisoformat(s["updated"].replace("Z", "+00:00"))
            >= since - timedelta(minutes=1)
            for s in delta.servers
        )
        services = client.list_services()
        assert services and all(s["state"] in ("up", "down") for s in services)
        assert all("hypervisor_hostname" in h for h in client.list_hypervisors())
        if creds.project_name:
            project = client.resolve_project(creds.project_name, creds.project_domain)
            assert project and re.fullmatch(r"[0-9a-f]{32}", project)
        with pytest.raises(NotFound):
            client.diagnostics("00000000-0000-4000-8000-000000000000")
        assert client.auth_count == 1
        assert client.requests_made == full.requests + delta.requests + 3
