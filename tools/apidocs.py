"""Render docs/API.md from the application's OpenAPI schema (`make docs`).

The output depends only on the code: routes in registration order grouped by tag, schemas
sorted by name, no timestamps. A test regenerates it in memory and compares, so the
reference cannot drift from the API.

    python -m tools.apidocs docs/API.md          # write (from the repository root)
    python -m tools.apidocs docs/API.md --check  # exit 1 when the file is stale

A developer tool, not part of the runtime package: it imports `banking`, never the reverse.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from banking.core.config import AppEnv, Settings
from banking.core.errors import HTTP_CODES
from banking.core.schemas import control_class

METHODS = ("get", "post", "put", "patch", "delete")
# FastAPI documents its own 422 body; ours is problem+json (see "Errors").
FRAMEWORK_SCHEMAS = frozenset({"HTTPValidationError", "ValidationError"})
# "409 `email_taken`" in a route's description documents an error code for that status.
_STATUS_CODE = re.compile(r"\b([45]\d\d)\b[^`\n]{0,40}?`([a-z][a-z0-9_]+)`")
_CODE = re.compile(r"`([a-z][a-z0-9_]+)`")
_PLACEHOLDER_SECRET = "placeholder-secret-for-schema-rendering-only-0123456789"


def build_schema() -> dict[str, Any]:
    """The OpenAPI schema of the production app (no test-only routes)."""
    from banking.app import create_app

    settings = Settings(
        _env_file=None,
        app_env=AppEnv.prod,
        database_url="sqlite+aiosqlite:///:memory:",
        jwt_secret=_PLACEHOLDER_SECRET,
        card_encryption_key=_PLACEHOLDER_SECRET,
        card_network_api_key=_PLACEHOLDER_SECRET,
        audit_key=_PLACEHOLDER_SECRET,
        cors_origins=[],
        redis_url=None,
        sentry_dsn=None,
        log_level="WARNING",
        log_format="json",
    )
    return create_app(settings).openapi()


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _anchor(name: str) -> str:
    return f"[`{name}`](#{name.lower()})"


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return _anchor(_ref_name(schema["$ref"]))
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [option for option in schema[key] if option.get("type") != "null"]
            rendered = " or ".join(_type(option) for option in options)
            nullable = len(options) < len(schema[key])
            return f"{rendered} or null" if nullable else rendered
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _type(schema["allOf"][0])
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return kind


def _pattern_text(pattern: str) -> str:
    """The long class of control characters (core/schemas.py) in words."""
    refused = f"[^{control_class()}]"
    visible = f"[^{control_class()}\\s]"
    if pattern == f"^{refused}*{visible}{refused}*$":
        return "no control characters; not blank"
    if pattern == f"^{refused}*$":
        return "no control characters"
    return f"pattern `{pattern}`"


def _constraints(schema: dict[str, Any]) -> str:
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return "; ".join(filter(None, (_constraints(option) for option in schema[key])))
    parts = []
    for key, label in (
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
    ):
        if key in schema:
            parts.append(f"{label} {schema[key]}")
    if "pattern" in schema:
        parts.append(_pattern_text(schema["pattern"]))
    if "default" in schema and schema["default"] is not None:
        parts.append(f"default `{json.dumps(schema['default'])}`")
    return "; ".join(parts)


def _fields_table(schema: dict[str, Any], components: dict[str, Any]) -> list[str]:
    if "$ref" in schema:
        schema = components.get(_ref_name(schema["$ref"]), {})
    properties: dict[str, Any] = schema.get("properties", {})
    if not properties:
        return [f"Body: {_type(schema)}", ""]
    required = set(schema.get("required", []))
    described = any(field.get("description") for field in properties.values())
    header = ["field", "type", "required", "constraints"] + (["description"] if described else [])
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name, field in properties.items():
        cells = [
            f"`{name}`",
            _cell(_type(field)),
            "yes" if name in required else "no",
            _cell(_constraints(field)),
        ]
        if described:
            cells.append(_cell(str(field.get("description", ""))))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _body_type(content: dict[str, Any]) -> str:
    if not content:
        return "—"
    media_type, body = sorted(content.items())[0]
    schema = body.get("schema", {})
    rendered = _type(schema) if schema else ""
    return f"`{media_type}` {rendered}".strip()


def _scheme_errors() -> dict[str, tuple[str, str]]:
    """Security scheme name -> (code, title) of the 401 its routes answer."""
    from banking.cards.routes import InvalidNetworkKey
    from banking.identity.service import InvalidAccessToken

    return {
        "HTTPBearer": (InvalidAccessToken.code, InvalidAccessToken.title),
        "NetworkKey": (InvalidNetworkKey.code, InvalidNetworkKey.title),
    }


def _schemes(operation: dict[str, Any]) -> list[str]:
    """The security schemes an operation accepts (any one of them), in schema order."""
    names: list[str] = []
    for requirement in operation.get("security", []):
        names += [name for name in requirement if name not in names]
    return names


def _authentication(operation: dict[str, Any], spec: dict[str, Any]) -> str:
    """How a caller authenticates, from the operation's security schemes."""
    defined: dict[str, Any] = spec.get("components", {}).get("securitySchemes", {})
    ways = []
    for name in _schemes(operation):
        scheme = defined[name]
        if scheme.get("type") == "http" and scheme.get("scheme") == "bearer":
            ways.append("bearer access token (`Authorization: Bearer <access_token>`)")
        elif scheme.get("type") == "apiKey":
            ways.append(f"`{scheme['name']}` {scheme['in']}: {scheme.get('description', '')}")
        else:
            raise ValueError(f"security scheme {name!r} ({scheme}) has no rendering")
    text = " or ".join(ways) if ways else "none"
    return text if text.endswith(".") else text + "."


