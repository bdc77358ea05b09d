"""Fixtures for ``make itest-openstack``: a real cloud, the project's A&AI and VES simulators
around it, and ``vesagent run`` as a subprocess polling that cloud.

Nothing here runs unless ``VESAGENT_ITEST=1`` and ``OS_AUTH_URL`` are set (``cloud.enabled``),
so ``make test`` skips the whole folder. Servers are named ``vesagent-itest-<run>-...`` and
deleted at the end whatever happens; leftovers of earlier runs are deleted at the start.

Each scenario reports the Nova requests and Keystone token issues the agent made (read from
its ``/metrics``) and the detection latency (the change in Nova to the VES collector accepting
the event); a table of them is printed at the end of the session.

Scenarios run in two modes (the ``mode`` fixture): ``polling`` (every ``POLL_INTERVAL``) and
``notifications`` (Nova's versioned notifications on the broker ``VESAGENT_ITEST_TRANSPORT_URL``
names, with polling every ``NOTIFIED_POLL_INTERVAL`` and the server listing every
``SAFETY_POLL_INTERVAL`` as the safety net); the second is skipped when that variable is unset.
The broker-outage scenario also needs ``VESAGENT_ITEST_BROKER_STOP`` and
``VESAGENT_ITEST_BROKER_START``: shell commands that stop and start the broker (e.g.
``rabbitmqctl stop_app`` / ``start_app``), run as given.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import AgentProcess
from tests.helpers import free_port, wait_until
from tests.itest.cloud import CloudError, CloudSettings, RealCloud, enabled, skip_reason
from vesagent.sim.aai import AaiSim
from vesagent.sim.topology import VES_PASSWORD, VES_USER, extra_info, vesagent_config
from vesagent.sim.ves import VesCollectorSim, VesRecord

BASE_PREFIX = "vesagent-itest-"
OWNER = "ITestOwner"
POLL_INTERVAL = 2.0
# With notifications: the setting (10 s polls, a 60 s safety listing), so that an event
# sooner than a poll interval can only come from the doorbell.
NOTIFIED_POLL_INTERVAL = 10.0
SAFETY_POLL_INTERVAL = 60.0
TRANSPORT_VAR = "VESAGENT_ITEST_TRANSPORT_URL"
BROKER_STOP_VAR = "VESAGENT_ITEST_BROKER_STOP"
BROKER_START_VAR = "VESAGENT_ITEST_BROKER_START"
POLLING, NOTIFIED = "polling", "notifications"
# How long a raise or clear may take to arrive before the scenario fails (the budget the
# latency is judged against is tighter, see test_real_openstack.LATENCY_BUDGET).
EVENT_TIMEOUT = 30.0
# With notifications an event must come well before the next poll could bring it.
NOTIFIED_BUDGET = 2.0


# -- the session summary -----------------------------------------------------------------------
@dataclass(frozen=True)
class ScenarioReport:
    """What one scenario cost the agent and how fast it detected the changes."""

    name: str
    mode: str
    nova_requests: int
    keystone_auths: int
    polls: int
    seconds: float
    latencies: dict[str, float] = field(default_factory=dict)
    note: str = ""

    def line(self, width: int = 50) -> str:
        """One row of the summary table, the name padded to ``width``."""
        lat = "  ".join(f"{k} {v:5.2f}s" for k, v in self.latencies.items()) or "-"
        per_minute = self.nova_requests * 60.0 / self.seconds if self.seconds else 0.0
        return (
            f"{self.name:<{width}} {self.mode:<13} {self.nova_requests:>5} {per_minute:>7.1f} "
            f"{self.keystone_auths:>5} {self.polls:>5} {self.seconds:>6.1f}s  {lat}"
            + (f"  ({self.note})" if self.note else "")
        )


def header(width: int = 50) -> str:
    """The column titles of the summary table."""
    return (
        f"{'scenario':<{width}} {'mode':<13} {'nova':>5} {'nova/min':>7} {'auths':>5} "
        f"{'polls':>5} {'time':>7}  latency"
    )


REPORTS = pytest.StashKey[list[ScenarioReport]]()


def pytest_configure(config: pytest.Config) -> None:
    """Room for the scenario reports of this session."""
    config.stash[REPORTS] = []


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Print the table of every scenario that ran (nothing when the suite was skipped)."""
    del exitstatus
    reports = config.stash.get(REPORTS, [])
    if not reports:
        return
    terminalreporter.section("vesagent against a real OpenStack")
    terminalreporter.line(
        f"polling: poll interval {POLL_INTERVAL:g} s; notifications: poll interval "
        f"{NOTIFIED_POLL_INTERVAL:g} s, server listing every {SAFETY_POLL_INTERVAL:g} s plus a "
        "doorbell poll per notification; nova = Nova requests and auths = Keystone token "
        "issues by the agent (its /metrics), from its start to the end of the scenario; "
        "latency = change visible in Nova -> event accepted by the VES collector"
    )
    width = max(len(r.name) for r in reports)
    terminalreporter.line(header(width))
    for report in reports:
        terminalreporter.line(report.line(width))


