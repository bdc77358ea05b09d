"""The scale figures: the real agent (``vesagent run`` in a subprocess) watching 100,000 VMs
in 100 regions polled every 10 s, against simulators in this process.

Measured from outside, as an operator would: CPU from ``/proc/PID/stat`` over a window after
the first full polls, resident memory from ``/proc/PID/status`` before any region is managed
and after all are tracked, detection latency from a status change in the Nova simulator to
the VES simulator's 202 (its ``received_at``).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from vesagent.bench.measures import _token, parsed_dict_bytes_per_vm
from vesagent.bench.report import Figure
from vesagent.bench.world import (
    SimClock,
    aai_region,
    config_text,
    first_arrivals,
    median,
    percentile,
    wait_for,
)
from vesagent.sim.aai import AaiSim
from vesagent.sim.openstack import OpenStackSim
from vesagent.sim.ves import VesCollectorSim

API = "/api/multicloud/v0/vesagent"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` (all its threads) from ``/proc/PID/stat``."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rsplit(")", 1)[1].split()
    # Fields after the command name start at field 3 (state); utime is 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def resident_bytes(pid: int) -> int:
    """``VmRSS`` of process ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


_HANDED_OUT: set[int] = set()
_HANDED_OUT_LOCK = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago and was never handed out before by
    this process: replicas started at the same moment never get the same port (the second
    one would fail to bind while the first answered its readiness probe for it)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        with _HANDED_OUT_LOCK:
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port


