"""The one status model: what the REST API sends, what OpenAPI documents, what ``vesagent
status`` reads.

The API builds these models from a running agent (``region_detail``, ``region_list``,
``dead_letter_list``) and sends ``model_dump(mode="json")``; ``vesagent.openapi`` takes its
schemas from ``model_json_schema``; the CLI parses the answers with ``model_validate``. A
field renamed here is renamed everywhere at once, so the three cannot drift apart again.

Times are ISO 8601 UTC strings (``2024-05-01T10:00:05Z``), None when it has not happened yet.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vesagent.errors import excerpt
from vesagent.model import RegionKey

_MODEL = ConfigDict(extra="ignore")  # an older CLI reads a newer agent's answers


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ``YYYY-MM-DDTHH:MM:SSZ`` (None stays None)."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class ConfigProblem(BaseModel):
    """One problem of a configuration: where (a JSON path, "" for the whole) and what."""

    model_config = _MODEL
    path: str
    message: str


class PollStatus(BaseModel):
    """The region's last fault poll."""

    model_config = _MODEL
    at: str | None = None
    ok: bool | None = None
    error: str | None = None
    servers_seen: int | None = None
    nova_requests: int | None = None


class CollectorStatus(BaseModel):
    """The region's VES collector as the sender sees it.

    ``up`` is None until a first delivery was tried; ``reason`` says why it is down
    (``"unreachable"`` or ``"credentials refused"``: the events wait in the outbox).
    """

    model_config = _MODEL
    endpoint: str
    up: bool | None = None
    reason: str | None = None
    outbox_depth: int = 0
    dead_letters: int = 0
    last_delivery: str | None = None
    last_error: str | None = None


class VimStatus(BaseModel):
    """The VIM (Keystone + Nova) as the poller sees it."""

    model_config = _MODEL
    consecutive_failures: int = 0
    last_failure: str | None = None


class BacklogStatus(BaseModel):
    """One backlog in force: when it last ran and what it matched.

    ``last_ok`` is the outcome of that run when known (the fault poll's), True for the other
    domains once they completed a run, None before.
    """

    model_config = _MODEL
    key: str
    domain: str
    type: str
    interval: float
    running: bool
    last_run: str | None = None
    last_ok: bool | None = None
    matched_vms: int | None = None
    matched_hosts: int | None = None
    active_alarms: int | None = None


class NotificationStatus(BaseModel):
    """The region's notification listener (issue 19); its transport URL shows no password."""

    model_config = _MODEL
    state: str
    """``connected``, ``connecting``, ``failing`` or ``starting``."""
    reason: str | None = None
    since: str | None = None
    transport_url: str | None = None
    topic: str | None = None
    exchange: str | None = None
    pool: str | None = None
    server_listing_every: float | str | None = None
    """The safety poll interval while connected, else ``"poll_interval"``."""
    received: int = 0
    last_message: str | None = None


class RegionDetail(BaseModel):
    """The runtime status of one region (``status`` of ``GET /{vimid}/vesagent``)."""

    model_config = _MODEL
    managed: bool
    running: bool
    config_errors: list[ConfigProblem] = Field(default_factory=list)
    config_warnings: list[ConfigProblem] = Field(default_factory=list)
    credentials_error: str | None = None
    collector: CollectorStatus | None = None
    last_poll: PollStatus | None = None
    tracked_servers: int | None = None
    active_alarms: int | None = None
    last_event: str | None = None
    hypervisors: dict[str, Any] | None = None
    vim: VimStatus | None = None
    notifications: NotificationStatus | None = None
    backlogs: list[BacklogStatus] = Field(default_factory=list)


class ConfigView(BaseModel):
    """``GET``/``POST /{vimid}/vesagent``: the stored configuration (masked) and the status."""

    model_config = _MODEL
    vimid: str
    vesagent_config: dict[str, Any]
    status: RegionDetail


