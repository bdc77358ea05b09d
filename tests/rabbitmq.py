"""A private RabbitMQ node on loopback for tests that need a real broker.

``RabbitNode.start()`` runs ``rabbitmq-server`` (Debian package) from ``/usr/lib/rabbitmq/bin``
with its own data and log dirs under a temporary directory, its own Erlang cookie (its own
``HOME``), and free ports for AMQP, Erlang distribution and epmd: it never touches a RabbitMQ
already running on 5672 / epmd 4369 / 14369. ``stop()`` stops the node and its epmd.
``stop_app()`` / ``start_app()`` take the broker away and bring it back (connections drop,
the non-durable notification queues vanish, as on a real restart).

``available()`` says whether the package is installed; tests skip with that reason when not.
``.ci/run`` installs it, so CI always runs them.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.helpers import free_port, wait_until

RABBIT_BIN = Path(os.environ.get("VESAGENT_TEST_RABBIT_BIN", "/usr/lib/rabbitmq/bin"))
START_TIMEOUT = 60.0


def available() -> str | None:
    """None when a private node can be started, else the reason why not."""
    if not (RABBIT_BIN / "rabbitmq-server").exists():
        return f"rabbitmq-server is not installed ({RABBIT_BIN}; apt-get install rabbitmq-server)"
    if shutil.which("erl") is None and not Path("/usr/lib/erlang/bin/erl").exists():
        return "Erlang (erl) is not installed"
    return None


class RabbitNode:
    """One private broker; ``url`` is its oslo.messaging transport URL (guest:guest)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="vesagent-rabbit-"))
        self.amqp_port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node = f"vesagent{self.amqp_port}@localhost"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.dir / "server.out"

    @property
    def url(self) -> str:
        return f"rabbit://guest:guest@127.0.0.1:{self.amqp_port}/"

    def url_with(self, user: str, password: str) -> str:
        return f"rabbit://{user}:{password}@127.0.0.1:{self.amqp_port}/"

    @property
    def env(self) -> dict[str, str]:
        home = self.dir / "home"
        home.mkdir(exist_ok=True)
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))},
            "HOME": str(home),  # its own .erlang.cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.dir / "rabbit.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config"),
        }

    def start(self) -> RabbitNode:
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")
        # Small and quiet: no disk alarm on a busy CI disk, loopback only.
        (self.dir / "rabbitmq.conf").write_text(
            "disk_free_limit.absolute = 1MB\nloopback_users.guest = true\n"
            "log.console = false\nlog.file.level = warning\n"
        )
        (self.dir / "advanced.config").write_text("[].\n")
        out = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(RABBIT_BIN / "rabbitmq-server")],
            env=self.env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        try:
            wait_until(self._accepting, START_TIMEOUT, f"RabbitMQ node {self.node}", step=0.2)
            self.ctl("await_startup")
        except BaseException:
            self.stop()
            raise
        return self

    def _accepting(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"rabbitmq-server exited:\n{self.logs()}")
        try:
            with socket.create_connection(("127.0.0.1", self.amqp_port), timeout=0.5):
                return True
        except OSError:
            return False

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """``rabbitmqctl -n <node> ...``; raises with its output on failure."""
        done = subprocess.run(
            [str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, *args],
            env=self.env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"rabbitmqctl {' '.join(args)}: {done.stdout!r} {done.stderr!r}")
        return done.stdout.decode(errors="replace")

    def stop_app(self) -> None:
        """The broker goes away (every connection drops, the port closes)."""
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        wait_until(self._accepting, START_TIMEOUT, "RabbitMQ back", step=0.1)

    def queues(self) -> dict[str, int]:
        """Queue name -> messages ready."""
        out = self.ctl("list_queues", "-q", "--no-table-headers", "name", "messages")
        found = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                found[parts[0]] = int(parts[1])
        return found

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                self.ctl("stop", timeout=30)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(5)
        # The epmd erl started for this node listens on our private port: end it too.
        subprocess.run(
            ["epmd", "-port", str(self.epmd_port), "-kill"],
            env=self.env,
            capture_output=True,
            check=False,
            timeout=10,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self._port_open(self.epmd_port):
            time.sleep(0.05)
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def _port_open(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False


FIXTURES = Path(__file__).resolve().parent / "fixtures" / "notifications"


def sample_payload(event_type: str) -> dict[str, Any]:
    """The payload of a notification recorded from a real Nova Zed (tests/fixtures)."""
    message = json.loads((FIXTURES / f"{event_type}.json").read_text())["message"]
    payload: dict[str, Any] = message["payload"]
    return payload


def instance_update(server: dict[str, Any], old_state: str, state: str) -> dict[str, Any]:
    """The recorded ``instance.update`` payload, re-aimed at ``server`` (a Nova server body)."""
    payload = copy.deepcopy(sample_payload("instance.update"))
    data = payload["nova_object.data"]
    data.update(
        uuid=server["id"],
        tenant_id=server.get("tenant_id", data["tenant_id"]),
        display_name=server.get("name", data["display_name"]),
        state=state,
    )
    data["state_update"]["nova_object.data"].update(old_state=old_state, state=state)
    return payload


class NovaPublisher:
    """Publishes notifications as Nova does: oslo.messaging's Notifier, driver messagingv2,
    exchange ``nova`` (Nova's ``control_exchange``), routing key ``<topic>.<priority>``."""

    def __init__(self, url: str, topic: str = "vesagent_notifications") -> None:
        import oslo_messaging
        from oslo_config import cfg

        oslo_messaging.set_transport_defaults("nova")  # what nova does at start-up
        conf = cfg.ConfigOpts()
        conf(args=[], project="nova-sim", default_config_files=[], default_config_dirs=[])
        self.url = url
        self.topic = topic
        self.transport = oslo_messaging.get_notification_transport(conf, url=url)
        self.notifier = oslo_messaging.Notifier(
            self.transport, publisher_id="nova-compute:vm", driver="messagingv2", topics=[topic]
        )

    def info(self, event_type: str, payload: Any) -> None:
        self.notifier.info({}, event_type, payload)

    def raw(self, body: bytes | str) -> None:
        """A body that is not the messagingv2 envelope at all (e.g. not JSON)."""
        import kombu

        amqp = "amqp://" + self.url.split("://", 1)[1]
        with kombu.Connection(amqp) as conn:
            exchange = kombu.Exchange("nova", type="topic", durable=False)
            producer = kombu.Producer(conn.channel(), exchange=exchange, auto_declare=False)
            producer.publish(body, routing_key=f"{self.topic}.info", content_type="text/plain")

    def close(self) -> None:
        self.transport.cleanup()
