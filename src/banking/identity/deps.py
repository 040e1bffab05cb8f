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

_bearer = HTTPBearer(auto_error=False, description="Access token from /v1/auth/login.")


# Settings and the database come from `request.app.state`, not from dependencies of
# their own: every dependency FastAPI solves costs CPU on every request of the hot path.
async def current_claims(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AccessClaims:
    """The bearer token's verified claims, without the session check: for a route that
    folds `identity.session_checked` into its own statement (one round trip in all)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise InvalidAccessToken()
    settings: Settings = request.app.state.settings
    claims = identity.decode_claims(credentials.credentials, settings=settings)
    request.state.user_id = str(claims.user_id)
    return claims


TokenClaims = Annotated[AccessClaims, Depends(current_claims)]


async def current_principal(request: Request, claims: TokenClaims) -> Principal:
    # One statement in one hand-off (SQLite) or one round trip (PostgreSQL), on its own
    # connection: the route's session is not opened unless the route reads through it.
    db: Database = request.app.state.db
    return await reads.run(
        db, functools.partial(identity.check_session_sync, claims=claims, now=utcnow())
    )


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
