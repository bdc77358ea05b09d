"""The console's pure parts: JSON path -> line, the event/poll history, chart geometry."""

from __future__ import annotations

import json
from types import SimpleNamespace

from vesagent.history import EVENTS_PER_REGION, History, delivery_outcome
from vesagent.ui import charts
from vesagent.ui.jsonpos import line_of, split_path
from vesagent.ui.views import cross_site_reason

TEXT = """{
  "ves_subscription": {
    "endpoint": "http://x"
  },
  "backlogs": [
    {"domain": "fault"},
    {
      "domain": "fault",
      "poll_interval": -1
    }
  ]
}"""


def test_split_path() -> None:
    """check-config's path syntax splits into keys and indexes."""
    assert split_path("backlogs[1].thresholds[0].metric") == (
        "backlogs",
        1,
        "thresholds",
        0,
        "metric",
    )
    assert split_path("") == ()


def test_line_of_finds_members_elements_and_nearest_parent() -> None:
    """Present paths map to their own line, missing ones to their nearest parent's."""
    assert line_of(TEXT, "backlogs[1].poll_interval") == 9
    assert line_of(TEXT, "backlogs[0]") == 6
    assert line_of(TEXT, "backlogs[1].type") == 7  # missing member: its object
    assert line_of(TEXT, "ves_subscription.password") == 2
    assert line_of(TEXT, "") == 1


def test_line_of_inside_a_cloud_extra_info_object() -> None:
    """Paths relative to vesagent_config resolve inside a whole cloud-extra-info object."""
    text = json.dumps({"other": 1, "vesagent_config": json.loads(TEXT)}, indent=2)
    line = line_of(text, "backlogs[1].poll_interval")
    assert line is not None and '"poll_interval": -1' in text.splitlines()[line - 1]


def test_line_of_survives_broken_json() -> None:
    """Half-typed JSON never raises; what was read before the break still resolves."""
    assert line_of('{\n  "a": 1,\n  "b": [', "a") == 2
    assert line_of("nonsense", "a") == 1
    assert line_of("", "a") == 1  # the top, where the missing value belongs


def event(event_id: str, domain: str = "fault", severity: str = "CRITICAL") -> SimpleNamespace:
    return SimpleNamespace(
        event_id=event_id,
        sequence=0,
        domain=domain,
        fields={"severity": severity},
        source_name="vm-1",
        source_id="id-1",
    )


def test_history_tracks_outcomes_by_event_id() -> None:
    """Queued events take the outcome the collector answered for their (eventId, sequence)."""
    history = History(clock=lambda: 600.0)
    history.record_queued("R", [event("a"), event("b", "heartbeat", "")])
    history.record_sent([SimpleNamespace(event_id="a", sequence=0)], 202)
    history.record_sent([SimpleNamespace(event_id="b", sequence=0)], 400, "bad event")
    a, b = history.events("R")
    assert (a.outcome, a.status, a.severity) == ("delivered", 202, "CRITICAL")
    assert (b.outcome, b.detail) == ("refused", "bad event")
    assert history.per_minute("R", minutes=2) == [(9, {}), (10, {"fault": 1, "heartbeat": 1})]


def test_history_is_bounded_per_region() -> None:
    """A region keeps its last EVENTS_PER_REGION events; the oldest are forgotten."""
    history = History()
    history.record_queued("R", [event(f"e{i}") for i in range(EVENTS_PER_REGION + 5)])
    kept = history.events("R")
    assert len(kept) == EVENTS_PER_REGION
    assert kept[0].event_id == "e5"
    history.record_sent([SimpleNamespace(event_id="e0", sequence=0)], 202)  # forgotten: no-op
    assert history.events("Other") == []
    assert sum(history.per_minute("R", minutes=1)[0][1].values()) == EVENTS_PER_REGION + 5


def test_delivery_outcome_words() -> None:
    """2xx delivered, retryable or no answer retrying, other 4xx refused."""
    assert [delivery_outcome(s) for s in (200, 503, 429, None, 400, 401)] == [
        "delivered",
        "retrying",
        "retrying",
        "retrying",
        "refused",
        "refused",
    ]


def test_events_chart_stacks_domains_to_the_peak() -> None:
    """The tallest minute fills the plot; a minute's domains stack without overlapping."""
    chart = charts.events_per_minute([(1, {}), (2, {"fault": 1, "heartbeat": 3})])
    assert chart.y_max == "4" and not chart.empty
    fault, heartbeat = chart.bars
    assert fault.css == "d-fault" and heartbeat.css == "d-heartbeat"
    assert fault.y + fault.height == charts.PLOT_BOTTOM
    assert heartbeat.y + heartbeat.height == fault.y
    assert heartbeat.y == charts.PLOT_TOP


def test_poll_chart_marks_failures() -> None:
    """Failed polls are drawn in the failure colour; no polls means an empty chart."""
    from vesagent.history import PollRecord

    chart = charts.poll_durations([PollRecord(0, 0.1, True), PollRecord(1, 0.2, False)])
    assert [b.css for b in chart.bars] == ["poll-ok", "poll-failed"]
    assert chart.y_max == "200 ms"
    assert charts.poll_durations([]).empty


def test_cross_site_reason() -> None:
    """Reads pass; writes need the console header and a same-site, same-origin browser."""
    host = "http://127.0.0.1:9009/"
    ok = {"X-Vesagent-Console": "1"}
    assert cross_site_reason("GET", {}, host) is None
    assert cross_site_reason("POST", ok, host) is None
    assert cross_site_reason("POST", {**ok, "Origin": "http://127.0.0.1:9009"}, host) is None
    assert cross_site_reason("POST", {}, host)
    assert cross_site_reason("POST", {**ok, "Sec-Fetch-Site": "same-site"}, host)
    assert cross_site_reason("POST", {**ok, "Origin": "http://127.0.0.1:9010"}, host)
