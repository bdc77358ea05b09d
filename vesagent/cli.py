"""Command line: ``vesagent run | check-config | sim | demo``; the only place that wires parts.

Every setting of ``run`` comes from a flag or, when the flag is absent, from the environment
variable CONTRACT.md section 2 names, or from the contract's default.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from vesagent import __version__, logs

# (flag, env variable, help); defaults live in Settings.
RUN_OPTIONS: list[tuple[str, str, str]] = [
    ("--aai-url", "VESAGENT_AAI_URL", "A&AI base URL, e.g. https://aai.onap:8443 (required)"),
    ("--aai-username", "VESAGENT_AAI_USERNAME", "A&AI Basic auth user (default AAI)"),
    ("--aai-password", "VESAGENT_AAI_PASSWORD", "A&AI Basic auth password (default AAI)"),
    ("--aai-api-version", "VESAGENT_AAI_API_VERSION", "A&AI API version path segment (v13)"),
    ("--aai-ca-file", "VESAGENT_AAI_CA_FILE", "CA bundle for A&AI over HTTPS"),
    ("--aai-insecure", "VESAGENT_AAI_INSECURE", "skip TLS verification of A&AI (true/false)"),
    ("--aai-sync-interval", "VESAGENT_AAI_SYNC_INTERVAL", "seconds between A&AI reads (30)"),
    ("--state-dir", "VESAGENT_STATE_DIR", "directory of the durable state (./var)"),
    ("--listen", "VESAGENT_LISTEN", "host:port of the REST API and /metrics (127.0.0.1:9009)"),
    ("--shard", "VESAGENT_SHARD", "i/n: this replica's share of the regions (0/1)"),
    ("--outbox-max-age", "VESAGENT_OUTBOX_MAX_AGE", "seconds an undelivered event is kept (7200)"),
    ("--outbox-max-events", "VESAGENT_OUTBOX_MAX_EVENTS", "events kept for delivery (1000000)"),
    ("--outbox-max-bytes", "VESAGENT_OUTBOX_MAX_BYTES", "bytes kept for delivery (512 MiB)"),
    ("--api-username", "VESAGENT_API_USERNAME", "REST API user who may read and change (unset)"),
    ("--api-password", "VESAGENT_API_PASSWORD", "password of the REST API user"),
    ("--api-read-username", "VESAGENT_API_READ_USERNAME", "REST API user who may only read"),
    ("--api-read-password", "VESAGENT_API_READ_PASSWORD", "password of the read-only user"),
    (
        "--api-auth",
        "VESAGENT_API_AUTH",
        "auto, basic or none (auto: credentials required on a non-loopback listener)",
    ),
    ("--tls-cert", "VESAGENT_TLS_CERT", "PEM certificate of the agent's listener (HTTPS)"),
    ("--tls-key", "VESAGENT_TLS_KEY", "PEM private key of the agent's listener"),
    ("--aai-client-cert", "VESAGENT_AAI_CLIENT_CERT", "PEM client certificate for A&AI"),
    ("--aai-client-key", "VESAGENT_AAI_CLIENT_KEY", "PEM client key for A&AI"),
    ("--ves-client-cert", "VESAGENT_VES_CLIENT_CERT", "PEM client certificate for collectors"),
    ("--ves-client-key", "VESAGENT_VES_CLIENT_KEY", "PEM client key for collectors"),
    ("--ves-ca-file", "VESAGENT_VES_CA_FILE", "CA bundle for https collectors (system CAs)"),
    (
        "--keystone-client-cert",
        "VESAGENT_KEYSTONE_CLIENT_CERT",
        "PEM client certificate for Keystone and Nova",
    ),
    ("--keystone-client-key", "VESAGENT_KEYSTONE_CLIENT_KEY", "PEM client key for Keystone/Nova"),
    ("--log-format", "VESAGENT_LOG_FORMAT", "json or console (json)"),
    ("--log-level", "VESAGENT_LOG_LEVEL", "debug, info, warning, error (info)"),
    # Shared state and leases (issue 16). Prefer the variable for a URL with a password: a
    # flag is visible in ps.
    ("--state-url", "VESAGENT_STATE_URL", "postgresql://...: shared state and leases (SQLite)"),
    ("--lease-ttl", "VESAGENT_LEASE_TTL", "seconds before a silent owner's regions move (15)"),
    ("--complex", "VESAGENT_COMPLEX", "comma-separated physical-location-ids (all)"),
]


# Every password setting can come from a file instead (``--aai-password-file``,
# ``VESAGENT_API_PASSWORD_FILE``...): a flag shows in ``ps``, and a mounted Secret file can
# change without a new environment.
PASSWORD_FILE_OPTIONS: list[tuple[str, str, str]] = [
    (f"{flag}-file", f"{env}_FILE", f"file holding the {flag[2:]} (one line)")
    for flag, env, _help in RUN_OPTIONS
    if flag.endswith("-password")
]
MAX_SECRET_FILE_BYTES = 64 * 1024


class SecretFileError(ValueError):
    """A password file that cannot be used; names the setting and the file."""


def read_secret_file(path: str, setting: str) -> str:
    """The secret in ``path``: its first line without the line break (at most 64 KiB)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise SecretFileError(f"{setting}: cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise SecretFileError(f"{setting}: {path} is larger than 64 KiB: not a password file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretFileError(f"{setting}: {path} is not UTF-8 text") from None
    secret = text.splitlines()[0] if text.splitlines() else ""
    if not secret:
        raise SecretFileError(f"{setting}: {path} is empty")
    return secret


def _add_log_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-format", choices=["json", "console"], default=None)
    parser.add_argument("--log-level", default=None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vesagent",
        description="Report OpenStack faults, heartbeats and measurements as VES events, "
        "configured per cloud region in ONAP A&AI.",
    )
    parser.add_argument("--version", action="version", version=f"vesagent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run the agent until SIGTERM/SIGINT",
        description="Run the agent. Each flag falls back to the environment variable shown.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for flag, env, help_text in RUN_OPTIONS + PASSWORD_FILE_OPTIONS:
        run.add_argument(flag, default=None, help=f"{help_text} [env {env}]")

    check = sub.add_parser(
        "check-config",
        help="validate a cloud-extra-info value or a vesagent_config object",
        description="Validate a cloud-extra-info value (or a bare vesagent_config object) "
        "and print every problem with its JSON path. Exit 0 valid, 1 invalid.",
    )
    check.add_argument("file", help="path of a JSON file, or - for standard input")
    _add_log_options(check)

    from vesagent.status import add_status_arguments

    status = sub.add_parser(
        "status",
        help="show what a running agent is doing (regions, backlogs, outbox)",
        description="Ask a running agent's REST API for its regions, or for one region's "
        "backlogs with --vimid. Exit 0 shown, 1 the agent answered an error, 2 unreachable.",
    )
    add_status_arguments(status)

    sim = sub.add_parser(
        "sim",
        help="run the A&AI, OpenStack and VES collector simulators on loopback",
        description="Start the three simulators on 127.0.0.1 and print where each listens.",
    )
    sim.add_argument("--aai-port", type=int, default=0)
    sim.add_argument("--openstack-port", type=int, default=0)
    sim.add_argument("--ves-port", type=int, default=0)
    sim.add_argument("--topology", help="JSON file with regions/servers (default: demo set)")
    _add_log_options(sim)

    demo = sub.add_parser(
        "demo",
        help="simulators + agent with a demo topology; shows VES events flowing",
        description="Start the simulators and the agent on loopback with two regions and "
        "about 20 VMs, fail and recover a VM, and print the VES events the collector receives.",
    )
    demo.add_argument("--cycles", type=int, default=0, help="stop after N fail/recover cycles")
    _add_log_options(demo)
    return parser


def settings_from(args: argparse.Namespace, environ: dict[str, str]) -> Any:
    """Merge flags over environment variables into ``Settings``; raises ValidationError."""
    from vesagent.k8s import shard_from_environment
    from vesagent.settings import Settings

    values: dict[str, Any] = {}
    for flag, env, _help in RUN_OPTIONS:
        attr = flag[2:].replace("-", "_")
        value = getattr(args, attr, None)
        if value is None:
            value = environ.get(env)
        if value is not None and value != "":
            values[attr] = value
    for flag, env, _help in PASSWORD_FILE_OPTIONS:
        attr = flag[2:].replace("-", "_")  # aai_password_file
        path = getattr(args, attr, None) or environ.get(env)
        if not path:
            continue
        setting = attr[: -len("_file")]
        if setting in values:
            raise SecretFileError(f"give {setting} or {attr}, not both")
        values[setting] = read_secret_file(path, env)
    if "shard" not in values and (derived := shard_from_environment(environ)) is not None:
        values["shard"] = derived  # StatefulSet pod: ordinal/VESAGENT_REPLICAS (vesagent.k8s)
    if "aai_insecure" in values:
        values["aai_insecure"] = str(values["aai_insecure"]).strip().lower() in (
            "1",
            "true",
            "yes",
            "on",
        )
    return Settings(**values)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return _cmd_run(args)
    if args.command == "status":
        from vesagent.status import status_command

        try:
            return status_command(args, os.environ)
        except SecretFileError as exc:
            print(f"vesagent status: {exc}", file=sys.stderr)
            return 2
    fmt = args.log_format or os.environ.get("VESAGENT_LOG_FORMAT") or "console"
    logs.configure(fmt, args.log_level or os.environ.get("VESAGENT_LOG_LEVEL") or "info")
    if args.command == "check-config":
        return _cmd_check_config(args.file)
    if args.command == "sim":
        from vesagent.sim.runner import run_sims

        return run_sims(args)
    if args.command == "demo":
        from vesagent.demo import run_demo

        return run_demo(args)
    return 2


def _cmd_run(args: argparse.Namespace) -> int:
    from vesagent.k8s import ShardEnvironmentError

    try:
        settings = settings_from(args, dict(os.environ))
    except ValidationError as exc:
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"])
            env = next((e for f, e, _ in RUN_OPTIONS if f[2:].replace("-", "_") == name), name)
            where = f"{name} ({env}): " if name else ""
            print(f"vesagent run: {where}{err['msg']}", file=sys.stderr)
        return 2
    except (ShardEnvironmentError, SecretFileError) as exc:
        print(f"vesagent run: {exc}", file=sys.stderr)
        return 2
    refusal = settings.open_api_refusal()
    if refusal:
        print(f"vesagent run: {refusal}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    if settings.api_auth == "none":
        logs.get_logger("vesagent.cli").warning(
            "api.open",
            listen=settings.listen,
            reason="--api-auth none: anyone who reaches "
            "the listener may read and change every region's vesagent_config",
        )
    from vesagent.agent import run_agent

    return run_agent(settings)


def read_config_input(raw: bytes, limit: int) -> str:
    """The text of ``check-config`` input, or ValueError saying what is wrong with it.

    ``raw`` holds at most ``limit + 1`` bytes: one more than the limit means "too large".
    """
    if len(raw) > limit:
        raise ValueError(
            f"larger than {limit} bytes (1 MiB, the limit of cloud-extra-info): not read further"
        )
    for bom, name in (
        (b"\xff\xfe\x00\x00", "UTF-32"),
        (b"\x00\x00\xfe\xff", "UTF-32"),
        (b"\xff\xfe", "UTF-16"),
        (b"\xfe\xff", "UTF-16"),
    ):
        if raw.startswith(bom):
            raise ValueError(f"is {name} text: A&AI stores cloud-extra-info as UTF-8, convert it")
    if b"\x00" in raw:
        where = raw.index(b"\x00")
        raise ValueError(f"holds a NUL byte at offset {where}: binary data, not JSON text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"is not UTF-8 text: invalid byte at offset {exc.start}") from None


def _cmd_check_config(path: str) -> int:
    from vesagent.config import (
        MAX_CLOUD_EXTRA_INFO_BYTES,
        check_config_text,
        check_config_warnings,
    )

    limit = MAX_CLOUD_EXTRA_INFO_BYTES
    try:
        if path == "-":
            stdin = getattr(sys.stdin, "buffer", None)  # a text-only stdin (tests) has none
            raw = (
                stdin.read(limit + 1)  # never more: /dev/zero or 300 MB stdin
                if stdin is not None
                else sys.stdin.read(limit + 1).encode("utf-8", "surrogatepass")
            )
        else:
            with open(path, "rb") as handle:
                raw = handle.read(limit + 1)
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        text = read_config_input(raw, limit)
    except ValueError as exc:
        print(f"(top): input {exc}")
        print(f"{path}: 1 problem(s)", file=sys.stderr)
        return 1
    problems = check_config_text(text)
    for where, message in check_config_warnings(text):
        print(f"warning: {where or '(top)'}: {message}")
    if problems:
        for where, message in problems:
            print(f"{where or '(top)'}: {message}")
        print(f"{path}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{path}: valid")
    return 0
