"""The fault poll's decision: a pure function of (state, what was seen, spec, now) -> transitions.

``decide_poll`` is the whole rulebook of one poll cycle; ``RegionPoller`` only fetches what it
needs (I/O), calls it, and enqueues the result (I/O). In order:

1. **VIM gating.** A failed poll counts towards the region's VIM fault (``vim.observe``,
   ``vim.decide_vim`` past the backlog's ``failure_threshold``); a successful one resets it.
   Partial (2.69 down-cell) records, of servers or of compute services, make the VIM
   "degraded". While a VIM alarm is open (or being raised), VM and host alarms neither raise
   nor clear: a cloud that cannot be seen must not flood the collector with false alarms,
   nor announce recoveries that did not happen. The first poll after the VIM alarm clears
   decides every changed VM again from complete data.
2. **VM transitions** (``decide.decide_vm``) for the servers that may have changed, filtered by
   the VM fault backlogs' selectors (tenant names already resolved by the caller).
3. **Host transitions** (``hosts.decide_host``) for the watched compute hosts, and the "host
   unreachable" child alarm of each watched VM on a down host (``hosts.decide_vm_host``).

Also here: which backlogs ask for what (selectors, intervals, the timed jobs) and ``settle``,
the clear of an alarm whose source is gone or no longer watched.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from vesagent import AGENT_NAME
from vesagent.config import Backlog
from vesagent.model import AlarmRecord
from vesagent.pollers.decide import (
    NO_CHANGE,
    VM_FAILURE,
    FaultContext,
    ServerView,
    Transition,
    decide_vm,
)
from vesagent.pollers.hosts import (
    HOST_CONDITION,
    VM_HOST_CONDITION,
    HostView,
    decide_host,
    decide_vm_host,
    host_is_down,
    host_selected,
)
from vesagent.pollers.tca import TCA_PREFIX, clear_tca, tca_condition
from vesagent.pollers.vim import HEALTHY, VIM_CONDITION, VimHealth, decide_vim, observe
from vesagent.spec import RegionSpec

AlarmKey = tuple[str, str]
"""An open alarm's key within a region: ``(source_id, condition)``."""


# -- which backlogs ask for what -------------------------------------------------------------
class Job(enum.StrEnum):
    """A region's timed jobs (see ``job_intervals``)."""

    POLL = "poll"
    HEARTBEAT = "heartbeat"
    MEASURE = "measure"


@dataclass(frozen=True)
class VmSelector:
    """Which servers one VM backlog watches; None in a field means "any"."""

    tenant_ids: frozenset[str] | None
    names: frozenset[str] | None
    ids: frozenset[str] | None

    def matches(self, server: ServerView) -> bool:
        """Whether the backlog watches ``server`` (an id wins over a name)."""
        if self.tenant_ids is not None and server.tenant_id not in self.tenant_ids:
            return False
        if self.ids is not None and server.id in self.ids:
            return True
        if self.names is not None and server.name in self.names:
            return True
        return self.ids is None and self.names is None


def wild(value: str | None) -> bool:
    """An omitted, blank or ``"*"`` filter: matches everything."""
    return value is None or value in ("", "*")


def tenant_names(spec: RegionSpec) -> set[str]:
    """Project names the region's VM backlogs filter on without an id (resolved by the caller)."""
    return {
        b.tenant
        for b in spec.config.backlogs
        if b.type == "vm" and wild(b.tenantid) and not wild(b.tenant) and b.tenant is not None
    }


def selector_for(backlog: Backlog, tenants: Mapping[str, str | None]) -> VmSelector:
    """A VM backlog's filters; a tenant name that did not resolve matches nothing."""
    chosen: frozenset[str] | None
    if not wild(backlog.tenantid):
        chosen = frozenset({str(backlog.tenantid)})
    elif not wild(backlog.tenant):
        resolved = tenants.get(str(backlog.tenant))
        chosen = frozenset({resolved}) if resolved else frozenset()
    else:
        chosen = None
    ids = None if wild(backlog.sourceid) else frozenset({str(backlog.sourceid)})
    names = None if wild(backlog.source) else frozenset({str(backlog.source)})
    return VmSelector(chosen, names, ids)


def backlogs_of(spec: RegionSpec, domain: str, kind: str | None = None) -> list[Backlog]:
    """The region's backlogs of one domain (and source type)."""
    return [
        b for b in spec.config.backlogs if b.domain == domain and (kind is None or b.type == kind)
    ]


def _smallest(spec: RegionSpec, backlogs: Iterable[Backlog]) -> float | None:
    intervals = [spec.config.interval_of(b) for b in backlogs]
    return min(intervals) if intervals else None


def fault_interval(spec: RegionSpec) -> float | None:
    """The fault poll runs at the smallest interval of the fault backlogs (None: none)."""
    return _smallest(spec, backlogs_of(spec, "fault"))


def heartbeat_interval(spec: RegionSpec) -> float | None:
    """The smallest interval of the heartbeat backlogs (None: none)."""
    return _smallest(spec, backlogs_of(spec, "heartbeat"))


