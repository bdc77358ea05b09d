"""Tests of the pure VES encoding: v5/v7 shapes, schema validity, dumps and batch planning."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vesagent.errors import PermanentError
from vesagent.model import VesEvent
from vesagent.ves_client import encode as enc
from vesagent.ves_client.encode import (
    BATCH_OVERHEAD,
    CPU_FIELDS,
    DISK_FIELDS,
    DOMAIN_FIELDS,
    FAULT_FIELDS,
    HEARTBEAT_FIELDS,
    MEMORY_FIELDS,
    NIC_FIELDS,
    SINGLE_OVERHEAD,
    TCA_FIELDS,
    VERSIONS,
    EncodeError,
    Field,
    batch_body,
    batch_body_size,
    dumps,
    encode,
    encoded_domain,
    plan_batches,
    rfc2822,
    single_body,
    single_body_size,
)
from vesagent.ves_schema import errors, schema

START = 1_700_000_000_000_000
LAST = 1_700_000_300_000_000


def make(domain: str, fields: dict[str, Any] | None = None, **header: Any) -> VesEvent:
    """A VesEvent with a fixed header, overridable per test."""
    base: dict[str, Any] = {
        "event_id": "fault-0001",
        "event_name": "Fault_vesagent_VMStateChange",
        "source_name": "vm-01",
        "reporting_entity_name": "vesagent",
        "start_epoch_us": START,
        "last_epoch_us": LAST,
        "sequence": 1,
    }
    base.update(header)
    return VesEvent(domain=domain, fields=fields or {}, **base)


def assert_valid(encoded: dict[str, Any], version: str) -> None:
    """The event validates alone and inside a batch of two."""
    assert errors(single_body(encoded), version) == []
    assert errors(batch_body([encoded, encoded]), version) == []


FAULT = {
    "alarm_condition": "VMStateError",
    "specific_problem": "VM in ERROR state",
    "severity": "CRITICAL",
    "source_type": "virtualMachine",
    "additional": {"vimid": "owner_region", "cpus": 4, "pinned": True, "gone": None},
}
HEARTBEAT = {"interval": 60, "additional": {"agent": "vesagent"}}
MEASUREMENT = {
    "interval": 300,
    "cpu": [{"id": "all", "percent_usage": 12.5, "idle": 87.5, "demand_mhz": 100}],
    "memory": [{"vm_id": "vm-01", "free_kib": 1024, "used_kib": 2048, "percent_usage": 66.6}],
    "disk": [{"id": "vda", "octets_read_last": 10, "ops_write_max": 2, "time": 7}],
    "nic": [
        {
            "id": "tap0",
            "suspect": False,
            "received_octets_delta": 100,
            "transmitted_total_packets_accumulated": 5,
            "speed_mbps": 1000,
            "administrative_state": "inService",
        }
    ],
    "additional": {"flavor": "m1.small"},
}
TCA = {
    "alert_action": "SET",
    "alert_description": "CPU-HIGH",
    "alert_type": "ELEMENT-ANOMALY",
    "event_severity": "MAJOR",
    "counters": [
        {"name": "cpu.percentUsage", "criticality": "MAJ", "threshold_crossed": 90, "value": 95.5}
    ],
    "associated_alert_id": "fault-0001",
}
SAMPLES = {"fault": FAULT, "heartbeat": HEARTBEAT, "measurement": MEASUREMENT, "tca": TCA}


# -- commonEventHeader --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("v5", {"version": 3.0}),
        ("v7", {"version": "4.1", "vesEventListenerVersion": "7.2.1"}),
    ],
)
def test_header_versions_and_required_fields(version: str, expected: dict[str, Any]) -> None:
    """The header carries the right version fields, with the right JSON types, per version."""
    header = encode(make("fault", FAULT), version)["commonEventHeader"]
    assert header == {
        "domain": "fault",
        "eventId": "fault-0001",
        "eventName": "Fault_vesagent_VMStateChange",
        "sourceName": "vm-01",
        "reportingEntityName": "vesagent",
        "startEpochMicrosec": START,
        "lastEpochMicrosec": LAST,
        "sequence": 1,
        "priority": "Normal",
        **expected,
    }
    assert type(header["version"]) is type(expected["version"])


@pytest.mark.parametrize("version", VERSIONS)
def test_header_integers_stay_integers(version: str) -> None:
    """Integral floats become ints (Draft4 rejects 1.0 for "integer"); ints are untouched."""
    event = make("fault", FAULT, start_epoch_us=float(START), sequence=2.0)
    header = encode(event, version)["commonEventHeader"]
    assert type(header["startEpochMicrosec"]) is int
    assert type(header["sequence"]) is int
    assert b'"sequence":2,' in dumps(header)
    with pytest.raises(EncodeError, match="sequence"):
        encode(make("fault", FAULT, sequence=1.5), version)


@pytest.mark.parametrize("version", VERSIONS)
def test_header_optional_fields_only_when_set(version: str) -> None:
    """sourceId and eventType appear only when the event sets them."""
    bare = encode(make("fault", FAULT), version)["commonEventHeader"]
    assert "sourceId" not in bare and "eventType" not in bare and "reportingEntityId" not in bare
    full = encode(
        make("fault", FAULT, source_id="uuid-1", event_type="guestOS", priority="High"), version
    )
    assert full["commonEventHeader"]["sourceId"] == "uuid-1"
    assert full["commonEventHeader"]["eventType"] == "guestOS"
    assert full["commonEventHeader"]["priority"] == "High"
    assert_valid(full, version)


@pytest.mark.parametrize("priority", ["normal", "NORMAL", "Urgent", ""])
def test_priority_is_case_sensitive(priority: str) -> None:
    """Only High, Medium, Normal, Low are accepted (the collector rejects "normal")."""
    with pytest.raises(EncodeError, match="priority"):
        encode(make("fault", FAULT, priority=priority), "v7")


@pytest.mark.parametrize(
    ("domain", "version", "header_domain", "block", "version_key", "block_version"),
    [
        ("fault", "v5", "fault", "faultFields", "faultFieldsVersion", 2.0),
        ("fault", "v7", "fault", "faultFields", "faultFieldsVersion", "4.0"),
        ("heartbeat", "v5", "heartbeat", "heartbeatFields", "heartbeatFieldsVersion", 1.0),
        ("heartbeat", "v7", "heartbeat", "heartbeatFields", "heartbeatFieldsVersion", "3.0"),
        (
            "measurement",
            "v5",
            "measurementsForVfScaling",
            "measurementsForVfScalingFields",
            "measurementsForVfScalingVersion",
            2.0,
        ),
        (
            "measurement",
            "v7",
            "measurement",
            "measurementFields",
            "measurementFieldsVersion",
            "4.0",
        ),
        (
            "tca",
            "v5",
            "thresholdCrossingAlert",
            "thresholdCrossingAlertFields",
            "thresholdCrossingFieldsVersion",
            2.0,
        ),
        (
            "tca",
            "v7",
            "thresholdCrossingAlert",
            "thresholdCrossingAlertFields",
            "thresholdCrossingFieldsVersion",
            "4.0",
        ),
    ],
)
def test_domain_names_and_block_versions(
    domain: str,
    version: str,
    header_domain: str,
    block: str,
    version_key: str,
    block_version: float | str,
) -> None:
    """Each domain gets its version's header domain, block name and block version (typed)."""
    encoded = encode(make(domain, SAMPLES[domain]), version)
    assert encoded["commonEventHeader"]["domain"] == header_domain
    assert encoded_domain(encoded) == header_domain
    assert set(encoded) == {"commonEventHeader", block}
    assert encoded[block][version_key] == block_version
    assert type(encoded[block][version_key]) is type(block_version)
    assert_valid(encoded, version)


