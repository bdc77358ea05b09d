"""The OpenAPI 3 document of the REST API, served at ``/api/multicloud/v0/swagger.json``."""

from __future__ import annotations

from typing import Any

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

_STATUS = {
    "type": "object",
    "required": ["managed", "running", "config_errors", "backlogs"],
    "properties": {
        "managed": {"type": "boolean"},
        "running": {"type": "boolean"},
        "config_errors": {"type": "array", "items": {"type": "object"}},
        "config_warnings": {"type": "array", "items": {"type": "object"}},
        "credentials_error": {"type": ["string", "null"]},
        "collector": {
            "type": "object",
            "properties": {
                "endpoint": {"type": "string"},
                "outbox_depth": {"type": "integer"},
                "last_delivery": {"type": ["string", "null"]},
                "last_error": {"type": ["string", "null"]},
            },
        },
        "last_poll": {"type": "object"},
        "tracked_servers": {"type": "integer"},
        "active_alarms": {"type": "integer"},
        "last_event": {"type": ["string", "null"]},
        "backlogs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "domain", "type", "interval", "running"],
                "properties": {
                    "key": {"type": "string"},
                    "domain": {"type": "string"},
                    "type": {"type": "string"},
                    "interval": {"type": "number"},
                    "running": {"type": "boolean"},
                    "matched_vms": {"type": "integer"},
                    "matched_hosts": {"type": "integer"},
                    "last_run": {"type": ["string", "null"]},
                    "active_alarms": {"type": "integer"},
                },
            },
        },
    },
}

_CONFIG_VIEW = {
    "type": "object",
    "required": ["vimid", "vesagent_config", "status"],
    "properties": {
        "vimid": {"type": "string"},
        "vesagent_config": {"type": "object"},
        "status": {"$ref": "#/components/schemas/RegionStatus"},
    },
}


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
        },
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            "schemas": {
                "Problem": _PROBLEM,
                "RegionStatus": _STATUS,
                "ConfigView": _CONFIG_VIEW,
                "RegionList": {
                    "type": "object",
                    "required": ["shard", "regions"],
                    "properties": {
                        "shard": {"type": "string"},
                        "aai": {"type": "object"},
                        "regions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["vimid", "running"],
                                "properties": {
                                    "vimid": {"type": "string"},
                                    "running": {"type": "boolean"},
                                    "backlogs": {"type": "integer"},
                                    "active_alarms": {"type": "integer"},
                                    "outbox_depth": {"type": "integer"},
                                },
                            },
                        },
                    },
                },
            },
        },
        "security": [{"basic": []}],
    }
