"""The one authentication dependency every protected route uses, and the role check."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from banking.core import reads
from banking.core.config import Settings
from banking.core.db import Database, utcnow
from banking.core.security import AccessClaims
from banking.identity import service as identity
from banking.identity.models import Role
from banking.identity.service import InsufficientRole, InvalidAccessToken, Principal

bearer_scheme = HTTPBearer(auto_error=False, description="Access token from /v1/auth/login.")


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


async def current_claims(request: Request, credentials: Bearer) -> AccessClaims:
    """The claims without the session check: for a route that folds
    `identity.session_checked` into its own statement (one round trip in all)."""
    return verified_claims(request, credentials)


TokenClaims = Annotated[AccessClaims, Depends(current_claims)]


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
