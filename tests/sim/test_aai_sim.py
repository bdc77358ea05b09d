"""The A&AI simulator against the rules of reference/aai/FACTS.md, over real HTTP."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers import fixture_json
from vesagent.sim.aai import AaiSim

HEADERS = {"X-FromAppId": "vesagent-test", "X-TransactionId": "tx-1", "Accept": "application/json"}
AUTH = ("AAI", "AAI")
REGIONS = "cloud-infrastructure/cloud-regions"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def fixture(name: str) -> Any:
    """A recorded or synthetic A&AI body from ``tests/fixtures/aai``."""
    return fixture_json(f"aai/{name}")


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[AaiSim]:
    # One server for the module: stopping one costs a shutdown poll (0.1 s).
    server = AaiSim().start()
    try:
        yield server
    finally:
        server.up()
        server.stop()


@pytest.fixture
def sim(shared_sim: AaiSim) -> Iterator[AaiSim]:
    shared_sim.load({"cloud-region": []})
    shared_sim.requests.reset()
    yield shared_sim
    shared_sim.up()
    shared_sim.clear_faults()


class Aai:
    """A minimal client: right headers and auth unless a test overrides them."""

    def __init__(self, sim: AaiSim, version: str = "v32") -> None:
        self.sim = sim
        self.version = version

    def url(self, path: str = REGIONS, version: str | None = None) -> str:
        return f"{self.sim.url}/aai/{version or self.version}/{path}"

    def call(
        self,
        method: str,
        path: str = REGIONS,
        *,
        version: str | None = None,
        headers: dict[str, str] | None = None,
        auth: Any = AUTH,
        **kwargs: Any,
    ) -> requests.Response:
        merged = {**HEADERS, **(headers or {})}
        return requests.request(
            method, self.url(path, version), headers=merged, auth=auth, timeout=10, **kwargs
        )

    def get(self, path: str = REGIONS, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)


@pytest.fixture
def aai(sim: AaiSim) -> Aai:
    return Aai(sim)


def region_path(owner: str, region_id: str) -> str:
    return f"{REGIONS}/cloud-region/{owner}/{region_id}"


def make(owner: str = "CloudOwner", region_id: str = "RegionOne", **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "extra_info": '{"vesagent_config": {}}',
        "keystone_url": "http://keystone.test:5000/v3",
        "username": "admin",
        "password": "secret",
        "project": "admin",
    }
    args.update(kw)
    return AaiSim.make_region(owner, region_id, **args)


def not_found(method: str, path: str, node_type: str) -> dict[str, Any]:
    return {
        "requestError": {
            "serviceException": {
                "messageId": "SVC3001",
                "text": "Resource not found for %1 using id %2 (msg=%3) (ec=%4)",
                "variables": [
                    method,
                    path,
                    f"Node Not Found:No Node of type {node_type} found at: {path}",
                    "ERR.5.4.6114",
                ],
            }
        }
    }


def svc3000(method: str, path: str, message: str, code: str) -> dict[str, Any]:
    return {
        "requestError": {
            "serviceException": {
                "messageId": "SVC3000",
                "text": "Invalid input performing %1 on %2 (msg=%3) (ec=%4)",
                "variables": [method, path, message, code],
            }
        }
    }


def same_shape(got: Any, want: Any, where: str = "$") -> None:
    """Same keys (in the same order) and the same JSON types, recursively."""
    assert type(got) is type(want), f"{where}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, dict):
        assert list(got) == list(want), f"{where}: keys {list(got)} != {list(want)}"
        for key in want:
            same_shape(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{where}: {len(got)} items != {len(want)}"
        for i, (g_item, w_item) in enumerate(zip(got, want, strict=True)):
            same_shape(g_item, w_item, f"{where}[{i}]")


# -- headers, auth, versions -----------------------------------------------------------------


def test_echo_needs_the_headers_but_no_auth(sim: AaiSim) -> None:
    """util/echo answers UP without credentials but still needs the A&AI headers."""
    ok = requests.get(f"{sim.url}/aai/util/echo", headers=HEADERS, timeout=10)
    assert ok.status_code == 200
    assert ok.json() == {"status": "UP", "groups": ["liveness", "readiness"]}
    bare = requests.get(f"{sim.url}/aai/util/echo", timeout=10)
    assert bare.status_code == 400


def test_missing_from_app_id_is_400_with_the_real_body(aai: Aai) -> None:
    """An empty X-FromAppId is 400 with A&AI's 4009 body."""
    r = aai.get(headers={"X-FromAppId": ""})
    assert r.status_code == 400
    assert r.json() == svc3000("null", "null", "Invalid X-FromAppId in header", "4.0.4009")


def test_missing_transaction_id_is_400_with_the_real_body(aai: Aai) -> None:
    """An empty X-TransactionId is 400 with A&AI's 4010 body."""
    r = aai.get(headers={"X-TransactionId": ""})
    assert r.status_code == 400
    assert r.json() == svc3000("null", "null", "Invalid X-TransactionId in header", "4.0.4010")


@pytest.mark.parametrize(
    "app_header",
    [{"X-SourceOfTruth": "so"}, {"X-ONAP-PartnerName": "SO.1.0"}, {"X-ONAP-PartnerName": "so"}],
)
@pytest.mark.parametrize(
    "tx_header",
    [{"X-ONAP-RequestID": "r"}, {"X-RequestID": "r"}, {"X-ECOMP-RequestID": "r"}],
)
def test_alternative_header_names_are_accepted(
    sim: AaiSim, app_header: dict[str, str], tx_header: dict[str, str]
) -> None:
    """The alternative partner-name and request-id headers pass the header checks."""
    headers = {"Accept": "application/json", **app_header, **tx_header}
    r = requests.get(Aai(sim).url(), headers=headers, auth=AUTH, timeout=10)
    assert r.status_code == 404  # past the header checks: the collection is empty


def test_internal_partner_name_still_needs_from_app_id(sim: AaiSim) -> None:
    """An internal X-ONAP-PartnerName (AAI.*) still needs X-FromAppId (4009)."""
    headers = {"Accept": "application/json", "X-ONAP-PartnerName": "AAI.x", "X-RequestID": "r"}
    r = requests.get(Aai(sim).url(), headers=headers, auth=AUTH, timeout=10)
    assert r.status_code == 400
    assert r.json()["requestError"]["serviceException"]["variables"][3] == "4.0.4009"


