"""Pure VES encoding: a neutral ``VesEvent`` in, v5 or v7 JSON out; batch planning; byte sizes.

Nothing here reads a clock, makes an id or does I/O. The same event always encodes to the same
bytes, so a resent event is exactly the one first queued (same ``eventId`` and ``sequence``).

Versions: ``v5`` is VES 5.4.1 (schema CommonEventFormat 28.4.1, ``/eventListener/v5``) and
``v7`` is VES 7.2.1 (schema 30.2.1_ONAP, ``/eventListener/v7``).

``commonEventHeader``
    ``domain`` fault, heartbeat, measurement (v5 ``measurementsForVfScaling``), tca (both
    ``thresholdCrossingAlert``); ``eventId``, ``eventName``, ``sourceName``,
    ``reportingEntityName``, ``startEpochMicrosec``, ``lastEpochMicrosec``, ``sequence`` (ints),
    ``priority`` (High|Medium|Normal|Low); ``sourceId``, ``eventType`` (and
    ``reportingEntityId`` if the event has a ``reporting_entity_id``) only when set.
    ``version`` is the number 3.0 in v5 and the string "4.1" in v7, where
    ``vesEventListenerVersion`` "7.2.1" is added.

Neutral ``VesEvent.fields`` per domain. Unknown keys raise ``EncodeError`` (a typo would
otherwise be lost silently in v5 and rejected by the collector in v7); ``None`` means "not set";
fields marked *v7 only* are checked but left out of v5 events, whose schema has no place for them.
"text" values may be any scalar and are stringified; "number" values must be finite int/float.
An ``additional`` dict becomes a name/value array in v5 and a string hashMap in v7; its values
are stringified (bool -> "true"/"false", list/dict -> compact JSON) and ``None`` entries dropped.

fault (``faultFields``; ``faultFieldsVersion`` 2.0 in v5, "4.0" in v7)
    ``alarm_condition`` text*, ``specific_problem`` text*, ``severity``*
    (CRITICAL|MAJOR|MINOR|WARNING|NORMAL; NORMAL is the clear), ``source_type`` text*
    (e.g. virtualMachine, host, other), ``vf_status`` (Active [default], Idle, Preparing to
    terminate, Ready to terminate, Requesting termination), ``alarm_interface`` text
    (alarmInterfaceA), ``category`` text (eventCategory), ``additional`` dict
    (alarmAdditionalInformation).
heartbeat (``heartbeatFields``, left out when ``fields`` is empty, as in the spec's samples;
    ``heartbeatFieldsVersion`` 1.0 in v5, "3.0" in v7)
    ``interval`` integer seconds* (heartbeatInterval), ``additional`` dict (additionalFields).
measurement (v5 ``measurementsForVfScalingFields`` with ``measurementsForVfScalingVersion`` 2.0;
    v7 ``measurementFields`` with ``measurementFieldsVersion`` "4.0")
    ``interval`` seconds* (measurementInterval), ``additional`` dict (additionalFields), and
    lists of dicts (see ``CPU_FIELDS`` etc. for the exact per-version names):

    - ``cpu`` (cpuUsageArray): ``id``*, ``percent_usage``*, ``idle``, ``user``, ``system``,
      ``nice``, ``interrupt``, ``soft_irq``, ``steal``, ``wait`` (percentages); v7 only:
      ``capacity_contention``, ``demand_avg``, ``demand_mhz``, ``demand_pct``, ``latency_avg``,
      ``overhead_avg``, ``swap_wait_time``.
    - ``memory`` (memoryUsageArray, KiB): ``vm_id``*, ``free_kib``*, ``used_kib``*,
      ``configured_kib``, ``buffered_kib``, ``cached_kib``, ``slab_reclaimable_kib``,
      ``slab_unreclaimable_kib``; v7 only: ``demand_kib``, ``latency_avg``, ``shared_avg``,
      ``swap_in_avg_kib``, ``swap_in_rate_avg``, ``swap_out_avg_kib``, ``swap_out_rate_avg``,
      ``swap_used_avg_kib``, ``percent_usage`` (percentMemoryUsage).
    - ``disk`` (diskUsageArray): ``id``*, and ``{m}_{s}`` for m in io_time, merged_read,
      merged_write, octets_read, octets_write, ops_read, ops_write, pending_operations,
      time_read, time_write and s in avg, last, max, min (``octets_read_last`` ->
      diskOctetsReadLast); v7 only: ``bus_resets``, ``commands_aborted``, ``commands_avg``,
      ``flush_requests``, ``flush_time``, ``read_commands_avg``, ``time`` (diskTime),
      ``total_read_latency_avg``, ``total_write_latency_avg``, ``weighted_io_time_{s}``,
      ``write_commands_avg``.
    - ``nic`` (v5 vNicPerformanceArray/vNicIdentifier, v7 nicPerformanceArray/nicIdentifier):
      ``id``*, ``suspect`` bool (valuesAreSuspect "true"/"false"; default false), and
      ``{d}_{k}_packets_{a}`` / ``{d}_octets_{a}`` for d in received, transmitted, k in
      broadcast, discarded, error, multicast, unicast, total and a in accumulated, delta
      (``received_octets_delta`` -> receivedOctetsDelta); v7 only: ``{d}_percent_discard``,
      ``{d}_percent_error``, ``{d}_utilization``, ``speed_mbps`` (speed),
      ``administrative_state``, ``operational_state`` (inService|outOfService).
tca (``thresholdCrossingAlertFields``; ``thresholdCrossingFieldsVersion`` 2.0 in v5, "4.0" in v7)
    ``alert_action``* (SET|CONT|CLEAR), ``alert_description`` text*, ``alert_type``*
    (CARD-ANOMALY|ELEMENT-ANOMALY|INTERFACE-ANOMALY|SERVICE-ANOMALY), ``event_severity``*
    (as fault ``severity``), ``collection_timestamp`` and ``event_start_timestamp`` (a string
    sent as is, or epoch microseconds formatted as RFC 2822 in UTC, the format the schema
    describes; default: the event's ``last_epoch_us`` / ``start_epoch_us``), ``counters`` list
    of {``name``*, ``criticality``* (CRIT|MAJ), ``threshold_crossed`` text*, ``value`` text*}
    (additionalParameters: v5 ``{criticality, name, thresholdCrossed, value}``, v7
    ``{criticality, hashMap: {name: value}, thresholdCrossed}``; default empty),
    ``associated_alert_id`` text or list of text (associatedAlertIdList), ``alert_value``,
    ``interface_name``, ``data_collector``, ``element_type``, ``network_service``,
    ``possible_root_cause`` (text), ``additional`` dict (additionalFields).

(* = required.) Sending: ``dumps`` gives the bytes of an encoded event; ``plan_batches`` splits
pending ``(encoded_domain(e), len(dumps(e)))`` pairs into slices, each sent as
``batch_body(events[s])`` (or, for one event, ``single_body``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from vesagent.errors import PermanentError
from vesagent.model import VesEvent

VERSIONS: tuple[str, ...] = ("v5", "v7")
DOMAINS: tuple[str, ...] = ("fault", "heartbeat", "measurement", "tca")
PRIORITIES: tuple[str, ...] = ("High", "Medium", "Normal", "Low")
SEVERITIES: tuple[str, ...] = ("CRITICAL", "MAJOR", "MINOR", "WARNING", "NORMAL")
VF_STATUSES: tuple[str, ...] = (
    "Active",
    "Idle",
    "Preparing to terminate",
    "Ready to terminate",
    "Requesting termination",
)
ALERT_ACTIONS: tuple[str, ...] = ("SET", "CONT", "CLEAR")
ALERT_TYPES: tuple[str, ...] = (
    "CARD-ANOMALY",
    "ELEMENT-ANOMALY",
    "INTERFACE-ANOMALY",
    "SERVICE-ANOMALY",
)
CRITICALITIES: tuple[str, ...] = ("CRIT", "MAJ")
NIC_STATES: tuple[str, ...] = ("inService", "outOfService")

MAX_BATCH_BYTES = 1_000_000
"""Keep request bodies at or under 1 MB: the v5 limit and v7's strong recommendation."""
MAX_BATCH_EVENTS = 500
"""Events per batch; bounds the work one rejected batch throws back."""
SINGLE_OVERHEAD = len(b'{"event":}')
"""Bytes ``single_body`` adds around one encoded event."""
BATCH_OVERHEAD = len(b'{"eventList":[]}')
"""Bytes ``batch_body`` adds around its events (plus one comma between two events)."""


