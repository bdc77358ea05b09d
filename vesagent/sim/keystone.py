"""Keystone v3 simulator: password and token authentication, tokens, catalog, projects.

Shapes follow the real Identity API (keystone api-ref samples, see
``tests/fixtures/openstack/PROVENANCE.md``): a ``201`` with the token id in ``X-Subject-Token``
and a body with ``expires_at``/``issued_at`` (``%Y-%m-%dT%H:%M:%S.%fZ``), ``roles``,
``project``, ``user`` and the ``catalog``; ``401`` with
``{"error": {"code": 401, "message": ..., "title": "Unauthorized"}}`` and a
``WWW-Authenticate: Keystone uri=...`` header. Version discovery documents are served at
``/identity`` (``300 Multiple Choices``) and ``/identity/v3`` so keystoneauth1's generic and v3
plugins work unchanged.

``IdentityStore`` holds the state (thread-safe); ``KeystoneApi`` adds the HTTP routes to a
Flask app. Error messages never contain a password or a token id.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, request

DEFAULT_DOMAIN_ID = "default"
DEFAULT_DOMAIN_NAME = "Default"
IDENTITY_VERSION = "v3.14"
IDENTITY_VERSION_UPDATED = "2020-04-07T00:00:00Z"
IDENTITY_MEDIA_TYPE = "application/vnd.openstack.identity-v3+json"
UNAUTHORIZED_MESSAGE = "The request you have made requires authentication."

Clock = Callable[[], float]


class IdentityError(Exception):
    """An Identity API error: rendered as ``{"error": {"code", "message", "title"}}``."""

    TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        """The real Keystone error document."""
        title = self.TITLES.get(self.status, "Error")
        return {"error": {"code": self.status, "message": self.message, "title": title}}


@dataclass
class Project:
    """A Keystone project (all in one domain unless told otherwise)."""

    id: str
    name: str
    domain_id: str = DEFAULT_DOMAIN_ID
    description: str = ""
    enabled: bool = True


@dataclass
class User:
    """A Keystone user with a password and role names per project id."""

    id: str
    name: str
    domain_id: str
    password: str = field(repr=False)
    roles: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Token:
    """An issued token. ``project_id`` is None for an unscoped token."""

    id: str = field(repr=False)
    user_id: str
    project_id: str | None
    roles: tuple[str, ...]
    methods: tuple[str, ...]
    issued_at: float
    expires_at: float
    audit_id: str
    revoked: bool = False

    def valid_at(self, now: float) -> bool:
        """True while the token is neither expired nor revoked."""
        return not self.revoked and now < self.expires_at

    @property
    def is_admin(self) -> bool:
        """Legacy OpenStack policy: the ``admin`` role on any project makes a cloud admin."""
        return "admin" in self.roles


# Keystone's default role inference (keystone-manage bootstrap): admin > member > reader.
IMPLIED_ROLES = {"admin": ("member",), "member": ("reader",)}


def with_implied_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """The assigned roles plus the ones they imply, reader first as Keystone lists them."""
    found: list[str] = []
    pending = list(roles)
    while pending:
        role = pending.pop()
        if role not in found:
            found.append(role)
            pending.extend(IMPLIED_ROLES.get(role, ()))
    order = {"reader": 0, "member": 1, "admin": 2}
    return tuple(sorted(found, key=lambda r: (order.get(r, 3), r)))


def keystone_time(epoch: float) -> str:
    """Keystone's token timestamp format: fernet tokens keep whole seconds (``...:39.000000Z``)."""
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stable_hex(*parts: str) -> str:
    """A 32-hex id derived from ``parts`` (the same catalog ids on every run)."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class CatalogSpec:
    """What the catalog advertises: the identity URL and one compute URL per region."""

    identity_url: str
    compute_urls: dict[str, str]


class IdentityStore:
    """Projects, users, roles and tokens; every method is thread-safe."""

    def __init__(self, clock: Clock, token_lifetime: float = 3600.0) -> None:
        self._clock = clock
        self.token_lifetime = token_lifetime
        self._lock = threading.RLock()
        self._domains: dict[str, str] = {DEFAULT_DOMAIN_NAME: DEFAULT_DOMAIN_ID}
        self._projects: dict[str, Project] = {}
        self._users: dict[str, User] = {}
        self._tokens: dict[str, Token] = {}
        self._role_ids: dict[str, str] = {}
        self.auth_count = 0

    # -- administration ------------------------------------------------------------------
    def domain_id(self, name_or_id: str) -> str:
        """The id of a domain given by name or id (created on demand when named)."""
        with self._lock:
            if name_or_id in self._domains.values():
                return name_or_id
            if name_or_id not in self._domains:
                self._domains[name_or_id] = uuid.uuid4().hex
            return self._domains[name_or_id]

    def add_project(self, name: str, project_id: str | None = None) -> str:
        """Create a project (or return the id of the existing one with that name)."""
        with self._lock:
            existing = self.find_project(name=name, domain_id=DEFAULT_DOMAIN_ID)
            if existing is not None:
                return existing.id
            pid = project_id or uuid.uuid4().hex
            self._projects[pid] = Project(id=pid, name=name)
            return pid

    def add_user(
        self,
        name: str,
        password: str,
        roles: dict[str, list[str]],
        domain: str = DEFAULT_DOMAIN_NAME,
    ) -> str:
        """Create or replace a user; ``roles`` maps project *names* to role names."""
        with self._lock:
            domain_id = self.domain_id(domain)
            by_project: dict[str, list[str]] = {}
            for project_name, role_names in roles.items():
                pid = self.add_project(project_name)
                by_project[pid] = list(role_names)
                for role in role_names:
                    self._role_ids.setdefault(role, stable_hex("role", role))
            existing = next(
                (u for u in self._users.values() if u.name == name and u.domain_id == domain_id),
                None,
            )
            uid = existing.id if existing else uuid.uuid4().hex
            self._users[uid] = User(uid, name, domain_id, password, by_project)
            return uid

    def find_project(
        self,
        *,
        project_id: str | None = None,
        name: str | None = None,
        domain_id: str | None = None,
    ) -> Project | None:
        """A project by id, or by name within a domain."""
        with self._lock:
            if project_id is not None:
                return self._projects.get(project_id)
            return next(
                (p for p in self._projects.values() if p.name == name and p.domain_id == domain_id),
                None,
            )

    def projects(self) -> list[Project]:
        """Every project."""
        with self._lock:
            return list(self._projects.values())

    def user(self, user_id: str) -> User | None:
        """A user by id."""
        with self._lock:
            return self._users.get(user_id)

    def user_ids_for_project(self, project_id: str) -> list[str]:
        """Users holding any role on the project."""
        with self._lock:
            return [u.id for u in self._users.values() if project_id in u.roles]

    def role_id(self, name: str) -> str:
        """The id of a role name."""
        with self._lock:
            return self._role_ids.setdefault(name, stable_hex("role", name))

    # -- tokens --------------------------------------------------------------------------
    def issue(self, user: User, project: Project | None, methods: Iterable[str]) -> Token:
        """Issue a token; raises ``IdentityError(401)`` when the user has no role there."""
        with self._lock:
            roles: tuple[str, ...] = ()
            if project is not None:
                roles = with_implied_roles(user.roles.get(project.id, ()))
                if not roles or not project.enabled:
                    raise IdentityError(401, UNAUTHORIZED_MESSAGE)
            now = self._clock()
            self._purge(now)
            token = Token(
                id="gAAAAAB" + secrets.token_urlsafe(120),
                user_id=user.id,
                project_id=project.id if project else None,
                roles=roles,
                methods=tuple(methods),
                issued_at=now,
                expires_at=now + self.token_lifetime,
                audit_id=secrets.token_urlsafe(16)[:22],
            )
            self._tokens[token.id] = token
            self.auth_count += 1
            return token

    def _purge(self, now: float) -> None:
        # Bounded memory for a long-running sim; an hour of grace keeps "expired" distinct
        # from "never existed" for a while, as a real revocation list would.
        stale = [t for t, tok in self._tokens.items() if tok.expires_at < now - 3600]
        for token_id in stale:
            del self._tokens[token_id]

    def validate(self, token_id: str | None) -> Token | None:
        """The token if it is currently valid, else None."""
        if not token_id:
            return None
        with self._lock:
            token = self._tokens.get(token_id.strip())
            if token is None or not token.valid_at(self._clock()):
                return None
            return token

    def revoke(self, token_id: str) -> bool:
        """Revoke one token; False when it is unknown or already invalid."""
        with self._lock:
            token = self._tokens.get(token_id)
            if token is None or not token.valid_at(self._clock()):
                return False
            token.revoked = True
            return True

    def expire_all(self) -> int:
        """Make every issued token expire now; returns how many were still valid."""
        with self._lock:
            now = self._clock()
            count = 0
            for token in self._tokens.values():
                if token.valid_at(now):
                    count += 1
                token.expires_at = min(token.expires_at, now)
            return count

    # -- authentication ------------------------------------------------------------------
    def authenticate(self, body: Any) -> Token:
        """Check a ``POST /v3/auth/tokens`` body and issue a token (400/401 on failure)."""
        auth = _require(body, "auth", "request body")
        identity = _require(auth, "identity", "auth")
        methods = _require(identity, "methods", "identity")
        if not isinstance(methods, list) or not methods:
            raise IdentityError(400, _expecting("methods", "identity"))
        scope = auth.get("scope") if isinstance(auth, dict) else None
        if "password" in methods:
            user = self._password_user(_require(identity, "password", "identity"))
        elif "token" in methods:
            user = self._token_user(_require(identity, "token", "identity"))
        else:
            raise IdentityError(401, UNAUTHORIZED_MESSAGE)
        project = self._scope_project(scope)
        return self.issue(user, project, methods)

    def _password_user(self, password: Any) -> User:
        spec = _require(password, "user", "password")
        secret = spec.get("password") if isinstance(spec, dict) else None
        if not isinstance(secret, str):
            raise IdentityError(400, _expecting("password", "user"))
        with self._lock:
            user = self._lookup_user(spec)
            if user is None or not secrets.compare_digest(user.password, secret):
                raise IdentityError(401, UNAUTHORIZED_MESSAGE)
            return user

    def _token_user(self, token_spec: Any) -> User:
        token = self.validate(token_spec.get("id") if isinstance(token_spec, dict) else None)
        user = self.user(token.user_id) if token else None
        if user is None:
            raise IdentityError(401, UNAUTHORIZED_MESSAGE)
        return user

    def _lookup_user(self, spec: dict[str, Any]) -> User | None:
        if "id" in spec:
            return self._users.get(str(spec["id"]))
        name = spec.get("name")
        domain_id = self._domain_of(spec.get("domain"))
        if name is None or domain_id is None:
            raise IdentityError(400, _expecting("domain", "user"))
        return next(
            (u for u in self._users.values() if u.name == name and u.domain_id == domain_id),
            None,
        )

    def _domain_of(self, spec: Any) -> str | None:
        if not isinstance(spec, dict):
            return None
        if "id" in spec:
            return str(spec["id"])
        if "name" in spec:
            return self._domains.get(str(spec["name"]), "")
        return None

    def _scope_project(self, scope: Any) -> Project | None:
        if not scope:
            return None
        if not isinstance(scope, dict) or "project" not in scope:
            # Domain and system scope are not simulated: no role assignments there.
            raise IdentityError(401, UNAUTHORIZED_MESSAGE)
        spec = scope["project"]
        if not isinstance(spec, dict):
            raise IdentityError(400, _expecting("project", "scope"))
        with self._lock:
            if "id" in spec:
                project = self._projects.get(str(spec["id"]))
            else:
                domain_id = self._domain_of(spec.get("domain"))
                if "name" not in spec or domain_id is None:
                    raise IdentityError(400, _expecting("domain", "project"))
                project = self.find_project(name=spec["name"], domain_id=domain_id)
        if project is None:
            raise IdentityError(401, UNAUTHORIZED_MESSAGE)
        return project

    # -- documents -----------------------------------------------------------------------
    def token_body(self, token: Token, catalog: CatalogSpec | None) -> dict[str, Any]:
        """The ``{"token": {...}}`` document of a token (``catalog=None``: ``?nocatalog``)."""
        with self._lock:
            user = self._users.get(token.user_id)
            body: dict[str, Any] = {
                "methods": list(token.methods),
                "user": {
                    "domain": self._domain_ref(user.domain_id if user else DEFAULT_DOMAIN_ID),
                    "id": token.user_id,
                    "name": user.name if user else "",
                    "password_expires_at": None,
                },
                "audit_ids": [token.audit_id],
                "expires_at": keystone_time(token.expires_at),
                "issued_at": keystone_time(token.issued_at),
            }
            if token.project_id is not None:
                project = self._projects[token.project_id]
                body["roles"] = [{"id": self.role_id(r), "name": r} for r in token.roles]
                body["project"] = {
                    "domain": self._domain_ref(project.domain_id),
                    "id": project.id,
                    "name": project.name,
                }
                body["is_domain"] = False
                if catalog is not None:
                    body["catalog"] = catalog_document(catalog)
            return {"token": body}

    def _domain_ref(self, domain_id: str) -> dict[str, str]:
        name = next((n for n, i in self._domains.items() if i == domain_id), domain_id)
        return {"id": domain_id, "name": name}

    def project_document(self, project: Project, identity_url: str) -> dict[str, Any]:
        """One item of ``GET /v3/projects``."""
        return {
            "id": project.id,
            "name": project.name,
            "domain_id": project.domain_id,
            "description": project.description,
            "enabled": project.enabled,
            "is_domain": False,
            "parent_id": project.domain_id,
            "tags": [],
            "options": {},
            "links": {"self": f"{identity_url}/v3/projects/{project.id}"},
        }


def _expecting(attribute: str, target: str) -> str:
    return (
        f"Expecting to find {attribute} in {target}. The server could not comply with the "
        "request since it is either malformed or otherwise incorrect. The client is assumed "
        "to be in error."
    )


def _require(container: Any, key: str, target: str) -> Any:
    if not isinstance(container, dict) or key not in container:
        raise IdentityError(400, _expecting(key, target))
    return container[key]


def catalog_document(spec: CatalogSpec) -> list[dict[str, Any]]:
    """The token catalog: identity plus one ``compute`` endpoint triple per region."""
    identity_endpoints = []
    compute_endpoints = []
    for region, compute_url in spec.compute_urls.items():
        for interface in ("public", "internal", "admin"):
            identity_endpoints.append(_endpoint("identity", region, interface, spec.identity_url))
            compute_endpoints.append(_endpoint("compute", region, interface, compute_url))
    return [
        {
            "endpoints": identity_endpoints,
            "type": "identity",
            "id": stable_hex("service", "identity"),
            "name": "keystone",
        },
        {
            "endpoints": compute_endpoints,
            "type": "compute",
            "id": stable_hex("service", "compute"),
            "name": "nova",
        },
    ]


def _endpoint(service: str, region: str, interface: str, url: str) -> dict[str, str]:
    return {
        "id": stable_hex("endpoint", service, region, interface),
        "interface": interface,
        "region": region,
        "region_id": region,
        "url": url,
    }


def version_document(identity_url: str) -> dict[str, Any]:
    """The v3 entry of Keystone's version discovery."""
    return {
        "id": IDENTITY_VERSION,
        "status": "stable",
        "updated": IDENTITY_VERSION_UPDATED,
        "links": [{"rel": "self", "href": f"{identity_url}/v3/"}],
        "media-types": [{"base": "application/json", "type": IDENTITY_MEDIA_TYPE}],
    }


