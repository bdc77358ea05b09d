"""Issue 15 against a real ``vesagent run``: what an attacker on the pod network tried.

Each test plants a distinctive secret or sends hostile input and checks that nothing leaks,
nothing is sent where it does not belong, and every refusal is a small JSON error.
"""

from __future__ import annotations

import json
import random
import socket
import string
import subprocess
import sys

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import OWNER
from tests.e2e.test_rest_api import api, config, plain_region, stored_extra
from tests.helpers import free_port

VES_SECRET = "planted-VES-pw-7f3a"
MIB = 1024 * 1024


def _stored_subscription(world) -> dict:
    return stored_extra(world)["vesagent_config"]["ves_subscription"]


def test_masked_password_is_not_kept_when_the_endpoint_moves(world, agent_factory) -> None:
    """Finding 1: GET, change only the endpoint's host/port, POST back ``***``: refused, 400."""
    plain_region(world)
    agent = agent_factory()
    posted = requests.post(
        api(agent), json={"vesagent_config": config(world, [], VES_SECRET)}, timeout=30
    )
    assert posted.status_code == 201, posted.text
    shown = requests.get(api(agent), timeout=30).json()["vesagent_config"]
    assert shown["ves_subscription"]["password"] == "***"

    moved = json.loads(json.dumps(shown))
    moved["ves_subscription"]["endpoint"] = f"http://127.0.0.1:{free_port()}/eventListener/v7"
    refused = requests.post(api(agent), json={"vesagent_config": moved}, timeout=30)
    assert refused.status_code == 400, refused.text
    error = refused.json()
    assert "password" in json.dumps(error) and "ves_subscription" in json.dumps(error)
    assert _stored_subscription(world)["endpoint"] == f"{world.ves.url}/eventListener/v7"

    # Same scheme, host and port (only the path changes): the stored password is kept.
    same_place = json.loads(json.dumps(shown))
    same_place["ves_subscription"]["endpoint"] = f"{world.ves.url}/eventListener/v5"
    kept = requests.post(api(agent), json={"vesagent_config": same_place}, timeout=30)
    assert kept.status_code == 200, kept.text
    assert _stored_subscription(world)["password"] == VES_SECRET

    # Scheme change alone (http -> https) is a different place too.
    https = json.loads(json.dumps(shown))
    https["ves_subscription"]["endpoint"] = https["ves_subscription"]["endpoint"].replace(
        "http://", "https://"
    )
    assert requests.post(api(agent), json={"vesagent_config": https}, timeout=30).status_code == 400
    assert VES_SECRET not in agent.logs()


