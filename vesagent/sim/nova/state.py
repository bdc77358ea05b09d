"""The state of a simulated Nova region: servers, services, hosts, and the queries on them.

``ComputeRegion`` owns one region's servers (with the indexes of ``indexes.py``), its
nova-compute/nova-conductor services and per-host usage; ``status`` is derived from
``(vm_state, task_state)`` with Nova's ``_STATE_MAP``, as Nova does.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from vesagent.sim.nova.indexes import SortedKeys, UpdateIndex

SERVICE_DOWN_TIME = 60.0  # nova [DEFAULT] service_down_time
REPORT_INTERVAL = 10  # nova [DEFAULT] report_interval

Clock = Callable[[], float]

# nova/compute/power_state.py
NOSTATE, RUNNING, PAUSED, SHUTDOWN, CRASHED, SUSPENDED = 0, 1, 3, 4, 6, 7
POWER_STATE_NAMES = {
    NOSTATE: "pending",
    RUNNING: "running",
    PAUSED: "paused",
    SHUTDOWN: "shutdown",
    CRASHED: "crashed",
    SUSPENDED: "suspended",
}

_REBUILD = {"rebuilding": "REBUILD", "rebuild_block_device_mapping": "REBUILD",
            "rebuild_spawning": "REBUILD"}  # fmt: skip
_RESIZE = {"resize_prep": "RESIZE", "resize_migrating": "RESIZE", "resize_migrated": "RESIZE",
           "resize_finish": "RESIZE"}  # fmt: skip
# nova/api/openstack/common.py _STATE_MAP: vm_state -> {task_state | "default": status}
STATE_MAP: dict[str, dict[str, str]] = {
    "active": {
        "default": "ACTIVE",
        "rebooting": "REBOOT",
        "reboot_pending": "REBOOT",
        "reboot_started": "REBOOT",
        "rebooting_hard": "HARD_REBOOT",
        "reboot_pending_hard": "HARD_REBOOT",
        "reboot_started_hard": "HARD_REBOOT",
        "updating_password": "PASSWORD",
        "migrating": "MIGRATING",
        **_REBUILD,
        **_RESIZE,
    },
    "building": {"default": "BUILD"},
    "stopped": {"default": "SHUTOFF", **_RESIZE, **_REBUILD},
    "resized": {"default": "VERIFY_RESIZE", "resize_reverting": "REVERT_RESIZE"},
    "paused": {"default": "PAUSED", "migrating": "MIGRATING"},
    "suspended": {"default": "SUSPENDED"},
    "rescued": {"default": "RESCUE"},
    "error": {"default": "ERROR", **_REBUILD},
    "deleted": {"default": "DELETED"},
    "soft-delete": {"default": "SOFT_DELETED"},
    "shelved": {"default": "SHELVED"},
    "shelved_offloaded": {"default": "SHELVED_OFFLOADED"},
}
KNOWN_STATUSES = frozenset(s for m in STATE_MAP.values() for s in m.values())

# set_status(): a status -> (vm_state, task_state, power_state or None to keep the current one)
STATUS_STATES: dict[str, tuple[str, str | None, int | None]] = {
    "ACTIVE": ("active", None, RUNNING),
    "BUILD": ("building", "spawning", NOSTATE),
    "ERROR": ("error", None, None),  # os-resetState leaves the power state alone
    "SHUTOFF": ("stopped", None, SHUTDOWN),
    "PAUSED": ("paused", None, PAUSED),
    "SUSPENDED": ("suspended", None, SUSPENDED),
    "REBOOT": ("active", "rebooting", RUNNING),
    "HARD_REBOOT": ("active", "rebooting_hard", RUNNING),
    "PASSWORD": ("active", "updating_password", RUNNING),
    "REBUILD": ("active", "rebuilding", RUNNING),
    "MIGRATING": ("active", "migrating", RUNNING),
    "RESIZE": ("active", "resize_prep", RUNNING),
    "VERIFY_RESIZE": ("resized", None, RUNNING),
    "REVERT_RESIZE": ("resized", "resize_reverting", RUNNING),
    "RESCUE": ("rescued", None, RUNNING),
    "SHELVED": ("shelved", None, SHUTDOWN),
    "SHELVED_OFFLOADED": ("shelved_offloaded", None, NOSTATE),
    "SOFT_DELETED": ("soft-delete", None, SHUTDOWN),
}
PROGRESS_STATUSES = frozenset({"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE",
                                "MIGRATING"})  # fmt: skip


def status_from_state(vm_state: str, task_state: str | None) -> str:
    """Nova's ``status_from_state``: UNKNOWN for a vm_state outside the map."""
    task_map = STATE_MAP.get(vm_state)
    if task_map is None:
        return "UNKNOWN"
    return task_map.get(task_state or "default", task_map["default"])


