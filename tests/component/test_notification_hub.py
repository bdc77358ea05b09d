"""The notification hub against real brokers: a closed port, and a private RabbitMQ node."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.helpers import free_port, wait_until
from tests.rabbitmq import NovaPublisher, RabbitNode, available, instance_update, sample_payload
from vesagent.config import parse_vesagent_config
from vesagent.model import RegionKey
from vesagent.notifications.hub import NotificationHub
from vesagent.notifications.listener import BusListener

VM_FAULTS = [{"domain": "fault", "type": "vm"}]


class Bell:
    """Records what the hub asks of the pollers (the ``Doorbell`` seam)."""

    def __init__(self) -> None:
        self.rings: list[RegionKey] = []
        self.host_rings: list[RegionKey] = []  # rings that asked for the hosts too
        self.intervals: dict[RegionKey, float | None] = {}
        self.lock = threading.Lock()

    def poll_soon(self, key: RegionKey, *, hosts: bool = False) -> None:
        with self.lock:
            self.rings.append(key)
            if hosts:
                self.host_rings.append(key)

    def set_listing_interval(self, key: RegionKey, seconds: float | None) -> None:
        with self.lock:
            self.intervals[key] = seconds

    def count(self, key: RegionKey) -> int:
        with self.lock:
            return self.rings.count(key)


@dataclass
class Spec:
    """The part of a RegionSpec the hub reads."""

    config: Any


def spec(url: str, topic: str = "vesagent_notifications", backlogs: Any = None) -> Spec:
    return Spec(
        parse_vesagent_config(
            {
                "ves_subscription": {"endpoint": "http://127.0.0.1:9/eventListener/v5"},
                "backlogs": VM_FAULTS if backlogs is None else backlogs,
                "notifications": {"transport_url": url, "topic": topic},
            }
        )
    )


def test_unreachable_broker_is_failing_and_stop_is_prompt() -> None:
    """Nothing listens on the port: failing, "broker unreachable", polling kept, prompt stop."""
    bell = Bell()
    key = RegionKey("CloudOwner", "Down")
    url = f"rabbit://vesagent:s3cret@127.0.0.1:{free_port()}/"
    hub = NotificationHub(bell, retry_max=1)
    try:
        hub.sync({key: spec(url)})
        wait_until(lambda: (hub.region_status(key) or {}).get("state") == "failing", 15)
        status = hub.region_status(key)
        assert status is not None
        assert status["reason"] == "broker unreachable"
        assert "s3cret" not in str(status)
        assert bell.intervals[key] is None  # polling at poll_interval
    finally:
        started = time.monotonic()
        hub.stop()
        assert time.monotonic() - started < 12


@pytest.fixture(scope="module")
def rabbit() -> Iterator[RabbitNode]:
    reason = available()
    if reason:
        pytest.skip(reason)
    node = RabbitNode().start()
    try:
        yield node
    finally:
        node.stop()


def test_regions_on_one_bus_share_one_listener(rabbit: RabbitNode) -> None:
    """Two regions on one bus: one listener, one pool queue, both rung; a topic apart: two."""
    bell = Bell()
    made: list[BusListener] = []

    def make(*args: Any, **kw: Any) -> BusListener:
        made.append(BusListener(*args, **kw))
        return made[-1]

    one, two, three = (RegionKey("CloudOwner", r) for r in ("One", "Two", "Three"))
    hub = NotificationHub(bell, pool="hub-test", make_listener=make)
    publisher = NovaPublisher(rabbit.url)
    try:
        hub.sync({one: spec(rabbit.url), two: spec(rabbit.url), three: spec(rabbit.url, "other")})
        assert len(made) == 2
        wait_until(lambda: all(listener.connected for listener in made), 20, "both connected")
        hub.sync({one: spec(rabbit.url), two: spec(rabbit.url), three: spec(rabbit.url, "other")})
        assert bell.intervals == {one: 60.0, two: 60.0, three: 60.0}
        assert len(made) == 2  # level-triggered: a second pass changes nothing
        before = {k: bell.count(k) for k in (one, two, three)}
        server = {"id": "4a0fd1f4-0000-4000-8000-000000000001", "name": "web", "tenant_id": "t"}
        publisher.info("instance.update", instance_update(server, "active", "error"))
        wait_until(lambda: bell.count(one) > before[one] and bell.count(two) > before[two], 5)
        assert bell.count(three) == before[three]  # another topic: not rung
        assert bell.host_rings == []  # a server changed: its hosts keep their own pace
        pools = {listener.pool for listener in made}
        assert len(pools) == 2 and pools <= set(rabbit.queues())  # a queue each, no sharing
        # service.update rings only regions that watch hosts
        hub.sync(
            {
                one: spec(rabbit.url),
                two: spec(rabbit.url, backlogs=[{"domain": "heartbeat", "type": "vm"}]),
            }
        )
        wait_until(lambda: not made[1]._thread.is_alive(), 10, "the unused listener stopped")
        assert hub.region_status(three) is None
        before = {k: bell.count(k) for k in (one, two)}
        publisher.info("service.update", sample_payload("service.update"))
        wait_until(lambda: bell.count(one) > before[one], 5)
        assert bell.count(two) == before[two]
        assert bell.host_rings == [one]  # a host changed: read the hosts now, not at their pace
        status = hub.region_status(two)
        assert status is not None and status["received"] >= 2
    finally:
        publisher.close()
        hub.stop()
