"""A small driver for a real OpenStack, for the opt-in integration tests.

It does to the cloud what an operator would (boot, reset-state, stop/start, delete, force a
compute service down), through keystoneauth1 and only standard Nova, Glance and Keystone APIs,
so that it works on any lab cloud where the user has the admin role. Settings come from the
usual ``OS_*`` variables (an ``openrc`` file). It is test tooling: it is not used by the agent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

# 2.37 for networks "none", 2.53 for service UUIDs and forced_down through PUT; 2.79 is the
# version the agent itself sends, so both see the same representation.
MICROVERSION = "2.79"
IMAGE_NAME = "fake-image"
ENABLE_VAR = "VESAGENT_ITEST"
_WAIT_STEP = 0.1


class CloudError(AssertionError):
    """An API call to the real cloud failed (an AssertionError, so pytest shows it plainly)."""


@dataclass(frozen=True)
class CloudSettings:
    """Where the real cloud is and who we are there (from ``OS_*``); no secret in ``repr``."""

    auth_url: str
    username: str
    password: str = field(repr=False)
    project_name: str
    user_domain: str = "Default"
    project_domain: str = "Default"
    region: str | None = None
    verify: bool | str = True

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CloudSettings:
        """Settings from an ``openrc``-style environment; ``OS_AUTH_URL`` must be set."""
        insecure = env.get("OS_INSECURE", "").lower() in ("1", "true", "yes")
        verify: bool | str = env.get("OS_CACERT") or not insecure
        return cls(
            auth_url=env["OS_AUTH_URL"],
            username=env.get("OS_USERNAME", "admin"),
            password=env.get("OS_PASSWORD", ""),
            project_name=env.get("OS_PROJECT_NAME") or env.get("OS_TENANT_NAME") or "admin",
            user_domain=env.get("OS_USER_DOMAIN_NAME") or "Default",
            project_domain=env.get("OS_PROJECT_DOMAIN_NAME") or "Default",
            region=env.get("OS_REGION_NAME") or None,
            verify=verify,
        )


def skip_reason(env: Mapping[str, str]) -> str | None:
    """Why the integration tests must not run in this environment, or None when they may."""
    if env.get(ENABLE_VAR) != "1":
        return f"tests against a real OpenStack: set {ENABLE_VAR}=1 (make itest-openstack)"
    if not env.get("OS_AUTH_URL"):
        return "integration tests need a real OpenStack: source an openrc (OS_AUTH_URL unset)"
    return None


def enabled() -> bool:
    """True when ``skip_reason`` finds nothing against running (read from ``os.environ``)."""
    return skip_reason(os.environ) is None


class RealCloud:
    """Admin operations on one region of a real cloud; every call checks its HTTP status."""

    def __init__(self, settings: CloudSettings, *, timeout: float = 30.0) -> None:
        self.settings = settings
        auth = v3.Password(
            auth_url=settings.auth_url,
            username=settings.username,
            password=settings.password,
            user_domain_name=settings.user_domain,
            project_name=settings.project_name,
            project_domain_name=settings.project_domain,
        )
        self._session = ks_session.Session(auth=auth, verify=settings.verify, timeout=timeout)
        common = {"region_name": settings.region, "interface": "public"}
        self._nova = ks_adapter.Adapter(
            self._session, service_type="compute", default_microversion=MICROVERSION, **common
        )
        self._glance = ks_adapter.Adapter(self._session, service_type="image", **common)
        self._image: str | None = None
        self._flavor: str | None = None

    def close(self) -> None:
        """Close pooled connections."""
        self._session.session.close()

    # -- plumbing ----------------------------------------------------------------------------
    def _call(
        self,
        api: ks_adapter.Adapter,
        method: str,
        path: str,
        body: Any = None,
        ok: tuple[int, ...] = (200, 201, 202, 204),
    ) -> tuple[int, Any]:
        resp = api.request(path, method, json=body, raise_exc=False)
        if resp.status_code not in ok:
            raise CloudError(f"{method} {path}: HTTP {resp.status_code}: {resp.text[:300]}")
        try:
            return resp.status_code, resp.json()
        except ValueError:
            return resp.status_code, None

    def nova(
        self, method: str, path: str, body: Any = None, ok: tuple[int, ...] | None = None
    ) -> Any:
        """One Nova call at ``MICROVERSION``; the decoded body (None when empty).

        ``ok`` defaults to 200 for GET and to any 2xx Nova uses for the other methods.
        """
        if ok is None:
            ok = (200,) if method == "GET" else (200, 201, 202, 204)
        return self._call(self._nova, method, path, body, ok)[1]

    @property
    def project_id(self) -> str:
        """The id of the project our token is scoped to."""
        return str(self._session.get_project_id())

    # -- what to boot ------------------------------------------------------------------------
    def image_id(self) -> str:
        """The image called ``fake-image`` if there is one, else the first active image."""
        if self._image is None:
            _, body = self._call(self._glance, "GET", f"/v2/images?name={IMAGE_NAME}")
            images = body.get("images") or []
            if not images:
                _, body = self._call(self._glance, "GET", "/v2/images?status=active&limit=1")
                images = body.get("images") or []
            if not images:
                raise CloudError("the cloud has no image to boot from")
            self._image = str(images[0]["id"])
        return self._image

    def flavor_id(self) -> str:
        """The smallest public flavor (by vCPUs, RAM, disk)."""
        if self._flavor is None:
            flavors = self.nova("GET", "/flavors/detail")["flavors"]
            if not flavors:
                raise CloudError("the cloud has no flavor")
            smallest = min(flavors, key=lambda f: (f["vcpus"], f["ram"], f["disk"], f["id"]))
            self._flavor = str(smallest["id"])
        return self._flavor

    # -- servers -----------------------------------------------------------------------------
    def create_server(self, name: str) -> str:
        """Boot a server without ports (``networks: none``); returns its id (still BUILD)."""
        body = {
            "server": {
                "name": name,
                "imageRef": self.image_id(),
                "flavorRef": self.flavor_id(),
                "networks": "none",
            }
        }
        return str(self.nova("POST", "/servers", body)["server"]["id"])

    def show(self, server_id: str) -> dict[str, Any] | None:
        """The server as an admin sees it, or None when Nova answers 404."""
        found = self.nova("GET", f"/servers/{server_id}", ok=(200, 404))
        return found.get("server") if found else None

    def servers_named(self, prefix: str) -> list[dict[str, Any]]:
        """Every live server of every project whose name starts with ``prefix``."""
        query = f"/servers/detail?all_tenants=1&name=^{prefix}"
        return [s for s in self.nova("GET", query)["servers"] if s["name"].startswith(prefix)]

    def wait_for(
        self,
        server_id: str,
        done: Callable[[dict[str, Any] | None], bool],
        what: str,
        timeout: float = 60.0,
        *,
        error_is_final: bool = True,
    ) -> tuple[dict[str, Any] | None, float]:
        """Poll the server every 0.1 s until ``done(server)``; returns it and the wall time.

        ``server`` is None once Nova answers 404. The time is when the state was first seen.
        With ``error_is_final``, a server that goes to ERROR fails at once (a boot that failed
        will not become ACTIVE) instead of waiting for the timeout.
        """
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            last = self.show(server_id)
            seen = time.time()
            if done(last):
                return last, seen
            if error_is_final and last is not None and last.get("status") == "ERROR":
                raise CloudError(f"server {server_id} went to ERROR waiting for {what}: {last}")
            time.sleep(_WAIT_STEP)
        state = None if last is None else (last.get("status"), last.get("OS-EXT-STS:task_state"))
        raise CloudError(f"server {server_id}: no {what} within {timeout}s (last {state})")

    def wait_status(self, server_id: str, status: str, timeout: float = 60.0) -> float:
        """Wait until the server shows ``status`` with no task running; the wall time seen."""

        def done(server: dict[str, Any] | None) -> bool:
            return (
                server is not None
                and server["status"] == status
                and not server.get("OS-EXT-STS:task_state")
            )

        return self.wait_for(server_id, done, status, timeout)[1]

    def reset_state(self, server_id: str, state: str) -> float:
        """Admin ``os-resetState`` to ``error`` or ``active``; the wall time it took effect."""
        self.nova("POST", f"/servers/{server_id}/action", {"os-resetState": {"state": state}})
        # resetState writes the database before answering: the change is visible now.
        return time.time()

    def stop(self, server_id: str) -> tuple[float, float]:
        """``os-stop`` and wait for SHUTOFF; (time of the call, time SHUTOFF was first seen)."""
        called = time.time()
        self.nova("POST", f"/servers/{server_id}/action", {"os-stop": None})
        return called, self.wait_status(server_id, "SHUTOFF")

    def start(self, server_id: str) -> tuple[float, float]:
        """``os-start`` and wait for ACTIVE; (time of the call, time ACTIVE was first seen)."""
        called = time.time()
        self.nova("POST", f"/servers/{server_id}/action", {"os-start": None})
        return called, self.wait_status(server_id, "ACTIVE")

    def delete(self, server_id: str, timeout: float = 60.0) -> tuple[float, float]:
        """DELETE and wait until it is gone; (time of the call, time it was first seen gone).

        Gone means 404, or ``DELETED`` which Nova may answer once before the 404.
        """
        called = time.time()
        self.nova("DELETE", f"/servers/{server_id}", ok=(204, 404))

        def done(server: dict[str, Any] | None) -> bool:
            return server is None or server.get("status") == "DELETED"

        seen = self.wait_for(server_id, done, "deletion", timeout, error_is_final=False)[1]
        return called, seen

    # -- compute services --------------------------------------------------------------------
    def compute_services(self) -> list[dict[str, Any]]:
        """``GET /os-services?binary=nova-compute`` (admin)."""
        return list(self.nova("GET", "/os-services?binary=nova-compute")["services"])

    def force_down(self, service_id: str, forced: bool) -> dict[str, Any]:
        """``PUT /os-services/{id}`` with ``forced_down`` (2.53+, by service UUID)."""
        body = self.nova("PUT", f"/os-services/{service_id}", {"forced_down": forced})
        return dict(body["service"])
