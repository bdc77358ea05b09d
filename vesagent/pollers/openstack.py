"""Keystone v3 + Nova v2.1 client used by the pollers, built on keystoneauth1.

keystoneauth1 does the identity work: it issues the token, parses the catalog, re-authenticates
shortly before ``expires_at`` and once more when an authenticated call returns 401. This module
adds what a poller needs on top: the calls a poll cycle makes (servers with ``changes-since``
and paging, services, hypervisors, diagnostics, project lookup), the server's clock taken from
the ``Date`` header, request counts, and the classification of every failure into the one error
model of ``vesagent.errors`` (``error_for_status`` for HTTP answers): ``TemporaryError``
(retry later, with ``Retry-After``), ``CredentialsRefused`` (Keystone refused the password: worth
re-reading esr-system-info), ``PermissionDenied`` (a missing admin role: re-reading will not
help), ``NotFound`` and other ``PermanentError``. Nothing is retried here; the poller decides.

Messages name the region and URL, never the password or the token.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import tempfile
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import requests
from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from vesagent.errors import (
    CredentialsRefused,
    PermanentError,
    TemporaryError,
    VesagentError,
    error_for_status,
    excerpt,
    retry_after_seconds,
)
from vesagent.model import VimCredentials as VimCredentials  # moved to the domain model

DEFAULT_MICROVERSION = "2.79"
# Nova clamps ``limit`` to ``[api] max_limit`` (1000 by default); larger values only cost memory.
DEFAULT_PAGE_LIMIT = 1000
# Bounds every paging loop: 10,000 pages of 1,000 is far beyond any real region.
MAX_PAGES = 10_000


def ca_bundle_file(cacert: str, directory: Path | None = None) -> str:
    """A path usable as ``VimCredentials.verify`` for an esr-system-info ``ssl-cacert``.

    A&AI documents ``ssl-cacert`` as the CA file *content*: PEM text is written once to
    ``directory`` (default: ``vesagent-ca`` in the temp dir), named by its hash, and that
    path is returned. Any other value is taken to be a path already.
    """
    cacert = cacert.strip()
    if "-----BEGIN" not in cacert:
        return cacert
    folder = directory or Path(tempfile.gettempdir()) / "vesagent-ca"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(cacert.encode()).hexdigest()[:32]}.pem"
    if not path.exists():
        path.write_text(cacert + "\n", encoding="utf-8")
    return str(path)


@dataclass(frozen=True)
class ServerPage:
    """The result of a (possibly multi-page) ``GET /servers/detail``.

    ``servers`` are the dicts exactly as Nova sent them, across all pages. ``server_time`` is
    the first response's ``Date`` header in UTC, so that the next ``changes-since`` window is
    based on Nova's clock. Nova served by uwsgi without a front proxy sends no ``Date`` at all;
    then ``server_time`` is our own clock read just before the first request was sent and
    ``server_clock`` is False (widen the overlap: the clocks may differ). ``requests`` counts
    the HTTP calls made.
    """

    servers: list[dict[str, Any]]
    server_time: datetime
    requests: int
    server_clock: bool = True


def keystone_v3_url(auth_url: str) -> str:
    """Normalise a Keystone auth URL to its ``/v3`` form; reject v2.0 with a clear message."""
    url = auth_url.strip().rstrip("/")
    if not url:
        raise PermanentError("the Keystone auth URL (esr-system-info service-url) is empty")
    if re.search(r"/v2(\.0)?$", url):
        raise PermanentError(
            f"Keystone auth URL {url} is an Identity v2.0 endpoint; v2.0 is unsupported, "
            "give the v3 URL (e.g. ending in /v3)"
        )
    return url if url.endswith("/v3") else url + "/v3"


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP-date (e.g. a ``Date`` header) as an aware UTC datetime, or None if unusable."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def format_changes_since(when: datetime) -> str:
    """``changes-since`` value: UTC, whole seconds (floored, so the window only grows), ``Z``."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_link_query(links: Any) -> list[tuple[str, str]] | None:
    """The query of the ``rel=next`` link of a ``*_links`` list, or None when there is none."""
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, Mapping) and link.get("rel") == "next" and link.get("href"):
            return parse_qsl(urlsplit(str(link["href"])).query, keep_blank_values=True)
    return None


def error_detail(body: Any) -> str:
    """The human message inside an OpenStack error body.

    Nova wraps it as ``{"badRequest": {"code": 400, "message": ...}}`` (key varies), Keystone
    as ``{"error": {"code": 401, "title": ..., "message": ...}}``.
    """
    if isinstance(body, Mapping):
        for value in body.values():
            if isinstance(value, Mapping) and value.get("message"):
                return str(value["message"])
        if body.get("message"):
            return str(body["message"])
    return ""


