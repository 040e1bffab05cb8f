"""The Pydantic base every request and response schema uses, and shared field types.

Input hygiene lives here: unknown fields are rejected, integers are strict (no "100",
10.0 or true), and every text field has a maximum length and refuses control characters.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictInt,
    StringConstraints,
)
from pydantic_core import core_schema

_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co"})


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in _CONTROL_CATEGORIES and char != "\t"


def _no_control_characters(value: str) -> str:
    if any(_is_control(char) for char in value):
        raise ValueError("must not contain control characters")
    return value


def _escape(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


@functools.cache
def control_class() -> str:
    """The characters `_no_control_characters` refuses, as the inside of a regex class
    (built once, when the OpenAPI schema is first rendered)."""
    ranges: list[tuple[int, int]] = []
    for code in range(0x110000):
        # Surrogates are left out: no regex engine takes them in a class, and UTF-8 text
        # cannot carry them (validation still refuses one sent as a JSON escape).
        if _is_control(chr(code)) and not 0xD800 <= code <= 0xDFFF:
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return "".join(
        _escape(low) if low == high else f"{_escape(low)}-{_escape(high)}" for low, high in ranges
    )


class _NoControlText:
    """Refuses control characters, and says so in the JSON schema with a `pattern` (one
    that also requires a character other than white space when the text has a minimum
    length, as validation strips white space first), unless the field has its own."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(_no_control_characters, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        json_schema: dict[str, Any] = handler(schema)
        if "pattern" not in json_schema:
            allowed = f"[^{control_class()}]"
            if json_schema.get("minLength", 0) >= 1:
                visible = f"[^{control_class()}\\s]"
                json_schema["pattern"] = f"^{allowed}*{visible}{allowed}*$"
            else:
                json_schema["pattern"] = f"^{allowed}*$"
        return json_schema


NoControl = _NoControlText()
Name = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=100),
    NoControl,
]
Description = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, max_length=140),
    NoControl,
]
# A movement's amount in minor units; the configurable business maximum is checked by the
# service, this bound only keeps values inside a 64-bit column.
Amount = Annotated[
    StrictInt,
    Field(
        ge=1,
        le=10**15,
        description='Amount in minor units, a JSON integer: 2347, never 2347.0 or "2347".',
    ),
]


class Schema(BaseModel):
    """Input schemas: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)


class OutSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


T = TypeVar("T")


class Page(OutSchema, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
