"""How an API method is written once for both clients: the `operation` and `paginated`
descriptors give a blocking method on `BankingClient` and an awaitable (or async iterator)
one on `AsyncBankingClient`; plus the helpers the operations share."""

from __future__ import annotations

import functools
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
)
from typing import (
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    TypeVar,
    overload,
)

from banking.client.movements import Transaction
from banking.client.parsing import JSON, Page, _parse_page
from banking.client.transport import Call, new_idempotency_key

T = TypeVar("T")
P = ParamSpec("P")


class _BlockingFace:
    """Marks the blocking client (`BankingClient`): its operations return results."""

    __slots__ = ()


class _AsyncFace:
    """Marks the asyncio client (`AsyncBankingClient`): its operations return awaitables."""

    __slots__ = ()


class _Operation(Generic[P, T]):
    """An API method written once: `build` describes the request; reading the attribute
    on a client gives a blocking method (`BankingClient`) or an awaitable one
    (`AsyncBankingClient`) with the same parameters."""

    def __init__(self, build: Callable[Concatenate[Any, P], Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, client: None, owner: type[Any]) -> _Operation[P, T]: ...
    @overload
    def __get__(self, client: _AsyncFace, owner: type[Any]) -> Callable[P, Awaitable[T]]: ...
    @overload
    def __get__(self, client: _BlockingFace, owner: type[Any]) -> Callable[P, T]: ...
    def __get__(self, client: Any, owner: type[Any]) -> Any:
        if client is None:
            return self
        build = self.build

        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return client._perform(build(client, *args, **kwargs))

        functools.update_wrapper(method, build)
        return method


class _Paginated(Generic[P, T]):
    """A list walked page by page: an iterator (sync) or an async iterator (async)."""

    def __init__(
        self, build: Callable[Concatenate[Any, P], Callable[[str | None], Call[Page[T]]]]
    ) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, client: None, owner: type[Any]) -> _Paginated[P, T]: ...
    @overload
    def __get__(self, client: _AsyncFace, owner: type[Any]) -> Callable[P, AsyncIterator[T]]: ...
    @overload
    def __get__(self, client: _BlockingFace, owner: type[Any]) -> Callable[P, Iterator[T]]: ...
    def __get__(self, client: Any, owner: type[Any]) -> Any:
        if client is None:
            return self
        build = self.build

        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return client._walk(build(client, *args, **kwargs))

        functools.update_wrapper(method, build)
        return method


def operation(build: Callable[Concatenate[Any, P], Call[T]]) -> _Operation[P, T]:
    return _Operation(build)


def paginated(
    build: Callable[Concatenate[Any, P], Callable[[str | None], Call[Page[T]]]],
) -> _Paginated[P, T]:
    return _Paginated(build)


def _key(idempotency_key: str | None) -> str:
    return idempotency_key if idempotency_key is not None else new_idempotency_key()


def _body(**fields: Any) -> JSON:
    """A JSON body without the optional fields the caller left out."""
    return {name: value for name, value in fields.items() if value is not None}


def _transactions_call(
    account_id: str, limit: int, cursor: str | None, filters: Mapping[str, str | int]
) -> Call[Page[Transaction]]:
    params: dict[str, str | int | bool] = {"limit": limit, **filters}
    if cursor is not None:
        params["cursor"] = cursor
    return Call(
        "GET",
        f"/v1/accounts/{account_id}/transactions",
        _parse_page(Transaction.from_json, "transactions"),
        params=params,
    )