# -- fault --------------------------------------------------------------------------------------


def test_fault_v5_exact() -> None:
    """v5 fault: numeric block version, name/value array of stringified additional values."""
    assert encode(make("fault", FAULT), "v5")["faultFields"] == {
        "faultFieldsVersion": 2.0,
        "alarmCondition": "VMStateError",
        "specificProblem": "VM in ERROR state",
        "eventSeverity": "CRITICAL",
        "eventSourceType": "virtualMachine",
        "vfStatus": "Active",
        "alarmAdditionalInformation": [
            {"name": "vimid", "value": "owner_region"},
            {"name": "cpus", "value": "4"},
            {"name": "pinned", "value": "true"},
        ],
    }


def test_fault_v7_exact() -> None:
    """v7 fault: string block version, hashMap of strings, optional fields when set."""
    fields = {**FAULT, "alarm_interface": "eth0", "category": "link", "vf_status": "Idle"}
    assert encode(make("fault", fields), "v7")["faultFields"] == {
        "faultFieldsVersion": "4.0",
        "alarmCondition": "VMStateError",
        "specificProblem": "VM in ERROR state",
        "eventSeverity": "CRITICAL",
        "eventSourceType": "virtualMachine",
        "vfStatus": "Idle",
        "alarmInterfaceA": "eth0",
        "eventCategory": "link",
        "alarmAdditionalInformation": {"vimid": "owner_region", "cpus": "4", "pinned": "true"},
    }


