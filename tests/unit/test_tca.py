"""Threshold crossing alerts: SET / CONT / CLEAR as a table, ids, counters, validation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vesagent import ves_schema
from vesagent.config import KNOWN_METRICS, Threshold
from vesagent.pollers.decide import FaultContext, Transition
from vesagent.pollers.tca import clear_tca, decide_tca, tca_condition
from vesagent.store import AlarmRecord, alarm_params
from vesagent.ves_client.encode import encode

NOW = 1_800_000_000_000_000
STEP = 10_000_000


def ctx(i: int = 0) -> FaultContext:
    return FaultContext(vimid="Owner_R1", reporter="vesagent", now_us=NOW + i * STEP)


def valid(t: Transition) -> Transition:
    """Every event of ``t`` validates in v5 and v7; its record is storable."""
    for event in t.events:
        for version in ("v5", "v7"):
            assert ves_schema.errors({"event": encode(event, version)}, version) == []
    if t.upsert is not None:
        alarm_params(t.upsert)
    return t


def threshold(**kw: Any) -> Threshold:
    return Threshold.model_validate({"metric": "cpu.percentUsage", "above": 90, **kw})


def run(th: Threshold, values: list[float | None]) -> list[list[Transition]]:
    """Feed ``values`` poll by poll; returns each poll's transition."""
    prev: AlarmRecord | None = None
    out = []
    for i, value in enumerate(values):
        t = valid(
            decide_tca(
                prev, th, value, vimid="Owner_R1", server_id="s-1", server_name="vm-1", ctx=ctx(i)
            )
        )
        out.append(t)
        prev = t.upsert or (None if t.delete else prev)
    return out


def actions(ts: list[Transition]) -> list[str | None]:
    return [t.events[0].fields["alert_action"] if t.events else None for t in ts]


@pytest.mark.parametrize(
    ("limits", "cont", "values", "expected"),
    [
        ({"above": 90}, False, [50, 95, 99, 91, 90, 80], [None, "SET", None, None, "CLEAR", None]),
        ({"above": 90}, True, [95, 99, 50], ["SET", "CONT", "CLEAR"]),
        ({"above": 90}, False, [90, 90.0], [None, None]),
        ({"below": 10}, False, [50, 5, 3, 10], [None, "SET", None, "CLEAR"]),
        ({"above": 90}, False, [95, None, float("nan"), 50], ["SET", None, None, "CLEAR"]),
        ({"above": 90}, False, [None, 99], [None, "SET"]),
        ({"above": 0.5}, True, [0.6, 0.7, 0.8, 0.1, 0.9], ["SET", "CONT", "CONT", "CLEAR", "SET"]),
    ],
)
def test_alert_actions_table(
    limits: dict[str, float], cont: bool, values: list[float | None], expected: list[str | None]
) -> None:
    """Crossing sets, holding is quiet (or CONT), the good side clears; no value: no change."""
    th = Threshold.model_validate({"metric": "cpu.percentUsage", **limits, "cont": cont})
    assert actions(run(th, values)) == expected


def test_episode_ids_and_times() -> None:
    """Each event its own id (sequence 0); CONT/CLEAR name the SET; start stays the SET's."""
    set_, cont, clear = run(threshold(cont=True, severity="CRITICAL"), [95, 96, 10])
    events = [set_.events[0], cont.events[0], clear.events[0]]
    ids = [e.event_id for e in events]
    assert len(set(ids)) == 3 and all(" " not in i for i in ids)
    assert all(e.sequence == 0 for e in events)
    assert all(e.start_epoch_us == NOW for e in events)
    assert [e.last_epoch_us for e in events] == [NOW, NOW + STEP, NOW + 2 * STEP]
    assert "associated_alert_id" not in events[0].fields
    assert events[1].fields["associated_alert_id"] == [ids[0]]
    assert events[2].fields["associated_alert_id"] == [ids[0]]
    assert clear.delete == ("Owner_R1", "s-1", "TCA:cpu.percentUsage:above90")


