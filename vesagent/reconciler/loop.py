"""The reconciler: each pass reads A&AI, computes the full desired state, converges the pollers.

Level-triggered: a pass does not care what changed since the last one; it compares the desired
specs with the running ones and acts on the difference, so repeating a pass is harmless.

A failed A&AI read changes nothing (every poller keeps running on its last known spec; the
outage shows in logs, metrics and ``/readyz``). Until the first successful read nothing starts
and nothing stops. An invalid ``vesagent_config`` is handled the same way per region: the last
valid spec stays in force and the error, with its JSON path, is recorded.

VIM credentials come from ``credentials.CredentialReader``: read per region in the
background, so a slow region never stalls the pass; a region whose credentials are not (yet)
known keeps its last spec, or waits to start, and is looked at again on the next pass.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cachetools import TTLCache
from prometheus_client import CollectorRegistry

from vesagent.aai_client import AaiClient, RegionRecord, credentials_from_esr
from vesagent.config import (
    CONFIG_KEY,
    VesagentConfig,
    check_config_warnings,
    parse_cloud_extra_info,
)
from vesagent.errors import ConfigError, PermanentError, TemporaryError
from vesagent.leases import LeaseKeeper, handover_rest, region_complexes
from vesagent.logs import get_logger
from vesagent.metrics import Metrics
from vesagent.model import CollectorAuth, RegionKey, VimCredentials
from vesagent.pollers.cycle import fault_interval, measure_interval
from vesagent.pollers.manager import PollerSet, StopReason
from vesagent.reconciler.credentials import CredentialReader
from vesagent.reconciler.diff import Plan, diff
from vesagent.settings import Shard
from vesagent.spec import RegionSpec
from vesagent.ves_client.sender import CollectorDirectory

log = get_logger("vesagent.reconciler")

STATE_TTL = 3600.0  # the seed design expires per-vim state after an hour


@dataclass
class RegionState:
    """Per-region observations the REST API and metrics show."""

    config_errors: list[tuple[str, str]] = field(default_factory=list)
    config_error_at: float | None = None
    credentials_error: str | None = None


class BacklogCache:
    """The seed design's cache: each vim's config and each vim's state.

    ``config`` holds the last *valid* spec per region and never expires (it is what stays in
    force when A&AI is down or a config turns invalid); ``state`` expires, as the seed says,
    so regions that vanished leave no garbage behind.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.config: dict[RegionKey, RegionSpec] = {}
        self.state: TTLCache[RegionKey, RegionState] = TTLCache(100_000, STATE_TTL, timer=clock)
        # Unknown keys of each valid config (likely typos), kept as long as its text.
        self.warnings: dict[RegionKey, list[tuple[str, str]]] = {}
        # Parsing is the expensive part of a pass: reuse the result while the text is unchanged.
        self.parsed: dict[
            RegionKey, tuple[str | None, VesagentConfig | None, ConfigError | None]
        ] = {}

    def region_state(self, key: RegionKey) -> RegionState:
        state = self.state.get(key)
        if state is None:
            state = self.state[key] = RegionState()
        return state


def collector_auth(config: VesagentConfig) -> CollectorAuth:
    """The delivery settings of a config's subscription (secrets unwrapped only here)."""
    sub = config.ves_subscription
    username, password = sub.basic_auth() or (None, None)
    verify: bool | str = True
    if sub.ssl_insecure:
        verify = False
    elif sub.ca_file:
        verify = sub.ca_file
    return CollectorAuth(
        endpoint=sub.endpoint,
        username=username,
        password=password,
        timeout=sub.timeout,
        verify=verify,
    )


