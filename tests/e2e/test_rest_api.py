"""The REST API end to end: A&AI stays the source of truth, the pollers follow at once."""

from __future__ import annotations

import json

import jsonschema
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import OWNER
from tests.helpers import wait_until
from vesagent.openapi import openapi_document

VIMID = f"{OWNER}_RegionOne"


def api(agent, path: str = f"/{VIMID}/vesagent", prefix: str = "/api/multicloud/v0") -> str:
    return f"{agent.url}{prefix}{path}"


def config(world, backlogs, password: str = "sample1") -> dict:
    return {
        "ves_subscription": {
            "endpoint": f"{world.ves.url}/eventListener/v7",
            "username": "sample1",
            "password": password,
        },
        "poll_interval_default": 1,
        "backlogs": backlogs,
    }


def stored_extra(world) -> dict:
    return json.loads(world.aai.region(OWNER, "RegionOne")["cloud-extra-info"])


def validate(response: requests.Response, path_key: str, method: str) -> None:
    """The response body matches the OpenAPI document's schema for its status."""
    doc = openapi_document()
    spec = doc["paths"][path_key][method]["responses"][str(response.status_code)]
    schema = spec["content"]["application/json"]["schema"]
    jsonschema.validate(response.json(), {**schema, "components": doc["components"]})


def plain_region(world) -> None:
    """RegionOne in A&AI with an unrelated key in cloud-extra-info and no vesagent_config."""
    from vesagent.sim.aai import AaiSim

    world.aai.put_region(
        AaiSim.make_region(
            OWNER,
            "RegionOne",
            extra_info='{"openstack-region-id": "RegionOne", "isystem": {"keep": true}}',
            keystone_url=world.openstack.keystone_url,
            username="admin",
            password="admin",
            project="admin",
        )
    )


def test_post_get_delete_round_trip(world, agent_factory) -> None:
    """POST writes A&AI beside other keys and events start; GET masks; DELETE stops them."""
    plain_region(world)
    (vm,) = world.openstack.create_servers("RegionOne", 1, project="admin")
    agent = agent_factory(sync=30)  # slow sync: only the API's immediate reconcile can act
    body = {
        "vesagent_config": config(world, [{"domain": "fault", "type": "vm", "tenant": "admin"}])
    }

    created = requests.post(api(agent), json=body, timeout=10)
    assert created.status_code == 201, created.text
    validate(created, "/{vimid}/vesagent", "post")
    extra = stored_extra(world)
    assert extra["isystem"] == {"keep": True} and extra["openstack-region-id"] == "RegionOne"
    assert extra["vesagent_config"]["ves_subscription"]["password"] == "sample1"

    world.openstack.set_status("RegionOne", vm, "ERROR")
    wait_until(lambda: world.faults(vm), timeout=10, what="raise after POST")

    got = requests.get(api(agent, prefix="/api/multicloud-ocata/v0"), timeout=10)
    assert got.status_code == 200
    validate(got, "/{vimid}/vesagent", "get")
    view = got.json()
    assert view["vesagent_config"]["ves_subscription"]["password"] == "***"
    assert "sample1" not in json.dumps(view["vesagent_config"]["ves_subscription"]["password"])
    assert view["status"]["running"] is True
    (backlog,) = view["status"]["backlogs"]
    assert backlog["matched_vms"] == 1 and backlog["active_alarms"] == 1

    replaced = requests.post(api(agent), json=body, timeout=10)
    assert replaced.status_code == 200

    deleted = requests.delete(api(agent), timeout=10)
    assert deleted.status_code == 204
    extra = stored_extra(world)
    assert "vesagent_config" not in extra and extra["isystem"] == {"keep": True}
    # Monitoring removed: the open alarm is cleared, nothing more is polled.
    wait_until(lambda: len(world.faults(vm)) == 2, timeout=10, what="clear after DELETE")
    listing = requests.get(api(agent, "/vesagent"), timeout=10)
    validate(listing, "/vesagent", "get")
    assert listing.json()["regions"] == []


def test_invalid_post_is_400_with_paths_and_aai_unchanged(world, agent_factory) -> None:
    """An invalid config answers 400 with every problem's path; A&AI is not touched."""
    plain_region(world)
    agent = agent_factory()
    before = world.aai.region(OWNER, "RegionOne")["resource-version"]
    bad = config(world, [{"domain": "fault", "type": "vm", "poll_interval": 0}])
    bad["ves_subscription"]["endpoint"] = "not a url"
    response = requests.post(api(agent), json={"vesagent_config": bad}, timeout=10)
    assert response.status_code == 400
    validate(response, "/{vimid}/vesagent", "post")
    paths = {p["path"] for p in response.json()["problems"]}
    assert {"backlogs[0].poll_interval", "ves_subscription.endpoint"} <= paths
    assert world.aai.region(OWNER, "RegionOne")["resource-version"] == before


def test_unknown_vimid_and_missing_config_are_404(world, agent_factory) -> None:
    """Unknown regions and regions without vesagent_config answer 404 with a clear body."""
    plain_region(world)
    agent = agent_factory()
    missing = requests.get(api(agent, f"/{OWNER}_Nowhere/vesagent"), timeout=10)
    assert missing.status_code == 404 and "Nowhere" in missing.json()["error"]
    no_config = requests.get(api(agent), timeout=10)
    assert no_config.status_code == 404 and "vesagent_config" in no_config.json()["error"]
    assert requests.delete(api(agent), timeout=10).status_code == 404