class RegionSummary(BaseModel):
    """One line of ``GET /vesagent``."""

    model_config = _MODEL
    vimid: str
    running: bool
    backlogs: int = 0
    last_poll: str | None = None
    last_poll_ok: bool | None = None
    tracked_servers: int = 0
    active_alarms: int = 0
    outbox_depth: int = 0
    dead_letters: int = 0
    collector_up: bool | None = None
    config_error: bool = False
    credentials_error: str | None = None


class AaiStatus(BaseModel):
    """How fresh this replica's view of A&AI is."""

    model_config = _MODEL
    last_success: str | None = None
    last_error: str | None = None


class RegionList(BaseModel):
    """``GET /vesagent``: every region this replica manages."""

    model_config = _MODEL
    shard: str
    aai: AaiStatus = Field(default_factory=AaiStatus)
    regions: list[RegionSummary] = Field(default_factory=list)


class DeadLetter(BaseModel):
    """An event the collector refused for its content, with the collector's answer."""

    model_config = _MODEL
    id: int
    collector: str
    domain: str
    event_id: str
    sequence: int
    status: int
    response: str
    attempts: int
    created: str | None = None
    failed_at: str | None = None


class DeadLetterList(BaseModel):
    """``GET /deadletters``: the newest dead letters first, and how many there are."""

    model_config = _MODEL
    total: int
    dead_letters: list[DeadLetter] = Field(default_factory=list)


class RequeueRequest(BaseModel):
    """``POST /deadletters/requeue``: which dead letters go back to the outbox.

    ``ids``, ``collector`` or both; at least one of them.
    """

    model_config = ConfigDict(extra="forbid")
    ids: list[int] | None = None
    collector: str | None = None


class RequeueResult(BaseModel):
    """The ids of the dead letters put back in the outbox."""

    model_config = _MODEL
    requeued: list[int]


# -- building the models from a running agent ------------------------------------------------
def collector_status(agent: Any, endpoint: str) -> CollectorStatus:
    """The sender's and the store's view of one collector."""
    sender = agent.sender
    error = sender.last_error.get(endpoint)
    up: bool | None = None
    if error is not None:
        up = False
    elif endpoint in sender.last_success:
        up = True
    return CollectorStatus(
        endpoint=endpoint,
        up=up,
        reason=sender.last_reason.get(endpoint) if error is not None else None,
        outbox_depth=agent.store.depth(endpoint),
        dead_letters=agent.store.dead_letter_count(endpoint),
        last_delivery=iso(sender.last_success.get(endpoint)),
        last_error=error,
    )


def _backlogs(spec: Any, poller: Any) -> list[BacklogStatus]:
    # Imported here: ``vesagent status`` uses the models without loading the pollers.
    from vesagent.pollers.hosts import host_selected

    last = poller.last
    fault_at = iso(last.finished) if last else None
    runs: dict[str, tuple[str | None, bool | None]] = {
        "fault": (fault_at, last.ok if last else None),
        "tca": (iso(poller.last_measure_at), True if poller.last_measure_at else None),
        "measurement": (iso(poller.last_measure_at), True if poller.last_measure_at else None),
        "heartbeat": (iso(poller.last_heartbeat_at), True if poller.last_heartbeat_at else None),
    }
    servers = list(poller.servers.values())
    alarms = list(poller.alarms)
    result = []
    for backlog in spec.config.backlogs:
        at, ok = runs.get(backlog.domain, (None, None))
        entry = BacklogStatus(
            key=backlog.key,
            domain=backlog.domain,
            type=backlog.type,
            interval=spec.config.interval_of(backlog),
            running=True,
            last_run=at,
            last_ok=ok,
        )
        if backlog.type == "vm" and backlog.domain != "heartbeat":
            selector = poller.selector(backlog)
            ids = {s.id for s in servers if selector.matches(s)}
            entry.matched_vms = len(ids)
            entry.active_alarms = sum(1 for sid, _c in alarms if sid in ids)
        elif backlog.type == "host" and backlog.domain == "fault":
            hosts = [h for h in poller.hosts if host_selected(backlog, h)]
            entry.matched_hosts = len(hosts)
            entry.active_alarms = sum(1 for sid, c in alarms if c == "Host" and sid in hosts)
        elif backlog.type == "vim" and backlog.domain == "fault":
            entry.active_alarms = sum(1 for _sid, c in alarms if c == "VIM")
        result.append(entry)
    return result