def states_for_statuses(statuses: Iterable[str]) -> tuple[set[str], set[str]]:
    """Nova's ``task_and_vm_state_from_status``: the vm_states and task_states to filter on."""
    wanted = {s.lower() for s in statuses}
    vm_states: set[str] = set()
    task_states: set[str] = set()
    for vm_state, task_map in STATE_MAP.items():
        for task_state, status in task_map.items():
            if status.lower() in wanted:
                vm_states.add(vm_state)
                task_states.add(task_state)
    return vm_states, task_states


@lru_cache(maxsize=8192)
def iso_z(epoch: int) -> str:
    """Nova's ``created``/``updated`` format: ``2026-11-25T12:30:50Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=8192)
def iso_micro(epoch: int) -> str:
    """``launched_at``/``terminated_at``/service ``updated_at``: no zone, ``.000000``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000")


@lru_cache(maxsize=65536)
def host_id(project_id: str, host: str | None) -> str:
    """Nova's ``hostId``: sha224 of project id + host, empty without a host."""
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


@dataclass(frozen=True)
class Flavor:
    """An embedded flavor (what 2.47+ shows, plus the id older microversions link to)."""

    id: str
    name: str
    vcpus: int
    ram: int
    disk: int
    ephemeral: int = 0
    swap: int = 0


FLAVORS = {
    f.name: f
    for f in (
        Flavor("1", "m1.tiny", 1, 512, 1),
        Flavor("2", "m1.small", 1, 2048, 20),
        Flavor("3", "m1.medium", 2, 4096, 40),
        Flavor("4", "m1.large", 4, 8192, 80),
    )
}


@dataclass(frozen=True)
class Fault:
    """An instance fault; ``details`` is shown to admins, or to anyone when code != 500."""

    code: int
    message: str
    created: int
    details: str | None = None


@dataclass(slots=True)
class Server:
    """One instance row. ``key`` orders servers as Nova's default sort does."""

    id: str
    name: str
    project_id: str
    user_id: str
    host: str | None
    flavor: Flavor
    image_id: str
    vm_state: str
    task_state: str | None
    power_state: int
    created: int
    updated: int
    seq: int
    launched_at: int | None
    boot_time: float | None
    availability_zone: str = "nova"
    terminated_at: int | None = None
    fault: Fault | None = None
    deleted: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    key: tuple[int, str] = (0, "")
    cpu_percent: float | None = None  # a test's pinned utilisation (set_cpu)

    @property
    def status(self) -> str:
        """The API status derived from vm_state and task_state."""
        return status_from_state(self.vm_state, self.task_state)

    @property
    def instance_name(self) -> str:
        """``OS-EXT-SRV-ATTR:instance_name``."""
        return f"instance-{self.seq:08x}"


