"""A&AI simulator: the cloud-region subset of ONAP aai-resources, with its real error bodies.

Serves ``/aai/{vN|latest}/cloud-infrastructure/cloud-regions[/cloud-region/{o}/{r}
[/esr-system-info-list[/esr-system-info/{id}]]]`` and ``/aai/util/echo`` the way
``reference/aai/FACTS.md`` describes aai-resources: the same request checks in the same order
(headers, Basic auth, version), the same status codes and the same error bodies, field gaps by
schema version, depth rules, property filters, paging, and ``resource-version`` concurrency.
``cloud-extra-info`` is stored and returned as the exact string a client wrote.

Besides HTTP, ``AaiSim`` is a thread-safe Python handle for tests (``load``, ``put_region``,
``set_extra_info``, ``set_credentials``, ``down``/``up``...), and the same operations are
reachable under ``/_sim/aai/...`` for people running ``vesagent sim``.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

from flask import Response, g, request
from werkzeug.datastructures import Headers, MultiDict

from vesagent.sim.base import FaultRule, SimServer

# --------------------------------------------------------------------------------------------
# Schema: the cloud-region and esr-system-info properties of the OXM files v11..v32, in OXM
# order (A&AI marshals JSON in that order), with the versions that have them.
# --------------------------------------------------------------------------------------------

LAST_VERSION = 32


@dataclass(frozen=True)
class Prop:
    """One OXM property: its name, the schema versions that have it, and its JSON kind."""

    name: str
    since: int = 8
    until: int = LAST_VERSION
    kind: str = "string"  # string | boolean | integer | container

    def in_version(self, version: int) -> bool:
        """Whether schema ``v{version}`` has this property."""
        return self.since <= version <= self.until


REGION_SCALARS: tuple[Prop, ...] = (
    Prop("cloud-owner"),
    Prop("cloud-region-id"),
    Prop("cloud-type"),
    Prop("owner-defined-type"),
    Prop("cloud-region-version"),
    Prop("identity-url"),
    Prop("cloud-zone"),
    Prop("complex-name"),
    Prop("sriov-automation", since=11),
    Prop("cloud-extra-info", since=11),
    Prop("cloud-epa-caps", since=11, until=13),
    Prop("cloud-region-number", since=21, kind="integer"),
    Prop("cloud-function", since=21),
    Prop("cloud-role", since=21),
    Prop("ops-note", since=21),
    Prop("cloud-region-number-definition", since=21),
    Prop("status", since=21),
    Prop("upgrade-cycle", since=15),
    Prop("resource-version"),
    Prop("orchestration-disabled", since=16, kind="boolean"),
    Prop("in-maint", since=16, kind="boolean"),
    Prop("data-owner", since=22),
    Prop("data-source", since=22),
    Prop("data-source-version", since=22),
)

REGION_CHILDREN: tuple[Prop, ...] = tuple(
    Prop(name, since=since, kind="container")
    for name, since in (
        ("volume-groups", 8),
        ("tenants", 8),
        ("flavors", 8),
        ("group-assignments", 8),
        ("snapshots", 8),
        ("images", 8),
        ("dvs-switches", 8),
        ("oam-networks", 8),
        ("availability-zones", 8),
        ("relationship-list", 8),
        ("vip-ipv4-address-list", 11),
        ("vip-ipv6-address-list", 11),
        ("vlan-ranges", 14),
        ("host-aggregates", 21),
        ("activities", 21),
        ("validation-audits", 21),
        ("hpa-capabilities", 12),
        ("esr-system-info-list", 11),
    )
)

ESR_SCALARS: tuple[Prop, ...] = (
    Prop("esr-system-info-id"),
    Prop("system-name"),
    Prop("type"),
    Prop("vendor"),
    Prop("version"),
    Prop("service-url"),
    Prop("user-name"),
    Prop("password"),
    Prop("system-type"),
    Prop("protocol"),
    Prop("ssl-cacert"),
    Prop("ssl-insecure", kind="boolean"),
    Prop("ip-address"),
    Prop("port"),
    Prop("cloud-domain"),
    Prop("default-tenant"),
    Prop("passive", kind="boolean"),
    Prop("remote-path"),
    Prop("system-status"),
    Prop("openstack-region-id", since=14),
    Prop("data-owner", since=22),
    Prop("data-source", since=22),
    Prop("data-source-version", since=22),
    Prop("resource-version"),
)

REL = "relationship-list"
ESR_LIST = "esr-system-info-list"
ESR = "esr-system-info"
RV = "resource-version"
# requiredProps with defaultValue=false from v16: written through as false and always shown.
DEFAULT_FALSE = ("orchestration-disabled", "in-maint")
DEFAULT_FALSE_SINCE = 16
ESR_REQUIRED = ("esr-system-info-id", "user-name", "password", "system-type")
MAXIMUM_DEPTH = 10000  # what depth=all means (AAIProperties.MAXIMUM_DEPTH)
# Query parameters that are not property filters (ResourcesService.removeNonFilterableParams).
NON_FILTER_PARAMS = frozenset(
    {
        "depth",
        "cleanup",
        "nodes-only",
        "format",
        "resultIndex",
        "resultSize",
        "includeTotalCount",
        "skip-related-to",
    }
)
REGIONS_PATH = "cloud-infrastructure/cloud-regions"

_REGION_KNOWN = frozenset(p.name for p in REGION_SCALARS + REGION_CHILDREN)
_ESR_KNOWN = frozenset(p.name for p in ESR_SCALARS) | {REL}


def _scalars(props: tuple[Prop, ...], version: int) -> dict[str, Prop]:
    return {p.name: p for p in props if p.in_version(version)}


_BOOLEAN_TEXT = {"true": True, "1": True, "false": False, "0": False}
_SCHEMAS = {"cloud-region": REGION_SCALARS, ESR: ESR_SCALARS}


def typed_value(prop: Prop, value: Any) -> Any:
    """A written value as A&AI stores it: typed by the OXM schema, not as the client sent it.

    A&AI unmarshals a body into its OXM types, so onapsdk's ``"True"``/``"False"`` strings
    become JSON booleans (and ``"5"`` an integer): a later ``?in-maint=true`` filter then
    finds the region. ValueError names the property when the text is no such value.
    """
    if prop.kind == "boolean" and not isinstance(value, bool):
        text = str(value).strip().lower() if isinstance(value, str | int) else None
        if text not in _BOOLEAN_TEXT:
            raise ValueError(f"{prop.name}: {value!r} is not a boolean (true or false)")
        return _BOOLEAN_TEXT[text]
    if prop.kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        text = value.strip() if isinstance(value, str) else ""
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError(f"{prop.name}: {value!r} is not an integer")
        return int(text)
    return value


def typed_props(node_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with each schema-typed scalar of ``node_type`` converted by ``typed_value``.

    Keys outside the schema (children, unknown names) pass unchanged: other checks own them.
    """
    schema = {p.name: p for p in _SCHEMAS[node_type]}
    return {
        key: typed_value(schema[key], value) if key in schema and value is not None else value
        for key, value in data.items()
    }