class EncodeError(PermanentError, ValueError):
    """The event cannot be encoded (a producer bug); the message names the neutral field."""


@dataclass(frozen=True)
class Block:
    """Where a domain's fields go in one version: the block, its version key and value."""

    name: str
    version_key: str
    version: float | str


@dataclass(frozen=True)
class Dialect:
    """The parts of the event format that differ between the listener versions."""

    header_version: float | str
    listener_version: str | None
    domains: Mapping[str, str]
    blocks: Mapping[str, Block]


DIALECTS: Mapping[str, Dialect] = {
    "v5": Dialect(
        header_version=3.0,
        listener_version=None,
        domains={
            "fault": "fault",
            "heartbeat": "heartbeat",
            "measurement": "measurementsForVfScaling",
            "tca": "thresholdCrossingAlert",
        },
        blocks={
            "fault": Block("faultFields", "faultFieldsVersion", 2.0),
            "heartbeat": Block("heartbeatFields", "heartbeatFieldsVersion", 1.0),
            "measurement": Block(
                "measurementsForVfScalingFields", "measurementsForVfScalingVersion", 2.0
            ),
            "tca": Block("thresholdCrossingAlertFields", "thresholdCrossingFieldsVersion", 2.0),
        },
    ),
    "v7": Dialect(
        header_version="4.1",
        listener_version="7.2.1",
        domains={
            "fault": "fault",
            "heartbeat": "heartbeat",
            "measurement": "measurement",
            "tca": "thresholdCrossingAlert",
        },
        blocks={
            "fault": Block("faultFields", "faultFieldsVersion", "4.0"),
            "heartbeat": Block("heartbeatFields", "heartbeatFieldsVersion", "3.0"),
            "measurement": Block("measurementFields", "measurementFieldsVersion", "4.0"),
            "tca": Block("thresholdCrossingAlertFields", "thresholdCrossingFieldsVersion", "4.0"),
        },
    ),
}
"""The two listener versions vesagent speaks, by the name used in URLs (``v5``, ``v7``)."""