@pytest.mark.parametrize("version", VERSIONS)
def test_fault_without_additional_omits_it(version: str) -> None:
    """An empty or absent additional dict leaves alarmAdditionalInformation out."""
    for extra in ({}, {"additional": {}}, {"additional": {"x": None}}):
        fields = {k: v for k, v in FAULT.items() if k != "additional"} | extra
        encoded = encode(make("fault", fields), version)
        assert "alarmAdditionalInformation" not in encoded["faultFields"]
        assert_valid(encoded, version)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("severity", "CLEAR"),
        ("severity", "critical"),
        ("severity", "INDETERMINATE"),
        ("vf_status", "Requesting Termination"),
        ("vf_status", "active"),
    ],
)
def test_fault_enums_are_exact(key: str, value: str) -> None:
    """Severity and vfStatus take only the schema's spellings."""
    with pytest.raises(EncodeError, match=key):
        encode(make("fault", {**FAULT, key: value}), "v5")


@pytest.mark.parametrize("version", VERSIONS)
def test_fault_clear_and_all_vf_statuses_validate(version: str) -> None:
    """NORMAL (the clear) and every vfStatus of the schema validate."""
    for status in enc.VF_STATUSES:
        encoded = encode(
            make("fault", {**FAULT, "severity": "NORMAL", "vf_status": status}), version
        )
        assert encoded["faultFields"]["vfStatus"] == status
        assert_valid(encoded, version)


# -- heartbeat ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_heartbeat_without_fields_is_header_only(version: str) -> None:
    """A heartbeat with no fields is just the header, as in the spec's samples."""
    encoded = encode(make("heartbeat", sequence=0), version)
    assert set(encoded) == {"commonEventHeader"}
    assert_valid(encoded, version)


@pytest.mark.parametrize(
    ("version", "additional"),
    [("v5", [{"name": "agent", "value": "vesagent"}]), ("v7", {"agent": "vesagent"})],
)
def test_heartbeat_fields(version: str, additional: Any) -> None:
    """heartbeatInterval is an int; additionalFields follows the version's shape."""
    encoded = encode(
        make("heartbeat", {"interval": 60.0, "additional": {"agent": "vesagent"}}), version
    )
    block = encoded["heartbeatFields"]
    assert block["heartbeatInterval"] == 60 and type(block["heartbeatInterval"]) is int
    assert block["additionalFields"] == additional
    assert_valid(encoded, version)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"additional": {"a": "b"}}, "interval"),
        ({"interval": 60.5}, "interval"),
        ({"interval": "60"}, "interval"),
        ({"interval": True}, "interval"),
        ({"intervall": 60}, "intervall"),
    ],
)
def test_heartbeat_bad_fields(fields: dict[str, Any], match: str) -> None:
    """A heartbeat block needs an integer interval and known keys."""
    with pytest.raises(EncodeError, match=match):
        encode(make("heartbeat", fields), "v7")


# -- measurement --------------------------------------------------------------------------------


def test_measurement_v5_exact() -> None:
    """v5 measurement: vNic names, string valuesAreSuspect, v7-only fields left out."""
    block = encode(make("measurement", MEASUREMENT), "v5")["measurementsForVfScalingFields"]
    assert block == {
        "measurementsForVfScalingVersion": 2.0,
        "measurementInterval": 300,
        "cpuUsageArray": [{"cpuIdentifier": "all", "percentUsage": 12.5, "cpuIdle": 87.5}],
        "memoryUsageArray": [{"vmIdentifier": "vm-01", "memoryFree": 1024, "memoryUsed": 2048}],
        "diskUsageArray": [
            {"diskIdentifier": "vda", "diskOctetsReadLast": 10, "diskOpsWriteMax": 2}
        ],
        "vNicPerformanceArray": [
            {
                "vNicIdentifier": "tap0",
                "valuesAreSuspect": "false",
                "receivedOctetsDelta": 100,
                "transmittedTotalPacketsAccumulated": 5,
            }
        ],
        "additionalFields": [{"name": "flavor", "value": "m1.small"}],
    }


def test_measurement_v7_exact() -> None:
    """v7 measurement: nic names, hashMap additionalFields, v7-only fields kept."""
    block = encode(make("measurement", MEASUREMENT), "v7")["measurementFields"]
    assert block == {
        "measurementFieldsVersion": "4.0",
        "measurementInterval": 300,
        "cpuUsageArray": [
            {"cpuIdentifier": "all", "percentUsage": 12.5, "cpuIdle": 87.5, "cpuDemandMhz": 100}
        ],
        "memoryUsageArray": [
            {
                "vmIdentifier": "vm-01",
                "memoryFree": 1024,
                "memoryUsed": 2048,
                "percentMemoryUsage": 66.6,
            }
        ],
        "diskUsageArray": [
            {"diskIdentifier": "vda", "diskOctetsReadLast": 10, "diskOpsWriteMax": 2, "diskTime": 7}
        ],
        "nicPerformanceArray": [
            {
                "nicIdentifier": "tap0",
                "valuesAreSuspect": "false",
                "receivedOctetsDelta": 100,
                "transmittedTotalPacketsAccumulated": 5,
                "speed": 1000,
                "administrativeState": "inService",
            }
        ],
        "additionalFields": {"flavor": "m1.small"},
    }


