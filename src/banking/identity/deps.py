"""The one authentication dependency every protected route uses, and the role check."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from banking.core.deps import AppSettings, DbSession
from banking.identity import service as identity
from banking.identity.models import Role
from banking.identity.service import InsufficientRole, InvalidAccessToken, Principal

_bearer = HTTPBearer(auto_error=False, description="Access token from /v1/auth/login.")


async def current_principal(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise InvalidAccessToken()
    principal = await identity.authenticate(
        session, token=credentials.credentials, settings=settings
    )
    request.state.user_id = str(principal.user_id)
    return principal


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