def _openstack_region_hint(extra_info: str | None) -> str | None:
    try:
        value = json.loads(extra_info or "").get("openstack-region-id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


class Reconciler:
    """Reads A&AI and converges the ``PollerSet``; one pass per ``sync()``."""

    def __init__(
        self,
        aai: AaiClient,
        pollers: PollerSet,
        directory: CollectorDirectory,
        *,
        shard: Shard | None = None,
        ownership: LeaseKeeper | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        credentials_wait: float = 1.0,
    ) -> None:
        self.aai = aai
        self.pollers = pollers
        self.directory = directory
        self.shard = shard or Shard()
        # A private registry when none is shared: the counting code never checks for None.
        self.metrics = metrics if metrics is not None else Metrics(CollectorRegistry())
        # Leases (PostgreSQL mode) decide instead of the static shard when given.
        self.ownership = ownership
        self.clock = clock
        self.cache = BacklogCache()
        self.credentials = CredentialReader(
            self._read_credentials, wait=credentials_wait, on_late_result=self.trigger
        )
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.last_plan = Plan()
        self._pass_lock = threading.Lock()
        self._trigger = threading.Event()

    @property
    def ready(self) -> bool:
        return self.last_success is not None

    # -- one pass ------------------------------------------------------------------------
    def sync(self) -> bool:
        """Read A&AI and converge; False (and nothing changed) when A&AI could not be read."""
        with self._pass_lock:
            started = time.monotonic()
            try:
                everything = self.aai.list_regions()
            except (TemporaryError, PermanentError) as exc:
                self._read_failed(str(exc))
                return False
            if self.ownership is not None:
                self.ownership.set_regions(
                    {r.key.path: region_complexes(r.body) for r in everything},
                    {r.key.path: self._handover_rest(r.key) for r in everything},
                )
            records = [r for r in everything if self._owns(r.key.path)]
            others = {r.key for r in everything} - {r.key for r in records}
            desired = self._desired(records)
            self._learn_collectors(r for r in everything if r.key in others)
            for key in self.cache.parsed.keys() - {r.key for r in everything}:
                del self.cache.parsed[key]
                self.cache.warnings.pop(key, None)
            self._converge(desired, others, {r.key for r in records})
            self.last_success = self.clock()
            self.last_error = None
            self.metrics.aai_reads.labels("ok").inc()
            self.metrics.aai_up.set(1)
            self.metrics.aai_last_success.set(self.last_success)
            self.metrics.aai_read_seconds.observe(time.monotonic() - started)
            self.metrics.reconcile_passes.inc()
            return True

    def _owns(self, path: str) -> bool:
        """Whether this replica polls the region: its lease, or else the static shard."""
        if self.ownership is not None:
            return self.ownership.owns(path)
        return self.shard.owns(path)

    def _handover_rest(self, key: RegionKey) -> float:
        """How long the region's lease rests when released: its Nova-polling intervals."""
        spec = self.cache.config.get(key)
        if spec is None:
            return handover_rest(())
        return handover_rest((fault_interval(spec), measure_interval(spec)))

    def _read_failed(self, error: str) -> None:
        if error != self.last_error:
            log.error("aai.unreachable", error=error, pollers_kept=len(self.pollers.pollers()))
        self.last_error = error
        self.metrics.aai_reads.labels("error").inc()
        self.metrics.aai_up.set(0)

    def _desired(self, records: Iterable[RegionRecord]) -> dict[RegionKey, RegionSpec]:
        desired: dict[RegionKey, RegionSpec] = {}
        managed: list[tuple[RegionRecord, VesagentConfig]] = []
        for record in records:
            key = record.key
            config, error = self._parse(record)
            state = self.cache.state.get(key)
            if error is not None:
                state = self.cache.region_state(key)
                if state.config_errors != error.problems:
                    log.error(
                        "config.invalid",
                        vimid=key.vimid,
                        problems=[f"{p}: {m}" if p else m for p, m in error.problems],
                        kept_last_valid=key in self.cache.config,
                    )
                    state.config_error_at = self.clock()
                state.config_errors = list(error.problems)
                if key in self.cache.config:
                    desired[key] = self.cache.config[key]
                continue
            if state is not None and state.config_errors:
                log.info("config.valid_again", vimid=key.vimid)
                state.config_errors = []
            if config is not None:  # else: not managed by vesagent
                managed.append((record, config))
        # All credential reads of the pass at once, in the background: a slow region costs
        # the pass at most the reader's wait, never the sum of the regions' read times.
        views = self.credentials.lookup(record for record, _config in managed)
        for record, config in managed:
            key, view = record.key, views[record.key]
            if view.credentials is not None or view.problem is not None:
                known = self.cache.state.get(key)
                if (known.credentials_error if known else None) != view.problem:
                    self.cache.region_state(key).credentials_error = view.problem
            if view.credentials is None:
                if key in self.cache.config:
                    desired[key] = self.cache.config[key]  # keep polling on the last known
                continue
            desired[key] = RegionSpec(key, config, view.credentials)
        return desired

    def _learn_collectors(self, records: Iterable[RegionRecord]) -> None:
        """Know the collectors of other shards' regions too.

        Events this replica queued before a region moved away (or before a restart) must
        stay deliverable, and their credentials live only in that region's config.
        """
        found = {}
        for record in records:
            config, _error = self._parse(record)
            if config is not None:
                found[config.ves_subscription.endpoint] = collector_auth(config)
        if found:
            self.directory.merge(found)

    def _parse(self, record: RegionRecord) -> tuple[VesagentConfig | None, ConfigError | None]:
        cached = self.cache.parsed.get(record.key)
        if cached is not None and cached[0] == record.extra_info:
            return cached[1], cached[2]
        try:
            result: tuple[VesagentConfig | None, ConfigError | None] = (
                parse_cloud_extra_info(record.extra_info),
                None,
            )
            if result[0] is not None and self._owns(record.key.path):
                # Unknown keys are accepted (other tools share the object) but often typos:
                # logged once per edit, shown by the REST API.
                found = check_config_warnings(record.extra_info or "")
                self.cache.warnings[record.key] = found
                for path, message in found:
                    log.warning(
                        "config.unknown_key", vimid=record.key.vimid, path=path, message=message
                    )
        except ConfigError as exc:
            # Text that does not even mention us belongs to other systems: not managed.
            mentions_us = CONFIG_KEY in (record.extra_info or "")
            result = (None, exc if mentions_us else None)
        self.cache.parsed[record.key] = (record.extra_info, *result)
        return result

    def _read_credentials(self, record: RegionRecord) -> VimCredentials | None:
        """One region's esr-system-info as credentials (runs in a reader thread)."""
        esr = self.aai.esr_list(record.key)
        return credentials_from_esr(record, esr, _openstack_region_hint(record.extra_info))

    def invalidate_credentials(self, key: RegionKey) -> None:
        """Keystone refused the region's credentials: read esr-system-info again, now."""
        self.credentials.forget(key)
        self.trigger()

    def _converge(
        self,
        desired: dict[RegionKey, RegionSpec],
        other_shards: set[RegionKey] | frozenset = frozenset(),
        listed: set[RegionKey] | frozenset = frozenset(),
    ) -> None:
        running = {k: p.spec for k, p in self.pollers.pollers().items()}
        plan = diff(desired, running)
        self.last_plan = plan
        # Collectors first, so the events a change produces can be delivered at once.
        self.directory.merge(
            {s.config.ves_subscription.endpoint: collector_auth(s.config) for s in desired.values()}
        )
        for spec in plan.start + plan.update:
            action = self.pollers.ensure(spec)
            if action != "none":
                log.info(
                    f"region.{'started' if action == 'start' else 'updated'}",
                    vimid=spec.vimid,
                    backlogs=len(spec.config.backlogs),
                )
                self._count(action)
        for key in plan.stop:
            # A region now owned by another replica keeps its alarms open: the new owner
            # re-announces them with the same eventIds and clears them when they end.
            if key in other_shards:
                reason = StopReason.SHARD_MOVED
            elif key in listed:
                reason = StopReason.NOT_MANAGED  # vesagent_config removed: monitoring ends
            else:
                reason = StopReason.REGION_REMOVED
            self.pollers.stop(key, reason)
            self.metrics.forget_region(key.vimid)
            self._count("stop")
        self.cache.config = dict(desired)
        self.metrics.regions.set(len(desired))
        counts: dict[tuple[str, str], int] = {}
        for spec in desired.values():
            for b in spec.config.backlogs:
                counts[(b.domain, b.type)] = counts.get((b.domain, b.type), 0) + 1
        self.metrics.backlogs.clear()
        for (domain, kind), n in counts.items():
            self.metrics.backlogs.labels(domain, kind).set(n)
        for key in desired:
            state = self.cache.state.get(key)
            self.metrics.config_errors.labels(key.vimid).set(
                1 if state and state.config_errors else 0
            )

    def _count(self, action: str) -> None:
        self.metrics.reconcile_actions.labels(action).inc()

    # -- the loop ------------------------------------------------------------------------
    def trigger(self) -> None:
        """Run a pass now instead of at the next interval (e.g. after a REST API write)."""
        self._trigger.set()

    def run(
        self, stop: threading.Event, interval: float, on_pass: Callable[[], None] | None = None
    ) -> None:
        """Sync every ``interval`` seconds until ``stop`` is set; ``on_pass`` after each pass."""
        while not stop.is_set():
            try:
                self.sync()
            except Exception:  # a bug in one pass must not end the loop
                log.exception("reconcile.crashed")
            if on_pass is not None:  # liveness: the loop still turns (vesagent/liveness.py)
                on_pass()
            self._trigger.wait(interval)
            self._trigger.clear()