@pytest.mark.parametrize("version", VERSIONS)
def test_measurement_suspect_flag_is_a_string(version: str) -> None:
    """suspect=True becomes "true"; a missing suspect means "false"; a string is refused."""
    nic_key = "vNicPerformanceArray" if version == "v5" else "nicPerformanceArray"
    block_key = "measurementsForVfScalingFields" if version == "v5" else "measurementFields"
    fields = {"interval": 60, "nic": [{"id": "a", "suspect": True}, {"id": "b"}]}
    encoded = encode(make("measurement", fields), version)
    assert [n["valuesAreSuspect"] for n in encoded[block_key][nic_key]] == ["true", "false"]
    assert_valid(encoded, version)
    with pytest.raises(EncodeError, match=r"nic\[0\]\.suspect"):
        encode(
            make("measurement", {"interval": 60, "nic": [{"id": "a", "suspect": "true"}]}), version
        )


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({}, r"fields\.interval: required"),
        ({"interval": 60, "cpu": [{"id": "0"}]}, r"cpu\[0\]\.percent_usage: required"),
        ({"interval": 60, "cpu": [{"id": "0", "percent_usage": "5"}]}, "expected a number"),
        ({"interval": 60, "cpu": [{"id": "0", "percent_usage": math.nan}]}, "finite"),
        ({"interval": 60, "cpu": [{"id": "0", "percent_usage": True}]}, "expected a number"),
        ({"interval": 60, "cpu": {"id": "0", "percent_usage": 1}}, "list of dicts"),
        ({"interval": 60, "cpu": ["x"]}, r"cpu\[0\]: expected a dict"),
        ({"interval": 60, "memory": [{"vm_id": "v", "free": 1, "used_kib": 1}]}, "free"),
        ({"interval": 60, "nic": [{"id": "t", "operational_state": "up"}]}, "operational_state"),
        ({"interval": 60, "nic": [{"id": "t", "vNicIdentifier": "t"}]}, "vNicIdentifier"),
        ({"interval": 60, "additional": ["a", "b"]}, "additional: expected a dict"),
    ],
)
def test_measurement_bad_fields(fields: dict[str, Any], match: str) -> None:
    """Missing, mistyped or misspelled measurement fields raise EncodeError naming the field."""
    with pytest.raises(EncodeError, match=match):
        encode(make("measurement", fields), "v5")


# -- the vocabulary against the schemas ---------------------------------------------------------

JSON_TYPE = {
    "text": "string",
    "flag": "string",
    "choice": "string",
    "timestamp": "string",
    "number": "number",
    "integer": "integer",
}
# (version, fields table, schema definition, its properties the table does not reach);
# v7 counters are reshaped into a hashMap, which test_tca_v7_counters_use_hashmap covers
TABLES = [
    (version, table, definition, unreached)
    for table, v5_def, v7_def, unreached in [
        (CPU_FIELDS, "cpuUsage", "cpuUsage", set()),
        (MEMORY_FIELDS, "memoryUsage", "memoryUsage", set()),
        (DISK_FIELDS, "diskUsage", "diskUsage", set()),
        (NIC_FIELDS, "vNicPerformance", "nicPerformance", set()),
        (FAULT_FIELDS, "faultFields", "faultFields", {"faultFieldsVersion"}),
        (HEARTBEAT_FIELDS, "heartbeatFields", "heartbeatFields", {"heartbeatFieldsVersion"}),
        (
            TCA_FIELDS,
            "thresholdCrossingAlertFields",
            "thresholdCrossingAlertFields",
            {"thresholdCrossingFieldsVersion"},
        ),
        (enc.COUNTER_FIELDS, "counter", None, set()),
    ]
    for version, definition in (("v5", v5_def), ("v7", v7_def))
    if definition is not None
]


def _resolve(version: str, prop: dict[str, Any]) -> dict[str, Any]:
    ref = prop.get("$ref")
    return schema(version)["definitions"][ref.rsplit("/", 1)[1]] if ref else prop


