"""``make bench`` kept working: its measuring functions at tiny sizes, and its pure helpers.

These check what the benchmark counts and reports, never how fast anything is: speed is
measured by ``make bench`` (ratios against a baseline in the same run), not asserted here.
"""

from __future__ import annotations

import json
import os

from vesagent.bench import measures, notifications, report, scale
from vesagent.bench.baseline import compute_endpoint
from vesagent.bench.report import Figure
from vesagent.bench.world import percentile


def test_table_has_the_issue_columns_and_aligned_cells() -> None:
    """The report table has the issue's columns, and its cells line up under the header."""
    fig = Figure("k", "Nova requests", "req", 1.0, 3000.0, "per-VM", "<= 2", True)
    text = report.render_table(report.table_rows([fig]))
    header, rule, row = text.splitlines()
    assert header.split() == ["figure", "vesagent", "baseline", "ratio", "goal", "met?"]
    assert row.startswith("Nova requests") and row.endswith("yes")
    assert "1/3,000" in row and len(rule) >= len(row)
    assert fig.to_json()["ratio"] == 1 / 3000


def test_ratio_and_numbers() -> None:
    """Ratios, numbers with units and percentiles are formatted as the report shows them."""
    assert Figure("k", "t", "", 5.0, 0.0, "", "", None).ratio is None
    assert report.fmt_ratio(2.5) == "2.5x"
    assert report.fmt_number(25_422.4, "ev/s") == "25,422 ev/s"
    assert report.fmt_number(None) == "-"
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([3.0, 1.0], 1.0) == 3.0


def test_compute_endpoint_picks_region_and_interface() -> None:
    """The baseline client picks the public compute endpoint of the asked region."""
    catalog = [
        {"type": "identity", "endpoints": []},
        {
            "type": "compute",
            "endpoints": [
                {"region_id": "A", "interface": "public", "url": "http://a/"},
                {"region_id": "B", "interface": "admin", "url": "http://b-admin"},
                {"region_id": "B", "interface": "public", "url": "http://b"},
            ],
        },
    ]
    assert compute_endpoint(catalog, "B") == "http://b"
    assert compute_endpoint(catalog, "A") == "http://a"


def test_proc_readers_see_this_process() -> None:
    """Resident memory and CPU time are read from /proc for a live process."""
    assert scale.resident_bytes(os.getpid()) > 10 * 2**20
    assert scale.process_cpu_seconds(os.getpid()) > 0


def test_simulators_alone() -> None:
    """Every simulator figure is measured (a positive rate or duration) over what was served."""
    sims = measures.measure_simulators(vms=50, requests_n=20, ves_events=500, aai_regions=20)
    assert sims["aai_list_regions"] == 20
    assert sims["nova_full_list_vms"] == 50 and sims["nova_full_list_bytes"] > 0
    for key in (
        "nova_full_list_ms",
        "nova_empty_changes_per_s",
        "keystone_tokens_per_s",
        "ves_batch_events_per_s",
        "ves_batch_events_per_s_validating",
        "aai_list_ms",
    ):
        assert sims[key] > 0, key


def test_region_poll_against_the_per_vm_baseline() -> None:
    """vesagent makes one Nova request per poll where the per-VM baseline makes one per VM."""
    figures, side = measures.measure_region_poll(vms=40, incremental_polls=2, full_polls=1)
    by_key = {f.key: f for f in figures}
    nova = by_key["nova_requests_per_poll"]
    assert (nova.vesagent, nova.baseline, nova.met) == (1, 40, True)
    assert nova.notes["full_poll_requests"] == 1
    assert side["baseline_auths_per_poll"] == 1
    assert by_key["cpu_full_poll"].vesagent > 0 and by_key["cpu_full_poll"].baseline > 0


def test_keystone_tokens_are_reused_until_near_expiry() -> None:
    """Tokens are reused until near expiry: a few authentications, not one per poll."""
    (fig,), _ = measures.measure_keystone(
        window=2.6, test_lifetime=121.0, cadence=0.05, baseline_polls=1
    )
    # 1 s of usable life per token: a first token and two refreshes, not one per poll.
    assert 2 <= fig.notes["auths_in_window"] <= 4
    assert fig.notes["polls_in_window"] > 20
    assert fig.vesagent < 2.0  # per-poll authentication would give ~20/h here
    assert fig.baseline == 360.0