def measure_interval(spec: RegionSpec) -> float | None:
    """Measurements and threshold checks share the diagnostics readings."""
    return _smallest(spec, backlogs_of(spec, "measurement") + backlogs_of(spec, "tca"))


def vim_threshold(spec: RegionSpec) -> int | None:
    """Consecutive failed polls that raise the VIM fault (None: no VIM fault backlog)."""
    vims = backlogs_of(spec, "fault", "vim")
    return min(b.failure_threshold for b in vims) if vims else None


def watches_servers(spec: RegionSpec) -> bool:
    """Whether the poll lists servers (VM faults, or measurements that need the list)."""
    return bool(backlogs_of(spec, "fault", "vm")) or measure_interval(spec) is not None


def watches_hosts(spec: RegionSpec) -> bool:
    """Whether the poll reads compute services (host faults, or VM "host unreachable")."""
    return bool(backlogs_of(spec, "fault", "host")) or any(
        b.host_faults for b in backlogs_of(spec, "fault", "vm")
    )


def job_intervals(spec: RegionSpec, listing_interval: float | None = None) -> dict[Job, float]:
    """The region's timed jobs and how often their timers fire.

    Heartbeats and measurements belong to interval boundaries (one per interval, start on the
    boundary), so their timers fire four times per interval and the job itself acts once per
    boundary: a timer's drift can then neither skip an interval nor repeat one. The poll's
    timer fires at the fault interval, or at ``listing_interval`` when that is set and
    shorter (the poll itself then decides what is due).
    """
    heartbeat, measure, poll = heartbeat_interval(spec), measure_interval(spec), None
    faults = fault_interval(spec)
    if faults is not None:
        poll = min(faults, listing_interval) if listing_interval else faults
    jobs = {
        Job.POLL: poll,
        Job.HEARTBEAT: max(0.25, heartbeat / 4) if heartbeat else None,
        Job.MEASURE: max(0.25, measure / 4) if measure else None,
    }
    return {job: interval for job, interval in jobs.items() if interval is not None}


# -- one poll's decision ---------------------------------------------------------------------
@dataclass(frozen=True)
class PollState:
    """What a region's decisions depend on, carried from poll to poll.

    ``servers`` is the ``ServerCache``'s view after this poll's listing (large: not copied);
    ``hosts`` holds the compute hosts of known state; ``hosts_partial`` whether the last
    services read had down-cell records.
    """

    alarms: Mapping[AlarmKey, AlarmRecord]
    health: VimHealth = HEALTHY
    servers: Mapping[str, ServerView] = field(default_factory=dict)
    hosts: Mapping[str, HostView] = field(default_factory=dict)
    hosts_partial: bool = False


@dataclass(frozen=True)
class Observation:
    """What one poll saw, parsed, with tenant names already resolved.

    ``error`` is set when the poll failed (the rest is then empty). ``changed``: the servers
    whose state may have changed (None: deleted or gone). ``services``: the compute service
    records read by this poll (None: not read this time, keep the last ones).
    ``servers_partial``: the last server listing had down-cell records.
    """

    error: str | None = None
    changed: Mapping[str, ServerView | None] = field(default_factory=dict)
    services: tuple[HostView, ...] | None = None
    servers_partial: bool = False
    tenants: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class PollDecision:
    """The outcome of ``decide_poll``: what to commit, the state after it, and whether VM
    decisions were frozen (then the server watermark must not advance)."""

    transitions: list[Transition]
    state: PollState
    frozen: bool


def fault_context(spec: RegionSpec, now_us: int) -> FaultContext:
    """The constants the region's events carry."""
    return FaultContext(vimid=spec.vimid, reporter=AGENT_NAME, now_us=now_us)


def decide_poll(state: PollState, seen: Observation, spec: RegionSpec, now_us: int) -> PollDecision:
    """Every transition one poll calls for (see the module docstring for the rules)."""
    ctx = fault_context(spec, now_us)
    threshold = vim_threshold(spec)
    prev_vim = state.alarms.get((spec.vimid, VIM_CONDITION))
    if seen.error is not None:
        health = observe(state.health, False, seen.error, at_us=now_us)
        failed = [decide_vim(prev_vim, health, threshold, False, ctx)] if threshold else []
        return PollDecision(failed, replace(state, health=health), frozen=True)

    health = observe(state.health, True, None, at_us=now_us)
    after = replace(state, health=health)
    if seen.services is not None:
        after = replace(
            after,
            hosts={h.host: h for h in seen.services if h.known},
            hosts_partial=any(not h.known for h in seen.services),
        )
    partial = seen.servers_partial or after.hosts_partial
    transitions: list[Transition] = []
    vim = decide_vim(prev_vim, health, threshold, partial, ctx) if threshold else NO_CHANGE
    transitions.append(vim)
    vim_open = vim.upsert is not None or (prev_vim is not None and vim.delete is None)
    if vim_open:
        return PollDecision(transitions, after, frozen=True)
    vm_faults = backlogs_of(spec, "fault", "vm")
    transitions += vm_transitions(seen.changed, state.alarms, vm_faults, seen.tenants, ctx)
    transitions += host_transitions(after, spec, seen.tenants, ctx)
    return PollDecision(transitions, after, frozen=False)


