"""OpenStack simulator: Keystone v3 and the Nova v2.1 API of several regions on one port.

Paths are devstack-style: Keystone at ``{url}/identity/v3`` (version discovery at
``{url}/identity``), Nova of region R at ``{url}/compute/R/v2.1``; the token catalog lists
``compute`` endpoints (public/internal/admin) per region, so keystoneauth1's ``v3.Password``
(or the generic ``identity.Password``) plus a ``Session`` work unchanged.

Python handle (thread-safe)::

    with OpenStackSim(regions=("RegionOne", "RegionTwo")) as sim:
        ids = sim.create_servers("RegionOne", 3, project="demo")
        sim.set_status("RegionOne", ids[0], "ERROR", fault={"code": 500, "message": "boom"})
        sim.set_service("RegionOne", "compute-1", up=False)   # host_status UNKNOWN

HTTP control for people driving ``vesagent sim`` with curl (JSON bodies)::

    GET    /_sim/openstack                                  summary and counts
    POST   /_sim/openstack/regions/R/servers                {"count", "project", "prefix",
                                                             "status", "host", "flavor"}
    GET    /_sim/openstack/regions/R/servers                live server ids
    GET    /_sim/openstack/regions/R/servers/ID             the server (admin view)
    POST   /_sim/openstack/regions/R/servers/ID/status      {"status", "fault"}
    DELETE /_sim/openstack/regions/R/servers/ID
    POST   /_sim/openstack/regions/R/archive                forget deleted servers
    POST   /_sim/openstack/regions/R/services/HOST          {"up", "enabled", "forced_down",
                                                             "reason"}
    POST   /_sim/openstack/regions/R/cell                   {"down": true}
    POST   /_sim/openstack/projects                         {"name", "id"}
    POST   /_sim/openstack/users                            {"name", "password", "roles",
                                                             "domain"}
    POST   /_sim/openstack/tokens/expire
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

from flask import Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Response as WerkzeugResponse

from vesagent.sim.base import FaultRule, SimServer
from vesagent.sim.keystone import (
    CatalogSpec,
    IdentityError,
    IdentityStore,
    KeystoneApi,
    Token,
    json_response,
)
from vesagent.sim.nova import (
    FLAVORS,
    MAX_MICROVERSION,
    STATUS_STATES,
    CallContext,
    ComputeRegion,
    Fault,
    NovaApi,
    NovaServerView,
    nova_fault_body,
)

_REGION_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
Clock = Callable[[], float]


class _SimControlError(Exception):
    """A bad ``/_sim/openstack`` request (400/404 with a plain message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _handler_with_clock(clock: Clock, send_date: bool) -> type[WSGIRequestHandler]:
    """A request handler like Nova's uwsgi: no ``Server`` header, ``Date`` only on request.

    Real Nova and Keystone served by uwsgi with nothing in front send neither header (see
    tests/fixtures/openstack/recorded); behind HAProxy or Apache a ``Date`` appears, and then
    it follows the simulator's ``clock`` (clients read server time from it).
    """

    class ClockedHandler(WSGIRequestHandler):
        """Werkzeug's handler without its ``Server``/``Date`` unless asked."""

        def send_response(self, code: int, message: str | None = None) -> None:
            self.log_request(code)
            self.send_response_only(code, message)
            if send_date:
                self.send_header("Date", self.date_time_string())

        def date_time_string(self, timestamp: float | None = None) -> str:
            """RFC 7231 date of ``timestamp`` or of the simulator's now."""
            return formatdate(clock() if timestamp is None else timestamp, usegmt=True)

    return ClockedHandler


class OpenStackSim(SimServer):
    """Keystone + Nova of ``regions`` on 127.0.0.1, with knobs for tests and curl.

    Defaults: projects ``admin`` and ``demo``; user ``admin``/``admin`` (role admin on both),
    user ``demo``/``demo`` (member on demo); compute hosts ``compute-1`` and ``compute-2`` in
    every region (more are created on demand).
    """

    name = "openstack"

    def __init__(
        self,
        regions: tuple[str, ...] | list[str] = ("RegionOne",),
        host: str = "127.0.0.1",
        port: int = 0,
        token_lifetime: float = 3600.0,
        max_limit: int = 1000,
        clock: Clock = time.time,
        send_date: bool = False,
    ) -> None:
        super().__init__(host, port)
        self.clock = clock
        self.identity = IdentityStore(clock, token_lifetime)
        self.regions: dict[str, ComputeRegion] = {}
        self._regions_lock = threading.Lock()
        for region in regions:
            self.add_region(region)
        self.add_project("admin")
        self.add_project("demo")
        self._admin_user_id = self.add_user(
            "admin", "admin", {"admin": ["admin"], "demo": ["admin"]}
        )
        self.add_user("demo", "demo", {"demo": ["member", "reader"]})
        self.keystone = KeystoneApi(self.identity, self._identity_url, self._catalog)
        self.keystone.register(self.app)
        self.nova = NovaApi(self.regions, self.identity, lambda: self.url, clock, max_limit)
        self.nova.register(self.app)
        # The Date header follows the sim's clock, as clients read server time from it.
        self.request_handler = _handler_with_clock(self.clock, send_date)
        self.app.after_request(self._keystone_request_id)
        self.app.register_error_handler(HTTPException, self._http_error)
        self.app.register_error_handler(_SimControlError, self._control_error)
        self._register_control()

    # -- URLs --------------------------------------------------------------------------------
    @property
    def keystone_url(self) -> str:
        """``{url}/identity/v3``: the ``auth_url`` for keystoneauth1's ``v3.Password``."""
        return f"{self.url}/identity/v3"

    @property
    def identity_url(self) -> str:
        """``{url}/identity``: the unversioned auth_url (version discovery)."""
        return self._identity_url()

    def compute_url(self, region: str) -> str:
        """The compute endpoint of ``region`` as the catalog lists it."""
        return f"{self.url}/compute/{self._region(region).name}/v2.1"

    def _identity_url(self) -> str:
        return f"{self.url}/identity"

    def _catalog(self) -> CatalogSpec:
        with self._regions_lock:
            names = list(self.regions)
        return CatalogSpec(self._identity_url(), {r: f"{self.url}/compute/{r}/v2.1" for r in names})

    # -- identity knobs ------------------------------------------------------------------
    def add_project(self, name: str, project_id: str | None = None) -> str:
        """Create a project (id: 32 hex unless given); returns its id."""
        return self.identity.add_project(name, project_id)

    def add_user(
        self,
        name: str,
        password: str,
        roles: dict[str, list[str]],
        domain: str = "Default",
    ) -> str:
        """Create or replace a user; ``roles`` maps project names to role names. Returns its id."""
        return self.identity.add_user(name, password, roles, domain)

    def project_id(self, name: str) -> str:
        """The id of a project in the Default domain; KeyError when unknown."""
        project = self.identity.find_project(name=name, domain_id="default")
        if project is None:
            raise KeyError(name)
        return project.id

    def expire_tokens(self) -> int:
        """Make every issued token expire now (clients then get 401 and must re-authenticate)."""
        return self.identity.expire_all()

    @property
    def auth_count(self) -> int:
        """Successful token issues (``POST /v3/auth/tokens`` answered 201)."""
        return self.identity.auth_count

    @property
    def token_lifetime(self) -> float:
        """Lifetime of newly issued tokens in seconds."""
        return self.identity.token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: float) -> None:
        """Change the lifetime of tokens issued from now on."""
        self.identity.token_lifetime = seconds

    # -- compute knobs -------------------------------------------------------------------
    def add_region(self, region: str) -> None:
        """Add a region with hosts ``compute-1`` and ``compute-2``; later tokens list it."""
        if not _REGION_NAME.match(region):
            raise ValueError(f"region name {region!r}: use letters, digits, '.', '_' or '-'")
        with self._regions_lock:
            if region in self.regions:
                return
            compute = ComputeRegion(region, self.clock)
            with compute.lock:
                compute.compute("compute-1")
                compute.compute("compute-2")
            self.regions[region] = compute

    def _region(self, region: str) -> ComputeRegion:
        try:
            return self.regions[region]
        except KeyError:
            raise KeyError(f"unknown region {region!r}") from None

    def create_servers(
        self,
        region: str,
        count: int,
        project: str = "admin",
        prefix: str = "vm",
        status: str = "ACTIVE",
        host: str = "compute-1",
        *,
        flavor: str = "m1.tiny",
    ) -> list[str]:
        """Boot ``count`` servers ``{prefix}-{n}`` in a project (by name); returns their ids."""
        status = status.upper()
        if status not in STATUS_STATES:
            raise ValueError(f"status {status!r} is not one set_status() can produce")
        if flavor not in FLAVORS:
            raise ValueError(f"flavor {flavor!r}: one of {sorted(FLAVORS)}")
        project_id = self.project_id(project)
        users = self.identity.user_ids_for_project(project_id)
        user_id = users[0] if users else self._admin_user_id
        compute = self._region(region)
        with compute.lock:
            return compute.create_servers(
                count, project_id, user_id, prefix, status, host, FLAVORS[flavor]
            )

    def set_status(
        self,
        region: str,
        server_id: str,
        status: str,
        fault: dict[str, Any] | None = None,
    ) -> None:
        """Move a server to ``status`` (vm_state/task_state/power_state follow; ``updated`` bumps).

        ``fault`` (``{"code", "message"[, "details"]}``) is recorded; like Nova's latest
        instance fault it shows only while the status is ERROR or DELETED.
        """
        status = status.upper()
        if status not in STATUS_STATES:
            raise ValueError(f"status {status!r}: one of {sorted(STATUS_STATES)}")
        vm_state, task_state, power_state = STATUS_STATES[status]
        self.set_state(region, server_id, vm_state, task_state, power_state, fault=fault)

    def set_state(
        self,
        region: str,
        server_id: str,
        vm_state: str,
        task_state: str | None = None,
        power_state: int | None = None,
        *,
        fault: dict[str, Any] | None = None,
    ) -> None:
        """Set the raw Nova states (e.g. ``power_state=6`` CRASHED while ACTIVE)."""
        compute = self._region(region)
        with compute.lock:
            recorded = None
            if fault is not None:
                recorded = Fault(
                    code=int(fault.get("code", 500)),
                    message=str(fault.get("message", "")),
                    created=int(fault.get("created", self.clock())),
                    details=fault.get("details"),
                )
            compute.set_state(server_id, vm_state, task_state, power_state, recorded)

    def set_cpu(self, region: str, server_id: str, percent: float | None) -> None:
        """Pin the CPU utilisation the server's diagnostics report (None: back to its own)."""
        compute = self._region(region)
        with compute.lock:
            compute.get(server_id).cpu_percent = percent

    def delete_server(self, region: str, server_id: str) -> None:
        """Delete: DELETED for ``changes-since``, absent from plain lists, 404 on GET."""
        compute = self._region(region)
        with compute.lock:
            compute.delete(server_id)

    def archive_deleted(self, region: str) -> int:
        """``nova-manage db archive_deleted_rows``: deleted servers vanish from changes-since."""
        compute = self._region(region)
        with compute.lock:
            return compute.archive_deleted()

    def server(self, region: str, server_id: str) -> dict[str, Any]:
        """The server as an admin sees it at the highest microversion (deleted ones too)."""
        compute = self._region(region)
        with compute.lock:
            server = compute.get(server_id)
            now = self.clock()
            # A throwaway admin identity for rendering; it is never stored or accepted.
            token = Token("", "", "", ("admin",), ("password",), now, now, "")
            ctx = CallContext(
                compute,
                MAX_MICROVERSION,
                token,
                f"{self.url}/compute/{region}/v2.1",
                f"{self.url}/compute/{region}",
                now,
            )
            return NovaServerView(ctx).detail(server, show=True)

    def server_ids(self, region: str) -> list[str]:
        """Ids of the servers not deleted, in creation order."""
        compute = self._region(region)
        with compute.lock:
            return compute.live_ids()

    def set_service(
        self,
        region: str,
        host: str,
        *,
        up: bool | None = None,
        enabled: bool | None = None,
        forced_down: bool | None = None,
        reason: str | None = None,
    ) -> None:
        """Change a compute host's service: ``up`` (heartbeat), ``enabled``, ``forced_down``.

        host_status of its servers follows: DOWN when forced down, MAINTENANCE when
        disabled, UNKNOWN when not up, UP otherwise. Unknown hosts are created.
        """
        compute = self._region(region)
        with compute.lock:
            compute.set_service(
                host, up=up, enabled=enabled, forced_down=forced_down, reason=reason
            )

    def set_cell_down(self, region: str, down: bool) -> None:
        """Make the region's cell unreachable (2.69+ partial records, else skipped)."""
        compute = self._region(region)
        with compute.lock:
            compute.cell_down = down

    # -- HTTP plumbing ---------------------------------------------------------------------
    def fault_response(self, rule: FaultRule) -> Response:
        """Injected errors carry the body shape of the API they hit."""
        if rule.body is not None or rule.status is None:
            return super().fault_response(rule)
        message = f"injected {rule.status}"
        if request.path.startswith("/identity"):
            return json_response(IdentityError(rule.status, message).body(), rule.status)
        if request.path.startswith("/compute"):
            return json_response(nova_fault_body(rule.status, message), rule.status)
        return super().fault_response(rule)

    def _keystone_request_id(self, response: Response) -> Response:
        if request.path.startswith("/identity"):
            response.headers["Vary"] = "X-Auth-Token"
            response.headers["x-openstack-request-id"] = f"req-{uuid.uuid4()}"
        return response

    def _http_error(self, exc: HTTPException) -> WerkzeugResponse:
        status = exc.code or 500
        path = request.path
        if path.startswith("/identity"):
            return json_response(IdentityError(status, exc.description or "").body(), status)
        if path.startswith("/compute"):
            message = "The resource could not be found." if status == 404 else exc.description
            return json_response(nova_fault_body(status, message or ""), status)
        return exc.get_response()

    def _control_error(self, exc: _SimControlError) -> Response:
        return json_response({"error": exc.message}, exc.status)

    # -- HTTP control --------------------------------------------------------------------
    def _register_control(self) -> None:
        add = self.app.add_url_rule
        base = "/_sim/openstack"
        reg = f"{base}/regions/<region>"
        add(base, "os_summary", self._c_summary)
        add(f"{reg}/servers", "os_create", self._c_create, methods=["POST"])
        add(f"{reg}/servers", "os_ids", self._c_ids)
        add(f"{reg}/servers/<sid>", "os_server", self._c_server)
        add(f"{reg}/servers/<sid>", "os_delete", self._c_delete, methods=["DELETE"])
        add(f"{reg}/servers/<sid>/status", "os_status", self._c_status, methods=["POST"])
        add(f"{reg}/archive", "os_archive", self._c_archive, methods=["POST"])
        add(f"{reg}/services/<host>", "os_service", self._c_service, methods=["POST"])
        add(f"{reg}/cell", "os_cell", self._c_cell, methods=["POST"])
        add(f"{base}/projects", "os_project", self._c_project, methods=["POST"])
        add(f"{base}/users", "os_user", self._c_user, methods=["POST"])
        add(f"{base}/tokens/expire", "os_expire", self._c_expire, methods=["POST"])

    @staticmethod
    def _body() -> dict[str, Any]:
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else {}

    def _guard(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except KeyError as exc:
            raise _SimControlError(404, str(exc.args[0] if exc.args else exc)) from None
        except (ValueError, TypeError) as exc:
            raise _SimControlError(400, str(exc)) from None

    def _c_summary(self) -> Response:
        summary = {
            "keystone_url": self.keystone_url,
            "auth_count": self.auth_count,
            "regions": {
                name: {"compute_url": self.compute_url(name), "servers": len(self.server_ids(name))}
                for name in list(self.regions)
            },
            "requests": self.requests.snapshot(),
        }
        return json_response(summary, 200)

    def _c_create(self, region: str) -> Response:
        spec = self._body()
        ids = self._guard(
            lambda: self.create_servers(
                region,
                int(spec.get("count", 1)),
                project=spec.get("project", "admin"),
                prefix=spec.get("prefix", "vm"),
                status=spec.get("status", "ACTIVE"),
                host=spec.get("host", "compute-1"),
                flavor=spec.get("flavor", "m1.tiny"),
            )
        )
        return json_response({"ids": ids}, 201)

    def _c_ids(self, region: str) -> Response:
        return json_response({"ids": self._guard(lambda: self.server_ids(region))}, 200)

    def _c_server(self, region: str, sid: str) -> Response:
        return json_response({"server": self._guard(lambda: self.server(region, sid))}, 200)

    def _c_delete(self, region: str, sid: str) -> Response:
        self._guard(lambda: self.delete_server(region, sid))
        return Response(status=204)

    def _c_status(self, region: str, sid: str) -> Response:
        spec = self._body()
        self._guard(
            lambda: self.set_status(region, sid, str(spec["status"]), fault=spec.get("fault"))
        )
        return json_response({"server": self.server(region, sid)}, 200)

    def _c_archive(self, region: str) -> Response:
        return json_response({"archived": self._guard(lambda: self.archive_deleted(region))}, 200)

    def _c_service(self, region: str, host: str) -> Response:
        spec = self._body()
        self._guard(
            lambda: self.set_service(
                region,
                host,
                up=spec.get("up"),
                enabled=spec.get("enabled"),
                forced_down=spec.get("forced_down"),
                reason=spec.get("reason"),
            )
        )
        return Response(status=204)

    def _c_cell(self, region: str) -> Response:
        down = bool(self._body().get("down", True))
        self._guard(lambda: self.set_cell_down(region, down))
        return json_response({"down": down}, 200)

    def _c_project(self) -> Response:
        spec = self._body()
        pid = self._guard(lambda: self.add_project(str(spec["name"]), spec.get("id")))
        return json_response({"id": pid}, 201)

    def _c_user(self) -> Response:
        spec = self._body()
        uid = self._guard(
            lambda: self.add_user(
                str(spec["name"]),
                str(spec["password"]),
                dict(spec.get("roles", {})),
                str(spec.get("domain", "Default")),
            )
        )
        return json_response({"id": uid}, 201)

    def _c_expire(self) -> Response:
        return json_response({"expired": self.expire_tokens()}, 200)
