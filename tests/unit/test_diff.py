"""The reconciler's pure diff of desired against running region specs."""

from __future__ import annotations

import dataclasses

from vesagent.config import parse_vesagent_config
from vesagent.model import RegionKey
from vesagent.pollers.openstack import VimCredentials
from vesagent.reconciler.diff import diff
from vesagent.spec import RegionSpec


def spec(region: str, **config_changes: object) -> RegionSpec:
    config = {
        "ves_subscription": {"endpoint": "http://127.0.0.1:1/eventListener/v5"},
        "poll_interval_default": 10,
        "backlogs": [{"domain": "fault", "type": "vm", "tenant": "admin"}],
        **config_changes,
    }
    creds = VimCredentials(
        auth_url="http://127.0.0.1:2/identity/v3",
        username="admin",
        password="pw",
        project_name="admin",
        region_name=region,
    )
    return RegionSpec(RegionKey("Owner", region), parse_vesagent_config(config), creds)


def as_map(*specs: RegionSpec) -> dict[RegionKey, RegionSpec]:
    return {s.key: s for s in specs}


def test_no_change_is_an_empty_plan() -> None:
    """Identical desired and running states need no action."""
    assert diff(as_map(spec("A"), spec("B")), as_map(spec("A"), spec("B"))).empty


def test_added_and_removed_regions() -> None:
    """A new region starts; a region gone from A&AI stops."""
    plan = diff(as_map(spec("A"), spec("C")), as_map(spec("A"), spec("B")))
    assert [s.key.cloud_region_id for s in plan.start] == ["C"]
    assert [k.cloud_region_id for k in plan.stop] == ["B"]
    assert plan.update == ()


def test_changed_subscription_updates() -> None:
    """A new collector endpoint is a change of the region's spec."""
    new = spec("A", ves_subscription={"endpoint": "http://127.0.0.1:9/eventListener/v7"})
    plan = diff(as_map(new), as_map(spec("A")))
    assert plan.update == (new,) and not plan.start and not plan.stop


def test_changed_credentials_updates() -> None:
    """A rotated VIM password is a change of the region's spec."""
    old = spec("A")
    new = dataclasses.replace(old, creds=dataclasses.replace(old.creds, password="new"))
    assert diff(as_map(new), as_map(old)).update == (new,)


def test_changed_backlogs_updates() -> None:
    """Adding a backlog is a change of the region's spec."""
    new = spec(
        "A",
        backlogs=[
            {"domain": "fault", "type": "vm", "tenant": "admin"},
            {"domain": "fault", "type": "vm", "tenant": "demo"},
        ],
    )
    assert diff(as_map(new), as_map(spec("A"))).update == (new,)


def test_equivalent_spellings_are_no_change() -> None:
    """A numeric string and a number mean the same interval: no restart."""
    assert diff(as_map(spec("A", poll_interval_default="10")), as_map(spec("A"))).empty
