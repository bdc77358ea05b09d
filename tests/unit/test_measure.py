"""VM measurements from diagnostics: parsing, first reading, rates, deltas, resets, metrics."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vesagent import ves_schema
from vesagent.config import KNOWN_METRICS
from vesagent.model import VesEvent
from vesagent.pollers.measure import (
    MEASUREMENT_EVENT_NAME,
    METRIC_SOURCES,
    Reading,
    measurement_event,
    metric_values,
)
from vesagent.ves_client.encode import dumps, encode

T0 = 1_800_000_000_000_000
STEP_US = 300_000_000  # five minutes between readings
MAC = "fa:16:3e:4c:2c:30"


def diagnostics(**changes: Any) -> dict[str, Any]:
    """A 2.48-format body (shape of Nova's api-ref; values made up)."""
    body: dict[str, Any] = {
        "state": "running",
        "driver": "libvirt",
        "hypervisor": "kvm",
        "hypervisor_os": "ubuntu",
        "uptime": 1000,
        "config_drive": False,
        "num_cpus": 2,
        "num_disks": 1,
        "num_nics": 1,
        "memory_details": {"maximum": 2048, "used": 512},
        "cpu_details": [
            {"id": 0, "time": 10_000_000_000, "utilisation": None},
            {"id": 1, "time": 20_000_000_000, "utilisation": None},
        ],
        "disk_details": [
            {
                "read_bytes": 1_000_000,
                "read_requests": 100,
                "write_bytes": 2_000_000,
                "write_requests": 200,
                "errors_count": 0,
            }
        ],
        "nic_details": [
            {
                "mac_address": MAC,
                "rx_octets": 10_000,
                "rx_errors": 1,
                "rx_drop": 2,
                "rx_packets": 100,
                "rx_rate": None,
                "tx_octets": 5_000,
                "tx_errors": 0,
                "tx_drop": 0,
                "tx_packets": 50,
                "tx_rate": None,
            }
        ],
    }
    body.update(changes)
    return body


def later(body: dict[str, Any], **counters: Any) -> dict[str, Any]:
    """``body`` five minutes on: CPU 0 at 30 %, CPU 1 at 60 %, disk and NIC traffic."""
    nxt = copy.deepcopy(body)
    nxt["uptime"] = body["uptime"] + 300
    nxt["cpu_details"][0]["time"] += 90_000_000_000
    nxt["cpu_details"][1]["time"] += 180_000_000_000
    disk = nxt["disk_details"][0]
    disk["read_bytes"] += 300_000
    disk["write_bytes"] += 600_000
    disk["read_requests"] += 30
    disk["write_requests"] += 60
    nic = nxt["nic_details"][0]
    nic["rx_octets"] += 3_000
    nic["tx_octets"] += 1_500
    nic["rx_packets"] += 30
    nic["tx_packets"] += 15
    nic.update(counters)
    return nxt


def reading(body: Any, at_us: int = T0) -> Reading:
    parsed = Reading.from_diagnostics(body, at_us)
    assert parsed is not None
    return parsed


def event_of(prev: Reading | None, cur: Reading, **kw: Any) -> VesEvent:
    args: dict[str, Any] = {
        "vimid": "Owner_R1",
        "server_id": "s-1",
        "server_name": "vm-1",
        "interval": 300,
        "counter": 1,
        "reporter": "vesagent",
        "now_us": cur.at_us,
    }
    args.update(kw)
    event = measurement_event(prev, cur, **args)
    assert event is not None
    for version in ("v5", "v7"):
        assert ves_schema.errors({"event": encode(event, version)}, version) == []
    return event


def pair(**counters: Any) -> VesEvent:
    first = diagnostics()
    return event_of(reading(first), reading(later(first, **counters), T0 + STEP_US))


def test_first_reading_reports_only_what_one_reading_tells() -> None:
    """No previous reading: memory and NIC accumulated counters; no rates, deltas, CPU time."""
    event = event_of(None, reading(diagnostics()))
    fields = event.fields
    assert set(fields) == {"interval", "memory", "nic"}
    (nic,) = fields["nic"]
    assert nic["received_octets_accumulated"] == 10_000
    assert not any(key.endswith("_delta") for key in nic)
    assert nic["suspect"] is False


def test_first_reading_uses_nova_utilisation_when_given() -> None:
    """Nova's own utilisation needs no previous reading."""
    body = diagnostics(cpu_details=[{"id": 0, "time": 5, "utilisation": 42.5}])
    (cpu,) = event_of(None, reading(body)).fields["cpu"]
    assert cpu == {"id": "0", "percent_usage": 42.5, "idle": 57.5}


def test_cpu_usage_from_time_deltas() -> None:
    """100 * delta(cpu ns) / delta(t ns) per vCPU; idle = 100 - usage."""
    cpus = pair().fields["cpu"]
    assert cpus == [
        {"id": "0", "percent_usage": 30, "idle": 70},
        {"id": "1", "percent_usage": 60, "idle": 40},
    ]


def test_memory_in_kib() -> None:
    """MiB -> KiB; free = configured - used; percent (v7 only) = used / configured."""
    (memory,) = pair().fields["memory"]
    assert memory == {
        "vm_id": "s-1",
        "configured_kib": 2048 * 1024,
        "used_kib": 512 * 1024,
        "free_kib": 1536 * 1024,
        "percent_usage": 25,
    }
    v5 = encode(pair(), "v5")["measurementsForVfScalingFields"]["memoryUsageArray"][0]
    assert "percentMemoryUsage" not in v5 and v5["memoryFree"] == 1536 * 1024


def test_disk_rates_per_second() -> None:
    """Disk counters become per-second rates over the time between the readings."""
    (disk,) = pair().fields["disk"]
    assert disk["id"] == "disk0"
    assert disk["octets_read_last"] == disk["octets_read_avg"] == 1000
    assert disk["octets_write_last"] == 2000
    assert disk["ops_read_last"] == 0.1 and disk["ops_write_last"] == 0.2


def test_nic_accumulated_and_delta() -> None:
    """Accumulated = the counter now; delta = the change since the previous reading."""
    (nic,) = pair().fields["nic"]
    assert nic["id"] == MAC and nic["suspect"] is False
    assert nic["received_octets_accumulated"] == 13_000
    assert nic["received_octets_delta"] == 3_000
    assert nic["transmitted_octets_delta"] == 1_500
    assert nic["received_total_packets_delta"] == 30
    assert nic["received_error_packets_delta"] == 0
    assert nic["received_discarded_packets_accumulated"] == 2


def test_counter_going_backwards_marks_the_nic_suspect() -> None:
    """A reset counter: valuesAreSuspect "true", accumulated = new value, delta from 0."""
    event = pair(rx_octets=700)
    (nic,) = event.fields["nic"]
    assert nic["suspect"] is True
    assert nic["received_octets_accumulated"] == 700
    assert nic["received_octets_delta"] == 700
    assert nic["transmitted_octets_delta"] == 6_500  # every counter restarted: from 0
    assert (
        encode(event, "v5")["measurementsForVfScalingFields"]["vNicPerformanceArray"][0][
            "valuesAreSuspect"
        ]
        == "true"
    )
    assert (
        encode(event, "v7")["measurementFields"]["nicPerformanceArray"][0]["valuesAreSuspect"]
        == "true"
    )


def test_guest_restart_drops_rates_and_marks_nics() -> None:
    """uptime going backwards: no disk rates, no time-derived CPU, NICs suspect."""
    first = diagnostics()
    second = later(first)
    second["uptime"] = 5
    event = event_of(reading(first), reading(second, T0 + STEP_US))
    assert "disk" not in event.fields and "cpu" not in event.fields
    assert all(nic["suspect"] for nic in event.fields["nic"])


def test_readings_out_of_order_count_as_a_first_reading() -> None:
    """A previous reading not older than this one gives no rates (no division by <= 0)."""
    body = diagnostics()
    event = event_of(reading(later(body), T0), reading(body, T0))
    assert "disk" not in event.fields and "cpu" not in event.fields


def test_header_rules() -> None:
    """Start is the boundary of the period now falls in, now as last, sequence 0, stable name."""
    first = diagnostics()
    event = event_of(
        reading(first, T0 + 7_000_000),
        reading(later(first), T0 + STEP_US + 9_000_000),
        counter=42,
    )
    assert event.start_epoch_us == T0 + STEP_US  # T0 is on a 300 s boundary
    assert event.last_epoch_us == T0 + STEP_US + 9_000_000
    assert event.sequence == 0
    assert event.event_name == MEASUREMENT_EVENT_NAME
    assert event.event_id == "measurement-Owner_R1-s-1-42"
    assert event.source_id == "s-1" and event.source_name == "vm-1"
    assert event.fields["interval"] == 300


@pytest.mark.parametrize(
    "body",
    [None, [], "x", 5, {}, {"cpu_details": "x", "nic_details": 5, "memory_details": []}],
)
def test_unusable_bodies(body: Any) -> None:
    """Nothing measurable: no reading."""
    assert Reading.from_diagnostics(body, T0) is None


@pytest.mark.parametrize(
    ("memory", "expected"),
    [
        ({"maximum": 1024, "used": 2048}, {"free_kib": 0, "percent_usage": 100}),
        ({"maximum": 0, "used": 0}, {"free_kib": 0}),
        ({"maximum": 1024}, None),
        ({"maximum": -1, "used": 5}, None),
        ({"maximum": "1024", "used": 5}, None),
        ({"maximum": True, "used": 5}, None),
    ],
)
def test_memory_edge_cases(memory: dict[str, Any], expected: dict[str, Any] | None) -> None:
    """Used beyond maximum, zero, missing or garbage memory values."""
    event = event_of(None, reading(diagnostics(memory_details=memory)))
    if expected is None:
        assert "memory" not in event.fields
    else:
        (entry,) = event.fields["memory"]
        assert {k: entry.get(k) for k in expected} == expected
        if "percent_usage" not in expected:
            assert "percent_usage" not in entry


@pytest.mark.parametrize("bad", [-1, None, "12", True, float("inf"), 2**70])
def test_garbage_counters_are_left_out(bad: Any) -> None:
    """libvirt's -1, strings, booleans, infinities and absurd values are not counters."""
    body = diagnostics()
    body["nic_details"][0]["rx_octets"] = bad
    (nic,) = event_of(None, reading(body)).fields["nic"]
    assert "received_octets_accumulated" not in nic
    assert nic["transmitted_octets_accumulated"] == 5_000


def test_nics_without_mac_and_duplicates_get_distinct_ids() -> None:
    """The NIC id is its MAC, else its position; a repeated MAC is kept apart."""
    nic = diagnostics()["nic_details"][0]
    body = diagnostics(nic_details=[nic, dict(nic), {**nic, "mac_address": None}])
    ids = [n["id"] for n in event_of(None, reading(body)).fields["nic"]]
    assert ids == [MAC, f"{MAC}#1", "nic2"]


def test_metric_values_cover_every_known_metric() -> None:
    """Every name a tca backlog may watch has a value after two readings."""
    assert set(METRIC_SOURCES) == set(KNOWN_METRICS)
    values = metric_values(pair().fields)
    assert set(values) == set(KNOWN_METRICS)
    assert values["cpu.percentUsage"] == pytest.approx(45.0)  # mean of 30 and 60
    assert values["cpu.cpuIdle"] == pytest.approx(55.0)
    assert values["memory.percentUsage"] == pytest.approx(25.0)
    assert values["memory.memoryUsed"] == 512 * 1024
    assert values["disk.diskOctetsReadLast"] == 1000
    assert values["nic.receivedOctetsDelta"] == 3000


def test_metric_values_sum_devices_and_skip_suspect_nics() -> None:
    """Disk rates and NIC deltas are VM totals; a reset NIC is not judged."""
    fields = {
        "disk": [{"id": "disk0", "octets_read_last": 10}, {"id": "disk1", "octets_read_last": 5}],
        "nic": [
            {"id": "a", "suspect": False, "received_octets_delta": 100},
            {"id": "b", "suspect": True, "received_octets_delta": 999_999},
        ],
    }
    values = metric_values(fields)
    assert values == {"disk.diskOctetsReadLast": 15.0, "nic.receivedOctetsDelta": 100.0}
    assert metric_values({}) == {}


# -- arbitrary input -----------------------------------------------------------------------------

numbers = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
anything = st.recursive(
    numbers | st.text(max_size=2000),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=6,
)


def device(keys: tuple[str, ...]) -> st.SearchStrategy[Any]:
    return st.one_of(st.fixed_dictionaries({}, optional=dict.fromkeys(keys, numbers)), anything)


NIC_KEYS = (
    "rx_octets",
    "rx_errors",
    "rx_drop",
    "rx_packets",
    "tx_octets",
    "tx_errors",
    "tx_drop",
    "tx_packets",
)
bodies = st.one_of(
    anything,
    st.fixed_dictionaries(
        {},
        optional={
            "uptime": numbers,
            "memory_details": st.one_of(device(("maximum", "used")), anything),
            "cpu_details": st.lists(
                st.one_of(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "id": st.one_of(numbers, st.text(max_size=300)),
                            "time": numbers,
                            "utilisation": numbers,
                        },
                    ),
                    anything,
                ),
                max_size=4,
            ),
            "disk_details": st.lists(
                device(("read_bytes", "read_requests", "write_bytes", "write_requests")),
                max_size=3,
            ),
            "nic_details": st.lists(
                st.one_of(
                    st.fixed_dictionaries(
                        {"mac_address": st.one_of(numbers, st.text(max_size=300))},
                        optional=dict.fromkeys(NIC_KEYS, numbers),
                    ),
                    anything,
                ),
                max_size=3,
            ),
        },
    ),
)