@pytest.mark.parametrize("auth", [None, ("AAI", "wrong"), ("other", "AAI")])
def test_bad_or_missing_basic_auth_is_403_pol3300(aai: Aai, auth: Any) -> None:
    """Wrong or missing Basic credentials get 403 POL3300 with the real body."""
    r = aai.get(auth=auth)
    assert r.status_code == 403
    assert r.json() == {
        "requestError": {
            "policyException": {
                "messageId": "POL3300",
                "text": "Unauthorized (msg=%1) (ec=%2)",
                "variables": ["Unauthorized", "ERR.5.1.3300"],
            }
        }
    }


def test_credentials_come_from_the_constructor() -> None:
    """The accepted credentials are the ones given to the constructor."""
    with AaiSim(username="vesagent", password="s3cret") as sim:
        assert Aai(sim).get(auth=("vesagent", "s3cret")).status_code == 404
        assert Aai(sim).get(auth=AUTH).status_code == 403


def test_header_checks_come_before_auth_and_auth_before_version(aai: Aai) -> None:
    """Header checks come first, then authentication, then the version check."""
    r = aai.get(headers={"X-FromAppId": ""}, auth=None, version="v99")
    assert r.json()["requestError"]["serviceException"]["variables"][3] == "4.0.4009"
    r = aai.get(auth=None, version="v99")
    assert r.status_code == 403


def test_unknown_version_is_400_svc3016(aai: Aai) -> None:
    """Unknown or malformed versions are 400 SVC3016 with the real variables."""
    r = aai.get(version="v99")
    assert r.status_code == 400
    assert r.json() == {
        "requestError": {
            "serviceException": {
                "messageId": "SVC3016",
                "text": "Request uri is not valid, please check the version %1 (msg=%2) (ec=%3)",
                "variables": [
                    "GET",
                    "Request uri is not valid, please check the version %1",
                    "ERR.5.6.3007",
                    f"v99/{REGIONS}",
                    "v99",
                ],
            }
        }
    }
    assert aai.get(version="v10").status_code == 400
    assert aai.get(version="vfoo").json()["requestError"]["serviceException"]["variables"][2] == (
        "ERR.5.6.3007"
    )


def test_versions_come_from_the_constructor_and_latest_is_v32() -> None:
    """Only the constructor's versions are served; latest is v32 (400 when v32 is not)."""
    with AaiSim(versions=("v13", "v32")) as sim:
        sim.put_region(make())
        client = Aai(sim)
        assert client.get(version="v27").status_code == 400
        v13 = client.get(region_path("CloudOwner", "RegionOne"), version="v13").json()
        latest = client.get(region_path("CloudOwner", "RegionOne"), version="latest").json()
        assert "in-maint" not in v13
        assert latest["in-maint"] is False
    with AaiSim(versions=("v13",)) as sim:
        r = Aai(sim).get(version="latest")
        assert r.status_code == 400
        assert r.json()["requestError"]["serviceException"]["variables"][4] == "v32"


def test_responses_carry_x_aai_txid(aai: Aai) -> None:
    """Answers, errors included, carry an X-AAI-TXID header."""
    assert aai.get().headers["X-AAI-TXID"]  # a 404
    aai.sim.put_region(make())
    assert aai.get().headers["X-AAI-TXID"]


