"""How the Nova simulator renders servers, services, hypervisors and diagnostics.

Each document is shaped per microversion and per role (admin sees ``OS-EXT-SRV-ATTR:*`` and
``host_status``), following the real sample bodies in ``tests/fixtures/openstack/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vesagent.sim.keystone import Token
from vesagent.sim.nova.state import (
    NOSTATE,
    POWER_STATE_NAMES,
    PROGRESS_STATUSES,
    ComputeRegion,
    ComputeService,
    Flavor,
    HostUsage,
    Server,
    host_id,
    iso_micro,
    iso_z,
)


@dataclass(frozen=True)
class CallContext:
    """Who asks, at which microversion, in which region, and the URL prefixes of links."""

    region: ComputeRegion
    mv: int
    token: Token
    self_prefix: str  # .../compute/{region}/v2.1
    bookmark_prefix: str  # .../compute/{region}
    now: float

    @property
    def admin(self) -> bool:
        """Cloud admin (legacy policy: the admin role)."""
        return self.token.is_admin


class NovaServerView:
    """Renders servers the way Nova's view builder does for one request."""

    def __init__(self, ctx: CallContext) -> None:
        self.ctx = ctx

    def links(self, server_id: str) -> list[dict[str, str]]:
        """``self`` and ``bookmark`` links."""
        return [
            {"href": f"{self.ctx.self_prefix}/servers/{server_id}", "rel": "self"},
            {"href": f"{self.ctx.bookmark_prefix}/servers/{server_id}", "rel": "bookmark"},
        ]

    def flavor(self, flavor: Flavor) -> dict[str, Any]:
        """Flavor link before 2.47, embedded flavor from 2.47."""
        if self.ctx.mv >= 47:
            return {
                "disk": flavor.disk,
                "ephemeral": flavor.ephemeral,
                "extra_specs": {},
                "original_name": flavor.name,
                "ram": flavor.ram,
                "swap": flavor.swap,
                "vcpus": flavor.vcpus,
            }
        href = f"{self.ctx.bookmark_prefix}/flavors/{flavor.id}"
        return {"id": flavor.id, "links": [{"href": href, "rel": "bookmark"}]}

    def image(self, image_id: str) -> dict[str, Any]:
        """Image reference."""
        href = f"{self.ctx.bookmark_prefix}/images/{image_id}"
        return {"id": image_id, "links": [{"href": href, "rel": "bookmark"}]}

    def index_item(self, server: Server, partial: bool = False) -> dict[str, Any]:
        """An item of ``GET /servers``."""
        if partial:
            return {"id": server.id, "status": "UNKNOWN", "links": self.links(server.id)}
        return {"id": server.id, "links": self.links(server.id), "name": server.name}

    def partial_detail(self, server: Server) -> dict[str, Any]:
        """Down-cell record of ``GET /servers/detail`` (v2.69 sample)."""
        return {
            "created": iso_z(server.created),
            "id": server.id,
            "status": "UNKNOWN",
            "tenant_id": server.project_id,
            "links": self.links(server.id),
        }

    def partial_show(self, server: Server) -> dict[str, Any]:
        """Down-cell record of ``GET /servers/{id}`` (v2.69 / v2.71 samples)."""
        body: dict[str, Any] = {
            "OS-EXT-AZ:availability_zone": "UNKNOWN",
            "OS-EXT-STS:power_state": NOSTATE,
            "created": iso_z(server.created),
            "flavor": self.flavor(server.flavor),
            "id": server.id,
            "image": self.image(server.image_id),
            "status": "UNKNOWN",
            "tenant_id": server.project_id,
            "user_id": server.user_id,
            "links": self.links(server.id),
        }
        if self.ctx.mv >= 71:
            body["server_groups"] = []
        return body

    def detail(self, server: Server, show: bool = False) -> dict[str, Any]:
        """A full server body (``show``: ``GET /servers/{id}``, which adds server_groups)."""
        mv, admin = self.ctx.mv, self.ctx.admin
        status = server.status
        body: dict[str, Any] = {
            "OS-DCF:diskConfig": "MANUAL",
            "OS-EXT-AZ:availability_zone": server.availability_zone,
            "OS-EXT-STS:power_state": server.power_state,
            "OS-EXT-STS:task_state": server.task_state,
            "OS-EXT-STS:vm_state": server.vm_state,
            "OS-SRV-USG:launched_at": iso_micro(server.launched_at) if server.launched_at else None,
            "OS-SRV-USG:terminated_at": (
                iso_micro(server.terminated_at) if server.terminated_at else None
            ),
            "accessIPv4": "",
            "accessIPv6": "",
            "addresses": {},
            "config_drive": "",
            "created": iso_z(server.created),
            "flavor": self.flavor(server.flavor),
            "hostId": host_id(server.project_id, server.host),
            "id": server.id,
            "image": self.image(server.image_id),
            "key_name": None,
            "links": self.links(server.id),
            "metadata": dict(server.metadata),
            "name": server.name,
            "os-extended-volumes:volumes_attached": [],
            "status": status,
            "tenant_id": server.project_id,
            "updated": iso_z(server.updated),
            "user_id": server.user_id,
        }
        if status in PROGRESS_STATUSES:
            body["progress"] = 0
        if admin:
            body["OS-EXT-SRV-ATTR:host"] = server.host
            body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = server.host
            body["OS-EXT-SRV-ATTR:instance_name"] = server.instance_name
            if mv >= 3:
                body["OS-EXT-SRV-ATTR:hostname"] = server.name
                body["OS-EXT-SRV-ATTR:kernel_id"] = ""
                body["OS-EXT-SRV-ATTR:launch_index"] = 0
                body["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
                body["OS-EXT-SRV-ATTR:reservation_id"] = f"r-{server.id[:8]}"
                body["OS-EXT-SRV-ATTR:root_device_name"] = "/dev/vda"
                body["OS-EXT-SRV-ATTR:user_data"] = None
            if mv >= 16:
                # A deleted instance has no service joined any more: Nova shows "".
                host = None if server.deleted else server.host
                body["host_status"] = self.ctx.region.host_status(host)
        elif mv >= 90:
            body["OS-EXT-SRV-ATTR:hostname"] = server.name
        if mv >= 9:
            body["locked"] = False
        if mv >= 19:
            body["description"] = None
        if mv >= 26:
            body["tags"] = []
        if mv >= 63:
            body["trusted_image_certificates"] = None
        if show and mv >= 71:
            body["server_groups"] = []
        if mv >= 73:
            body["locked_reason"] = None
        if mv >= 96:
            body["pinned_availability_zone"] = None
        if server.fault is not None and status in ("ERROR", "DELETED"):
            fault = server.fault
            rendered: dict[str, Any] = {
                "code": fault.code,
                "created": iso_z(fault.created),
                "message": fault.message,
            }
            if fault.details is not None and (admin or fault.code != 500):
                rendered["details"] = fault.details
            body["fault"] = rendered
        return body


def service_document(
    svc: ComputeService, mv: int, now: float, cell_down: bool
) -> dict[str, Any] | None:
    """An ``os-services`` item; None when a down cell hides it (before 2.69)."""
    if cell_down and svc.binary == "nova-compute":
        if mv < 69:
            return None
        return {"binary": svc.binary, "host": svc.host, "status": "UNKNOWN"}
    body: dict[str, Any] = {
        "id": svc.uuid if mv >= 53 else svc.int_id,
        "binary": svc.binary,
        "disabled_reason": svc.disabled_reason,
        "host": svc.host,
        "state": "up" if svc.is_up() else "down",
        "status": "disabled" if svc.disabled else "enabled",
        "updated_at": iso_micro(svc.last_heartbeat(now)),
    }
    if mv >= 11:
        body["forced_down"] = svc.forced_down
    body["zone"] = svc.zone
    return body


_CPU_INFO = {
    "arch": "x86_64",
    "model": "Nehalem",
    "vendor": "Intel",
    "features": ["pge", "clflush"],
    "topology": {"cores": 8, "threads": 2, "sockets": 4},
}
HYPERVISOR_VCPUS = 64
HYPERVISOR_RAM_MB = 262144
HYPERVISOR_DISK_GB = 2048


def hypervisor_document(
    svc: ComputeService,
    usage: HostUsage,
    region: ComputeRegion,
    mv: int,
    detail: bool,
    with_servers: bool,
    now: float,
) -> dict[str, Any]:
    """An ``os-hypervisors`` item (``detail`` adds the node's facts, by microversion)."""
    body: dict[str, Any] = {
        "hypervisor_hostname": svc.host,
        "id": svc.hypervisor_uuid if mv >= 53 else svc.hypervisor_int_id,
        "state": "up" if svc.is_up() else "down",
        "status": "disabled" if svc.disabled else "enabled",
    }
    if detail:
        body["host_ip"] = svc.host_ip
        body["hypervisor_type"] = "QEMU"
        body["hypervisor_version"] = 8002000
        body["service"] = {
            "disabled_reason": svc.disabled_reason,
            "host": svc.host,
            "id": svc.uuid if mv >= 53 else svc.int_id,
        }
        if mv < 88:
            body.update(
                {
                    "cpu_info": _CPU_INFO if mv >= 28 else _json_string(_CPU_INFO),
                    "current_workload": 0,
                    "disk_available_least": HYPERVISOR_DISK_GB - usage.disk,
                    "free_disk_gb": HYPERVISOR_DISK_GB - usage.disk,
                    "free_ram_mb": HYPERVISOR_RAM_MB - 512 - usage.ram,
                    "local_gb": HYPERVISOR_DISK_GB,
                    "local_gb_used": usage.disk,
                    "memory_mb": HYPERVISOR_RAM_MB,
                    "memory_mb_used": 512 + usage.ram,
                    "running_vms": len(usage.servers),
                    "vcpus": HYPERVISOR_VCPUS,
                    "vcpus_used": usage.vcpus,
                }
            )
        else:
            body["uptime"] = _uptime_text(now, svc.booted_at) if svc.is_up() else None
    if with_servers and (usage.servers or mv >= 75):
        body["servers"] = [
            {"name": region.servers[sid].instance_name, "uuid": sid} for sid in usage.servers
        ]
    return body


def _json_string(value: Any) -> str:
    return json.dumps(value)


def _uptime_text(now: float, booted_at: float) -> str:
    up = int(now - booted_at)
    clock = datetime.fromtimestamp(now, UTC).strftime("%H:%M:%S")
    days, rest = divmod(up, 86400)
    return (
        f" {clock} up {days} days, {rest // 3600:2d}:{rest % 3600 // 60:02d},  1 user,  "
        "load average: 0.20, 0.12, 0.14\n"
    )


def _server_rates(server_id: str) -> tuple[int, ...]:
    """Per-server constants (bytes/s, packets/s, ...) derived from its id: deterministic."""
    seed = int(server_id.replace("-", "")[:16], 16)
    return tuple((seed >> (8 * i)) & 0xFF for i in range(8))


def diagnostics_document(server: Server, mv: int, now: float) -> dict[str, Any]:
    """``GET /servers/{id}/diagnostics``: standard format from 2.48, libvirt's dict before.

    Counters grow with the time since the guest last started running, so two reads a few
    seconds apart show them increasing; a stopped guest reads zero (its domain is gone).
    """
    up = max(0.0, now - server.boot_time) if server.boot_time is not None else 0.0
    r = _server_rates(server.id)
    cpu = server.cpu_percent if server.cpu_percent is not None else 5 + r[0] % 40
    cpu_ns = int(up * 1e9 * cpu / 100)
    rx_octets, tx_octets = int(up * (2000 + 40 * r[1])), int(up * (1000 + 20 * r[2]))
    rx_packets, tx_packets = int(up * (5 + r[3] % 50)), int(up * (3 + r[4] % 30))
    read_bytes, write_bytes = int(up * (4096 + 512 * r[5])), int(up * (8192 + 256 * r[6]))
    read_req, write_req = read_bytes // 4096, write_bytes // 4096
    ram = server.flavor.ram
    used = ram * (30 + r[7] % 50) // 100 if up else 0
    mac = "fa:16:3e:" + ":".join(server.id.replace("-", "")[i : i + 2] for i in (0, 2, 4))
    if mv < 48:
        return {
            "cpu0_time": cpu_ns,
            "memory": ram * 1024,
            "memory-actual": ram * 1024,
            "memory-rss": used * 1024,
            "vda_errors": -1,
            "vda_read": read_bytes,
            "vda_read_req": read_req,
            "vda_write": write_bytes,
            "vda_write_req": write_req,
            "tap" + server.id[:11] + "_rx": rx_octets,
            "tap" + server.id[:11] + "_rx_drop": 0,
            "tap" + server.id[:11] + "_rx_errors": 0,
            "tap" + server.id[:11] + "_rx_packets": rx_packets,
            "tap" + server.id[:11] + "_tx": tx_octets,
            "tap" + server.id[:11] + "_tx_drop": 0,
            "tap" + server.id[:11] + "_tx_errors": 0,
            "tap" + server.id[:11] + "_tx_packets": tx_packets,
        }
    return {
        "config_drive": False,
        "cpu_details": [{"id": 0, "time": cpu_ns, "utilisation": cpu if up else None}],
        "disk_details": [
            {
                "errors_count": 0,
                "read_bytes": read_bytes,
                "read_requests": read_req,
                "write_bytes": write_bytes,
                "write_requests": write_req,
            }
        ],
        "driver": "libvirt",
        "hypervisor": "qemu",
        "hypervisor_os": "linux",
        "memory_details": {"maximum": ram, "used": used},
        "nic_details": [
            {
                "mac_address": mac,
                "rx_drop": 0,
                "rx_errors": 0,
                "rx_octets": rx_octets,
                "rx_packets": rx_packets,
                "rx_rate": None,
                "tx_drop": 0,
                "tx_errors": 0,
                "tx_octets": tx_octets,
                "tx_packets": tx_packets,
                "tx_rate": None,
            }
        ],
        "num_cpus": 1,
        "num_disks": 1,
        "num_nics": 1,
        "state": POWER_STATE_NAMES.get(server.power_state, "pending"),
        "uptime": int(up),
    }
