"""``vesagent status`` against a real HTTP server on loopback serving canned agent answers."""

from __future__ import annotations

import argparse
import base64
import io
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from vesagent import status

USER, PASSWORD = "ops", "s3cret-api-pw"
VES_PASSWORD = "ves-pw-never-shown"

SUMMARY: dict[str, Any] = {
    "shard": "1/3",
    "aai": {"last_success": "2024-05-01T10:00:00Z", "last_error": None},
    "regions": [
        {
            "vimid": "CloudOwner_RegionOne",
            "backlogs": 2,
            "running": True,
            "last_poll": "2024-05-01T10:00:05Z",
            "last_poll_ok": True,
            "tracked_servers": 20,
            "active_alarms": 1,
            "outbox_depth": 0,
            "config_error": False,
        },
        {
            "vimid": "CloudOwner_RegionTwo",
            "backlogs": 1,
            "running": True,
            "last_poll": "2024-05-01T09:59:50Z",
            "last_poll_ok": False,
            "tracked_servers": 0,
            "active_alarms": 0,
            "outbox_depth": 37,
            "config_error": True,
        },
        {
            "vimid": "CloudOwner_RegionThree",
            "backlogs": 1,
            "running": False,
            "last_poll": None,
            "last_poll_ok": None,
            "tracked_servers": 0,
            "active_alarms": 0,
            "outbox_depth": 0,
            "config_error": False,
        },
    ],
}

LAST_POLL = {
    "at": "2024-05-01T10:00:05Z",
    "ok": True,
    "error": None,
    "servers_seen": 20,
    "nova_requests": 1,
}
REGION: dict[str, Any] = {
    "vimid": "CloudOwner_RegionOne",
    "vesagent_config": {
        # As if an agent forgot to mask it: the command must still not print it.
        "ves_subscription": {
            "endpoint": "http://ves:8080/eventListener/v5",
            "username": "user",
            "password": VES_PASSWORD,
        },
        "poll_interval_default": 10,
        "backlogs": [
            {"domain": "fault", "type": "vm", "tenant": "admin", "source": "onap-aaf"},
            {"domain": "fault", "type": "vm", "tenant": "demo", "poll_interval": 30},
        ],
    },
    "status": {
        "managed": True,
        "running": True,
        "config_errors": [],
        "credentials_error": None,
        "backlogs": [
            {
                "key": "0a1b2c3d4e5f6071",
                "domain": "fault",
                "type": "vm",
                "interval": 10,
                "running": True,
                "matched_vms": 1,
                "active_alarms": 1,
                "last_poll": LAST_POLL,
            },
            {
                "key": "ffeeddccbbaa9988",
                "domain": "fault",
                "type": "vm",
                "interval": 30,
                "running": True,
                "matched_vms": 12,
                "active_alarms": 0,
                "last_poll": LAST_POLL,
            },
        ],
        "collector": {
            "endpoint": "http://ves:8080/eventListener/v5",
            "outbox_depth": 4,
            "last_delivery": "2024-05-01T10:00:06Z",
            "last_error": None,
        },
        "last_poll": LAST_POLL,
        "tracked_servers": 20,
        "active_alarms": 1,
        "last_event": "2024-05-01T09:58:00Z",
    },
}


