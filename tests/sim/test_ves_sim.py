"""The VES collector simulator answers like DCAE's collector, over real HTTP on loopback."""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers import fixture_json, wait_until
from vesagent import ves_schema
from vesagent.sim.ves import (
    VesCollectorSim,
    basic_credentials,
    fast_validator,
    schema_problems,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ves"
VERDICTS = json.loads((FIXTURES / "verdicts.json").read_text(encoding="utf-8"))["samples"]
JSON_HEADERS = {"Content-Type": "application/json"}
UNAUTHORIZED_BODY = {
    "requestError": {"PolicyException": {"messageId": "POL2000", "text": "Unauthorized user"}}
}


def sample(name: str) -> dict[str, Any]:
    """A fixture body, parsed."""
    body: dict[str, Any] = fixture_json(f"ves/{name}")
    return body


def v7_event(source: str = "vm-1", domain: str = "fault") -> dict[str, Any]:
    """A valid v7 fault (or, with ``domain="heartbeat"``, a heartbeat) from the fixtures."""
    if domain == "heartbeat":
        event = sample("vnfrqts-spec/v7_heartbeat_sample_request.json")["event"]
    else:
        event = sample("integration-csit/ves7_valid.json")["event"]
    event["commonEventHeader"]["sourceName"] = source
    return event


def basic(user: str, password: str) -> str:
    """An ``Authorization: Basic`` value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def post(sim: VesCollectorSim, path: str, body: Any, **kwargs: Any) -> requests.Response:
    """POST ``body`` (bytes as is, anything else as JSON) with a JSON content type."""
    headers = {**JSON_HEADERS, **kwargs.pop("headers", {})}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    kwargs.setdefault("timeout", 5)
    return requests.post(sim.url + path, data=data, headers=headers, **kwargs)


def message_id(response: requests.Response) -> str:
    """The messageId of a collector error body (UpperCamel ServiceException/PolicyException)."""
    (detail,) = response.json()["requestError"].values()
    return detail["messageId"]


@pytest.fixture
def sim() -> Iterator[VesCollectorSim]:
    with VesCollectorSim(hang_seconds=10) as server:
        yield server


@pytest.fixture
def auth_sim() -> Iterator[VesCollectorSim]:
    with VesCollectorSim(username="sample1", password="sample1") as server:
        yield server


# -- the recorded verdict of every real sample -------------------------------------------------
def test_verdict_table_lists_every_fixture() -> None:
    """The verdict table names every VES fixture on disk, and no other."""
    listed = {v["file"] for v in VERDICTS}
    on_disk = {str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("*/*.json")}
    assert listed == on_disk
    assert len(on_disk) == 18


@pytest.mark.parametrize("case", VERDICTS, ids=[v["file"] for v in VERDICTS])
def test_sample_gets_the_collector_verdict(sim: VesCollectorSim, case: dict[str, Any]) -> None:
    """Each real sample gets the real collector's verdict; rejected ones are kept with details."""
    raw = (FIXTURES / case["file"]).read_bytes()
    body = json.loads(raw)
    batch = "eventList" in body
    assert case["endpoint"].endswith("/eventBatch") == batch

    response = post(sim, case["endpoint"], raw)

    assert response.status_code == case["status"], response.text
    if case["status"] == 202:
        assert response.text == "Successfully send event"
        sent = body["eventList"] if batch else [body["event"]]
        assert sim.events() == sent
        assert [r.batch for r in sim.records()] == [batch] * len(sent)
        assert {r.version for r in sim.records()} == {case["endpoint"].split("/")[2]}
        assert sim.rejected() == []
    else:
        assert message_id(response) == case["message_id"]
        assert sim.accepted_count == 0
        (rejection,) = sim.rejected()
        assert rejection.status == 400
        assert rejection.raw_body == raw.decode()
        assert rejection.path == case["endpoint"]
        assert rejection.details, "the sim keeps what the collector only logs"


def test_schema_failure_body_has_no_details_but_the_record_does(sim: VesCollectorSim) -> None:
    """A schema failure answers the bare SVC0002 body; the sim's record keeps the details."""
    response = post(
        sim, "/eventListener/v7", sample("integration-csit/ves7_parameter_out_of_schema.json")
    )
    assert response.json() == {
        "requestError": {
            "ServiceException": {
                "messageId": "SVC0002",
                "text": "Bad Parameter (JSON does not conform to schema)",
            }
        }
    }
    (rejection,) = sim.rejected()
    assert any("dummy" in d for d in rejection.details)


# -- the faster validator agrees with the plain Draft4Validator -------------------------------
def _leaf_paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaf_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:2]):
            yield from _leaf_paths(value, (*prefix, i))
    else:
        yield prefix


