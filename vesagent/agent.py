"""``vesagent run``: builds the parts from ``Settings``, runs them, shuts down cleanly.

Parts: the durable ``Store``, the ``Sender`` (outbox -> collectors), the ``PollerSet`` (Nova ->
outbox), the ``Reconciler`` (A&AI -> pollers) and the HTTP server (REST API, metrics, health).
SIGTERM/SIGINT stop polling, flush what the collectors accept within a grace period, and exit 0.
"""

from __future__ import annotations

import fcntl
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from prometheus_client import CollectorRegistry

from vesagent import __version__
from vesagent.aai_client import AaiClient
from vesagent.leases import FencedStore, LeaseKeeper, LeaseTable, replica_id
from vesagent.liveness import Liveness
from vesagent.logs import get_logger
from vesagent.metrics import Metrics, OutboxCollector
from vesagent.model import RegionKey, VimCredentials
from vesagent.notifications.hub import NotificationHub
from vesagent.pollers.manager import PollerSet
from vesagent.pollers.openstack import ComputeClient, SessionPool
from vesagent.pollers.poller import RegionPoller
from vesagent.reconciler.loop import Reconciler
from vesagent.settings import Settings
from vesagent.spec import RegionSpec
from vesagent.store import Store, StoreError
from vesagent.store_watch import StoreWatch
from vesagent.stores import is_postgres_url, open_store
from vesagent.ves_client.sender import CollectorDirectory, Sender

log = get_logger("vesagent.agent")
SHUTDOWN_GRACE = 6.0


@dataclass
class Agent:
    """Every running part of one agent process, for the HTTP API and for shutdown."""

    settings: Settings
    store: Store
    metrics: Metrics
    registry: CollectorRegistry
    directory: CollectorDirectory
    sender: Sender
    pollers: PollerSet
    reconciler: Reconciler
    aai: AaiClient
    started: float
    stop_event: threading.Event
    lock: Any = None
    leases: LeaseKeeper | None = None  # PostgreSQL mode: who polls what
    liveness: Liveness = field(default_factory=Liveness)
    notifications: NotificationHub | None = None
    store_watch: StoreWatch | None = None  # /readyz and vesagent_store_up


def notification_pool(settings: Settings, keeper: LeaseKeeper | None) -> str:
    """The oslo.messaging pool this replica listens in: its own queue, so every replica gets
    a copy of each notification (the owner of a region must hear it) and no other consumer
    of the topic loses one. Stable across restarts where the replica's identity is (a shard
    ordinal); per replica id in PostgreSQL mode (the README gives the queue expiry policy)."""
    if keeper is not None:
        return f"vesagent-{keeper.replica_id}"
    return f"vesagent-{settings.shard.index}"


def lock_state_dir(state_dir: Path) -> Any:
    """Hold an exclusive lock on the state dir: two agents on one outbox would send twice."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        handle = (state_dir / "vesagent.lock").open("a+")
    except OSError as exc:
        raise StoreError(f"{state_dir}: cannot create the state directory: {exc.strerror}") from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise StoreError(
            f"{state_dir}: in use by another vesagent process (each replica needs its own "
            "VESAGENT_STATE_DIR)"
        ) from None
    return handle


def _pair(cert: str | None, key: str | None) -> tuple[str, str] | None:
    """A client certificate and its key for requests/keystoneauth, or None."""
    return (cert, key) if cert and key else None


class _CollectorSession(requests.Session):
    """A session whose "verify with the system CAs" means the agent's default VES CA bundle."""

    default_ca: str | None = None

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        if verify is True and self.default_ca:
            verify = self.default_ca  # a subscription's own ca_file or ssl_insecure still wins
        return super().merge_environment_settings(url, proxies, stream, verify, cert)


def collector_session(settings: Settings) -> Callable[[], requests.Session]:
    """Sessions for the VES collectors with the agent's client certificate and default CA."""

    def make() -> requests.Session:
        session = _CollectorSession()
        session.cert = _pair(settings.ves_client_cert, settings.ves_client_key)
        session.default_ca = settings.ves_ca_file
        return session

    return make


