"""Nova v2.1 simulator: one ``ComputeRegion`` (state + indexes) per region and ``NovaApi`` (HTTP).

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

import hashlib
import json
import math
import re
import threading
import uuid
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, g, request

from vesagent.sim.keystone import UNAUTHORIZED_MESSAGE, IdentityStore, Token, json_response

MIN_MICROVERSION = 1  # 2.1
MAX_MICROVERSION = 96  # 2.96
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
_PROGRESS_STATUSES = frozenset({"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE",
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


class SortedKeys:
    """An ascending list of ``(created, id)`` keys, walked backwards for Nova's desc order."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys: list[tuple[int, str]] = []

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: tuple[int, str]) -> None:
        """Insert one key."""
        insort(self.keys, key)

    def add_many(self, keys: list[tuple[int, str]]) -> None:
        """Insert a batch: appended when it sorts after everything, else one timsort."""
        keys = sorted(keys)
        if keys and self.keys and keys[0] < self.keys[-1]:
            self.keys.extend(keys)
            self.keys.sort()
        else:
            self.keys.extend(keys)

    def remove(self, key: tuple[int, str]) -> None:
        """Remove one key if present."""
        i = bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            del self.keys[i]

    def iter_desc(self, below: tuple[int, str] | None = None) -> Iterator[tuple[int, str]]:
        """Keys in descending order, starting just below ``below`` (the marker's key)."""
        keys = self.keys
        start = len(keys) if below is None else bisect_left(keys, below)
        for i in range(start - 1, -1, -1):
            yield keys[i]


class UpdateIndex:
    """Server ids bucketed by ``updated`` second, with the seconds kept sorted."""

    def __init__(self) -> None:
        self._buckets: dict[int, dict[str, None]] = {}
        self._seconds: list[int] = []

    def add(self, second: int, ids: Iterable[str]) -> None:
        """Record that ``ids`` were updated at ``second``."""
        bucket = self._buckets.get(second)
        if bucket is None:
            bucket = self._buckets[second] = {}
            insort(self._seconds, second)
        bucket.update(dict.fromkeys(ids))

    def remove(self, second: int, server_id: str) -> None:
        """Forget one id's old update time."""
        bucket = self._buckets.get(second)
        if bucket is None:
            return
        bucket.pop(server_id, None)
        if not bucket:
            del self._buckets[second]
            i = bisect_left(self._seconds, second)
            if i < len(self._seconds) and self._seconds[i] == second:
                del self._seconds[i]

    def _range(self, since: float | None, before: float | None) -> list[int]:
        lo = 0 if since is None else bisect_left(self._seconds, math.ceil(since))
        hi = (
            len(self._seconds)
            if before is None
            else bisect_right(self._seconds, math.floor(before))
        )
        return self._seconds[lo:hi]

    def count_between(self, since: float | None, before: float | None) -> int:
        """How many ids have ``since <= updated <= before`` (inclusive, like Nova)."""
        return sum(len(self._buckets[s]) for s in self._range(since, before))

    def between(self, since: float | None, before: float | None) -> list[str]:
        """The ids with ``since <= updated <= before``."""
        out: list[str] = []
        for second in self._range(since, before):
            out.extend(self._buckets[second])
        return out


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
        """Predicates for the filters that an index does not already answer."""
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


# -- HTTP ------------------------------------------------------------------------------------
_FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}


