"""Small builders shared by the bench's measurements: regions, specs, events, timing."""

from __future__ import annotations

import gc
import json
import statistics
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from vesagent import AGENT_NAME
from vesagent.config import parse_cloud_extra_info
from vesagent.model import RegionKey, VimCredentials
from vesagent.pollers.decide import FaultContext, ServerView, decide_vm
from vesagent.sim.aai import AaiSim
from vesagent.spec import RegionSpec
from vesagent.store import OutboxItem
from vesagent.ves_client.encode import dumps, encode

OWNER = "CloudOwner"
ADMIN_ALL = ({"domain": "fault", "type": "vm", "tenant": "admin"},)
T = TypeVar("T")


def config_text(endpoint: str, poll: float = 10.0, backlogs: Sequence[dict[str, Any]] = ADMIN_ALL):
    """A ``cloud-extra-info`` string whose ``vesagent_config`` watches ``backlogs``."""
    config = {
        "ves_subscription": {"endpoint": endpoint},
        "poll_interval_default": poll,
        "backlogs": list(backlogs),
    }
    return json.dumps({"vesagent_config": config})


def region_spec(keystone_url: str, region: str, endpoint: str, poll: float = 10.0) -> RegionSpec:
    """The spec a reconciler would build for ``region`` of an OpenStack simulator."""
    config = parse_cloud_extra_info(config_text(endpoint, poll))
    assert config is not None
    creds = VimCredentials(keystone_url, "admin", "admin", "admin", region_name=region)
    return RegionSpec(RegionKey(OWNER, region), config, creds)


def aai_region(region: str, keystone_url: str, extra_info: str | None) -> dict[str, Any]:
    """An A&AI cloud-region (with its esr-system-info) pointing at the OpenStack simulator."""
    return AaiSim.make_region(
        OWNER,
        region,
        extra_info=extra_info,
        keystone_url=keystone_url,
        username="admin",
        password="admin",
        project="admin",
    )


def fault_items(count: int, endpoint: str, version: str = "v7") -> list[OutboxItem]:
    """``count`` distinct, valid fault raises as the poller would queue them."""
    ctx = FaultContext(vimid=f"{OWNER}_Bench", reporter=AGENT_NAME, now_us=1_764_000_000_000_000)
    items = []
    now = time.time()
    for n in range(count):
        server = ServerView(
            id=f"{n:08d}-0000-4000-8000-000000000000",
            name=f"vm-{n}",
            tenant_id="0" * 32,
            status="ERROR",
            host="compute-1",
            updated="2025-11-24T16:00:00Z",
            fault_code="500",
            fault_message="No valid host was found.",
        )
        (event,) = decide_vm(None, server, ctx).events
        encoded = encode(event, version)
        items.append(
            OutboxItem(endpoint, "fault", event.event_id, event.sequence, dumps(encoded), now)
        )
    return items


class SimClock:
    """The simulators' clock, which can be set back so that servers are created "long ago"
    (outside any ``changes-since`` window) and then runs at real time again."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    @contextmanager
    def past(self, seconds: float = 3600.0) -> Iterator[None]:
        """Inside the block the clock reads ``seconds`` earlier."""
        self.offset = -seconds
        try:
            yield
        finally:
            self.offset = 0.0


def old_servers(sim: Any, clock: SimClock, region: str, count: int, **kw: Any) -> list[str]:
    """Create ``count`` servers whose ``updated`` lies an hour back."""
    with clock.past():
        return sim.create_servers(region, count, **kw)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    """Median, NaN for no values."""
    return statistics.median(values) if values else float("nan")


def timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """``fn()``, the CPU seconds this thread spent in it and the wall seconds it took.

    A full collection first, so that each measured call starts from the same heap and pays
    only for the garbage collections its own allocations cause.
    """
    gc.collect()
    wall, cpu = time.perf_counter(), time.thread_time()
    value = fn()
    return value, time.thread_time() - cpu, time.perf_counter() - wall


def cpu_of(fn: Callable[[], T]) -> tuple[T, float]:
    """``fn()`` and the CPU seconds this thread spent in it (see ``timed``)."""
    value, cpu, _wall = timed(fn)
    return value, cpu


def wait_for(predicate: Callable[[], T], timeout: float, what: str, step: float = 0.05) -> T:
    """Poll ``predicate`` until truthy; TimeoutError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    stop = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench: timed out after {timeout:g}s waiting for {what}")
        stop.wait(step)


@contextmanager
def quiet_logs() -> Iterator[None]:
    """vesagent's structured logs at warning level while in-process parts run."""
    from vesagent import logs

    logs.configure("console", "warning")
    yield


def first_arrivals(ves: Any, sources: Collection[str]) -> dict[str, float]:
    """When the collector first received an event of each of ``sources`` (by ``sourceId``);
    empty until every one has arrived, so it can serve as a ``wait_for`` predicate."""
    got: dict[str, float] = {}
    for rec in ves.records():
        source = rec.event.get("commonEventHeader", {}).get("sourceId")
        if source in sources and source not in got:
            got[source] = rec.received_at
    return got if len(got) == len(sources) else {}
