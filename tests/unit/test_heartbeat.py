"""Heartbeat events: constant name, stable source, interval-aligned start, unique ids."""

from __future__ import annotations

import pytest

from vesagent import ves_schema
from vesagent.pollers.heartbeat import HEARTBEAT_EVENT_NAME, heartbeat_event
from vesagent.ves_client.encode import encode

NOW = 1_800_000_012_345_678


def beat(**kw: object):
    args: dict[str, object] = {
        "vimid": "Owner_R1",
        "source_name": "Owner_R1",
        "interval": 60,
        "now_us": NOW,
        "counter": 7,
        "reporter": "vesagent",
    }
    args.update(kw)
    event = heartbeat_event(**args)  # type: ignore[arg-type]
    for version in ("v5", "v7"):
        assert ves_schema.errors({"event": encode(event, version)}, version) == []
    return event


@pytest.mark.parametrize(
    ("now_us", "interval", "start_us"),
    [
        (1_800_000_012_345_678, 60, 1_800_000_000_000_000),
        (1_800_000_075_000_000, 60, 1_800_000_060_000_000),
        (1_800_000_000_000_000, 60, 1_800_000_000_000_000),
        (1_800_000_000_000_000, 10, 1_800_000_000_000_000),
        (1_800_000_009_999_999, 10, 1_800_000_000_000_000),
        (1_800_000_012_345_678, 1, 1_800_000_012_000_000),
        (1_800_000_012_345_678, 0, 1_800_000_012_000_000),
        (1_800_000_012_345_678, float("nan"), 1_800_000_012_000_000),
    ],
)
def test_start_is_rounded_down_to_the_interval(now_us: int, interval: float, start_us: int) -> None:
    """startEpochMicrosec = now rounded down to the interval; lastEpochMicrosec = now."""
    event = beat(now_us=now_us, interval=interval)
    assert event.start_epoch_us == start_us
    assert event.last_epoch_us == now_us
    assert event.start_epoch_us <= event.last_epoch_us


def test_header_rules() -> None:
    """Constant eventName, stable sourceName, sequence 0, interval in heartbeatFields."""
    event = beat()
    assert event.domain == "heartbeat"
    assert event.event_name == HEARTBEAT_EVENT_NAME == "Heartbeat_vesagent"
    assert event.source_name == "Owner_R1"
    assert event.sequence == 0
    assert event.fields == {"interval": 60}
    v7 = encode(event, "v7")
    assert v7["heartbeatFields"]["heartbeatInterval"] == 60
    assert encode(event, "v5")["heartbeatFields"]["heartbeatInterval"] == 60


def test_every_source_has_the_same_event_name() -> None:
    """DCAE matches on eventName: host and VIM heartbeats share it; sourceName differs."""
    vim, host = beat(), beat(source_name="compute-1")
    assert vim.event_name == host.event_name
    assert host.source_name == "compute-1"


def test_event_ids_are_unique_and_without_whitespace() -> None:
    """Ids differ per counter and per source of a region; whitespace never appears."""
    ids = {beat(counter=n).event_id for n in range(5)}
    ids |= {beat(counter=n, source_name="compute-1").event_id for n in range(5)}
    ids |= {beat(counter=n, vimid="Other_R2", source_name="Other_R2").event_id for n in range(5)}
    assert len(ids) == 15
    spaced = beat(vimid="Owner One_R 1", source_name="host\tA").event_id
    assert not any(ch.isspace() for ch in spaced)
    assert beat().event_id == "heartbeat-Owner_R1-7"


@pytest.mark.parametrize(("interval", "seconds"), [(60.0, 60), (300, 300), (1.4, 1), (0.2, 1)])
def test_interval_is_whole_seconds(interval: float, seconds: int) -> None:
    """heartbeatInterval is an integer number of seconds, at least 1."""
    assert beat(interval=interval).fields["interval"] == seconds


def test_empty_source_name_falls_back_to_vimid() -> None:
    """A source without a name still gets a stable sourceName: the vimid."""
    assert beat(source_name="").source_name == "Owner_R1"
