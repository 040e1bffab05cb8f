"""The transport: a request described as a `Call`, and `_ClientCore`, the I/O-free
logic both clients drive. It refreshes the access token before it expires and once on a
401 `invalid_token`, retries a safe request (a GET, or a POST with an `Idempotency-Key`,
resent with the same key) after a network failure or a 502/503/504 with exponential
backoff (or the server's Retry-After), and turns a failed response into a typed error."""

from __future__ import annotations

import uuid
from collections.abc import (
    Callable,
    Generator,
    Mapping,
)
from dataclasses import dataclass, field
from typing import (
    Any,
    Generic,
    Literal,
    TypeVar,
)

import httpx

from banking.client.errors import BankingError, UnexpectedResponse, error_from_response
from banking.client.models import Tokens
from banking.client.parsing import _parse_with

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
USER_AGENT = "banking-client/1"
RETRY_STATUSES = frozenset({502, 503, 504})
# The longest wait between two attempts without a Retry-After: exponential backoff must
# not outgrow a failover (seconds) and leave a caller asleep once the service is back.
MAX_BACKOFF_S = 5.0


T = TypeVar("T")


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


Auth = Literal["bearer", "network", "none"]
Effect = Literal["store_tokens", "clear_tokens"]


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API request, described without doing any I/O."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Any = None
    params: Mapping[str, str | int | bool] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: Auth = "bearer"
    idempotency_key: str | None = None
    expect: frozenset[int] = frozenset({200, 201, 204})
    effect: Effect | None = None

    @property
    def retry_safe(self) -> bool:
        """Sending it twice has the effect of sending it once."""
        return self.method in {"GET", "HEAD"} or self.idempotency_key is not None


@dataclass(frozen=True, slots=True)
class _Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class _Refresh:
    """Ask the driver to refresh the tokens, unless the tokens have changed since
    `generation` (another request already refreshed them)."""

    generation: int


_Step = httpx.Request | _Sleep | _Refresh
_Steps = Generator[_Step, httpx.Response | None, T]


@dataclass(slots=True)
class _TokenState:
    access_token: str | None = None
    refresh_token: str | None = None
    refresh_at: float | None = None
    generation: int = 0

    def store(self, tokens: Tokens, *, now: float, margin_s: float) -> None:
        # Refresh `margin_s` before expiry, but never earlier than halfway through a
        # short-lived token's life.
        lead = min(margin_s, tokens.expires_in / 2)
        self.access_token = tokens.access_token
        self.refresh_token = tokens.refresh_token
        self.refresh_at = now + tokens.expires_in - lead
        self.generation += 1

    def clear(self) -> None:
        self.access_token = self.refresh_token = self.refresh_at = None
        self.generation += 1

    def due(self, now: float) -> bool:
        return (
            self.refresh_token is not None
            and self.refresh_at is not None
            and now >= self.refresh_at
        )


def _problem_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


class _ClientCore:
    """State and request logic shared by both clients; no I/O happens here."""

    def __init__(
        self,
        *,
        network_key: str | None,
        retries: int,
        backoff_s: float,
        refresh_margin_s: float,
        clock: Callable[[], float],
        access_token: str | None,
        refresh_token: str | None,
    ) -> None:
        self.network_key = network_key
        self.retries = retries
        self.backoff_s = backoff_s
        self.refresh_margin_s = refresh_margin_s
        self.clock = clock
        self._tokens = _TokenState(access_token, refresh_token)
        self._http_base: httpx.Client | httpx.AsyncClient

    @property
    def access_token(self) -> str | None:
        return self._tokens.access_token

    @property
    def refresh_token(self) -> str | None:
        return self._tokens.refresh_token

    def set_tokens(self, tokens: Tokens) -> None:
        """Use tokens obtained elsewhere (another client, a saved session)."""
        self._tokens.store(tokens, now=self.clock(), margin_s=self.refresh_margin_s)

    def _build(self, call: Call[Any]) -> httpx.Request:
        headers = dict(call.headers)
        if call.auth == "bearer" and self._tokens.access_token:
            headers["Authorization"] = f"Bearer {self._tokens.access_token}"
        elif call.auth == "network":
            if not self.network_key:
                raise BankingError("this call needs the card network key (network_key=...)")
            headers["X-Network-Key"] = self.network_key
        if call.idempotency_key is not None:
            headers["Idempotency-Key"] = call.idempotency_key
        return self._http_base.build_request(
            call.method, call.path, json=call.json, params=call.params, headers=headers
        )

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            with_header = response.headers.get("retry-after", "")
            if with_header.isdigit():
                return min(float(with_header), 30.0)
        return float(min(self.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S))

    def _exchange(self, call: Call[T]) -> _Steps[T]:
        attempt = 0
        refreshed = False
        while True:
            if call.auth == "bearer" and self._tokens.due(self.clock()):
                yield _Refresh(self._tokens.generation)
            generation = self._tokens.generation
            try:
                response = yield self._build(call)
            except httpx.TransportError:
                if not call.retry_safe or attempt >= self.retries:
                    raise
                attempt += 1
                yield _Sleep(self._delay(attempt, None))
                continue
            assert response is not None
            if (
                response.status_code == 401
                and call.auth == "bearer"
                and not refreshed
                and self._tokens.refresh_token is not None
                and _problem_code(response) == "invalid_token"
            ):
                refreshed = True
                yield _Refresh(generation)
                continue
            if (
                response.status_code in RETRY_STATUSES
                and call.retry_safe
                and attempt < self.retries
            ) or (
                # The first attempt with this key is still running on the server: ask
                # again with the same key (never a new one) and get its answer replayed.
                response.status_code == 409
                and call.idempotency_key is not None
                and attempt < self.retries
                and _problem_code(response) == "idempotency_key_in_flight"
            ):
                attempt += 1
                yield _Sleep(self._delay(attempt, response))
                continue
            return self._finish(call, response)

    def _refresh_steps(self, generation: int) -> _Steps[None]:
        if self._tokens.generation != generation or self._tokens.refresh_token is None:
            return
        call = _refresh_call(self._tokens.refresh_token)
        response = yield self._build(call)
        assert response is not None
        if response.status_code != 200:
            self._tokens.clear()
            raise error_from_response(response)
        self._finish(call, response)

    def _finish(self, call: Call[T], response: httpx.Response) -> T:
        if response.status_code not in call.expect:
            if response.status_code < 400:
                raise UnexpectedResponse(
                    f"{call.method} {call.path}: unexpected status {response.status_code}",
                    status=response.status_code,
                    body=response.text,
                )
            raise error_from_response(response)
        result = call.parse(response)
        if call.effect == "store_tokens":
            assert isinstance(result, Tokens)
            self._tokens.store(result, now=self.clock(), margin_s=self.refresh_margin_s)
        elif call.effect == "clear_tokens":
            self._tokens.clear()
        return result


def _refresh_call(refresh_token: str) -> Call[Tokens]:
    return Call(
        "POST",
        "/v1/auth/refresh",
        _parse_with(Tokens.from_json),
        json={"refresh_token": refresh_token},
        auth="none",
        expect=frozenset({200}),
        effect="store_tokens",
    )
