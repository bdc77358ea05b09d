"""``vesagent status`` without an agent: rendering the status model, URLs, unreachable agents.

The command against a real agent (its API over HTTP, with the simulators) is tested in
``tests/component/test_status_cli.py``.
"""

from __future__ import annotations

import argparse
import io
import socket
from typing import Any

import pytest

from tests.helpers import free_port
from vesagent import status
from vesagent.status_model import (
    BacklogStatus,
    ConfigProblem,
    ConfigView,
    RegionDetail,
    RegionList,
    RegionSummary,
)

USER, PASSWORD = "ops", "s3cret-api-pw"


def _run(url: str, vimid: str | None = None, **kw: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = status.run_status(
        url, vimid, kw.get("username"), kw.get("password"), out, err, timeout=5
    )
    return code, out.getvalue(), err.getvalue()


def _summary(n: int) -> RegionList:
    return RegionList(
        shard="0/1",
        regions=[
            RegionSummary(vimid=f"Owner_R{'x' * i}", running=i % 2 == 0, outbox_depth=10**i)
            for i in range(n)
        ],
    )


def test_columns_are_aligned() -> None:
    """Every row's cells start under their header, whatever the cell widths."""
    out = status.render_summary(_summary(4), "http://a:1")
    table = [line for line in out if line.startswith(("VIMID", "Owner_"))]
    column = table[0].index("RUNNING")
    for line in table[1:]:
        assert line[column - 2 : column] == "  " and line[column] != " ", line


def test_summary_without_regions_says_so() -> None:
    """An agent with no region says so instead of printing an empty table."""
    body = RegionList.model_validate({"shard": "0/1", "aai": {"last_error": "x"}})
    out = "\n".join(status.render_summary(body, "http://a:1"))
    assert "no region with a vesagent_config" in out
    assert "last read -, last error: x" in out
    assert "VIMID" not in out


def test_config_errors_hide_scope_that_may_not_match() -> None:
    """With config errors, the stored backlogs are not the ones in force: no scope shown."""
    view = ConfigView(
        vimid="Owner_R",
        vesagent_config={"backlogs": [{"tenant": "admin"}]},
        status=RegionDetail(
            managed=True,
            running=True,
            config_errors=[ConfigProblem(path="backlogs[1].poll_interval", message="must be > 0")],
            credentials_error="no esr-system-info with a service-url",
            backlogs=[
                BacklogStatus(key="k1", domain="fault", type="vm", interval=10, running=True)
            ],
        ),
    )
    out = "\n".join(status.render_region(view, "http://a:1"))
    assert "backlogs[1].poll_interval: must be > 0" in out
    assert "VIM credentials: no esr-system-info with a service-url" in out
    (line,) = [x for x in out.splitlines() if x.startswith("k1 ")]
    assert line.split()[3] == "-"


@pytest.mark.parametrize(("value", "ids"), [("all", "all"), ("3", [3]), ("1,2, 5", [1, 2, 5])])
def test_requeue_flag_takes_ids_or_all(value: str, ids: Any) -> None:
    """--requeue takes comma-separated dead-letter ids, or all."""
    assert status.parse_requeue(value) == ids


@pytest.mark.parametrize("bad", ["", "x", "1,y"])
def test_requeue_flag_refuses_other_values(bad: str) -> None:
    """Anything but ids or all is an argument error naming the value."""
    with pytest.raises(argparse.ArgumentTypeError):
        status.parse_requeue(bad)


def test_unreachable_agent_is_exit_2_naming_the_url() -> None:
    """Nobody listening: exit 2, naming the URL and "connection refused"."""
    url = f"http://127.0.0.1:{free_port()}"
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
    """user:password@ is removed from URLs before they are printed."""
    assert status.shown_url(url) == shown


def test_unreachable_agent_with_password_in_url_hides_it() -> None:
    """The password of a URL never shows in the unreachable message."""
    port = free_port()
    code, _out, err = _run(f"http://{USER}:{PASSWORD}@127.0.0.1:{port}")
    assert code == 2
    assert f"http://127.0.0.1:{port}" in err and PASSWORD not in err


def test_silent_agent_times_out_as_unreachable() -> None:
    """An agent that accepts but never answers is exit 2 after --timeout."""
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
    """A URL that is not http(s)://host:port is exit 2, quoting it."""
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
    """VESAGENT_LISTEN becomes a URL reachable from the same host."""
    assert status.url_from_listen(listen) == url


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vesagent status")
    status.add_status_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_and_precedence_of_url_and_credentials() -> None:
    """Flags win over the environment, which wins over the defaults."""
    assert status.resolve_target(_args(), {}) == ("http://127.0.0.1:9009", None, None)
    env = {
        "VESAGENT_LISTEN": "0.0.0.0:9100",
        "VESAGENT_API_USERNAME": "env-user",
        "VESAGENT_API_PASSWORD": "env-pw",
    }
    assert status.resolve_target(_args(), env) == ("http://127.0.0.1:9100", "env-user", "env-pw")
    flags = _args("--url", "http://h:1", "--username", "u", "--password", "p")
    assert status.resolve_target(flags, env) == ("http://h:1", "u", "p")