@pytest.mark.parametrize(
    ("severity", "criticality", "priority"),
    [
        ("CRITICAL", "CRIT", "High"),
        ("MAJOR", "MAJ", "High"),
        ("MINOR", "MAJ", "Normal"),
        ("WARNING", "MAJ", "Normal"),
    ],
)
def test_severity_and_counters(severity: str, criticality: str, priority: str) -> None:
    """Severity from the threshold; the counter names the metric, rule and value."""
    (set_, clear) = run(threshold(severity=severity), [97.25, 1])
    event = set_.events[0]
    assert event.domain == "tca" and event.priority == priority
    fields = event.fields
    assert fields["event_severity"] == severity
    assert fields["counters"] == [
        {
            "name": "cpu.percentUsage",
            "criticality": criticality,
            "threshold_crossed": "above 90",
            "value": "97.25",
        }
    ]
    assert set_.upsert is not None and set_.upsert.severity == severity
    v7 = encode(event, "v7")["thresholdCrossingAlertFields"]["additionalParameters"][0]
    assert v7["hashMap"] == {"cpu.percentUsage": "97.25"}
    assert clear.events[0].fields["event_severity"] == "NORMAL"
    assert clear.events[0].priority == "Normal"


def test_severity_edit_while_held_sends_cont() -> None:
    """The threshold's severity changed while crossed: one CONT with the new severity."""
    (set_,) = run(threshold(severity="MAJOR"), [95])
    t = valid(
        decide_tca(
            set_.upsert,
            threshold(severity="CRITICAL"),
            96,
            vimid="Owner_R1",
            server_id="s-1",
            server_name="vm-1",
            ctx=ctx(1),
        )
    )
    assert actions([t]) == ["CONT"]
    assert t.upsert is not None and t.upsert.severity == "CRITICAL"


@pytest.mark.parametrize(
    ("spec", "condition"),
    [
        ({"metric": "cpu.percentUsage", "above": 90}, "TCA:cpu.percentUsage:above90"),
        ({"metric": "memory.memoryFree", "below": 1024.5}, "TCA:memory.memoryFree:below1024.5"),
        (
            {"metric": "nic.receivedOctetsDelta", "above": "1e9"},
            "TCA:nic.receivedOctetsDelta:above1000000000",
        ),
    ],
)
def test_condition_names(spec: dict[str, Any], condition: str) -> None:
    """The alarm key names the metric, the direction and the limit."""
    assert tca_condition(Threshold.model_validate(spec)) == condition


def test_clear_when_the_vm_is_gone() -> None:
    """A deleted VM or removed threshold clears an open alert without a value."""
    (set_,) = run(threshold(), [95])
    assert set_.upsert is not None
    t = valid(clear_tca(set_.upsert, ctx(3), reason="server deleted"))
    (event,) = t.events
    assert event.fields["alert_action"] == "CLEAR"
    assert event.fields["counters"][0]["name"] == "cpu.percentUsage"
    assert event.fields["counters"][0]["value"] == "unknown"
    assert t.delete == ("Owner_R1", "s-1", "TCA:cpu.percentUsage:above90")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    metric=st.sampled_from(KNOWN_METRICS),
    direction=st.sampled_from(["above", "below"]),
    limit=st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
    cont=st.booleans(),
    severity=st.sampled_from(["CRITICAL", "MAJOR", "MINOR", "WARNING"]),
    values=st.lists(
        st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), max_size=8
    ),
)
def test_any_values_give_valid_alternating_events(
    metric: str,
    direction: str,
    limit: float,
    cont: bool,
    severity: str,
    values: list[float | None],
) -> None:
    """Any value sequence: events validate, SET opens, CLEAR closes, CONT only when open."""
    th = Threshold.model_validate(
        {"metric": metric, direction: limit, "cont": cont, "severity": severity}
    )
    open_ = False
    for t in run(th, values):
        for event in t.events:
            action = event.fields["alert_action"]
            assert (action == "SET") is (not open_)
            open_ = action != "CLEAR"