def test_agent_refuses_a_non_loopback_listener_without_credentials(tmp_path) -> None:
    """Finding 2: ``0.0.0.0`` without API credentials and without ``--api-auth none``: exit 2."""
    env = {
        "PATH": "/usr/bin:/bin",
        "VESAGENT_AAI_URL": "http://127.0.0.1:9",
        "VESAGENT_STATE_DIR": str(tmp_path / "state"),
        "VESAGENT_LISTEN": f"0.0.0.0:{free_port()}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "vesagent", "run"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert b"VESAGENT_API_USERNAME" in done.stderr and b"--api-auth none" in done.stderr
    assert not (tmp_path / "state").exists()  # refused before anything was started


def test_readers_read_and_writers_write(world, agent_factory) -> None:
    """Finding 2: the read user may GET (and run ``vesagent status``) but not POST or DELETE."""
    plain_region(world)
    agent = agent_factory(
        VESAGENT_API_USERNAME="admin-user",
        VESAGENT_API_PASSWORD="planted-API-pw-1",
        VESAGENT_API_READ_USERNAME="viewer",
        VESAGENT_API_READ_PASSWORD="planted-API-pw-2",
    )
    body = {"vesagent_config": config(world, [], VES_SECRET)}
    reader = ("viewer", "planted-API-pw-2")
    writer = ("admin-user", "planted-API-pw-1")
    denied = requests.post(api(agent), json=body, auth=reader, timeout=30)
    assert denied.status_code == 403 and denied.json()["error"], denied.text
    assert "vesagent_config" not in world.aai.region(OWNER, "RegionOne")["cloud-extra-info"]
    assert requests.post(api(agent), json=body, auth=writer, timeout=30).status_code == 201
    assert requests.get(api(agent), auth=reader, timeout=30).status_code == 200
    assert requests.get(api(agent), auth=writer, timeout=30).status_code == 200
    assert requests.delete(api(agent), auth=reader, timeout=30).status_code == 403
    assert requests.get(api(agent), auth=("viewer", "wrong"), timeout=30).status_code == 401
    status = subprocess.run(
        [sys.executable, "-m", "vesagent", "status", "--url", agent.url],
        env={
            "PATH": "/usr/bin:/bin",
            "VESAGENT_API_READ_USERNAME": "viewer",
            "VESAGENT_API_READ_PASSWORD": "planted-API-pw-2",
        },
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    logs = agent.logs()
    assert "planted-API-pw" not in logs and VES_SECRET not in logs


def test_vimids_that_would_leave_their_region_never_reach_aai(world, agent_factory) -> None:
    """Finding 3: ``.._..``, ``CloudOwner_..`` and friends are 400 JSON, nothing sent to A&AI."""
    plain_region(world)
    agent = agent_factory(VESAGENT_AAI_SYNC_INTERVAL="3600")
    world.aai.requests.reset()
    body = {"vesagent_config": config(world, [], VES_SECRET)}
    for vimid in (
        ".._..",
        "CloudOwner_..",
        "CloudOwner_.",
        "Cloud.Owner_RegionOne",
        "CloudOwner_Region%2F..",
        "CloudOwner_Region%2e%2e",
        "CloudOwner_a%00b",
    ):
        url = api(agent, f"/{vimid}/vesagent")
        for method in ("GET", "POST", "DELETE"):
            response = requests.request(method, url, json=body, timeout=30)
            assert response.status_code in (400, 404), (vimid, method, response.text)
            assert response.headers["Content-Type"].startswith("application/json"), vimid
            assert response.json()["error"]
    # Only the reconciler's collection reads may have happened: no region path at all.
    seen = world.aai.requests.snapshot()
    assert [k for k in seen if not k.endswith("/cloud-infrastructure/cloud-regions")] == [], seen


def _raw_request(agent, head: bytes, body: bytes = b"") -> bytes:
    host, port = agent.listen.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR) if body else None
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def test_bodies_over_one_mib_are_refused_before_they_are_read(world, agent_factory) -> None:
    """Finding 4: 413 JSON for a 100 MB Content-Length without sending the body, with or
    without credentials; a chunked body over the limit too; A&AI untouched."""
    plain_region(world)
    agent = agent_factory(VESAGENT_API_USERNAME="ops", VESAGENT_API_PASSWORD="planted-API-pw")
    path = f"/api/multicloud/v0/{OWNER}_RegionOne/vesagent"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {100 * MIB}\r\nConnection: close\r\n\r\n"
    ).encode()
    answer = _raw_request(agent, head)  # the body is never sent: the answer must not wait
    status_line, _, rest = answer.partition(b"\r\n")
    assert b" 413 " in status_line, answer[:300]
    headers, _, payload = rest.partition(b"\r\n\r\n")
    assert b"application/json" in headers.lower() and json.loads(payload)["error"]

    big = {"vesagent_config": config(world, [], VES_SECRET), "padding": "x" * (2 * MIB)}
    data = json.dumps(big).encode()
    for auth in (None, ("ops", "planted-API-pw")):
        response = requests.post(
            api(agent),
            data=data,
            auth=auth,
            timeout=60,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 413 and response.json()["error"], response.text[:300]
        chunked = requests.post(
            api(agent),
            data=iter([data[i : i + 65536] for i in range(0, len(data), 65536)]),
            auth=auth,
            timeout=60,
            headers={"Content-Type": "application/json"},
        )
        # Without credentials a chunked body is refused (401) before any of it is read.
        wanted = (413,) if auth else (401, 413)
        assert chunked.status_code in wanted and chunked.json()["error"], chunked.text[:300]
    assert "vesagent_config" not in world.aai.region(OWNER, "RegionOne")["cloud-extra-info"]


def test_post_is_refused_when_the_result_would_be_refused_by_the_agent(
    world, agent_factory
) -> None:
    """Finding 4: a config that makes cloud-extra-info exceed 1 MiB is refused, A&AI unchanged."""
    plain_region(world)
    other = json.dumps({"other-system": "y" * (MIB - 1000)})
    world.aai.set_extra_info(OWNER, "RegionOne", other)
    agent = agent_factory()
    posted = {"vesagent_config": {**config(world, [], VES_SECRET), "note": "z" * 5000}}
    response = requests.post(api(agent), json=posted, timeout=30)
    assert response.status_code in (400, 413), response.text
    assert "1 MiB" in response.json()["error"] or "1 MiB" in json.dumps(response.json())
    assert world.aai.region(OWNER, "RegionOne")["cloud-extra-info"] == other


def test_every_error_is_small_json_with_the_right_status(world, agent_factory) -> None:
    """Finding 6: deep JSON, unknown routes, 405s, encoded slashes: JSON; A&AI 400/414 is not
    "unreachable" and its raw body is not echoed."""
    plain_region(world)
    agent = agent_factory(VESAGENT_AAI_SYNC_INTERVAL="3600")
    deep = "[" * 5000 + "]" * 5000
    nested = '{"vesagent_config": ' + deep + "}"
    for method, path, data, expected in (
        ("POST", f"/{OWNER}_RegionOne/vesagent", nested, 400),
        ("GET", "/nowhere", None, 404),
        ("PUT", f"/{OWNER}_RegionOne/vesagent", "{}", 405),
        ("GET", f"/{OWNER}_Region%2FOne/vesagent", None, (400, 404)),
        ("POST", f"/{OWNER}_RegionOne/vesagent", "not json", 400),
    ):
        response = requests.request(
            method,
            api(agent, path),
            data=data,
            timeout=30,
            headers={"Content-Type": "application/json"},
        )
        wanted = expected if isinstance(expected, tuple) else (expected,)
        assert response.status_code in wanted, (method, path, response.status_code, response.text)
        assert response.headers["Content-Type"].startswith("application/json"), (
            path,
            response.text,
        )
        assert len(response.content) < 2000 and response.json()["error"]
    unknown = requests.get(agent.url + "/no/such/thing", timeout=30)
    assert unknown.status_code == 404 and unknown.json()["error"]

    html = "<html><body>" + "<p>internal A&AI detail secret-ish</p>" * 3000 + "</body></html>"
    for status in (400, 414):
        world.aai.inject(status=status, path_prefix="/aai", count=None, body=html)
        response = requests.get(api(agent), timeout=30)
        world.aai.clear_faults()
        assert response.status_code in (400, 502), (status, response.text[:300])
        error = response.json()
        assert "unreachable" not in error["error"]
        assert len(response.content) < 1000 and "<p>" not in response.text
    world.aai.down("503")
    assert requests.get(api(agent), timeout=30).status_code == 503
    world.aai.up()


def _label_sets(agent) -> set[tuple[str, tuple]]:
    text = requests.get(agent.url + "/metrics", timeout=30).text
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_refused_requests_never_add_metric_labels(world, agent_factory) -> None:
    """/metrics labels come only from accepted configuration: 1,000 random vimids add none."""
    plain_region(world)
    agent = agent_factory(VESAGENT_AAI_SYNC_INTERVAL="3600")
    before = _label_sets(agent)
    rng = random.Random(15)
    session = requests.Session()
    alphabet = string.ascii_letters + string.digits + "-_.%"
    for number in range(1000):
        vimid = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        method = ("GET", "POST", "DELETE")[number % 3]
        body = {"vesagent_config": {"ves_subscription": {"endpoint": "bad"}}}
        response = session.request(method, api(agent, f"/{vimid}/vesagent"), json=body, timeout=30)
        assert 400 <= response.status_code < 500, (vimid, response.status_code)
    assert _label_sets(agent) == before


def test_api_auth_none_is_logged_as_a_warning(world, agent_factory) -> None:
    """``--api-auth none`` runs the API open on purpose, and says so in the log."""
    plain_region(world)
    agent = agent_factory(VESAGENT_API_AUTH="none")
    assert requests.get(api(agent, "/vesagent"), timeout=30).status_code == 200
    warning = [json.loads(line) for line in agent.logs().splitlines() if '"api.open"' in line]
    assert warning and warning[0]["level"] == "warning"
