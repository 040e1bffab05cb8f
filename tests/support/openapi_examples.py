"""Minimal valid request bodies built from the OpenAPI schema itself, so tests that walk
every operation (authorization matrix) need no per-route code."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any


class ExampleBuilder:
    def __init__(self, spec: Mapping[str, Any], overrides: Mapping[str, Any]) -> None:
        self.spec = spec
        self.overrides = overrides

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = self.spec["components"]["schemas"][name]
        return schema

    def body_for(self, operation: Mapping[str, Any]) -> Any:
        content = operation.get("requestBody", {}).get("content", {})
        if "application/json" not in content:
            return None
        return self.value(content["application/json"]["schema"], name="")

    def value(self, schema: Mapping[str, Any], *, name: str) -> Any:
        if name in self.overrides:
            return self.overrides[name]
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return schema["enum"][0]
        if "default" in schema and schema["default"] is not None:
            return schema["default"]
        if "properties" in schema:
            # An object whose `oneOf`/`anyOf` names alternative required fields (a transfer's
            # one target): fill its own required fields plus the first alternative's.
            for key in ("oneOf", "anyOf"):
                if key in schema:
                    first = self.resolve(schema[key][0])
                    required = [*schema.get("required", []), *first.get("required", [])]
                    schema = {**schema, "required": required}
                    schema.pop(key)
        for key in ("anyOf", "oneOf", "allOf"):
            if key in schema:
                options = [self.resolve(o) for o in schema[key] if o.get("type") != "null"]
                return self.value(options[0], name=name)
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            required = schema.get("required", [])
            return {
                prop: self.value(sub, name=prop)
                for prop, sub in schema.get("properties", {}).items()
                # An optional field is filled only when the caller supplies its value.
                if prop in required or prop in self.overrides
            }
        if kind == "array":
            return [self.value(schema.get("items", {}), name=name)] * schema.get("minItems", 0)
        if kind == "integer":
            return max(int(schema.get("minimum", 1)), int(schema.get("exclusiveMinimum", 0)) + 1)
        if kind == "number":
            return 1
        if kind == "boolean":
            return False
        if kind == "string":
            return self.string(schema, name=name)
        return None

    @staticmethod
    def string(schema: Mapping[str, Any], *, name: str) -> str:
        fmt = schema.get("format")
        if fmt == "date":
            return "1990-01-01"
        if fmt == "date-time":
            return dt.datetime.now(dt.UTC).isoformat()
        if fmt == "uuid":
            return str(uuid.uuid4())
        if fmt == "email":
            return f"matrix-{uuid.uuid4().hex[:8]}@example.com"
        if "pattern" in schema and "examples" in schema:
            return str(schema["examples"][0])
        length = max(int(schema.get("minLength", 1)), 1)
        return ("x" * length)[: schema.get("maxLength", length)]
