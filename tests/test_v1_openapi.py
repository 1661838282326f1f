"""`/v1/openapi.json` describes exactly the v1 routes the app has, and the real answers."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from falcon import testing
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from bot.http import create_app
from bot.http.v1.route import Resource
from bot.runtime import Runtime
from tests.test_v1_api import make_key

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def client(runtime: Runtime) -> testing.TestClient:
    return testing.TestClient(create_app(runtime))


def _document(client: testing.TestClient) -> dict[str, Any]:
    answer = client.simulate_get("/v1/openapi.json")  # public, as Statuspage's own spec is
    assert answer.status_code == 200
    return dict(answer.json)


def _nodes(nodes: list[Any]) -> Iterator[Any]:
    for node in nodes:
        yield node
        yield from _nodes(node.children)


def _app_operations(client: testing.TestClient) -> set[tuple[str, str]]:
    app = client.app
    found = set()
    for node in _nodes(app._router._roots):  # type: ignore[attr-defined]
        if isinstance(node.resource, Resource):
            for method in node.resource.handlers:
                found.add((node.uri_template.removeprefix("/v1"), method.lower()))
    return found


def test_every_route_in_the_document_is_in_the_app_and_every_v1_route_is_in_it(
    client: testing.TestClient,
) -> None:
    doc = _document(client)
    validate(doc)  # a well-formed OpenAPI 3 document
    in_doc = {(path, m) for path, item in doc["paths"].items() for m in item if m in METHODS}
    in_app = _app_operations(client)
    assert in_app and in_doc == in_app
    for path, method in in_doc:
        concrete = "/v1" + path.replace("{", "x").replace("}", "")
        resource, _, _, template = client.app._router.find(concrete)  # type: ignore[attr-defined]
        assert template == "/v1" + path and method.upper() in resource.handlers
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def _json_schema(schema: Any, components: dict[str, Any]) -> Any:
    """OpenAPI 3.0's schema dialect as JSON Schema: refs inlined, `nullable` as a type."""
    if isinstance(schema, list):
        return [_json_schema(s, components) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return _json_schema(components[schema["$ref"].rsplit("/", 1)[1]], components)
    out = {k: _json_schema(v, components) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable"):
        out["type"] = [schema["type"], "null"]
    return out


def test_real_answers_match_the_documents_schemas(
    client: testing.TestClient, runtime: Runtime
) -> None:
    doc = _document(client)
    components = doc["components"]["schemas"]
    auth = {"Authorization": f"OAuth {make_key(runtime, 'docs')}"}
    base = f"/v1/pages/{runtime.settings.page_id}"
    cid = client.simulate_post(
        base + "/components", json={"component": {"name": "API"}}, headers=auth
    ).json["id"]
    client.simulate_post(
        base + "/incidents",
        json={"incident": {"name": "Errors", "components": {cid: "major_outage"}, "body": "x"}},
        headers=auth,
    )
    client.simulate_post(
        base + "/subscribers", json={"subscriber": {"email": "a@example.com"}}, headers=auth
    )
    client.simulate_post(
        base + "/component-groups",
        json={"component_group": {"name": "G", "components": [cid]}},
        headers=auth,
    )
    client.simulate_post(
        base + "/incident_templates",
        json={"template": {"name": "api-down", "title": "API down", "component_ids": [cid]}},
        headers=auth,
    )
    checked = 0
    for path, item in doc["paths"].items():
        if "get" not in item or "{" in path.removeprefix("/pages/{page_id}"):
            continue
        answer = client.simulate_get(
            "/v1" + path.replace("{page_id}", runtime.settings.page_id), headers=auth
        )
        assert answer.status_code == 200, path
        content = item["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        schema = _json_schema(copy.deepcopy(content), components)
        Draft202012Validator(schema).validate(answer.json)
        checked += 1 if answer.json else 0
    assert checked >= 6


def test_the_document_names_the_apps_own_address(runtime: Runtime) -> None:
    settings = dataclasses.replace(runtime.settings, app_url="https://app.example.com")
    app = create_app(Runtime(settings, engine=runtime.engine))
    doc = testing.TestClient(app).simulate_get("/v1/openapi.json").json
    assert doc["servers"] == [{"url": "https://app.example.com/v1"}]