@dataclass(frozen=True)
class Field:
    """One neutral key and the schema field it becomes in v5 and v7 (None: not in that version).

    ``kind`` is text, number, integer, flag, choice, additional, timestamp, ids, items
    (a list of dicts described by ``items``) or counters (items, reshaped in v7).
    """

    neutral: str
    v5: str | None
    v7: str | None
    kind: str = "number"
    required: bool = False
    choices: tuple[str, ...] = ()
    default: Any = None
    items: tuple[Field, ...] = ()

    def target(self, version: str) -> str | None:
        """The schema name in ``version``."""
        return self.v5 if version == "v5" else self.v7


def _both(neutral: str, ves: str, kind: str = "number", **kw: Any) -> Field:
    return Field(neutral, ves, ves, kind, **kw)


def _v7(neutral: str, ves: str, kind: str = "number", **kw: Any) -> Field:
    return Field(neutral, None, ves, kind, **kw)


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


CPU_FIELDS: tuple[Field, ...] = (
    _both("id", "cpuIdentifier", "text", required=True),
    _both("percent_usage", "percentUsage", required=True),
    _both("idle", "cpuIdle"),
    _both("user", "cpuUsageUser"),
    _both("system", "cpuUsageSystem"),
    _both("nice", "cpuUsageNice"),
    _both("interrupt", "cpuUsageInterrupt"),
    _both("soft_irq", "cpuUsageSoftIrq"),
    _both("steal", "cpuUsageSteal"),
    _both("wait", "cpuWait"),
    _v7("capacity_contention", "cpuCapacityContention"),
    _v7("demand_avg", "cpuDemandAvg"),
    _v7("demand_mhz", "cpuDemandMhz"),
    _v7("demand_pct", "cpuDemandPct"),
    _v7("latency_avg", "cpuLatencyAvg"),
    _v7("overhead_avg", "cpuOverheadAvg"),
    _v7("swap_wait_time", "cpuSwapWaitTime"),
)

MEMORY_FIELDS: tuple[Field, ...] = (
    _both("vm_id", "vmIdentifier", "text", required=True),
    _both("free_kib", "memoryFree", required=True),
    _both("used_kib", "memoryUsed", required=True),
    _both("configured_kib", "memoryConfigured"),
    _both("buffered_kib", "memoryBuffered"),
    _both("cached_kib", "memoryCached"),
    _both("slab_reclaimable_kib", "memorySlabRecl"),
    _both("slab_unreclaimable_kib", "memorySlabUnrecl"),
    _v7("demand_kib", "memoryDemand"),
    _v7("latency_avg", "memoryLatencyAvg"),
    _v7("shared_avg", "memorySharedAvg"),
    _v7("swap_in_avg_kib", "memorySwapInAvg"),
    _v7("swap_in_rate_avg", "memorySwapInRateAvg"),
    _v7("swap_out_avg_kib", "memorySwapOutAvg"),
    _v7("swap_out_rate_avg", "memorySwapOutRateAvg"),
    _v7("swap_used_avg_kib", "memorySwapUsedAvg"),
    _v7("percent_usage", "percentMemoryUsage"),
)