@dataclass
class ComputeService:
    """A nova service row (``nova-compute`` ones also carry their hypervisor)."""

    int_id: int
    uuid: str
    binary: str
    host: str
    zone: str
    disabled: bool = False
    disabled_reason: str | None = None
    forced_down: bool = False
    down_since: float | None = None  # None: heartbeating every REPORT_INTERVAL
    hypervisor_int_id: int = 0
    hypervisor_uuid: str = ""
    host_ip: str = "127.0.0.1"
    booted_at: float = 0.0

    def last_heartbeat(self, now: float) -> int:
        """``updated_at``: the last report (a stopped service's is older than the down time)."""
        if self.down_since is not None:
            return int(self.down_since - SERVICE_DOWN_TIME - 1)
        phase = self.int_id % REPORT_INTERVAL
        return int((now - phase) // REPORT_INTERVAL * REPORT_INTERVAL + phase)

    def is_up(self) -> bool:
        """servicegroup ``service_is_up``: fresh heartbeat and not forced down."""
        return self.down_since is None and not self.forced_down


@dataclass
class HostUsage:
    """Live instances on one host and what they consume (kept incrementally)."""

    servers: dict[str, None] = field(default_factory=dict)
    vcpus: int = 0
    ram: int = 0
    disk: int = 0

    def add(self, server: Server) -> None:
        """Count a server on this host."""
        self.servers[server.id] = None
        self.vcpus += server.flavor.vcpus
        self.ram += server.flavor.ram
        self.disk += server.flavor.disk

    def remove(self, server: Server) -> None:
        """Stop counting a server on this host."""
        if self.servers.pop(server.id, 0) is None:
            self.vcpus -= server.flavor.vcpus
            self.ram -= server.flavor.ram
            self.disk -= server.flavor.disk


class MarkerNotFound(Exception):
    """The ``marker`` names no server of the region."""


@dataclass(frozen=True)
class ServerQuery:
    """A server list request after Nova's parameter handling (all filters are ANDed)."""

    project_id: str | None = None  # None: every project (all_tenants)
    changes_since: float | None = None
    changes_before: float | None = None
    deleted: bool | None = False  # False: live only, True: deleted only, None: both
    vm_states: frozenset[str] | None = None
    task_states: frozenset[str | None] | None = None
    power_states: frozenset[int] | None = None
    name: re.Pattern[str] | None = None
    host: str | None = None
    availability_zone: str | None = None
    user_id: str | None = None
    marker: str | None = None
    limit: int = 1000

    def checks(self) -> list[Callable[[Server], bool]]:
        """Predicates for the filters that an index does not already answer.

        Written out one by one on purpose: each runs once per candidate server (100,000 in a
        full scan), and a lambda reading its attribute directly is about 1.6x faster than a
        table of ``attrgetter`` predicates.
        """
        out: list[Callable[[Server], bool]] = []
        if self.deleted is not None:
            want = self.deleted
            out.append(lambda s: s.deleted is want)
        if self.vm_states is not None:
            vm_states = self.vm_states
            out.append(lambda s: s.vm_state in vm_states)
        if self.task_states is not None:
            task_states = self.task_states
            out.append(lambda s: s.task_state in task_states)
        if self.power_states is not None:
            power_states = self.power_states
            out.append(lambda s: s.power_state in power_states)
        if self.name is not None:
            search = self.name.search
            out.append(lambda s: search(s.name) is not None)
        if self.host is not None:
            host = self.host
            out.append(lambda s: s.host == host)
        if self.availability_zone is not None:
            zone = self.availability_zone
            out.append(lambda s: s.availability_zone == zone)
        if self.user_id is not None:
            user_id = self.user_id
            out.append(lambda s: s.user_id == user_id)
        return out


class ComputeRegion:
    """The servers and services of one region. Callers hold ``lock`` around every use."""

    # Above this many changed servers, walking the created-order index beats sorting them.
    SORT_CANDIDATES_MAX = 5000

    def __init__(self, name: str, clock: Clock) -> None:
        self.name = name
        self.clock = clock
        self.lock = threading.RLock()
        self.servers: dict[str, Server] = {}
        self.live = SortedKeys()
        self.everything = SortedKeys()
        self.live_by_project: dict[str, SortedKeys] = {}
        self.updates = UpdateIndex()
        self.services: list[ComputeService] = []
        self.computes: dict[str, ComputeService] = {}
        self.usage: dict[str, HostUsage] = {}
        self.cell_down = False
        self.image_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "vesagent-sim/image/cirros"))
        self._name_counters: dict[str, int] = {}
        self._seq = 0
        now = clock()
        for binary in ("nova-scheduler", "nova-conductor"):
            self._add_service(binary, "controller", "internal", now)

    # -- services ------------------------------------------------------------------------
    def _add_service(self, binary: str, host: str, zone: str, now: float) -> ComputeService:
        n = len(self.services) + 1
        ns = f"vesagent-sim/{self.name}/{binary}/{host}"
        svc = ComputeService(
            int_id=n,
            uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, ns)),
            binary=binary,
            host=host,
            zone=zone,
            booted_at=now - 86400,
        )
        self.services.append(svc)
        return svc

    def compute(self, host: str) -> ComputeService:
        """The ``nova-compute`` service of ``host`` (created with its hypervisor on demand)."""
        svc = self.computes.get(host)
        if svc is None:
            svc = self._add_service("nova-compute", host, "nova", self.clock())
            svc.hypervisor_int_id = len(self.computes) + 1
            svc.hypervisor_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{svc.uuid}/node"))
            svc.host_ip = f"192.168.0.{10 + len(self.computes)}"
            self.computes[host] = svc
            self.usage[host] = HostUsage()
        return svc

    def set_service(
        self,
        host: str,
        *,
        up: bool | None = None,
        enabled: bool | None = None,
        forced_down: bool | None = None,
        reason: str | None = None,
    ) -> ComputeService:
        """Change liveness / enabled / forced_down of a compute host."""
        svc = self.compute(host)
        if up is not None:
            if not up and svc.down_since is None:
                svc.down_since = self.clock()
            elif up:
                svc.down_since = None
        if enabled is not None:
            svc.disabled = not enabled
            svc.disabled_reason = None if enabled else reason
        elif reason is not None and svc.disabled:
            svc.disabled_reason = reason
        if forced_down is not None:
            svc.forced_down = forced_down
        return svc

    def host_status(self, host: str | None) -> str:
        """Nova's ``get_instance_host_status``: DOWN > MAINTENANCE > UP/UNKNOWN, "" w/o host."""
        if not host:
            return ""
        svc = self.computes.get(host)
        if svc is None:
            return ""
        if svc.forced_down:
            return "DOWN"
        if svc.disabled:
            return "MAINTENANCE"
        return "UP" if svc.is_up() else "UNKNOWN"

    # -- servers -------------------------------------------------------------------------
    def create_servers(
        self,
        count: int,
        project_id: str,
        user_id: str,
        prefix: str,
        status: str,
        host: str,
        flavor: Flavor,
    ) -> list[str]:
        """Boot ``count`` servers named ``{prefix}-{n}`` (n continues per prefix)."""
        vm_state, task_state, power = STATUS_STATES[status]
        power_state = NOSTATE if power is None else power
        self.compute(host)
        now = self.clock()
        second = int(now)
        first = self._name_counters.get(prefix, 0) + 1
        self._name_counters[prefix] = first + count - 1
        launched = None if vm_state == "building" else second
        created: list[Server] = []
        for n in range(first, first + count):
            self._seq += 1
            sid = str(uuid.uuid4())
            server = Server(
                id=sid,
                name=f"{prefix}-{n}",
                project_id=project_id,
                user_id=user_id,
                host=host,
                flavor=flavor,
                image_id=self.image_id,
                vm_state=vm_state,
                task_state=task_state,
                power_state=power_state,
                created=second,
                updated=second,
                seq=self._seq,
                launched_at=launched,
                boot_time=now if power_state == RUNNING else None,
            )
            server.key = (second, sid)
            created.append(server)
        keys = [s.key for s in created]
        self.servers.update((s.id, s) for s in created)
        self.live.add_many(keys)
        self.everything.add_many(keys)
        self.live_by_project.setdefault(project_id, SortedKeys()).add_many(keys)
        self.updates.add(second, (s.id for s in created))
        usage = self.usage[host]
        for server in created:
            usage.add(server)
        return [s.id for s in created]

    def get(self, server_id: str) -> Server:
        """A server (deleted ones included); KeyError when unknown."""
        return self.servers[server_id]

    def touch(self, server: Server) -> None:
        """Bump ``updated`` to now (every state change in Nova does)."""
        second = int(self.clock())
        if second != server.updated:
            self.updates.remove(server.updated, server.id)
            server.updated = second
            self.updates.add(second, (server.id,))

    def set_state(
        self,
        server_id: str,
        vm_state: str,
        task_state: str | None,
        power_state: int | None,
        fault: Fault | None = None,
    ) -> Server:
        """Set the raw states (status follows); ``updated`` moves on."""
        server = self.servers[server_id]
        if server.deleted:
            raise KeyError(server_id)
        if power_state is not None:
            if power_state == RUNNING and server.power_state != RUNNING:
                server.boot_time = self.clock()
            elif power_state != RUNNING:
                server.boot_time = None
            server.power_state = power_state
        if vm_state != "building" and server.launched_at is None:
            server.launched_at = int(self.clock())
        server.vm_state = vm_state
        server.task_state = task_state
        if fault is not None:
            server.fault = fault
        self.touch(server)
        return server

    def delete(self, server_id: str) -> Server:
        """Soft-delete: DELETED with ``terminated_at``, kept for changes-since until archived."""
        server = self.servers[server_id]
        if server.deleted:
            raise KeyError(server_id)
        server.vm_state, server.task_state, server.power_state = "deleted", None, NOSTATE
        server.boot_time = None
        server.terminated_at = int(self.clock())
        server.deleted = True
        self.live.remove(server.key)
        self.live_by_project[server.project_id].remove(server.key)
        if server.host:
            self.usage[server.host].remove(server)
        self.touch(server)
        return server

    def archive_deleted(self) -> int:
        """``nova-manage db archive_deleted_rows``: forget every deleted server."""
        gone = [s for s in self.servers.values() if s.deleted]
        for server in gone:
            del self.servers[server.id]
            self.everything.remove(server.key)
            self.updates.remove(server.updated, server.id)
        return len(gone)

    def live_ids(self) -> list[str]:
        """Ids of the servers not deleted, in creation order."""
        return [sid for sid, s in self.servers.items() if not s.deleted]

    # -- listing -------------------------------------------------------------------------
    def list_servers(self, query: ServerQuery) -> list[Server]:
        """One page of servers, newest first, after the marker (MarkerNotFound if unknown)."""
        marker_key = None
        if query.marker is not None:
            marker = self.servers.get(query.marker)
            if marker is None:
                raise MarkerNotFound(query.marker)
            marker_key = marker.key
        if query.limit <= 0:
            return []
        checks = query.checks()
        source = self._candidates(query, marker_key, checks)
        page: list[Server] = []
        for server in source:
            if all(check(server) for check in checks):
                page.append(server)
                if len(page) >= query.limit:
                    break
        return page

    def _candidates(
        self,
        query: ServerQuery,
        marker_key: tuple[int, str] | None,
        checks: list[Callable[[Server], bool]],
    ) -> Iterator[Server]:
        servers = self.servers
        since, before = query.changes_since, query.changes_before
        project = query.project_id
        if since is not None or before is not None:
            if self.updates.count_between(since, before) <= self.SORT_CANDIDATES_MAX:
                changed = [servers[i] for i in self.updates.between(since, before)]
                changed.sort(key=lambda s: s.key, reverse=True)
                if project is not None:
                    checks.append(lambda s: s.project_id == project)
                return (s for s in changed if marker_key is None or s.key < marker_key)
            lo = -math.inf if since is None else since
            hi = math.inf if before is None else before
            checks.append(lambda s: lo <= s.updated <= hi)
            return self._walk(self.everything, marker_key, project, checks)
        if query.deleted is False:
            if project is not None:
                index = self.live_by_project.get(project, SortedKeys())
                return (servers[k[1]] for k in index.iter_desc(marker_key))
            return (servers[k[1]] for k in self.live.iter_desc(marker_key))
        return self._walk(self.everything, marker_key, project, checks)

    def _walk(
        self,
        index: SortedKeys,
        marker_key: tuple[int, str] | None,
        project: str | None,
        checks: list[Callable[[Server], bool]],
    ) -> Iterator[Server]:
        if project is not None:
            checks.append(lambda s: s.project_id == project)
        servers = self.servers
        return (servers[k[1]] for k in index.iter_desc(marker_key))