class CannedAgent:
    """A Flask app answering like vesagent's API; ``require_auth`` and ``broken`` switch modes."""

    def __init__(self) -> None:
        self.require_auth = False
        self.summary: dict[str, Any] = SUMMARY
        self.region: dict[str, Any] = REGION
        self.paths: list[str] = []
        self.raw_uris: list[str] = []
        self.app = Flask("canned-agent")
        self.app.json.sort_keys = False  # type: ignore[attr-defined]
        self.app.add_url_rule("/api/multicloud/v0/vesagent", view_func=self.list_regions)
        self.app.add_url_rule("/api/multicloud/v0/<vimid>/vesagent", view_func=self.one_region)
        self.app.add_url_rule("/not-json/api/multicloud/v0/vesagent", view_func=self.not_json)
        self.app.before_request(self._record)

    def _record(self) -> None:
        self.raw_uris.append(request.environ.get("REQUEST_URI", ""))

    def _denied(self) -> Any:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.require_auth and request.headers.get("Authorization") != expected:
            return jsonify({"error": "authentication required"}), 401
        return None

    def list_regions(self) -> Any:
        self.paths.append(request.path)
        return self._denied() or jsonify(self.summary)

    def one_region(self, vimid: str) -> Any:
        self.paths.append(request.path)
        if denied := self._denied():
            return denied
        if vimid == "CloudOwner_Broken":
            return jsonify({"error": "A&AI unreachable: HTTP 503"}), 503
        if vimid != self.region["vimid"]:
            return jsonify({"error": f"cloud-region {vimid} has no vesagent_config"}), 404
        return jsonify(self.region)

    def not_json(self) -> Any:
        return "<html>hello</html>", 200, {"Content-Type": "text/html"}