def test_delivery_batches_events_into_one_request() -> None:
    """300 events go to the collector in one batch request; both delivery rates are measured."""
    figures, _ = measures.measure_delivery(events=300, single_events=30, validating_events=60)
    batched = figures[0]
    assert batched.notes["requests"] == 1  # 300 events fit one batch
    assert batched.vesagent > 0 and batched.baseline is not None and batched.baseline > 0


def test_reconcile_passes_over_unchanged_regions() -> None:
    """Reconcile passes over unchanged regions are measured and the figure serialises."""
    (fig,), _ = measures.measure_reconcile(regions=30, passes=2)
    assert fig.vesagent > 0 and fig.unit == "ms"
    assert fig.baseline is not None and fig.baseline > 0
    json.dumps(fig.to_json())


def test_soak_judge_counts_lost_clears_duplicates_and_lost_raises() -> None:
    """The soak's judge reads the collector's events against each VM's final state."""
    from vesagent.bench.postgres import judge

    def fault(vm: str, event_id: str, severity: str) -> dict[str, object]:
        return {
            "commonEventHeader": {"domain": "fault", "sourceId": vm, "eventId": event_id},
            "faultFields": {"eventSeverity": severity},
        }

    events = [
        fault("a", "e1", "CRITICAL"),
        fault("a", "e1", "NORMAL"),  # a: raised, cleared, final ACTIVE: right
        fault("b", "e2", "CRITICAL"),  # b: ACTIVE at the end, no clear: a lost clear
        fault("c", "e3", "CRITICAL"),
        fault("c", "e3", "CRITICAL"),  # c: ERROR, raised twice
        fault("d", "e4", "NORMAL"),  # d: a clear whose raise never arrived
    ]
    found = judge(events, {"a": "ACTIVE", "b": "ACTIVE", "c": "ERROR", "d": "ERROR", "e": "ACTIVE"})
    assert found == {"duplicate_raises": 1, "lost_events": 1, "lost_clears": 1, "wrong_final": 2}


def test_poll_timeline_gaps_and_overlaps() -> None:
    """Who listed which region when: the longest unpolled gap and doubly polled hand-overs."""
    from vesagent.bench.leases import handovers, largest_gaps, overlaps, poll_timeline
    from vesagent.sim.base import Seen

    listing = "/compute/R1/v2.1/servers/detail"
    trail = [
        Seen(1.0, "GET", listing, "a"),
        Seen(2.0, "GET", listing, "a"),
        Seen(2.5, "GET", listing, "b"),  # b within one interval of a: doubly polled
        Seen(6.5, "GET", listing, "b"),
        Seen(3.0, "GET", "/compute/R1/v2.1/os-services", "a"),  # not a listing
    ]
    timeline = poll_timeline(trail)
    assert timeline == {"R1": [(1.0, "a"), (2.0, "a"), (2.5, "b"), (6.5, "b")]}
    assert largest_gaps(timeline, ["R1", "R2"], 0.0, 7.0) == {"R1": 4.0, "R2": 7.0}
    (double,) = overlaps(timeline, 1.0)
    assert (double.first, double.second, double.after) == ("a", "b", 0.5)
    assert handovers(timeline) == [0.5]


def test_watermark_bytes_against_the_own_clock_overlap() -> None:
    """With the old own-clock overlap a change is listed again poll after poll; with Nova's
    clock about once: fewer servers and bytes per poll, bytes counted for both."""
    figures, side = notifications.measure_watermark_bytes(vms=40, polls=3, changed=1, step=0.4)
    (figure,) = figures
    assert figure.key == "nova_bytes_per_hour_watermark"
    listed = side["servers_listed_per_poll"]
    assert listed[notifications.BEFORE] > listed[notifications.AFTER] >= 1
    listing_bytes = side["bytes_per_poll_listing"]
    assert listing_bytes[notifications.BEFORE] > listing_bytes[notifications.AFTER]
    assert side["bytes_per_poll_os_services"][notifications.AFTER] > 0
    assert side["full_listing_bytes"] > 0
    assert 0 < figure.vesagent < figure.baseline and figure.met