# -- the real cloud ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def settings() -> CloudSettings:
    """The cloud the ``OS_*`` variables point at (skips the suite when not enabled)."""
    if not enabled():
        pytest.skip(skip_reason(os.environ) or "not enabled")
    return CloudSettings.from_env(os.environ)


@pytest.fixture(scope="session")
def run_prefix() -> str:
    """The name prefix of every server this run creates."""
    return f"{BASE_PREFIX}{secrets.token_hex(3)}-"


def _delete_quietly(cloud: RealCloud, server_id: str, problems: list[str]) -> None:
    try:
        cloud.delete(server_id)
    except CloudError as exc:
        problems.append(str(exc))


@pytest.fixture(scope="session")
def cloud(settings: CloudSettings, run_prefix: str) -> Iterator[RealCloud]:
    """The real cloud; leftovers of earlier runs go first, this run's servers go at the end."""
    real = RealCloud(settings)
    problems: list[str] = []
    for leftover in real.servers_named(BASE_PREFIX):
        _delete_quietly(real, leftover["id"], problems)
    try:
        yield real
    finally:
        for server in real.servers_named(run_prefix):
            _delete_quietly(real, server["id"], problems)
        real.close()
    if problems:
        pytest.fail("could not delete test servers:\n" + "\n".join(problems))


@dataclass
class ServerPool:
    """Servers booted by one test; the fixture deletes them whatever the test's outcome."""

    cloud: RealCloud
    prefix: str
    ids: dict[str, str] = field(default_factory=dict)  # id -> name

    def boot(self, label: str, *, wait: bool = True) -> tuple[str, str]:
        """Boot ``{prefix}{label}`` (ACTIVE when ``wait``); returns (id, name)."""
        name = f"{self.prefix}{label}"
        server_id = self.cloud.create_server(name)
        self.ids[server_id] = name
        if wait:
            self.cloud.wait_status(server_id, "ACTIVE")
        return server_id, name


@pytest.fixture
def servers(
    cloud: RealCloud, run_prefix: str, request: pytest.FixtureRequest
) -> Iterator[ServerPool]:
    """A pool of servers for this test, named after it."""
    short = request.node.name.removeprefix("test_")[:20].rstrip("_")
    pool = ServerPool(cloud, f"{run_prefix}{short}-")
    yield pool
    problems: list[str] = []
    for server_id in pool.ids:
        with contextlib.suppress(CloudError):
            if cloud.show(server_id) is None:
                continue
        _delete_quietly(cloud, server_id, problems)
    assert not problems, problems


