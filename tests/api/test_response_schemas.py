"""Every operation of the live OpenAPI declares what its 2xx answers hold: schemathesis checks each answer against
its schema, so a bare object (`dict[str, Any]`, `Any`, no response model) lets any answer pass unchecked. Files and
streamed exports declare their media types and a binary string instead."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from settings import Settings

JSON = ("application/json", "application/problem+json")


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("openapi")
    app = create_app(Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'z.db'}"))
    response = TestClient(app).get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def bare(spec: dict[str, Any], schema: dict[str, Any]) -> str | None:
    """Why `schema` accepts any JSON value or any object (None when it names its fields or its type)."""
    schema = _resolve(spec, schema)
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            if why := bare(spec, part):
                return f"{key}: {why}"
    if any(k in schema for k in ("anyOf", "oneOf", "allOf")):
        return None
    kind = schema.get("type")
    if kind is None and "const" not in schema and "enum" not in schema:
        return "any value (no type)"
    if kind == "array":
        why = bare(spec, schema.get("items", {}))
        return why and f"items: {why}"
    if kind == "object" and not schema.get("properties"):
        extra = schema.get("additionalProperties", True)
        if extra is True or extra == {}:
            return "an object with any fields"
        if isinstance(extra, dict):
            why = bare(spec, extra)
            return why and f"values: {why}"
    return None


def _operations(spec: dict[str, Any]):
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            if method in ("get", "put", "post", "patch", "delete"):
                yield f"{method.upper()} {path}", operation


def test_the_walker_tells_a_bare_schema_from_a_declared_one(spec) -> None:
    assert bare(spec, {}) and bare(spec, {"type": "object", "additionalProperties": True})
    assert bare(spec, {"type": "array", "items": {"type": "object"}})
    assert bare(spec, {"type": "object", "additionalProperties": {"type": "object"}})
    assert not bare(spec, {"type": "object", "additionalProperties": {"type": "string"}})
    assert not bare(spec, {"type": "array", "items": {"$ref": "#/components/schemas/HealthOut"}})


# Fields inside declared answers that hold free-form JSON on purpose, each for its reason; any other field that
# accepts any value or any object fails `test_no_field_of_an_answer_is_left_untyped`.
FREE_FORM = {
    "CaseEventOut.data": "each event kind records its own facts, as they were when it happened",
    "CaseEvidenceOut.evidence": "the evidence frozen with the case, exactly as stored",
    "TagRuleOut.condition": "the stored condition tree (its request schema, Condition, types it)",
    "Leaf.value": "a comparison's value, typed by the field it names (shared with workflow payloads)",
    "ConditionResult.expected": "as Leaf.value",
    "ConditionResult.actual": "the enterprise's value of the field, typed by the field",
}


def _fields(spec: dict[str, Any], schema: dict[str, Any], seen: set[str]):
    """(component.field, field schema) of every field reachable from `schema`."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return
        seen.add(name)
        component = spec["components"]["schemas"][name]
        for field, sub in (component.get("properties") or {}).items():
            yield f"{name}.{field}", sub
            yield from _fields(spec, sub, seen)
        for key in ("anyOf", "oneOf", "allOf"):
            for part in component.get(key, []):
                yield from _fields(spec, part, seen)
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            yield from _fields(spec, part, seen)
    if isinstance(schema.get("items"), dict):
        yield from _fields(spec, schema["items"], seen)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _fields(spec, schema["additionalProperties"], seen)


def test_no_field_of_an_answer_is_left_untyped(spec) -> None:
    seen: set[str] = set()
    untyped = {}
    for _, operation in _operations(spec):
        for code, response in operation["responses"].items():
            for media, body in (response.get("content") or {}).items():
                if code.startswith("2") and media in JSON:
                    for name, schema in _fields(spec, body.get("schema", {}), seen):
                        if name not in FREE_FORM and (why := bare(spec, schema)):
                            untyped[name] = why
    assert not untyped, untyped


def test_every_2xx_answer_declares_its_schema(spec) -> None:
    problems: list[str] = []
    for label, operation in _operations(spec):
        for code, response in operation["responses"].items():
            if not code.startswith("2"):
                continue
            content = response.get("content") or {}
            if code == "204":
                if content:
                    problems.append(f"{label} {code}: 204 declares a body")
                continue
            if not content:
                problems.append(f"{label} {code}: no body declared")
            for media, body in content.items():
                schema = body.get("schema", {})
                if media in JSON:
                    if why := bare(spec, schema):
                        problems.append(f"{label} {code} {media}: {why}")
                # A file or a streamed export: its own media type, as a binary string (never a JSON-less "{}").
                elif _resolve(spec, schema).get("type") != "string":
                    problems.append(f"{label} {code} {media}: a file is declared as a string (format binary)")
    assert not problems, "\n".join(problems)
