"""The compute routes of the Nova simulator under ``/compute/<region>/v2.1`` (Flask)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, g, request

from vesagent.sim.keystone import UNAUTHORIZED_MESSAGE, IdentityStore, json_response
from vesagent.sim.nova.faults import NovaError, NovaUnauthorized, policy_error
from vesagent.sim.nova.microversions import (
    MAX_MICROVERSION,
    MIN_MICROVERSION,
    format_microversion,
    negotiate_microversion,
)
from vesagent.sim.nova.query import list_request, parse_bool, parse_limit
from vesagent.sim.nova.state import Clock, ComputeRegion, MarkerNotFound, Server, ServerQuery
from vesagent.sim.nova.views import (
    CallContext,
    NovaServerView,
    diagnostics_document,
    hypervisor_document,
    service_document,
)


class NovaApi:
    """The compute routes under ``/compute/<region>/v2.1`` of a Flask app."""

    def __init__(
        self,
        regions: dict[str, ComputeRegion],
        identity: IdentityStore,
        base_url: Callable[[], str],
        clock: Clock,
        max_limit: int = 1000,
    ) -> None:
        self.regions = regions
        self.identity = identity
        self._base_url = base_url
        self.clock = clock
        self.max_limit = max_limit

    def register(self, app: Flask) -> None:
        """Add the routes, error handlers and response headers."""
        add = app.add_url_rule
        base = "/compute/<region>"
        add(base, "nova_versions", self.versions, strict_slashes=False)
        add(f"{base}/v2.1", "nova_v21", self.version_v21, strict_slashes=False)
        add(f"{base}/v2.1/servers", "nova_index", self.index)
        add(f"{base}/v2.1/servers/detail", "nova_detail", self.detail)
        add(f"{base}/v2.1/servers/<server_id>", "nova_show", self.show)
        add(f"{base}/v2.1/servers/<server_id>/diagnostics", "nova_diag", self.diagnostics)
        add(f"{base}/v2.1/os-services", "nova_services", self.list_services)
        add(f"{base}/v2.1/os-hypervisors", "nova_hypervisors", self.hypervisors)
        add(f"{base}/v2.1/os-hypervisors/detail", "nova_hyp_detail", self.hypervisors_detail)
        add(f"{base}/v2.1/os-hypervisors/<hid>", "nova_hyp_show", self.hypervisor_show)
        app.register_error_handler(NovaError, self._render_error)
        app.register_error_handler(NovaUnauthorized, self._render_unauthorized)
        app.after_request(self._decorate)

    # -- plumbing ------------------------------------------------------------------------
    def _region(self, name: str) -> ComputeRegion:
        region = self.regions.get(name)
        if region is None:
            raise NovaError(404, "The resource could not be found.")
        return region

    def _context(self, region_name: str) -> CallContext:
        region = self._region(region_name)
        token = self.identity.validate(request.headers.get("X-Auth-Token"))
        if token is None or token.project_id is None:
            raise NovaUnauthorized()
        g.nova_mv = mv = negotiate_microversion(request.headers)
        bookmark = f"{self._base_url()}/compute/{region.name}"
        return CallContext(region, mv, token, f"{bookmark}/v2.1", bookmark, self.clock())

    def _render_error(self, exc: NovaError) -> Response:
        response = json_response(exc.body(), exc.status)
        # Nova's own faults (not keystonemiddleware's 401) name the charset.
        response.headers["Content-Type"] = "application/json; charset=UTF-8"
        if exc.echo_version is not None:
            g.nova_version_text = exc.echo_version
        return response

    def _render_unauthorized(self, exc: NovaUnauthorized) -> Response:
        body = {"error": {"code": 401, "title": "Unauthorized", "message": UNAUTHORIZED_MESSAGE}}
        response = json_response(body, 401)
        response.headers["WWW-Authenticate"] = f'Keystone uri="{self._base_url()}/identity/v3"'
        return response

    def _decorate(self, response: Response) -> Response:
        if not request.path.startswith("/compute/"):
            return response
        request_id = f"req-{uuid.uuid4()}"
        response.headers["x-openstack-request-id"] = request_id
        response.headers["x-compute-request-id"] = request_id
        mv = g.get("nova_mv")
        version = format_microversion(mv) if mv is not None else g.get("nova_version_text")
        if version is not None:
            response.headers["OpenStack-API-Version"] = f"compute {version}"
            response.headers["X-OpenStack-Nova-API-Version"] = version
            # Nova sends two Vary headers, not one joined value.
            response.headers.add("Vary", "OpenStack-API-Version")
            response.headers.add("Vary", "X-OpenStack-Nova-API-Version")
        return response

    # -- version documents (no token needed, as in Nova's paste pipeline) ----------------
    def _v21_document(self, region: ComputeRegion, full: bool) -> dict[str, Any]:
        href = f"{self._base_url()}/compute/{region.name}/v2.1/"
        doc: dict[str, Any] = {
            "id": "v2.1",
            "links": [{"href": href, "rel": "self"}],
            "status": "CURRENT",
            "version": format_microversion(MAX_MICROVERSION),
            "min_version": format_microversion(MIN_MICROVERSION),
            "updated": "2013-07-23T11:33:21Z",
        }
        if full:
            doc["links"].append(
                {"href": "http://docs.openstack.org/", "rel": "describedby", "type": "text/html"}
            )
            doc["media-types"] = [
                {
                    "base": "application/json",
                    "type": "application/vnd.openstack.compute+json;version=2.1",
                }
            ]
        return doc

    def versions(self, region: str) -> Response:
        """``GET /compute/<region>/``: the version list."""
        reg = self._region(region)
        v20 = {
            "id": "v2.0",
            "links": [{"href": f"{self._base_url()}/compute/{reg.name}/v2/", "rel": "self"}],
            "status": "DEPRECATED",
            "version": "",
            "min_version": "",
            "updated": "2025-07-04T12:00:00Z",
        }
        return json_response({"versions": [v20, self._v21_document(reg, False)]}, 200)

    def version_v21(self, region: str) -> Response:
        """``GET /compute/<region>/v2.1/``: the v2.1 document (min/max microversion)."""
        doc = self._v21_document(self._region(region), True)
        g.nova_mv = negotiate_microversion(request.headers)
        return json_response({"version": doc}, 200)

    # -- servers -------------------------------------------------------------------------
    def _list(self, region: str, detail: bool) -> Response:
        ctx = self._context(region)
        plan = list_request(ctx, request.args, detail, self.max_limit)
        view = NovaServerView(ctx)
        reg = ctx.region
        with reg.lock:
            if plan.empty:
                return json_response({"servers": []}, 200)
            partial = reg.cell_down and plan.partial
            try:
                if partial:
                    scope = ServerQuery(project_id=plan.query.project_id, limit=plan.query.limit)
                    page = reg.list_servers(scope)
                elif reg.cell_down:
                    # Nova skips a down cell's instances whenever filters or paging are used,
                    # and a marker that lives in the down cell cannot be looked up.
                    if plan.query.marker is not None:
                        raise MarkerNotFound(plan.query.marker)
                    page = []
                else:
                    page = reg.list_servers(plan.query)
            except MarkerNotFound:
                raise NovaError(400, f"marker [{plan.query.marker}] not found") from None
            if detail:
                items = [view.partial_detail(s) if partial else view.detail(s) for s in page]
            else:
                items = [view.index_item(s, partial) for s in page]
        body: dict[str, Any] = {"servers": items}
        limit = plan.query.limit
        if limit and len(items) == limit:
            collection = "servers/detail" if detail else "servers"
            body["servers_links"] = [
                {"href": self._next_link(ctx, collection, page[-1].id), "rel": "next"}
            ]
        return json_response(body, 200)

    def _next_link(self, ctx: CallContext, collection: str, last_id: str) -> str:
        params = dict(sorted(request.args.items(multi=True)))
        params["marker"] = last_id
        return f"{ctx.self_prefix}/{collection}?{urlencode(params)}"

    def index(self, region: str) -> Response:
        """``GET /servers``."""
        return self._list(region, detail=False)

    def detail(self, region: str) -> Response:
        """``GET /servers/detail``."""
        return self._list(region, detail=True)

    def _visible_server(self, ctx: CallContext, server_id: str) -> Server:
        try:
            server = ctx.region.get(server_id)
        except KeyError:
            server = None
        if (
            server is None
            or server.deleted
            or (not ctx.admin and server.project_id != ctx.token.project_id)
        ):
            raise NovaError(404, f"Instance {server_id} could not be found.")
        return server

    def show(self, region: str, server_id: str) -> Response:
        """``GET /servers/{id}``."""
        ctx = self._context(region)
        view = NovaServerView(ctx)
        with ctx.region.lock:
            server = self._visible_server(ctx, server_id)
            if ctx.region.cell_down:
                if ctx.mv < 69:
                    raise NovaError(
                        500,
                        "Unexpected API Error. Please report this at "
                        "http://bugs.launchpad.net/nova/ and attach the Nova API log if "
                        "possible.\n<class 'nova.exception.NovaException'>",
                    )
                body = view.partial_show(server)
            else:
                body = view.detail(server, show=True)
        return json_response({"server": body}, 200)

    def diagnostics(self, region: str, server_id: str) -> Response:
        """``GET /servers/{id}/diagnostics`` (admin)."""
        ctx = self._context(region)
        if not ctx.admin:
            raise policy_error("os_compute_api:os-server-diagnostics")
        with ctx.region.lock:
            server = self._visible_server(ctx, server_id)
            if server.vm_state == "building":
                raise NovaError(
                    409,
                    f"Cannot 'get_diagnostics' instance {server_id} while it is in vm_state "
                    "building",
                )
            body = diagnostics_document(server, ctx.mv, ctx.now)
        return json_response(body, 200)

    # -- services and hypervisors --------------------------------------------------------
    def list_services(self, region: str) -> Response:
        """``GET /os-services`` (admin) with ``binary`` and ``host`` filters."""
        ctx = self._context(region)
        if not ctx.admin:
            raise policy_error("os_compute_api:os-services:list")
        binary, host = request.args.get("binary"), request.args.get("host")
        reg = ctx.region
        with reg.lock:
            items = []
            for svc in reg.services:
                if (binary and svc.binary != binary) or (host and svc.host != host):
                    continue
                doc = service_document(svc, ctx.mv, ctx.now, reg.cell_down)
                if doc is not None:
                    items.append(doc)
        return json_response({"services": items}, 200)

    def _hypervisor_page(self, ctx: CallContext, detail: bool) -> Response:
        rule = "list-detail" if detail else "list"
        if not ctx.admin:
            raise policy_error(f"os_compute_api:os-hypervisors:{rule}")
        args, mv, reg = request.args, ctx.mv, ctx.region
        paging = mv >= 33 and ("limit" in args or "marker" in args)
        pattern = args.get("hypervisor_hostname_pattern") if mv >= 53 else None
        if pattern is not None and paging:
            raise NovaError(
                400,
                "Paging over hypervisors with the hypervisor_hostname_pattern query parameter "
                "is not supported.",
            )
        with_servers = mv >= 53 and parse_bool(args.get("with_servers", "false"), strict=False)
        limit = self.max_limit
        if mv >= 33 and "limit" in args:
            limit = min(self.max_limit, parse_limit(args["limit"]))
        with reg.lock:
            nodes = [] if reg.cell_down else list(reg.computes.values())
            if pattern is not None:
                nodes = [n for n in nodes if pattern.lower() in n.host.lower()]
            if mv >= 33 and "marker" in args:
                marker = args["marker"]
                ids = [str(n.hypervisor_uuid if mv >= 53 else n.hypervisor_int_id) for n in nodes]
                if marker not in ids:
                    raise NovaError(400, f"Marker {marker} could not be found.")
                nodes = nodes[ids.index(marker) + 1 :]
            page = nodes[:limit]
            items = [
                hypervisor_document(n, reg.usage[n.host], reg, mv, detail, with_servers, ctx.now)
                for n in page
            ]
        body: dict[str, Any] = {"hypervisors": items}
        if mv >= 33 and items and len(items) == limit:
            collection = "os-hypervisors/detail" if detail else "os-hypervisors"
            body["hypervisors_links"] = [
                {"href": self._next_link(ctx, collection, str(items[-1]["id"])), "rel": "next"}
            ]
        return json_response(body, 200)

    def hypervisors(self, region: str) -> Response:
        """``GET /os-hypervisors`` (admin)."""
        return self._hypervisor_page(self._context(region), detail=False)

    def hypervisors_detail(self, region: str) -> Response:
        """``GET /os-hypervisors/detail`` (admin)."""
        return self._hypervisor_page(self._context(region), detail=True)

    def hypervisor_show(self, region: str, hid: str) -> Response:
        """``GET /os-hypervisors/{id}`` (admin)."""
        ctx = self._context(region)
        if not ctx.admin:
            raise policy_error("os_compute_api:os-hypervisors:show")
        mv, reg = ctx.mv, ctx.region
        with_servers = mv >= 53 and parse_bool(
            request.args.get("with_servers", "false"), strict=False
        )
        with reg.lock:
            for node in [] if reg.cell_down else reg.computes.values():
                if hid == str(node.hypervisor_uuid if mv >= 53 else node.hypervisor_int_id):
                    doc = hypervisor_document(
                        node, reg.usage[node.host], reg, mv, True, with_servers, ctx.now
                    )
                    return json_response({"hypervisor": doc}, 200)
        raise NovaError(404, f"Hypervisor with ID {hid} could not be found.")