@dataclass
class AgentProcess:
    """``vesagent run`` as a subprocess with its log in a file."""

    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @classmethod
    def start(
        cls,
        aai_url: str,
        state_dir: Path,
        sync: float,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
        command: Sequence[str] | None = None,
    ) -> AgentProcess:
        """Start the agent and wait (bounded) until ``/readyz`` answers 200.

        ``command`` replaces ``python -m vesagent run`` (to compare a patched agent)."""
        listen = f"127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("VESAGENT_")}
        env.update(
            VESAGENT_AAI_URL=aai_url,
            VESAGENT_AAI_SYNC_INTERVAL=str(sync),
            VESAGENT_STATE_DIR=str(state_dir),
            VESAGENT_LISTEN=listen,
            VESAGENT_LOG_LEVEL="info",
        )
        env.update(extra_env or {})
        log = log_path.open("ab")
        argv = list(command or [sys.executable, "-m", "vesagent", "run"])
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=log)
        log.close()
        agent = cls(proc, f"http://{listen}", log_path)
        wait_for(agent.ready, 30, "the agent's /readyz")
        return agent

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"agent exited {self.proc.returncode}: {self.tail()}")
        try:
            return requests.get(self.url + "/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def regions(self) -> list[dict[str, Any]]:
        """The agent's own view of its regions (``GET /api/multicloud/v0/vesagent``)."""
        resp = requests.get(self.url + API, timeout=10)
        resp.raise_for_status()
        return list(resp.json()["regions"])

    def tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it does not exit within 15 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(5)


def _server_lists(sim: OpenStackSim) -> int:
    """``GET /servers/detail`` requests the Nova simulator served, all regions together."""
    return sum(n for key, n in sim.requests.snapshot().items() if key.endswith("/servers/detail"))


def _all_tracked(agent: AgentProcess, regions: int, vms: int) -> bool:
    listed = agent.regions()
    return len(listed) == regions and all(
        r["tracked_servers"] == vms and r["last_poll_ok"] for r in listed
    )


def measure_scale(
    regions: int = 100,
    vms_per_region: int = 1000,
    interval: float = 10.0,
    window: float = 60.0,
    sync: float = 5.0,
    baseline_cpu_per_vm: float | None = None,
    baseline_sweep_per_vm: float | None = None,
    seed: int = 7,
    extra_env: dict[str, str] | None = None,
    command: Sequence[str] | None = None,
) -> tuple[list[Figure], dict[str, Any]]:
    """CPU share, memory per tracked VM and detection latency of the real agent at scale.

    ``baseline_cpu_per_vm`` / ``baseline_sweep_per_vm`` are the per-VM poller's CPU and wall
    seconds per VM measured earlier in the same run (``measure_region_poll``).
    """
    total = regions * vms_per_region
    names = [f"Region{n:03d}" for n in range(regions)]
    clock = SimClock()
    rng = random.Random(seed)
    side: dict[str, Any] = {}
    openstack = OpenStackSim(regions=names, clock=clock).start()
    ves = VesCollectorSim().start()
    aai = AaiSim().start()
    agent: AgentProcess | None = None
    workdir = tempfile.TemporaryDirectory(prefix="vesagent-bench-")
    try:
        started = time.perf_counter()
        with clock.past():
            ids = {name: openstack.create_servers(name, vms_per_region) for name in names}
        side["sim_setup_s"] = round(time.perf_counter() - started, 2)
        dict_bytes = parsed_dict_bytes_per_vm(openstack, names[0], _token(openstack))
        endpoint = f"{ves.url}/eventListener/v7"
        tmp = Path(workdir.name)
        agent = AgentProcess.start(
            aai.url, tmp / "state", sync, tmp / "agent.log", extra_env, command
        )
        pid = agent.proc.pid
        # A first pass over an empty A&AI, then the footprint without any region.
        wait_for(
            lambda: requests.get(agent.url + API, timeout=5).json()["aai"]["last_success"],
            30,
            "a first A&AI pass",
        )
        rss_empty = resident_bytes(pid)
        extra = config_text(endpoint, interval)
        aai.load({"cloud-region": [aai_region(n, openstack.keystone_url, extra) for n in names]})
        loaded = time.perf_counter()
        wait_for(lambda: _all_tracked(agent, regions, vms_per_region), 120, "all regions tracked")
        side["first_full_polls_s"] = round(time.perf_counter() - loaded, 2)

        # The measuring window: CPU of the agent and of this process (the simulators).
        flips = sorted(
            (rng.uniform(0.5, window - 0.5), name, rng.choice(ids[name])) for name in names
        )
        flipped: dict[str, float] = {}
        pause = threading.Event()
        nova_before = openstack.requests.total("/compute")
        lists_before = _server_lists(openstack)
        cpu0, own0, w0 = process_cpu_seconds(pid), time.process_time(), time.monotonic()
        for offset, name, vm in flips:
            pause.wait(max(0.0, w0 + offset - time.monotonic()))
            flipped[vm] = time.time()
            openstack.set_status(name, vm, "ERROR")
        pause.wait(max(0.0, w0 + window - time.monotonic()))
        elapsed = time.monotonic() - w0
        agent_cpu = process_cpu_seconds(pid) - cpu0
        sims_cpu = time.process_time() - own0
        nova_requests = openstack.requests.total("/compute") - nova_before
        list_requests = _server_lists(openstack) - lists_before
        rss_full = resident_bytes(pid)

        # Detection: every flipped VM's raise, as the collector received it.
        received = wait_for(
            lambda: first_arrivals(ves, flipped), interval + 15, "every flipped VM's raise"
        )
        latencies = [received[vm] - at for vm, at in flipped.items()]
        side["agent_log_tail"] = agent.tail(5)
        still_ok = all(r["last_poll_ok"] for r in agent.regions())
    finally:
        if agent is not None:
            agent.stop()
        for sim in (aai, ves, openstack):
            sim.stop()
        workdir.cleanup()

    share = agent_cpu / elapsed
    per_vm = (rss_full - rss_empty) / total
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    base_share = baseline_cpu_per_vm * total / interval if baseline_cpu_per_vm else None
    base_latency = (
        interval + baseline_sweep_per_vm * vms_per_region if (baseline_sweep_per_vm) else None
    )
    polls = regions * elapsed / interval
    side.update(
        sims_cpu_share=sims_cpu / elapsed,
        nova_requests_per_poll=nova_requests / polls,
        server_lists_per_poll=list_requests / polls,
        window_s=round(elapsed, 1),
        rss_empty_mib=round(rss_empty / 2**20, 1),
        rss_tracking_mib=round(rss_full / 2**20, 1),
        polls_ok=still_ok,
    )
    common = {"regions": regions, "vms": total, "interval_s": interval}
    return [
        Figure(
            "scale_cpu_share",
            f"Agent CPU, {total:,} VMs / {regions} regions / {interval:g} s polls",
            "% core",
            share * 100,
            base_share * 100 if base_share is not None else None,
            "per-VM poller, from its measured CPU per VM",
            "< 25",
            share < 0.25,
            {
                **common,
                "window_s": round(elapsed, 1),
                "sims_cpu_share_pct": round(sims_cpu / elapsed * 100, 1),
                "nova_requests_per_region_poll": round(nova_requests / polls, 2),
                "server_lists_per_region_poll": round(list_requests / polls, 2),
                "first_full_polls_s": side["first_full_polls_s"],
                "all_polls_ok": still_ok,
            },
        ),
        Figure(
            "scale_rss_per_vm",
            "Resident memory per tracked VM",
            "B",
            per_vm,
            dict_bytes,
            "Nova's parsed server dict (naive cache)",
            "<= 1,024",
            per_vm <= 1024,
            {**common, "rss_empty_mib": side["rss_empty_mib"], "rss_mib": side["rss_tracking_mib"]},
        ),
        Figure(
            "detection_latency_p99",
            f"Detection latency p99 (p50 {p50:.2f} s)",
            "s",
            p99,
            base_latency,
            "per-VM poller est.: interval + its sweep",
            f"<= {interval + 1:g}",
            p99 <= interval + 1,
            {
                "p50_s": round(p50, 3),
                "p99_s": round(p99, 3),
                "max_s": round(max(latencies), 3),
                "median_s": round(median(latencies), 3),
                "samples": len(latencies),
            },
        ),
    ], side