def vm_transitions(
    changed: Mapping[str, ServerView | None],
    alarms: Mapping[AlarmKey, AlarmRecord],
    vm_faults: list[Backlog],
    tenants: Mapping[str, str | None],
    ctx: FaultContext,
) -> list[Transition]:
    """VM fault raises and clears for the servers that may have changed."""
    selectors = [selector_for(b, tenants) for b in vm_faults]
    out = []
    for source_id, view in changed.items():
        watched = view is not None and any(s.matches(view) for s in selectors)
        prev = alarms.get((source_id, VM_FAILURE))
        if watched or prev is not None:
            out.append(decide_vm(prev, view if watched else None, ctx))
    return out


def host_transitions(
    state: PollState, spec: RegionSpec, tenants: Mapping[str, str | None], ctx: FaultContext
) -> list[Transition]:
    """Host alarms of the watched hosts, and "host unreachable" alarms of VMs on down hosts."""
    host_faults = backlogs_of(spec, "fault", "host")
    alarms, hosts, servers = state.alarms, state.hosts, state.servers
    out = []
    for name, view in hosts.items():
        if any(host_selected(b, name) for b in host_faults):
            out.append(decide_host(alarms.get((name, HOST_CONDITION)), view, ctx))
    for (source_id, condition), prev in alarms.items():
        if condition == HOST_CONDITION and (
            source_id not in hosts or not any(host_selected(b, source_id) for b in host_faults)
        ):
            out.append(decide_host(prev, None, ctx))
    # Children: one "host unreachable" alarm per watched VM on a down host.
    child_selectors = [
        selector_for(b, tenants) for b in backlogs_of(spec, "fault", "vm") if b.host_faults
    ]
    down = {name for name, view in hosts.items() if host_is_down(view)}
    for sid, server in servers.items():
        child = alarms.get((sid, VM_HOST_CONDITION))
        on_down = server.host in down and any(s.matches(server) for s in child_selectors)
        if on_down or child is not None:
            host_alarm = alarms.get((server.host, HOST_CONDITION))
            out.append(
                decide_vm_host(
                    child,
                    sid,
                    server.name,
                    on_down,
                    ctx,
                    host=server.host,
                    since_us=host_alarm.start_epoch_us if host_alarm else None,
                )
            )
    for (source_id, condition), prev in alarms.items():
        if condition == VM_HOST_CONDITION and source_id not in servers:
            out.append(decide_vm_host(prev, source_id, None, False, ctx))
    return out


def decide_again(
    state: PollState, spec: RegionSpec, tenants: Mapping[str, str | None], now_us: int
) -> list[Transition]:
    """After a config change: decide every known source again, without polling Nova."""
    ctx = fault_context(spec, now_us)
    changed: dict[str, ServerView | None] = dict(state.servers)
    for source_id, condition in state.alarms:
        if condition == VM_FAILURE:
            changed.setdefault(source_id, None)
    vm_faults = backlogs_of(spec, "fault", "vm")
    transitions = vm_transitions(changed, state.alarms, vm_faults, tenants, ctx)
    transitions += host_transitions(state, spec, tenants, ctx)
    wanted = {
        (sid, tca_condition(t))
        for b in backlogs_of(spec, "tca", "vm")
        for t in b.thresholds
        for sid in state.servers
    }
    no_vim_backlog = vim_threshold(spec) is None
    for key, prev in state.alarms.items():
        if key[1].startswith(TCA_PREFIX) and key not in wanted:
            transitions.append(settle(prev, ctx, "threshold removed"))
        if key[1] == VIM_CONDITION and no_vim_backlog:
            transitions.append(settle(prev, ctx))
    return transitions


def settle(prev: AlarmRecord, ctx: FaultContext, reason: str = "gone") -> Transition:
    """The clear of any open alarm whose source is gone or no longer watched."""
    condition = prev.condition
    if condition == VM_FAILURE:
        return decide_vm(prev, None, ctx)
    if condition == HOST_CONDITION:
        return decide_host(prev, None, ctx)
    if condition == VM_HOST_CONDITION:
        return decide_vm_host(prev, prev.source_id, None, False, ctx)
    if condition == VIM_CONDITION:
        return decide_vim(prev, HEALTHY, 1, False, ctx)
    if condition.startswith(TCA_PREFIX):
        return clear_tca(prev, ctx, reason=reason)
    return NO_CHANGE


def apply(alarms: dict[AlarmKey, AlarmRecord], transitions: Iterable[Transition]) -> None:
    """Bring the in-memory alarm table in line with committed transitions (as the store
    does: upserts first, then deletes)."""
    done = list(transitions)
    for t in done:
        if t.upsert is not None:
            alarms[(t.upsert.source_id, t.upsert.condition)] = t.upsert
    for t in done:
        if t.delete is not None:
            alarms.pop((t.delete[1], t.delete[2]), None)
