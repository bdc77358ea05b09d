"""``vesagent status`` against the REAL agent: its Flask app served over HTTP, the reconciler,
pollers and sender running in-process against the A&AI, OpenStack and VES simulators.

The same status model feeds the API, the OpenAPI document and the CLI; these tests would catch
them drifting apart (a field the CLI reads but the API does not send prints "-").
"""

from __future__ import annotations

import io
import json

import jsonschema
import pytest
import requests

from tests.component.conftest import (
    API_PASSWORD,
    API_USER,
    OWNER,
    PREFIX,
    REGION,
    VIMID,
    RealAgent,
)
from tests.helpers import free_port, wait_until
from vesagent import status
from vesagent.openapi import openapi_document
from vesagent.sim.topology import VES_PASSWORD


def run(url: str, *args: str, auth: bool = True) -> tuple[int, str, str]:
    """``vesagent status`` with ``args`` against ``url``: (exit code, stdout, stderr)."""
    parser = status.argparse.ArgumentParser(prog="vesagent status")
    status.add_status_arguments(parser)
    argv = ["--url", url, *args]
    if auth:
        argv += ["--username", API_USER, "--password", API_PASSWORD]
    parsed = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    code = status.run_status(
        parsed.url,
        parsed.vimid,
        parsed.username,
        parsed.password,
        out,
        err,
        timeout=5,
        dead_letters=parsed.dead_letters,
        requeue=parsed.requeue is not None,
        requeue_ids=parsed.requeue if isinstance(parsed.requeue, list) else None,
        collector=parsed.collector,
    )
    return code, out.getvalue(), err.getvalue()


def row(text: str, first_cell: str) -> list[str]:
    """The whitespace-split table row starting with ``first_cell`` (exactly one)."""
    rows = [line.split() for line in text.splitlines() if line.startswith(first_cell + " ")]
    assert len(rows) == 1, text
    return rows[0]


def validate(response: requests.Response, path: str, method: str = "get") -> None:
    """The body matches the OpenAPI document's schema for its path and status."""
    doc = openapi_document()
    spec = doc["paths"][path][method]["responses"][str(response.status_code)]
    schema = spec["content"]["application/json"]["schema"]
    jsonschema.validate(response.json(), {**schema, "components": doc["components"]})


def polled_with_alarm(real: RealAgent) -> None:
    """Configure the region with one VM in ERROR and wait until its raise was delivered."""
    vm, _ok = real.openstack.create_servers(REGION, 2, project="admin")
    real.openstack.set_status(REGION, vm, "ERROR")
    real.configure()
    real.ves.wait_for(lambda e: e["commonEventHeader"]["sourceId"] == vm, timeout=15)
    wait_until(
        lambda: real.collector_up() is True,
        what="collector up in the region list",
    )


def test_summary_of_a_real_agent(real: RealAgent) -> None:
    """Every column of the region table is filled from what the real API sends."""
    polled_with_alarm(real)
    code, out, err = run(real.url)
    assert code == 0, err
    cells = row(out, VIMID)
    assert cells[:8] == [VIMID, "yes", "1", "2", "1", "0", "0", "up"]
    assert cells[8].endswith("Z") and cells[9:] == ["ok", "ok"]  # LAST POLL, RESULT, CONFIG
    assert API_PASSWORD not in out + err
    validate(real.get("/vesagent"), "/vesagent")


def test_region_detail_of_a_real_agent(real: RealAgent) -> None:
    """--vimid shows LAST RUN and RESULT of each backlog (they printed "-" before)."""
    polled_with_alarm(real)
    code, out, err = run(real.url, "--vimid", VIMID)
    assert code == 0, err
    assert f"region {VIMID}" in out and "running" in out
    assert f"collector: {real.endpoint} up, outbox 0, dead letters 0" in out
    (backlog,) = real.get(f"/{VIMID}/vesagent").json()["status"]["backlogs"]
    cells = row(out, backlog["key"])
    assert cells[1:8] == ["fault", "vm", "admin/*", "1", "yes", "2", "1"]
    assert cells[8] == backlog["last_run"] and cells[8].endswith("Z")
    assert cells[9] == "ok"
    assert VES_PASSWORD not in out and API_PASSWORD not in out + err
    validate(real.get(f"/{VIMID}/vesagent"), "/{vimid}/vesagent")


def test_collector_refusing_credentials_holds_events_until_fixed_in_aai(real: RealAgent) -> None:
    """A VES password typo is an outage shown by status and metrics; fixing it in A&AI resumes."""
    (vm,) = real.openstack.create_servers(REGION, 1, project="admin")
    real.openstack.set_status(REGION, vm, "ERROR")
    real.configure(ves_password="typo")
    wait_until(
        lambda: real.collector_up() is False,
        what="collector down",
    )
    metrics = real.agent.registry.get_sample_value(
        "vesagent_collector_up", {"collector": real.endpoint}
    )
    assert metrics == 0.0
    code, out, _err = run(real.url, "--vimid", VIMID)
    assert code == 0 and f"{real.endpoint} credentials refused" in out
    assert "typo" not in out
    detail = real.get(f"/{VIMID}/vesagent").json()["status"]["collector"]
    assert detail["reason"] == "credentials refused" and detail["outbox_depth"] >= 1
    assert real.agent.store.dead_letter_count() == 0
    real.configure()  # the password fixed in A&AI
    real.ves.wait_for(lambda e: e["commonEventHeader"]["sourceId"] == vm, timeout=15)
    wait_until(
        lambda: (
            real.agent.registry.get_sample_value(
                "vesagent_collector_up", {"collector": real.endpoint}
            )
            == 1.0
        ),
        what="collector_up 1",
    )


