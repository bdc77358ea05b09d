"""The OpenAPI 3 document of the REST API, served at ``/api/multicloud/v0/swagger.json``.

The schemas of the status views come from ``vesagent.status_model`` (``model_json_schema``),
so the document describes exactly what the API sends and what ``vesagent status`` reads.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from vesagent.status_model import (
    ConfigView,
    DeadLetterList,
    RegionList,
    RequeueRequest,
    RequeueResult,
)

#: The models whose schemas are components of the document (with everything they refer to).
_MODELS = (ConfigView, RegionList, DeadLetterList, RequeueRequest, RequeueResult)

_PROBLEM = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "message"],
                "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "vimid": {"type": "string"},
    },
}


def model_schemas() -> dict[str, Any]:
    """``components.schemas`` for the status models, refs pointing inside the document."""
    _refs, top = models_json_schema(
        # Answers as the API sends them; the request body as the API accepts it.
        [(m, "validation" if m is RequeueRequest else "serialization") for m in _MODELS],
        ref_template="#/components/schemas/{model}",
    )
    return dict(top.get("$defs", {}))


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problem(description: str) -> dict[str, Any]:
    return _json({"$ref": "#/components/schemas/Problem"}, description)


def openapi_document() -> dict[str, Any]:
    """The document; response bodies of the live API validate against its schemas."""
    vimid = {
        "name": "vimid",
        "in": "path",
        "required": True,
        "description": "{cloud-owner}_{cloud-region-id}",
        "schema": {"type": "string"},
    }
    per_region = {
        "parameters": [vimid],
        "get": {
            "summary": "The region's vesagent_config (passwords masked) and runtime status",
            "responses": {
                "200": _json({"$ref": "#/components/schemas/ConfigView"}, "configuration"),
                "404": _problem("unknown vimid, or no vesagent_config"),
                "503": _problem("A&AI unreachable"),
            },
        },
        "post": {
            "summary": "Create or replace the region's vesagent_config in A&AI",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["vesagent_config"],
                            "properties": {"vesagent_config": {"type": "object"}},
                        }
                    }
                },
            },
            "responses": {
                "200": _json({"$ref": "#/components/schemas/ConfigView"}, "replaced"),
                "201": _json({"$ref": "#/components/schemas/ConfigView"}, "created"),
                "400": _problem("invalid vesagent_config; every problem with its path"),
                "404": _problem("unknown vimid"),
                "409": _problem("cloud-extra-info holds something that is not a JSON object"),
                "503": _problem("A&AI unreachable"),
            },
        },
        "delete": {
            "summary": "Remove the region's vesagent_config from A&AI (other keys stay)",
            "responses": {
                "204": {"description": "removed"},
                "404": _problem("unknown vimid, or no vesagent_config"),
                "503": _problem("A&AI unreachable"),
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "vesagent", "version": "v0"},
        "servers": [{"url": "/api/multicloud/v0"}, {"url": "/api/multicloud-ocata/v0"}],
        "paths": {
            "/{vimid}/vesagent": per_region,
            "/vesagent": {
                "get": {
                    "summary": "Every region this replica manages, one line each",
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/RegionList"}, "regions")
                    },
                }
            },
            "/deadletters": {
                "get": {
                    "summary": "Events the collectors refused for their content, newest first",
                    "parameters": [
                        {"name": "collector", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                    ],
                    "responses": {
                        "200": _json(
                            {"$ref": "#/components/schemas/DeadLetterList"}, "dead letters"
                        ),
                        "400": _problem("a limit out of range"),
                    },
                }
            },
            "/deadletters/requeue": {
                "post": {
                    "summary": "Put dead letters back in the outbox after a fix",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/RequeueRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            {"$ref": "#/components/schemas/RequeueResult"}, "re-queued ids"
                        ),
                        "400": _problem("neither ids nor collector, or not a valid request"),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            "schemas": {**model_schemas(), "Problem": _PROBLEM},
        },
        "security": [{"basic": []}],
    }