# --------------------------------------------------------------------------------------------
# Errors: the entries of aai-resources' error.properties the subset can produce, and the body
# ErrorLogHelper.getRESTAPIErrorResponse builds from them.
# Format: key=disposition:category:severity:errorCode:http:restErrorCode:text
# --------------------------------------------------------------------------------------------

_ERROR_TABLE = """
AAI_3000=5:2:INFO:3000:400:3000:Invalid input performing %1 on %2
AAI_3001=5:6:INFO:3001:404:3001:Resource not found for %1 using id %2
AAI_3012=5:6:WARN:3012:400:3012:Unrecognized AAI function
AAI_3016=5:6:INFO:3007:400:3016:Request uri is not valid, please check the version %1
AAI_3017=5:6:INFO:3007:400:3016:Request uri is not valid, please check the uri %1
AAI_3300=5:1:WARN:3300:403:3300:Unauthorized
AAI_3303=5:1:WARN:3303:403:3300:Too many objects would be returned by this request, \
please refine your request and retry
AAI_4009=4:0:WARN:4009:400:3000:Invalid X-FromAppId in header
AAI_4010=4:0:WARN:4010:400:3000:Invalid X-TransactionId in header
AAI_4014=4:0:WARN:4014:400:3000:Invalid Accept header
AAI_4016=4:0:WARN:4016:400:3000:The depth parameter must be a number or the string "all"
AAI_6114=5:4:INFO:6114:404:3001:Node Not Found
AAI_6130=5:4:WARN:6130:412:3000:Precondition Required
AAI_6131=5:4:WARN:6131:412:3000:Precondition Failed
AAI_6135=5:4:WARN:6135:412:3000:Resource version specified on create
"""


@dataclass(frozen=True)
class ErrorDef:
    """One line of error.properties."""

    disposition: str
    category: str
    error_code: str
    http: int
    rest_code: str
    text: str

    @property
    def code_string(self) -> str:
        """``ErrorObject.getErrorCodeString``: ``ERR.`` only for disposition 5."""
        prefix = "ERR." if self.disposition == "5" else ""
        return f"{prefix}{self.disposition}.{self.category}.{self.error_code}"


def _parse_error_table(text: str) -> dict[str, ErrorDef]:
    table: dict[str, ErrorDef] = {}
    for line in text.strip().splitlines():
        key, spec = line.split("=", 1)
        disp, cat, _sev, code, http, rest, message = spec.split(":", 6)
        table[key] = ErrorDef(disp, cat, code, int(http), rest, message.strip())
    return table


ERRORS = _parse_error_table(_ERROR_TABLE)


class AaiException(Exception):
    """An ``AAIException``: an error key plus the detail that follows ``text:`` in the body.

    ``template`` holds the leading variables (HTTP method and path); None lets the request
    handler fill in the ones of the current request.
    """

    def __init__(
        self, key: str, detail: str | None = None, template: Sequence[str | None] | None = None
    ) -> None:
        super().__init__(f"{key}: {detail}" if detail else key)
        self.key = key
        self.detail = detail
        self.template = None if template is None else list(template)