def test_without_an_accept_header_success_bodies_are_xml(aai: Aai) -> None:
    """Accept */* gets an XML body in the v32 namespace, as A&AI sends."""
    aai.sim.put_region(make())
    r = aai.get(headers={"Accept": "*/*"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/xml")
    assert r.text.startswith("<?xml")
    assert 'xmlns="http://org.onap.aai.inventory/v32"' in r.text
    assert "<cloud-region-id>RegionOne</cloud-region-id>" in r.text


def test_a_body_on_get_is_ignored(aai: Aai) -> None:
    """A body on a GET (MultiCloud sends "") is ignored."""
    aai.sim.put_region(make())
    assert aai.get(data='""').status_code == 200


@pytest.mark.parametrize(
    ("path", "part"),
    [
        ("cloud-infrastructure/complexes", "complexes"),
        (region_path("CloudOwner", "RegionOne") + "/tenants", "tenants"),
        ("network/generic-vnfs", "network"),
    ],
)
def test_paths_outside_the_subset_are_rejected(aai: Aai, path: str, part: str) -> None:
    """Paths outside the simulated subset are 400 SVC3000 naming the unrecognized part."""
    r = aai.get(path)
    assert r.status_code == 400
    assert r.json() == svc3000(
        "GET",
        f"v32/{path}",
        f"Invalid input performing %1 on %2:Unrecognized AAI object {part}",
        "ERR.5.2.3000",
    )


def test_xml_errors_wrap_each_variable(aai: Aai) -> None:
    """XML error bodies wrap each variable in its own element."""
    r = aai.get(headers={"Accept": "*/*"})
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/xml")
    assert "<variables><variable>GET</variable>" in r.text
    assert "<messageId>SVC3001</messageId>" in r.text


def test_an_accept_of_neither_json_nor_xml_gets_the_4014_body_with_the_original_status(
    aai: Aai,
) -> None:
    """An Accept of neither JSON nor XML gets the 4014 body with the original status."""
    r = aai.get(headers={"Accept": "text/html"})
    assert r.status_code == 404
    assert r.json() == svc3000("GET", REGIONS, "Invalid Accept header", "4.0.4014")


def test_writes_to_the_collection_are_unrecognized_functions(aai: Aai) -> None:
    """A PUT to the collection is 400 SVC3012."""
    r = aai.call("PUT", json={})
    assert r.status_code == 400
    assert r.json()["requestError"]["serviceException"]["messageId"] == "SVC3012"


# -- collection GET --------------------------------------------------------------------------


def test_empty_collection_is_404_with_the_recorded_body(aai: Aai) -> None:
    """An empty collection is a 404 with the recorded body, not an empty list."""
    r = aai.get()
    assert r.status_code == 404
    assert r.json() == fixture("SYNTHETIC_error_404_empty_cloud_regions_collection.json")


def test_collection_is_depth_0_without_children_but_with_relationships(aai: Aai) -> None:
    """The collection is depth 0: no credentials, but relationships and cloud-extra-info."""
    region = make()
    region["relationship-list"] = {"relationship": [{"related-to": "complex"}]}
    aai.sim.put_region(region)
    body = aai.get().json()
    assert list(body) == ["cloud-region"]
    (item,) = body["cloud-region"]
    assert "esr-system-info-list" not in item
    assert item["relationship-list"] == region["relationship-list"]
    assert item["cloud-extra-info"] == region["cloud-extra-info"]


@pytest.mark.parametrize("value", ["", "false", "true"])
def test_nodes_only_drops_relationships_whatever_its_value(aai: Aai, value: str) -> None:
    """nodes-only drops relationship-list whatever its value, on the collection and one region."""
    region = make()
    region["relationship-list"] = {"relationship": [{"related-to": "complex"}]}
    aai.sim.put_region(region)
    (item,) = aai.get(params={"nodes-only": value}).json()["cloud-region"]
    assert "relationship-list" not in item
    single = aai.get(region_path("CloudOwner", "RegionOne"), params={"nodes-only": value}).json()
    assert "relationship-list" not in single


def _three_regions(sim: AaiSim) -> None:
    sim.put_region(make("OwnerA", "R1", cloud_type="openstack"))
    sim.put_region(make("OwnerA", "R2", cloud_type="kubernetes"))
    sim.put_region(make("OwnerB", "R1", cloud_type="openstack"))


def _ids(response: requests.Response) -> list[tuple[str, str]]:
    return [(r["cloud-owner"], r["cloud-region-id"]) for r in response.json()["cloud-region"]]


def test_filters_and_across_keys_or_within_a_key(aai: Aai) -> None:
    """Property filters AND across keys and OR within a repeated key."""
    _three_regions(aai.sim)
    assert _ids(aai.get(params={"cloud-owner": "OwnerA"})) == [("OwnerA", "R1"), ("OwnerA", "R2")]
    both = aai.get(params={"cloud-owner": "OwnerA", "cloud-type": "openstack"})
    assert _ids(both) == [("OwnerA", "R1")]
    either = aai.get(params=[("cloud-type", "kubernetes"), ("cloud-owner", "OwnerB")])
    assert either.status_code == 404  # AND: no kubernetes region of OwnerB
    repeated = aai.get(params=[("cloud-region-id", "R2"), ("cloud-region-id", "R1")])
    assert len(_ids(repeated)) == 3


def test_filters_match_exactly_and_by_type(aai: Aai) -> None:
    """Filters match whole values, and booleans by their typed value."""
    _three_regions(aai.sim)
    prefix = aai.get(params={"cloud-owner": "Owner"})
    assert prefix.status_code == 404
    assert prefix.json() == fixture("SYNTHETIC_error_404_empty_cloud_regions_collection.json")
    assert len(_ids(aai.get(params={"in-maint": "false"}))) == 3
    assert aai.get(params={"in-maint": "true"}).status_code == 404


def test_filter_on_an_unknown_property_is_400(aai: Aai) -> None:
    """A filter on a property the version does not have is 400 SVC3000."""
    _three_regions(aai.sim)
    r = aai.get(params={"cloud_owner": "OwnerA"})
    assert r.status_code == 400
    assert r.json() == svc3000(
        "GET",
        REGIONS,
        "Invalid input performing %1 on %2:property: cloud_owner not found on cloud-region",
        "ERR.5.2.3000",
    )
    # v13 has no in-maint: the same filter is unknown there.
    assert aai.get(params={"in-maint": "false"}, version="v13").status_code == 400


def test_paging_is_1_based_with_total_headers(aai: Aai) -> None:
    """resultIndex/resultSize pages are 1-based with total headers; past the end is 404."""
    for n in range(5):
        aai.sim.put_region(make("Owner", f"R{n}"))
    page = aai.get(params={"resultIndex": 2, "resultSize": 2})
    assert page.status_code == 200
    assert _ids(page) == [("Owner", "R2"), ("Owner", "R3")]
    assert page.headers["total-results"] == "5"
    assert page.headers["total-pages"] == "3"
    assert _ids(aai.get(params={"resultIndex": 3, "resultSize": 2})) == [("Owner", "R4")]
    past = aai.get(params={"resultIndex": 4, "resultSize": 2})
    assert past.status_code == 404
    assert past.json() == fixture("SYNTHETIC_error_404_empty_cloud_regions_collection.json")
    unpaged = aai.get(params={"resultIndex": 2})
    assert len(_ids(unpaged)) == 5
    assert "total-results" not in unpaged.headers


@pytest.mark.parametrize("depth", ["1", "all", ""])
def test_depth_above_0_on_the_container_is_403(aai: Aai, depth: str) -> None:
    """depth above 0 on the collection is 403 (too many objects)."""
    aai.sim.put_region(make())
    r = aai.get(params={"depth": depth})
    assert r.status_code == 403
    assert r.json() == {
        "requestError": {
            "policyException": {
                "messageId": "POL3300",
                "text": "Unauthorized (msg=%1) (ec=%2)",
                "variables": [
                    "Too many objects would be returned by this request, please refine your "
                    "request and retry",
                    "ERR.5.1.3303",
                    "GET",
                    REGIONS,
                ],
            }
        }
    }
    assert aai.get(params={"depth": "0"}).status_code == 200


def test_bad_depth_is_400(aai: Aai) -> None:
    """A depth that is neither a number nor 'all' is 400 with the 4016 message."""
    aai.sim.put_region(make())
    r = aai.get(params={"depth": "deep"})
    assert r.status_code == 400
    assert r.json() == svc3000(
        "GET", REGIONS, 'The depth parameter must be a number or the string "all"', "4.0.4016"
    )


def test_count_format(aai: Aai) -> None:
    """format=count answers the number of regions."""
    _three_regions(aai.sim)
    assert aai.get(params={"format": "count"}).json() == {"results": [{"cloud-region": 3}]}


# -- single GET and esr-system-info ----------------------------------------------------------


def test_single_get_is_depth_0_unless_asked(aai: Aai) -> None:
    """One region is depth 0 unless depth=1 (or all) adds its esr-system-info-list."""
    aai.sim.put_region(make(openstack_region_id="RegionOne"))
    path = region_path("CloudOwner", "RegionOne")
    plain = aai.get(path).json()
    assert "esr-system-info-list" not in plain
    assert plain["cloud-owner"] == "CloudOwner"
    deep = aai.get(path, params={"depth": "1"}).json()
    (esr,) = deep["esr-system-info-list"]["esr-system-info"]
    assert esr["service-url"] == "http://keystone.test:5000/v3"
    assert esr["openstack-region-id"] == "RegionOne"
    assert aai.get(path, params={"depth": "all"}).json() == deep


def test_single_get_of_a_missing_region_is_404_with_its_path(aai: Aai) -> None:
    """A missing region is 404 naming its path."""
    path = region_path("CloudOwner", "Nowhere")
    r = aai.get(path)
    assert r.status_code == 404
    assert r.json() == not_found("GET", path, "cloud-region")


def test_esr_system_info_list_shape_and_404(aai: Aai) -> None:
    """The esr-system-info-list has A&AI's shape, refuses depth, and is 404 when empty."""
    aai.sim.put_region(make())
    path = region_path("CloudOwner", "RegionOne") + "/esr-system-info-list"
    body = aai.get(path).json()
    assert list(body) == ["esr-system-info"]
    assert body["esr-system-info"][0]["system-type"] == "VIM"
    assert aai.get(path, params={"depth": "1"}).status_code == 403
    bare = make("CloudOwner", "Bare")
    del bare["esr-system-info-list"]
    aai.sim.put_region(bare)
    empty_path = region_path("CloudOwner", "Bare") + "/esr-system-info-list"
    r = aai.get(empty_path)
    assert r.status_code == 404
    assert r.json() == not_found("GET", empty_path, "esr-system-info")


def test_esr_system_info_has_its_own_resource_version(aai: Aai) -> None:
    """Writing or deleting an esr-system-info re-stamps only that child, never the region."""
    aai.sim.put_region(make())
    region = region_path("CloudOwner", "RegionOne")
    esr = aai.get(region + "/esr-system-info-list").json()["esr-system-info"][0]
    esr_path = f"{region}/esr-system-info-list/esr-system-info/{esr['esr-system-info-id']}"
    assert aai.get(esr_path).json() == esr
    before = aai.get(region).json()["resource-version"]

    changed = {**esr, "password": "rotated"}
    missing = {k: v for k, v in changed.items() if k != "resource-version"}
    r = aai.call("PUT", esr_path, json=missing)
    assert r.status_code == 412
    assert r.json() == svc3000(
        "PUT",
        esr_path,
        "Precondition Required:resource-version not passed for update of "
        f"/esr-system-info-list/esr-system-info/{esr['esr-system-info-id']}",
        "ERR.5.4.6130",
    )
    assert aai.call("PUT", esr_path, json=changed).status_code == 200
    after = aai.get(esr_path).json()
    assert after["password"] == "rotated"
    assert after["resource-version"] != esr["resource-version"]
    assert aai.get(region).json()["resource-version"] == before

    r = aai.call("DELETE", esr_path, params={"resource-version": after["resource-version"]})
    assert r.status_code == 204
    assert aai.get(esr_path).status_code == 404
    assert aai.get(region).json()["resource-version"] == before


def test_esr_put_creates_and_checks_required_properties(aai: Aai) -> None:
    """An esr-system-info PUT checks required properties and needs its region (404)."""
    aai.sim.put_region(make())
    base = region_path("CloudOwner", "RegionOne") + "/esr-system-info-list/esr-system-info"
    r = aai.call("PUT", f"{base}/second", json={"user-name": "u"})
    assert r.status_code == 400
    assert r.json()["requestError"]["serviceException"]["variables"][2] == (
        "Invalid input performing %1 on %2:Missing required property: password,"
        "Missing required property: system-type"
    )
    full = {"user-name": "u", "password": "p", "system-type": "VIM"}
    assert aai.call("PUT", f"{base}/second", json=full).status_code == 201
    assert aai.get(f"{base}/second").json()["esr-system-info-id"] == "second"
    orphan = region_path("CloudOwner", "Nowhere") + "/esr-system-info-list/esr-system-info/x"
    assert aai.call("PUT", orphan, json=full).status_code == 404


# -- writes ----------------------------------------------------------------------------------


def test_put_create_then_update_needs_the_matching_resource_version(aai: Aai) -> None:
    """PUT creates without a resource-version, updates only with the current one, re-stamps."""
    path = region_path("CloudOwner", "RegionNew")
    body = make("CloudOwner", "RegionNew")
    created = aai.call("PUT", path, json=body)
    assert created.status_code == 201
    assert created.content == b""
    stored = aai.get(path).json()
    assert stored["resource-version"].isdigit()
    abs_path = "/" + path

    stale = aai.call("PUT", path, json={**body, "resource-version": "1"})
    assert stale.status_code == 412
    assert stale.json() == svc3000(
        "PUT",
        path,
        f"Precondition Failed:resource-version MISMATCH for update of {abs_path}",
        "ERR.5.4.6131",
    )
    bare = aai.call("PUT", path, json=body)
    assert bare.status_code == 412
    assert bare.json() == svc3000(
        "PUT",
        path,
        f"Precondition Required:resource-version not passed for update of {abs_path}",
        "ERR.5.4.6130",
    )
    again = aai.call("PUT", path, json={**body, "resource-version": stored["resource-version"]})
    assert again.status_code == 200
    # Identical data still re-stamps.
    assert aai.get(path).json()["resource-version"] != stored["resource-version"]


def test_put_create_with_a_resource_version_is_412_6135(aai: Aai) -> None:
    """A create that sends a resource-version is 412 (6135)."""
    path = region_path("CloudOwner", "RegionNew")
    r = aai.call("PUT", path, json={**make("CloudOwner", "RegionNew"), "resource-version": "5"})
    assert r.status_code == 412
    assert r.json() == svc3000(
        "PUT",
        path,
        "Resource version specified on create:resource-version passed for create of /" + path,
        "ERR.5.4.6135",
    )


def test_put_replaces_properties_and_injects_keys(aai: Aai) -> None:
    """A PUT replaces the properties, takes the keys from the URI and writes the false defaults."""
    path = region_path("CloudOwner", "RegionOne")
    aai.sim.put_region({k: v for k, v in make().items() if k not in ("in-maint",)})
    current = aai.get(path).json()
    r = aai.call(
        "PUT", path, json={"cloud-type": "k8s", "resource-version": current["resource-version"]}
    )
    assert r.status_code == 200
    after = aai.get(path, params={"depth": "1"}).json()
    assert after["cloud-owner"] == "CloudOwner"
    assert after["cloud-type"] == "k8s"
    assert "cloud-extra-info" not in after
    assert after["orchestration-disabled"] is False
    assert "esr-system-info-list" in after  # no list in the body: children stay
    stored = aai.sim.region("CloudOwner", "RegionOne")
    assert stored is not None
    assert (stored["orchestration-disabled"], stored["in-maint"]) == (False, False)  # written


def test_put_with_keys_that_differ_from_the_uri_is_400(aai: Aai) -> None:
    """Body keys that differ from the URI are 400 and change nothing."""
    path = region_path("CloudOwner", "RegionOne")
    r = aai.call("PUT", path, json={"cloud-owner": "Other"})
    assert r.status_code == 400
    assert r.json() == svc3000(
        "PUT",
        f"v32/{path}",
        "Invalid input performing %1 on %2:uri and payload keys don't match",
        "ERR.5.2.3000",
    )


def test_put_children_replace_when_present_and_stay_when_absent(aai: Aai) -> None:
    """A PUT with an esr-system-info-list replaces it; without one, children stay."""
    path = region_path("CloudOwner", "RegionOne")
    aai.sim.put_region(make())
    before = aai.get(path, params={"depth": "1"}).json()
    old_esr = before["esr-system-info-list"]["esr-system-info"][0]

    without = {k: v for k, v in before.items() if k != "esr-system-info-list"}
    without["cloud-zone"] = "z2"
    assert aai.call("PUT", path, json=without).status_code == 200
    kept = aai.get(path, params={"depth": "1"}).json()
    assert kept["esr-system-info-list"]["esr-system-info"] == [old_esr]

    new_esr = {
        "esr-system-info-id": "new",
        "user-name": "u2",
        "password": "p2",
        "system-type": "VIM",
    }
    replacing = {**kept, "esr-system-info-list": {"esr-system-info": [new_esr]}}
    assert aai.call("PUT", path, json=replacing).status_code == 200
    (esr,) = aai.get(path, params={"depth": "1"}).json()["esr-system-info-list"]["esr-system-info"]
    assert esr["esr-system-info-id"] == "new"
    assert esr["resource-version"].isdigit()


def test_patch_needs_merge_patch_content_type(aai: Aai) -> None:
    """PATCH needs application/merge-patch+json (else 415) and changes nothing otherwise."""
    path = region_path("CloudOwner", "RegionOne")
    aai.sim.put_region(make())
    assert aai.call("PATCH", path, json={"cloud-zone": "z9"}).status_code == 415
    plain = aai.call("PATCH", path, data='{"cloud-zone": "z9"}')
    assert plain.status_code == 415
    assert aai.get(path).json()["cloud-zone"] == "z1"


def test_patch_merges_without_a_version_check_and_restamps(aai: Aai) -> None:
    """A merge-patch needs no resource-version, removes null properties and re-stamps."""
    path = region_path("CloudOwner", "RegionOne")
    aai.sim.put_region(make())
    before = aai.get(path).json()
    patch = {"cloud-zone": "z9", "complex-name": None, "resource-version": "bogus"}
    r = aai.call("PATCH", path, headers=MERGE_PATCH, data=json.dumps(patch))
    assert r.status_code == 200
    assert r.content == b""
    after = aai.get(path).json()
    assert after["cloud-zone"] == "z9"
    assert "complex-name" not in after
    assert after["cloud-extra-info"] == before["cloud-extra-info"]
    assert after["resource-version"] not in (before["resource-version"], "bogus")


def test_post_with_method_override_patches(aai: Aai) -> None:
    """POST with X-HTTP-Method-Override: PATCH patches."""
    path = region_path("CloudOwner", "RegionOne")
    aai.sim.put_region(make())
    headers = {**MERGE_PATCH, "X-HTTP-Method-Override": "PATCH"}
    assert aai.call("POST", path, headers=headers, data='{"cloud-zone":"z7"}').status_code == 200
    assert aai.get(path).json()["cloud-zone"] == "z7"


def test_patch_of_a_missing_region_is_404(aai: Aai) -> None:
    """A PATCH of a missing region is 404 under the MERGE_PATCH method name."""
    path = region_path("CloudOwner", "Nowhere")
    r = aai.call("PATCH", path, headers=MERGE_PATCH, data="{}")
    assert r.status_code == 404
    assert r.json() == not_found("MERGE_PATCH", path, "cloud-region")


def test_delete_needs_the_resource_version(aai: Aai) -> None:
    """DELETE needs the current resource-version (412 without or stale) and then 404s."""
    path = region_path("CloudOwner", "RegionOne")
    aai.sim.put_region(make())
    current = aai.get(path).json()["resource-version"]
    missing = aai.call("DELETE", path)
    assert missing.status_code == 412
    assert missing.json() == svc3000(
        "DELETE",
        path,
        "Precondition Required:resource-version not passed for delete of cloud-region",
        "ERR.5.4.6130",
    )
    stale = aai.call("DELETE", path, params={"resource-version": "1"})
    assert stale.json()["requestError"]["serviceException"]["variables"][2] == (
        "Precondition Failed:resource-version MISMATCH for delete of cloud-region"
    )
    assert aai.call("DELETE", path, params={"resource-version": current}).status_code == 204
    assert aai.get(path).status_code == 404
    assert aai.call("DELETE", path, params={"resource-version": current}).status_code == 404


def test_every_write_restamps_strictly(aai: Aai) -> None:
    """Every write gets a new 13-digit resource-version, even many within one millisecond."""
    path = region_path("CloudOwner", "RegionOne")
    aai.sim.put_region(make())
    seen = {aai.get(path).json()["resource-version"]}
    for n in range(30):
        patch = json.dumps({"cloud-zone": f"z{n % 2}"})
        assert aai.call("PATCH", path, headers=MERGE_PATCH, data=patch).status_code == 200
        seen.add(aai.get(path).json()["resource-version"])
    assert len(seen) == 31
    stamps = [aai.sim.set_extra_info("CloudOwner", "RegionOne", "{}") for _ in range(200)]
    assert len(set(stamps)) == 200
    assert all(s.isdigit() and len(s) == 13 for s in stamps)


def test_field_gaps_follow_the_schema_version(aai: Aai) -> None:
    """Each schema version shows only its properties, and v16+ defaults appear on older writes."""
    region = make()
    region["cloud-epa-caps"] = '{"openstack-region-id":"RegionOne"}'
    aai.sim.put_region(region)
    path = region_path("CloudOwner", "RegionOne")
    v13 = aai.get(path, version="v13").json()
    assert "orchestration-disabled" not in v13
    assert "in-maint" not in v13
    assert v13["cloud-epa-caps"] == region["cloud-epa-caps"]
    v16 = aai.get(path, version="v16").json()
    assert v16["orchestration-disabled"] is False
    assert v16["in-maint"] is False
    assert "cloud-epa-caps" not in v16
    # A region written without the flags still shows the v16+ defaults.
    bare = {k: v for k, v in make("CloudOwner", "Bare").items() if k not in ("in-maint",)}
    aai.call("PUT", region_path("CloudOwner", "Bare"), version="v13", json=bare)
    assert aai.get(region_path("CloudOwner", "Bare"), version="v27").json()["in-maint"] is False
    esr = aai.get(path + "/esr-system-info-list", version="v13").json()["esr-system-info"][0]
    assert "openstack-region-id" not in esr or esr["openstack-region-id"] is None


def test_cloud_extra_info_is_an_opaque_string(aai: Aai) -> None:
    # Duplicate keys, odd whitespace and non-ASCII: any parse/re-serialise would change it.
    """cloud-extra-info is stored and served byte for byte, never parsed."""
    odd = '{ "vesagent_config" :\t{"b": 1,\n  "a" : 2, "a": 3 }, "x":"é\\u00e9" }  \r\n'
    path = region_path("CloudOwner", "RegionOne")
    assert aai.call("PUT", path, json=make(extra_info=odd)).status_code == 201
    assert aai.get(path).json()["cloud-extra-info"] == odd
    (listed,) = aai.get().json()["cloud-region"]
    assert listed["cloud-extra-info"] == odd
    assert aai.sim.region("CloudOwner", "RegionOne")["cloud-extra-info"] == odd
    patched = odd + " "
    r = aai.call("PATCH", path, headers=MERGE_PATCH, data=json.dumps({"cloud-extra-info": patched}))
    assert r.status_code == 200
    assert aai.get(path).json()["cloud-extra-info"] == patched


def test_cloud_extra_info_must_be_a_string_on_put(aai: Aai) -> None:
    """A cloud-extra-info that is not a string is 400."""
    path = region_path("CloudOwner", "RegionOne")
    r = aai.call("PUT", path, json=make(extra_info=None) | {"cloud-extra-info": {"a": 1}})
    assert r.status_code == 400


# -- schema types: A&AI stores what the OXM says, not what the client sent -------------------


def onapsdk_region(**overrides: Any) -> dict[str, Any]:
    """A cloud-region body as onapsdk's template renders it: booleans as "True"/"False"."""
    body = make(extra_info=None)
    body.update(
        {"orchestration-disabled": "False", "in-maint": "True", "sriov-automation": "False"}
    )
    body.update(overrides)
    return body


def test_boolean_strings_from_onapsdk_are_stored_as_booleans(aai: Aai) -> None:
    """A PUT with "True"/"False" strings reads back as JSON booleans; string-typed stay strings."""
    path = region_path("CloudOwner", "RegionOne")
    assert aai.call("PUT", path, json=onapsdk_region()).status_code == 201
    got = aai.get(path).json()
    assert got["in-maint"] is True
    assert got["orchestration-disabled"] is False
    assert got["sriov-automation"] == "False"  # a string in the OXM: kept as sent
    stored = aai.sim.region("CloudOwner", "RegionOne")
    assert stored is not None and stored["in-maint"] is True


def test_boolean_filters_find_regions_written_with_strings(aai: Aai) -> None:
    """?in-maint=true finds a region onapsdk registered with "True", as real A&AI does."""
    path = region_path("CloudOwner", "RegionOne")
    aai.call("PUT", path, json=onapsdk_region())
    assert _ids(aai.get(params={"in-maint": "true"})) == [("CloudOwner", "RegionOne")]
    assert aai.get(params={"in-maint": "false"}).status_code == 404
    assert _ids(aai.get(params={"orchestration-disabled": "false"})) == [
        ("CloudOwner", "RegionOne")
    ]


def test_patch_with_a_boolean_string_stores_a_boolean(aai: Aai) -> None:
    """A merge-patch of "in-maint": "TRUE" turns the stored false into true."""
    path = region_path("CloudOwner", "RegionOne")
    aai.sim.put_region(make())
    r = aai.call("PATCH", path, headers=MERGE_PATCH, data=json.dumps({"in-maint": "TRUE"}))
    assert r.status_code == 200
    assert aai.get(path).json()["in-maint"] is True
    assert _ids(aai.get(params={"in-maint": "true"})) == [("CloudOwner", "RegionOne")]


def test_esr_boolean_strings_are_stored_as_booleans(aai: Aai) -> None:
    """ssl-insecure and passive are typed on a direct PUT and inside a region's list."""
    esr = make()["esr-system-info-list"]["esr-system-info"][0]
    body = onapsdk_region()
    body["esr-system-info-list"]["esr-system-info"][0].update(
        {"ssl-insecure": "False", "passive": "true"}
    )
    path = region_path("CloudOwner", "RegionOne")
    assert aai.call("PUT", path, json=body).status_code == 201
    listed = aai.get(f"{path}/esr-system-info-list").json()["esr-system-info"][0]
    assert (listed["ssl-insecure"], listed["passive"]) == (False, True)
    direct = {**esr, "esr-system-info-id": "second", "ssl-insecure": "True"}
    direct.pop("resource-version", None)
    base = f"{path}/esr-system-info-list/esr-system-info"
    assert aai.call("PUT", f"{base}/second", json=direct).status_code == 201
    assert aai.get(f"{base}/second").json()["ssl-insecure"] is True


def test_integer_strings_are_stored_as_integers(aai: Aai) -> None:
    """cloud-region-number (an OXM integer) sent as "7" reads back as 7 and filters by 7."""
    path = region_path("CloudOwner", "RegionOne")
    aai.call("PUT", path, json=onapsdk_region(**{"cloud-region-number": "7"}))
    assert aai.get(path).json()["cloud-region-number"] == 7
    assert _ids(aai.get(params={"cloud-region-number": "7"})) == [("CloudOwner", "RegionOne")]


def test_a_value_that_is_no_boolean_is_400_naming_the_property(aai: Aai) -> None:
    """ "yes" for in-maint is refused with SVC3000 naming the property; nothing is stored."""
    path = region_path("CloudOwner", "RegionOne")
    r = aai.call("PUT", path, json=onapsdk_region(**{"in-maint": "yes"}))
    assert r.status_code == 400
    message = r.json()["requestError"]["serviceException"]["variables"][2]
    assert "in-maint" in message and "'yes'" in message
    assert aai.sim.region("CloudOwner", "RegionOne") is None


def test_the_python_handle_types_booleans_too(sim: AaiSim) -> None:
    """put_region and set_credentials store "True"/"False" as booleans, like HTTP writes."""
    sim.put_region(onapsdk_region())
    sim.set_credentials(
        "CloudOwner",
        "RegionOne",
        {"user-name": "u", "password": "p", "system-type": "VIM", "ssl-insecure": "True"},
    )
    stored = sim.region("CloudOwner", "RegionOne")
    assert stored is not None
    assert stored["in-maint"] is True
    assert stored["esr-system-info-list"]["esr-system-info"][0]["ssl-insecure"] is True
    with pytest.raises(ValueError, match="passive"):
        sim.put_region(
            onapsdk_region(**{"cloud-region-id": "R2"})
            | {
                "esr-system-info-list": {
                    "esr-system-info": [
                        {
                            "user-name": "u",
                            "password": "p",
                            "system-type": "VIM",
                            "passive": "maybe",
                        }
                    ]
                }
            }
        )


# -- recorded shapes -------------------------------------------------------------------------


def test_reads_the_regions_as_the_recorded_fixtures_shape_them(aai: Aai) -> None:
    """Loaded recorded regions read back exactly as recorded from CSIT and onapsdk."""
    csit = fixture("csit_v13_cloud_region_get.json")
    csit_esr = fixture("csit_v13_esr_system_info_list_get.json")
    onapsdk = fixture("onapsdk_test_cloud_regions_collection.json")
    onapsdk_esr = fixture("onapsdk_test_esr_system_info_list.json")
    csit_region = {**csit, "esr-system-info-list": csit_esr}
    opnfv = {**onapsdk["cloud-region"][0], "esr-system-info-list": onapsdk_esr}
    aai.sim.load({"cloud-region": [csit_region, opnfv]})

    csit_path = region_path("CloudOwner", "RegionOne")
    got = aai.get(csit_path, version="v13").json()
    same_shape(got, csit)
    assert got == csit  # values too, sriov-automation stays a JSON boolean as recorded
    got_esr = aai.get(csit_path + "/esr-system-info-list", version="v13").json()
    same_shape(got_esr, csit_esr)
    assert got_esr == csit_esr

    # onapsdk reads with v27 and needs orchestration-disabled / in-maint.
    listed = aai.get(params={"cloud-owner": "OPNFV"}, version="v27").json()
    same_shape(listed, onapsdk)
    assert listed == onapsdk
    opnfv_esr = aai.get(region_path("OPNFV", "RegionOne") + "/esr-system-info-list").json()
    assert opnfv_esr == onapsdk_esr


def test_reads_the_synthetic_v29_shapes(aai: Aai) -> None:
    """The v29 region and collection read back as the synthetic v29 fixtures."""
    depth1 = fixture("SYNTHETIC_v29_cloud_region_get_depth1.json")
    collection = fixture("SYNTHETIC_v29_cloud_regions_collection_depth0.json")
    aai.sim.load({"cloud-region": [depth1]})
    path = region_path("CloudOwner", "RegionOne")
    got = aai.get(path, version="v29", params={"depth": "1"}).json()
    same_shape(got, depth1)
    assert got == depth1
    assert aai.get(version="v29").json() == collection


def test_the_csit_not_found_body_shape_is_what_missing_nodes_get(aai: Aai) -> None:
    """A missing node gets the shape of the CSIT 404 recording."""
    recorded = fixture("csit_v13_error_404_node_not_found.json")
    got = aai.get(region_path("CloudOwner", "compute-0"), version="v13").json()
    same_shape(got, recorded)


def test_a_recorded_extra_info_string_round_trips(aai: Aai) -> None:
    """MultiCloud's recorded cloud-extra-info round-trips unchanged."""
    text = fixture("multicloud_fcaps_cloud_extra_info_vesagent_config.json")["cloud-extra-info"]
    aai.sim.put_region(make(extra_info=text))
    assert aai.get(region_path("CloudOwner", "RegionOne")).json()["cloud-extra-info"] == text


# -- Python handle ---------------------------------------------------------------------------


def test_handle_load_region_regions_and_deep_copies(sim: AaiSim, tmp_path: Path) -> None:
    """load_file, region() and regions() work on deep copies; load replaces everything."""
    data = {"cloud-region": [make("O", "R1"), make("O", "R2")]}
    data["cloud-region"][0]["resource-version"] = "1700000000001"
    file = tmp_path / "regions.json"
    file.write_text(json.dumps(data), encoding="utf-8")
    sim.load_file(file)
    first = sim.region("O", "R1")
    assert first is not None
    assert first["resource-version"] == "1700000000001"
    assert first["esr-system-info-list"]["esr-system-info"][0]["user-name"] == "admin"
    first["cloud-type"] = "mutated"
    first["esr-system-info-list"]["esr-system-info"][0]["password"] = "mutated"
    again = sim.region("O", "R1")
    assert again is not None
    assert again["cloud-type"] == "openstack"
    assert again["esr-system-info-list"]["esr-system-info"][0]["password"] == "secret"
    assert [r["cloud-region-id"] for r in sim.regions()] == ["R1", "R2"]
    assert sim.region("O", "nope") is None
    sim.load({"cloud-region": []})  # load replaces
    assert sim.regions() == []


def test_handle_rejects_unknown_keys(sim: AaiSim) -> None:
    """The Python handle refuses unknown properties and a malformed esr-system-info-list."""
    with pytest.raises(ValueError, match="cloud_extra_info"):
        sim.put_region({**make(), "cloud_extra_info": "{}"})
    with pytest.raises(ValueError):
        sim.load({"regions": []})
    with pytest.raises(ValueError, match="esr-system-info-list"):
        sim.put_region({**make(), "esr-system-info-list": [{"user-name": "u"}]})


def test_handle_put_region_returns_the_served_resource_version(aai: Aai) -> None:
    """put_region returns the resource-version that GET then serves."""
    version = aai.sim.put_region(make())
    assert aai.get(region_path("CloudOwner", "RegionOne")).json()["resource-version"] == version
    second = aai.sim.put_region(make())
    assert second != version


def test_handle_set_extra_info_restamps_the_region(aai: Aai) -> None:
    """set_extra_info sets or removes cloud-extra-info and re-stamps the region only."""
    aai.sim.put_region(make())
    path = region_path("CloudOwner", "RegionOne")
    before = aai.get(path, params={"depth": "1"}).json()
    version = aai.sim.set_extra_info("CloudOwner", "RegionOne", '{"k": 1}')
    after = aai.get(path, params={"depth": "1"}).json()
    assert after["resource-version"] == version != before["resource-version"]
    assert after["cloud-extra-info"] == '{"k": 1}'
    assert after["esr-system-info-list"] == before["esr-system-info-list"]
    aai.sim.set_extra_info("CloudOwner", "RegionOne", None)
    assert "cloud-extra-info" not in aai.get(path).json()
    with pytest.raises(KeyError):
        aai.sim.set_extra_info("CloudOwner", "Nowhere", "{}")


def test_handle_set_credentials_restamps_only_the_child(aai: Aai) -> None:
    """set_credentials replaces or adds the esr-system-info and re-stamps only the child."""
    aai.sim.put_region(make())
    path = region_path("CloudOwner", "RegionOne")
    before = aai.get(path, params={"depth": "1"}).json()
    old_esr = before["esr-system-info-list"]["esr-system-info"][0]
    new = {**old_esr, "password": "rotated"}
    del new["resource-version"]
    version = aai.sim.set_credentials("CloudOwner", "RegionOne", new)
    after = aai.get(path, params={"depth": "1"}).json()
    (esr,) = after["esr-system-info-list"]["esr-system-info"]
    assert esr["password"] == "rotated"
    assert esr["resource-version"] == version != old_esr["resource-version"]
    assert after["resource-version"] == before["resource-version"]
    bare = make("CloudOwner", "Bare")
    del bare["esr-system-info-list"]
    aai.sim.put_region(bare)
    aai.sim.set_credentials("CloudOwner", "Bare", {"user-name": "u", "password": "p"})
    listed = aai.get(region_path("CloudOwner", "Bare") + "/esr-system-info-list").json()
    assert listed["esr-system-info"][0]["user-name"] == "u"


def test_handle_delete_region(aai: Aai) -> None:
    """delete_region says whether the region existed."""
    aai.sim.put_region(make())
    assert aai.sim.delete_region("CloudOwner", "RegionOne") is True
    assert aai.sim.delete_region("CloudOwner", "RegionOne") is False
    assert aai.get().status_code == 404


def test_make_region_is_a_realistic_esr_registered_region() -> None:
    """make_region builds an ESR-registered region; its credentials ignore the extra info."""
    region = AaiSim.make_region(
        "Owner",
        "R1",
        extra_info=None,
        keystone_url="http://ks/v3",
        username="u",
        password="p",
        project="proj",
        openstack_region_id="RegionOne",
    )
    assert "cloud-extra-info" not in region
    assert region["cloud-type"] == "openstack"
    (esr,) = region["esr-system-info-list"]["esr-system-info"]
    assert esr["system-type"] == "VIM"
    assert esr["ssl-insecure"] is True
    assert esr["service-url"] == "http://ks/v3"
    assert (esr["user-name"], esr["password"], esr["default-tenant"]) == ("u", "p", "proj")
    assert esr["cloud-domain"] == "Default"
    assert esr["openstack-region-id"] == "RegionOne"
    assert (
        esr
        == AaiSim.make_region(
            "Owner",
            "R1",
            extra_info="{}",
            keystone_url="http://ks/v3",
            username="u",
            password="p",
            project="proj",
            openstack_region_id="RegionOne",
        )["esr-system-info-list"]["esr-system-info"][0]
    )


def test_request_counts_use_the_base_log(aai: Aai) -> None:
    """Requests are counted in the shared request log."""
    aai.get()
    aai.get()
    assert aai.sim.requests.total(f"/aai/v32/{REGIONS}", method="GET") == 2


# -- down / up -------------------------------------------------------------------------------


def test_down_503_then_up(aai: Aai) -> None:
    """down('503') answers 503 until up()."""
    aai.sim.put_region(make())
    aai.sim.down("503")
    assert aai.get().status_code == 503
    aai.sim.up()
    assert aai.get().status_code == 200


def test_down_refuse_then_up(aai: Aai) -> None:
    """down('refuse') refuses connections; up() listens again on the same port."""
    aai.sim.put_region(make())
    port = aai.sim.port
    aai.sim.down("refuse")
    with pytest.raises(requests.ConnectionError):
        aai.get()
    aai.sim.up()
    assert aai.sim.port == port
    assert aai.get().status_code == 200


def test_down_hang_holds_requests_until_up(aai: Aai) -> None:
    """down('hang') holds requests past the client's timeout; after up() they are answered."""
    aai.sim.put_region(make())
    aai.sim.down("hang")
    with pytest.raises(requests.ReadTimeout):
        requests.get(aai.url(), headers=HEADERS, auth=AUTH, timeout=0.3)
    aai.sim.up()
    assert aai.get().status_code == 200


def test_up_keeps_faults_injected_by_tests(aai: Aai) -> None:
    """up() ends the outage but keeps faults a test injected."""
    aai.sim.put_region(make())
    aai.sim.inject(status=500, path_prefix="/aai", count=1)
    aai.sim.down("503")
    aai.sim.up()
    assert aai.get().status_code == 500
    assert aai.get().status_code == 200


# -- HTTP control ----------------------------------------------------------------------------


def test_http_control_load_list_and_extra_info(aai: Aai) -> None:
    """The HTTP control loads and lists regions and sets cloud-extra-info verbatim."""
    base = f"{aai.sim.url}/_sim/aai"
    loaded = requests.put(f"{base}/regions", json={"cloud-region": [make()]}, timeout=10)
    assert loaded.status_code == 200
    listed = requests.get(f"{base}/regions", timeout=10).json()["cloud-region"]
    assert [r["cloud-region-id"] for r in listed] == ["RegionOne"]
    text = '{"vesagent_config": {"a": 1}}\n\t '
    r = requests.put(
        f"{base}/regions/CloudOwner/RegionOne/cloud-extra-info",
        data=text.encode("utf-8"),
        headers={"Content-Type": "text/plain"},
        timeout=10,
    )
    assert r.status_code == 200
    got = aai.get(region_path("CloudOwner", "RegionOne")).json()
    assert got["cloud-extra-info"] == text
    assert got["resource-version"] == r.json()["resource-version"]
    missing = requests.put(
        f"{base}/regions/CloudOwner/Nowhere/cloud-extra-info", data="x", timeout=10
    )
    assert missing.status_code == 404
    assert requests.put(f"{base}/regions", json={"bad": 1}, timeout=10).status_code == 400


def test_http_control_down_and_up(aai: Aai) -> None:
    """The HTTP control takes A&AI down (503, refuse) and up, and refuses unknown modes."""
    aai.sim.put_region(make())
    base = f"{aai.sim.url}/_sim/aai"
    assert requests.post(f"{base}/down", json={"mode": "503"}, timeout=10).status_code == 200
    assert aai.get().status_code == 503
    assert requests.post(f"{base}/up", timeout=10).status_code == 200
    assert aai.get().status_code == 200
    assert requests.post(f"{base}/down", json={"mode": "sideways"}, timeout=10).status_code == 400
    assert requests.post(f"{base}/down", json={"mode": "refuse"}, timeout=10).status_code == 200
    with pytest.raises(requests.ConnectionError):
        aai.get()
    aai.sim.up()  # the control API went down with the socket
    assert aai.get().status_code == 200


# -- scale -----------------------------------------------------------------------------------


def test_a_thousand_regions_are_listed_and_filtered(aai: Aai) -> None:
    """1,000 regions come back in one collection GET, and a filter picks one of them.

    How fast is measured by ``make bench`` (``aai_list_ms``), not asserted here.
    """
    regions = [make("Owner", f"R{n:04d}") for n in range(1000)]
    aai.sim.load({"cloud-region": copy.deepcopy(regions)})
    r = aai.get()
    assert r.status_code == 200
    assert len(r.json()["cloud-region"]) == 1000
    filtered = aai.get(params={"cloud-region-id": "R0500"})
    assert _ids(filtered) == [("Owner", "R0500")]
