"""Notification classification, config and masking, on real Nova Zed bodies (fixtures)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from vesagent.config import check_config_text, masked, parse_vesagent_config
from vesagent.errors import ConfigError
from vesagent.notifications.events import Change, Ignored, classify, watched
from vesagent.notifications.metrics import event_type_label
from vesagent.notifications.settings import mask_transport_url
from vesagent.secrets import keep_masked_secrets

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "notifications"
BASE = {"ves_subscription": {"endpoint": "http://ves:8080/eventListener/v5"}}


def sample(event_type: str) -> dict[str, Any]:
    """The inner message of a recorded notification (``event_type``, ``payload``)."""
    message: dict[str, Any] = json.loads((FIXTURES / f"{event_type}.json").read_text())["message"]
    return message


def classify_sample(event_type: str) -> Change | Ignored:
    message = sample(event_type)
    return classify(message["event_type"], message["payload"])


def config(*backlogs: dict[str, Any]) -> Any:
    return parse_vesagent_config({**BASE, "backlogs": list(backlogs)})


def test_every_recorded_sample_is_classified_without_error() -> None:
    """Each real body gives a Change or an Ignored, never an exception."""
    for path in FIXTURES.glob("*.json"):
        message = json.loads(path.read_text())["message"]
        assert isinstance(classify(message["event_type"], message["payload"]), Change | Ignored)


def test_reset_state_error_update_names_the_server() -> None:
    """instance.update active -> error rings for that server, tenant and name."""
    message = sample("instance.update")
    data = message["payload"]["nova_object.data"]
    change = classify_sample("instance.update")
    assert isinstance(change, Change)
    assert change.scope == "server"
    assert change.server_id == data["uuid"]
    assert change.tenant_id == data["tenant_id"]
    assert change.name == data["display_name"]


def test_task_only_update_is_not_a_state_change() -> None:
    """An instance.update with old_state == state (powering-off) cannot change a fault."""
    message = sample("instance.update")
    payload = copy.deepcopy(message["payload"])
    update = payload["nova_object.data"]["state_update"]["nova_object.data"]
    update["old_state"] = update["state"] = "active"
    outcome = classify("instance.update", payload)
    assert isinstance(outcome, Ignored) and outcome.kind == "no_state_change"


@pytest.mark.parametrize(
    "event_type",
    [
        "instance.power_off.end",
        "instance.power_on.end",
        "instance.delete.end",
        "instance.create.end",
        "instance.reboot.end",
        "instance.shutdown.end",
    ],
)
def test_state_changing_action_end_rings(event_type: str) -> None:
    """The .end of a state-changing action is a server change."""
    change = classify_sample(event_type)
    assert isinstance(change, Change) and change.scope == "server" and change.server_id


@pytest.mark.parametrize(
    "event_type",
    [
        "instance.power_off.start",
        "instance.delete.start",
        "scheduler.select_destinations.end",
        "flavor.create",
        "compute_task.build_instances.error",
    ],
)
def test_starts_and_other_traffic_are_irrelevant(event_type: str) -> None:
    """.start events, scheduler, flavor and compute_task traffic never ring."""
    outcome = classify_sample(event_type)
    assert isinstance(outcome, Ignored) and outcome.kind == "irrelevant"


def test_service_update_names_the_host() -> None:
    """service.update (force-down) is a host change of payload.host."""
    change = classify_sample("service.update")
    assert isinstance(change, Change) and change.scope == "host"
    assert change.host == sample("service.update")["payload"]["nova_object.data"]["host"]


def test_action_error_and_compute_exception_ring() -> None:
    """instance.<action>.error names its server; compute.exception the whole region."""
    payload = sample("instance.power_off.end")["payload"]
    error = classify("instance.power_off.error", payload)
    assert isinstance(error, Change) and error.server_id == payload["nova_object.data"]["uuid"]
    exc_payload = {
        "nova_object.name": "ExceptionPayload",
        "nova_object.version": "1.1",
        "nova_object.data": {"exception": "X", "exception_message": "boom"},
    }
    region = classify("compute.exception", exc_payload)
    assert isinstance(region, Change) and region.scope == "region"


@pytest.mark.parametrize(
    ("event_type", "payload", "kind"),
    [
        ("instance.update", "not an object", "malformed"),
        ("instance.update", {"nova_object.data": "x"}, "malformed"),
        ("instance.update", {"nova_object.data": {"state_update": None, "uuid": "u"}}, "malformed"),
        ("instance.power_off.end", {"nova_object.data": {"uuid": 5}}, "malformed"),
        ("something.new", {}, "unknown_event_type"),
        ("instance.frobnicate", {}, "unknown_event_type"),
        ("instance.frobnicate.end", {}, "irrelevant"),
        (None, {}, "malformed"),
        (
            "instance.update",
            {
                "nova_object.name": "InstanceUpdatePayload",
                "nova_object.version": "3.0",
                "nova_object.data": {"uuid": "u"},
            },
            "payload_version",
        ),
    ],
)
def test_bad_input_is_ignored_by_kind(event_type: Any, payload: Any, kind: str) -> None:
    """Broken, unknown and future-version bodies are Ignored with a stable kind."""
    outcome = classify(event_type, payload)
    assert isinstance(outcome, Ignored) and outcome.kind == kind


def test_watched_follows_the_vm_backlog_filters() -> None:
    """A server change rings a region only if a VM fault backlog could match it."""
    change = Change("instance.update", "server", server_id="s1", tenant_id="t1", name="web")
    assert watched(config({"domain": "fault", "type": "vm"}), change)
    assert watched(config({"domain": "fault", "type": "vm", "tenantid": "t1"}), change)
    assert not watched(config({"domain": "fault", "type": "vm", "tenantid": "t2"}), change)
    assert watched(config({"domain": "fault", "type": "vm", "source": "web"}), change)
    assert not watched(config({"domain": "fault", "type": "vm", "source": "db"}), change)
    assert watched(config({"domain": "fault", "type": "vm", "sourceid": "s1"}), change)
    # a tenant *name* cannot be checked from a payload: it counts as any tenant
    assert watched(config({"domain": "fault", "type": "vm", "tenant": "demo"}), change)
    assert not watched(config({"domain": "heartbeat", "type": "vm"}), change)


def test_watched_host_changes_need_host_faults() -> None:
    """service.update rings regions watching hosts (host backlogs or VM host_faults)."""
    change = Change("service.update", "host", host="cmp1")
    assert watched(config({"domain": "fault", "type": "host"}), change)
    assert watched(config({"domain": "fault", "type": "vm"}), change)
    assert not watched(config({"domain": "fault", "type": "vm", "host_faults": False}), change)


def test_config_defaults_and_json_paths() -> None:
    """Defaults apply; bad values are reported with their JSON path, never the password."""
    cfg = parse_vesagent_config(
        {**BASE, "notifications": {"transport_url": "rabbit://nova:s3cret@rabbit:5672/"}}
    )
    notif = cfg.notifications
    assert notif is not None
    assert (notif.topic, notif.exchange, notif.safety_poll_interval) == (
        "vesagent_notifications",
        "nova",
        60.0,
    )
    assert "s3cret" not in repr(cfg) and "s3cret" not in notif.shown_url
    bad = {"transport_url": "http://nova:s3cret@x/", "safety_poll_interval": "soon"}
    problems = dict(
        check_config_text(json.dumps({"vesagent_config": {**BASE, "notifications": bad}}))
    )
    assert set(problems) == {"notifications.transport_url", "notifications.safety_poll_interval"}
    assert all("s3cret" not in m for m in problems.values())


def test_unknown_notification_keys_are_warned() -> None:
    """A typo inside notifications is a check-config warning with its path."""
    from vesagent.config import warnings

    found = dict(warnings({**BASE, "notifications": {"transport_url": "rabbit://h/", "topik": 1}}))
    assert "notifications.topik" in found and "topic" in found["notifications.topik"]


def test_password_in_url_is_masked_everywhere_and_kept_on_post() -> None:
    """masked() hides each host's password; a POST sending the masked URL keeps the old one."""
    url = "rabbit://nova:s3cret@h1:5672,nova:0ther@h2:5672/vhost?ssl=1"
    assert mask_transport_url(url) == "rabbit://nova:***@h1:5672,nova:***@h2:5672/vhost?ssl=1"
    stored = {**BASE, "notifications": {"transport_url": url}}
    shown = masked(stored)
    assert "s3cret" not in json.dumps(shown) and "0ther" not in json.dumps(shown)
    posted = {**shown, "poll_interval_default": 20}
    kept = keep_masked_secrets(posted, stored)
    assert kept["notifications"]["transport_url"] == url
    changed_host = {**shown, "notifications": {"transport_url": "rabbit://nova:***@h9/"}}
    with pytest.raises(ConfigError, match="transport_url"):
        keep_masked_secrets(changed_host, stored)  # never sent to a host of the poster's choice


