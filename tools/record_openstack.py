#!/usr/bin/env python3
"""Record the Keystone/Nova responses a vesagent poller depends on, from a REAL OpenStack.

Writes one JSON file per exchange into ``tests/fixtures/openstack/recorded/`` (or ``--out``):

    {"name": ..., "note": ..., "microversion": "2.79" | null,
     "request":  {"method", "url", "as", "headers": {...}, "body": ... (passwords masked)},
     "response": {"status", "headers": [[name, value], ...] (as sent, duplicates kept),
                  "body": JSON or text}}

``X-Subject-Token`` is replaced by ``<redacted>`` and passwords by ``***``; at the end every
file is checked not to contain a token that was issued during the run.

The scenario boots a few servers (fake-driver clouds boot in ~2 s) in two projects, stops one,
resets one to error, deletes one, forces the compute host down and disables it for a moment
(and restores it), records each state, then deletes the servers it created (``--keep`` to
leave them). It needs an admin user, a non-admin user, an image and a flavor; the defaults
fit the loopback test cloud of the project's developers (admin/admin, demo/demo,
``fake-image``, ``m1.tiny``), and ``OS_*`` environment variables override them.

Usage: .venv/bin/python tools/record_openstack.py [--auth-url URL] [--out DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tests/fixtures/openstack/recorded"
MV = "2.79"
REDACTED = "<redacted>"
WAIT_SECONDS = 90.0
POLL_SECONDS = 0.25


@dataclass
class Identity:
    """A user, its project scope and (after ``login``) its token and compute endpoint."""

    who: str
    username: str
    password: str = field(repr=False)
    project: str
    domain: str = "Default"
    token: str = field(default="", repr=False)
    compute_url: str = ""
    image_url: str = ""


class Recorder:
    """Talks to Keystone and Nova with plain ``requests`` and writes what it sees."""

    def __init__(self, auth_url: str, region: str, out: Path, timeout: float = 30.0) -> None:
        self.auth_url = auth_url.rstrip("/")
        self.region = region
        self.out = out
        self.timeout = timeout
        self.http = requests.Session()
        self.tokens: list[str] = []
        self.written: list[Path] = []

    # -- Keystone ----------------------------------------------------------------------------
    def token_request(self, ident: Identity, password: str | None = None) -> dict[str, Any]:
        """The body of a password, project-scoped ``POST /v3/auth/tokens``."""
        return {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": ident.username,
                            "domain": {"name": ident.domain},
                            "password": ident.password if password is None else password,
                        }
                    },
                },
                "scope": {"project": {"name": ident.project, "domain": {"name": ident.domain}}},
            }
        }

    def login(self, ident: Identity, record_as: str | None = None) -> None:
        """Issue a token for ``ident``; take its compute and image endpoints from the catalog."""
        url = f"{self.auth_url}/auth/tokens"
        body = self.token_request(ident)
        resp = self.http.post(url, json=body, timeout=self.timeout)
        if resp.status_code != 201:
            raise SystemExit(f"token for {ident.who}: HTTP {resp.status_code} {resp.text[:200]}")
        ident.token = resp.headers["X-Subject-Token"]
        self.tokens.append(ident.token)
        catalog = resp.json()["token"]["catalog"]
        ident.compute_url = endpoint(catalog, "compute", self.region)
        ident.image_url = endpoint(catalog, "image", self.region)
        if record_as:
            self.record(record_as, resp, None, ident.who, "password auth, project-scoped", body)

    def identity_get(self, ident: Identity, path: str, params: dict[str, str]) -> requests.Response:
        """GET on Keystone with ``ident``'s token."""
        return self.http.get(
            f"{self.auth_url}{path}",
            params=params,
            headers={"X-Auth-Token": ident.token},
            timeout=self.timeout,
        )

    # -- Nova --------------------------------------------------------------------------------
    def nova(
        self,
        ident: Identity,
        method: str,
        path: str,
        params: list[tuple[str, str]] | None = None,
        body: Any = None,
        mv: str | None = MV,
        token: str | None = None,
    ) -> requests.Response:
        """One compute call; ``path`` is relative to the catalog endpoint or a full URL."""
        headers = {"X-Auth-Token": ident.token if token is None else token}
        if mv:
            headers["OpenStack-API-Version"] = f"compute {mv}"
            headers["X-OpenStack-Nova-API-Version"] = mv
        headers["X-OpenStack-Request-ID"] = f"req-{uuid.uuid4()}"
        url = path if "://" in path else ident.compute_url.rstrip("/") + path
        return self.http.request(
            method, url, params=params, json=body, headers=headers, timeout=self.timeout
        )

    def ok(self, resp: requests.Response, what: str) -> Any:
        """The JSON body of a 2xx response; stop the run on anything else."""
        if resp.status_code >= 300:
            raise SystemExit(f"{what}: HTTP {resp.status_code} {resp.text[:300]}")
        return resp.json() if resp.content else None

    def pages(
        self, ident: Identity, path: str, params: list[tuple[str, str]], links_key: str
    ) -> Iterator[requests.Response]:
        """Every page of a collection, following the ``next`` link exactly as Nova gave it."""
        resp = self.nova(ident, "GET", path, params)
        for _ in range(1000):
            yield resp
            body = self.ok(resp, path)
            nxt = [x["href"] for x in body.get(links_key, []) if x.get("rel") == "next"]
            if not nxt:
                return
            resp = self.nova(ident, "GET", nxt[0])
        raise SystemExit(f"{path}: more than 1000 pages")

    def wait_for(self, what: str, check: Callable[[], bool]) -> None:
        """Poll ``check`` until it is true, at most WAIT_SECONDS."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(POLL_SECONDS)
        raise SystemExit(f"timed out waiting for {what}")

    def server(self, ident: Identity, server_id: str) -> dict[str, Any] | None:
        resp = self.nova(ident, "GET", f"/servers/{server_id}")
        if resp.status_code == 404:
            return None
        return self.ok(resp, f"show {server_id}")["server"]

    def wait_status(self, ident: Identity, server_id: str, status: str) -> None:
        def reached() -> bool:
            server = self.server(ident, server_id)
            if server is not None and server["status"] == "ERROR" and status != "ERROR":
                raise SystemExit(f"server {server_id} went to ERROR: {server.get('fault')}")
            return (
                server is not None
                and server["status"] == status
                and not server.get("OS-EXT-STS:task_state")
            )

        self.wait_for(f"{server_id} {status}", reached)

    # -- files -------------------------------------------------------------------------------
    def record(
        self,
        name: str,
        resp: requests.Response,
        mv: str | None,
        who: str,
        note: str,
        request_body: Any = None,
    ) -> None:
        """Write one exchange as ``{name}.json``."""
        sent = resp.request
        req_headers = {
            k: v
            for k, v in sent.headers.items()
            if k.lower() in ("openstack-api-version", "x-openstack-nova-api-version")
        }
        if "X-Auth-Token" in sent.headers:
            req_headers["X-Auth-Token"] = REDACTED
        headers = [
            [k, REDACTED if k.lower() == "x-subject-token" else v]
            for k, v in resp.raw.headers.items()
        ]
        try:
            body: Any = resp.json()
        except ValueError:
            body = resp.text
        doc = {
            "name": name,
            "note": note,
            "microversion": mv,
            "request": {
                "method": sent.method,
                "url": sent.url,
                "as": who,
                "headers": req_headers,
                "body": mask_passwords(request_body),
            },
            "response": {"status": resp.status_code, "headers": headers, "body": body},
        }
        path = self.out / f"{name}.json"
        path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        self.written.append(path)
        print(f"  {resp.status_code} {name}", file=sys.stderr)

    def check_no_secrets(self, passwords: list[str]) -> None:
        """Fail if any written file contains an issued token (or a long enough password)."""
        secrets = [t for t in self.tokens if t] + [p for p in passwords if len(p) >= 8]
        for path in self.written:
            text = path.read_text(encoding="utf-8")
            if any(secret in text for secret in secrets):
                path.unlink()
                raise SystemExit(f"{path.name} contained a secret: deleted it, fix the recorder")


def endpoint(catalog: list[dict[str, Any]], service_type: str, region: str) -> str:
    """The public URL of ``service_type`` in ``region`` from a token's catalog."""
    for service in catalog:
        if service.get("type") != service_type:
            continue
        for ep in service.get("endpoints", []):
            if ep.get("interface") == "public" and region in (
                ep.get("region_id"),
                ep.get("region"),
            ):
                return str(ep["url"])
    raise SystemExit(f"no public {service_type} endpoint for region {region} in the catalog")