@pytest.mark.parametrize(("version", "table", "definition", "unreached"), TABLES)
def test_vocabulary_matches_schema(
    version: str, table: tuple[Field, ...], definition: str, unreached: set[str]
) -> None:
    """Each neutral name maps to a real property of the right type; each property is mapped."""
    props = schema(version)["definitions"][definition]["properties"]
    for spec in table:
        target = spec.target(version)
        if target is None:
            continue
        assert target in props, f"{spec.neutral} -> {target} not in {definition}"
        prop = _resolve(version, props[target])
        if spec.kind in JSON_TYPE:
            assert prop.get("type") == JSON_TYPE[spec.kind], spec.neutral
        if spec.kind == "choice":
            assert set(spec.choices) == set(prop["enum"]), spec.neutral
        if spec.kind == "flag":
            assert set(prop["enum"]) == {"true", "false"}
        # a field the schema requires must be required or defaulted here (a heartbeat block is
        # only emitted with its interval, which test_heartbeat_bad_fields covers)
        schema_required = target in schema(version)["definitions"][definition].get("required", [])
        always_sent = spec.required or spec.default is not None
        assert always_sent == schema_required or table is HEARTBEAT_FIELDS, spec.neutral
    mapped = {spec.target(version) for spec in table}
    assert set(props) - mapped == unreached


@pytest.mark.parametrize("version", VERSIONS)
def test_measurement_block_targets_exist(version: str) -> None:
    """The measurement block's own fields map to properties of the version's block."""
    block = "measurementsForVfScalingFields" if version == "v5" else "measurementFields"
    props = schema(version)["definitions"][block]["properties"]
    for spec in DOMAIN_FIELDS["measurement"]:
        assert spec.target(version) in props


# -- tca ----------------------------------------------------------------------------------------


def test_tca_v5_exact() -> None:
    """v5 TCA: numeric version, counters with name/value, timestamps from the header epochs."""
    assert encode(make("tca", TCA), "v5")["thresholdCrossingAlertFields"] == {
        "thresholdCrossingFieldsVersion": 2.0,
        "alertAction": "SET",
        "alertDescription": "CPU-HIGH",
        "alertType": "ELEMENT-ANOMALY",
        "eventSeverity": "MAJOR",
        "collectionTimestamp": "Tue, 14 Nov 2023 22:18:20 +0000",
        "eventStartTimestamp": "Tue, 14 Nov 2023 22:13:20 +0000",
        "additionalParameters": [
            {
                "name": "cpu.percentUsage",
                "criticality": "MAJ",
                "thresholdCrossed": "90",
                "value": "95.5",
            }
        ],
        "associatedAlertIdList": ["fault-0001"],
    }


def test_tca_v7_counters_use_hashmap() -> None:
    """v7 counters carry {name: value} in a hashMap and no name/value keys."""
    fields = {**TCA, "collection_timestamp": "Sat, 13 Mar 2010 11:29:05 -0800", "alert_value": 95}
    block = encode(make("tca", fields), "v7")["thresholdCrossingAlertFields"]
    assert block["thresholdCrossingFieldsVersion"] == "4.0"
    assert block["additionalParameters"] == [
        {"criticality": "MAJ", "hashMap": {"cpu.percentUsage": "95.5"}, "thresholdCrossed": "90"}
    ]
    assert block["collectionTimestamp"] == "Sat, 13 Mar 2010 11:29:05 -0800"
    assert block["alertValue"] == "95"


@pytest.mark.parametrize("version", VERSIONS)
def test_tca_without_counters_still_validates(version: str) -> None:
    """additionalParameters is required by both schemas, so it is sent even when empty."""
    fields = {k: v for k, v in TCA.items() if k != "counters"}
    encoded = encode(make("tca", fields), version)
    assert encoded["thresholdCrossingAlertFields"]["additionalParameters"] == []
    assert_valid(encoded, version)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"alert_type": "VM-ANOMALY"}, "alert_type"),
        ({"alert_action": "set"}, "alert_action"),
        ({"event_severity": "CLEAR"}, "event_severity"),
        (
            {
                "counters": [
                    {"name": "x", "criticality": "MINOR", "threshold_crossed": 1, "value": 2}
                ]
            },
            r"counters\[0\]\.criticality",
        ),
        ({"counters": [{"name": "x", "criticality": "CRIT", "value": 2}]}, "threshold_crossed"),
        ({"collection_timestamp": 10**30}, "collection_timestamp"),
    ],
)
def test_tca_bad_fields(change: dict[str, Any], match: str) -> None:
    """TCA enums are exact, counters complete, timestamps within the calendar."""
    with pytest.raises(EncodeError, match=match):
        encode(make("tca", {**TCA, **change}), "v7")


def test_rfc2822() -> None:
    """Epoch microseconds format as RFC 2822 in UTC, sub-second part dropped."""
    assert rfc2822(1268479745_999_999) == "Sat, 13 Mar 2010 11:29:05 +0000"
    assert rfc2822(0) == "Thu, 01 Jan 1970 00:00:00 +0000"