def _set(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    copied = copy.deepcopy(body)
    node = copied
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return copied


def _errors(validator: Any, body: Any) -> list[tuple[str, str]]:
    return sorted((str(list(e.absolute_path)), e.message) for e in validator.iter_errors(body))


def test_fast_validator_gives_the_same_errors_as_draft4() -> None:
    """The fast validator finds Draft4's errors on every sample and thousands of mutations."""
    wrong_values = [1, 1.5, "x", True, None, [], {}, "Normal", "4.0"]
    checked = 0
    for case in VERDICTS:
        version = case["endpoint"].split("/")[2]
        body = sample(case["file"])
        plain, fast = ves_schema.validator(version), fast_validator(version)
        assert _errors(fast, body) == _errors(plain, body), case["file"]
        for path in list(_leaf_paths(body))[:30]:
            for value in wrong_values:
                mutated = _set(body, path, value)
                assert _errors(fast, mutated) == _errors(plain, mutated), (case["file"], path)
                checked += 1
    assert checked > 2500


# -- authentication ----------------------------------------------------------------------------
def test_auth_rejects_missing_and_wrong_credentials(auth_sim: VesCollectorSim) -> None:
    """Missing, wrong or malformed Basic credentials get the collector's 401; the right ones 202."""
    body = {"event": v7_event()}
    for headers in (
        {},
        {"Authorization": basic("sample1", "wrong")},
        {"Authorization": basic("other", "sample1")},
        {"Authorization": "Basic !!!notbase64"},
        {"Authorization": "Basic"},
    ):
        response = post(auth_sim, "/eventListener/v7", body, headers=headers)
        assert response.status_code == 401, headers
        assert response.json() == UNAUTHORIZED_BODY
    assert auth_sim.accepted_count == 0
    assert [r.status for r in auth_sim.rejected()] == [401] * 5

    ok = post(
        auth_sim, "/eventListener/v7", body, headers={"Authorization": basic("sample1", "sample1")}
    )
    assert ok.status_code == 202
    assert auth_sim.records()[0].user == "sample1"


def test_auth_comes_before_the_version_check(auth_sim: VesCollectorSim) -> None:
    """An unauthenticated request to an unsupported version is a 401, not a 400."""
    assert post(auth_sim, "/eventListener/v6", {"event": v7_event()}).status_code == 401


def test_no_auth_ignores_any_credentials(sim: VesCollectorSim) -> None:
    """Without configured credentials any Authorization header is accepted and its user recorded."""
    for auth in (basic("anyone", "anything"), "Bearer nonsense"):
        response = post(
            sim, "/eventListener/v7", {"event": v7_event()}, headers={"Authorization": auth}
        )
        assert response.status_code == 202
    assert [r.user for r in sim.records()] == ["anyone", None]


def test_password_with_colon_never_matches_like_the_collector() -> None:
    """A password containing ':' is cut at the colon, as the collector does, so it never matches."""
    assert basic_credentials(basic("u", "a:b")) == ("u", "a")
    with VesCollectorSim(username="u", password="a:b") as server:
        response = post(
            server,
            "/eventListener/v7",
            {"event": v7_event()},
            headers={"Authorization": basic("u", "a:b")},
        )
        assert response.status_code == 401


def test_constructor_needs_both_or_no_credentials() -> None:
    """A username without a password is refused, and the password never shows in repr."""
    with pytest.raises(ValueError, match="both"):
        VesCollectorSim(username="u")
    assert "sample1" not in repr(VesCollectorSim(username="u", password="sample1").rules)


# -- headers, paths, versions, content type ---------------------------------------------------
@pytest.mark.parametrize(
    ("path", "minor", "status"),
    [
        ("/eventListener/v7", None, 202),
        ("/eventListener/v7", "2", 202),
        ("/eventListener/v7", "1", 400),
        ("/eventListener/v7", "4", 400),
        ("/eventListener/v5", "4", 202),
        ("/eventListener/v5", "2", 400),
    ],
)
def test_x_minor_version(sim: VesCollectorSim, path: str, minor: str | None, status: int) -> None:
    """X-MinorVersion is checked per API version: a wrong one is 400 INVALID_CUSTOM_HEADER."""
    body = (
        {"event": v7_event()}
        if path.endswith("v7")
        else sample("integration-csit/ves_volte_single_fault_event.json")
    )
    headers = {} if minor is None else {"X-MinorVersion": minor}
    response = post(sim, path, body, headers=headers)
    assert response.status_code == status
    if status == 400:
        assert response.text == "INVALID_CUSTOM_HEADER"


@pytest.mark.parametrize("version", ["v6", "V7", "v4", "v1", "v8"])
def test_unsupported_versions_get_400_plain_text(sim: VesCollectorSim, version: str) -> None:
    """Unsupported API versions get 400 with the collector's plain text, single and batch."""
    for suffix in ("", "/eventBatch"):
        response = post(sim, f"/eventListener/{version}{suffix}", {"event": v7_event()})
        assert response.status_code == 400
        assert response.text == f"API version {version} is not supported"


def test_paths_are_case_sensitive_and_post_only(sim: VesCollectorSim) -> None:
    """Paths are case-sensitive (404) and POST-only (405 with Allow); /healthcheck answers."""
    body = {"event": v7_event()}
    assert post(sim, "/eventlistener/v7", body).status_code == 404
    assert post(sim, "/eventListener/v7/eventbatch", {"eventList": [v7_event()]}).status_code == 404
    put = requests.put(sim.url + "/eventListener/v7", json=body, timeout=5)
    assert put.status_code == 405
    assert "POST" in put.headers["Allow"]
    assert requests.get(sim.url + "/eventListener/v7/eventBatch", timeout=5).status_code == 405
    health = requests.get(sim.url + "/healthcheck", timeout=5)
    assert (health.status_code, health.text) == (200, "I'm good")
    assert sim.accepted_count == 0
    assert [r.status for r in sim.rejected()] == [404, 404, 405, 405]


def test_content_type(sim: VesCollectorSim) -> None:
    """Only application/json (any case, with parameters) is accepted; anything else is 415."""
    raw = json.dumps({"event": v7_event()}).encode()
    for content_type, status in [
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("application/json; charset=utf-8", 202),
        ("Application/JSON", 202),
    ]:
        response = post(sim, "/eventListener/v7", raw, headers={"Content-Type": content_type})
        assert response.status_code == status, content_type
    bare = requests.post(sim.url + "/eventListener/v7", data=raw, timeout=5)
    assert bare.status_code == 415


def test_key_must_match_the_endpoint(sim: VesCollectorSim) -> None:
    """'event' on the single endpoint and 'eventList' on the batch one, else 400 SVC0002."""
    for path, body in [
        ("/eventListener/v7", {"eventList": [v7_event()]}),
        ("/eventListener/v7/eventBatch", {"event": v7_event()}),
        ("/eventListener/v7", {}),
        ("/eventListener/v7/eventBatch", {}),
    ]:
        response = post(sim, path, body)
        assert response.status_code == 400
        assert response.json()["requestError"]["ServiceException"] == {
            "messageId": "SVC0002",
            "text": "Incorrect JSON payload",
        }


def test_non_json_body_is_400_and_recorded(sim: VesCollectorSim) -> None:
    """Bodies that are not a JSON object get 400 SVC0002 and are recorded as rejected."""
    for raw in (b"{not json", b"[1, 2]", b"\xff\xfe garbage"):
        response = post(sim, "/eventListener/v7", raw)
        assert response.status_code == 400
        assert message_id(response) == "SVC0002"
    first = sim.rejected()[0]
    assert first.raw_body == "{not json"
    assert first.reason == "body is not a JSON object"


def test_batch_needs_one_domain(sim: VesCollectorSim) -> None:
    """Mixed-domain or empty batches are 400 SVC0001; a good one is recorded in order."""
    mixed = {"eventList": [v7_event("a"), v7_event("b", domain="heartbeat")]}
    response = post(sim, "/eventListener/v7/eventBatch", mixed)
    assert response.status_code == 400
    assert response.json()["requestError"]["ServiceException"] == {
        "messageId": "SVC0001",
        "text": "Different value of domain fields in Batch Event",
    }
    empty = post(sim, "/eventListener/v7/eventBatch", {"eventList": []})
    assert (empty.status_code, message_id(empty)) == (400, "SVC0001")
    same = post(sim, "/eventListener/v7/eventBatch", {"eventList": [v7_event("a"), v7_event("b")]})
    assert same.status_code == 202
    assert [(r.index, r.event["commonEventHeader"]["sourceName"]) for r in sim.records()] == [
        (0, "a"),
        (1, "b"),
    ]
    assert len({r.request_id for r in sim.records()}) == 1


def test_backwards_compatible_mode_answers_200() -> None:
    """In backwards-compatible mode an accepted event is answered 200 instead of 202."""
    with VesCollectorSim(compat="None") as server:
        response = post(server, "/eventListener/v7", {"event": v7_event()})
        assert (response.status_code, response.text) == (200, "Successfully send event")


# -- outages ---------------------------------------------------------------------------------
def test_outage_503_then_restore(sim: VesCollectorSim) -> None:
    """A 503 outage answers SVC1000 after the content checks; events flow again after restore."""
    sim.outage("503")
    response = post(sim, "/eventListener/v7", {"event": v7_event()})
    assert response.status_code == 503
    assert response.json()["requestError"]["ServiceException"]["messageId"] == "SVC1000"
    invalid = post(sim, "/eventListener/v7", {"event": {"commonEventHeader": {}}})
    assert invalid.status_code == 400, "checks before publishing still answer"
    assert sim.accepted_count == 0
    sim.restore()
    assert post(sim, "/eventListener/v7", {"event": v7_event()}).status_code == 202
    assert sim.accepted_count == 1


def test_outage_500(sim: VesCollectorSim) -> None:
    """A 500 outage answers SVC2000 and records why; restore accepts again."""
    sim.outage("500")
    response = post(sim, "/eventListener/v7/eventBatch", {"eventList": [v7_event()]})
    assert response.status_code == 500
    detail = response.json()["requestError"]["ServiceException"]
    assert (detail["messageId"], detail["variables"]) == (
        "SVC2000",
        ["Internal Server Error", "500"],
    )
    assert sim.rejected()[-1].reason == "outage 500"
    sim.restore()
    assert post(sim, "/eventListener/v7", {"event": v7_event()}).status_code == 202


def test_outage_refuse_closes_keep_alive_connections_too(sim: VesCollectorSim) -> None:
    """A refuse outage also cuts kept-alive connections; restore listens on the same port."""
    session = requests.Session()
    url = sim.url + "/eventListener/v7"
    first = session.post(url, json={"event": v7_event()}, timeout=5)
    assert first.status_code == 202
    port = sim.port

    sim.outage("refuse")
    with pytest.raises(requests.ConnectionError):
        session.post(url, json={"event": v7_event()}, timeout=2)
    with pytest.raises(requests.ConnectionError):
        requests.get(sim.url + "/healthcheck", timeout=2)

    sim.restore()
    assert sim.port == port
    assert session.post(url, json={"event": v7_event()}, timeout=5).status_code == 202
    assert sim.accepted_count == 2


def test_outage_hang_outlives_the_client_timeout_then_restore(sim: VesCollectorSim) -> None:
    """A hang outage makes the client time out; the hung request is not published after restore."""
    sim.outage("hang")
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        post(sim, "/eventListener/v7", {"event": v7_event()}, timeout=0.5)
    assert time.monotonic() - started < 5
    sim.restore()
    assert post(sim, "/eventListener/v7", {"event": v7_event()}).status_code == 202
    assert sim.accepted_count == 1, "the hung request is not published"


def test_stop_does_not_wait_for_hanging_requests() -> None:
    """stop() returns promptly even while a request hangs, and the client is released."""
    server = VesCollectorSim(hang_seconds=60).start()
    server.outage("hang")
    failed: list[BaseException] = []

    def hanging_client() -> None:
        try:
            post(server, "/eventListener/v7", {"event": v7_event()}, timeout=30)
        except requests.RequestException as exc:
            failed.append(exc)

    client = threading.Thread(target=hanging_client, daemon=True)
    client.start()
    wait_until(lambda: server.requests.total("/eventListener"), 5, "the hanging request")
    assert server.requests.total("/eventListener") == 1
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3
    client.join(timeout=5)
    assert not client.is_alive()


def test_outage_over_http_with_automatic_restore(sim: VesCollectorSim) -> None:
    """The HTTP control starts and ends outages, refuses bad modes; a timed refuse ends itself."""
    control = sim.url + "/_sim/ves"
    bad = requests.post(control + "/outage", json={"mode": "refuse"}, timeout=5)
    assert bad.status_code == 400, "refuse over HTTP needs seconds"
    assert requests.post(control + "/outage", json={"mode": "nope"}, timeout=5).status_code == 400

    assert requests.post(control + "/outage", json={"mode": "503"}, timeout=5).status_code == 200
    assert post(sim, "/eventListener/v7", {"event": v7_event()}).status_code == 503
    assert requests.get(control + "/status", timeout=5).json()["outage"] == "503"
    assert requests.post(control + "/restore", timeout=5).status_code == 200

    answer = requests.post(control + "/outage", json={"mode": "refuse", "seconds": 0.3}, timeout=5)
    assert answer.status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(sim.url + "/healthcheck", timeout=2)
    wait_until(lambda: sim.outage_mode != "refuse", 5, "the automatic restore")
    assert post(sim, "/eventListener/v7", {"event": v7_event()}).status_code == 202


# -- waiting, records and the HTTP control ------------------------------------------------------
def test_wait_for_returns_when_events_arrive(sim: VesCollectorSim) -> None:
    """wait_for returns the matching events once they arrive; events() filters safely."""

    def later() -> None:
        post(sim, "/eventListener/v7", {"event": v7_event("vm-9")})
        post(sim, "/eventListener/v7/eventBatch", {"eventList": [v7_event("vm-9"), v7_event("x")]})

    timer = threading.Timer(0.1, later)
    timer.start()
    try:
        events = sim.wait_for(lambda e: e["commonEventHeader"]["sourceName"] == "vm-9", count=2)
    finally:
        timer.join()
    assert [e["commonEventHeader"]["sourceName"] for e in events] == ["vm-9", "vm-9"]
    assert sim.wait_for(timeout=0) == sim.events()
    assert len(sim.events(lambda e: e["faultFields"]["eventSeverity"] == "CRITICAL")) == 3
    assert sim.events(lambda e: e["noSuchKey"]) == []


def test_wait_for_times_out_with_what_arrived(sim: VesCollectorSim) -> None:
    """wait_for times out near its deadline, naming what did arrive and what was rejected."""
    post(sim, "/eventListener/v7", {"event": v7_event("vm-1")})
    post(sim, "/eventListener/v7", {"eventList": []})

    def wanted(event: dict[str, Any]) -> bool:
        return event["commonEventHeader"]["sourceName"] == "vm-404"

    started = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        sim.wait_for(wanted, timeout=0.3)
    assert 0.25 < time.monotonic() - started < 3
    message = str(caught.value)
    assert "0 of 1 wanted event(s) matched" in message
    assert "wanted" in message
    assert "sourceName='vm-1'" in message
    assert "1 request(s) rejected" in message
    assert "no top-level 'event' key" in message


def test_http_control_lists_filters_and_clears(sim: VesCollectorSim) -> None:
    """The HTTP control lists events (by domain), lists rejections and clears both."""
    post(sim, "/eventListener/v7", {"event": v7_event("f")})
    post(sim, "/eventListener/v7", {"event": v7_event("h", domain="heartbeat")})
    post(sim, "/eventListener/v7", {"event": {}})
    control = sim.url + "/_sim/ves"

    listed = requests.get(control + "/events", timeout=5).json()
    assert listed["count"] == 2
    heartbeat = requests.get(control + "/events", params={"domain": "heartbeat"}, timeout=5).json()
    assert [e["event"]["commonEventHeader"]["sourceName"] for e in heartbeat["events"]] == ["h"]
    assert heartbeat["events"][0]["version"] == "v7"
    assert heartbeat["events"][0]["batch"] is False
    rejected = requests.get(control + "/rejected", timeout=5).json()
    assert [(r["status"], r["raw_body"]) for r in rejected["rejected"]] == [(400, '{"event": {}}')]

    assert requests.delete(control + "/events", timeout=5).status_code == 204
    assert sim.events() == [] and sim.rejected() == []
    assert requests.get(control + "/events", timeout=5).json()["count"] == 0
    assert sim.requests.total("/eventListener", method="POST") == 3


# -- batches -----------------------------------------------------------------------------------
def _measurement_batch(first: int, size: int) -> dict[str, Any]:
    template = sample("dcaegen2-collectors-ves/measurement7x.json")["event"]
    events = []
    for i in range(first, first + size):
        event = copy.deepcopy(template)
        event["commonEventHeader"]["eventId"] = f"measurement-{i}"
        event["commonEventHeader"]["sequence"] = i
        events.append(event)
    return {"eventList": events}


def test_batches_of_300_measurements_stay_under_1_mb_and_are_all_accepted(
    sim: VesCollectorSim,
) -> None:
    """Ten batches of 300 v7 measurements: each under the spec's 1 MB, valid, all accepted.

    Throughput is measured by ``make bench`` (``ves_batch_events_per_s``), not asserted here.
    """
    batch_size, batches = 300, 10
    bodies = [
        json.dumps(_measurement_batch(n * batch_size, batch_size)).encode() for n in range(batches)
    ]
    assert len(bodies[0]) < 1_000_000, "a batch stays under the 1 MB the spec recommends"
    body = json.loads(bodies[0])
    assert schema_problems("v7", body) == ()
    assert ves_schema.validator("v7").is_valid(body)
    with requests.Session() as session:
        for raw in bodies:
            response = session.post(
                sim.url + "/eventListener/v7/eventBatch", data=raw, headers=JSON_HEADERS, timeout=30
            )
            assert response.status_code == 202
    assert sim.accepted_count == batch_size * batches
