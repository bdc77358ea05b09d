"""What a Nova versioned notification means to vesagent: pure, no I/O.

``classify(event_type, payload)`` turns one notification (as oslo.messaging hands it over, the
messagingv2 envelope already unwrapped) into a ``Change`` (which server or compute host may have
changed) or an ``Ignored`` (why not, by a stable ``kind`` that is counted and logged once).
``watched(config, change)`` says whether a region's backlogs care about it.

A ``Change`` is only a doorbell: Nova's API stays the truth, so the poll it triggers decides the
raise or clear. That is why nothing here reads states into faults; it only filters out the
notifications that cannot change one (task-only updates, scheduler and flavor traffic), to keep
bursts from costing polls. Facts used (measured on a real Nova Zed, tests/fixtures/notifications):

- ``instance.update`` carries ``state_update`` {old_state, state, ...}; a vm_state change is
  always explicit (``old_state != state``), while task states are unreliable (a null task is
  filled in with the current one), and the Nova status a fault is decided on follows vm_state.
- ``instance.<action>.end`` follows every state-changing action; ``.start`` precedes the change.
- ``instance.<action>.error`` and ``compute.exception`` report a failed action.
- ``service.update`` is sent only when ``disabled``, ``disabled_reason`` or ``forced_down``
  change; a compute host that dies silently sends nothing (the poll of os-services stays).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

# Actions whose ``.end`` can change the Nova status a fault is decided on.
STATE_CHANGING_ACTIONS = frozenset(
    {
        "create",
        "delete",
        "soft_delete",
        "force_delete",
        "restore",
        "power_off",
        "power_on",
        "shutdown",
        "reboot",
        "rebuild",
        "evacuate",
        "pause",
        "unpause",
        "suspend",
        "resume",
        "shelve",
        "shelve_offload",
        "unshelve",
        "rescue",
        "unrescue",
        "resize_finish",
        "resize_confirm",
        "resize_revert",
        "live_migration_post",
        "live_migration_rollback",
        "trigger_crash_dump",
    }
)
# Event types known to be of no interest: counted as "ignored", never as "unknown".
IRRELEVANT_PREFIXES = (
    "scheduler.",
    "flavor.",
    "aggregate.",
    "keypair.",
    "server_group.",
    "metrics.",
    "volume.",
    "libvirt.",
    "compute_task.",  # its instance.update (-> error) arrives in the same burst
    "instance.volume_",
    "instance.interface_",
    "instance.snapshot.",
    "instance.exists",
    "instance.lock",
    "instance.unlock",
    "instance.share_",
)
# Payload major versions this code was written against (minor versions only add fields).
KNOWN_MAJOR = {
    "InstanceUpdatePayload": 2,
    "InstanceActionPayload": 1,
    "InstanceCreatePayload": 1,
    "InstanceActionRescuePayload": 1,
    "InstanceActionRebuildPayload": 1,
    "InstanceActionResizePrepPayload": 1,
    "InstanceActionVolumePayload": 1,
    "InstanceActionSnapshotPayload": 1,
    "ServiceStatusPayload": 1,
    "ExceptionPayload": 1,
}

IgnoreKind = Literal[
    "malformed",  # not an object, no nova_object, or fields of the wrong type
    "unknown_event_type",
    "payload_version",
    "no_state_change",
    "irrelevant",
    "not_watched",
]


@dataclass(frozen=True)
class Change:
    """Something in the region may have changed: a server (``server_id``), a compute host
    (``host``), or, for ``compute.exception``, anything on ``host``."""

    event_type: str
    scope: Literal["server", "host", "region"]
    server_id: str | None = None
    tenant_id: str | None = None
    name: str | None = None
    host: str | None = None


@dataclass(frozen=True)
class Ignored:
    """A notification that cannot change a fault; ``kind`` is counted and logged once."""

    event_type: str
    kind: IgnoreKind
    detail: str = ""


def _data(payload: Any) -> tuple[Mapping[str, Any] | None, str]:
    """``payload.nova_object.data`` and a problem description ("" when fine)."""
    if not isinstance(payload, Mapping):
        return None, "payload is not an object"
    data = payload.get("nova_object.data")
    if not isinstance(data, Mapping):
        return None, "payload has no nova_object.data"
    return data, ""


def _version_problem(payload: Mapping[str, Any]) -> str:
    name = payload.get("nova_object.name")
    version = payload.get("nova_object.version")
    if not isinstance(name, str) or not isinstance(version, str):
        return ""  # unnamed payloads are judged by their fields alone
    major = KNOWN_MAJOR.get(name)
    head = version.split(".", 1)[0]
    if major is None or not head.isdigit() or int(head) != major:
        return f"{name} {version}"
    return ""


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def classify(event_type: Any, payload: Any) -> Change | Ignored:
    """What one notification means; never raises, whatever the bus sends."""
    if not isinstance(event_type, str) or not event_type:
        return Ignored(str(event_type)[:80], "malformed", "no event_type")
    if event_type.startswith(IRRELEVANT_PREFIXES):
        return Ignored(event_type, "irrelevant")
    parts = event_type.split(".")
    instance_action = parts[0] == "instance" and len(parts) == 3
    relevant = (
        event_type in ("instance.update", "service.update", "compute.exception")
        or (instance_action and parts[2] == "error")
        or (instance_action and parts[2] == "end" and parts[1] in STATE_CHANGING_ACTIONS)
    )
    if not relevant:
        known = instance_action and parts[2] in ("start", "end")
        return Ignored(event_type, "irrelevant" if known else "unknown_event_type")
    data, problem = _data(payload)
    if data is None:
        return Ignored(event_type, "malformed", problem)
    assert isinstance(payload, Mapping)
    version = _version_problem(payload)
    if version:
        return Ignored(event_type, "payload_version", version)

    if event_type == "service.update":
        host = _str(data.get("host"))
        if host is None:
            return Ignored(event_type, "malformed", "service.update without host")
        if data.get("binary") not in (None, "nova-compute"):
            return Ignored(event_type, "irrelevant", str(data.get("binary"))[:40])
        return Change(event_type, "host", host=host)
    if event_type == "compute.exception":
        # ExceptionPayload names no server; the poll looks at the whole region.
        return Change(event_type, "region")

    server_id = _str(data.get("uuid"))
    if server_id is None:
        return Ignored(event_type, "malformed", "instance payload without uuid")
    if event_type == "instance.update":
        update, _ = _data(data.get("state_update"))
        if update is None:
            return Ignored(event_type, "malformed", "instance.update without state_update")
        if update.get("old_state") == update.get("state"):
            return Ignored(event_type, "no_state_change")
    return Change(
        event_type,
        "server",
        server_id=server_id,
        tenant_id=_str(data.get("tenant_id")),
        name=_str(data.get("display_name")),
        host=_str(data.get("host")),
    )


def _wild(value: str | None) -> bool:
    return value is None or value in ("", "*")


def watched(config: Any, change: Change) -> bool:
    """Whether a region's fault backlogs care about ``change`` (``config``: VesagentConfig).

    A backlog naming its tenant by *name* cannot be checked here (a payload has only the
    project id), so it counts as watching every tenant: a needless poll is cheap, a missed
    fault is not.
    """
    faults = [b for b in config.backlogs if b.domain == "fault"]
    if change.scope == "region":
        return any(b.type in ("vm", "host") for b in faults)
    if change.scope == "host":
        return any(b.type == "host" or (b.type == "vm" and b.host_faults) for b in faults)
    for b in faults:
        if b.type != "vm":
            continue
        if not _wild(b.tenantid) and b.tenantid != change.tenant_id:
            continue
        if _wild(b.sourceid) and _wild(b.source):
            return True
        if not _wild(b.sourceid) and b.sourceid == change.server_id:
            return True
        if not _wild(b.source) and b.source == change.name:
            return True
    return False