@pytest.fixture
def agent() -> Iterator[tuple[CannedAgent, str]]:
    canned = CannedAgent()
    server = make_server("127.0.0.1", 0, canned.app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield canned, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def _run(url: str, vimid: str | None = None, **kw: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = status.run_status(
        url, vimid, kw.get("username"), kw.get("password"), out, err, timeout=5
    )
    return code, out.getvalue(), err.getvalue()


def _row(text: str, first_cell: str) -> list[str]:
    rows = [line.split() for line in text.splitlines() if line.startswith(first_cell + " ")]
    assert len(rows) == 1, text
    return rows[0]


def _free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_summary_prints_one_row_per_region(agent: tuple[CannedAgent, str]) -> None:
    canned, url = agent
    code, out, err = _run(url)
    assert code == 0, err
    assert canned.paths == ["/api/multicloud/v0/vesagent"]
    assert "shard 1/3" in out and "last read 2024-05-01T10:00:00Z" in out
    assert "last error: none" in out
    header = [line for line in out.splitlines() if line.startswith("VIMID")]
    assert header and header[0].split()[:6] == [
        "VIMID",
        "RUNNING",
        "BACKLOGS",
        "VMS",
        "ALARMS",
        "OUTBOX",
    ]
    assert _row(out, "CloudOwner_RegionOne") == [
        "CloudOwner_RegionOne",
        "yes",
        "2",
        "20",
        "1",
        "0",
        "2024-05-01T10:00:05Z",
        "ok",
        "ok",
    ]
    assert _row(out, "CloudOwner_RegionTwo")[5:] == [
        "37",
        "2024-05-01T09:59:50Z",
        "failed",
        "error",
    ]
    assert _row(out, "CloudOwner_RegionThree") == [
        "CloudOwner_RegionThree",
        "no",
        "1",
        "0",
        "0",
        "0",
        "-",
        "-",
        "ok",
    ]


def test_columns_are_aligned(agent: tuple[CannedAgent, str]) -> None:
    _canned, url = agent
    _code, out, _err = _run(url)
    table = [line for line in out.splitlines() if line.startswith(("VIMID", "CloudOwner_"))]
    starts = {line.index("RUNNING") if line.startswith("VIMID") else None for line in table}
    column = max(s for s in starts if s is not None)
    # Every row's second cell starts under the RUNNING header.
    for line in table[1:]:
        assert line[column - 2 : column] == "  " and line[column] != " ", line


def test_summary_without_regions_says_so(agent: tuple[CannedAgent, str]) -> None:
    canned, url = agent
    canned.summary = {**SUMMARY, "regions": [], "aai": {"last_success": None, "last_error": "x"}}
    code, out, _err = _run(url)
    assert code == 0
    assert "no region with a vesagent_config" in out
    assert "last read -, last error: x" in out
    assert "VIMID" not in out


def test_vimid_prints_region_details_and_backlogs(agent: tuple[CannedAgent, str]) -> None:
    canned, url = agent
    code, out, err = _run(url, "CloudOwner_RegionOne")
    assert code == 0, err
    assert canned.paths == ["/api/multicloud/v0/CloudOwner_RegionOne/vesagent"]
    assert "region CloudOwner_RegionOne" in out and "running" in out
    assert "last poll: 2024-05-01T10:00:05Z ok (20 servers seen, 1 Nova requests)" in out
    assert "tracked VMs: 20, active alarms: 1" in out
    assert "collector: http://ves:8080/eventListener/v5 outbox 4" in out
    first = _row(out, "0a1b2c3d4e5f6071")
    assert first[:8] == ["0a1b2c3d4e5f6071", "fault", "vm", "admin/onap-aaf", "10", "yes", "1", "1"]
    assert first[-1] == "ok"
    second = _row(out, "ffeeddccbbaa9988")
    assert second[3:8] == ["demo/*", "30", "yes", "12", "0"]
    assert VES_PASSWORD not in out + err


def test_vimid_shows_config_errors_and_hides_scope_that_may_not_match(
    agent: tuple[CannedAgent, str],
) -> None:
    canned, url = agent
    broken_status = {
        **REGION["status"],
        "config_errors": [{"path": "backlogs[1].poll_interval", "message": "must be > 0"}],
        "credentials_error": "no esr-system-info with a service-url",
    }
    canned.region = {**REGION, "status": broken_status}
    code, out, _err = _run(url, "CloudOwner_RegionOne")
    assert code == 0
    assert "backlogs[1].poll_interval: must be > 0" in out
    assert "VIM credentials: no esr-system-info with a service-url" in out
    # The stored config is not the one in force: its scopes are not shown against the rows.
    assert _row(out, "0a1b2c3d4e5f6071")[3] == "-"


def test_unknown_vimid_is_an_agent_error(agent: tuple[CannedAgent, str]) -> None:
    _canned, url = agent
    code, out, err = _run(url, "CloudOwner_Nowhere")
    assert code == 1
    assert out == ""
    assert "HTTP 404" in err and "cloud-region CloudOwner_Nowhere has no vesagent_config" in err


def test_agent_failure_is_exit_1_with_its_message(agent: tuple[CannedAgent, str]) -> None:
    _canned, url = agent
    code, _out, err = _run(url, "CloudOwner_Broken")
    assert code == 1
    assert "HTTP 503: A&AI unreachable: HTTP 503" in err


def test_vimid_is_quoted_into_one_path_segment(agent: tuple[CannedAgent, str]) -> None:
    canned, url = agent
    code, _out, err = _run(url, "a/b c")
    assert code == 1 and "HTTP 404" in err
    assert canned.raw_uris == ["/api/multicloud/v0/a%2Fb%20c/vesagent"]


def test_not_json_answer_is_exit_1(agent: tuple[CannedAgent, str]) -> None:
    _canned, url = agent
    code, _out, err = _run(url + "/not-json")
    assert code == 1
    assert "did not answer with a JSON object" in err


def test_credentials_are_sent_and_never_printed(agent: tuple[CannedAgent, str]) -> None:
    canned, url = agent
    canned.require_auth = True
    code, _out, err = _run(url)
    assert code == 1
    assert "HTTP 401" in err and "VESAGENT_API_USERNAME" in err
    code, out, err = _run(url, username=USER, password="wrong-password")
    assert code == 1 and "wrong-password" not in out + err
    code, out, err = _run(url, "CloudOwner_RegionOne", username=USER, password=PASSWORD)
    assert code == 0, err
    assert PASSWORD not in out + err


def test_password_in_url_is_not_printed(agent: tuple[CannedAgent, str]) -> None:
    canned, url = agent
    canned.require_auth = True
    with_userinfo = url.replace("http://", f"http://{USER}:{PASSWORD}@")
    code, out, err = _run(with_userinfo)
    assert code == 0, err  # requests takes the credentials from the URL
    assert PASSWORD not in out + err
    assert f"agent {url}" in out


def test_unreachable_agent_is_exit_2_naming_the_url() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    code, out, err = _run(url)
    assert code == 2
    assert out == ""
    assert f"cannot reach the agent at {url}" in err
    assert "connection refused" in err


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://u:p@h:1/x", "http://h:1/x"),
        ("http://u:p@w@h:1", "http://h:1"),
        ("http://[::1", "http://[::1"),
        ("http://h:1/a@b", "http://h:1/a@b"),
    ],
)
def test_shown_url_drops_userinfo(url: str, shown: str) -> None:
    assert status.shown_url(url) == shown


