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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from vesagent import __version__
from vesagent.aai_client import AaiClient
from vesagent.logs import get_logger
from vesagent.metrics import Metrics, OutboxCollector
from vesagent.model import RegionKey
from vesagent.notifications.hub import NotificationHub
from vesagent.pollers.manager import PollerSet
from vesagent.pollers.openstack import ComputeClient, SessionPool, VimCredentials
from vesagent.pollers.poller import RegionPoller
from vesagent.reconciler.loop import Reconciler
from vesagent.settings import Settings
from vesagent.spec import RegionSpec
from vesagent.store import Store, StoreError
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
    notifications: NotificationHub | None = None


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


def build_agent(settings: Settings, registry: CollectorRegistry | None = None) -> Agent:
    """Wire the parts; raises StoreError when the state file cannot be used."""
    registry = registry or CollectorRegistry()
    metrics = Metrics(registry)
    metrics.shard.labels(str(settings.shard.index), str(settings.shard.count)).set(1)
    lock = lock_state_dir(settings.state_dir)
    store = Store(
        settings.state_dir,
        max_age=settings.outbox_max_age,
        max_rows=settings.outbox_max_events,
        max_bytes=settings.outbox_max_bytes,
    )
    directory = CollectorDirectory()
    registry.register(OutboxCollector(store.stats, directory.endpoints))
    sender = Sender(store, directory, metrics=metrics)

    # One Keystone token per set of VIM credentials, shared by every region that uses them.
    sessions = SessionPool()

    def make_client(creds: VimCredentials) -> ComputeClient:
        return ComputeClient(creds, pool=sessions)

    reconciler: Reconciler | None = None

    def refused(key: RegionKey) -> None:
        if reconciler is not None:
            reconciler.invalidate_credentials(key)

    def make_poller(spec: RegionSpec) -> RegionPoller:
        return RegionPoller(
            spec, store, make_client, metrics=metrics, on_events=sender.wake, on_refused=refused
        )

    pollers = PollerSet(make_poller)
    verify: bool | str = not settings.aai_insecure
    if settings.aai_ca_file and not settings.aai_insecure:
        verify = settings.aai_ca_file
    aai = AaiClient(
        settings.aai_url,
        settings.aai_username,
        settings.aai_password.get_secret_value(),
        version=settings.aai_api_version,
        verify=verify,
    )
    reconciler = Reconciler(aai, pollers, directory, shard=settings.shard, metrics=metrics)
    # Issue 19: listens for the running regions that configure notifications (level-triggered).
    notifications = NotificationHub(
        pollers,
        lambda: {key: p.spec for key, p in pollers.pollers().items()},
        registry=registry,
        pool=f"vesagent-{settings.shard.index}",
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
        notifications=notifications,
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
        log.error("startup.failed", error=f"cannot listen on {settings.listen}: {exc.strerror}")
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
        listen=f"http://{server.effective_listen}",
        shard=str(settings.shard),
        state_dir=str(settings.state_dir),
    )
    agent.sender.start()
    if agent.notifications is not None:
        agent.notifications.start()
    loop = threading.Thread(
        target=agent.reconciler.run,
        args=(agent.stop_event, settings.aai_sync_interval),
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
    agent.sender.stop(grace=SHUTDOWN_GRACE)
    agent.aai.close()
    agent.store.close()
    if agent.lock is not None:
        agent.lock.close()
