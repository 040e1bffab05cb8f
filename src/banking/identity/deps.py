"""Authentication for every protected route, the role check, and the shared read path.

Every GET route of a member, support or admin reads through `Read` (`MemberRead`,
`StaffRead`, `AdminRead`): the token is verified without the database when the
dependency runs; then `Read.run(fn)` checks the session (and the current role) and runs
the route's read `fn(connection, principal)` on one read-only connection checked out once
(core/reads.py: inline autocommit on SQLite, one pooled autocommit connection on
PostgreSQL), with Core statements and no ORM unit of work; `Read.json` serializes the
route's schema once, straight to bytes. A new GET route is fast by default; reads never
write (tests/integration/test_reads_never_write.py).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel
from pydantic_core import to_json
from sqlalchemy.engine import Connection
from starlette.responses import Response

from banking.core import reads
from banking.core.config import Settings
from banking.core.db import Database, utcnow
from banking.core.deps import bearer_scheme, now_of
from banking.core.replica import Replica
from banking.core.security import AccessClaims
from banking.identity import service as identity
from banking.identity.models import Role
from banking.identity.service import InsufficientRole, InvalidAccessToken, Principal

T = TypeVar("T")


# Settings and the database come from `request.app.state`, and the dependencies are
# flat (each takes the bearer credentials itself): every dependency FastAPI solves costs
# CPU on every request of the money hot path.
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


def verified_claims(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> AccessClaims:
    """The bearer token's verified claims (signature and lifetime; no database)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise InvalidAccessToken()
    settings: Settings = request.app.state.settings
    claims = identity.decode_claims(credentials.credentials, settings=settings)
    request.state.user_id = str(claims.user_id)
    return claims


async def authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """Verified claims, then the session and current role: one statement in one
    hand-off (SQLite) or one round trip (PostgreSQL), on a connection of its own: the
    route's session is not opened unless the route reads through it."""
    claims = verified_claims(request, credentials)
    db: Database = request.app.state.db
    return await reads.run(
        db, functools.partial(identity.check_session_sync, claims=claims, now=utcnow())
    )


async def current_principal(request: Request, credentials: Bearer) -> Principal:
    return await authenticate(request, credentials)


CurrentUser = Annotated[Principal, Depends(current_principal)]


def require_role(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    allowed = frozenset(roles)

    async def check(principal: CurrentUser) -> Principal:
        if principal.role not in allowed:
            raise InsufficientRole()
        return principal

    return check


StaffUser = Annotated[Principal, Depends(require_role(Role.support, Role.admin))]
AdminUser = Annotated[Principal, Depends(require_role(Role.admin))]


@dataclass(frozen=True, slots=True)
class Read:
    """One authenticated read (see the module docstring). `now` is the request's time
    (`app.state.clock`): what a read computes as of now (lapsed card holds) uses it."""

    db: Database
    claims: AccessClaims
    roles: frozenset[Role] | None
    now: dt.datetime
    replica: Replica | None = None

    @property
    def settings(self) -> Settings:
        return self.db.settings

    def _principal(self, connection: Connection) -> Principal:
        """The session check (and the current role), on the read's connection."""
        principal = identity.check_session_sync(connection, self.claims, now=utcnow())
        if self.roles is not None and principal.role not in self.roles:
            raise InsufficientRole()
        return principal

    @staticmethod
    def _as(
        fn: Callable[[Connection, Principal], T], principal: Principal, *, snapshot: bool
    ) -> Callable[[Connection], T]:
        def work(connection: Connection) -> T:
            if not snapshot:
                return fn(connection, principal)
            with reads.snapshot(connection):
                return fn(connection, principal)

        return work

    def _work(
        self, fn: Callable[[Connection, Principal], T], *, snapshot: bool = False
    ) -> Callable[[Connection], T]:
        def work(connection: Connection) -> T:
            return self._as(fn, self._principal(connection), snapshot=snapshot)(connection)

        return work

    async def run(
        self,
        fn: Callable[[Connection, Principal], T],
        *,
        snapshot: bool = False,
        replica: bool = False,
    ) -> T:
        """The session check, then `fn(connection, principal)`, on one connection. With
        `snapshot`, `fn`'s statements all see one state of the database (a read-only
        transaction) instead of each its own. With `replica`, and a read replica
        configured, the session is checked on the primary (a session just created, or
        just revoked, is known there at once) and `fn` runs on the replica when it has
        replayed this member's own writes (core/replica.py), else on the primary."""
        if replica and self.replica is not None:
            principal = await reads.run(self.db, self._principal)
            work = self._as(fn, principal, snapshot=snapshot)
            return await self.replica.run(str(self.claims.user_id), work)
        return await reads.run(self.db, self._work(fn, snapshot=snapshot))

    async def json(
        self,
        fn: Callable[[Connection, Principal], BaseModel | Mapping[str, Any]],
        *,
        replica: bool = False,
    ) -> Response:
        """`run`, then the answer serialized once: a model (already validated) by its
        schema; a plain mapping (JSON values, UUIDs, datetimes) as it is, with pydantic's
        encoder, so both write UUIDs and times alike. A mapping is for a list whose rows
        are built in the route schema's shape at the cost of a dict each (the history: held to
        its schema byte for byte by tests/history_shape.py)."""
        out = await self.run(fn, replica=replica)
        if isinstance(out, BaseModel):
            return Response(out.model_dump_json(), media_type="application/json")
        return Response(to_json(out), media_type="application/json")


def _read_dependency(roles: frozenset[Role] | None) -> Callable[..., Coroutine[Any, Any, Read]]:
    async def read(request: Request, credentials: Bearer) -> Read:
        claims = verified_claims(request, credentials)
        state = request.app.state
        return Read(state.db, claims, roles, now_of(request), getattr(state, "replica", None))

    return read


MemberRead = Annotated[Read, Depends(_read_dependency(None))]
StaffRead = Annotated[Read, Depends(_read_dependency(frozenset({Role.support, Role.admin})))]
AdminRead = Annotated[Read, Depends(_read_dependency(frozenset({Role.admin})))]


async def run_read(request: Request, fn: Callable[[Connection], T]) -> T:
    """A read for a route whose caller is already authenticated (e.g. by a per-user rate
    limit) or is not a person (the card network): `fn(connection)` on the read path."""
    db: Database = request.app.state.db
    return await reads.run(db, fn)