def test_unreachable_agent_with_password_in_url_hides_it() -> None:
    port = _free_port()
    code, _out, err = _run(f"http://{USER}:{PASSWORD}@127.0.0.1:{port}")
    assert code == 2
    assert f"http://127.0.0.1:{port}" in err and PASSWORD not in err


def test_silent_agent_times_out_as_unreachable() -> None:
    with socket.socket() as sock:  # accepts connections (backlog) but never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        out, err = io.StringIO(), io.StringIO()
        code = status.run_status(url, None, None, None, out, err, timeout=0.3)
    assert code == 2
    assert f"no answer from {url}/api/multicloud/v0/vesagent within 0.3 s" in err.getvalue()


@pytest.mark.parametrize(
    "bad", ["127.0.0.1:9009", "http://", "ftp://h:1", "http://[::1", "http://h:port"]
)
def test_malformed_url_is_exit_2(bad: str) -> None:
    code, out, err = _run(bad)
    assert code == 2 and out == ""
    assert bad in err


@pytest.mark.parametrize(
    ("listen", "url"),
    [
        ("0.0.0.0:9009", "http://127.0.0.1:9009"),
        (":9009", "http://127.0.0.1:9009"),
        ("[::]:9009", "http://[::1]:9009"),
        ("10.1.2.3:8080", "http://10.1.2.3:8080"),
        ("127.0.0.1:9009", "http://127.0.0.1:9009"),
        ("https://agent.example:9443/", "https://agent.example:9443"),
    ],
)
def test_url_from_listen(listen: str, url: str) -> None:
    assert status.url_from_listen(listen) == url


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vesagent status")
    status.add_status_arguments(parser)
    return parser.parse_args(list(argv))


def test_status_command_takes_url_and_credentials_from_the_environment(
    agent: tuple[CannedAgent, str], capsys: pytest.CaptureFixture[str]
) -> None:
    canned, url = agent
    canned.require_auth = True
    listen = url.removeprefix("http://")
    env = {
        "VESAGENT_LISTEN": listen,
        "VESAGENT_API_USERNAME": USER,
        "VESAGENT_API_PASSWORD": PASSWORD,
    }
    assert status.status_command(_args(), env) == 0
    captured = capsys.readouterr()
    assert "CloudOwner_RegionOne" in captured.out and PASSWORD not in captured.out + captured.err


def test_status_command_flags_win_over_the_environment(
    agent: tuple[CannedAgent, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _canned, url = agent
    env = {"VESAGENT_LISTEN": f"127.0.0.1:{_free_port()}"}
    code = status.status_command(_args("--url", url, "--vimid", "CloudOwner_RegionOne"), env)
    assert code == 0
    assert "0a1b2c3d4e5f6071" in capsys.readouterr().out


def test_defaults_and_precedence_of_url_and_credentials() -> None:
    assert status.resolve_target(_args(), {}) == ("http://127.0.0.1:9009", None, None)
    env = {
        "VESAGENT_LISTEN": "0.0.0.0:9100",
        "VESAGENT_API_USERNAME": "env-user",
        "VESAGENT_API_PASSWORD": "env-pw",
    }
    assert status.resolve_target(_args(), env) == ("http://127.0.0.1:9100", "env-user", "env-pw")
    flags = _args("--url", "http://h:1", "--username", "u", "--password", "p")
    assert status.resolve_target(flags, env) == ("http://h:1", "u", "p")
