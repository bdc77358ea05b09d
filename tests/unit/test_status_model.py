"""The status model is the one source of the API's status shapes and the OpenAPI schemas."""

from __future__ import annotations

import jsonschema

from vesagent import status_model
from vesagent.openapi import openapi_document


def test_openapi_schemas_are_the_models() -> None:
    """Every status model appears in the document exactly as model_json_schema describes it."""
    schemas = openapi_document()["components"]["schemas"]
    template = "#/components/schemas/{model}"
    for model in (status_model.RegionSummary, status_model.BacklogStatus, status_model.DeadLetter):
        expected = model.model_json_schema(mode="serialization", ref_template=template)
        expected.pop("$defs", None)
        assert schemas[model.__name__] == expected
    assert schemas["Problem"]["required"] == ["error"]  # the error body, not a model


def test_a_dumped_model_validates_against_the_document() -> None:
    """What the API sends (model_dump) validates against the published schema."""
    doc = openapi_document()
    body = status_model.ConfigView(
        vimid="Owner_R",
        vesagent_config={"backlogs": []},
        status=status_model.RegionDetail(
            managed=True,
            running=False,
            collector=status_model.CollectorStatus(
                endpoint="http://c/eventListener/v7", up=False, reason="credentials refused"
            ),
            backlogs=[
                status_model.BacklogStatus(
                    key="k", domain="fault", type="vm", interval=10, running=True, last_ok=True
                )
            ],
        ),
    ).model_dump(mode="json")
    schema = {"$ref": "#/components/schemas/ConfigView", "components": doc["components"]}
    jsonschema.validate(body, schema)
    assert body["status"]["backlogs"][0]["last_run"] is None