# -- errors -------------------------------------------------------------------------------------


def test_unknown_version_and_domain() -> None:
    """Unknown versions and domains are refused with a PermanentError that is a ValueError."""
    with pytest.raises(EncodeError, match="v6"):
        encode(make("fault", FAULT), "v6")
    with pytest.raises(EncodeError, match="syslog"):
        encode(make("syslog", {}), "v7")
    with pytest.raises(EncodeError, match="measurementsForVfScaling"):
        encode(make("measurementsForVfScaling", MEASUREMENT), "v5")
    assert issubclass(EncodeError, PermanentError) and issubclass(EncodeError, ValueError)


@pytest.mark.parametrize("domain", ["fault", "measurement", "tca"])
def test_unknown_field_is_refused(domain: str) -> None:
    """A misspelled neutral key fails loudly instead of vanishing from the event."""
    with pytest.raises(EncodeError, match="unknown field"):
        encode(make(domain, {**SAMPLES[domain], "severty": "MAJOR"}), "v5")


@pytest.mark.parametrize(
    "missing", ["alarm_condition", "specific_problem", "severity", "source_type"]
)
def test_fault_required_fields(missing: str) -> None:
    """Each required fault field is named when missing."""
    fields = {k: v for k, v in FAULT.items() if k != missing}
    with pytest.raises(EncodeError, match=f"fields.{missing}: required"):
        encode(make("fault", fields), "v7")


# -- the validator catches what the encoder avoids (so the tests above can fail) ----------------


@pytest.mark.parametrize(
    ("version", "domain", "mutate"),
    [
        ("v7", "fault", lambda e: e["faultFields"].update(faultFieldsVersion=4.0)),
        ("v5", "fault", lambda e: e["commonEventHeader"].update(version="3.0")),
        ("v7", "fault", lambda e: e["commonEventHeader"].pop("vesEventListenerVersion")),
        ("v7", "fault", lambda e: e["faultFields"].update(alarmAdditionalInformation=[])),
        ("v5", "fault", lambda e: e["faultFields"].update(alarmAdditionalInformation={})),
        ("v7", "fault", lambda e: e["faultFields"]["alarmAdditionalInformation"].update(n=4)),
        (
            "v7",
            "measurement",
            lambda e: e["commonEventHeader"].update(domain="measurementsForVfScaling"),
        ),
        (
            "v7",
            "measurement",
            lambda e: e["measurementFields"].update(
                vNicPerformanceArray=e["measurementFields"].pop("nicPerformanceArray")
            ),
        ),
        (
            "v5",
            "measurement",
            lambda e: e["measurementsForVfScalingFields"]["vNicPerformanceArray"][0].update(
                valuesAreSuspect=False
            ),
        ),
        (
            "v7",
            "tca",
            lambda e: e["thresholdCrossingAlertFields"]["additionalParameters"][0].update(name="x"),
        ),
        ("v5", "tca", lambda e: e["commonEventHeader"].update(sequence=1.0)),
    ],
)
def test_known_pitfalls_are_schema_errors(version: str, domain: str, mutate: Any) -> None:
    """The FACTS pitfalls (version types, hashMap vs array, vNic vs nic, ...) fail validation."""
    encoded = json.loads(dumps(encode(make(domain, SAMPLES[domain]), version)))
    assert_valid(encoded, version)
    mutate(encoded)
    assert errors(single_body(encoded), version) != []


# -- property: anything the vocabulary allows validates -----------------------------------------

