"""Parsing the query of ``GET /servers[/detail]`` into a ``ServerQuery``, in Nova's order.

Unknown keys (400 from 2.75), the non-admin whitelist, ``all_tenants`` (admin only),
``changes-since``/``changes-before``, ``status`` with Nova's vm_state/task_state quirk,
``limit`` and the down-cell partial-record rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vesagent.sim.nova.faults import NovaError, policy_error
from vesagent.sim.nova.state import ServerQuery, states_for_statuses
from vesagent.sim.nova.views import CallContext

# Query parameters of GET /servers[/detail] (nova/api/openstack/compute/schemas/servers.py).
_QUERY_KEYS_V21 = frozenset(
    """user_id project_id tenant_id launch_index image_ref image kernel_id ramdisk_id hostname
    key_name power_state vm_state task_state host node flavor reservation_id launched_at
    terminated_at availability_zone name display_name description display_description
    locked_by uuid root_device_name config_drive access_ip_v4 access_ip_v6 auto_disk_config
    progress sort_key sort_dir all_tenants soft_deleted deleted status changes-since ip ip6
    created_at block_device_mapping services metadata pci_devices security_groups info_cache
    system_metadata limit marker""".split()  # noqa: SIM905 - a word list reads better here
)
_TAG_KEYS = frozenset({"tags", "tags-any", "not-tags", "not-tags-any"})
_JOINED_KEYS = frozenset(
    {"block_device_mapping", "services", "metadata", "pci_devices", "security_groups",
     "info_cache", "system_metadata"}
)  # fmt: skip
_PAGING_SORTING = frozenset({"sort_key", "sort_dir", "limit", "marker"})
_NON_ADMIN_BASE = frozenset(
    {"reservation_id", "name", "status", "image", "flavor", "ip", "changes-since", "all_tenants"}
)
_NON_ADMIN_283 = frozenset(
    {"availability_zone", "config_drive", "key_name", "created_at", "launched_at",
     "terminated_at", "power_state", "task_state", "vm_state", "progress", "user_id"}
)  # fmt: skip
_TRUE = {"1", "t", "true", "on", "y", "yes"}
_FALSE = {"0", "f", "false", "off", "n", "no"}


def _later_keys(mv: int) -> set[str]:
    """Keys later microversions add, both to the schema and to the non-admin whitelist."""
    keys: set[str] = set()
    if mv >= 26:
        keys |= _TAG_KEYS
    if mv >= 66:
        keys.add("changes-before")
    if mv >= 73:
        keys.add("locked")
    return keys


def query_keys(mv: int) -> frozenset[str]:
    """The schema's allowed keys at a microversion."""
    return frozenset(_QUERY_KEYS_V21 | _later_keys(mv))


def non_admin_keys(mv: int) -> frozenset[str]:
    """Filters a non-admin may use; the others are silently dropped (Nova's whitelist)."""
    keys = set(_NON_ADMIN_BASE) | _later_keys(mv)
    if mv >= 5:
        keys.add("ip6")
    if mv >= 83:
        keys |= _NON_ADMIN_283
    return frozenset(keys)


def parse_bool(value: str, strict: bool) -> bool:
    """oslo ``bool_from_string``; strict raises ValueError on other values."""
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if strict and lowered not in _FALSE:
        raise ValueError(
            f"Unrecognized value '{value}', acceptable values are: '0', '1', 'f', 'false', "
            "'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
        )
    return False


