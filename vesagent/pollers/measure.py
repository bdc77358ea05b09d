"""VM measurements from Nova's server diagnostics: pure parsing and event building.

Input: ``GET /servers/{id}/diagnostics`` in the standard format of microversion 2.48+
(``memory_details`` in MiB, ``cpu_details[].time`` in ns, ``disk_details[]`` and
``nic_details[]`` cumulative counters). Two successive readings of one VM make one
measurement event (VES 7: exactly one measurement event per period per source).

Rules, field by field (neutral names of ``ves_client.encode``):

- ``cpu`` (one entry per vCPU, ``id`` as Nova gives it): ``percent_usage`` is Nova's
  ``utilisation`` when present, else ``100 * delta(time ns) / delta(t ns)`` between the two
  readings, clamped to 0..100; ``idle`` = 100 - usage (VES: percentUsage = 100 - idle). A
  vCPU with neither is left out.
- ``memory`` (one entry, ``vm_id`` = server id, KiB = MiB * 1024): ``configured_kib`` from
  ``maximum``, ``used_kib`` from ``used``, ``free_kib`` = configured - used (not below 0),
  ``percent_usage`` (v7 only) used / configured in percent. Left out unless both are known.
- ``disk`` (``id`` ``disk0``, ``disk1``... in Nova's order: the standard format names no
  disk): per-second rates over the time between the readings, ``octets_read``,
  ``octets_write``, ``ops_read``, ``ops_write``, each as ``_last`` and ``_avg`` (one sample
  per interval: the last rate is the interval's average).
- ``nic`` (``id`` = MAC address, else ``nic0``...): the counters as ``*_accumulated``, and
  ``*_delta`` against the previous reading of the same NIC: octets, total packets
  (``rx_packets``), error packets (``rx_errors``) and discarded packets (``rx_drop``).

Decisions:

- First reading (no previous one, or a previous one not older than this one): the event
  carries what one reading can tell: memory, CPU only where Nova gives ``utilisation``, NIC
  accumulated counters. No rate, no delta, no time-derived CPU: inventing them from zero
  would report the whole life of the VM as one interval's traffic.
- Counter reset (a NIC counter smaller than before, or ``uptime`` going backwards): the VM
  restarted or its counters were reset. The NIC gets ``suspect`` True (``valuesAreSuspect``
  "true"), its accumulated values are the new counters and its deltas count from 0 (the new
  value: a lower bound of the traffic since the reset; what happened before it in the
  interval is lost). Disk rates and time-derived CPU of that interval are left out.
- The rates and the CPU usage divide by the measured time between the two readings, not by
  the configured interval, because polls drift.
- ``startEpochMicrosec`` is now rounded down to the interval boundary (the period this
  reading belongs to, so successive events of a VM never share a start), ``lastEpochMicrosec``
  now, ``sequence`` 0, ``eventId`` ``measurement-{vimid}-{server id}-{counter}``: the counter
  must never repeat (the poller uses the period's boundary in seconds).

``metric_values`` turns an event's fields back into the ``KNOWN_METRICS`` values a TCA
threshold watches (VM-wide: CPU averaged over vCPUs, disk and NIC summed over devices).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vesagent.model import VesEvent
from vesagent.pollers.heartbeat import boundary_us, event_token, interval_us

MEASUREMENT_EVENT_NAME = "Measurement_vesagent_VMUsage"
"""The ``eventName`` of every VM measurement event."""

MAX_CPUS = 512
MAX_DISKS = 64
MAX_NICS = 64
MAX_COUNTER = 2**63
"""Counters are unsigned 64-bit in libvirt; anything beyond is garbage, not data."""
MAX_MEMORY_MIB = 2**40

NIC_COUNTERS: tuple[tuple[str, str], ...] = (
    ("rx_octets", "received_octets"),
    ("rx_packets", "received_total_packets"),
    ("rx_errors", "received_error_packets"),
    ("rx_drop", "received_discarded_packets"),
    ("tx_octets", "transmitted_octets"),
    ("tx_packets", "transmitted_total_packets"),
    ("tx_errors", "transmitted_error_packets"),
    ("tx_drop", "transmitted_discarded_packets"),
)
"""Nova's NIC counter -> the neutral name stem (``_accumulated`` / ``_delta`` appended)."""