counts = st.integers(min_value=0, max_value=2**64)
plausible = st.fixed_dictionaries(
    {
        "uptime": counts,
        "memory_details": st.fixed_dictionaries(
            {"maximum": st.integers(0, 2**20), "used": st.integers(0, 2**20)}
        ),
        "cpu_details": st.lists(
            st.fixed_dictionaries(
                {"id": st.integers(0, 3), "time": counts, "utilisation": st.none() | numbers}
            ),
            max_size=3,
        ),
        "disk_details": st.lists(
            st.fixed_dictionaries(
                dict.fromkeys(
                    ("read_bytes", "read_requests", "write_bytes", "write_requests"), counts
                )
            ),
            max_size=2,
        ),
        "nic_details": st.lists(
            st.fixed_dictionaries(
                {
                    "mac_address": st.sampled_from([MAC, "fa:16:3e:00:00:01"]),
                    **dict.fromkeys(NIC_KEYS, counts),
                }
            ),
            max_size=2,
        ),
    }
)
# mostly plausible bodies, so that rates, deltas and resets are exercised, not only parsing
bodies = st.one_of(bodies, plausible, plausible)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=bodies,
    second=bodies,
    gap_us=st.integers(min_value=-(10**9), max_value=10**10),
    version=st.sampled_from(["v5", "v7"]),
)
def test_any_diagnostics_give_valid_events(
    first: Any, second: Any, gap_us: int, version: str
) -> None:
    """Arbitrary bodies: parsing never raises, every event validates, metrics are finite."""
    prev = Reading.from_diagnostics(first, T0)
    cur = Reading.from_diagnostics(second, T0 + gap_us)
    if cur is None:
        return
    for before in (None, prev):
        event = measurement_event(
            before,
            cur,
            vimid="Owner_R1",
            server_id="s-1",
            server_name="vm ☃",
            interval=300,
            counter=3,
            reporter="vesagent",
            now_us=T0 + max(gap_us, 0),
        )
        if event is None:
            continue
        encoded = encode(event, version)
        assert ves_schema.errors({"event": encoded}, version) == []
        assert len(dumps(encoded)) < 256 * 1024
        for cpu in event.fields.get("cpu", []):
            assert 0 <= cpu["percent_usage"] <= 100
        assert all(math.isfinite(v) for v in metric_values(event.fields).values())
