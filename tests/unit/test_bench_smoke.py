"""``make bench`` kept working: its measuring functions at tiny sizes, and its pure helpers."""

from __future__ import annotations

import json
import os

from vesagent.bench import measures, report, scale
from vesagent.bench.baseline import compute_endpoint
from vesagent.bench.report import Figure
from vesagent.bench.world import percentile


def test_table_has_the_issue_columns_and_aligned_cells() -> None:
    fig = Figure("k", "Nova requests", "req", 1.0, 3000.0, "per-VM", "<= 2", True)
    text = report.render_table(report.table_rows([fig]))
    header, rule, row = text.splitlines()
    assert header.split() == ["figure", "vesagent", "baseline", "ratio", "goal", "met?"]
    assert row.startswith("Nova requests") and row.endswith("yes")
    assert "1/3,000" in row and len(rule) >= len(row)
    assert fig.to_json()["ratio"] == 1 / 3000


def test_ratio_and_numbers() -> None:
    assert Figure("k", "t", "", 5.0, 0.0, "", "", None).ratio is None
    assert report.fmt_ratio(2.5) == "2.5x"
    assert report.fmt_number(25_422.4, "ev/s") == "25,422 ev/s"
    assert report.fmt_number(None) == "-"
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([3.0, 1.0], 1.0) == 3.0


def test_compute_endpoint_picks_region_and_interface() -> None:
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
    assert scale.resident_bytes(os.getpid()) > 10 * 2**20
    assert scale.process_cpu_seconds(os.getpid()) > 0


def test_simulators_alone() -> None:
    sims = measures.measure_simulators(vms=50, requests_n=20, ves_events=500, aai_regions=20)
    assert sims["aai_list_regions"] == 20
    assert sims["nova_empty_changes_per_s"] > 20
    assert sims["ves_batch_events_per_s"] > sims["ves_batch_events_per_s_validating"] > 0


def test_region_poll_against_the_per_vm_baseline() -> None:
    figures, side = measures.measure_region_poll(vms=40, incremental_polls=2, full_polls=1)
    by_key = {f.key: f for f in figures}
    nova = by_key["nova_requests_per_poll"]
    assert (nova.vesagent, nova.baseline, nova.met) == (1, 40, True)
    assert nova.notes["full_poll_requests"] == 1
    assert side["baseline_auths_per_poll"] == 1
    assert by_key["cpu_full_poll"].vesagent > 0 and by_key["cpu_full_poll"].baseline > 0


def test_keystone_tokens_are_reused_until_near_expiry() -> None:
    (fig,), _ = measures.measure_keystone(
        window=2.6, test_lifetime=121.0, cadence=0.05, baseline_polls=1
    )
    # 1 s of usable life per token: a first token and two refreshes, not one per poll.
    assert 2 <= fig.notes["auths_in_window"] <= 4
    assert fig.notes["polls_in_window"] > 20
    assert fig.vesagent < 2.0  # per-poll authentication would give ~20/h here
    assert fig.baseline == 360.0


def test_delivery_batched_beats_one_per_request() -> None:
    figures, _ = measures.measure_delivery(events=300, single_events=30, validating_events=60)
    batched = figures[0]
    assert batched.notes["requests"] == 1  # 300 events fit one batch
    assert batched.vesagent > batched.baseline > 0


def test_reconcile_passes_over_unchanged_regions() -> None:
    (fig,), _ = measures.measure_reconcile(regions=30, passes=2)
    assert 0 < fig.vesagent < 1000
    assert fig.baseline is not None and fig.baseline > 0
    json.dumps(fig.to_json())