DISK_COUNTERS: tuple[tuple[str, str], ...] = (
    ("read_bytes", "octets_read"),
    ("write_bytes", "octets_write"),
    ("read_requests", "ops_read"),
    ("write_requests", "ops_write"),
)
"""Nova's disk counter -> the neutral rate stem (``_last`` / ``_avg`` appended)."""


def _count(value: Any) -> int | None:
    """A cumulative counter: a non-negative integer (libvirt's -1 means "not supported")."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if not 0 <= value < MAX_COUNTER:
        return None
    return int(value)


def _gauge(value: Any, high: float) -> float | None:
    """A finite, non-negative number up to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return float(value) if 0 <= value <= high else None


def _items(value: Any, limit: int) -> list[Mapping[str, Any]]:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        return []
    return [item for item in value[:limit] if isinstance(item, Mapping)]


def _ident(value: Any, fallback: str) -> str:
    if isinstance(value, bool) or value is None:
        return fallback
    if isinstance(value, int) and not -MAX_COUNTER < value < MAX_COUNTER:
        return fallback  # str() of a huge int is slow, or refused beyond 4300 digits
    if isinstance(value, int | str) and str(value).strip():
        return str(value)[:64]
    return fallback


def _number(value: float) -> int | float:
    """A JSON-friendly number: whole values as ints, others rounded to 3 decimals."""
    rounded = round(value, 3)
    return int(rounded) if rounded.is_integer() else rounded


@dataclass(frozen=True, slots=True)
class CpuSample:
    """One vCPU: cumulative time (ns) and Nova's utilisation (%), either may be missing."""

    id: str
    time_ns: int | None
    utilisation: float | None


@dataclass(frozen=True, slots=True)
class DiskSample:
    """One disk's cumulative counters (bytes and requests)."""

    read_bytes: int | None
    read_requests: int | None
    write_bytes: int | None
    write_requests: int | None

    def counter(self, name: str) -> int | None:
        """The counter called ``name`` in Nova's vocabulary."""
        return getattr(self, name)


@dataclass(frozen=True, slots=True)
class NicSample:
    """One NIC's cumulative counters, keyed by Nova's names (``rx_octets``...)."""

    id: str
    counters: tuple[tuple[str, int], ...]

    def counter(self, name: str) -> int | None:
        """The counter called ``name``, or None when Nova did not give it."""
        for key, value in self.counters:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Reading:
    """One diagnostics reading of one VM, taken at ``at_us`` (epoch microseconds)."""

    at_us: int
    uptime: int | None
    memory_max_mib: float | None
    memory_used_mib: float | None
    cpus: tuple[CpuSample, ...]
    disks: tuple[DiskSample, ...]
    nics: tuple[NicSample, ...]

    @classmethod
    def from_diagnostics(cls, body: Any, at_us: int) -> Reading | None:
        """Parse a 2.48+ diagnostics body; None when it holds nothing measurable."""
        if not isinstance(body, Mapping):
            return None
        memory = body.get("memory_details")
        memory = memory if isinstance(memory, Mapping) else {}
        cpus = tuple(
            CpuSample(
                id=_ident(item.get("id"), str(index)),
                time_ns=_count(item.get("time")),
                utilisation=_gauge(item.get("utilisation"), 1e6),
            )
            for index, item in enumerate(_items(body.get("cpu_details"), MAX_CPUS))
        )
        disks = tuple(
            DiskSample(
                read_bytes=_count(item.get("read_bytes")),
                read_requests=_count(item.get("read_requests")),
                write_bytes=_count(item.get("write_bytes")),
                write_requests=_count(item.get("write_requests")),
            )
            for item in _items(body.get("disk_details"), MAX_DISKS)
        )
        nics: list[NicSample] = []
        seen: set[str] = set()
        for index, item in enumerate(_items(body.get("nic_details"), MAX_NICS)):
            nic_id = _ident(item.get("mac_address"), f"nic{index}")
            if nic_id in seen:  # two NICs reported with one MAC: keep them apart
                nic_id = f"{nic_id}#{index}"
            seen.add(nic_id)
            counters = tuple(
                (name, value)
                for name, _stem in NIC_COUNTERS
                if (value := _count(item.get(name))) is not None
            )
            nics.append(NicSample(nic_id, counters))
        reading = cls(
            at_us=at_us,
            uptime=_count(body.get("uptime")),
            memory_max_mib=_gauge(memory.get("maximum"), MAX_MEMORY_MIB),
            memory_used_mib=_gauge(memory.get("used"), MAX_MEMORY_MIB),
            cpus=cpus,
            disks=disks,
            nics=tuple(nics),
        )
        empty = (
            not cpus
            and not disks
            and not nics
            and reading.memory_max_mib is None
            and reading.memory_used_mib is None
        )
        return None if empty else reading