def test_concurrent_edit_is_not_lost(world, agent_factory) -> None:
    """Another system writes cloud-extra-info while our PUT is in flight: both edits survive."""
    import threading

    plain_region(world)
    agent = agent_factory()
    # Hold our first PUT for a moment; meanwhile another system writes the region, so the
    # PUT arrives with a stale resource-version and A&AI answers 412.
    world.aai.inject(
        status=None, latency=0.5, method="PUT", count=1, path_prefix="/aai/v13/cloud-infrastructure"
    )

    def other_writer() -> None:
        wait_until(
            lambda: world.aai.requests.total("/aai/v13/cloud-infrastructure", "PUT") >= 1,
            what="our PUT in flight",
        )
        world.aai.set_extra_info(
            OWNER, "RegionOne", '{"openstack-region-id": "RegionOne", "other-system": 1}'
        )

    writer = threading.Thread(target=other_writer)
    writer.start()
    body = {"vesagent_config": config(world, [])}
    response = requests.post(api(agent), json=body, timeout=10)
    writer.join(10)
    assert response.status_code == 201, response.text
    extra = stored_extra(world)
    assert extra["other-system"] == 1 and "vesagent_config" in extra
    assert world.aai.requests.total("/aai/v13/cloud-infrastructure", "PUT") == 2


def test_metrics_parse_and_move_with_events(world, agent_factory) -> None:
    """/metrics parses with prometheus-client's parser and its counters move as events flow."""
    (vm,) = world.openstack.create_servers("RegionOne", 1, project="admin")
    world.add_region("RegionOne", [{"domain": "fault", "type": "vm", "tenant": "admin"}])
    agent = agent_factory()

    def samples() -> dict[tuple[str, tuple], float]:
        text = requests.get(agent.url + "/metrics", timeout=5).text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    world.openstack.set_status("RegionOne", vm, "ERROR")
    wait_until(lambda: world.faults(vm), what="raise")
    after = wait_until(
        lambda: (
            (m := samples())
            and m.get(
                (
                    "vesagent_deliveries_total",
                    (("collector", f"{world.ves.url}/eventListener/v5"), ("outcome", "ok")),
                ),
                0,
            )
            >= 1
            and m
        ),
        what="delivery counter",
    )
    assert after[("vesagent_events_total", (("domain", "fault"), ("severity", "CRITICAL")))] == 1
    assert after[("vesagent_managed_regions", ())] == 1
    assert after[("vesagent_active_alarms", (("vimid", VIMID),))] == 1
    assert after[("vesagent_aai_up", ())] == 1
    assert any(name == "vesagent_outbox_depth" for name, _ in after)


def test_api_answers_503_when_aai_is_down(world, agent_factory) -> None:
    """A&AI unreachable: GET, POST and DELETE answer 503 with the reason."""
    plain_region(world)
    agent = agent_factory()
    world.aai.down("503")
    body = {"vesagent_config": config(world, [])}
    for response in (
        requests.get(api(agent), timeout=30),
        requests.post(api(agent), json=body, timeout=30),
        requests.delete(api(agent), timeout=30),
    ):
        assert response.status_code == 503, response.text
        assert "A&AI" in response.json()["error"]
    world.aai.up()


def test_api_basic_auth_when_configured(world, agent_factory) -> None:
    """With VESAGENT_API_USERNAME/PASSWORD set, API routes need them; health and metrics don't."""
    plain_region(world)
    agent = agent_factory(VESAGENT_API_USERNAME="ops", VESAGENT_API_PASSWORD="s3cret")
    assert requests.get(api(agent, "/vesagent"), timeout=10).status_code == 401
    wrong = requests.get(api(agent, "/vesagent"), auth=("ops", "nope"), timeout=10)
    assert wrong.status_code == 401 and "WWW-Authenticate" in wrong.headers
    ok = requests.get(api(agent, "/vesagent"), auth=("ops", "s3cret"), timeout=10)
    assert ok.status_code == 200
    for path in ("/healthz", "/readyz", "/metrics"):
        assert requests.get(agent.url + path, timeout=10).status_code == 200
    assert "s3cret" not in agent.logs()


def test_post_refuses_to_overwrite_foreign_text(world, agent_factory) -> None:
    """cloud-extra-info holding another system's non-JSON text is never overwritten: 409."""
    plain_region(world)
    world.aai.set_extra_info(OWNER, "RegionOne", "legacy free text, not JSON")
    agent = agent_factory()
    response = requests.post(api(agent), json={"vesagent_config": config(world, [])}, timeout=10)
    assert response.status_code == 409 and "refusing" in response.json()["error"]
    assert world.aai.region(OWNER, "RegionOne")["cloud-extra-info"] == "legacy free text, not JSON"
    not_a_vimid = requests.get(api(agent, "/novimid/vesagent"), timeout=10)
    assert not_a_vimid.status_code == 400 and "vimid" in not_a_vimid.json()["error"]
