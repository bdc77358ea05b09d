"""The official VES schemas (packaged copies) and a validator per listener version.

``v5`` is CommonEventFormat 28.4.1 and ``v7`` is 30.2.1_ONAP, both JSON Schema draft-04, checked
with ``Draft4Validator`` and a ``FormatChecker`` as DCAE's collector does. The VES client uses
this to refuse to send an event the collector would reject, and the VES simulator to judge.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft4Validator, FormatChecker

SCHEMA_FILES = {
    "v5": "CommonEventFormat_28.4.1.json",
    "v7": "CommonEventFormat_30.2.1_ONAP.json",
}


@cache
def schema(version: str) -> dict[str, Any]:
    """The parsed schema for ``v5`` or ``v7``."""
    try:
        name = SCHEMA_FILES[version]
    except KeyError:
        raise ValueError(f"no VES schema for {version!r}; known: v5, v7") from None
    text = resources.files("vesagent.data.ves").joinpath(name).read_text(encoding="utf-8")
    return json.loads(text)


@cache
def validator(version: str) -> Draft4Validator:
    """A reusable draft-04 validator with format checking for ``v5`` or ``v7``."""
    return Draft4Validator(schema(version), format_checker=FormatChecker())


def errors(body: Any, version: str) -> list[str]:
    """Schema problems of a request body (``{"event": ...}`` or ``{"eventList": [...]}``).

    Each problem reads ``path: message``; an empty list means valid.
    """
    found = []
    for err in sorted(validator(version).iter_errors(body), key=lambda e: list(e.path)):
        path = "/".join(str(p) for p in err.absolute_path) or "(top)"
        found.append(f"{path}: {err.message}")
    return found
