"""``python -m vesagent.bench``: run every measurement, print the table, write the JSON file.

Logging is configured (warnings only) before any vesagent module that logs is imported:
their module-level loggers bind to whatever configuration exists at import time.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vesagent import logs

DEFAULT_OUTPUT = Path("bench-results.json")


@dataclass(frozen=True)
class Sizes:
    """Every size the bench uses; ``QUICK`` keeps a smoke run to seconds."""

    region_vms: int = 3000
    keystone_window: float = 9.0
    delivery_events: int = 20_000
    delivery_single: int = 1_000
    delivery_validating: int = 5_000
    reconcile_regions: int = 1000
    scale_regions: int = 100
    scale_vms: int = 1000
    scale_window: float = 60.0
    sim_vms: int = 1000


FULL = Sizes()
QUICK = Sizes(
    region_vms=300,
    keystone_window=4.0,
    delivery_events=2000,
    delivery_single=100,
    delivery_validating=500,
    reconcile_regions=100,
    scale_regions=5,
    scale_vms=100,
    scale_window=12.0,
    sim_vms=200,
)


def _step(name: str, fn: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    print(f"  {name} ...", end="", flush=True)
    value = fn()
    print(f" {time.perf_counter() - started:.1f} s", flush=True)
    return value


def simulator_rows(sims: dict[str, Any], sizes: Sizes, scale_interval: float) -> list[tuple]:
    """The simulators' own capacity beside what the bench asks of them."""
    need_nova = 2 * sizes.scale_regions / scale_interval  # servers + os-services per poll
    return [
        (
            "Nova sim, empty changes-since",
            f"{sims['nova_empty_changes_per_s']:,.0f} req/s",
            f"{need_nova:,.0f} req/s at scale",
            f"{sims['nova_empty_changes_per_s'] / need_nova:,.0f}x",
        ),
        (
            f"Nova sim, full list of {sims['nova_full_list_vms']:,} VMs",
            f"{sims['nova_full_list_ms']:,.0f} ms",
            "-",
            "-",
        ),
        ("Keystone sim, tokens", f"{sims['keystone_tokens_per_s']:,.0f} /s", "-", "-"),
        (
            "VES sim, batches, no validation",
            f"{sims['ves_batch_events_per_s']:,.0f} ev/s",
            "5,000 ev/s goal",
            f"{sims['ves_batch_events_per_s'] / 5000:,.1f}x",
        ),
        (
            "VES sim, batches, validating",
            f"{sims['ves_batch_events_per_s_validating']:,.0f} ev/s",
            "-",
            "-",
        ),
        (
            f"A&AI sim, list {sims['aai_list_regions']:,} regions (+client)",
            f"{sims['aai_list_ms']:,.0f} ms",
            "50 ms pass goal",
            "-",
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench; exit 0 when every figure was measured (missed goals are reported)."""
    parser = argparse.ArgumentParser(prog="python -m vesagent.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--profile", action="store_true", help="always print the profiles")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--window", type=float, help="seconds of the scale measuring window")
    args = parser.parse_args(argv)
    logs.configure("console", "warning")
    from vesagent.bench import diagnose, measures, notifications, postgres, report, scale

    sizes = QUICK if args.quick else FULL
    window = args.window or sizes.scale_window
    interval = 10.0
    started = time.perf_counter()
    print("vesagent bench (127.0.0.1 only; simulators in this process)", flush=True)
    sims = _step("simulators alone", lambda: measures.measure_simulators(vms=sizes.sim_vms))
    region_figs, region_side = _step(
        "one region, per-VM baseline",
        lambda: measures.measure_region_poll(vms=sizes.region_vms),
    )
    key_figs, _ = _step(
        "Keystone token reuse", lambda: measures.measure_keystone(window=sizes.keystone_window)
    )
    del_figs, _ = _step(
        "delivery",
        lambda: measures.measure_delivery(
            sizes.delivery_events, sizes.delivery_single, sizes.delivery_validating
        ),
    )
    rec_figs, _ = _step(
        "reconcile", lambda: measures.measure_reconcile(regions=sizes.reconcile_regions)
    )
    scale_figs, scale_side = _step(
        f"scale: {sizes.scale_regions * sizes.scale_vms:,} VMs, agent subprocess",
        lambda: scale.measure_scale(
            regions=sizes.scale_regions,
            vms_per_region=sizes.scale_vms,
            interval=interval,
            window=window,
            baseline_cpu_per_vm=region_side["baseline_cpu_per_vm"],
            baseline_sweep_per_vm=region_side["baseline_sweep_seconds"] / region_side["vms"],
        ),
    )
    notif_figs, _ = _step(  # issue 19: notifications vs polling, needs rabbitmq-server
        "notifications vs polling",
        lambda: notifications.measure_notifications(
            **(notifications.QUICK if args.quick else notifications.FULL)
        ),
    )
    pg_figs, pg_side = _step(  # issue 16: PostgreSQL mode, replicas as processes
        "PostgreSQL mode (store, take-over, soak, 3-replica scale)",
        lambda: postgres.measure_postgres(postgres.QUICK if args.quick else postgres.FULL),
    )
    wm_figs, _ = _step(  # issue 19: bytes with the watermark from Nova's clock vs before
        "watermark: response bytes",
        lambda: notifications.measure_watermark_bytes(
            **(notifications.WATERMARK_QUICK if args.quick else notifications.WATERMARK_FULL)
        ),
    )
    figures = [
        *region_figs,
        *key_figs,
        *scale_figs,
        *notif_figs,
        *wm_figs,
        *del_figs,
        *rec_figs,
        *pg_figs,
    ]
    order = [
        "nova_requests_per_poll",
        "keystone_auths_per_hour",
        "cpu_full_poll",
        "cpu_incremental_poll",
        "scale_cpu_share",
        "scale_rss_per_vm",
        "detection_latency_p99",
        "notif_detection_latency_p99",
        "notif_nova_requests_per_hour",
        "notif_nova_bytes_per_hour",
        "nova_bytes_per_hour_watermark",
        "delivery_events_per_s",
        "delivery_events_per_s_validating",
        "reconcile_pass_ms",
    ]
    figures.sort(key=lambda f: order.index(f.key) if f.key in order else len(order))

    diagnostics: dict[str, Any] = {}
    missed = {f.key for f in figures if f.met is False}
    if args.profile or "cpu_full_poll" in missed:
        diagnostics["full_poll_profile"] = _step(
            "profile: full poll", lambda: diagnose.profile_full_poll(vms=sizes.region_vms)
        )
    if args.profile or "scale_rss_per_vm" in missed:
        diagnostics["memory_breakdown"] = _step(
            "memory breakdown",
            lambda: diagnose.memory_breakdown(sizes.scale_regions, sizes.scale_vms),
        )

    print()
    print("Simulators alone (they must not be the bottleneck):")
    print(
        report.render_table(
            simulator_rows(sims, sizes, interval),
            ("simulator", "capacity", "bench needs", "headroom"),
        )
    )
    print(
        f"  during the scale window the simulators used "
        f"{scale_side['sims_cpu_share'] * 100:.1f} % of a core"
    )
    print()
    print(report.render_table(report.table_rows(figures)))
    for key, text in diagnostics.items():
        print(f"\n{key}:")
        print(text if isinstance(text, str) else "\n".join(f"  {k}: {v}" for k, v in text.items()))
    total = time.perf_counter() - started
    report.write_json(
        args.output,
        figures,
        sims,
        {
            "diagnostics": diagnostics,
            "scale": scale_side,
            "postgres": pg_side,
            "seconds": round(total, 1),
        },
    )
    met = sum(1 for f in figures if f.met)
    goals = sum(1 for f in figures if f.met is not None)
    print(f"\n{met}/{goals} goals met; {total:.0f} s; figures written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