def mask_passwords(value: Any) -> Any:
    """Copy ``value`` with every ``password`` value replaced by ``***``."""
    if isinstance(value, dict):
        return {
            k: ("***" if k == "password" and isinstance(v, str) else mask_passwords(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask_passwords(v) for v in value]
    return value


def utc_floor(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def wait_next_second(rec: Recorder) -> datetime:
    """Wait until the wall clock has entered a new second, and return that second.

    Nova stores ``updated_at`` in whole seconds and compares ``>=``, so a window that starts
    on a fresh second excludes everything that happened before it.
    """
    start = datetime.now(UTC).replace(microsecond=0)
    rec.wait_for("the next second", lambda: datetime.now(UTC).replace(microsecond=0) > start)
    return datetime.now(UTC).replace(microsecond=0)


# -- the scenario ------------------------------------------------------------------------------
def boot(rec: Recorder, ident: Identity, names: list[str], image: str, flavor: str) -> list[str]:
    """Create servers (no network) and wait until each is ACTIVE."""
    ids = []
    for name in names:
        body = {
            "server": {"name": name, "imageRef": image, "flavorRef": flavor, "networks": "none"}
        }
        ids.append(rec.ok(rec.nova(ident, "POST", "/servers", body=body), "boot")["server"]["id"])
    for server_id in ids:
        rec.wait_status(ident, server_id, "ACTIVE")
    return ids


def lookup_image_and_flavor(
    rec: Recorder, admin: Identity, image_name: str, flavor_name: str
) -> tuple[str, str]:
    images = rec.http.get(
        admin.image_url.rstrip("/") + "/v2/images",
        params={"name": image_name},
        headers={"X-Auth-Token": admin.token},
        timeout=rec.timeout,
    )
    found = rec.ok(images, "image lookup").get("images", [])
    if not found:
        raise SystemExit(f"no image named {image_name}")
    flavors = rec.ok(rec.nova(admin, "GET", "/flavors"), "flavors")["flavors"]
    flavor = next((f["id"] for f in flavors if f["name"] == flavor_name), None)
    if flavor is None:
        raise SystemExit(f"no flavor named {flavor_name}")
    return found[0]["id"], flavor


def record_paging(rec: Recorder, admin: Identity, t0: datetime, ours: int) -> None:
    """Server lists: full list in pages of 2, changes-since in pages of 2, full-then-empty."""
    base = [("all_tenants", "1"), ("limit", "2")]
    for n, resp in enumerate(rec.pages(admin, "/servers/detail", base, "servers_links"), 1):
        rec.record(
            f"servers_detail_limit2_page{n}",
            resp,
            MV,
            "admin",
            "all_tenants=1&limit=2, pages followed through servers_links",
        )
    since = [("all_tenants", "1"), ("changes-since", utc_floor(t0)), ("limit", "2")]
    for n, resp in enumerate(rec.pages(admin, "/servers/detail", since, "servers_links"), 1):
        rec.record(
            f"servers_detail_changes_since_limit2_page{n}",
            resp,
            MV,
            "admin",
            "changes-since before the servers were created; next links keep it",
        )
    exact = [("all_tenants", "1"), ("changes-since", utc_floor(t0)), ("limit", str(ours))]
    for n, resp in enumerate(rec.pages(admin, "/servers/detail", exact, "servers_links"), 1):
        rec.record(
            f"servers_detail_full_page_then_empty_page{n}",
            resp,
            MV,
            "admin",
            f"limit equal to the {ours} matching servers: a full page still gets a "
            "next link, and the page after it is empty",
        )


def record_states(
    rec: Recorder, admin: Identity, stop_id: str, error_id: str, delete_id: str
) -> None:
    """SHUTOFF, ERROR after reset-state, and a deleted server seen through changes-since."""
    rec.ok(rec.nova(admin, "POST", f"/servers/{stop_id}/action", body={"os-stop": None}), "stop")
    rec.wait_status(admin, stop_id, "SHUTOFF")
    rec.record(
        "server_show_shutoff",
        rec.nova(admin, "GET", f"/servers/{stop_id}"),
        MV,
        "admin",
        "after os-stop (fake driver)",
    )
    reset = {"os-resetState": {"state": "error"}}
    rec.ok(rec.nova(admin, "POST", f"/servers/{error_id}/action", body=reset), "reset")
    rec.wait_status(admin, error_id, "ERROR")
    rec.record(
        "server_show_reset_error",
        rec.nova(admin, "GET", f"/servers/{error_id}"),
        MV,
        "admin",
        "after admin os-resetState {state: error}: no fault",
    )
    t1 = wait_next_second(rec)
    rec.ok(rec.nova(admin, "DELETE", f"/servers/{delete_id}"), "delete")
    rec.wait_for("delete", lambda: rec.server(admin, delete_id) is None)
    params = [("all_tenants", "1"), ("changes-since", utc_floor(t1)), ("limit", "1000")]
    rec.record(
        "servers_detail_changes_since_deleted",
        rec.nova(admin, "GET", "/servers/detail", params),
        MV,
        "admin",
        "changes-since taken just before a DELETE: the deleted server comes back with "
        "status DELETED",
    )
    rec.record(
        "servers_detail_changes_since_deleted_v2.1",
        rec.nova(admin, "GET", "/servers/detail", params, mv=None),
        None,
        "admin",
        "the same without a microversion header (2.1)",
    )


def record_hosts(rec: Recorder, admin: Identity, server_id: str) -> None:
    """os-services (normal, forced down, disabled), hypervisors, host_status of a server."""
    rec.record("os_services", rec.nova(admin, "GET", "/os-services"), MV, "admin", "all")
    compute = [("binary", "nova-compute")]
    services = rec.ok(rec.nova(admin, "GET", "/os-services", compute), "services")["services"]
    host = rec.server(admin, server_id)["OS-EXT-SRV-ATTR:host"]  # type: ignore[index]
    service = next(s for s in services if s["host"] == host)
    rec.record(
        "os_services_nova_compute",
        rec.nova(admin, "GET", "/os-services", compute),
        MV,
        "admin",
        "?binary=nova-compute",
    )
    sid = f"/os-services/{service['id']}"
    try:
        rec.record(
            "os_services_force_down_put",
            rec.nova(admin, "PUT", sid, body={"forced_down": True}),
            MV,
            "admin",
            "PUT forced_down true (2.53+ by service UUID)",
        )
        rec.record(
            "os_services_forced_down",
            rec.nova(admin, "GET", "/os-services", compute),
            MV,
            "admin",
            f"{host} forced down",
        )
        rec.record(
            "server_show_host_forced_down",
            rec.nova(admin, "GET", f"/servers/{server_id}"),
            MV,
            "admin",
            "host_status while its compute service is forced down",
        )
        rec.record(
            "os_hypervisors_forced_down",
            rec.nova(admin, "GET", "/os-hypervisors"),
            MV,
            "admin",
            "hypervisor state while its service is forced down",
        )
    finally:
        rec.ok(rec.nova(admin, "PUT", sid, body={"forced_down": False}), "force up")
    disable = {"status": "disabled", "disabled_reason": "recorder maintenance"}
    try:
        rec.ok(rec.nova(admin, "PUT", sid, body=disable), "disable")
        rec.record(
            "os_services_disabled",
            rec.nova(admin, "GET", "/os-services", compute),
            MV,
            "admin",
            f"{host} disabled with a reason",
        )
        rec.record(
            "server_show_host_disabled",
            rec.nova(admin, "GET", f"/servers/{server_id}"),
            MV,
            "admin",
            "host_status while its compute service is disabled",
        )
    finally:
        rec.ok(rec.nova(admin, "PUT", sid, body={"status": "enabled"}), "enable")
    for n, resp in enumerate(
        rec.pages(admin, "/os-hypervisors", [("limit", "1000")], "hypervisors_links"), 1
    ):
        rec.record(f"os_hypervisors_page{n}", resp, MV, "admin", "?limit=1000")
    rec.record(
        "os_hypervisors_detail",
        rec.nova(admin, "GET", "/os-hypervisors/detail"),
        MV,
        "admin",
        "detail at 2.79 (still has vcpus/memory/disk)",
    )
    rec.record(
        "os_hypervisors_detail_v2.88",
        rec.nova(admin, "GET", "/os-hypervisors/detail", mv="2.88"),
        "2.88",
        "admin",
        "detail at 2.88: resource fields dropped",
    )
    rec.record(
        "server_diagnostics",
        rec.nova(admin, "GET", f"/servers/{server_id}/diagnostics"),
        MV,
        "admin",
        "standard diagnostics format (2.48+), fake driver",
    )


def record_errors(rec: Recorder, admin: Identity, demo: Identity) -> None:
    """The error bodies a poller must classify."""
    listing = [("all_tenants", "1"), ("limit", "1000")]
    rec.record(
        "error_401_bad_token",
        rec.nova(admin, "GET", "/servers/detail", listing, token="not-a-valid-token"),
        MV,
        "admin",
        "X-Auth-Token that Keystone does not know",
    )
    rec.record(
        "error_403_all_tenants_as_demo",
        rec.nova(demo, "GET", "/servers/detail", listing),
        MV,
        "demo",
        "all_tenants=1 as a member (non-admin)",
    )
    rec.record(
        "error_403_os_services_as_demo",
        rec.nova(demo, "GET", "/os-services"),
        MV,
        "demo",
        "os-services as a member",
    )
    unknown = str(uuid.uuid4())
    rec.record(
        "error_404_unknown_server",
        rec.nova(admin, "GET", f"/servers/{unknown}"),
        MV,
        "admin",
        "GET of a server id that does not exist",
    )
    rec.record(
        "error_404_unknown_server_diagnostics",
        rec.nova(admin, "GET", f"/servers/{unknown}/diagnostics"),
        MV,
        "admin",
        "diagnostics of a server id that does not exist",
    )
    bad_since = [("all_tenants", "1"), ("changes-since", "yesterday")]
    rec.record(
        "error_400_bad_changes_since",
        rec.nova(admin, "GET", "/servers/detail", bad_since),
        MV,
        "admin",
        "changes-since that is not an ISO 8601 time",
    )
    marker = [("all_tenants", "1"), ("limit", "2"), ("marker", unknown)]
    rec.record(
        "error_400_unknown_marker",
        rec.nova(admin, "GET", "/servers/detail", marker),
        MV,
        "admin",
        "marker that is no server id",
    )
    rec.record(
        "error_400_unknown_query_param",
        rec.nova(admin, "GET", "/servers/detail", [("all_tenants", "1"), ("foo", "x")]),
        MV,
        "admin",
        "unknown query parameter at 2.79 (400 from 2.75)",
    )
    rec.record(
        "error_406_unsupported_microversion",
        rec.nova(admin, "GET", "/servers/detail", listing, mv="2.999"),
        "2.999",
        "admin",
        "a microversion above the server's maximum",
    )


def run(args: argparse.Namespace) -> None:
    rec = Recorder(args.auth_url, args.region, Path(args.out))
    rec.out.mkdir(parents=True, exist_ok=True)
    admin = Identity("admin", args.username, args.password, args.project)
    demo = Identity("demo", args.demo_username, args.demo_password, args.demo_project)
    rec.login(admin, record_as="keystone_token_issue")
    rec.login(demo)
    bad = rec.http.post(
        f"{rec.auth_url}/auth/tokens",
        json=rec.token_request(admin, password="wrong-password"),
        timeout=rec.timeout,
    )
    rec.record(
        "keystone_token_issue_bad_password",
        bad,
        None,
        "admin",
        "wrong password",
        rec.token_request(admin, password="wrong-password"),
    )
    rec.record(
        "keystone_projects_by_name",
        rec.identity_get(admin, "/projects", {"name": args.demo_project, "domain_id": "default"}),
        None,
        "admin",
        "GET /v3/projects?name=..&domain_id=default",
    )
    rec.record(
        "keystone_projects_as_demo",
        rec.identity_get(demo, "/projects", {"name": args.demo_project}),
        None,
        "demo",
        "listing projects as a member",
    )
    rec.record(
        "keystone_auth_projects_as_demo",
        rec.identity_get(demo, "/auth/projects", {}),
        None,
        "demo",
        "the projects the member has roles on",
    )
    rec.record(
        "compute_version_root",
        rec.nova(admin, "GET", "/"),
        MV,
        "admin",
        "GET /v2.1/: min_version and version (the maximum microversion)",
    )

    image, flavor = lookup_image_and_flavor(rec, admin, args.image, args.flavor)
    t0 = wait_next_second(rec) - timedelta(seconds=1)
    tag = uuid.uuid4().hex[:6]
    created = boot(rec, admin, [f"rec-{tag}-admin-{i}" for i in range(1, 4)], image, flavor)
    demo_ids = boot(rec, demo, [f"rec-{tag}-demo-{i}" for i in range(1, 3)], image, flavor)
    created += demo_ids
    try:
        record_paging(rec, admin, t0, len(created))
        rec.record(
            "servers_detail_as_demo_project",
            rec.nova(demo, "GET", "/servers/detail"),
            MV,
            "demo",
            "a member listing its own project: no host, no host_status",
        )
        rec.record(
            "server_show",
            rec.nova(admin, "GET", f"/servers/{created[0]}"),
            MV,
            "admin",
            "an ACTIVE server",
        )
        record_states(rec, admin, created[1], created[2], demo_ids[1])
        t2 = wait_next_second(rec)
        record_hosts(rec, admin, created[0])
        quiet = [("all_tenants", "1"), ("changes-since", utc_floor(t2)), ("limit", "1000")]
        rec.record(
            "servers_detail_changes_since_after_host_changes",
            rec.nova(admin, "GET", "/servers/detail", quiet),
            MV,
            "admin",
            "changes-since taken before forcing the host down, disabling it and restoring it: "
            "host changes do not touch a server's updated, so the list is empty",
        )
        rec.record(
            "server_show_stopped_host_ok",
            rec.nova(admin, "GET", f"/servers/{created[1]}"),
            MV,
            "admin",
            "the SHUTOFF server again, host restored",
        )
        record_errors(rec, admin, demo)
    finally:
        if not args.keep:
            for server_id in created:
                rec.nova(admin, "DELETE", f"/servers/{server_id}")
    rec.check_no_secrets([args.password, args.demo_password])
    print(f"wrote {len(rec.written)} files to {rec.out}", file=sys.stderr)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auth-url", default=env("OS_AUTH_URL", "http://127.0.0.1:5000/v3"))
    parser.add_argument("--region", default=env("OS_REGION_NAME", "RegionOne"))
    parser.add_argument("--username", default=env("OS_USERNAME", "admin"))
    parser.add_argument("--password", default=env("OS_PASSWORD", "admin"))
    parser.add_argument("--project", default=env("OS_PROJECT_NAME", "admin"))
    parser.add_argument("--demo-username", default=env("OS_DEMO_USERNAME", "demo"))
    parser.add_argument("--demo-password", default=env("OS_DEMO_PASSWORD", "demo"))
    parser.add_argument("--demo-project", default=env("OS_DEMO_PROJECT_NAME", "demo"))
    parser.add_argument("--image", default="fake-image")
    parser.add_argument("--flavor", default="m1.tiny")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--keep", action="store_true", help="do not delete the servers made")
    args = parser.parse_args(argv)
    if urlsplit(args.auth_url).scheme not in ("http", "https"):
        parser.error("--auth-url must be an http(s) URL")
    return args


if __name__ == "__main__":
    run(parse_args())