def parse_iso8601(name: str, value: str) -> float:
    """An ISO 8601 timestamp as epoch seconds (no zone = UTC); NovaError 400 otherwise."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise NovaError(
            400,
            f"Invalid input for query parameters {name}. Value: {value}. "
            f"'{value}' is not a 'date-time'",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_limit(value: str) -> int:
    """A non-negative integer ``limit`` (Nova's schema message otherwise)."""
    if not value.isdigit():
        raise NovaError(
            400,
            f"Invalid input for query parameters limit. Value: {value}. "
            f"'{value}' does not match '^[0-9]*$'",
        )
    return int(value)


def _effective_keys(keys: set[str], mv: int, admin: bool) -> set[str]:
    """The filter keys Nova acts on: 400 for unknown (2.75+) or joined-table keys."""
    if mv >= 75:
        unknown = sorted(k for k in keys - query_keys(mv) if not k.startswith("_"))
        if unknown:
            # jsonschema's patternProperties message, as real Nova (Zed) words it.
            quoted = ", ".join(repr(k) for k in unknown)
            verb = "does not match" if len(unknown) == 1 else "do not match"
            raise NovaError(400, f"{quoted} {verb} any of the regexes: '^_'")
    effective = keys if admin else keys & non_admin_keys(mv)
    for key in sorted(effective):
        if key in _JOINED_KEYS or key.startswith("_"):
            raise NovaError(400, f"Invalid filter field: {key}.")
    return effective


def _change_window(args: Any, mv: int) -> tuple[float | None, float | None]:
    """``changes-since`` and (2.66+) ``changes-before`` as epoch seconds."""
    since = before = None
    if "changes-since" in args:
        since = parse_iso8601("changes-since", args["changes-since"])
    if mv >= 66 and "changes-before" in args:
        before = parse_iso8601("changes-before", args["changes-before"])
        if since is not None and before < since:
            raise NovaError(
                400, "The value of changes-since must be less than or equal to changes-before."
            )
    return since, before


def _state_filter(
    args: Any, effective: set[str], mv: int
) -> tuple[set[str] | None, set[str | None] | None] | None:
    """vm_states/task_states to match; None when Nova answers an empty list (pre-2.38)."""
    vm_states: set[str] | None = None
    task_states: set[str | None] | None = None
    if "status" in effective:
        found_vm, found_task = states_for_statuses(args.getlist("status"))
        if not found_vm:
            if mv >= 38:
                raise NovaError(400, "Invalid status value")
            return None
        vm_states = found_vm
        # status=ACTIVE maps to task "default": Nova then filters on vm_state alone.
        if "default" not in found_task:
            task_states = set(found_task)
    elif "vm_state" in effective:
        vm_states = set(args.getlist("vm_state"))
    if task_states is None and "task_state" in effective:
        task_states = {None if v.lower() == "none" else v for v in args.getlist("task_state")}
    return vm_states, task_states


def _project_scope(ctx: CallContext, args: Any, effective: set[str], detail: bool) -> str | None:
    """The project to list (None: all); all_tenants needs admin (Nova's policy 403)."""
    all_tenants = False
    if "all_tenants" in effective:
        raw = args["all_tenants"]
        try:
            all_tenants = parse_bool(raw, strict=True) if raw else True
        except ValueError as exc:
            raise NovaError(400, f"Invalid input received: {exc}") from None
    if not all_tenants:
        return ctx.token.project_id  # tenant_id/project_id are ignored without all_tenants
    if not ctx.admin:
        kind = "detail" if detail else "index"
        raise policy_error(f"os_compute_api:servers:{kind}:get_all_tenants")
    return args.get("project_id") or args.get("tenant_id") or None


def _name_pattern(args: Any, effective: set[str]) -> re.Pattern[str] | None:
    """``name`` is a regular expression (case-insensitive like MySQL's REGEXP)."""
    if "name" not in effective:
        return None
    try:
        return re.compile(args["name"], re.IGNORECASE)
    except re.error:
        message = f"Invalid input for query parameters name. Value: {args['name']}."
        raise NovaError(400, message) from None


def _power_states(args: Any, effective: set[str]) -> frozenset[int] | None:
    """``power_state`` values as integers."""
    if "power_state" not in effective:
        return None
    try:
        return frozenset(int(v) for v in args.getlist("power_state"))
    except ValueError:
        raise NovaError(400, "Invalid input for query parameters power_state.") from None


@dataclass(frozen=True)
class ListRequest:
    """How to answer one server list request."""

    query: ServerQuery
    partial: bool  # down-cell partial records allowed
    empty: bool = False  # Nova answers an empty list straight away (bad status before 2.38)


def list_request(ctx: CallContext, args: Any, detail: bool, max_limit: int) -> ListRequest:
    """Nova's handling of the list parameters ``args``, in Nova's order of checks."""
    mv = ctx.mv
    keys = set(args.keys())
    effective = _effective_keys(keys, mv, ctx.admin)
    limit = min(max_limit, parse_limit(args["limit"])) if "limit" in args else None
    since, before = _change_window(args, mv)
    partial = mv >= 69 and not (keys & _PAGING_SORTING) and effective <= {"all_tenants"}
    states = _state_filter(args, effective, mv)
    if states is None:
        return ListRequest(ServerQuery(), partial=False, empty=True)
    vm_states, task_states = states
    deleted: bool | None = False
    if "deleted" in effective:
        deleted = parse_bool(args["deleted"], strict=False)
    elif since is not None or before is not None:
        deleted = None  # changes-since/-before also return deleted servers
    if vm_states == {"deleted"}:
        if not ctx.admin:
            raise NovaError(403, "Only administrators may list deleted instances")
        deleted = True
    return ListRequest(
        ServerQuery(
            project_id=_project_scope(ctx, args, effective, detail),
            changes_since=since,
            changes_before=before,
            deleted=deleted,
            vm_states=frozenset(vm_states) if vm_states is not None else None,
            task_states=frozenset(task_states) if task_states is not None else None,
            power_states=_power_states(args, effective),
            name=_name_pattern(args, effective),
            host=args.get("host") if "host" in effective else None,
            availability_zone=(
                args.get("availability_zone") if "availability_zone" in effective else None
            ),
            user_id=args.get("user_id") if "user_id" in effective else None,
            marker=args.get("marker"),
            limit=max_limit if limit is None else limit,
        ),
        partial,
    )