# -- the agent and the simulators around it ----------------------------------------------------
def read_metrics(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The agent's ``/metrics`` as {(sample name, labels): value}."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


@dataclass
class Harness:
    """A&AI and VES simulators, one region pointing at the real cloud, and the agent."""

    settings: CloudSettings
    aai: AaiSim
    ves: VesCollectorSim
    tmp_path: Path
    region_id: str
    mode: str = POLLING
    transport_url: str = ""
    pool: str = ""  # the agent's notification queue on the broker
    agent: AgentProcess | None = None
    started: float = 0.0
    version: str = "v5"

    @property
    def vimid(self) -> str:
        """The region's id in the agent's metrics and events."""
        return f"{OWNER}_{self.region_id}"

    @property
    def project(self) -> str:
        """The project name the agent's token is scoped to (the tenant of our servers)."""
        return self.settings.project_name

    @property
    def notified(self) -> bool:
        """True in the ``notifications`` mode."""
        return self.mode == NOTIFIED

    @property
    def poll_interval(self) -> float:
        """The region's ``poll_interval`` in this mode."""
        return NOTIFIED_POLL_INTERVAL if self.notified else POLL_INTERVAL

    def start(self, backlogs: list[dict[str, Any]], version: str = "v5") -> AgentProcess:
        """Register the region in A&AI, start ``vesagent run``, wait for its first good poll
        (and, with notifications, for its listener to be connected)."""
        self.version = version
        config = vesagent_config(self.ves.url, version, backlogs)
        config["poll_interval_default"] = self.poll_interval
        if self.notified:
            config["notifications"] = {
                "transport_url": self.transport_url,
                "safety_poll_interval": SAFETY_POLL_INTERVAL,
            }
        region = AaiSim.make_region(
            OWNER,
            self.region_id,
            extra_info=extra_info(config),
            keystone_url=self.settings.auth_url,
            username=self.settings.username,
            password=self.settings.password,
            project=self.settings.project_name,
            domain=self.settings.project_domain,
            openstack_region_id=self.settings.region,
        )
        esr = region["esr-system-info-list"]["esr-system-info"][0]
        if isinstance(self.settings.verify, str):
            esr["ssl-cacert"] = Path(self.settings.verify).read_text(encoding="utf-8")
            esr["ssl-insecure"] = False
        self.aai.put_region(region)
        listen = f"127.0.0.1:{free_port()}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("VESAGENT_", "OS_"))},
            "VESAGENT_AAI_URL": self.aai.url,
            "VESAGENT_AAI_SYNC_INTERVAL": "1",
            "VESAGENT_STATE_DIR": str(self.tmp_path / "state"),
            "VESAGENT_LISTEN": listen,
            "VESAGENT_LOG_LEVEL": "debug",
        }
        self.started = time.monotonic()
        self.agent = AgentProcess(env, self.tmp_path / "agent.log", listen).start()
        wait_until(lambda: self.polls() >= 1, 60, "the agent's first successful poll")
        if self.notified:
            wait_until(
                lambda: self.notifications().get("state") == "connected",
                60,
                "the notification listener connected",
            )
            self.pool = str(self.notifications().get("pool") or "")
        return self.agent

    def region_status(self) -> dict[str, Any]:
        """The region's ``status`` from the agent's REST API."""
        assert self.agent is not None
        url = f"{self.agent.url}/api/multicloud/v0/{self.vimid}/vesagent"
        body = requests.get(url, timeout=5).json()
        return dict(body.get("status") or {})

    def notifications(self) -> dict[str, Any]:
        """The region's ``notifications`` status entry ({} when it has none)."""
        return dict(self.region_status().get("notifications") or {})

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the agent's metrics for this region (0 when absent)."""
        assert self.agent is not None
        key = (name, frozenset({"vimid": self.vimid, **labels}.items()))
        return read_metrics(self.agent.url).get(key, 0.0)

    def polls(self) -> int:
        """Successful poll cycles so far; fails fast when a poll failed."""
        failed = self.metric("vesagent_polls_total", outcome="error")
        if failed:
            assert self.agent is not None
            raise AssertionError(f"a poll failed; agent log:\n{self.agent.logs()[-4000:]}")
        return int(self.metric("vesagent_polls_total", outcome="ok"))

    def wait_polls(self, more: int) -> None:
        """Wait for ``more`` complete poll cycles from now."""
        target = self.polls() + more
        budget = self.poll_interval * (more + 3)
        wait_until(lambda: self.polls() >= target, budget, f"{more} polls")

    def faults(self, source_id: str, kind: str = "") -> list[VesRecord]:
        """The fault events the collector accepted for ``source_id``, in arrival order.

        ``kind`` keeps only events whose name starts with ``Fault_MultiCloud_{kind}`` (e.g.
        ``VMFailure``), so that a host problem caused meanwhile by someone else on a shared
        cloud (a ``HostUnreachable`` child alarm of the same server) does not spoil the counts.
        """
        prefix = f"Fault_MultiCloud_{kind}"
        return [
            r
            for r in self.ves.records()
            if r.domain == "fault"
            and r.event["commonEventHeader"].get("sourceId") == source_id
            and str(r.event["commonEventHeader"].get("eventName", "")).startswith(prefix)
        ]

    def wait_faults(self, source_id: str, count: int, kind: str = "") -> list[VesRecord]:
        """Wait until ``count`` fault events for ``source_id`` arrived; returns them all."""
        return wait_until(
            lambda: len(self.faults(source_id, kind)) >= count and self.faults(source_id, kind),
            EVENT_TIMEOUT,
            f"{count} {kind or 'fault'} event(s) for {source_id}",
        )

    def report(
        self, request: pytest.FixtureRequest, latencies: dict[str, float], note: str = ""
    ) -> None:
        """Record (and print) what the scenario cost the agent and its detection latencies."""
        report = ScenarioReport(
            name=request.node.originalname.removeprefix("test_"),
            mode=self.mode,
            nova_requests=int(self.metric("vesagent_nova_requests_total")),
            keystone_auths=int(self.metric("vesagent_keystone_authentications_total")),
            polls=self.polls(),
            seconds=time.monotonic() - self.started,
            latencies=latencies,
            note=note,
        )
        request.config.stash[REPORTS].append(report)
        print(f"\n{header()}\n{report.line()}")

    def latency_budget(self, polled_budget: float) -> float:
        """How late an event may be: ``polled_budget`` when polling; with notifications well
        under one poll interval, so that only the doorbell can meet it."""
        return NOTIFIED_BUDGET if self.notified else polled_budget