def error_body(
    key: str, template: list[str | None], detail: str | None = None
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of ``ErrorLogHelper.getRESTAPIErrorResponse`` in JSON form."""
    eo = ERRORS[key]
    rest = ERRORS.get(f"AAI_{eo.rest_code}", eo)
    n_vars = rest.text.count("%")
    variables: list[str | None] = list(template)
    while len(variables) < n_vars:
        variables.append("null")
    variables.insert(n_vars, f"{eo.text}:{detail}" if detail else eo.text)
    variables.insert(n_vars + 1, eo.code_string)
    policy = eo.category == "1"
    inner = {
        "messageId": ("POL" if policy else "SVC") + eo.rest_code,
        "text": f"{rest.text} (msg=%{n_vars + 1}) (ec=%{n_vars + 2})",
        "variables": variables,
    }
    return eo.http, {"requestError": {"policyException" if policy else "serviceException": inner}}


# --------------------------------------------------------------------------------------------
# Media types: A&AI answers XML unless the client asks for JSON only.
# --------------------------------------------------------------------------------------------


def _media_types(accept: str | None) -> list[str]:
    """The Accept types, most specific first, as JAX-RS ``getAcceptableMediaTypes`` sorts."""
    raw = (accept or "").strip()
    # RequestTransactionLogging replaces a missing or */* Accept (and text/plain) with XML.
    if not raw or raw == "*/*" or "text/plain" in raw:
        return ["application/xml"]
    types = [part.split(";", 1)[0].strip().lower() for part in raw.split(",") if part.strip()]
    return sorted(types, key=lambda t: t.count("*"))


def _compatible(media: str, target: str) -> bool:
    kind, _, sub = media.partition("/")
    t_kind, _, t_sub = target.partition("/")
    return kind in ("*", t_kind) and sub in ("*", t_sub)


def wants_xml(accept: str | None) -> bool:
    """Success bodies are XML when any acceptable type is XML-compatible (HttpEntry)."""
    return any(_compatible(t, "application/xml") for t in _media_types(accept))


def error_media(accept: str | None) -> tuple[bool, bool]:
    """(xml, bad_accept) for an error body, following ErrorLogHelper's loop over types."""
    usable = [
        t
        for t in _media_types(accept)
        if _compatible(t, "application/xml") or _compatible(t, "application/json")
    ]
    if not usable:
        return False, True
    return _compatible(usable[-1], "application/xml"), False


def _xml_element(parent: ElementTree.Element, tag: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            _xml_element(parent, tag, item)
        return
    child = ElementTree.SubElement(parent, tag)
    if isinstance(value, dict):
        for key, item in value.items():
            _xml_element(child, key, item)
    elif isinstance(value, bool):
        child.text = "true" if value else "false"
    else:
        child.text = str(value)


def to_xml(root: str, body: Mapping[str, Any], namespace: str | None = None) -> bytes:
    """Render a JSON-shaped body as A&AI's XML (lists become repeated elements)."""
    element = ElementTree.Element(root, {"xmlns": namespace} if namespace else {})
    for key, value in body.items():
        _xml_element(element, key, value)
    return ElementTree.tostring(element, encoding="utf-8", xml_declaration=True)


def to_json(body: Any) -> bytes:
    """Compact UTF-8 JSON, as Jackson writes it."""
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates cannot be UTF-8: fall back to escapes
        return json.dumps(body, separators=(",", ":")).encode("ascii")


# --------------------------------------------------------------------------------------------
# Stored nodes
# --------------------------------------------------------------------------------------------


@dataclass
class _Esr:
    """A stored esr-system-info vertex (scalars include its own resource-version)."""

    props: dict[str, Any]
    vertex_id: int
    relationships: Any = None


@dataclass
class _Region:
    """A stored cloud-region vertex with its relationships and child containers."""

    props: dict[str, Any]
    vertex_id: int
    relationships: Any = None
    esrs: list[_Esr] = field(default_factory=list)
    children: dict[str, Any] = field(default_factory=dict)  # other containers, opaque


def _render_esr(esr: _Esr, version: int, nodes_only: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for prop in ESR_SCALARS:
        if prop.in_version(version) and prop.name in esr.props:
            out[prop.name] = esr.props[prop.name]
    if esr.relationships is not None and not nodes_only:
        out[REL] = esr.relationships
    return out


def _render_region(region: _Region, version: int, depth: int, nodes_only: bool) -> dict[str, Any]:
    """The JSON view of a region for schema ``version`` at ``depth`` (no copies: serialize it
    while holding the store lock)."""
    out: dict[str, Any] = {}
    props = region.props
    for prop in REGION_SCALARS:
        if not prop.in_version(version):
            continue
        if prop.name in props:
            out[prop.name] = props[prop.name]
        elif prop.name in DEFAULT_FALSE:
            out[prop.name] = False
    for child in REGION_CHILDREN:
        if not child.in_version(version):
            continue
        if child.name == REL:
            if region.relationships is not None and not nodes_only:
                out[REL] = region.relationships
        elif depth >= 1 and child.name == ESR_LIST:
            if region.esrs:
                out[ESR_LIST] = {ESR: [_render_esr(e, version, nodes_only) for e in region.esrs]}
        elif depth >= 1 and child.name in region.children:
            out[child.name] = region.children[child.name]
    return out


def _raw_region(region: _Region) -> dict[str, Any]:
    """Everything stored for a region, across schema versions (deep copy)."""
    out: dict[str, Any] = {
        p.name: region.props[p.name] for p in REGION_SCALARS if p.name in region.props
    }
    if region.relationships is not None:
        out[REL] = region.relationships
    for child in REGION_CHILDREN:
        if child.name in region.children:
            out[child.name] = region.children[child.name]
    if region.esrs:
        out[ESR_LIST] = {ESR: [_render_esr(e, LAST_VERSION, False) for e in region.esrs]}
    return copy.deepcopy(out)


def _matches(value: Any, prop: Prop, wanted: list[str]) -> bool:
    """A filter value list matches when one of them equals the stored value, typed by schema
    (``castValueAccordingToSchema``)."""
    if value is None:
        return False
    for raw in wanted:
        if prop.kind == "boolean":
            if isinstance(value, bool) and value == (raw.lower() == "true"):
                return True
        elif prop.kind == "integer":
            if re.fullmatch(r"[+-]?\d+", raw) and str(value) == str(int(raw)):
                return True
        elif (raw == value) if isinstance(value, str) else (raw == json.dumps(value)):
            return True
    return False


# --------------------------------------------------------------------------------------------
# Request parsing helpers (pure)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """Which node of the subset a URI names."""

    kind: str  # regions | region | esr-list | esr
    owner: str = ""
    region_id: str = ""
    esr_id: str = ""

    @property
    def region_uri(self) -> str:
        """The region's path as clients write it (no version, no leading slash)."""
        return f"{REGIONS_PATH}/cloud-region/{self.owner}/{self.region_id}"


def parse_route(uri: str) -> Route | None:
    """Map a path below ``/aai/{version}/`` to a Route, or None outside the subset."""
    segs = uri.split("/")
    if segs[:2] != REGIONS_PATH.split("/") or any(not s for s in segs):
        return None
    if len(segs) == 2:
        return Route("regions")
    if len(segs) < 5 or segs[2] != "cloud-region":
        return None
    owner, region_id = segs[3], segs[4]
    if len(segs) == 5:
        return Route("region", owner, region_id)
    if segs[5] != ESR_LIST:
        return None
    if len(segs) == 6:
        return Route("esr-list", owner, region_id)
    if len(segs) == 8 and segs[6] == ESR:
        return Route("esr", owner, region_id, segs[7])
    return None


_ROUTE_PATTERN = (*REGIONS_PATH.split("/"), "cloud-region", "*", "*", ESR_LIST, ESR, "*")


def unsupported_part(uri: str) -> str:
    """The first path segment outside the subset, for the 'Unrecognized AAI object' error."""
    segs = uri.split("/")
    for seg, expected in zip(segs, _ROUTE_PATTERN, strict=False):
        if not seg or expected not in ("*", seg):
            return seg
    return segs[len(_ROUTE_PATTERN)] if len(segs) > len(_ROUTE_PATTERN) else segs[-1]


def parse_depth(raw: str | None) -> int:
    """``HttpEntry.setDepth`` for v10+: absent means 0, '' and 'all' mean everything."""
    if raw is None:
        return 0
    if raw in ("", "all"):
        return MAXIMUM_DEPTH
    if not re.fullmatch(r"[+-]?\d+", raw):
        raise AaiException("AAI_4016")
    return int(raw)


def parse_paging(args: MultiDict[str, str]) -> tuple[int, int] | None:
    """(resultIndex, resultSize) when both are integers >= 1, else no paging."""
    index, size = args.get("resultIndex", ""), args.get("resultSize", "")
    if not (index.isdigit() and size.isdigit()):
        return None
    if int(index) < 1 or int(size) < 1:
        return None
    return int(index), int(size)


def _partner_name(headers: Mapping[str, str] | Headers) -> str | None:
    """HeaderValidation.getPartnerName: X-SourceOfTruth, X-ONAP-PartnerName, X-FromAppId."""
    if headers.get("X-SourceOfTruth"):
        return headers["X-SourceOfTruth"]
    partner = headers.get("X-ONAP-PartnerName") or None
    if partner:
        parts = partner.split(".")
        if len(parts) > 1:
            if parts[0].upper() != "AAI":
                return parts[0]
            partner = None  # an internal AAI call: fall back to X-FromAppId
    return partner or headers.get("X-FromAppId") or None


def _request_id(headers: Mapping[str, str] | Headers) -> str | None:
    """HeaderValidation.getRequestId: the first of the four request-id headers."""
    for name in ("X-ONAP-RequestID", "X-RequestID", "X-TransactionId", "X-ECOMP-RequestID"):
        if headers.get(name):
            return headers[name]
    return None


def _check_required(props: Mapping[str, Any], required: Iterable[str]) -> list[str]:
    return [
        f"Missing required property: {name}" for name in required if props.get(name) in (None, "")
    ]


# --------------------------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------------------------

DEFAULT_VERSIONS = tuple(f"v{n}" for n in range(11, LAST_VERSION + 1))


class AaiSim(SimServer):
    """A fake A&AI (cloud-regions subset) on 127.0.0.1, with a thread-safe Python handle."""

    name = "aai"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        versions: Iterable[str] = DEFAULT_VERSIONS,
        default_version: str = "v32",
        username: str = "AAI",
        password: str = "AAI",
    ) -> None:
        super().__init__(host, port)
        self.versions = frozenset(versions)
        self.default_version = default_version
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._auth_header = f"Basic {token}"
        self._lock = threading.RLock()
        self._regions: dict[tuple[str, str], _Region] = {}
        self._last_stamp = 0
        self._next_vertex = 4096
        self._down_rule: FaultRule | None = None
        self._down_mode: str | None = None
        self._down_lock = threading.Lock()
        self._released = threading.Event()
        self._released.set()
        self._hang_limit = 0.0
        self.app.before_request(self._hold_if_hanging)
        self.app.after_request(self._add_txid)
        self.app.add_url_rule(
            "/aai/<path:subpath>",
            "aai",
            self._http_aai,
            methods=["GET", "PUT", "PATCH", "DELETE", "POST"],
        )
        self.app.add_url_rule("/_sim/aai/regions", "sim_aai_list", self._http_list)
        self.app.add_url_rule("/_sim/aai/regions", "sim_aai_load", self._http_load, methods=["PUT"])
        self.app.add_url_rule(
            "/_sim/aai/regions/<owner>/<region_id>/cloud-extra-info",
            "sim_aai_extra",
            self._http_extra_info,
            methods=["PUT", "DELETE"],
        )
        self.app.add_url_rule("/_sim/aai/down", "sim_aai_down", self._http_down, methods=["POST"])
        self.app.add_url_rule("/_sim/aai/up", "sim_aai_up", self._http_up, methods=["POST"])

    # -- Python handle -----------------------------------------------------------------------
    def load(self, data: Mapping[str, Any]) -> None:
        """Replace every region with ``data`` = ``{"cloud-region": [region, ...]}``.

        Regions keep the ``resource-version`` they carry (else get a fresh one); a region may
        hold ``"esr-system-info-list": {"esr-system-info": [...]}``. Unknown keys raise
        ValueError, so a typo in test data does not pass silently.
        """
        regions = data.get("cloud-region")
        if not isinstance(regions, list):
            raise ValueError('expected {"cloud-region": [...]}')
        with self._lock:
            built = [self._build_region(r, keep_versions=True) for r in regions]
            self._regions = {self._key_of(r): r for r in built}

    def load_file(self, path: str | Path) -> None:
        """``load`` the JSON file at ``path``."""
        self.load(json.loads(Path(path).read_text(encoding="utf-8")))

    def put_region(self, region: Mapping[str, Any]) -> str:
        """Create or replace a region, like an HTTP PUT without the version check.

        Children follow PUT: an ``esr-system-info-list`` in ``region`` replaces the stored
        one, its absence keeps it. Returns the new resource-version.
        """
        with self._lock:
            new = self._build_region(region, keep_versions=False)
            key = self._key_of(new)
            old = self._regions.get(key)
            if old is not None:
                new.vertex_id = old.vertex_id
                if ESR_LIST not in region:
                    new.esrs = old.esrs
                if REL not in region:
                    new.relationships = old.relationships
                new.children = {**old.children, **new.children}
            self._regions[key] = new
            return str(new.props[RV])

    def region(self, owner: str, region_id: str) -> dict[str, Any] | None:
        """Everything stored for one region (deep copy, children included), or None."""
        with self._lock:
            found = self._regions.get((owner, region_id))
            return _raw_region(found) if found else None

    def regions(self) -> list[dict[str, Any]]:
        """Every region as ``region()`` returns it, in insertion order."""
        with self._lock:
            return [_raw_region(r) for r in self._regions.values()]

    def set_extra_info(self, owner: str, region_id: str, text: str | None) -> str:
        """Set (None: remove) a region's ``cloud-extra-info`` verbatim; returns the new
        resource-version. KeyError if the region does not exist."""
        with self._lock:
            found = self._regions[(owner, region_id)]
            if text is None:
                found.props.pop("cloud-extra-info", None)
            else:
                found.props["cloud-extra-info"] = str(text)
            found.props[RV] = self._stamp()
            return str(found.props[RV])

    def set_credentials(self, owner: str, region_id: str, esr: Mapping[str, Any]) -> str:
        """Create or replace the region's first esr-system-info; only the child is re-stamped.

        Returns the child's new resource-version. KeyError if the region does not exist.
        """
        with self._lock:
            found = self._regions[(owner, region_id)]
            fallback = found.esrs[0].props["esr-system-info-id"] if found.esrs else None
            child = self._build_esr(esr, keep_versions=False, default_id=fallback)
            if found.esrs:
                child.vertex_id = found.esrs[0].vertex_id
                found.esrs[0] = child
            else:
                found.esrs.append(child)
            return str(child.props[RV])

    def delete_region(self, owner: str, region_id: str) -> bool:
        """Remove a region and its children; False if it did not exist."""
        with self._lock:
            return self._regions.pop((owner, region_id), None) is not None

    def down(self, mode: str = "503", *, seconds: float = 300.0) -> None:
        """Make A&AI unavailable: ``503`` answers every /aai request with 503, ``refuse``
        closes the socket, ``hang`` holds requests (at most ``seconds``) until ``up()``."""
        if mode not in ("503", "refuse", "hang"):
            raise ValueError(f"unknown mode {mode!r}: use 503, refuse or hang")
        with self._down_lock:
            self._up_locked()
            self._down_locked(mode, seconds)

    def _down_locked(self, mode: str, seconds: float) -> None:
        self._down_mode = mode
        if mode == "503":
            self._down_rule = self.inject(status=503, path_prefix="/aai", count=None)
        elif mode == "refuse":
            self.refuse()
        else:
            # Not base.hang(): a plain sleep could not be cut short by up().
            self._hang_limit = seconds
            self._released.clear()

    def up(self) -> None:
        """Undo ``down()``: remove its fault rule, listen again, release held requests."""
        with self._down_lock:
            self._up_locked()

    def _up_locked(self) -> None:
        rule, self._down_rule = self._down_rule, None
        if rule is not None:
            # Remove only our own rule (by identity); faults injected by tests stay.
            with self._faults_lock:
                self._faults[:] = [r for r in self._faults if r is not rule]
        if self._down_mode == "refuse":
            self.accept()
        self._released.set()
        self._down_mode = None

    @staticmethod
    def make_region(
        owner: str,
        region_id: str,
        *,
        extra_info: str | None,
        keystone_url: str,
        username: str,
        password: str,
        project: str,
        domain: str = "Default",
        openstack_region_id: str | None = None,
        cloud_type: str = "openstack",
    ) -> dict[str, Any]:
        """A realistic region as ESR registers it, with one VIM esr-system-info.

        The esr-system-info-id is derived from owner and region, so test data is stable.
        """
        esr: dict[str, Any] = {
            "esr-system-info-id": str(
                uuid.uuid5(uuid.NAMESPACE_URL, f"aai-sim/{owner}/{region_id}")
            ),
            "system-name": f"{owner}_{region_id}",
            "type": cloud_type,
            "vendor": "OpenStack",
            "version": "v3",
            "service-url": keystone_url,
            "user-name": username,
            "password": password,
            "system-type": "VIM",
            "ssl-insecure": True,
            "cloud-domain": domain,
            "default-tenant": project,
        }
        if openstack_region_id is not None:
            esr["openstack-region-id"] = openstack_region_id
        region: dict[str, Any] = {
            "cloud-owner": owner,
            "cloud-region-id": region_id,
            "cloud-type": cloud_type,
            "owner-defined-type": "t1",
            "cloud-region-version": "pike",
            "identity-url": keystone_url,
            "cloud-zone": "z1",
            "complex-name": "clli1",
            "sriov-automation": "false",
        }
        if extra_info is not None:
            region["cloud-extra-info"] = extra_info
        region.update({"orchestration-disabled": False, "in-maint": False})
        region[ESR_LIST] = {ESR: [esr]}
        return region

    # -- building stored nodes (caller holds the lock) --------------------------------------
    def _stamp(self) -> str:
        """Epoch milliseconds, strictly increasing even within one millisecond."""
        self._last_stamp = max(time.time_ns() // 1_000_000, self._last_stamp + 1)
        return str(self._last_stamp)

    def _vertex(self) -> int:
        self._next_vertex += 4096
        return self._next_vertex

    def _note_version(self, value: Any) -> None:
        # A loaded resource-version from the future must not be re-issued by _stamp().
        if isinstance(value, str) and value.isdigit():
            self._last_stamp = max(self._last_stamp, int(value))

    @staticmethod
    def _key_of(region: _Region) -> tuple[str, str]:
        return region.props["cloud-owner"], region.props["cloud-region-id"]

    def _build_esr(
        self, data: Mapping[str, Any], *, keep_versions: bool, default_id: str | None = None
    ) -> _Esr:
        unknown = sorted(set(data) - _ESR_KNOWN)
        if unknown:
            raise ValueError(f"unknown esr-system-info properties: {unknown}")
        props = {
            k: copy.deepcopy(v)
            for k, v in typed_props(ESR, data).items()
            if k != REL and v is not None
        }
        props.setdefault("esr-system-info-id", default_id or str(uuid.uuid4()))
        if keep_versions and props.get(RV):
            self._note_version(props[RV])
        else:
            props[RV] = self._stamp()
        return _Esr(props, self._vertex(), copy.deepcopy(data.get(REL)))

    def _build_region(self, data: Mapping[str, Any], *, keep_versions: bool) -> _Region:
        if not isinstance(data, Mapping):
            raise ValueError("a region must be a JSON object")
        unknown = sorted(set(data) - _REGION_KNOWN)
        if unknown:
            raise ValueError(f"unknown cloud-region properties: {unknown}")
        for key in ("cloud-owner", "cloud-region-id"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ValueError(f"a region needs a non-empty string {key!r}")
        scalar_names = {p.name for p in REGION_SCALARS}
        props = {
            k: copy.deepcopy(v)
            for k, v in typed_props("cloud-region", data).items()
            if k in scalar_names and v is not None
        }
        if keep_versions and props.get(RV):
            self._note_version(props[RV])
        else:
            props[RV] = self._stamp()
        region = _Region(props, self._vertex(), copy.deepcopy(data.get(REL)))
        esr_list = data.get(ESR_LIST) or {}
        entries = (esr_list.get(ESR) or []) if isinstance(esr_list, Mapping) else None
        if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
            raise ValueError(f'{ESR_LIST} must be {{"{ESR}": [objects]}}')
        region.esrs = [self._build_esr(e, keep_versions=keep_versions) for e in entries]
        for child in REGION_CHILDREN:
            if child.name not in (REL, ESR_LIST) and child.name in data:
                region.children[child.name] = copy.deepcopy(data[child.name])
        return region

    # -- fault knobs -------------------------------------------------------------------------
    def _hold_if_hanging(self) -> None:
        if not self._released.is_set() and not request.path.startswith("/_sim"):
            self._released.wait(self._hang_limit)

    def _add_txid(self, response: Response) -> Response:
        if g.get("aai_handled"):
            stamp = datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S:%f")[:-3]
            response.headers["X-AAI-TXID"] = f"0-aai-sim-{stamp}-{secrets.randbelow(99999)}"
        return response

    # -- HTTP: the A&AI API ------------------------------------------------------------------
    def _http_aai(self, subpath: str) -> Response:
        g.aai_handled = True
        accept = request.headers.get("Accept")
        try:
            return self._dispatch(subpath.rstrip("/"), accept)
        except AaiException as exc:
            return self._error_response(exc, exc.template or [], accept)

    def _error_response(
        self, exc: AaiException, template: list[str | None], accept: str | None
    ) -> Response:
        status, body = error_body(exc.key, template, exc.detail)
        xml, bad_accept = error_media(accept)
        if bad_accept:
            # ErrorLogHelper swaps in AAI_4014 but the status stays the original one.
            _, body = error_body("AAI_4014", template)
        if xml:
            # JAXB's Fault wraps each variable: <variables><variable>..</variable></variables>.
            inner = next(iter(body["requestError"].values()))
            inner["variables"] = {"variable": inner["variables"]}
            return Response(to_xml("Fault", body), status, content_type="application/xml")
        return Response(to_json(body), status, content_type="application/json")

    def _dispatch(self, subpath: str, accept: str | None) -> Response:
        method = request.method
        if (
            method == "POST"
            and request.headers.get("X-HTTP-Method-Override", "").upper() == "PATCH"
        ):
            method = "PATCH"
        # Pre-matching filters in aai-resources' priority order: headers, latest, auth, version.
        if not _partner_name(request.headers):
            raise AaiException("AAI_4009", template=[])
        if not _request_id(request.headers):
            raise AaiException("AAI_4010", template=[])
        if subpath == "util/echo":
            if method != "GET":
                raise AaiException("AAI_3012", template=[])
            body = b'{"status":"UP","groups":["liveness","readiness"]}'
            return Response(body, 200, content_type="application/json")
        if subpath == "latest" or subpath.startswith("latest/"):
            subpath = self.default_version + subpath[len("latest") :]
        if request.headers.get("Authorization") != self._auth_header:
            raise AaiException("AAI_3300", template=[])
        found = re.match(r"(v[1-9][0-9]*)(?:/|$)", subpath)
        if found is None:
            raise AaiException("AAI_3017", template=[method, subpath, None])
        if found.group(1) not in self.versions:
            raise AaiException("AAI_3016", template=[method, subpath, found.group(1)])
        call = _Call(
            method=method,
            version=int(found.group(1)[1:]),
            version_path=subpath,
            uri=subpath[found.end() :],
            args=request.args,
            xml=wants_xml(accept),
        )
        route = parse_route(call.uri)
        if route is None:
            raise AaiException(
                "AAI_3000",
                f"Unrecognized AAI object {unsupported_part(call.uri)}",
                [method, subpath],
            )
        handlers: dict[str, Callable[[_Call, Route], Response]] = {
            "GET": self._get,
            "PUT": self._put,
            "PATCH": self._patch,
            "DELETE": self._delete,
        }
        handler = handlers.get(method)
        if handler is None or (method != "GET" and route.kind in ("regions", "esr-list")):
            # Jersey's 405, which InvalidResponseStatus turns into 400 AAI_3012.
            raise AaiException("AAI_3012", template=[])
        try:
            return handler(call, route)
        except AaiException as exc:
            if exc.template is None:
                # Raised inside HttpEntry: method + path without the version.
                exc.template = [call.entry_method, call.uri]
            raise

    # GET ------------------------------------------------------------------------------------
    def _get(self, call: _Call, route: Route) -> Response:
        filters = {k: call.args.getlist(k) for k in call.args if k not in NON_FILTER_PARAMS}
        on_esr = route.kind in ("esr-list", "esr")
        schema = _scalars(ESR_SCALARS if on_esr else REGION_SCALARS, call.version)
        for key in filters:
            if key not in schema:
                raise AaiException(
                    "AAI_3000", f"property: {key} not found on {ESR if on_esr else 'cloud-region'}"
                )
        depth = parse_depth(call.args.get("depth"))
        if route.kind in ("regions", "esr-list") and depth > 0:
            # CloudRegions and EsrSystemInfoList carry maximumDepth=0 in the OXM.
            raise AaiException("AAI_3303")
        nodes_only = "nodes-only" in call.args
        fmt = call.args.get("format")
        if fmt not in (None, "count"):
            raise AaiException("AAI_3000", f"format {fmt} is not implemented by the simulator")
        with self._lock:
            nodes = self._select(call, route, filters, schema)
            if fmt == "count":
                kind = ESR if on_esr else "cloud-region"
                return self._ok({"results": [{kind: len(nodes)}] if nodes else []}, call, None)
            if not nodes:
                kind = ESR if on_esr else "cloud-region"
                raise AaiException("AAI_6114", f"No Node of type {kind} found at: {call.uri}")
            headers: dict[str, str] = {"vertex-id": str(nodes[0].vertex_id)}
            paging = parse_paging(call.args)
            if paging is not None:
                index, size = paging
                total = len(nodes)
                nodes = nodes[(index - 1) * size : index * size]
                if not nodes:
                    kind = ESR if on_esr else "cloud-region"
                    raise AaiException("AAI_6114", f"No Node of type {kind} found at: {call.uri}")
                headers["total-results"] = str(total)
                headers["total-pages"] = str(math.ceil(total / size))
            body, root = self._render(call, route, nodes, depth, nodes_only)
            return self._ok(body, call, root, headers)

    def _select(
        self, call: _Call, route: Route, filters: dict[str, list[str]], schema: dict[str, Prop]
    ) -> list[Any]:
        """The vertices a GET names, after property filters (caller holds the lock)."""
        if route.kind == "regions":
            candidates: list[Any] = list(self._regions.values())
        else:
            region = self._regions.get((route.owner, route.region_id))
            if region is None:
                return []
            if route.kind == "region":
                candidates = [region]
            elif route.kind == "esr-list":
                candidates = list(region.esrs)
            else:
                candidates = [
                    e for e in region.esrs if e.props["esr-system-info-id"] == route.esr_id
                ]
        if not filters:
            return candidates
        selected = []
        for node in candidates:
            shown = self._filter_view(node, call.version)
            if all(_matches(shown.get(k), schema[k], v) for k, v in filters.items()):
                selected.append(node)
        return selected

    @staticmethod
    def _filter_view(node: Any, version: int) -> dict[str, Any]:
        if isinstance(node, _Esr):
            return node.props
        view = dict(node.props)
        if version >= DEFAULT_FALSE_SINCE:
            for name in DEFAULT_FALSE:
                view.setdefault(name, False)
        return view

    @staticmethod
    def _render(
        call: _Call, route: Route, nodes: list[Any], depth: int, nodes_only: bool
    ) -> tuple[dict[str, Any], str]:
        if route.kind == "regions":
            items = [_render_region(r, call.version, 0, nodes_only) for r in nodes]
            return {"cloud-region": items}, "cloud-regions"
        if route.kind == "region":
            return _render_region(nodes[0], call.version, depth, nodes_only), "cloud-region"
        if route.kind == "esr-list":
            return {ESR: [_render_esr(e, call.version, nodes_only) for e in nodes]}, ESR_LIST
        return _render_esr(nodes[0], call.version, nodes_only), ESR

    def _ok(
        self,
        body: dict[str, Any],
        call: _Call,
        root: str | None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        if call.xml and root is not None:
            namespace = f"http://org.onap.aai.inventory/v{call.version}"
            data, ctype = to_xml(root, body, namespace), "application/xml"
        else:
            data, ctype = to_json(body), "application/json"
        return Response(data, 200, headers=headers, content_type=ctype)

    # Writes ---------------------------------------------------------------------------------
    def _payload(self, call: _Call, route: Route) -> dict[str, Any]:
        """The JSON object of a PUT/PATCH body, keys injected from the URI and checked."""
        ctype = (request.mimetype or "").lower()
        if call.method == "PATCH" and ctype != "application/merge-patch+json":
            raise _UnsupportedMediaError
        if call.method == "PUT" and ctype not in ("", "application/json", "text/plain"):
            raise _UnsupportedMediaError
        controller = [call.entry_method, call.version_path]
        try:
            body = json.loads(request.get_data().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AaiException(
                "AAI_3000", f"could not parse the payload: {exc}", controller
            ) from exc
        if not isinstance(body, dict):
            raise AaiException("AAI_3000", "the payload must be a JSON object", controller)
        keys = (
            {"esr-system-info-id": route.esr_id}
            if route.kind == "esr"
            else {"cloud-owner": route.owner, "cloud-region-id": route.region_id}
        )
        for name, value in keys.items():
            if body.get(name) is None:
                body[name] = value  # InjectKeysFromURI
            elif body[name] != value:
                raise AaiException("AAI_3000", "uri and payload keys don't match", controller)
        extra = body.get("cloud-extra-info")
        if route.kind == "region" and extra is not None and not isinstance(extra, str):
            raise AaiException(
                "AAI_3000", "cloud-extra-info must be a string (java.lang.String)", controller
            )
        if call.method == "PUT":
            missing = self._missing_required(body, route)
            if missing:
                raise AaiException("AAI_3000", ",".join(missing), controller)
        try:
            return self._typed_payload(body, route)
        except ValueError as exc:
            raise AaiException("AAI_3000", str(exc), controller) from exc

    @staticmethod
    def _typed_payload(body: dict[str, Any], route: Route) -> dict[str, Any]:
        """The body with its schema-typed scalars converted, embedded credentials included."""
        if route.kind == "esr":
            return typed_props(ESR, body)
        typed = typed_props("cloud-region", body)
        esr_list = body.get(ESR_LIST)
        if isinstance(esr_list, dict) and isinstance(esr_list.get(ESR), list):
            entries = [typed_props(ESR, e) if isinstance(e, dict) else e for e in esr_list[ESR]]
            typed[ESR_LIST] = {**esr_list, ESR: entries}
        return typed

    @staticmethod
    def _missing_required(body: dict[str, Any], route: Route) -> list[str]:
        """``validateRequired`` issues, plus the shape of an embedded esr-system-info-list."""
        if route.kind == "esr":
            return _check_required(body, ESR_REQUIRED)
        if body.get(ESR_LIST) is None:
            return []
        esr_list = body[ESR_LIST]
        entries = esr_list.get(ESR) if isinstance(esr_list, dict) else None
        if entries is None:
            entries = []
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            return [f'{ESR_LIST} must be {{"{ESR}": [objects]}}']
        missing: list[str] = []
        for entry in entries:
            missing.extend(_check_required(entry, ESR_REQUIRED))
        return missing

    @staticmethod
    def _object_uri(route: Route) -> str:
        """``Introspector.getURI()``: the object's own uriTemplate filled with its keys."""
        if route.kind == "esr":
            return f"/{ESR_LIST}/{ESR}/{quote(route.esr_id, safe='')}"
        owner, region_id = quote(route.owner, safe=""), quote(route.region_id, safe="")
        return f"/{REGIONS_PATH}/cloud-region/{owner}/{region_id}"

    @staticmethod
    def _check_version(action: str, current: str | None, given: str | None, uri: str) -> None:
        """``DBSerializer.verifyResourceVersion`` (the checks are on by default)."""
        current, given = current or "", given or ""
        if current == given:
            return
        if action == "create" and given:
            raise AaiException("AAI_6135", f"resource-version passed for {action} of {uri}")
        if not given:
            raise AaiException("AAI_6130", f"resource-version not passed for {action} of {uri}")
        raise AaiException("AAI_6131", f"resource-version MISMATCH for {action} of {uri}")

    def _put(self, call: _Call, route: Route) -> Response:
        try:
            body = self._payload(call, route)
        except _UnsupportedMediaError:
            return Response(b"", 415)
        uri = self._object_uri(route)
        with self._lock:
            region = self._regions.get((route.owner, route.region_id))
            if route.kind == "esr":
                if region is None:
                    raise AaiException(
                        "AAI_6114", f"No Node of type cloud-region found at: {route.region_uri}"
                    )
                return self._put_esr(call, region, route, body, uri)
            return self._put_region(call, region, route, body, uri)

    def _put_region(
        self, call: _Call, region: _Region | None, route: Route, body: dict[str, Any], uri: str
    ) -> Response:
        schema = _scalars(REGION_SCALARS, call.version)
        given = body.get(RV)
        if region is None:
            self._check_version("create", None, given, uri)
        else:
            self._check_version("update", region.props.get(RV), given, uri)
        # Properties the caller's schema version does not know are left as they are.
        props = {k: v for k, v in (region.props if region else {}).items() if k not in schema}
        props.update({k: v for k, v in body.items() if k in schema and v is not None})
        if call.version >= DEFAULT_FALSE_SINCE:
            for name in DEFAULT_FALSE:
                props.setdefault(name, False)
        props[RV] = self._stamp()
        if region is None:
            region = _Region(props, self._vertex())
            self._regions[(route.owner, route.region_id)] = region
            status = 201
        else:
            region.props = props
            status = 200
        # "A Warning About PUT and Lists": a list in the body replaces, an absent (or null)
        # one leaves what is stored.
        if body.get(REL) is not None:
            region.relationships = body[REL]
        children = _scalars(REGION_CHILDREN, call.version)
        for name in children:
            if name not in (REL, ESR_LIST) and body.get(name) is not None:
                region.children[name] = body[name]
        if body.get(ESR_LIST) is not None and ESR_LIST in children:
            entries = body[ESR_LIST].get(ESR) or []
            region.esrs = [self._new_esr(entry, call.version) for entry in entries]
        return _empty(status, call, region.vertex_id)

    def _new_esr(self, entry: dict[str, Any], version: int) -> _Esr:
        schema = _scalars(ESR_SCALARS, version)
        props = {k: v for k, v in entry.items() if k in schema and v is not None}
        props[RV] = self._stamp()
        return _Esr(props, self._vertex(), entry.get(REL))

    def _put_esr(
        self, call: _Call, region: _Region, route: Route, body: dict[str, Any], uri: str
    ) -> Response:
        index = next(
            (i for i, e in enumerate(region.esrs) if e.props["esr-system-info-id"] == route.esr_id),
            None,
        )
        if index is None:
            self._check_version("create", None, body.get(RV), uri)
            child = self._new_esr(body, call.version)
            region.esrs.append(child)
            return _empty(201, call, child.vertex_id)
        old = region.esrs[index]
        self._check_version("update", old.props.get(RV), body.get(RV), uri)
        schema = _scalars(ESR_SCALARS, call.version)
        props = {k: v for k, v in old.props.items() if k not in schema}
        props.update({k: v for k, v in body.items() if k in schema and v is not None})
        props[RV] = self._stamp()
        old.props = props
        if body.get(REL) is not None:
            old.relationships = body[REL]
        return _empty(200, call, old.vertex_id)

    def _patch(self, call: _Call, route: Route) -> Response:
        try:
            body = self._payload(call, route)
        except _UnsupportedMediaError:
            return Response(b"", 415)
        with self._lock:
            node = self._find(route)
            if node is None:
                raise AaiException("AAI_6114", self._not_found(route))
            schema = _scalars(ESR_SCALARS if route.kind == "esr" else REGION_SCALARS, call.version)
            # RFC 7386 merge on the depth-0 object; child containers are out of PATCH's reach.
            for key, value in body.items():
                if key == RV or key not in schema:
                    continue
                if value is None:
                    node.props.pop(key, None)
                else:
                    node.props[key] = value
            if REL in body:
                node.relationships = body[REL]
            node.props[RV] = self._stamp()
            return _empty(200, call, node.vertex_id)

    def _delete(self, call: _Call, route: Route) -> Response:
        with self._lock:
            node = self._find(route)
            if node is None:
                raise AaiException("AAI_6114", self._not_found(route))
            node_type = ESR if route.kind == "esr" else "cloud-region"
            # DBSerializer.delete passes the node type where other checks pass the URI.
            self._check_version("delete", node.props.get(RV), call.args.get(RV), node_type)
            if route.kind == "esr":
                region = self._regions[(route.owner, route.region_id)]
                region.esrs = [e for e in region.esrs if e is not node]
            else:
                del self._regions[(route.owner, route.region_id)]
            return _empty(204, call)

    def _find(self, route: Route) -> _Region | _Esr | None:
        region = self._regions.get((route.owner, route.region_id))
        if region is None or route.kind == "region":
            return region
        return next((e for e in region.esrs if e.props["esr-system-info-id"] == route.esr_id), None)

    @staticmethod
    def _not_found(route: Route) -> str:
        kind = ESR if route.kind == "esr" else "cloud-region"
        uri = route.region_uri + (
            f"/{ESR_LIST}/{ESR}/{route.esr_id}" if route.kind == "esr" else ""
        )
        return f"No Node of type {kind} found at: {uri}"

    # -- HTTP: control under /_sim/aai --------------------------------------------------------
    def _http_list(self) -> Response:
        return Response(
            to_json({"cloud-region": self.regions()}), 200, content_type="application/json"
        )

    def _http_load(self) -> Response:
        try:
            self.load(json.loads(request.get_data().decode("utf-8")))
        except (ValueError, AttributeError) as exc:
            return Response(to_json({"error": str(exc)}), 400, content_type="application/json")
        with self._lock:
            count = len(self._regions)
        return Response(to_json({"regions": count}), 200, content_type="application/json")

    def _http_extra_info(self, owner: str, region_id: str) -> Response:
        text = None if request.method == "DELETE" else request.get_data().decode("utf-8")
        try:
            version = self.set_extra_info(owner, region_id, text)
        except KeyError:
            return Response(
                to_json({"error": "no such region"}), 404, content_type="application/json"
            )
        return Response(to_json({RV: version}), 200, content_type="application/json")

    def _http_down(self) -> Response:
        spec = request.get_json(force=True, silent=True) or {}
        try:
            self.down(str(spec.get("mode", "503")), seconds=float(spec.get("seconds", 300.0)))
        except ValueError as exc:
            return Response(to_json({"error": str(exc)}), 400, content_type="application/json")
        return Response(
            to_json({"mode": spec.get("mode", "503")}), 200, content_type="application/json"
        )

    def _http_up(self) -> Response:
        self.up()
        return Response(to_json({"mode": "up"}), 200, content_type="application/json")


@dataclass(frozen=True)
class _Call:
    """What the pre-matching filters established about one /aai request."""

    method: str
    version: int
    version_path: str  # path below /aai/, version included (controller-level errors)
    uri: str  # path below /aai/{version}/ (HttpEntry-level errors)
    args: MultiDict[str, str]
    xml: bool

    @property
    def entry_method(self) -> str:
        """HttpEntry's method name: PATCH is ``MERGE_PATCH`` there."""
        return "MERGE_PATCH" if self.method == "PATCH" else self.method


def _empty(status: int, call: _Call, vertex_id: int | None = None) -> Response:
    """A bodiless answer; writes of one node carry its ``vertex-id`` header."""
    headers = {"vertex-id": str(vertex_id)} if vertex_id is not None else {}
    ctype = "application/xml" if call.xml else "application/json"
    return Response(b"", status, headers=headers, content_type=ctype)


class _UnsupportedMediaError(Exception):
    """A body whose Content-Type the resource does not consume (Jersey's 415)."""


__all__ = ["AaiException", "AaiSim", "Route", "error_body", "parse_route"]
