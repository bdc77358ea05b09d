"""Nova v2.1 simulator: one ``ComputeRegion`` (state + indexes) per region and ``NovaApi`` (HTTP).

Where things are: ``state`` (servers, services, ``ComputeRegion``), ``indexes`` (the sorted
and update-time indexes), ``microversions`` (negotiation), ``faults`` (error documents),
``views`` (``NovaServerView`` and the service/hypervisor/diagnostics documents), ``query``
(``GET /servers`` parameters to a ``ServerQuery``) and ``routes`` (``NovaApi``, the Flask
routes). This package re-exports their public names.

What it reproduces of the real compute API (``tests/fixtures/openstack/`` holds the real sample
bodies it is checked against):

- microversions 2.1 .. ``MAX_MICROVERSION`` from ``X-OpenStack-Nova-API-Version`` or
  ``OpenStack-API-Version: compute 2.x`` (the latter wins), ``latest``, 400 on a malformed
  value, 406 ``computeFault`` outside the range; server, service and hypervisor bodies shaped
  per microversion and per role (admin sees ``OS-EXT-SRV-ATTR:*`` and ``host_status``);
- ``status`` derived from ``(vm_state, task_state)`` with Nova's ``_STATE_MAP``; ``updated`` and
  ``created`` in whole seconds; ``fault`` only on ERROR/DELETED and only when one was recorded;
- ``GET /servers[/detail]``: ``all_tenants`` (403 for non-admin), ``project_id``/``tenant_id``,
  inclusive ``changes-since`` / ``changes-before`` that also return DELETED servers,
  ``status`` (with Nova's vm_state/task_state quirk), ``name`` (regex), ``host`` and a few more,
  ``limit`` clamped to ``max_limit``, ``marker`` (400 when unknown), ``servers_links`` whenever
  a page is full, 400 on unknown parameters from 2.75; default order ``created_at`` desc,
  ``id`` desc;
- down cell (2.69+): partial records when no filter but ``all_tenants`` and no paging is asked,
  otherwise the cell's servers are skipped, as Nova does.

Indexes keep it fast at 100,000 servers: a sorted ``(created, id)`` list per region and per
project (marker paging is a bisect, not a scan) and update-time buckets (``changes-since`` reads
only the servers that changed).
"""

from __future__ import annotations

from vesagent.sim.nova.faults import (
    NovaError,
    NovaUnauthorized,
    nova_fault_body,
    policy_error,
)
from vesagent.sim.nova.indexes import (
    SortedKeys,
    UpdateIndex,
)
from vesagent.sim.nova.microversions import (
    MAX_MICROVERSION,
    MIN_MICROVERSION,
    format_microversion,
    negotiate_microversion,
)
from vesagent.sim.nova.query import (
    ListRequest,
    list_request,
    non_admin_keys,
    parse_bool,
    parse_iso8601,
    parse_limit,
    query_keys,
)
from vesagent.sim.nova.routes import (
    NovaApi,
)
from vesagent.sim.nova.state import (
    CRASHED,
    FLAVORS,
    KNOWN_STATUSES,
    NOSTATE,
    PAUSED,
    POWER_STATE_NAMES,
    REPORT_INTERVAL,
    RUNNING,
    SERVICE_DOWN_TIME,
    SHUTDOWN,
    STATE_MAP,
    STATUS_STATES,
    SUSPENDED,
    Clock,
    ComputeRegion,
    ComputeService,
    Fault,
    Flavor,
    HostUsage,
    MarkerNotFound,
    Server,
    ServerQuery,
    host_id,
    iso_micro,
    iso_z,
    states_for_statuses,
    status_from_state,
)
from vesagent.sim.nova.views import (
    HYPERVISOR_DISK_GB,
    HYPERVISOR_RAM_MB,
    HYPERVISOR_VCPUS,
    CallContext,
    NovaServerView,
    diagnostics_document,
    hypervisor_document,
    service_document,
)

__all__ = [
    "CRASHED",
    "FLAVORS",
    "HYPERVISOR_DISK_GB",
    "HYPERVISOR_RAM_MB",
    "HYPERVISOR_VCPUS",
    "KNOWN_STATUSES",
    "MAX_MICROVERSION",
    "MIN_MICROVERSION",
    "NOSTATE",
    "PAUSED",
    "POWER_STATE_NAMES",
    "REPORT_INTERVAL",
    "RUNNING",
    "SERVICE_DOWN_TIME",
    "SHUTDOWN",
    "STATE_MAP",
    "STATUS_STATES",
    "SUSPENDED",
    "CallContext",
    "Clock",
    "ComputeRegion",
    "ComputeService",
    "Fault",
    "Flavor",
    "HostUsage",
    "ListRequest",
    "MarkerNotFound",
    "NovaApi",
    "NovaError",
    "NovaServerView",
    "NovaUnauthorized",
    "Server",
    "ServerQuery",
    "SortedKeys",
    "UpdateIndex",
    "diagnostics_document",
    "format_microversion",
    "host_id",
    "hypervisor_document",
    "iso_micro",
    "iso_z",
    "list_request",
    "negotiate_microversion",
    "non_admin_keys",
    "nova_fault_body",
    "parse_bool",
    "parse_iso8601",
    "parse_limit",
    "policy_error",
    "query_keys",
    "service_document",
    "states_for_statuses",
    "status_from_state",
]
