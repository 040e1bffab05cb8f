"""The Pydantic base every request and response schema uses, and shared field types.

Input hygiene lives here: unknown fields are rejected, integers are strict (no "100",
10.0 or true), and every text field has a maximum length and refuses control characters.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StringConstraints


def _no_control_characters(value: str) -> str:
    if any(
        unicodedata.category(char) in {"Cc", "Cf", "Cs", "Co"} and char not in "\t"
        for char in value
    ):
        raise ValueError("must not contain control characters")
    return value


NoControl = AfterValidator(_no_control_characters)
Name = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_no_control_characters),
]
Description = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, max_length=140),
    AfterValidator(_no_control_characters),
]
# A movement's amount in minor units; the configurable business maximum is checked by the
# service, this bound only keeps values inside a 64-bit column.
Amount = Annotated[StrictInt, Field(ge=1, le=10**15, description="Amount in minor units.")]


class Schema(BaseModel):
    """Input schemas: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)


class OutSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


T = TypeVar("T")


class Page(OutSchema, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
