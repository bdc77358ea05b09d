"""Secrets in a ``vesagent_config``: which fields they are, how they are shown, when a masked
one may be kept.

The schema says what a secret is, not the spelling of its key: a model field marked
``Field(json_schema_extra={"secret": "value", "sent_to": "endpoint"})`` holds a secret that is
sent to the URL in its sibling field ``endpoint``; a field marked ``{"secret": "url"}`` is a
URL whose userinfo carries a password (``rabbit://user:pass@host:5672/``) sent to that URL's
own hosts. Keys the schema does not know are still masked when their name looks secret
(``password``, ``token``...): other tools share the object, and showing their secrets would be
worse than hiding a harmless value.

A GET shows every secret as ``***``; a POST that sends ``***`` back keeps the stored secret
only while the place it is sent to (scheme, host and port) is unchanged. Otherwise anyone who
may edit the configuration could redirect the stored password to a host of their choice.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

from vesagent.errors import ConfigError
from vesagent.logs import REDACTED, is_secret_key

DEFAULT_PORTS = {"http": 80, "https": 443, "rabbit": 5672, "amqp": 5672, "amqps": 5671}

# userinfo of one host in a URL: after "//" or "," (oslo.messaging's multi-host transport
# URLs), up to the last "@" before the host. A password cannot hold an unencoded "/", "?",
# "#" or "@" (RFC 3986), so the match stops there.
_USERINFO = re.compile(r"(?P<lead>(?://|,))(?P<user>[^:@/?#,]*):(?P<password>[^@/?#]*)@")


@dataclass(frozen=True)
class SecretField:
    """One secret field of the schema: where it is and where its value is sent."""

    path: tuple[str, ...]
    """Field names from the top of ``vesagent_config``; ``"[]"`` stands for every array item."""
    kind: str
    """``value`` (the field is the secret) or ``url`` (the password in the URL's userinfo)."""
    sent_to: str | None = None
    """For ``value``: the sibling field holding the URL the secret is sent to."""


# --- URLs ----------------------------------------------------------------------------------


def url_passwords(url: str) -> list[str]:
    """The passwords in ``url``'s userinfo, one per host (``[]`` when there are none)."""
    return [m.group("password") for m in _USERINFO.finditer(url)]


def mask_url_password(url: str) -> str:
    """``url`` with every userinfo password replaced by ``***`` (the user name stays)."""
    return _USERINFO.sub(lambda m: f"{m.group('lead')}{m.group('user')}:{REDACTED}@", url)


def url_destinations(url: str) -> tuple[tuple[str, str, int | None], ...]:
    """Where ``url`` sends its credentials: ``(scheme, host, port)`` per host, default ports
    filled in; ``()`` when it cannot be parsed (then nothing counts as the same place)."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        netloc = parts.netloc
    except (ValueError, AttributeError):
        return ()
    places = []
    for host in netloc.split(","):  # oslo.messaging: user:pass@h1:5672,user:pass@h2:5672
        try:
            one = urlsplit(f"{scheme}://{host}")
            port = one.port or DEFAULT_PORTS.get(scheme)
        except ValueError:
            return ()
        if not one.hostname:
            return ()
        places.append((scheme, one.hostname.lower(), port))
    return tuple(places)


def restore_url_passwords(posted: str, stored: str) -> str:
    """``posted`` with each ``***`` password replaced by the stored URL's password for the
    same host position (the caller has checked that the destinations did not change)."""
    old = url_passwords(stored)
    index = iter(range(len(old)))

    def put_back(match: re.Match[str]) -> str:
        position = next(index, None)
        password = match.group("password")
        if password == REDACTED and position is not None:
            password = old[position]
        return f"{match.group('lead')}{match.group('user')}:{password}@"

    return _USERINFO.sub(put_back, posted)


# --- the schema ----------------------------------------------------------------------------


def _models_in(annotation: Any) -> Iterator[tuple[type[BaseModel], bool]]:
    """Model classes inside an annotation, with True when they are array items."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, False
        return
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    is_array = origin in (tuple, list)
    if origin in (typing.Union, types.UnionType) or is_array:
        for arg in args:
            for model, _item in _models_in(arg):
                yield model, is_array


def secret_fields(model: type[BaseModel] | None = None) -> list[SecretField]:
    """Every field the schema marks secret, from ``model`` (``VesagentConfig``) down."""
    if model is None:
        from vesagent.config import VesagentConfig

        model = VesagentConfig
    found: list[SecretField] = []
    stack: list[tuple[type[BaseModel], tuple[str, ...]]] = [(model, ())]
    seen: set[tuple[type[BaseModel], tuple[str, ...]]] = set()
    while stack:
        current, prefix = stack.pop()
        if (current, prefix) in seen or len(prefix) > 20:
            continue
        seen.add((current, prefix))
        for name, field in current.model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            kind = extra.get("secret")
            if kind in ("value", "url"):
                sent_to = extra.get("sent_to")
                sent_to = sent_to if isinstance(sent_to, str) else None
                found.append(SecretField((*prefix, name), str(kind), sent_to if sent_to else None))
            for sub, is_item in _models_in(field.annotation):
                stack.append((sub, prefix + ((name, "[]") if is_item else (name,))))
    return sorted(found, key=lambda f: f.path)


def _containers(obj: Any, path: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    """``(json_path, parent_object)`` for each object holding the last field of ``path``."""
    level: list[tuple[str, Any]] = [("", obj)]
    for step in path[:-1]:
        following: list[tuple[str, Any]] = []
        for where, value in level:
            if step == "[]":
                if isinstance(value, list):
                    following += [(f"{where}[{i}]", item) for i, item in enumerate(value)]
            elif isinstance(value, Mapping) and step in value:
                following.append((f"{where}.{step}" if where else step, value[step]))
        level = following
    return ((where, value) for where, value in level if isinstance(value, Mapping))


def _joined(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


# --- masking -------------------------------------------------------------------------------


def masked_config(
    config_obj: Mapping[str, Any], model: type[BaseModel] | None = None
) -> dict[str, Any]:
    """A deep copy of a decoded ``vesagent_config`` with every secret shown as ``***``.

    Schema-marked secrets are masked whatever their key; unknown keys whose name looks secret
    are masked too. A null stays null so that "no password" remains visible. Iterative, so any
    depth that JSON decoding allows is fine.
    """
    root: dict[str, Any] = {}
    stack: list[tuple[Any, Any]] = [(config_obj, root)]
    while stack:
        source, target = stack.pop()
        items = source.items() if isinstance(source, Mapping) else enumerate(source)
        for name, value in items:
            copied: Any
            secret_name = isinstance(source, Mapping) and is_secret_key(name)
            if (secret_name and value is not None) or isinstance(value, SecretStr):
                copied = REDACTED
            elif isinstance(value, Mapping):
                copied = {}
                stack.append((value, copied))
            elif isinstance(value, list | tuple):
                copied = [None] * len(value)
                stack.append((value, copied))
            else:
                copied = value
            target[name] = copied
    for field in secret_fields(model):
        for _where, parent in _containers(root, field.path):
            name = field.path[-1]
            value = parent.get(name)
            if value is None:
                continue
            if field.kind == "url" and isinstance(value, str):
                parent[name] = mask_url_password(value)
            elif field.kind == "value":
                parent[name] = REDACTED
    return root


# --- keeping masked secrets on POST --------------------------------------------------------


def keep_masked_secrets(posted: Any, stored: Any, model: type[BaseModel] | None = None) -> Any:
    """``posted`` with each ``***`` secret replaced by the stored one, when that is safe.

    A GET-modify-POST round trip sends ``***`` back. The stored secret is kept only when the
    stored configuration has one at the same place and the place it is sent to (scheme, host,
    port of ``sent_to``, or of the URL itself) is unchanged; otherwise ConfigError asks for
    the secret, naming the field. ``posted`` is never changed in place. ``model`` is the
    schema (``VesagentConfig`` unless given).
    """
    if not isinstance(posted, Mapping):
        return posted
    result = _deep_copy(posted)
    problems: list[tuple[str, str]] = []
    for field in secret_fields(model):
        name = field.path[-1]
        for where, parent in _containers(result, field.path):
            value = parent.get(name)
            if field.kind == "value" and value == REDACTED:
                problem = _keep_value(parent, where, field, stored)
            elif (
                field.kind == "url" and isinstance(value, str) and REDACTED in url_passwords(value)
            ):
                problem = _keep_url(parent, where, field, stored)
            else:
                continue
            if problem:
                problems.append((_joined(where, name), problem))
    if problems:
        raise ConfigError(problems)
    return result


def _stored_parent(stored: Any, where: str, field: SecretField) -> Mapping[str, Any] | None:
    for other_where, parent in _containers(stored, field.path):
        if other_where == where:
            return parent
    return None


def _keep_value(parent: dict[str, Any], where: str, field: SecretField, stored: Any) -> str | None:
    name = field.path[-1]
    old_parent = _stored_parent(stored, where, field)
    old = old_parent.get(name) if old_parent is not None else None
    if not isinstance(old, str) or not old:
        return "is masked (***) but no secret is stored here: give the secret itself"
    if field.sent_to:
        new_url, old_url = (
            parent.get(field.sent_to),
            old_parent.get(field.sent_to) if old_parent else None,
        )
        if not isinstance(new_url, str) or not isinstance(old_url, str):
            return f"is masked (***) but {field.sent_to} is missing: give the secret itself"
        if not url_destinations(new_url) or url_destinations(new_url) != url_destinations(old_url):
            return (
                f"is masked (***) but {_joined(where, field.sent_to)} now points to another "
                "place (scheme, host or port changed): give the secret itself to send it there"
            )
    parent[name] = old
    return None


def _keep_url(parent: dict[str, Any], where: str, field: SecretField, stored: Any) -> str | None:
    name = field.path[-1]
    old_parent = _stored_parent(stored, where, field)
    old = old_parent.get(name) if old_parent is not None else None
    if not isinstance(old, str) or not url_passwords(old):
        return "holds a masked password (***) but none is stored here: give the password itself"
    new_places = url_destinations(parent[name])
    if not new_places or new_places != url_destinations(old):
        return (
            "holds a masked password (***) but now points to another place (scheme, host or "
            "port changed): give the password itself to send it there"
        )
    parent[name] = restore_url_passwords(parent[name], old)
    return None


def _deep_copy(obj: Any) -> Any:
    """A copy of decoded JSON, iterative (any depth JSON decoding allows)."""
    root: Any = {} if isinstance(obj, Mapping) else []
    stack: list[tuple[Any, Any]] = [(obj, root)]
    while stack:
        source, target = stack.pop()
        items = source.items() if isinstance(source, Mapping) else enumerate(source)
        for name, value in items:
            if isinstance(value, Mapping):
                copied: Any = {}
                stack.append((value, copied))
            elif isinstance(value, list | tuple):
                copied = [None] * len(value)
                stack.append((value, copied))
            else:
                copied = value
            target[name] = copied
    return root