def _responses(operation: dict[str, Any]) -> list[str]:
    problem_body = "`application/problem+json`"
    # status -> (meaning, error codes, body)
    rows: dict[str, tuple[str, list[str], str]] = {}
    for status, response in operation.get("responses", {}).items():
        meaning = str(response.get("description", ""))
        codes: list[str] = []
        body = _body_type(response.get("content", {}))
        if status.isdigit() and int(status) >= 400:
            body = problem_body
            # A declared error response names its codes in backticks in its description.
            codes = _CODE.findall(meaning)
        if status == "422":
            meaning = "Validation error: every invalid field is listed in `errors`."
            codes = [HTTP_CODES[422][0]]
        rows[status] = (meaning, codes, body)
    documented: dict[str, list[str]] = {}
    for status, code in _STATUS_CODE.findall(str(operation.get("description", ""))):
        documented.setdefault(status, [])
        if code not in documented[status]:
            documented[status].append(code)
    for status, codes in documented.items():
        meaning = rows[status][0] if status in rows else HTTP_CODES.get(int(status), ("", ""))[1]
        rows[status] = (meaning, codes, problem_body)
    errors = _scheme_errors()
    for name in _schemes(operation):
        if name not in errors:
            raise ValueError(f"security scheme {name!r} has no documented 401 code")
        code, title = errors[name]
        _, codes, _ = rows.get("401", ("", [], problem_body))
        if code not in codes:
            codes = [*codes, code]
        rows["401"] = (title, codes, problem_body)
    lines = ["| status | meaning | error code | body |", "| --- | --- | --- | --- |"]
    for status in sorted(rows):
        meaning, codes, body = rows[status]
        rendered = ", ".join(f"`{code}`" for code in codes)
        lines.append(f"| {status} | {_cell(meaning)} | {rendered} | {body} |")
    lines.append("")
    return lines