@pytest.fixture(scope="session")
def agent_queues() -> Iterator[set[str]]:
    """The agents' own notification queues (their pools); deleted from the broker at the
    end, so that a finished run leaves no queue filling up there."""
    pools: set[str] = set()
    yield pools
    url = os.environ.get(TRANSPORT_VAR, "")
    if not pools or not url:
        return
    import kombu  # oslo.messaging's own AMQP library (a runtime dependency)

    # kombu takes the same URL with the amqp scheme (one host is enough to delete a queue).
    first = url.split(",", 1)[0].split("://", 1)[1].rstrip("/")
    with kombu.Connection(f"amqp://{first}/", connect_timeout=10) as conn:
        channel = conn.channel()
        for pool in sorted(pools):
            with contextlib.suppress(Exception):  # already gone, e.g. with the broker
                channel.queue_delete(pool, if_unused=True)


@pytest.fixture(params=[POLLING, NOTIFIED])
def mode(request: pytest.FixtureRequest) -> str:
    """How the agent learns of changes: polling alone, or notifications with polling as the
    safety net (skipped without ``VESAGENT_ITEST_TRANSPORT_URL``)."""
    if request.param == NOTIFIED and not os.environ.get(TRANSPORT_VAR):
        pytest.skip(f"notifications: set {TRANSPORT_VAR} to the broker Nova publishes on")
    return str(request.param)


@pytest.fixture
def harness(
    settings: CloudSettings, cloud: RealCloud, tmp_path: Path, mode: str, agent_queues: set[str]
) -> Iterator[Harness]:
    """Fresh simulators and an agent per scenario, so that counts start at zero."""
    del cloud  # requested for its leftover cleanup before the first scenario
    ves = VesCollectorSim(username=VES_USER, password=VES_PASSWORD).start()
    aai = AaiSim().start()
    region_id = settings.region or "RegionOne"
    harness = Harness(
        settings, aai, ves, tmp_path, region_id, mode, os.environ.get(TRANSPORT_VAR, "")
    )
    try:
        yield harness
    finally:
        if harness.pool:
            agent_queues.add(harness.pool)
        if harness.agent is not None and harness.agent.proc is not None:
            try:
                harness.agent.stop()
            except Exception:  # a hung agent must not keep the servers alive: kill it
                harness.agent.proc.kill()
                harness.agent.proc.wait(5)
        aai.stop()
        ves.stop()


# -- the broker, for the outage scenario -------------------------------------------------------
@dataclass(frozen=True)
class Broker:
    """Stops and starts the broker Nova publishes on, with the commands the operator gave."""

    stop_command: str
    start_command: str

    def _run(self, command: str, what: str) -> None:
        done = subprocess.run(
            command, shell=True, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise AssertionError(
                f"{what} ({command!r}) exited {done.returncode}: {done.stdout} {done.stderr}"[:800]
            )

    def stop(self) -> None:
        """Take the broker away (connections drop, its non-durable queues go)."""
        self._run(self.stop_command, BROKER_STOP_VAR)

    def start(self) -> None:
        """Bring it back."""
        self._run(self.start_command, BROKER_START_VAR)


@pytest.fixture
def broker() -> Broker:
    """The broker's stop and start commands (skips without them)."""
    stop, start = os.environ.get(BROKER_STOP_VAR), os.environ.get(BROKER_START_VAR)
    if not stop or not start:
        pytest.skip(f"the broker outage needs {BROKER_STOP_VAR} and {BROKER_START_VAR}")
    return Broker(stop, start)