_STATS = ("avg", "last", "max", "min")
_DISK_METRICS = (
    "io_time",
    "merged_read",
    "merged_write",
    "octets_read",
    "octets_write",
    "ops_read",
    "ops_write",
    "pending_operations",
    "time_read",
    "time_write",
)
DISK_FIELDS: tuple[Field, ...] = (
    _both("id", "diskIdentifier", "text", required=True),
    *(_both(f"{m}_{s}", f"disk{_camel(m)}{_camel(s)}") for m in _DISK_METRICS for s in _STATS),
    _v7("bus_resets", "diskBusResets"),
    _v7("commands_aborted", "diskCommandsAborted"),
    _v7("commands_avg", "diskCommandsAvg"),
    _v7("flush_requests", "diskFlushRequests"),
    _v7("flush_time", "diskFlushTime"),
    _v7("read_commands_avg", "diskReadCommandsAvg"),
    _v7("time", "diskTime"),
    _v7("total_read_latency_avg", "diskTotalReadLatencyAvg"),
    _v7("total_write_latency_avg", "diskTotalWriteLatencyAvg"),
    *(_v7(f"weighted_io_time_{s}", f"diskWeightedIoTime{_camel(s)}") for s in _STATS),
    _v7("write_commands_avg", "diskWriteCommandsAvg"),
)

_DIRECTIONS = ("received", "transmitted")
_PACKET_KINDS = ("broadcast", "discarded", "error", "multicast", "unicast", "total")
_ACCUMULATION = ("accumulated", "delta")
NIC_FIELDS: tuple[Field, ...] = (
    Field("id", "vNicIdentifier", "nicIdentifier", "text", required=True),
    _both("suspect", "valuesAreSuspect", "flag", required=True, default=False),
    *(
        _both(f"{d}_{k}_packets_{a}", f"{d}{_camel(k)}Packets{_camel(a)}")
        for d in _DIRECTIONS
        for k in _PACKET_KINDS
        for a in _ACCUMULATION
    ),
    *(
        _both(f"{d}_octets_{a}", f"{d}Octets{_camel(a)}")
        for d in _DIRECTIONS
        for a in _ACCUMULATION
    ),
    *(
        _v7(f"{d}_{m}", f"{d}{_camel(m)}")
        for d in _DIRECTIONS
        for m in ("percent_discard", "percent_error", "utilization")
    ),
    _v7("speed_mbps", "speed"),
    _v7("administrative_state", "administrativeState", "choice", choices=NIC_STATES),
    _v7("operational_state", "operationalState", "choice", choices=NIC_STATES),
)

FAULT_FIELDS: tuple[Field, ...] = (
    _both("alarm_condition", "alarmCondition", "text", required=True),
    _both("specific_problem", "specificProblem", "text", required=True),
    _both("severity", "eventSeverity", "choice", required=True, choices=SEVERITIES),
    _both("source_type", "eventSourceType", "text", required=True),
    _both("vf_status", "vfStatus", "choice", choices=VF_STATUSES, default="Active"),
    _both("alarm_interface", "alarmInterfaceA", "text"),
    _both("category", "eventCategory", "text"),
    _both("additional", "alarmAdditionalInformation", "additional"),
)

HEARTBEAT_FIELDS: tuple[Field, ...] = (
    _both("interval", "heartbeatInterval", "integer"),
    _both("additional", "additionalFields", "additional"),
)

MEASUREMENT_FIELDS: tuple[Field, ...] = (
    _both("interval", "measurementInterval", required=True),
    _both("cpu", "cpuUsageArray", "items", items=CPU_FIELDS),
    _both("memory", "memoryUsageArray", "items", items=MEMORY_FIELDS),
    _both("disk", "diskUsageArray", "items", items=DISK_FIELDS),
    Field("nic", "vNicPerformanceArray", "nicPerformanceArray", "items", items=NIC_FIELDS),
    _both("additional", "additionalFields", "additional"),
)