def test_event_type_label_is_bounded() -> None:
    """Known Nova event types label themselves; anything else is "other"."""
    assert event_type_label("instance.update") == "instance.update"
    assert event_type_label("instance.power_off.end") == "instance.power_off.end"
    assert event_type_label("service.update") == "service.update"
    assert event_type_label("x" * 500) == "other"
    assert event_type_label("instance.\u00e9vil.end") == "other"
    assert event_type_label(42) == "other"


# -- the second recording (2026-12-06 22:26-22:28 UTC, PROVENANCE.md): one server's life ------
def recorded_sequence() -> list[dict[str, Any]]:
    """Every notification of one server's life, then of its compute host, in arrival order."""
    lines = (FIXTURES / "sequence.lifecycle.jsonl").read_text().splitlines()
    return [json.loads(line)["message"] for line in lines if line.strip()]


def state_update(message: dict[str, Any]) -> tuple[str, str]:
    data = message["payload"]["nova_object.data"]["state_update"]["nova_object.data"]
    return data["old_state"], data["state"]


def test_recorded_life_rings_on_every_vm_state_change_and_nothing_else() -> None:
    """Create, reset error/active, stop, start, reset error, delete: the instance.update
    messages that ring are exactly the vm_state changes, in order; task-only updates and
    .start events never ring."""
    rung_updates = []
    for message in recorded_sequence():
        outcome = classify(message["event_type"], message["payload"])
        if message["event_type"] == "instance.update":
            old, new = state_update(message)
            assert isinstance(outcome, Change) == (old != new), (old, new, outcome)
            if isinstance(outcome, Change):
                rung_updates.append((old, new))
            else:
                assert outcome.kind == "no_state_change"
        elif message["event_type"].endswith(".start"):
            assert isinstance(outcome, Ignored) and outcome.kind == "irrelevant"
    assert rung_updates == [
        ("building", "active"),
        ("active", "error"),
        ("error", "active"),
        ("active", "stopped"),
        ("stopped", "active"),
        ("active", "error"),
        ("error", "deleted"),
    ]


