"""The reconciler's convergence rules, with in-memory A&AI and poller fakes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from vesagent.aai_client import RegionRecord
from vesagent.errors import TemporaryError
from vesagent.model import RegionKey
from vesagent.pollers.manager import StopReason
from vesagent.reconciler.loop import Reconciler
from vesagent.settings import Shard
from vesagent.ves_client.sender import CollectorDirectory


def config(tenant: str = "admin", endpoint: str = "http://127.0.0.1:1/eventListener/v5") -> str:
    return json.dumps(
        {
            "other": 1,
            "vesagent_config": {
                "ves_subscription": {"endpoint": endpoint},
                "backlogs": [{"domain": "fault", "type": "vm", "tenant": tenant}],
            },
        }
    )


ESR = [
    {
        "service-url": "http://127.0.0.1:2/identity/v3",
        "user-name": "u",
        "password": "p",
        "default-tenant": "admin",
        "system-type": "VIM",
    }
]


@dataclass
class FakeAai:
    regions: dict[str, str | None] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    down: bool = False
    esr_reads: int = 0

    def set(self, region: str, extra: str | None) -> None:
        self.regions[region] = extra
        self.versions[region] = self.versions.get(region, 0) + 1

    def list_regions(self) -> list[RegionRecord]:
        if self.down:
            raise TemporaryError("A&AI GET .../cloud-regions: cannot connect")
        return [
            RegionRecord(
                RegionKey("Owner", r),
                str(self.versions[r]),
                extra,
                {"cloud-owner": "Owner", "cloud-region-id": r},
            )
            for r, extra in self.regions.items()
        ]

    def esr_list(self, key: RegionKey) -> list[dict]:
        self.esr_reads += 1
        return ESR


class FakePoller:
    def __init__(self, spec) -> None:
        self.spec = spec


@dataclass
class FakePollers:
    running: dict = field(default_factory=dict)
    stops: list = field(default_factory=list)

    def pollers(self) -> dict:
        return dict(self.running)

    def ensure(self, spec) -> str:
        poller = self.running.get(spec.key)
        if poller is None:
            self.running[spec.key] = FakePoller(spec)
            return "start"
        if poller.spec != spec:
            poller.spec = spec
            return "update"
        return "none"

    def stop(self, key, reason) -> None:
        self.running.pop(key, None)
        self.stops.append((key.cloud_region_id, reason))


def make(aai: FakeAai, shard: Shard | None = None) -> tuple[Reconciler, FakePollers]:
    pollers = FakePollers()
    return Reconciler(aai, pollers, CollectorDirectory(), shard=shard), pollers  # type: ignore[arg-type]


def names(pollers: FakePollers) -> set[str]:
    return {k.cloud_region_id for k in pollers.running}


def test_managed_regions_start_and_unmanaged_do_not() -> None:
    """Only regions whose cloud-extra-info has vesagent_config get a poller."""
    aai = FakeAai()
    aai.set("A", config())
    aai.set("B", '{"openstack-region-id": "B"}')
    aai.set("C", None)
    aai.set("D", "free text of another system")
    rec, pollers = make(aai)
    assert rec.sync() is True
    assert names(pollers) == {"A"}
    assert rec.ready


def test_repeated_pass_is_idempotent_and_reads_credentials_once() -> None:
    """A pass with no change does nothing beyond the read; credentials are cached."""
    aai = FakeAai()
    aai.set("A", config())
    rec, pollers = make(aai)
    rec.sync()
    spec = pollers.running[RegionKey("Owner", "A")].spec
    for _ in range(5):
        rec.sync()
        assert rec.last_plan.empty
    assert pollers.running[RegionKey("Owner", "A")].spec is spec
    assert aai.esr_reads == 1


def test_invalid_config_keeps_last_valid_and_is_recorded() -> None:
    """A broken edit keeps the last valid spec in force and records the error with its path."""
    aai = FakeAai()
    aai.set("A", config("admin"))
    rec, pollers = make(aai)
    rec.sync()
    before = pollers.running[RegionKey("Owner", "A")].spec
    broken = json.loads(config())
    broken["vesagent_config"]["backlogs"][0]["poll_interval"] = 0
    aai.set("A", json.dumps(broken))
    rec.sync()
    assert pollers.running[RegionKey("Owner", "A")].spec == before
    state = rec.cache.state[RegionKey("Owner", "A")]
    assert [p for p, _m in state.config_errors] == ["backlogs[0].poll_interval"]
    aai.set("A", config("demo"))
    rec.sync()
    assert pollers.running[RegionKey("Owner", "A")].spec != before
    assert state.config_errors == []


def test_invalid_config_of_new_region_starts_nothing() -> None:
    """A region whose first config is invalid is not started (there is no last valid one)."""
    aai = FakeAai()
    aai.set("A", '{"vesagent_config": {"backlogs": 3}}')
    rec, pollers = make(aai)
    rec.sync()
    assert names(pollers) == set()
    assert rec.cache.state[RegionKey("Owner", "A")].config_errors


def test_aai_outage_changes_nothing() -> None:
    """A failed read keeps every poller; until the first success nothing starts."""
    aai = FakeAai(down=True)
    aai.set("A", config())
    rec, pollers = make(aai)
    assert rec.sync() is False and not rec.ready and names(pollers) == set()
    aai.down = False
    rec.sync()
    aai.down = True
    aai.regions.clear()
    assert rec.sync() is False
    assert names(pollers) == {"A"} and rec.last_error and "cannot connect" in rec.last_error


def test_removed_and_unmanaged_regions_stop() -> None:
    """A region gone from A&AI, or without vesagent_config now, is stopped."""
    aai = FakeAai()
    aai.set("A", config())
    aai.set("B", config())
    rec, pollers = make(aai)
    rec.sync()
    del aai.regions["A"]
    aai.set("B", '{"other": 1}')
    rec.sync()
    assert names(pollers) == set()
    assert sorted(pollers.stops) == [
        ("A", StopReason.REGION_REMOVED),
        ("B", StopReason.NOT_MANAGED),
    ]


def test_shard_filters_regions() -> None:
    """Each of three replicas handles a disjoint share; together they cover every region."""
    aai = FakeAai()
    for n in range(30):
        aai.set(f"R{n}", config())
    seen: list[str] = []
    for i in range(3):
        rec, pollers = make(aai, Shard(i, 3))
        rec.sync()
        seen += sorted(names(pollers))
    assert sorted(seen) == sorted(f"R{n}" for n in range(30))


def test_subscription_change_updates_collector_directory() -> None:
    """A new collector endpoint reaches the delivery directory in the same pass."""
    aai = FakeAai()
    aai.set("A", config(endpoint="http://127.0.0.1:5/eventListener/v7"))
    rec, _pollers = make(aai)
    rec.sync()
    assert rec.directory.get("http://127.0.0.1:5/eventListener/v7") is not None


def test_region_moved_to_another_shard_keeps_its_alarms() -> None:
    """A region that now hashes to another replica stops here without clearing its alarms."""
    aai = FakeAai()
    for n in range(20):
        aai.set(f"R{n}", config())
    rec, pollers = make(aai, Shard(0, 3))
    rec.sync()
    mine = names(pollers)
    rec.shard = Shard(0, 4)
    rec.sync()
    moved = mine - names(pollers)
    assert moved  # with 20 regions some move when n goes from 3 to 4
    assert {reason for _r, reason in pollers.stops} == {StopReason.SHARD_MOVED}
    del aai.regions[sorted(names(pollers))[0]]
    rec.sync()
    assert pollers.stops[-1][1] is StopReason.REGION_REMOVED


def test_unknown_keys_are_recorded_as_warnings() -> None:
    """A likely typo in a managed config is kept as a warning with its path, not an error."""
    config_text = json.loads(config())
    config_text["vesagent_config"]["backlogs"][0]["sorce"] = "vm-1"
    aai = FakeAai()
    aai.set("A", json.dumps(config_text))
    rec, pollers = make(aai)
    rec.sync()
    warnings = rec.cache.warnings[RegionKey("Owner", "A")]
    assert [path for path, _m in warnings] == ["backlogs[0].sorce"]
    assert "source" in warnings[0][1]  # the "did you mean" hint
    assert names(pollers) == {"A"}
    aai.set("A", config())
    rec.sync()
    assert rec.cache.warnings[RegionKey("Owner", "A")] == []
