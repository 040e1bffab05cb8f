"""The two faces: `BankingClient` (blocking, thread-safe) and `AsyncBankingClient`
(asyncio). Each drives the shared request generator (`_ClientCore._exchange`) with its own
I/O, sleeps and refresh lock; every operation comes from the API mixins."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
)
from typing import (
    Any,
    TypeVar,
)

import httpx

from banking.client.accounts_api import _AccountsApi
from banking.client.operations import _AsyncFace, _BlockingFace
from banking.client.parsing import Page
from banking.client.services_api import _ServicesApi
from banking.client.transport import DEFAULT_BASE_URL, USER_AGENT, Call, _Refresh, _Sleep, _Steps

T = TypeVar("T")
R = TypeVar("R")


class _Api(_AccountsApi, _ServicesApi):
    """Every API operation, each written once for both clients."""


def _http_options(base_url: str, timeout_s: float) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "timeout": timeout_s,
        "headers": {"User-Agent": USER_AGENT, "Accept": "application/json"},
    }


class BankingClient(_Api, _BlockingFace):
    """Blocking client; safe to share between threads (token refreshes are serialized)."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 10.0,
        network_key: str | None = None,
        retries: int = 2,
        backoff_s: float = 0.2,
        refresh_margin_s: float = 30.0,
        access_token: str | None = None,
        refresh_token: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            network_key=network_key,
            retries=retries,
            backoff_s=backoff_s,
            refresh_margin_s=refresh_margin_s,
            clock=clock,
            access_token=access_token,
            refresh_token=refresh_token,
        )
        self._http = httpx.Client(transport=transport, **_http_options(base_url, timeout_s))
        self._http_base = self._http
        self._sleep = sleep
        self._refresh_lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BankingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _perform(self, call: Call[T]) -> T:
        return self._drive(self._exchange(call))

    def _drive(self, steps: _Steps[R]) -> R:
        reply: httpx.Response | None = None
        failure: httpx.TransportError | None = None
        while True:
            try:
                step = steps.throw(failure) if failure is not None else steps.send(reply)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            reply, failure = None, None
            if isinstance(step, _Sleep):
                self._sleep(step.seconds)
            elif isinstance(step, _Refresh):
                with self._refresh_lock:
                    self._drive(self._refresh_steps(step.generation))
            else:
                try:
                    reply = self._http.send(step)
                except httpx.TransportError as exc:
                    failure = exc

    def _walk(self, page_call: Callable[[str | None], Call[Page[T]]]) -> Iterator[T]:
        cursor: str | None = None
        while True:
            page = self._perform(page_call(cursor))
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor


async def _async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class AsyncBankingClient(_Api, _AsyncFace):
    """Asyncio client; pass `transport=httpx.ASGITransport(app)` to call an app in-process."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 10.0,
        network_key: str | None = None,
        retries: int = 2,
        backoff_s: float = 0.2,
        refresh_margin_s: float = 30.0,
        access_token: str | None = None,
        refresh_token: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = _async_sleep,
    ) -> None:
        super().__init__(
            network_key=network_key,
            retries=retries,
            backoff_s=backoff_s,
            refresh_margin_s=refresh_margin_s,
            clock=clock,
            access_token=access_token,
            refresh_token=refresh_token,
        )
        self._http = httpx.AsyncClient(transport=transport, **_http_options(base_url, timeout_s))
        self._http_base = self._http
        self._sleep = sleep
        self._refresh_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncBankingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _perform(self, call: Call[T]) -> T:
        return await self._drive(self._exchange(call))

    async def _drive(self, steps: _Steps[R]) -> R:
        reply: httpx.Response | None = None
        failure: httpx.TransportError | None = None
        while True:
            try:
                step = steps.throw(failure) if failure is not None else steps.send(reply)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            reply, failure = None, None
            if isinstance(step, _Sleep):
                await self._sleep(step.seconds)
            elif isinstance(step, _Refresh):
                async with self._refresh_lock:
                    await self._drive(self._refresh_steps(step.generation))
            else:
                try:
                    reply = await self._http.send(step)
                except httpx.TransportError as exc:
                    failure = exc

    async def _walk(self, page_call: Callable[[str | None], Call[Page[T]]]) -> AsyncIterator[T]:
        cursor: str | None = None
        while True:
            page = await self._perform(page_call(cursor))
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor
