"""Logging redaction, settings parsing, shard ownership and the CLI skeleton."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from vesagent import cli, logs
from vesagent.settings import Settings, Shard


@pytest.fixture(autouse=True)
def _reset_logging():
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = []


def test_redact_masks_secret_keys_at_any_depth() -> None:
    """Keys containing password/secret/token/authorization are masked, nested ones too."""
    event = {
        "event": "x",
        "password": "p",
        "VES_Password": "p",
        "X-Auth-Token": "t",
        "Authorization": "Basic abc",
        "client_secret": "s",
        "nested": {"user": "u", "password": "p", "list": [{"token": "t"}]},
    }
    out = logs.redact_secrets(None, "info", event)
    assert out["password"] == out["VES_Password"] == out["X-Auth-Token"] == "***"
    assert out["Authorization"] == out["client_secret"] == "***"
    assert out["nested"]["password"] == "***" and out["nested"]["user"] == "u"
    assert out["nested"]["list"][0]["token"] == "***"
    assert event["password"] == "p"  # the caller's dict is not modified


def test_json_logs_are_redacted_on_the_wire() -> None:
    """A configured logger writes one JSON object per line with secrets masked."""
    stream = io.StringIO()
    logs.configure("json", "info", stream=stream)
    logs.get_logger("t").info("login", username="admin", password="hunter2")
    logging.getLogger("thirdparty").warning("stdlib line")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["event"] == "login" and lines[0]["password"] == "***"
    assert "hunter2" not in stream.getvalue()
    assert lines[1]["event"] == "stdlib line" and lines[1]["level"] == "warning"


def test_console_format_is_text() -> None:
    """--log-format console renders plain text, not JSON."""
    stream = io.StringIO()
    logs.configure("console", "debug", stream=stream)
    logs.get_logger("t").debug("hello", token="abc")
    text = stream.getvalue()
    assert "hello" in text and "abc" not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_settings_from_env_and_flags() -> None:
    """Flags win over environment variables; defaults are the contract's."""
    args = cli.build_parser().parse_args(["run", "--aai-sync-interval", "5"])
    env = {
        "VESAGENT_AAI_URL": "http://127.0.0.1:8080/",
        "VESAGENT_AAI_SYNC_INTERVAL": "99",
        "VESAGENT_SHARD": "1/3",
        "VESAGENT_AAI_INSECURE": "true",
    }
    s = cli.settings_from(args, env)
    assert s.aai_url == "http://127.0.0.1:8080"
    assert s.aai_sync_interval == 5.0
    assert s.shard == Shard(1, 3)
    assert s.aai_insecure is True
    assert s.aai_username == "AAI" and s.aai_password.get_secret_value() == "AAI"
    assert s.aai_api_version == "v13" and s.listen == "127.0.0.1:9009"
    assert str(s.state_dir) == "var"
    assert "AAI" not in repr(s.aai_password)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({}, "aai_url"),
        ({"VESAGENT_AAI_URL": "aai:8443"}, "http"),
        ({"VESAGENT_AAI_URL": "http://a", "VESAGENT_SHARD": "3/3"}, "shard"),
        ({"VESAGENT_AAI_URL": "http://a", "VESAGENT_AAI_SYNC_INTERVAL": "0.1"}, "aai_sync"),
    ],
)
def test_run_rejects_bad_settings_naming_them(env, fragment, monkeypatch, capsys) -> None:
    """`vesagent run` with a bad setting exits 2 naming the setting and its variable."""
    for key in list(__import__("os").environ):
        if key.startswith("VESAGENT_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert cli.main(["run"]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "VESAGENT_" in err


def test_shard_is_stable_and_covers_every_region() -> None:
    """Each region belongs to exactly one of n shards, the same on every call."""
    shards = [Shard(i, 3) for i in range(3)]
    for n in range(300):
        path = f"Owner/Region{n}"
        assert sum(s.owns(path) for s in shards) == 1
    owners = [next(i for i, s in enumerate(shards) if s.owns(f"O/R{n}")) for n in range(300)]
    assert len(set(owners)) == 3  # spread, not all on one replica
    assert Shard.parse("0/1").owns("anything")
    with pytest.raises(ValueError, match="i/n"):
        Shard.parse("x")


@pytest.mark.parametrize("command", ["run", "check-config", "sim", "demo"])
def test_every_command_has_help(command: str, capsys) -> None:
    """`vesagent COMMAND --help` prints usage and exits 0."""
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: vesagent" in out
    if command == "run":
        assert "VESAGENT_AAI_URL" in out and "--shard" in out


def test_settings_model_validates_directly() -> None:
    """Settings can be built in code (tests and embedding) with the same rules."""
    s = Settings(aai_url="https://aai:8443", listen="127.0.0.1:0")
    assert s.listen_host_port == ("127.0.0.1", 0)