NAMES = st.one_of(
    st.text(max_size=30),
    st.text(min_size=1, max_size=4).map(lambda s: s * 3000),
)
NUMBERS = st.one_of(
    st.just(0),
    st.integers(min_value=-(2**63), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, NAMES)
ADDITIONAL = st.dictionaries(
    st.one_of(st.text(max_size=20), st.integers()),
    st.one_of(
        SCALARS,
        st.lists(NUMBERS, max_size=3),
        st.dictionaries(st.text(max_size=5), SCALARS, max_size=2),
    ),
    max_size=5,
)


def _value(spec: Field) -> st.SearchStrategy[Any]:
    match spec.kind:
        case "text":
            return SCALARS.filter(lambda v: v is not None)
        case "number":
            return NUMBERS
        case "integer":
            return st.integers(min_value=0, max_value=2**63)
        case "flag":
            return st.booleans()
        case "choice":
            return st.sampled_from(spec.choices)
        case "timestamp":
            return st.one_of(NAMES, st.integers(min_value=0, max_value=2**53))
        case "ids":
            return st.one_of(NAMES, st.lists(NAMES, max_size=3))
        case "additional":
            return ADDITIONAL
        case _:
            return st.lists(_fields(spec.items), max_size=3)


def _fields(table: tuple[Field, ...]) -> st.SearchStrategy[dict[str, Any]]:
    required = {s.neutral: _value(s) for s in table if s.required and s.default is None}
    optional = {
        s.neutral: st.one_of(st.none(), _value(s)) for s in table if s.neutral not in required
    }
    return st.fixed_dictionaries(required, optional=optional)


FIELDS = {
    "fault": _fields(FAULT_FIELDS),
    "heartbeat": st.one_of(
        st.just({}),
        st.fixed_dictionaries(
            {"interval": st.integers(min_value=0, max_value=2**40)},
            optional={"additional": ADDITIONAL},
        ),
    ),
    "measurement": _fields(DOMAIN_FIELDS["measurement"]),
    "tca": _fields(TCA_FIELDS),
}


def _events(domain: str) -> st.SearchStrategy[VesEvent]:
    return st.builds(
        VesEvent,
        domain=st.just(domain),
        event_id=NAMES,
        event_name=NAMES,
        source_name=NAMES,
        reporting_entity_name=NAMES,
        start_epoch_us=st.integers(min_value=0, max_value=2**53),
        last_epoch_us=st.integers(min_value=0, max_value=2**53),
        sequence=st.integers(min_value=0, max_value=2**63),
        source_id=st.one_of(st.none(), NAMES),
        priority=st.sampled_from(enc.PRIORITIES),
        event_type=st.one_of(st.none(), NAMES),
        fields=FIELDS[domain],
    )


@pytest.mark.parametrize("domain", sorted(FIELDS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_vocabulary_event_validates(domain: str, data: st.DataObject) -> None:
    """Arbitrary names, numbers and additional dicts always give schema-valid v5 and v7 events."""
    events = data.draw(st.lists(_events(domain), min_size=1, max_size=3))
    for version in VERSIONS:
        encoded = [encode(e, version) for e in events]
        assert errors(single_body(encoded[0]), version) == []
        assert errors(batch_body(encoded), version) == []
        # what goes on the wire parses back to the same document, and sizes add up
        wire = dumps(batch_body(encoded))
        assert json.loads(wire) == batch_body(encoded)
        assert len(wire) == batch_body_size([len(dumps(e)) for e in encoded])
        assert {encoded_domain(e) for e in encoded} == {encoded_domain(encoded[0])}


# -- bodies and dumps ---------------------------------------------------------------------------


def test_bodies() -> None:
    """single_body wraps in "event", batch_body in "eventList"; an empty batch is refused."""
    encoded = encode(make("fault", FAULT), "v7")
    assert single_body(encoded) == {"event": encoded}
    assert batch_body((encoded,)) == {"eventList": [encoded]}
    with pytest.raises(ValueError, match="at least one"):
        batch_body([])


def test_dumps_is_compact_sorted_utf8() -> None:
    """No spaces, sorted keys, non-ASCII kept as UTF-8, the same bytes for the same content."""
    assert (
        dumps({"b": 1, "a": "é✓", "c": [1.5, None]}) == '{"a":"é✓","b":1,"c":[1.5,null]}'.encode()
    )
    assert dumps({"x": 1, "y": 2}) == dumps({"y": 2, "x": 1})
    event = make("measurement", MEASUREMENT)
    assert dumps(encode(event, "v7")) == dumps(encode(replace(event), "v7"))


def test_dumps_refuses_nan() -> None:
    """NaN is not JSON; dumps refuses it rather than sending something the collector rejects."""
    with pytest.raises(ValueError):
        dumps({"x": math.inf})


def test_dumps_escapes_lone_surrogates() -> None:
    """A lone surrogate becomes a JSON escape instead of a UnicodeEncodeError."""
    body = dumps({"name": "vm\ud800x"})
    assert body == b'{"name":"vm\\ud800x"}'
    assert json.loads(body) == {"name": "vm\ud800x"}
    assert len(dumps(batch_body([{"n": "\udfff"}, {"n": "é"}]))) == batch_body_size(
        [len(dumps({"n": "\udfff"})), len(dumps({"n": "é"}))]
    )


def test_overheads_match_dumps() -> None:
    """The wrapper sizes are exactly what dumps adds around events."""
    encoded = encode(make("fault", FAULT, event_name="名前"), "v5")
    size = len(dumps(encoded))
    assert len(dumps(single_body(encoded))) == single_body_size(size) == SINGLE_OVERHEAD + size
    assert len(dumps(batch_body([encoded] * 3))) == batch_body_size([size] * 3)
    assert batch_body_size([size] * 3) == BATCH_OVERHEAD + 3 * size + 2
    assert batch_body_size([]) == BATCH_OVERHEAD


# -- plan_batches -------------------------------------------------------------------------------

WRAP = BATCH_OVERHEAD


@pytest.mark.parametrize(
    ("items", "max_bytes", "max_events", "expected"),
    [
        ([], 100, 5, []),
        ([("fault", 10)], 100, 5, [(0, 1)]),
        ([("fault", 10)] * 3, 1_000, 5, [(0, 3)]),
        (
            [("fault", 10), ("fault", 10), ("measurement", 10), ("fault", 10)],
            1_000,
            5,
            [(0, 2), (2, 3), (3, 4)],
        ),
        # exactly at the limit: wrapper + 10 + comma + 10
        ([("fault", 10)] * 3, WRAP + 21, 5, [(0, 2), (2, 3)]),
        # one byte under it: the comma counts
        ([("fault", 10)] * 3, WRAP + 20, 5, [(0, 1), (1, 2), (2, 3)]),
        # an oversize item goes alone, the queue keeps moving
        ([("fault", 5), ("fault", 100), ("fault", 5)], 50, 5, [(0, 1), (1, 2), (2, 3)]),
        ([("fault", 100)], 50, 5, [(0, 1)]),
        ([("fault", 1)] * 5, 1_000, 2, [(0, 2), (2, 4), (4, 5)]),
        ([("fault", 1)] * 3, 1_000, 1, [(0, 1), (1, 2), (2, 3)]),
        ([("heartbeat", 0), ("fault", 0)], 1_000, 5, [(0, 1), (1, 2)]),
    ],
)
def test_plan_batches_table(
    items: list[tuple[str, int]], max_bytes: int, max_events: int, expected: list[tuple[int, int]]
) -> None:
    """Runs split on domain change, byte limit (wrapper and commas included) and event count."""
    assert plan_batches(items, max_bytes, max_events) == [slice(a, b) for a, b in expected]


def test_plan_batches_defaults_are_one_megabyte_and_500_events() -> None:
    """The defaults keep bodies under 1 MB and 500 events."""
    assert plan_batches([("fault", 400_000)] * 3) == [slice(0, 2), slice(2, 3)]
    assert plan_batches([("fault", 10)] * 1001) == [
        slice(0, 500),
        slice(500, 1000),
        slice(1000, 1001),
    ]


@pytest.mark.parametrize(
    ("items", "max_bytes", "max_events"),
    [([("fault", 1)], 0, 5), ([("fault", 1)], 100, 0), ([("fault", -1)], 100, 5)],
)
def test_plan_batches_rejects_bad_input(
    items: list[tuple[str, int]], max_bytes: int, max_events: int
) -> None:
    """Non-positive limits and negative sizes are programming errors."""
    with pytest.raises(ValueError):
        plan_batches(items, max_bytes, max_events)


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 300)), max_size=40),
    max_bytes=st.integers(WRAP, 1_000),
    max_events=st.integers(1, 6),
)
def test_plan_batches_properties(
    items: list[tuple[str, int]], max_bytes: int, max_events: int
) -> None:
    """Slices tile the input in order; each is one domain within the limits; runs are greedy."""
    plan = plan_batches(items, max_bytes, max_events)
    assert [i for s in plan for i in range(s.start, s.stop)] == list(range(len(items)))
    for s in plan:
        run = items[s]
        assert run and len(run) <= max_events
        assert len({domain for domain, _ in run}) == 1
        if len(run) > 1:
            assert batch_body_size([size for _, size in run]) <= max_bytes
    for a, b in itertools.pairwise(plan):
        run, nxt = items[a], items[b.start]
        assert (
            nxt[0] != run[0][0]
            or len(run) == max_events
            or batch_body_size([size for _, size in [*run, nxt]]) > max_bytes
        )


def test_planned_batches_of_real_events_fit() -> None:
    """Encoded events of mixed domains, planned by their dumps sizes, give valid bodies in limit."""
    events = [
        make(d, SAMPLES[d], event_id=f"{d}-{i}", event_name="ü" * (i * 50))
        for i, d in enumerate(["fault", "fault", "tca", "tca", "tca", "fault", "measurement"] * 3)
    ]
    for version in VERSIONS:
        encoded = [encode(e, version) for e in events]
        items = [(encoded_domain(e), len(dumps(e))) for e in encoded]
        plan = plan_batches(items, max_bytes=3_000, max_events=3)
        assert len(plan) > 7
        for s in plan:
            body = batch_body(encoded[s])
            assert len(dumps(body)) <= 3_000 or s.stop - s.start == 1
            assert errors(body, version) == []
            assert len({encoded_domain(e) for e in encoded[s]}) == 1
