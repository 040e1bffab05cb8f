"""Reading responses: `_Reader` (typed access to a JSON object that raises
`UnexpectedResponse` on a wrong shape), list bodies and `Page`, and the small parsers a
`Call` uses to turn a response into its result."""

from __future__ import annotations

import datetime as dt
from collections.abc import (
    Callable,
)
from dataclasses import dataclass
from typing import (
    Any,
    Generic,
    TypeVar,
)

import httpx

from banking.client.errors import UnexpectedResponse

T = TypeVar("T")
JSON = dict[str, Any]


class _Reader:
    """Typed access to a JSON object, raising `UnexpectedResponse` on a wrong shape."""

    def __init__(self, data: Any, what: str) -> None:
        if not isinstance(data, dict):
            raise UnexpectedResponse(f"{what}: expected a JSON object, got {type(data).__name__}")
        self.data: JSON = data
        self.what = what

    def _get(self, name: str, kind: type[T] | tuple[type, ...], optional: bool) -> Any:
        value = self.data.get(name)
        if value is None:
            if optional:
                return None
            raise UnexpectedResponse(f"{self.what}: missing field {name!r}")
        # bool is an int in Python; an amount must never be one.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise UnexpectedResponse(f"{self.what}: field {name!r} has the wrong type")
        return value

    def text(self, name: str) -> str:
        return str(self._get(name, str, optional=False))

    def opt_text(self, name: str) -> str | None:
        value = self._get(name, str, optional=True)
        return None if value is None else str(value)

    def integer(self, name: str) -> int:
        return int(self._get(name, int, optional=False))

    def opt_integer(self, name: str) -> int | None:
        value = self._get(name, int, optional=True)
        return None if value is None else int(value)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self._get(name, bool, optional=True)
        return default if value is None else bool(value)

    def opt_flag(self, name: str) -> bool | None:
        value = self._get(name, bool, optional=True)
        return None if value is None else bool(value)

    def opt_datetime(self, name: str) -> dt.datetime | None:
        value = self.opt_text(name)
        if value is None:
            return None
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise UnexpectedResponse(f"{self.what}: field {name!r} is not a timestamp") from exc

    def array(self, name: str) -> list[Any]:
        value = self._get(name, list, optional=True)
        return list(value or [])

    def obj(self, name: str) -> JSON | None:
        value = self._get(name, dict, optional=True)
        return None if value is None else dict(value)


def _items(data: Any, what: str) -> tuple[list[Any], str | None]:
    """A list body: `{"items": [...], "next_cursor": ...}` or a bare JSON array."""
    if isinstance(data, list):
        return data, None
    reader = _Reader(data, what)
    return reader.array("items"), reader.opt_text("next_cursor")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise UnexpectedResponse(
            "the response is not JSON", status=response.status_code, body=response.text
        ) from exc


def _replayed(response: httpx.Response) -> bool:
    return str(response.headers.get("idempotent-replayed", "")).lower() == "true"


def _parse_with(reader: Callable[[Any], T]) -> Callable[[httpx.Response], T]:
    return lambda response: reader(_json(response))


def _parse_list(reader: Callable[[Any], T], what: str) -> Callable[[httpx.Response], list[T]]:
    return lambda response: [reader(item) for item in _items(_json(response), what)[0]]


def _parse_page(reader: Callable[[Any], T], what: str) -> Callable[[httpx.Response], Page[T]]:
    def parse(response: httpx.Response) -> Page[T]:
        items, cursor = _items(_json(response), what)
        return Page([reader(item) for item in items], cursor)

    return parse


def _no_content(_response: httpx.Response) -> None:
    return None


def _text(response: httpx.Response) -> str:
    return response.text


def _bytes(response: httpx.Response) -> bytes:
    return response.content


def _raw_json(response: httpx.Response) -> JSON:
    return _Reader(_json(response), "response").data