def test_dead_letters_are_shown_and_requeued(real: RealAgent) -> None:
    """A content verdict is listed with the collector's answer; --requeue delivers it."""
    real.ves.inject(
        status=400,
        path_prefix="/eventListener",
        count=1,
        body='{"requestError":{"ServiceException":{"messageId":"SVC0002","text":"Bad Parameter"}}}',
    )
    (vm,) = real.openstack.create_servers(REGION, 1, project="admin")
    real.openstack.set_status(REGION, vm, "ERROR")
    real.configure()
    wait_until(lambda: real.agent.store.dead_letter_count() == 1, what="a dead letter")
    listing = real.get("/deadletters")
    validate(listing, "/deadletters")
    (letter,) = listing.json()["dead_letters"]
    assert letter["status"] == 400 and "SVC0002" in letter["response"]
    code, out, err = run(real.url, "--dead-letters")
    assert code == 0, err
    cells = row(out, str(letter["id"]))
    assert cells[1:5] == [real.endpoint, "fault", letter["event_id"], "400"]
    assert "SVC0002" in out
    code, out, err = run(real.url, "--requeue", "all")
    assert code == 1 and "--collector" in err
    code, out, err = run(real.url, "--requeue", "all", "--collector", real.endpoint)
    assert code == 0, err
    assert f"re-queued 1 dead letters: [{letter['id']}]" in out
    real.ves.wait_for(lambda e: e["commonEventHeader"]["eventId"] == letter["event_id"])
    code, out, _err = run(real.url, "--dead-letters")
    assert code == 0 and "no dead letters" in out


def test_requeue_route_validates_its_body(real: RealAgent) -> None:
    """The requeue route refuses an empty or malformed request with a JSON problem."""
    url = real.url + PREFIX + "/deadletters/requeue"
    auth = (API_USER, API_PASSWORD)
    empty = requests.post(url, json={}, auth=auth, timeout=5)
    assert empty.status_code == 400 and "ids" in empty.json()["error"]
    bad = requests.post(url, json={"ids": ["x"]}, auth=auth, timeout=5)
    assert bad.status_code == 400 and bad.json()["problems"][0]["path"].startswith("ids")
    ok = requests.post(url, json={"ids": [12345]}, auth=auth, timeout=5)
    assert ok.status_code == 200 and ok.json() == {"requeued": []}
    validate(ok, "/deadletters/requeue", "post")


def test_errors_of_a_real_agent(real: RealAgent) -> None:
    """Unknown vimid, missing credentials and a bad vimid are exit 1 with the agent's reason."""
    real.configure()
    code, out, err = run(real.url, "--vimid", f"{OWNER}_Nowhere")
    assert code == 1 and out == "" and "HTTP 404" in err and "Nowhere" in err
    code, _out, err = run(real.url, auth=False)
    assert code == 1 and "HTTP 401" in err and "VESAGENT_API_USERNAME" in err
    code, out, err = run(real.url, "--dead-letters", auth=False)
    assert code == 1 and API_PASSWORD not in out + err


def test_answer_of_another_shape_is_an_agent_error() -> None:
    """An answer the status model cannot parse is exit 1 naming the field, not a table of "-"."""
    with pytest.raises(status.AgentError, match=r"RegionList \(shard"):
        status.parse(status.RegionList, json.loads('{"regions": []}'), "http://x")


def test_status_command_reads_url_and_credentials_from_the_environment(
    real: RealAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    """VESAGENT_LISTEN and VESAGENT_API_* are used when no flag is given; flags win."""
    real.configure()
    parser = status.argparse.ArgumentParser(prog="vesagent status")
    status.add_status_arguments(parser)
    env = {
        "VESAGENT_LISTEN": real.url.removeprefix("http://"),
        "VESAGENT_API_USERNAME": API_USER,
        "VESAGENT_API_PASSWORD": API_PASSWORD,
    }
    wait_until(lambda: real.get("/vesagent").json()["regions"], what="region listed")
    assert status.status_command(parser.parse_args([]), env) == 0
    captured = capsys.readouterr()
    assert VIMID in captured.out and API_PASSWORD not in captured.out + captured.err
    env["VESAGENT_LISTEN"] = f"127.0.0.1:{free_port()}"
    flags = parser.parse_args(["--url", real.url, "--vimid", VIMID])
    assert status.status_command(flags, env) == 0
    assert f"region {VIMID}" in capsys.readouterr().out


def test_password_in_the_url_is_used_and_never_printed(real: RealAgent) -> None:
    """user:password@ in --url authenticates, and only the bare URL is printed."""
    with_userinfo = real.url.replace("http://", f"http://{API_USER}:{API_PASSWORD}@")
    code, out, err = run(with_userinfo, auth=False)
    assert code == 0, err
    assert API_PASSWORD not in out + err and f"agent {real.url}" in out