COUNTER_FIELDS: tuple[Field, ...] = (
    _both("name", "name", "text", required=True),
    _both("criticality", "criticality", "choice", required=True, choices=CRITICALITIES),
    _both("threshold_crossed", "thresholdCrossed", "text", required=True),
    _both("value", "value", "text", required=True),
)

TCA_FIELDS: tuple[Field, ...] = (
    _both("alert_action", "alertAction", "choice", required=True, choices=ALERT_ACTIONS),
    _both("alert_description", "alertDescription", "text", required=True),
    _both("alert_type", "alertType", "choice", required=True, choices=ALERT_TYPES),
    _both("event_severity", "eventSeverity", "choice", required=True, choices=SEVERITIES),
    _both("collection_timestamp", "collectionTimestamp", "timestamp", required=True),
    _both("event_start_timestamp", "eventStartTimestamp", "timestamp", required=True),
    _both(
        "counters",
        "additionalParameters",
        "counters",
        required=True,
        items=COUNTER_FIELDS,
        default=(),
    ),
    _both("associated_alert_id", "associatedAlertIdList", "ids"),
    _both("alert_value", "alertValue", "text"),
    _both("interface_name", "interfaceName", "text"),
    _both("data_collector", "dataCollector", "text"),
    _both("element_type", "elementType", "text"),
    _both("network_service", "networkService", "text"),
    _both("possible_root_cause", "possibleRootCause", "text"),
    _both("additional", "additionalFields", "additional"),
)

DOMAIN_FIELDS: Mapping[str, tuple[Field, ...]] = {
    "fault": FAULT_FIELDS,
    "heartbeat": HEARTBEAT_FIELDS,
    "measurement": MEASUREMENT_FIELDS,
    "tca": TCA_FIELDS,
}
"""The neutral vocabulary of ``VesEvent.fields``, per domain."""


def _compact(obj: Any, **kw: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True, **kw)


# -- values -------------------------------------------------------------------------------------


