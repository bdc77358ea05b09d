"""The Dockerfile, the Kubernetes manifests and the shard a StatefulSet pod derives.

No Docker engine and no YAML parser here: the Dockerfile is split into its instructions, the
manifests are checked with small indentation-aware text helpers for the facts that matter
(replica count, probes, state directory, user, ports), and the image's HEALTHCHECK command is
run for real against a loopback server.
"""

from __future__ import annotations

import fnmatch
import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.serving import make_server

from vesagent import cli, k8s
from vesagent.settings import Settings, Shard

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
STATE_DIR = "/var/lib/vesagent"
UID = "10001"


# --- Dockerfile -------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; comments dropped, ``\\`` continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comment lines inside a continuation are ignored by Docker too
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, args = whole.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continuation"
    return instructions


@pytest.fixture(scope="module")
def docker() -> list[tuple[str, str]]:
    return dockerfile_instructions((ROOT / "Dockerfile").read_text(encoding="utf-8"))


def _all(docker: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for kw, args in docker if kw == keyword]


def _env(docker: list[tuple[str, str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for args in _all(docker, "ENV"):
        for name, value in re.findall(r"(\w+)=(\S+)", args):
            found[name] = value
    return found


def test_dockerfile_base_install_and_entrypoint(docker: list[tuple[str, str]]) -> None:
    """The image is python:3.11-slim with the package pip-installed, and runs `vesagent run`."""
    assert docker[0] == ("FROM", "python:3.11-slim")
    assert any("pip install --no-cache-dir ." in args for args in _all(docker, "RUN"))
    assert json.loads(_all(docker, "ENTRYPOINT")[-1]) == ["vesagent"]
    assert json.loads(_all(docker, "CMD")[-1]) == ["run"]
    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    assert '"vesagent=vesagent.cli:main"' in setup  # the console script ENTRYPOINT runs


def test_dockerfile_runs_as_uid_10001_with_owned_state_volume(
    docker: list[tuple[str, str]],
) -> None:
    """The image runs as UID 10001 with an owned state volume, listening on 9009."""
    assert _all(docker, "USER")[-1].split(":")[0] == UID
    env = _env(docker)
    assert env["VESAGENT_STATE_DIR"] == STATE_DIR
    assert env["VESAGENT_LISTEN"] == "0.0.0.0:9009"
    assert json.loads(_all(docker, "VOLUME")[-1]) == [STATE_DIR]
    assert _all(docker, "EXPOSE") == ["9009"]
    runs = " ".join(_all(docker, "RUN"))
    assert f"--uid {UID}" in runs and f"chown {UID}:{UID} {STATE_DIR}" in runs
    # The volume is declared after the chown: Docker keeps the ownership set before VOLUME.
    order = [kw for kw, args in docker if kw == "VOLUME" or (kw == "RUN" and "chown" in args)]
    assert order == ["RUN", "VOLUME"]
    # USER comes after every RUN that needs root.
    last_run = max(i for i, (kw, _a) in enumerate(docker) if kw == "RUN")
    assert max(i for i, (kw, _a) in enumerate(docker) if kw == "USER") > last_run


def test_dockerfile_copies_only_what_exists_and_is_not_ignored(
    docker: list[tuple[str, str]],
) -> None:
    """The Dockerfile copies only existing sources; .dockerignore keeps venvs, state, tests out."""
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in (".venv", "var", ".git", "tests", ".pytest_cache", "**/__pycache__"):
        assert needed in ignored
    sources = [src for args in _all(docker, "COPY") for src in args.split()[:-1]]
    assert set(sources) >= {"setup.py", "README.md", "vesagent"}
    for src in sources:
        assert (ROOT / src).exists(), src
        assert not any(fnmatch.fnmatch(src, pattern) for pattern in ignored), src


def _healthcheck_code(docker: list[tuple[str, str]]) -> list[str]:
    (args,) = _all(docker, "HEALTHCHECK")
    command = json.loads(args[args.index("CMD ") + 4 :])
    assert command[:2] == ["python", "-c"] and "/healthz" in command[2]
    return command


@pytest.fixture
def health_server() -> Iterator[tuple[str, dict[str, int]]]:
    app = Flask("health")
    answer = {"status": 200}

    @app.get("/healthz")
    def healthz() -> tuple[str, int]:
        return "{}", answer["status"]

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"0.0.0.0:{server.server_port}", answer
    finally:
        server.shutdown()
        thread.join(timeout=5)


def _probe(command: list[str], listen: str) -> int:
    env = {"VESAGENT_LISTEN": listen, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, timeout=30, check=False
    )
    return done.returncode


def test_healthcheck_command_probes_healthz_on_the_listen_port(
    docker: list[tuple[str, str]], health_server: tuple[str, dict[str, int]]
) -> None:
    """The image's HEALTHCHECK succeeds on a 200 /healthz and fails on a 500 or a closed port."""
    command = _healthcheck_code(docker)
    listen, answer = health_server
    assert _probe(command, listen) == 0
    answer["status"] = 500
    assert _probe(command, listen) != 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert _probe(command, f"0.0.0.0:{closed}") != 0


# --- manifests --------------------------------------------------------------------------------


def manifest(name: str) -> str:
    return (DEPLOY / name).read_text(encoding="utf-8")


def block(text: str, header: str) -> str:
    """The lines indented under the first line matching ``header`` (a regex), dedented."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.search(header, line):
            indent = len(line) - len(line.lstrip(" -"))
            body = []
            for following in lines[index + 1 :]:
                stripped = following.strip()
                if stripped and len(following) - len(following.lstrip(" ")) <= indent:
                    break
                body.append(following)
            return "\n".join(body)
    raise AssertionError(f"no line matching {header!r}")


def env_entry(text: str, name: str) -> str:
    """The block of one ``- name: X`` env entry, including its own line."""
    match = re.search(rf"^( *)- name: {name}\n((?:\1  .*\n)+)", text, re.MULTILINE)
    assert match, f"env {name} not found"
    return match.group(0)


def literal(text: str, key: str) -> str:
    match = re.search(rf"^\s*{re.escape(key)}:\s*\"?([^\"\n#]*?)\"?\s*(?:#.*)?$", text, re.M)
    assert match, f"{key} not found"
    return match.group(1)


def documents() -> Iterator[tuple[str, str]]:
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in path.read_text(encoding="utf-8").split("\n---\n"):
            yield path.name, doc


def test_manifests_are_plain_yaml_with_kind_and_name() -> None:
    """Every manifest is tab-free, evenly indented YAML with apiVersion, kind and expected names."""
    seen = set()
    for name, doc in documents():
        assert "\t" not in doc, name
        for line in doc.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                assert (len(line) - len(line.lstrip(" "))) % 2 == 0, (name, line)
        assert re.search(r"^apiVersion: \S+$", doc, re.M), name
        kind = re.search(r"^kind: (\w+)$", doc, re.M)
        assert kind, name
        if kind.group(1) != "Kustomization":
            seen.add((kind.group(1), literal(block(doc, r"^metadata:"), "name")))
    assert seen == {
        ("ConfigMap", "vesagent-config"),
        ("Secret", "vesagent-credentials"),
        ("Service", "vesagent"),
        ("Service", "vesagent-headless"),
        ("StatefulSet", "vesagent"),
    }


def test_kustomization_lists_every_manifest() -> None:
    """kustomization.yaml lists every manifest in the folder."""
    listed = re.findall(r"^  - (\S+\.yaml)$", manifest("kustomization.yaml"), re.M)
    present = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(listed) == sorted(present)


def test_statefulset_replicas_equal_vesagent_replicas() -> None:
    """StatefulSet replicas equal VESAGENT_REPLICAS; pods start in parallel, headless service."""
    sts = manifest("statefulset.yaml")
    spec = block(sts, r"^spec:")
    replicas = re.search(r"^  replicas: (\d+)$", spec, re.M)
    assert replicas
    assert literal(env_entry(sts, "VESAGENT_REPLICAS"), "value") == replicas.group(1)
    assert literal(spec, "podManagementPolicy") == "Parallel"
    assert int(literal(spec, "terminationGracePeriodSeconds")) >= 15
    assert literal(spec, "serviceName") == "vesagent-headless"
    assert "clusterIP: None" in manifest("service.yaml").split("\n---\n")[1]


def test_pod_ordinal_comes_from_the_downward_api() -> None:
    """The pod index and name come from the downward API; no fixed VESAGENT_SHARD is set."""
    sts = manifest("statefulset.yaml")
    index = env_entry(sts, k8s.POD_INDEX_ENV)
    assert "fieldPath: metadata.labels['apps.kubernetes.io/pod-index']" in index
    assert "fieldPath: metadata.name" in env_entry(sts, k8s.POD_NAME_ENV)
    assert "VESAGENT_SHARD" not in re.sub(r"#.*", "", sts + manifest("configmap.yaml"))


def test_state_dir_is_the_pvc_and_root_fs_is_read_only() -> None:
    """The state directory is the volume claim, /tmp an emptyDir; the pod runs as UID 10001."""
    sts = manifest("statefulset.yaml")
    assert literal(env_entry(sts, "VESAGENT_STATE_DIR"), "value") == STATE_DIR
    mounts = block(sts, r"^ +volumeMounts:")
    state_mount = re.search(r"- name: (\S+)\n\s+mountPath: (\S+)", mounts)
    assert state_mount and state_mount.group(2) == STATE_DIR
    claims = block(sts, r"^  volumeClaimTemplates:")
    assert literal(block(claims, r"- metadata:"), "name") == state_mount.group(1)
    assert "ReadWriteOnce" in claims and re.search(r"storage: \d+[MG]i", claims)
    assert "mountPath: /tmp" in mounts and "emptyDir:" in sts
    pod = block(sts, r"^    spec:")
    pod_security = block(pod, r"^      securityContext:")
    assert literal(pod_security, "runAsNonRoot") == "true"
    assert literal(pod_security, "runAsUser") == UID and literal(pod_security, "fsGroup") == UID
    container_security = block(pod, r"^          securityContext:")
    assert literal(container_security, "readOnlyRootFilesystem") == "true"
    assert literal(container_security, "allowPrivilegeEscalation") == "false"
    assert "whenScaled: Retain" in sts


def test_probes_ports_and_resources() -> None:
    """Liveness, readiness and startup probes use the http port; resources have a memory limit."""
    sts = manifest("statefulset.yaml")
    assert literal(block(sts, r"livenessProbe:"), "path") == "/healthz"
    assert literal(block(sts, r"readinessProbe:"), "path") == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert literal(block(sts, probe + ":"), "port") == "http"
    ports = block(sts, r"^ +ports:")
    assert literal(ports, "- name") == "http" and literal(ports, "containerPort") == "9009"
    assert literal(env_entry(sts, "VESAGENT_LISTEN"), "value") == "0.0.0.0:9009"
    resources = block(sts, r"^ +resources:")
    assert "requests:" in resources and "limits:" in resources
    assert re.search(r"memory: \d+Mi", block(resources, "limits:"))
    api = manifest("service.yaml").split("\n---\n")[0]
    annotations = block(api, r"^  annotations:")
    assert literal(annotations, "prometheus.io/scrape") == "true"
    assert literal(annotations, "prometheus.io/port") == "9009"
    assert literal(annotations, "prometheus.io/path") == "/metrics"
    assert literal(api, "port") == "9009" and literal(api, "targetPort") == "http"


def test_every_variable_in_the_manifests_is_one_the_agent_reads() -> None:
    """Every VESAGENT_* variable in the manifests is read by the agent; secrets are placeholders."""
    known = {env for _flag, env, _help in cli.RUN_OPTIONS + cli.PASSWORD_FILE_OPTIONS}
    known |= {k8s.POD_INDEX_ENV, k8s.POD_NAME_ENV, k8s.REPLICAS_ENV}
    used = set()
    for _name, doc in documents():
        used |= set(re.findall(r"\b(VESAGENT_[A-Z_]+)\b", doc))
    assert used <= known, used - known
    config = block(manifest("configmap.yaml"), r"^data:")
    assert literal(config, "VESAGENT_AAI_URL").startswith("https://")
    secret = manifest("secret.yaml")
    assert "PLACEHOLDER" in secret
    assert literal(block(secret, "^stringData:"), "VESAGENT_AAI_PASSWORD").startswith("CHANGE-ME")
    sts = manifest("statefulset.yaml")
    assert "name: vesagent-config" in sts and "name: vesagent-credentials" in sts


def _manifest_environment() -> dict[str, str]:
    """What the pod's environment holds: ConfigMap, Secret and the StatefulSet's own env."""
    env: dict[str, str] = {}
    for name, header in (("configmap.yaml", r"^data:"), ("secret.yaml", r"^stringData:")):
        for key in re.findall(r"^\s*(VESAGENT_[A-Z_]+):", block(manifest(name), header), re.M):
            env[key] = literal(block(manifest(name), header), key)
    sts = manifest("statefulset.yaml")
    for key, value in re.findall(r"- name: (VESAGENT_[A-Z_]+)\n\s*value: \"?([^\"\n]*)", sts):
        env[key] = value
    return env


def test_manifests_ship_api_credentials_from_the_secret() -> None:
    """Issue 15: the pod listens on 0.0.0.0, so its API users come from the Secret; the agent
    would start with them and would refuse to start without them."""
    env = _manifest_environment()
    assert env["VESAGENT_LISTEN"] == "0.0.0.0:9009"
    secret = block(manifest("secret.yaml"), "^stringData:")
    for key in ("VESAGENT_API_USERNAME", "VESAGENT_API_PASSWORD", "VESAGENT_API_READ_USERNAME"):
        assert literal(secret, key), key
    assert literal(secret, "VESAGENT_API_PASSWORD").startswith("CHANGE-ME")
    assert "VESAGENT_API_AUTH" not in env  # never shipped open
    args = cli.build_parser().parse_args(["run"])
    settings = cli.settings_from(args, {**env, "VESAGENT_POD_NAME": "vesagent-0"})
    assert settings.open_api_refusal() is None
    assert set(settings.api_users) == {"vesagent", "vesagent-read"}
    without = {k: v for k, v in env.items() if not k.startswith("VESAGENT_API_")}
    refused = cli.settings_from(args, {**without, "VESAGENT_POD_NAME": "vesagent-0"})
    assert refused.open_api_refusal() and "--api-auth none" in refused.open_api_refusal()


def test_the_image_refuses_to_run_its_open_default(docker: list[tuple[str, str]]) -> None:
    """The image listens on 0.0.0.0: without API credentials ``vesagent run`` must refuse."""
    env = {**_env(docker), "VESAGENT_AAI_URL": "https://aai.onap:8443"}
    settings = cli.settings_from(cli.build_parser().parse_args(["run"]), env)
    assert settings.open_api_refusal()


def test_readme_scaling_patch_changes_both_numbers() -> None:
    """The README's scaling patch and overlay change replicas and VESAGENT_REPLICAS together."""
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    patch = re.search(r"-p '(\{.*?\})'", readme, re.S)
    assert patch
    body = json.loads(patch.group(1))
    (container,) = body["spec"]["template"]["spec"]["containers"]
    (env,) = container["env"]
    assert container["name"] == "vesagent" and env["name"] == k8s.REPLICAS_ENV
    assert env["value"] == str(body["spec"]["replicas"])
    overlay = readme[readme.index("kind: Kustomization") :]
    assert re.search(r"replicas: 3\n", overlay) and 'value: "3"' in overlay


# --- shard derivation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "shard"),
    [
        ({}, None),
        ({"VESAGENT_REPLICAS": "3"}, None),  # no index: not a StatefulSet pod
        ({"VESAGENT_POD_NAME": "vesagent-2"}, None),  # no replica count
        ({"VESAGENT_POD_INDEX": "2", "VESAGENT_REPLICAS": "3"}, "2/3"),
        (
            {"VESAGENT_POD_INDEX": "", "VESAGENT_POD_NAME": "vesagent-1", "VESAGENT_REPLICAS": "3"},
            "1/3",
        ),
        ({"VESAGENT_POD_NAME": "ves-agent-prod-12", "VESAGENT_REPLICAS": "16"}, "12/16"),
        ({"VESAGENT_POD_INDEX": "0", "VESAGENT_POD_NAME": "x-5", "VESAGENT_REPLICAS": "1"}, "0/1"),
        ({"VESAGENT_SHARD": "1/2", "VESAGENT_POD_INDEX": "0", "VESAGENT_REPLICAS": "3"}, None),
        ({"VESAGENT_SHARD": " ", "VESAGENT_POD_INDEX": "0", "VESAGENT_REPLICAS": "3"}, "0/3"),
    ],
)
def test_shard_from_environment(env: dict[str, str], shard: str | None) -> None:
    """The shard is derived from the pod index or name and the replica count."""
    assert k8s.shard_from_environment(env) == shard


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VESAGENT_POD_INDEX": "3", "VESAGENT_REPLICAS": "3"}, "not below VESAGENT_REPLICAS=3"),
        ({"VESAGENT_POD_NAME": "vesagent", "VESAGENT_REPLICAS": "3"}, "does not end in -N"),
        ({"VESAGENT_POD_INDEX": "1", "VESAGENT_REPLICAS": "three"}, "VESAGENT_REPLICAS='three'"),
        ({"VESAGENT_POD_INDEX": "1", "VESAGENT_REPLICAS": "0"}, "must be at least 1"),
        ({"VESAGENT_POD_INDEX": "-1", "VESAGENT_REPLICAS": "2"}, "VESAGENT_POD_INDEX='-1'"),
        ({"VESAGENT_POD_INDEX": "٣", "VESAGENT_REPLICAS": "9"}, "not a non-negative integer"),
    ],
)
def test_inconsistent_pod_variables_refuse_to_start(env: dict[str, str], message: str) -> None:
    """Inconsistent pod variables are a ShardEnvironmentError naming the problem."""
    with pytest.raises(k8s.ShardEnvironmentError, match=re.escape(message)):
        k8s.shard_from_environment(env)
    assert issubclass(k8s.ShardEnvironmentError, ValueError)