@pytest.mark.parametrize(
    "name",
    ["instance.update.reset-active", "instance.update.power-off", "instance.update.power-on"],
)
def test_recorded_clear_and_power_updates_name_their_server(name: str) -> None:
    """Reset to active (the clear), power off and power on each ring for their server."""
    data = sample(name)["payload"]["nova_object.data"]
    change = classify_sample(name)
    assert isinstance(change, Change) and change.scope == "server"
    assert (change.server_id, change.tenant_id) == (data["uuid"], data["tenant_id"])


def test_recorded_delete_while_faulty() -> None:
    """A server in ERROR being deleted: the 'deleting' task update does not ring (still
    error), the update to deleted and instance.delete.end do, for a backlog naming it."""
    deleting = classify_sample("instance.update.deleting-while-error")
    assert isinstance(deleting, Ignored) and deleting.kind == "no_state_change"
    assert state_update(sample("instance.update.deleting-while-error")) == ("error", "error")
    deleted = classify_sample("instance.update.deleted-from-error")
    end = classify_sample("instance.delete.end.from-error")
    assert isinstance(deleted, Change) and isinstance(end, Change)
    assert deleted.server_id == end.server_id
    named = config({"domain": "fault", "type": "vm", "source": end.name})
    assert watched(named, deleted) and watched(named, end)
    other = config({"domain": "fault", "type": "vm", "source": "some-other-server"})
    assert not watched(other, end)


@pytest.mark.parametrize(
    ("name", "forced_down", "disabled"),
    [
        ("service.update", True, False),
        ("service.update.force-up", False, False),
        ("service.update.disable", False, True),
        ("service.update.enable", False, False),
    ],
)
def test_recorded_service_updates_ring_for_the_host(
    name: str, forced_down: bool, disabled: bool
) -> None:
    """Force-down, force-up, disable and enable each ring a host change of that host."""
    data = sample(name)["payload"]["nova_object.data"]
    assert (data["forced_down"], data["disabled"]) == (forced_down, disabled)
    change = classify_sample(name)
    assert isinstance(change, Change) and change.scope == "host"
    assert change.host == data["host"] == "fake-compute-1"
