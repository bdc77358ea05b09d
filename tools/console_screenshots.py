"""Screenshots of the console for docs/: the demo world, an agent, a few failures, Chromium.

Run from the repository root (needs chromium + chromedriver, as the browser tests do):

    .venv/bin/python tools/console_screenshots.py docs/

It starts the demo topology of ``make demo``, an in-process agent, breaks a VM, a compute host
and a CPU threshold, adds a region with an invalid config, then saves ``console-overview.png``,
``console-region.png`` and ``console-editor.png``.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from vesagent.agent import build_agent, shutdown
from vesagent.api import serve
from vesagent.settings import Settings
from vesagent.sim.aai import AaiSim
from vesagent.sim.topology import OWNER, extra_info, start_world, vesagent_config

FLAGS = [
    *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
    *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
    *("--hide-scrollbars", "--force-device-scale-factor=1"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(out: Path) -> int:
    world = start_world()
    bad = vesagent_config(
        world.ves.url,
        "v7",
        [{"domain": "fault", "type": "vm", "tenant": "tenant-a", "poll_interval": 0}],
    )
    bad["ves_subscription"]["endpoint"] = "ftp://collector.example/eventListener/v7"
    world.aai.put_region(
        AaiSim.make_region(
            OWNER,
            "RegionEdge",
            extra_info=extra_info(bad, **{"openstack-region-id": "RegionEdge"}),
            keystone_url=world.openstack.keystone_url,
            username="admin",
            password="admin",
            project="admin",
        )
    )
    settings = Settings(
        aai_url=world.aai.url,
        state_dir=Path(tempfile.mkdtemp(prefix="vesagent-shots-")),
        listen=f"127.0.0.1:{free_port()}",
        aai_sync_interval=1,
    )
    agent = build_agent(settings)
    server = serve(agent)
    agent.sender.start()
    threading.Thread(target=agent.reconciler.run, args=(agent.stop_event, 1.0), daemon=True).start()
    base = f"http://{server.effective_listen}/ui/"
    os_ = world.openstack
    try:
        time.sleep(8)
        os_.set_status(
            "RegionOne",
            world.servers["RegionOne"][0],
            "ERROR",
            fault={"code": 500, "message": "hypervisor lost the guest"},
        )
        os_.set_status("RegionOne", world.servers["RegionOne"][2], "SHUTOFF")
        os_.set_service("RegionTwo", "compute-1", up=False)
        os_.set_cpu("RegionTwo", world.servers["RegionTwo"][0], 97)
        time.sleep(25)
        options = webdriver.ChromeOptions()
        for flag in FLAGS:
            options.add_argument(flag)
        with tempfile.TemporaryDirectory() as profile:
            options.add_argument(f"--user-data-dir={profile}")
            driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
            try:
                driver.set_window_size(1400, 520)
                driver.get(base)
                time.sleep(1.5)
                driver.save_screenshot(str(out / "console-overview.png"))
                driver.set_window_size(1400, 1500)
                driver.get(f"{base}regions/{OWNER}_RegionTwo")
                time.sleep(1.5)
                driver.save_screenshot(str(out / "console-region.png"))
                driver.set_window_size(1400, 820)
                driver.get(f"{base}regions/{OWNER}_RegionEdge/config")
                time.sleep(1)
                area = driver.find_element(By.ID, "config")
                value = area.get_attribute("value")
                start = value.index('"tenant-a"')
                driver.execute_script(
                    "arguments[0].focus();"
                    " arguments[0].setSelectionRange(arguments[1], arguments[2]);",
                    area,
                    start,
                    start + len('"tenant-a"'),
                )
                area.send_keys('"tenant-b"')
                time.sleep(1.5)
                driver.save_screenshot(str(out / "console-editor.png"))
            finally:
                driver.quit()
    finally:
        shutdown(agent)
        server.close()
        world.stop()
    print(f"screenshots written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs")))