def _restarted(prev: Reading, cur: Reading) -> bool:
    return prev.uptime is not None and cur.uptime is not None and cur.uptime < prev.uptime


def _spent(before: int | None, after: int | None) -> int | None:
    """CPU nanoseconds between two readings; None when unknown or reset."""
    if before is None or after is None or after < before:
        return None
    return after - before


def _cpu_entries(prev: Reading | None, cur: Reading, dt_us: int, reset: bool) -> list[dict]:
    before = {c.id: c for c in prev.cpus} if prev is not None and dt_us > 0 and not reset else {}
    entries = []
    for cpu in cur.cpus:
        usage: float | None = cpu.utilisation
        old = before.get(cpu.id)
        if usage is None and old is not None:
            spent = _spent(old.time_ns, cpu.time_ns)
            if spent is not None:
                usage = 100.0 * spent / (dt_us * 1000)
        if usage is None:
            continue
        usage = min(max(usage, 0.0), 100.0)
        entries.append(
            {"id": cpu.id, "percent_usage": _number(usage), "idle": _number(100.0 - usage)}
        )
    return entries


def _memory_entries(cur: Reading, server_id: str) -> list[dict]:
    maximum, used = cur.memory_max_mib, cur.memory_used_mib
    if maximum is None or used is None:
        return []
    entry: dict[str, Any] = {
        "vm_id": server_id,
        "configured_kib": _number(maximum * 1024),
        "used_kib": _number(used * 1024),
        "free_kib": _number(max(maximum - used, 0.0) * 1024),
    }
    if maximum > 0:
        entry["percent_usage"] = _number(min(used / maximum, 1.0) * 100)
    return [entry]


def _disk_entries(prev: Reading | None, cur: Reading, dt_us: int, reset: bool) -> list[dict]:
    if prev is None or dt_us <= 0 or reset:
        return []
    seconds = dt_us / 1_000_000
    entries = []
    for index, (old, new) in enumerate(zip(prev.disks, cur.disks, strict=False)):
        pairs = [(stem, old.counter(name), new.counter(name)) for name, stem in DISK_COUNTERS]
        known = [(stem, o, n) for stem, o, n in pairs if o is not None and n is not None]
        if any(n < o for _stem, o, n in known):
            continue  # this disk's counters were reset: its rates are unknown
        entry: dict[str, Any] = {"id": f"disk{index}"}
        for stem, o, n in known:
            rate = _number((n - o) / seconds)
            entry[f"{stem}_last"] = rate
            entry[f"{stem}_avg"] = rate
        if len(entry) > 1:
            entries.append(entry)
    return entries


def _nic_entries(prev: Reading | None, cur: Reading, dt_us: int, reset: bool) -> list[dict]:
    before = {n.id: n for n in prev.nics} if prev is not None and dt_us > 0 else {}
    entries = []
    for nic in cur.nics:
        entry: dict[str, Any] = {"id": nic.id, "suspect": False}
        for name, stem in NIC_COUNTERS:
            value = nic.counter(name)
            if value is not None:
                entry[f"{stem}_accumulated"] = value
        old = before.get(nic.id)
        if old is not None:
            pairs = [(stem, old.counter(name), nic.counter(name)) for name, stem in NIC_COUNTERS]
            known = [(stem, o, n) for stem, o, n in pairs if o is not None and n is not None]
            suspect = reset or any(n < o for _stem, o, n in known)
            entry["suspect"] = suspect
            for stem, o, n in known:
                # after a reset the counter restarted from 0: the new value is the delta
                entry[f"{stem}_delta"] = n if suspect else n - o
        entries.append(entry)
    return entries