def _parameters(operation: dict[str, Any]) -> list[str]:
    parameters = operation.get("parameters", [])
    if not parameters:
        return []
    lines = [
        "| parameter | in | type | required | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for parameter in parameters:
        schema = parameter.get("schema", {})
        constraints = _constraints(schema)
        description = " ".join(filter(None, (parameter.get("description", ""), constraints)))
        lines.append(
            f"| `{parameter['name']}` | {parameter['in']} | {_cell(_type(schema))} "
            f"| {'yes' if parameter.get('required') else 'no'} | {_cell(description)} |"
        )
    lines.append("")
    return lines


def _operation(
    path: str, method: str, operation: dict[str, Any], spec: dict[str, Any]
) -> list[str]:
    components: dict[str, Any] = spec.get("components", {}).get("schemas", {})
    lines = [f"### `{method.upper()} {path}`", ""]
    if operation.get("summary"):
        lines += [f"**{operation['summary']}**", ""]
    if operation.get("description"):
        lines += [str(operation["description"]).strip(), ""]
    lines += [f"Authentication: {_authentication(operation, spec)}", ""]
    parameters = _parameters(operation)
    if parameters:
        lines += ["Parameters:", "", *parameters]
    body = operation.get("requestBody")
    if body:
        media_type, content = sorted(body.get("content", {}).items())[0]
        lines += [f"Request body (`{media_type}`):", ""]
        lines += _fields_table(content.get("schema", {}), components)
    lines += ["Responses:", "", *_responses(operation)]
    return lines


def _errors_section() -> list[str]:
    lines = [
        "## Errors",
        "",
        "Every error is an RFC 9457 problem document (`application/problem+json`) with "
        "`type`, `title`, `status`, `detail`, a stable `code` and the `request_id`; "
        "validation errors add `errors`, one `{field, in, reason, type}` per invalid field. "
        "Domain-specific codes are listed with each operation below and in "
        "[errors.md](errors.md). Codes any route can answer with:",
        "",
        "| status | code | meaning |",
        "| --- | --- | --- |",
    ]
    for status, (code, title) in sorted(HTTP_CODES.items()):
        lines.append(f"| {status} | `{code}` | {_cell(title)} |")
    lines.append("")
    return lines


def render(spec: dict[str, Any]) -> str:
    info = spec.get("info", {})
    lines = [
        f"# {info.get('title', 'API')} reference (version {info.get('version', '')})",
        "",
        "<!-- Generated from the OpenAPI schema by `make docs` (tools/apidocs.py). "
        "Do not edit by hand. -->",
        "",
        str(info.get("description", "")),
        "",
        "Base path `/v1`, JSON in and out. The live schema is served at `/openapi.json` and "
        "the interactive documentation at `/docs`. Amounts and balances are integers in the "
        'currency\'s minor units. Lists are `{"items": [...], "next_cursor": ...}`; pass '
        "`cursor` to get the next page. Authenticated calls send "
        "`Authorization: Bearer <access_token>` from `POST /v1/auth/login`; the card network's "
        "routes take the network's shared key in `X-Network-Key` instead. Prometheus "
        "metrics are at `/metrics` (not part of the API).",
        "",
        *_errors_section(),
    ]

    grouped: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                operation = item[method]
                tag = (operation.get("tags") or ["other"])[0]
                grouped.setdefault(tag, []).append((path, method, operation))
    tag_descriptions = {tag["name"]: tag.get("description", "") for tag in spec.get("tags", [])}

    lines += ["## Contents", ""]
    for tag, operations in grouped.items():
        lines.append(f"- **{tag}**: " + ", ".join(f"`{m.upper()} {p}`" for p, m, _ in operations))
    lines.append("")
    for tag, operations in grouped.items():
        lines += [f"## {tag}", ""]
        if tag_descriptions.get(tag):
            lines += [tag_descriptions[tag], ""]
        for path, method, operation in operations:
            lines += _operation(path, method, operation, spec)

    components = spec.get("components", {}).get("schemas", {})
    lines += ["## Schemas", ""]
    for name in sorted(components):
        if name in FRAMEWORK_SCHEMAS:
            continue
        schema = components[name]
        lines += [f"### {name}", ""]
        if schema.get("description"):
            lines += [_cell(str(schema["description"])), ""]
        lines += _fields_table(schema, components)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str]) -> int:
    args = [arg for arg in argv if not arg.startswith("--")]
    target = Path(args[0] if args else "docs/API.md")
    text = render(build_schema())
    if "--check" in argv:
        current = target.read_text() if target.exists() else ""
        if current != text:
            print(f"{target} is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
