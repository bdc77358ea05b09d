"""``vesagent sim``: the three simulators with the demo topology, until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import threading

from vesagent.sim.topology import start_world


def run_sims(args: argparse.Namespace) -> int:
    world = start_world(args.aai_port, args.openstack_port, args.ves_port)
    if args.topology:
        world.aai.load_file(args.topology)
    print(f"A&AI       {world.aai.url}/aai/v13/cloud-infrastructure/cloud-regions  (AAI/AAI)")
    print(f"Keystone   {world.openstack.keystone_url}  (admin/admin, project admin)")
    for region in world.servers:
        print(f"Nova       {world.openstack.compute_url(region)}  ({region})")
    print(f"VES        {world.ves.url}/eventListener/v5 and /v7  (sample1/sample1)")
    print("control    /_sim/... on each; Ctrl-C stops", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    world.stop()
    return 0