class NovaError(Exception):
    """A Nova API fault: rendered as ``{"<faultName>": {"code": ..., "message": ...}}``."""

    def __init__(self, status: int, message: str, echo_version: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.echo_version = echo_version  # a 406 repeats the version that was asked for

    def body(self) -> dict[str, Any]:
        """The real fault document."""
        name = _FAULT_NAMES.get(self.status, "computeFault")
        return {name: {"code": self.status, "message": self.message}}


class NovaUnauthorized(Exception):
    """No valid token: keystonemiddleware's 401 body, before Nova itself runs."""


def nova_fault_body(status: int, message: str) -> dict[str, Any]:
    """The fault document Nova would send for ``status``."""
    return NovaError(status, message).body()


def policy_error(rule: str) -> NovaError:
    """403 with Nova's policy message."""
    return NovaError(403, f"Policy doesn't allow {rule} to be performed.")


_VERSION_RE = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


def format_microversion(minor: int) -> str:
    """``2.x``."""
    return f"2.{minor}"


def negotiate_microversion(headers: Any) -> int:
    """The requested minor version (2.x -> x); NovaError 400/406 like Nova's wsgi layer."""
    requested = None
    for item in headers.get("OpenStack-API-Version", "").split(","):
        parts = item.strip().split()
        if len(parts) == 2 and parts[0].lower() == "compute":
            requested = parts[1]
    if requested is None:
        requested = headers.get("X-OpenStack-Nova-API-Version")
    if requested is None or not requested.strip():
        return MIN_MICROVERSION
    requested = requested.strip()
    if requested.lower() == "latest":
        return MAX_MICROVERSION
    match = _VERSION_RE.match(requested)
    if match is None:
        raise NovaError(
            400,
            f"API Version String {requested} is of invalid format. Must be of format "
            "MajorNum.MinorNum.",
        )
    major, minor = int(match.group(1)), int(match.group(2))
    if major != 2 or not MIN_MICROVERSION <= minor <= MAX_MICROVERSION:
        raise NovaError(
            406,
            f"Version {requested} is not supported by the API. Minimum is "
            f"{format_microversion(MIN_MICROVERSION)} and maximum is "
            f"{format_microversion(MAX_MICROVERSION)}.",
            echo_version=requested,
        )
    return minor


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


class ServerView:
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
        if status in _PROGRESS_STATUSES:
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


# Query parameters of GET /servers[/detail] (nova/api/openstack/compute/schemas/servers.py).
_QUERY_KEYS_V21 = frozenset(
    """user_id project_id tenant_id launch_index image_ref image kernel_id ramdisk_id hostname
    key_name power_state vm_state task_state host node flavor reservation_id launched_at
    terminated_at availability_zone name display_name description display_description
    locked_by uuid root_device_name config_drive access_ip_v4 access_ip_v6 auto_disk_config
    progress sort_key sort_dir all_tenants soft_deleted deleted status changes-since ip ip6
    created_at block_device_mapping services metadata pci_devices security_groups info_cache
    system_metadata limit marker""".split()  # noqa: SIM905 - a word list reads better here
)
_TAG_KEYS = frozenset({"tags", "tags-any", "not-tags", "not-tags-any"})
_JOINED_KEYS = frozenset(
    {"block_device_mapping", "services", "metadata", "pci_devices", "security_groups",
     "info_cache", "system_metadata"}
)  # fmt: skip
_PAGING_SORTING = frozenset({"sort_key", "sort_dir", "limit", "marker"})
_NON_ADMIN_BASE = frozenset(
    {"reservation_id", "name", "status", "image", "flavor", "ip", "changes-since", "all_tenants"}
)
_NON_ADMIN_283 = frozenset(
    {"availability_zone", "config_drive", "key_name", "created_at", "launched_at",
     "terminated_at", "power_state", "task_state", "vm_state", "progress", "user_id"}
)  # fmt: skip
_TRUE = {"1", "t", "true", "on", "y", "yes"}
_FALSE = {"0", "f", "false", "off", "n", "no"}


def query_keys(mv: int) -> frozenset[str]:
    """The schema's allowed keys at a microversion."""
    keys = set(_QUERY_KEYS_V21)
    if mv >= 26:
        keys |= _TAG_KEYS
    if mv >= 66:
        keys.add("changes-before")
    if mv >= 73:
        keys.add("locked")
    return frozenset(keys)


def non_admin_keys(mv: int) -> frozenset[str]:
    """Filters a non-admin may use; the others are silently dropped (Nova's whitelist)."""
    keys = set(_NON_ADMIN_BASE)
    if mv >= 5:
        keys.add("ip6")
    if mv >= 26:
        keys |= _TAG_KEYS
    if mv >= 66:
        keys.add("changes-before")
    if mv >= 73:
        keys.add("locked")
    if mv >= 83:
        keys |= _NON_ADMIN_283
    return frozenset(keys)


def parse_bool(value: str, strict: bool) -> bool:
    """oslo ``bool_from_string``; strict raises ValueError on other values."""
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if strict and lowered not in _FALSE:
        raise ValueError(
            f"Unrecognized value '{value}', acceptable values are: '0', '1', 'f', 'false', "
            "'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
        )
    return False


def parse_iso8601(name: str, value: str) -> float:
    """An ISO 8601 timestamp as epoch seconds (no zone = UTC); NovaError 400 otherwise."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise NovaError(
            400,
            f"Invalid input for query parameters {name}. Value: {value}. "
            f"'{value}' is not a 'date-time'",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_limit(value: str) -> int:
    """A non-negative integer ``limit`` (Nova's schema message otherwise)."""
    if not value.isdigit():
        raise NovaError(
            400,
            f"Invalid input for query parameters limit. Value: {value}. "
            f"'{value}' does not match '^[0-9]*$'",
        )
    return int(value)


def _effective_keys(keys: set[str], mv: int, admin: bool) -> set[str]:
    """The filter keys Nova acts on: 400 for unknown (2.75+) or joined-table keys."""
    if mv >= 75:
        unknown = sorted(k for k in keys - query_keys(mv) if not k.startswith("_"))
        if unknown:
            # jsonschema's patternProperties message, as real Nova (Zed) words it.
            quoted = ", ".join(repr(k) for k in unknown)
            verb = "does not match" if len(unknown) == 1 else "do not match"
            raise NovaError(400, f"{quoted} {verb} any of the regexes: '^_'")
    effective = keys if admin else keys & non_admin_keys(mv)
    for key in sorted(effective):
        if key in _JOINED_KEYS or key.startswith("_"):
            raise NovaError(400, f"Invalid filter field: {key}.")
    return effective


def _change_window(args: Any, mv: int) -> tuple[float | None, float | None]:
    """``changes-since`` and (2.66+) ``changes-before`` as epoch seconds."""
    since = before = None
    if "changes-since" in args:
        since = parse_iso8601("changes-since", args["changes-since"])
    if mv >= 66 and "changes-before" in args:
        before = parse_iso8601("changes-before", args["changes-before"])
        if since is not None and before < since:
            raise NovaError(
                400, "The value of changes-since must be less than or equal to changes-before."
            )
    return since, before


def _state_filter(
    args: Any, effective: set[str], mv: int
) -> tuple[set[str] | None, set[str | None] | None] | None:
    """vm_states/task_states to match; None when Nova answers an empty list (pre-2.38)."""
    vm_states: set[str] | None = None
    task_states: set[str | None] | None = None
    if "status" in effective:
        found_vm, found_task = states_for_statuses(args.getlist("status"))
        if not found_vm:
            if mv >= 38:
                raise NovaError(400, "Invalid status value")
            return None
        vm_states = found_vm
        # status=ACTIVE maps to task "default": Nova then filters on vm_state alone.
        if "default" not in found_task:
            task_states = set(found_task)
    elif "vm_state" in effective:
        vm_states = set(args.getlist("vm_state"))
    if task_states is None and "task_state" in effective:
        task_states = {None if v.lower() == "none" else v for v in args.getlist("task_state")}
    return vm_states, task_states


def _project_scope(ctx: CallContext, args: Any, effective: set[str], detail: bool) -> str | None:
    """The project to list (None: all); all_tenants needs admin (Nova's policy 403)."""
    all_tenants = False
    if "all_tenants" in effective:
        raw = args["all_tenants"]
        try:
            all_tenants = parse_bool(raw, strict=True) if raw else True
        except ValueError as exc:
            raise NovaError(400, f"Invalid input received: {exc}") from None
    if not all_tenants:
        return ctx.token.project_id  # tenant_id/project_id are ignored without all_tenants
    if not ctx.admin:
        kind = "detail" if detail else "index"
        raise policy_error(f"os_compute_api:servers:{kind}:get_all_tenants")
    return args.get("project_id") or args.get("tenant_id") or None


def _name_pattern(args: Any, effective: set[str]) -> re.Pattern[str] | None:
    """``name`` is a regular expression (case-insensitive like MySQL's REGEXP)."""
    if "name" not in effective:
        return None
    try:
        return re.compile(args["name"], re.IGNORECASE)
    except re.error:
        message = f"Invalid input for query parameters name. Value: {args['name']}."
        raise NovaError(400, message) from None


def _power_states(args: Any, effective: set[str]) -> frozenset[int] | None:
    """``power_state`` values as integers."""
    if "power_state" not in effective:
        return None
    try:
        return frozenset(int(v) for v in args.getlist("power_state"))
    except ValueError:
        raise NovaError(400, "Invalid input for query parameters power_state.") from None


@dataclass(frozen=True)
class ListRequest:
    """How to answer one server list request."""

    query: ServerQuery
    partial: bool  # down-cell partial records allowed
    empty: bool = False  # Nova answers an empty list straight away (bad status before 2.38)


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
    def _list_request(self, ctx: CallContext, detail: bool) -> ListRequest:
        """Nova's handling of the list parameters, in Nova's order of checks."""
        args, mv = request.args, ctx.mv
        keys = set(args.keys())
        effective = _effective_keys(keys, mv, ctx.admin)
        limit = min(self.max_limit, parse_limit(args["limit"])) if "limit" in args else None
        since, before = _change_window(args, mv)
        partial = mv >= 69 and not (keys & _PAGING_SORTING) and effective <= {"all_tenants"}
        states = _state_filter(args, effective, mv)
        if states is None:
            return ListRequest(ServerQuery(), partial=False, empty=True)
        vm_states, task_states = states
        deleted: bool | None = False
        if "deleted" in effective:
            deleted = parse_bool(args["deleted"], strict=False)
        elif since is not None or before is not None:
            deleted = None  # changes-since/-before also return deleted servers
        if vm_states == {"deleted"}:
            if not ctx.admin:
                raise NovaError(403, "Only administrators may list deleted instances")
            deleted = True
        return ListRequest(
            ServerQuery(
                project_id=_project_scope(ctx, args, effective, detail),
                changes_since=since,
                changes_before=before,
                deleted=deleted,
                vm_states=frozenset(vm_states) if vm_states is not None else None,
                task_states=frozenset(task_states) if task_states is not None else None,
                power_states=_power_states(args, effective),
                name=_name_pattern(args, effective),
                host=args.get("host") if "host" in effective else None,
                availability_zone=(
                    args.get("availability_zone") if "availability_zone" in effective else None
                ),
                user_id=args.get("user_id") if "user_id" in effective else None,
                marker=args.get("marker"),
                limit=self.max_limit if limit is None else limit,
            ),
            partial,
        )

    def _list(self, region: str, detail: bool) -> Response:
        ctx = self._context(region)
        plan = self._list_request(ctx, detail)
        view = ServerView(ctx)
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
        view = ServerView(ctx)
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
