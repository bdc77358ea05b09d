"""Issue 15 without a network: tracebacks, check-config input, settings, password files."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vesagent import cli, logs
from vesagent.model import RegionKey
from vesagent.settings import Settings
from vesagent.vimid import InvalidVimid, check_region_key, parse_vimid

SECRET = "planted-secret-5e1f"


def _crash(body: dict) -> None:
    password = body["ves_subscription"]["password"]  # a local holding the secret
    raise RuntimeError(f"could not use {len(password)} characters")


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_tracebacks_carry_no_locals_and_no_secrets(fmt: str) -> None:
    """Finding 5: a logged exception shows where it happened, never the frame's locals."""
    stream = io.StringIO()
    logs.configure(fmt, "info", stream=stream)
    try:
        body = {"ves_subscription": {"password": SECRET}}
        try:
            _crash(body)
        except RuntimeError:
            logs.get_logger("test").exception("api.internal_error")
            logging.getLogger("werkzeug.like").exception("stdlib path")  # Flask logs this way
            logs.get_logger("test").info("url", target=f"rabbit://nova:{SECRET}@mq:5672/")
    finally:
        logs.configure("json", "info")
    out = stream.getvalue()
    assert "_crash" in out and "RuntimeError" in out
    assert SECRET not in out
    if fmt == "json":
        first = json.loads(out.splitlines()[0])
        assert all("locals" not in frame for frame in first["exception"][0]["frames"])


def _check(data: bytes, tmp_path: Path) -> subprocess.CompletedProcess[bytes]:
    path = tmp_path / "input.json"
    path.write_bytes(data)
    return subprocess.run(
        [sys.executable, "-m", "vesagent", "check-config", str(path)],
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_check_config_says_what_is_wrong_with_binary_and_utf16(tmp_path: Path) -> None:
    """Finding 7: binary and UTF-16 input: exit 1, a clear line, no traceback."""
    config = json.dumps({"vesagent_config": {"ves_subscription": {"endpoint": "http://v/x"}}})
    cases = {
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR": "binary",
        config.encode("utf-16"): "UTF-16",
        b"{\xff\xfe}": "not UTF-8",
    }
    for data, expected in cases.items():
        done = _check(data, tmp_path)
        assert done.returncode == 1, done
        assert expected in done.stdout.decode(), done.stdout
        assert b"Traceback" not in done.stderr + done.stdout
    assert _check(config.encode("utf-8-sig"), tmp_path).returncode == 0


def test_check_config_reads_at_most_the_limit() -> None:
    """Finding 7: /dev/zero and a 300 MB stdin end quickly with "larger than", no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "vesagent", "check-config", "/dev/zero"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and b"larger than 1048576 bytes" in done.stdout, done
    proc = subprocess.Popen(
        [sys.executable, "-m", "vesagent", "check-config", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    sent = 0
    chunk = b" " * (1024 * 1024)
    try:
        while sent < 300 * 1024 * 1024:
            proc.stdin.write(chunk)
            sent += len(chunk)
    except BrokenPipeError:
        pass  # it stopped reading and exited: what we want
    finally:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.wait(60)
    assert proc.returncode == 1 and b"larger than" in out, (out, err)
    assert b"Traceback" not in err


def test_vimid_rules_are_aais() -> None:
    """Finding 3: only A&AI/MultiCloud's characters; ``.`` and ``..`` never pass."""
    assert parse_vimid("CloudOwner_RegionOne_a-b") == RegionKey("CloudOwner", "RegionOne_a-b")
    for bad in (
        ".._..",
        "CloudOwner_..",
        "CloudOwner_.",
        "a.b_c",
        "_r",
        "o_",
        "o",
        "o_r/x",
        "o_r%2F",
        "o_r\u00e9",
        "o_" + "r" * 256,
        "o_r\n",
    ):
        with pytest.raises(InvalidVimid):
            parse_vimid(bad)
    with pytest.raises(InvalidVimid):
        check_region_key(RegionKey("CloudOwner", ".."))


def test_aai_client_refuses_to_build_a_path_for_a_bad_key() -> None:
    """Finding 3: the A&AI client checks the key before any URL exists."""
    from vesagent.aai_client import AaiClient

    client = AaiClient("http://127.0.0.1:9", "AAI", "AAI")
    with pytest.raises(InvalidVimid):
        client.region_path(RegionKey("CloudOwner", ".."))
    with pytest.raises(InvalidVimid):
        client.get_region(RegionKey("..", ".."))
    assert client.requests_made == 0


def test_open_api_refusal_is_a_pure_decision() -> None:
    """Finding 2: non-loopback without credentials is refused unless api_auth is none."""
    base = {"aai_url": "http://aai"}
    assert Settings(**base, listen="0.0.0.0:9009").open_api_refusal()
    assert Settings(**base, listen="aai-host:9009").open_api_refusal()
    assert Settings(**base, listen="127.0.0.1:9009").open_api_refusal() is None
    assert Settings(**base, listen="[::1]:9009").open_api_refusal() is None
    assert Settings(**base, listen="0.0.0.0:9009", api_auth="none").open_api_refusal() is None
    with_users = Settings(**base, listen="0.0.0.0:1", api_username="u", api_password="p")
    assert with_users.open_api_refusal() is None
    with pytest.raises(ValueError, match="contradicts"):
        Settings(**base, api_auth="none", api_username="u", api_password="p")
    with pytest.raises(ValueError, match="go together"):
        Settings(**base, tls_cert="/c.pem")
    with pytest.raises(ValueError, match="go together"):
        Settings(**base, api_read_username="r")


def test_passwords_come_from_files(tmp_path: Path) -> None:
    """Secrets from files (first line only), never both a value and a file, clear errors."""
    secret_file = tmp_path / "aai"
    secret_file.write_text(SECRET + "\n")
    api_file = tmp_path / "api"
    api_file.write_text("api-" + SECRET + "\r\n")
    parser = cli.build_parser()
    args = parser.parse_args(["run", "--aai-password-file", str(secret_file)])
    env = {
        "VESAGENT_AAI_URL": "http://aai",
        "VESAGENT_API_USERNAME": "ops",
        "VESAGENT_API_PASSWORD_FILE": str(api_file),
    }
    settings = cli.settings_from(args, env)
    assert settings.aai_password.get_secret_value() == SECRET
    assert settings.api_users == {"ops": ("api-" + SECRET, True)}
    with pytest.raises(cli.SecretFileError, match="not both"):
        cli.settings_from(args, {**env, "VESAGENT_AAI_PASSWORD": "x"})
    with pytest.raises(cli.SecretFileError, match="cannot read"):
        cli.settings_from(parser.parse_args(["run", "--aai-password-file", "/nonexistent"]), env)
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(cli.SecretFileError, match="empty"):
        cli.read_secret_file(str(empty), "X")


def test_run_refuses_open_non_loopback_listener_in_process(tmp_path: Path, capsys) -> None:
    """``vesagent run`` on 0.0.0.0 without credentials exits 2 before anything starts."""
    env = {
        "VESAGENT_AAI_URL": "http://127.0.0.1:9",
        "VESAGENT_LISTEN": "0.0.0.0:9009",
        "VESAGENT_STATE_DIR": str(tmp_path / "state"),
    }
    old = dict(os.environ)
    os.environ.update(env)
    try:
        assert cli.main(["run"]) == 2
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert "--api-auth none" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()