def _text(value: Any, path: str) -> str:
    """Any scalar as the string a VES string field or hashMap value wants."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        # JSON spelling, not Python's "True", so consumers can parse it back
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping | list | tuple):
        return _compact(value, default=str)
    return str(value)


def _number(value: Any, path: str) -> int | float:
    # bool is an int in Python but not a number to JSON Schema, so the collector would reject it
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EncodeError(f"{path}: expected a number, got {type(value).__name__} {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise EncodeError(f"{path}: expected a finite number, got {value!r}")
    return value


def _integer(value: Any, path: str) -> int:
    number = _number(value, path)
    if isinstance(number, float):
        if not number.is_integer():
            raise EncodeError(f"{path}: expected an integer, got {number!r}")
        # the schema says "integer", and Python's Draft4 check rejects 60.0
        return int(number)
    return number


def _choice(value: Any, choices: tuple[str, ...], path: str) -> str:
    if value not in choices or not isinstance(value, str):
        raise EncodeError(f"{path}: {value!r} is not one of {', '.join(choices)}")
    return value


def _flag(value: Any, path: str) -> str:
    if not isinstance(value, bool):
        raise EncodeError(f"{path}: expected a bool, got {value!r}")
    return "true" if value else "false"


def rfc2822(epoch_us: int) -> str:
    """Epoch microseconds as the RFC 2822 UTC date the TCA timestamps use.

    >>> rfc2822(1268479745000000)
    'Sat, 13 Mar 2010 11:29:05 +0000'
    """
    try:
        moment = datetime.fromtimestamp(epoch_us // 1_000_000, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise EncodeError(f"epoch {epoch_us!r} is out of the calendar's range") from exc
    return format_datetime(moment)


def _timestamp(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    epoch_us = _integer(value, path)
    try:
        return rfc2822(epoch_us)
    except EncodeError as exc:
        raise EncodeError(f"{path}: {exc}") from None


def _ids(value: Any, path: str) -> list[str]:
    if isinstance(value, list | tuple):
        return [_text(item, f"{path}[{i}]") for i, item in enumerate(value)]
    return [_text(value, path)]


def _additional(value: Any, version: str, path: str) -> list[dict[str, str]] | dict[str, str]:
    """A neutral dict as v5 name/value pairs or a v7 hashMap of strings (None values dropped)."""
    if not isinstance(value, Mapping):
        raise EncodeError(f"{path}: expected a dict, got {type(value).__name__}")
    pairs = [(_text(k, path), _text(v, f"{path}.{k}")) for k, v in value.items() if v is not None]
    if version == "v5":
        return [{"name": name, "value": text} for name, text in pairs]
    return dict(pairs)


# -- blocks -------------------------------------------------------------------------------------


def _convert(spec: Field, value: Any, version: str, path: str) -> Any:
    match spec.kind:
        case "text":
            return _text(value, path)
        case "number":
            return _number(value, path)
        case "integer":
            return _integer(value, path)
        case "flag":
            return _flag(value, path)
        case "choice":
            return _choice(value, spec.choices, path)
        case "timestamp":
            return _timestamp(value, path)
        case "ids":
            return _ids(value, path)
        case "additional":
            return _additional(value, version, path)
        case "items":
            return _items(spec.items, value, version, path)
        case "counters":
            return _counters(_items(spec.items, value, version, path), version)
    raise AssertionError(f"unknown field kind {spec.kind!r}")


def _block(table: tuple[Field, ...], source: Any, version: str, path: str) -> dict[str, Any]:
    """Translate one neutral dict with ``table``; strict about unknown and missing keys."""
    if not isinstance(source, Mapping):
        raise EncodeError(f"{path}: expected a dict, got {type(source).__name__}")
    known = {spec.neutral for spec in table}
    unknown = sorted(str(key) for key in source if key not in known)
    if unknown:
        raise EncodeError(
            f"{path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    out: dict[str, Any] = {}
    for spec in table:
        value = source.get(spec.neutral)
        if value is None:
            value = spec.default
        if value is None:
            if spec.required:
                raise EncodeError(f"{path}.{spec.neutral}: required")
            continue
        # convert before dropping a v7-only field, so bad data fails in both versions alike
        converted = _convert(spec, value, version, f"{path}.{spec.neutral}")
        target = spec.target(version)
        if target is None or (not spec.required and converted in ([], {})):
            continue
        out[target] = converted
    return out


def _items(table: tuple[Field, ...], value: Any, version: str, path: str) -> list[dict[str, Any]]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise EncodeError(f"{path}: expected a list of dicts, got {type(value).__name__}")
    return [_block(table, item, version, f"{path}[{i}]") for i, item in enumerate(value)]


def _counters(encoded: list[dict[str, Any]], version: str) -> list[dict[str, Any]]:
    if version == "v5":
        return encoded
    # v7 replaced the counter's name and value by a one-entry hashMap {name: value}
    return [
        {
            "criticality": c["criticality"],
            "hashMap": {c["name"]: c["value"]},
            "thresholdCrossed": c["thresholdCrossed"],
        }
        for c in encoded
    ]


def _domain_block(event: VesEvent, version: str) -> dict[str, Any]:
    """``{"<domain>Fields": {...}}``, or ``{}`` for a heartbeat without fields."""
    source: Mapping[str, Any] = event.fields
    if event.domain == "tca" and isinstance(event.fields, Mapping):
        # the schema requires both timestamps; the header's epochs are the natural default
        source = {
            "collection_timestamp": event.last_epoch_us,
            "event_start_timestamp": event.start_epoch_us,
            **{k: v for k, v in event.fields.items() if v is not None},
        }
    block = _block(DOMAIN_FIELDS[event.domain], source, version, "fields")
    if event.domain == "heartbeat":
        if not block:
            return {}
        if "heartbeatInterval" not in block:
            raise EncodeError("fields.interval: required when heartbeat fields are given")
    where = DIALECTS[version].blocks[event.domain]
    return {where.name: {where.version_key: where.version, **block}}


def _header(event: VesEvent, version: str) -> dict[str, Any]:
    dialect = DIALECTS[version]
    header: dict[str, Any] = {
        "domain": dialect.domains[event.domain],
        "eventId": _text(event.event_id, "event_id"),
        "eventName": _text(event.event_name, "event_name"),
        "sourceName": _text(event.source_name, "source_name"),
        "reportingEntityName": _text(event.reporting_entity_name, "reporting_entity_name"),
        "startEpochMicrosec": _integer(event.start_epoch_us, "start_epoch_us"),
        "lastEpochMicrosec": _integer(event.last_epoch_us, "last_epoch_us"),
        "sequence": _integer(event.sequence, "sequence"),
        "priority": _choice(event.priority, PRIORITIES, "priority"),
        "version": dialect.header_version,
    }
    if dialect.listener_version is not None:
        header["vesEventListenerVersion"] = dialect.listener_version
    # reporting_entity_id is read if the model grows it; VesEvent does not have it today
    optional = {
        "sourceId": event.source_id,
        "eventType": event.event_type,
        "reportingEntityId": getattr(event, "reporting_entity_id", None),
    }
    for name, value in optional.items():
        if value is not None:
            header[name] = _text(value, name)
    return header


# -- public API ---------------------------------------------------------------------------------


def encode(event: VesEvent, version: str) -> dict[str, Any]:
    """The VES ``event`` object (what goes inside ``{"event": ...}``) for ``v5`` or ``v7``.

    Raises ``EncodeError`` for an unknown version or domain and for fields outside the
    vocabulary of the module docstring (unknown key, missing required key, wrong type or enum).
    """
    if version not in DIALECTS:
        raise EncodeError(f"unknown VES version {version!r}; known: {', '.join(VERSIONS)}")
    if event.domain not in DOMAIN_FIELDS:
        raise EncodeError(f"unknown domain {event.domain!r}; known: {', '.join(DOMAINS)}")
    return {"commonEventHeader": _header(event, version), **_domain_block(event, version)}


def encoded_domain(encoded: Mapping[str, Any]) -> str:
    """The VES ``domain`` of an encoded event: the batch key for ``plan_batches``."""
    return encoded["commonEventHeader"]["domain"]


def single_body(encoded: Mapping[str, Any]) -> dict[str, Any]:
    """The request body for ``POST .../eventListener/vN``."""
    return {"event": encoded}


def batch_body(encoded: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The request body for ``POST .../eventListener/vN/eventBatch``.

    Refuses an empty list: the collector's one-domain check fails on it (400).
    """
    if not encoded:
        raise ValueError("a VES batch needs at least one event")
    return {"eventList": list(encoded)}