def region_detail(agent: Any, key: RegionKey) -> RegionDetail:
    """Runtime status of one region: per backlog and for the region as a whole."""
    poller = agent.pollers.get(key)
    cache = agent.reconciler.cache
    state = cache.state.get(key)
    spec = cache.config.get(key)
    detail = RegionDetail(
        managed=spec is not None,
        running=poller is not None,
        config_errors=[
            ConfigProblem(path=p, message=m) for p, m in (state.config_errors if state else [])
        ],
        config_warnings=[ConfigProblem(path=p, message=m) for p, m in cache.warnings.get(key, [])],
        credentials_error=state.credentials_error if state else None,
    )
    if spec is not None:
        detail.collector = collector_status(agent, spec.config.ves_subscription.endpoint)
        hub = getattr(agent, "notifications", None)
        if hub is not None and spec.config.notifications is not None:
            shown = hub.region_status(key) or {"state": "starting"}
            detail.notifications = NotificationStatus.model_validate(shown)
    if poller is None or spec is None:
        return detail
    last = poller.last
    detail.last_poll = PollStatus(
        at=iso(last.finished) if last else None,
        ok=last.ok if last else None,
        error=(last.error or None) if last else None,
        servers_seen=last.servers_seen if last else None,
        nova_requests=last.requests if last else None,
    )
    detail.tracked_servers = len(poller.servers)
    detail.active_alarms = len(poller.alarms)
    detail.last_event = iso(poller.last_event_at)
    if poller.hypervisors:
        detail.hypervisors = dict(sorted(poller.hypervisors.items()))
    detail.vim = VimStatus(
        consecutive_failures=poller.health.consecutive_failures,
        last_failure=poller.health.last_reason or None,
    )
    detail.backlogs = _backlogs(spec, poller)
    return detail


def region_list(agent: Any) -> RegionList:
    """Every region this replica manages, one summary each."""
    reconciler = agent.reconciler
    regions = []
    for key, spec in sorted(reconciler.cache.config.items()):
        poller = agent.pollers.get(key)
        state = reconciler.cache.state.get(key)
        last = poller.last if poller else None
        collector = collector_status(agent, spec.config.ves_subscription.endpoint)
        regions.append(
            RegionSummary(
                vimid=key.vimid,
                backlogs=len(spec.config.backlogs),
                running=poller is not None,
                last_poll=iso(last.finished) if last else None,
                last_poll_ok=last.ok if last else None,
                tracked_servers=len(poller.servers) if poller else 0,
                active_alarms=len(poller.alarms) if poller else 0,
                outbox_depth=collector.outbox_depth,
                dead_letters=collector.dead_letters,
                collector_up=collector.up,
                config_error=bool(state and state.config_errors),
                credentials_error=state.credentials_error if state else None,
            )
        )
    return RegionList(
        shard=str(agent.settings.shard),
        aai=AaiStatus(last_success=iso(reconciler.last_success), last_error=reconciler.last_error),
        regions=regions,
    )


def dead_letter_list(store: Any, collector: str | None = None, limit: int = 100) -> DeadLetterList:
    """The newest dead letters (of ``collector``, or of all), without their bodies."""
    letters = [
        DeadLetter(
            id=d["id"],
            collector=d["collector"],
            domain=d["domain"],
            event_id=d["event_id"],
            sequence=d["sequence"],
            status=d["status"],
            response=excerpt(d["response"]),
            attempts=d["attempts"],
            created=iso(d["created"]),
            failed_at=iso(d["failed_at"]),
        )
        for d in store.dead_letters(collector, limit=limit)
    ]
    return DeadLetterList(total=store.dead_letter_count(collector), dead_letters=letters)