_caller = threading.local()  # the ComputeClient whose call is running in this thread


class _CountingPassword(v3.Password):
    """keystoneauth's v3 password plugin, counting each token request it makes.

    A shared plugin serves several regions' clients: the token request is counted for the
    client whose call needed it (``_caller``), else for the plugin's first owner.
    """

    def __init__(self, *, on_authenticate: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_authenticate = on_authenticate

    def get_auth_ref(self, session: ks_session.Session, **kwargs: Any) -> Any:
        client = getattr(_caller, "client", None)
        if client is not None:
            client._count_auth()
        else:
            self._on_authenticate()
        return super().get_auth_ref(session, **kwargs)


def credentials_key(creds: VimCredentials) -> tuple[Any, ...]:
    """What makes two regions able to share one token: everything but the region."""
    return (
        keystone_v3_url(creds.auth_url),
        creds.username,
        creds.password,
        creds.project_id,
        creds.project_name,
        creds.user_domain,
        creds.project_domain,
        creds.verify,
    )


class SessionPool:
    """One keystoneauth session, hence one token and one catalog, per set of credentials.

    Regions of one cloud usually share a Keystone and a service user: a token covers every
    region of the catalog, so re-authenticating (and keeping a catalog copy) per region would
    only multiply Keystone's load and the agent's memory. Reference counted: the session is
    closed when its last region lets go.
    """

    def __init__(self, timeout: float = 10.0, cert: tuple[str, str] | None = None) -> None:
        self._timeout = timeout
        self._cert = cert  # the agent's client certificate and key, when Keystone asks
        self._lock = threading.Lock()
        self._entries: dict[tuple[Any, ...], list[Any]] = {}  # key -> [auth, session, refs]

    def acquire(self, creds: VimCredentials, on_authenticate: Any) -> tuple[Any, Any]:
        key = credentials_key(creds)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                auth = _make_password_plugin(creds, on_authenticate)
                session = ks_session.Session(
                    auth=auth, verify=creds.verify, cert=self._cert, timeout=self._timeout
                )
                entry = self._entries[key] = [auth, session, 0]
            entry[2] += 1
            return entry[0], entry[1]

    def release(self, creds: VimCredentials) -> None:
        key = credentials_key(creds)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return
            entry[2] -= 1
            if entry[2] <= 0:
                del self._entries[key]
                entry[1].session.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def _make_password_plugin(creds: VimCredentials, on_authenticate: Any) -> _CountingPassword:
    scope: dict[str, str] = {}
    if creds.project_id:
        scope["project_id"] = creds.project_id
    elif creds.project_name:
        scope["project_name"] = creds.project_name
        scope["project_domain_name"] = creds.project_domain
    return _CountingPassword(
        on_authenticate=on_authenticate,
        auth_url=keystone_v3_url(creds.auth_url),
        username=creds.username,
        password=creds.password,
        user_domain_name=creds.user_domain,
        **scope,
    )


class ComputeClient:
    """Nova v2.1 for one region, authenticated through Keystone v3 with keystoneauth1.

    One instance per (credentials, region); safe to share between threads. No network
    traffic happens until the first call. Every call raises ``TemporaryError`` or
    a ``PermanentError`` subclass (``NotFound`` for 404, ``CredentialsRefused`` when Keystone
    refuses the password), never a keystoneauth or requests error.
    """

    def __init__(
        self,
        creds: VimCredentials,
        *,
        timeout: float = 10.0,
        microversion: str = DEFAULT_MICROVERSION,
        pool: SessionPool | None = None,
    ) -> None:
        self._creds = creds
        self._pool = pool
        self._identity_url = keystone_v3_url(creds.auth_url)
        self._region = creds.region_name
        self._lock = threading.Lock()
        self._requests_made = 0
        self._auth_count = 0
        self._projects: dict[tuple[str, str], str] = {}
        self._domains: dict[str, str] = {}
        if pool is not None:
            self._auth, self._session = pool.acquire(creds, self._count_auth)
        else:
            self._auth = _make_password_plugin(creds, self._count_auth)
            self._session = ks_session.Session(
                auth=self._auth, verify=creds.verify, timeout=timeout
            )
        self._compute = ks_adapter.Adapter(
            self._session,
            service_type="compute",
            region_name=creds.region_name,
            interface="public",
            default_microversion=microversion,
        )
        self.microversion = microversion

    def __repr__(self) -> str:
        return (
            f"ComputeClient(auth_url={self._identity_url!r}, user={self._creds.username!r}, "
            f"region={self._region!r}, microversion={self.microversion!r})"
        )

    def __enter__(self) -> ComputeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- counters ----------------------------------------------------------------------------
    @property
    def requests_made(self) -> int:
        """Nova requests sent so far (one per call to the API; keystoneauth's 401 replay and
        Keystone requests are not counted)."""
        with self._lock:
            return self._requests_made

    @property
    def auth_count(self) -> int:
        """Token requests keystoneauth made so far (first auth, proactive refresh, 401)."""
        with self._lock:
            return self._auth_count

    def _count_auth(self) -> None:
        with self._lock:
            self._auth_count += 1

    def close(self) -> None:
        """Close the HTTP connections (or let go of the shared session)."""
        if self._pool is not None:
            self._pool.release(self._creds)
        else:
            self._session.session.close()

    def compute_endpoint(self) -> str:
        """The public compute URL of this region from the token's catalog (authenticates)."""
        try:
            with self._calling():
                url = self._compute.get_endpoint()
        except ks_exc.ClientException as exc:
            raise self._classify_ks(exc, self._identity_url) from None
        if not url:
            raise self._classify_ks(ks_exc.EndpointNotFound(), self._identity_url)
        return str(url)

    # -- Nova calls --------------------------------------------------------------------------
    def list_servers(
        self,
        *,
        changes_since: datetime | None = None,
        project_id: str | None = None,
        limit: int = DEFAULT_PAGE_LIMIT,
        all_tenants: bool = True,
    ) -> ServerPage:
        """``GET /servers/detail`` over every page; with ``changes_since``, deleted servers too.

        ``all_tenants=1`` needs the admin role; ``project_id`` narrows it to one project.
        Pages are followed through ``servers_links`` until no ``next`` link is left (Nova adds
        one whenever a page is full, so the last page may be empty).
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        params: list[tuple[str, str]] = []
        if all_tenants:
            params.append(("all_tenants", "1"))
        if changes_since is not None:
            params.append(("changes-since", format_changes_since(changes_since)))
        if project_id:
            params.append(("project_id", project_id))
        params.append(("limit", str(limit)))
        sent_at = datetime.now(UTC)
        servers, server_time, count = self._get_all(
            "/servers/detail", params, "servers", "servers_links", what="the server list"
        )
        return ServerPage(
            servers=servers,
            server_time=server_time or sent_at,
            requests=count,
            server_clock=server_time is not None,
        )

    def list_services(self, binary: str | None = "nova-compute") -> list[dict[str, Any]]:
        """``GET /os-services[?binary=...]`` (admin): state up/down, status, forced_down."""
        params = [("binary", binary)] if binary else []
        body, _ = self._get_json("/os-services", params, what="os-services")
        return list(body.get("services") or [])

    def list_hypervisors(self, *, limit: int = DEFAULT_PAGE_LIMIT) -> list[dict[str, Any]]:
        """``GET /os-hypervisors`` (admin) over every page of ``hypervisors_links``."""
        items, _, _ = self._get_all(
            "/os-hypervisors",
            [("limit", str(limit))],
            "hypervisors",
            "hypervisors_links",
            what="os-hypervisors",
        )
        return items

    def diagnostics(self, server_id: str) -> dict[str, Any]:
        """``GET /servers/{id}/diagnostics`` (admin; standard format from microversion 2.48).

        Raises ``errors.NotFound`` when the server is gone.
        """
        path = f"/servers/{quote(server_id, safe='')}/diagnostics"
        body, _ = self._get_json(path, [], what="server diagnostics")
        return dict(body)

    # -- Keystone calls ----------------------------------------------------------------------
    def resolve_project(self, name: str, domain: str = "Default") -> str | None:
        """The id of project ``name`` in ``domain`` (a name or an id), or None if none exists.

        Found ids are cached; a name not in the cache is looked up again each time, so a
        project created later is found. Uses ``GET /v3/projects`` (admin) and falls back to
        ``GET /v3/auth/projects`` (the projects the user has roles on) when that is forbidden.
        """
        key = (name, domain)
        with self._lock:
            cached = self._projects.get(key)
        if cached:
            return cached
        domain_id = self._domain_id(domain)
        status, body = self._identity_get("/projects", [("name", name), ("domain_id", domain_id)])
        if status == 403:
            status, body = self._identity_get("/auth/projects", [])
        self._raise_for_identity(status, body, "/projects")
        found = next(
            (
                str(p["id"])
                for p in body.get("projects") or []
                if p.get("name") == name and p.get("domain_id") == domain_id and p.get("id")
            ),
            None,
        )
        if found:
            with self._lock:
                self._projects[key] = found
        return found

    def _domain_id(self, domain: str) -> str:
        with self._lock:
            cached = self._domains.get(domain)
        if cached:
            return cached
        found = self._token_domain_id(domain)
        if found is None:
            status, body = self._identity_get("/domains", [("name", domain)])
            if status == 403:
                # Listing domains is admin-only; a non-admin names its domain by id.
                found = domain
            else:
                self._raise_for_identity(status, body, "/domains")
                domains = body.get("domains") or []
                found = str(domains[0]["id"]) if domains else domain
        with self._lock:
            self._domains[domain] = found
        return found

    def _token_domain_id(self, domain: str) -> str | None:
        """The id of ``domain`` if the token already names it (saves a request)."""
        ref = self._access()
        pairs = [
            (ref.project_domain_name, ref.project_domain_id),
            (ref.user_domain_name, ref.user_domain_id),
        ]
        for dom_name, dom_id in pairs:
            if dom_id and (domain == dom_id or (dom_name or "").lower() == domain.lower()):
                return str(dom_id)
        return None

    @contextlib.contextmanager
    def _calling(self) -> Any:
        """Mark this thread's calls as this client's, so a token request counts for it."""
        previous = getattr(_caller, "client", None)
        _caller.client = self
        try:
            yield
        finally:
            _caller.client = previous

    def _access(self) -> Any:
        try:
            with self._calling():
                return self._auth.get_access(self._session)
        except ks_exc.ClientException as exc:
            raise self._classify_ks(exc, self._identity_url) from None

    def _identity_get(self, path: str, params: Sequence[tuple[str, str]]) -> tuple[int, Any]:
        url = self._identity_url + path
        try:
            with self._calling():
                resp = self._session.get(
                    url,
                    params=list(params),
                    authenticated=True,
                    raise_exc=False,
                    global_request_id=_request_id(),
                )
        except ks_exc.ClientException as exc:
            raise self._classify_ks(exc, url) from None
        return resp.status_code, _json_or_none(resp) or {}

    def _raise_for_identity(self, status: int, body: Any, path: str) -> None:
        if 200 <= status < 300:
            return
        url = self._identity_url + path
        error = error_for_status(
            "keystone",
            status,
            f"Keystone {url} (region {self._region})",
            body=self._scrub(error_detail(body)),
        )
        raise error or PermanentError(
            f"Keystone {url} (region {self._region}): unexpected HTTP {status}",
            service="keystone",
            status=status,
        )

    # -- plumbing ----------------------------------------------------------------------------
    def _get_all(
        self,
        path: str,
        params: list[tuple[str, str]],
        collection: str,
        links_key: str,
        *,
        what: str,
    ) -> tuple[list[dict[str, Any]], datetime | None, int]:
        items: list[dict[str, Any]] = []
        server_time: datetime | None = None
        query = params
        seen_markers: set[str] = set()
        for page in range(1, MAX_PAGES + 1):
            body, resp = self._get_json(path, query, what=what)
            if page == 1:
                server_time = parse_http_date(resp.headers.get("Date"))
            items.extend(body.get(collection) or [])
            link_query = next_link_query(body.get(links_key))
            if link_query is None:
                return items, server_time, page
            # Only the marker is taken from the link: its host may be wrong behind a proxy, and
            # Nova echoes our other parameters in it anyway.
            marker = dict(link_query).get("marker", "")
            if not marker or marker in seen_markers:
                raise PermanentError(
                    f"{what} paging of {self._endpoint_label()} does not advance "
                    f"(marker {marker!r} repeated or missing)"
                )
            seen_markers.add(marker)
            query = [*params, ("marker", marker)]
        raise PermanentError(f"{what} of {self._endpoint_label()} has over {MAX_PAGES} pages")

    def _get_json(
        self, path: str, params: Sequence[tuple[str, str]], *, what: str
    ) -> tuple[Mapping[str, Any], requests.Response]:
        request_id = _request_id()
        with self._lock:
            self._requests_made += 1
        try:
            with self._calling():
                resp = self._compute.get(
                    path, params=list(params), raise_exc=False, global_request_id=request_id
                )
        except ks_exc.ClientException as exc:
            raise self._classify_ks(exc, self._endpoint_label()) from None
        if resp.status_code >= 300:
            raise self._nova_error(resp, path, params, what, request_id)
        body = _json_or_none(resp)
        if not isinstance(body, Mapping):
            raise TemporaryError(
                f"{what}: {resp.request.method} {_safe_url(resp)} (region {self._region}) "
                f"returned HTTP {resp.status_code} without a JSON object (request {request_id})"
            )
        return body, resp

    def _nova_error(
        self,
        resp: requests.Response,
        path: str,
        params: Sequence[tuple[str, str]],
        what: str,
        request_id: str,
    ) -> VesagentError:
        status = resp.status_code
        where = f"GET {_safe_url(resp)} (region {self._region}, request {request_id})"
        if status == 401:
            reason = "Nova rejected the token even after re-authenticating"
        elif status == 403 and ("all_tenants", "1") in params:
            reason = "the user lacks the admin role needed for all_tenants"
        elif status == 403:
            reason = f"the user lacks the admin role needed for {what}"
        elif status == 404:
            reason = what
        elif status == 406:
            reason = f"the compute API does not support microversion {self.microversion}"
        else:
            reason = f"{what} failed"
        error = error_for_status(
            "nova",
            status,
            f"{reason}: {where}",
            headers=resp.headers,
            body=self._scrub(error_detail(_json_or_none(resp))),
        ) or TemporaryError(f"{reason}: {where}: HTTP {status}", service="nova", status=status)
        if isinstance(error, TemporaryError) and error.delay is not None:
            # An HTTP-date counts from Nova's clock, not ours (they may differ).
            now = parse_http_date(resp.headers.get("Date")) or datetime.now(UTC)
            error.delay = retry_after_seconds(resp.headers.get("Retry-After"), now)
        return error

    def _classify_ks(self, exc: ks_exc.ClientException, where: str) -> VesagentError:
        text = self._scrub(str(exc))
        region = self._region
        if isinstance(exc, ks_exc.Unauthorized):
            return CredentialsRefused(
                f"Keystone {self._identity_url} rejected the credentials of user "
                f"{self._creds.username!r} (region {region}): credentials refused",
                service="keystone",
                status=401,
                excerpt=excerpt(text),
            )
        if isinstance(exc, ks_exc.EndpointNotFound | ks_exc.EmptyCatalog):
            return PermanentError(
                f"no public compute endpoint for region {region!r} in the catalog of "
                f"{self._identity_url}: {excerpt(text)}",
                service="keystone",
            )
        if isinstance(exc, ks_exc.SSLError):
            if "certificate verify failed" in text.lower():
                return PermanentError(
                    f"TLS verification failed for {where} (region {region})", service="keystone"
                )
            return TemporaryError(
                f"TLS error talking to {where} (region {region}): {excerpt(text)}",
                service="keystone",
            )
        if isinstance(exc, ks_exc.HttpError):
            headers = exc.response.headers if exc.response is not None else None
            return error_for_status(
                "keystone",
                exc.http_status or 500,
                f"Keystone {self._identity_url} (region {region})",
                headers=headers,
                body=text,
            ) or TemporaryError(f"Keystone {self._identity_url}: {excerpt(text)}")
        if isinstance(exc, ks_exc.ConnectionError):
            return TemporaryError(
                f"cannot reach {where} (region {region}): {excerpt(text)}", service="keystone"
            )
        if isinstance(exc, ks_exc.AuthorizationFailure | ks_exc.MissingAuthPlugin):
            return PermanentError(
                f"cannot authenticate at {self._identity_url}: {excerpt(text)}",
                service="keystone",
            )
        # Unclassified: worth another try next cycle (the poller logs it).
        return TemporaryError(
            f"OpenStack call to {where} failed (region {region}): {excerpt(text)}"
        )

    def _endpoint_label(self) -> str:
        return f"the compute API (catalog of {self._identity_url})"

    def _scrub(self, text: str) -> str:
        """Remove the password and the current token, should a server ever echo them."""
        secrets = [self._creds.password]
        ref = self._auth.auth_ref
        if ref is not None and ref.auth_token:
            secrets.append(ref.auth_token)
        for secret in secrets:
            if secret and len(secret) >= 3:
                text = text.replace(secret, "***")
        return text


def _request_id() -> str:
    return f"req-{uuid.uuid4()}"


def _json_or_none(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _safe_url(resp: requests.Response) -> str:
    """The request URL (query included: it carries no secrets in this client)."""
    return str(resp.url or "")