def dumps(obj: Any) -> bytes:
    """Compact, deterministic UTF-8 JSON (sorted keys, no spaces, no NaN).

    Sizes add up: ``len(dumps(batch_body(es))) == batch_body_size([len(dumps(e)) for e in es])``.
    A lone surrogate (from badly escaped upstream JSON) cannot be UTF-8 encoded; it is written
    as the JSON escape ``\\udXXX`` instead of failing, which keeps that additivity.
    """
    return _compact(obj, allow_nan=False).encode("utf-8", errors="backslashreplace")


def single_body_size(size: int) -> int:
    """Bytes of ``dumps(single_body(e))`` for an event of ``len(dumps(e)) == size``."""
    return SINGLE_OVERHEAD + size


def batch_body_size(sizes: Sequence[int]) -> int:
    """Bytes of ``dumps(batch_body(es))`` for events of the given ``len(dumps(e))``."""
    return BATCH_OVERHEAD + sum(sizes) + max(len(sizes) - 1, 0)


def plan_batches(
    items: Sequence[tuple[str, int]],
    max_bytes: int = MAX_BATCH_BYTES,
    max_events: int = MAX_BATCH_EVENTS,
) -> list[slice]:
    """Split pending events, in order, into runs that can each be sent as one batch.

    ``items`` are ``(domain, size)`` pairs: the batch key (``encoded_domain``) and
    ``len(dumps(event))``. The slices cover ``items`` in order without gaps. A run is greedy:
    it grows while the next item has the same domain (the collector refuses mixed batches),
    the run stays at most ``max_events`` long, and ``batch_body_size`` of the run stays at most
    ``max_bytes``. An item too big for any batch gets a slice of its own, so the sender sees the
    collector's verdict on it instead of stalling the queue.
    """
    if max_bytes < 1 or max_events < 1:
        raise ValueError("max_bytes and max_events must be positive")
    plan: list[slice] = []
    start = 0
    run_domain = ""
    run_bytes = 0
    for index, (domain, size) in enumerate(items):
        if size < 0:
            raise ValueError(f"items[{index}]: negative size {size}")
        if index > start:
            grown = run_bytes + 1 + size  # a comma, then the event
            if domain == run_domain and index - start < max_events and grown <= max_bytes:
                run_bytes = grown
                continue
            plan.append(slice(start, index))
        start, run_domain, run_bytes = index, domain, BATCH_OVERHEAD + size
    if start < len(items):
        plan.append(slice(start, len(items)))
    return plan
