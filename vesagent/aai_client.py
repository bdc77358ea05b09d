"""A&AI client: cloud-regions (paged, 404 = empty), esr-system-info credentials, write-back.

Follows the real A&AI REST API (CONTRACT.md section 3): Basic auth, ``X-FromAppId: vesagent``,
a fresh ``X-TransactionId`` per request, ``Accept: application/json`` (without it A&AI answers
XML), ``resultIndex``/``resultSize`` paging. Failures are classified once, at this edge, by
``vesagent.errors.error_for_status``: connection errors, timeouts, 5xx, 408 and 429 are
temporary (reads are retried a few times, honouring ``Retry-After``), 401 is
``CredentialsRefused``, 403 ``PermissionDenied``, 412 ``Conflict``, other 4xx ``Rejected``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from vesagent.errors import PermanentError, TemporaryError, error_for_status
from vesagent.model import RegionKey, VimCredentials
from vesagent.pollers.openstack import ca_bundle_file
from vesagent.retrying import aai_read
from vesagent.vimid import check_region_key

REGIONS_PATH = "cloud-infrastructure/cloud-regions"


@dataclass(frozen=True)
class RegionRecord:
    """What the reconciler needs of one cloud-region (depth 0)."""

    key: RegionKey
    resource_version: str
    extra_info: str | None
    body: Mapping[str, Any]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> RegionRecord | None:
        owner, region = body.get("cloud-owner"), body.get("cloud-region-id")
        if not isinstance(owner, str) or not isinstance(region, str):
            return None
        extra = body.get("cloud-extra-info")
        if isinstance(extra, dict):
            # The schema says string; a writer that stored the object itself means the same.
            extra = json.dumps(extra)
        return cls(
            key=RegionKey(owner, region),
            resource_version=str(body.get("resource-version", "")),
            extra_info=extra if isinstance(extra, str) else None,
            body=body,
        )


def credentials_from_esr(
    record: RegionRecord, esr_list: Sequence[Mapping[str, Any]], openstack_region: str | None = None
) -> VimCredentials | None:
    """The first esr-system-info (preferring system-type VIM) as keystoneauth credentials."""
    if not esr_list:
        return None
    vims = [e for e in esr_list if str(e.get("system-type", "")).upper() == "VIM"]
    esr = (vims or list(esr_list))[0]
    url = esr.get("service-url")
    if not url:
        return None
    domain = esr.get("cloud-domain") or "Default"
    insecure = str(esr.get("ssl-insecure", "false")).lower() in ("true", "1", "yes")
    verify: bool | str = not insecure
    cacert = esr.get("ssl-cacert")
    if verify and isinstance(cacert, str) and cacert.strip():
        verify = ca_bundle_file(cacert)
    region_name = esr.get("openstack-region-id") or openstack_region or record.key.cloud_region_id
    return VimCredentials(
        auth_url=str(url),
        username=str(esr.get("user-name", "")),
        password=str(esr.get("password", "")),
        project_name=esr.get("default-tenant") or None,
        user_domain=str(domain),
        project_domain=str(domain),
        region_name=str(region_name),
        verify=verify,
    )


class AaiClient:
    """Reads (and, for the REST API, writes) cloud-regions in A&AI."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        version: str = "v13",
        verify: bool | str = True,
        cert: tuple[str, str] | None = None,
        timeout: float = 10.0,
        page_size: int = 500,
        retry_attempts: int = 3,
    ) -> None:
        self.root = f"{base_url.rstrip('/')}/aai/{version}"
        self._session = requests.Session()
        self._session.auth = (username, password)
        self._session.verify = verify
        self._verify = verify  # also per request: REQUESTS_CA_BUNDLE would override the session's
        self._session.cert = cert  # client certificate and key, when A&AI asks for one
        self._timeout = timeout
        self._page_size = page_size
        self._attempts = retry_attempts
        self.requests_made = 0

    def close(self) -> None:
        self._session.close()

    # -- HTTP ----------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {
            "X-FromAppId": "vesagent",
            "X-TransactionId": str(uuid.uuid4()),
            "Accept": "application/json",
            **kwargs.pop("headers", {}),
        }
        url = f"{self.root}/{path}"
        self.requests_made += 1
        try:
            response = self._session.request(
                method, url, headers=headers, timeout=self._timeout, verify=self._verify, **kwargs
            )
        except requests.Timeout as exc:
            raise TemporaryError(f"A&AI {method} {url}: timed out", service="aai") from exc
        except requests.ConnectionError as exc:
            raise TemporaryError(f"A&AI {method} {url}: cannot connect", service="aai") from exc
        error = error_for_status(
            "aai",
            response.status_code,
            f"A&AI {method} {url}",
            headers=response.headers,
            body=response.content,
        )
        if isinstance(error, TemporaryError):
            raise error
        return response

    def _read(self, path: str, params: dict[str, Any] | None = None) -> requests.Response:
        for attempt in aai_read(self._attempts):
            with attempt:
                return self._request("GET", path, params=params)
        raise AssertionError("unreachable")

    @staticmethod
    def _json(response: requests.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise TemporaryError(f"A&AI {what}: answer is not JSON", service="aai") from exc

    @staticmethod
    def _fail(response: requests.Response, what: str) -> PermanentError:
        """The error for an answer the caller cannot use (the one classification, plus a hint)."""
        message = f"A&AI {what}"
        if response.status_code in (401, 403):
            message += " (check VESAGENT_AAI_USERNAME/PASSWORD and the user's A&AI role)"
        error = error_for_status(
            "aai", response.status_code, message, headers=response.headers, body=response.content
        )
        if isinstance(error, PermanentError):
            return error
        # A 2xx/3xx the caller did not expect (e.g. 204 on a read): nothing to retry.
        return PermanentError(
            f"{message}: unexpected HTTP {response.status_code}",
            service="aai",
            status=response.status_code,
        )

    # -- reads ---------------------------------------------------------------------------
    def list_regions(self) -> list[RegionRecord]:
        """Every cloud-region (depth 0), all pages; A&AI's 404 means "none"."""
        records: list[RegionRecord] = []
        index = 1
        while True:
            params = {"resultIndex": index, "resultSize": self._page_size}
            response = self._read(REGIONS_PATH, params)
            if response.status_code == 404:
                break  # empty collection, or a page past the end
            if response.status_code != 200:
                raise self._fail(response, "list cloud-regions")
            body = self._json(response, "list cloud-regions")
            items = body.get("cloud-region", []) if isinstance(body, dict) else []
            for item in items:
                record = RegionRecord.from_body(item) if isinstance(item, dict) else None
                if record is not None:
                    records.append(record)
            pages = response.headers.get("total-pages")
            # Without the paging headers A&AI ignored the parameters and sent everything.
            if pages is None or index >= int(pages) or not items:
                break
            index += 1
        return records

    def region_path(self, key: RegionKey) -> str:
        """The region's path; raises InvalidVimid before any URL is built for a bad key
        (``.`` or ``..`` would be normalised away and reach another node)."""
        check_region_key(key)
        return (
            f"{REGIONS_PATH}/cloud-region/{quote(key.cloud_owner, safe='')}"
            f"/{quote(key.cloud_region_id, safe='')}"
        )

    def get_region(self, key: RegionKey) -> dict[str, Any] | None:
        response = self._read(self.region_path(key))
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fail(response, f"get {key.vimid}")
        return self._json(response, f"get {key.vimid}")

    def esr_list(self, key: RegionKey) -> list[dict[str, Any]]:
        """The region's esr-system-info entries (404 = none)."""
        response = self._read(self.region_path(key) + "/esr-system-info-list")
        if response.status_code == 404:
            return []
        if response.status_code != 200:
            raise self._fail(response, f"esr-system-info-list of {key.vimid}")
        body = self._json(response, "esr-system-info-list")
        items = body.get("esr-system-info", []) if isinstance(body, dict) else []
        return [i for i in items if isinstance(i, dict)]

    # -- writes (REST API) ---------------------------------------------------------------
    def put_region(self, key: RegionKey, body: dict[str, Any]) -> None:
        """PUT the region with its current ``resource-version`` (412 -> ``errors.Conflict``)."""
        response = self._request("PUT", self.region_path(key), json=body)
        if response.status_code not in (200, 201):
            raise self._fail(response, f"update {key.vimid}")