class KeystoneApi:
    """The Identity v3 HTTP routes under ``/identity`` of a Flask app."""

    def __init__(
        self,
        store: IdentityStore,
        identity_url: Callable[[], str],
        catalog: Callable[[], CatalogSpec],
    ) -> None:
        self.store = store
        self._identity_url = identity_url
        self._catalog = catalog

    def register(self, app: Flask) -> None:
        """Add the routes and the error handler."""
        add = app.add_url_rule
        add("/identity", "ks_versions", self.versions, strict_slashes=False)
        add("/identity/v3", "ks_v3", self.version_v3, strict_slashes=False)
        add("/identity/v3/auth/tokens", "ks_issue", self.issue, methods=["POST"])
        add("/identity/v3/auth/tokens", "ks_check", self.check, methods=["GET", "HEAD"])
        add("/identity/v3/auth/tokens", "ks_revoke", self.revoke, methods=["DELETE"])
        add("/identity/v3/auth/projects", "ks_auth_projects", self.auth_projects)
        add("/identity/v3/auth/catalog", "ks_auth_catalog", self.auth_catalog)
        add("/identity/v3/projects", "ks_projects", self.list_projects)
        app.register_error_handler(IdentityError, self.render_error)

    # -- helpers -------------------------------------------------------------------------
    def render_error(self, exc: IdentityError) -> Response:
        """JSON error body; a 401 names the Keystone to authenticate against."""
        response = json_response(exc.body(), exc.status)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = f'Keystone uri="{self._identity_url()}/v3"'
        return response

    def _caller(self) -> Token:
        token = self.store.validate(request.headers.get("X-Auth-Token"))
        if token is None:
            raise IdentityError(401, UNAUTHORIZED_MESSAGE)
        return token

    # -- routes --------------------------------------------------------------------------
    def versions(self) -> Response:
        """``GET /identity``: 300 with the list of versions."""
        doc = {"versions": {"values": [version_document(self._identity_url())]}}
        return json_response(doc, 300)

    def version_v3(self) -> Response:
        """``GET /identity/v3``: the v3 version document."""
        return json_response({"version": version_document(self._identity_url())}, 200)

    def issue(self) -> Response:
        """``POST /v3/auth/tokens``: 201 with ``X-Subject-Token``."""
        body = request.get_json(silent=True)
        if body is None:
            raise IdentityError(400, _expecting("auth", "request body"))
        token = self.store.authenticate(body)
        catalog = None if "nocatalog" in request.args else self._catalog()
        response = json_response(self.store.token_body(token, catalog), 201)
        response.headers["X-Subject-Token"] = token.id
        response.headers["Vary"] = "X-Auth-Token"
        return response

    def check(self) -> Response:
        """``GET|HEAD /v3/auth/tokens``: validate ``X-Subject-Token``."""
        self._caller()
        subject = self.store.validate(request.headers.get("X-Subject-Token"))
        if subject is None:
            # Keystone names the token in this message; a simulator must not echo secrets.
            raise IdentityError(404, "Could not find token.")
        catalog = None if "nocatalog" in request.args else self._catalog()
        response = json_response(self.store.token_body(subject, catalog), 200)
        response.headers["X-Subject-Token"] = subject.id
        return response

    def revoke(self) -> Response:
        """``DELETE /v3/auth/tokens``: revoke ``X-Subject-Token``."""
        self._caller()
        if not self.store.revoke(request.headers.get("X-Subject-Token", "")):
            raise IdentityError(404, "Could not find token.")
        return Response(status=204)

    def auth_projects(self) -> Response:
        """``GET /v3/auth/projects``: projects the caller has a role on."""
        token = self._caller()
        user = self.store.user(token.user_id)
        url = self._identity_url()
        projects = [
            self.store.project_document(p, url)
            for p in self.store.projects()
            if user is not None and p.id in user.roles
        ]
        links = {"self": f"{url}/v3/auth/projects", "previous": None, "next": None}
        return json_response({"links": links, "projects": projects}, 200)

    def auth_catalog(self) -> Response:
        """``GET /v3/auth/catalog``: the catalog of the caller's token."""
        token = self._caller()
        catalog = catalog_document(self._catalog()) if token.project_id else []
        links = {"self": f"{self._identity_url()}/v3/auth/catalog", "previous": None, "next": None}
        return json_response({"catalog": catalog, "links": links}, 200)

    def list_projects(self) -> Response:
        """``GET /v3/projects`` (admin only, optional ``name`` filter)."""
        token = self._caller()
        if not token.is_admin:
            raise IdentityError(
                403,
                "You are not authorized to perform the requested action: identity:list_projects.",
            )
        url = self._identity_url()
        name, domain_id = request.args.get("name"), request.args.get("domain_id")
        projects = [
            self.store.project_document(p, url)
            for p in self.store.projects()
            if (name is None or p.name == name) and (domain_id is None or p.domain_id == domain_id)
        ]
        query = f"?{request.query_string.decode()}" if request.query_string else ""
        links = {"self": f"{url}/v3/projects{query}", "previous": None, "next": None}
        return json_response({"links": links, "projects": projects}, 200)


def json_response(body: Any, status: int) -> Response:
    """A JSON response (``json.dumps`` directly: large server lists stay cheap)."""
    return Response(json.dumps(body), status=status, content_type="application/json")