def test_every_pod_of_the_manifest_gets_its_own_valid_shard() -> None:
    """Each pod of the StatefulSet, as deployed and scaled to 5, gets its own valid shard."""
    sts = manifest("statefulset.yaml")
    replicas = int(literal(env_entry(sts, "VESAGENT_REPLICAS"), "value"))
    name = literal(block(sts, r"^metadata:"), "name")
    for count in (replicas, 5):  # as deployed, and after a scale to 5
        shards = [
            k8s.shard_from_environment(
                {"VESAGENT_POD_NAME": f"{name}-{i}", "VESAGENT_REPLICAS": str(count)}
            )
            for i in range(count)
        ]
        assert shards == [f"{i}/{count}" for i in range(count)]
        for shard in shards:
            assert str(Settings(aai_url="http://aai:8080", shard=shard).shard) == shard


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=40),
    regions=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=20, unique=True),
    use_label=st.booleans(),
)
def test_derived_shards_partition_the_regions(
    count: int, regions: list[str], use_label: bool
) -> None:
    """Whatever the replica count, each region has exactly one owner among the pods."""
    owners: dict[str, int] = dict.fromkeys(regions, 0)
    for ordinal in range(count):
        env = {"VESAGENT_REPLICAS": str(count)}
        env["VESAGENT_POD_INDEX" if use_label else "VESAGENT_POD_NAME"] = (
            str(ordinal) if use_label else f"vesagent-{ordinal}"
        )
        derived = k8s.shard_from_environment(env)
        assert derived is not None
        shard = Shard.parse(derived)
        for region in regions:
            owners[region] += shard.owns(region)
    assert set(owners.values()) == {1}