def build_agent(settings: Settings, registry: CollectorRegistry | None = None) -> Agent:
    """Wire the parts; raises StoreError when the state file cannot be used."""
    registry = registry or CollectorRegistry()
    metrics = Metrics(registry)
    metrics.shard.labels(str(settings.shard.index), str(settings.shard.count)).set(1)
    # -- issue 16: SQLite in the state dir (locked: one agent per file), or PostgreSQL shared by
    # replicas that own regions by leases and fence their commits with them.
    shared = settings.state_url is not None and is_postgres_url(
        settings.state_url.get_secret_value()
    )
    lock = None if shared else lock_state_dir(settings.state_dir)
    store: Any = open_store(settings)
    watch = StoreWatch(store, getattr(store, "where", str(settings.state_dir)), metrics)
    keeper = (
        LeaseKeeper(
            LeaseTable(store, replica_id(), ttl=settings.lease_ttl, complexes=settings.complex),
            metrics=metrics,
            on_store=lambda error: watch.succeeded() if error is None else watch.failed(error),
        )
        if shared
        else None
    )
    directory = CollectorDirectory()
    registry.register(
        OutboxCollector(store.stats, directory.endpoints, usable=lambda: watch.reason() is None)
    )
    sender = Sender(store, directory, metrics=metrics, session_factory=collector_session(settings))

    # One Keystone token per set of VIM credentials, shared by every region that uses them.
    sessions = SessionPool(cert=_pair(settings.keystone_client_cert, settings.keystone_client_key))

    def make_client(creds: VimCredentials) -> ComputeClient:
        return ComputeClient(creds, pool=sessions)

    reconciler: Reconciler | None = None

    def refused(key: RegionKey) -> None:
        if reconciler is not None:
            reconciler.invalidate_credentials(key)

    def make_poller(spec: RegionSpec) -> RegionPoller:
        region_store: Any = FencedStore(store, keeper, spec.key.path) if keeper else store
        return RegionPoller(
            spec,
            region_store,
            make_client,
            metrics=metrics,
            on_events=sender.wake,
            on_refused=refused,
            may_poll=(lambda: keeper.owns(spec.key.path)) if keeper else None,
        )

    liveness = Liveness()
    # A pass may read A&AI many times, each within its timeout and retries: 10 minutes' grace.
    liveness.expect("reconciler", settings.aai_sync_interval, grace=600)
    liveness.expect("poll-timer", 1.0)
    pollers = PollerSet(make_poller, on_tick=liveness.ticker("poll-timer"))
    verify: bool | str = not settings.aai_insecure
    if settings.aai_ca_file and not settings.aai_insecure:
        verify = settings.aai_ca_file
    aai = AaiClient(
        settings.aai_url,
        settings.aai_username,
        settings.aai_password.get_secret_value(),
        version=settings.aai_api_version,
        verify=verify,
        cert=_pair(settings.aai_client_cert, settings.aai_client_key),
    )
    reconciler = Reconciler(
        aai, pollers, directory, shard=settings.shard, ownership=keeper, metrics=metrics
    )
    if keeper is not None:
        keeper.on_change = reconciler.trigger  # a lease taken or lost: converge at once
    # Issue 19: listens for the running regions that configure notifications (level-triggered).
    notifications = NotificationHub(
        pollers,
        lambda: {key: p.spec for key, p in pollers.pollers().items()},
        registry=registry,
        pool=notification_pool(settings, keeper),
    )
    return Agent(
        settings=settings,
        store=store,
        metrics=metrics,
        registry=registry,
        directory=directory,
        sender=sender,
        pollers=pollers,
        reconciler=reconciler,
        aai=aai,
        started=time.time(),
        stop_event=threading.Event(),
        lock=lock,
        leases=keeper,
        liveness=liveness,
        notifications=notifications,
        store_watch=watch,
    )


def run_agent(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; exit code 0 on a clean stop, 1 on a startup error."""
    try:
        agent = build_agent(settings)
    except StoreError as exc:
        log.error("startup.failed", error=str(exc))
        return 1
    from vesagent.api import serve

    try:
        server = serve(agent)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        log.error("startup.failed", error=f"cannot listen on {settings.listen}: {reason}")
        agent.store.close()
        return 1

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("shutdown.requested", signal=signal.Signals(signum).name)
        agent.stop_event.set()
        agent.reconciler.trigger()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info(
        "agent.started",
        version=__version__,
        aai=settings.aai_url,
        listen=f"{server.scheme}://{server.effective_listen}",
        shard=str(settings.shard),
        state_dir=str(settings.state_dir),
    )
    agent.sender.start()
    if agent.leases is not None:
        threading.Thread(
            target=agent.leases.run, args=(agent.stop_event,), name="leases", daemon=True
        ).start()
    if agent.store_watch is not None:
        threading.Thread(
            target=agent.store_watch.run, args=(agent.stop_event,), name="store-watch", daemon=True
        ).start()
    if agent.notifications is not None:
        agent.notifications.start()
    loop = threading.Thread(
        target=agent.reconciler.run,
        args=(agent.stop_event, settings.aai_sync_interval, agent.liveness.ticker("reconciler")),
        name="reconcile",
        daemon=True,
    )
    loop.start()
    agent.stop_event.wait()
    shutdown(agent)
    server.close()
    log.info("agent.stopped")
    return 0


def shutdown(agent: Agent) -> None:
    """Stop polling first, then flush deliveries within the grace period, then close the store."""
    agent.stop_event.set()
    agent.reconciler.trigger()
    if agent.notifications is not None:
        agent.notifications.stop()
    agent.pollers.shutdown(timeout=2.0)
    if agent.leases is not None:
        agent.leases.close()  # hand the regions over now rather than after the TTL
    agent.sender.stop(grace=SHUTDOWN_GRACE)
    agent.aai.close()
    agent.store.close()
    if agent.lock is not None:
        agent.lock.close()
