"""The A&AI client against the A&AI simulator over real HTTP."""

from __future__ import annotations

import pytest

from vesagent.aai_client import AaiClient, credentials_from_esr
from vesagent.errors import PermissionDenied, Rejected, TemporaryError
from vesagent.model import RegionKey
from vesagent.sim.aai import AaiSim


@pytest.fixture(name="aai")
def _aai():
    sim = AaiSim().start()
    yield sim
    sim.stop()


def region(n: int, extra: str | None = '{"vesagent_config": {}}') -> dict:
    return AaiSim.make_region(
        "Owner",
        f"R{n}",
        extra_info=extra,
        keystone_url="http://127.0.0.1:5/identity/v3",
        username="u",
        password="p",
        project="admin",
        openstack_region_id=f"OS{n}",
    )


def client(aai: AaiSim, **kw) -> AaiClient:
    return AaiClient(aai.url, "AAI", "AAI", **kw)


def test_empty_collection_is_no_regions(aai) -> None:
    """A&AI's 404 for an empty collection means zero regions, not an error."""
    assert client(aai).list_regions() == []


def test_pages_are_followed_to_the_end(aai) -> None:
    """resultIndex/resultSize paging reads every region exactly once."""
    for n in range(23):
        aai.put_region(region(n))
    c = client(aai, page_size=5)
    records = c.list_regions()
    assert sorted(r.key.cloud_region_id for r in records) == sorted(f"R{n}" for n in range(23))
    assert c.requests_made == 5
    assert all(r.resource_version for r in records)


def test_headers_and_credentials(aai) -> None:
    """Every request carries X-FromAppId: vesagent and a fresh X-TransactionId."""
    aai.put_region(region(1))
    c = client(aai)
    key = RegionKey("Owner", "R1")
    (record,) = c.list_regions()
    esr = c.esr_list(key)
    creds = credentials_from_esr(record, esr)
    assert creds is not None
    # v13 (the default, as MultiCloud uses) has no openstack-region-id on esr-system-info:
    # the catalog region is the cloud-region-id unless cloud-extra-info names one.
    assert (creds.username, creds.project_name, creds.region_name) == ("u", "admin", "R1")
    v14 = client(aai, version="v14")
    assert credentials_from_esr(record, v14.esr_list(key)).region_name == "OS1"
    assert creds.auth_url == "http://127.0.0.1:5/identity/v3"
    assert "p" not in repr(creds).split("password")[0][-3:]
    assert c.esr_list(RegionKey("Owner", "nope")) == []


def test_wrong_password_is_permanent_and_outage_is_temporary(aai) -> None:
    """A 403 is a configuration error; a refused connection is worth retrying."""
    with pytest.raises(PermissionDenied, match="VESAGENT_AAI") as info:
        AaiClient(aai.url, "AAI", "wrong").list_regions()
    assert (info.value.service, info.value.status) == ("aai", 403)
    assert "POL3300" in info.value.excerpt  # the cleaned excerpt of A&AI's answer
    aai.refuse()
    with pytest.raises(TemporaryError, match="cannot connect"):
        client(aai, retry_attempts=2).list_regions()
    aai.accept()
    assert client(aai).list_regions() == []


def test_unknown_api_version_is_a_clear_error(aai) -> None:
    """A version the A&AI does not serve is reported, not mistaken for 'no regions'."""
    with pytest.raises(Rejected, match="400"):
        client(aai, version="v99").list_regions()


def test_unavailable_aai_carries_retry_after(aai) -> None:
    """A 503 with Retry-After is a TemporaryError whose delay the read retry honours."""
    aai.inject(status=503, path_prefix="/aai", count=None)
    aai.app.after_request(_with_retry_after)
    with pytest.raises(TemporaryError) as info:
        client(aai, retry_attempts=1).list_regions()
    assert info.value.delay == 7.0 and info.value.status == 503


def _with_retry_after(response):
    if response.status_code == 503:
        response.headers["Retry-After"] = "7"
    return response