def measurement_event(
    prev: Reading | None,
    cur: Reading,
    *,
    vimid: str,
    server_id: str,
    server_name: str,
    interval: float,
    counter: int,
    reporter: str,
    now_us: int,
    period_us: int | None = None,
) -> VesEvent | None:
    """The one measurement event of a VM for this period (see the module docstring).

    ``period_us`` is the boundary of the interval this reading is for (default: the one
    ``now_us`` falls in); a reading taken late in its interval still belongs to it.

    None only when the readings give nothing to report (no CPU, memory, disk or NIC value).
    """
    dt_us = cur.at_us - prev.at_us if prev is not None else 0
    usable_prev = prev if dt_us > 0 else None
    reset = usable_prev is not None and _restarted(usable_prev, cur)
    fields: dict[str, Any] = {
        "cpu": _cpu_entries(usable_prev, cur, dt_us, reset),
        "memory": _memory_entries(cur, server_id),
        "disk": _disk_entries(usable_prev, cur, dt_us, reset),
        "nic": _nic_entries(usable_prev, cur, dt_us, reset),
    }
    fields = {key: value for key, value in fields.items() if value}
    if not fields:
        return None
    step = interval_us(interval)
    fields["interval"] = _number(step / 1_000_000)
    # The period this reading belongs to, like the eventId's counter: one event per VM per
    # interval, each with its own start (rates still use the measured time between readings).
    start = period_us if period_us is not None else boundary_us(now_us, interval)
    return VesEvent(
        domain="measurement",
        event_id=f"measurement-{event_token(vimid)}-{event_token(server_id)}-{counter}",
        event_name=MEASUREMENT_EVENT_NAME,
        source_name=server_name or server_id,
        source_id=server_id,
        reporting_entity_name=reporter,
        start_epoch_us=start,
        last_epoch_us=max(now_us, start),
        sequence=0,
        priority="Normal",
        fields=fields,
    )


# -- values for threshold crossing -------------------------------------------------------------

METRIC_SOURCES: Mapping[str, tuple[str, str, str]] = {
    "cpu.percentUsage": ("cpu", "percent_usage", "mean"),
    "cpu.cpuIdle": ("cpu", "idle", "mean"),
    "memory.percentUsage": ("memory", "percent_usage", "first"),
    "memory.memoryUsed": ("memory", "used_kib", "first"),
    "memory.memoryFree": ("memory", "free_kib", "first"),
    "memory.memoryConfigured": ("memory", "configured_kib", "first"),
    "disk.diskOctetsReadLast": ("disk", "octets_read_last", "sum"),
    "disk.diskOctetsWriteLast": ("disk", "octets_write_last", "sum"),
    "disk.diskOpsReadLast": ("disk", "ops_read_last", "sum"),
    "disk.diskOpsWriteLast": ("disk", "ops_write_last", "sum"),
    "nic.receivedOctetsDelta": ("nic", "received_octets_delta", "sum"),
    "nic.transmittedOctetsDelta": ("nic", "transmitted_octets_delta", "sum"),
    "nic.receivedTotalPacketsDelta": ("nic", "received_total_packets_delta", "sum"),
    "nic.transmittedTotalPacketsDelta": ("nic", "transmitted_total_packets_delta", "sum"),
    "nic.receivedDiscardedPacketsDelta": ("nic", "received_discarded_packets_delta", "sum"),
    "nic.transmittedDiscardedPacketsDelta": (
        "nic",
        "transmitted_discarded_packets_delta",
        "sum",
    ),
    "nic.receivedErrorPacketsDelta": ("nic", "received_error_packets_delta", "sum"),
    "nic.transmittedErrorPacketsDelta": ("nic", "transmitted_error_packets_delta", "sum"),
}
"""Each ``KNOWN_METRICS`` name -> (array, neutral field, how devices combine)."""


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def metric_values(event_fields: Mapping[str, Any]) -> dict[str, float]:
    """The ``KNOWN_METRICS`` values of one measurement event's fields (absent when unknown).

    VM-wide values: CPU usage and idle averaged over the vCPUs, memory from the VM's entry
    (``memory.percentUsage`` = used / configured in percent), disk rates and NIC deltas
    summed over the devices that report them. A NIC marked ``suspect`` is left out, so that
    no threshold is judged on counters that were reset during the interval.
    """
    out: dict[str, float] = {}
    for metric, (array, key, how) in METRIC_SOURCES.items():
        entries = _items(event_fields.get(array), 10_000)
        if array == "nic":
            entries = [e for e in entries if e.get("suspect") is not True]
        values = [v for e in entries if (v := _finite(e.get(key))) is not None]
        if not values:
            continue
        if how == "mean":
            out[metric] = sum(values) / len(values)
        elif how == "sum":
            out[metric] = math.fsum(values)
        else:
            out[metric] = values[0]
    return out
