from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from banking.core.deps import AppSettings, Client, DbSession, Now
from banking.core.ratelimit import RateLimit
from banking.holders import service as holders
from banking.holders.schemas import HolderOut
from banking.identity import service as identity
from banking.identity.deps import CurrentUser
from banking.identity.models import User
from banking.identity.schemas import (
    LoginIn,
    MeOut,
    PasswordChangeIn,
    RefreshIn,
    SessionOut,
    SessionPage,
    SignupIn,
    TokenOut,
    UserOut,
)

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post("/signup", status_code=201, response_model=UserOut, dependencies=[RateLimit("signup")])
async def signup(body: SignupIn, session: DbSession, client: Client) -> User:
    """Create a member and their account-holder profile.

    The password must be 12-128 characters, not a common password and not contain the
    email's name. A taken email is answered with 409 `email_taken`.
    """
    return await identity.signup(session, request=body, client=client)


@router.post("/login", response_model=TokenOut, dependencies=[RateLimit("login")])
async def login(
    body: LoginIn, session: DbSession, settings: AppSettings, client: Client, now: Now
) -> TokenOut:
    """Exchange email and password for an access token and a refresh token.

    After 5 consecutive failures the user is locked out for 15 minutes; the answer is the
    same 401 `invalid_credentials` whether the email exists, the password is wrong or the
    user is locked.
    """
    return await identity.login(
        session,
        email=body.email,
        password=body.password,
        settings=settings,
        client=client,
        now=now,
    )


@router.post("/refresh", response_model=TokenOut, dependencies=[RateLimit("refresh")])
async def refresh(
    body: RefreshIn, session: DbSession, settings: AppSettings, client: Client, now: Now
) -> TokenOut:
    """Rotate a refresh token. Each one works once; presenting a used one again revokes
    the whole session (it was probably stolen)."""
    return await identity.refresh(
        session, refresh_token=body.refresh_token, settings=settings, client=client, now=now
    )


@router.post("/logout", status_code=204)
async def logout(principal: CurrentUser, session: DbSession, client: Client) -> Response:
    """End this session: its access and refresh tokens stop working at once."""
    await identity.logout(session, principal=principal, client=client)
    return Response(status_code=204)


@router.post("/logout-all", status_code=204)
async def logout_all(principal: CurrentUser, session: DbSession, client: Client) -> Response:
    """End every session of the caller, this one included."""
    await identity.logout_all(session, principal=principal, client=client)
    return Response(status_code=204)


# Per user, so a stolen access token cannot be used to guess the current password fast.
@router.post("/password", status_code=204, dependencies=[RateLimit("login", per="user")])
async def change_password(
    body: PasswordChangeIn, principal: CurrentUser, session: DbSession, client: Client
) -> Response:
    """Change the password; every other session is revoked."""
    await identity.change_password(
        session,
        principal=principal,
        current_password=body.current_password,
        new_password=body.new_password,
        client=client,
    )
    return Response(status_code=204)


@router.get("/sessions", response_model=SessionPage)
async def sessions(principal: CurrentUser, session: DbSession) -> SessionPage:
    """The caller's active sessions (devices), most recently used first.

    A user has few sessions, so the list comes in one page (`next_cursor` is null)."""
    rows = await identity.list_sessions(session, principal=principal)
    return SessionPage(
        items=[
            SessionOut.model_validate(row).model_copy(
                update={"current": row.id == principal.session_id}
            )
            for row in rows
        ]
    )


@router.delete("/sessions/{session_id}", status_code=204)
async def revoke_session(
    session_id: uuid.UUID, principal: CurrentUser, session: DbSession, client: Client
) -> Response:
    """Revoke one of the caller's sessions."""
    await identity.revoke_session(
        session, principal=principal, session_id=session_id, client=client
    )
    return Response(status_code=204)


@router.get("/me", response_model=MeOut)
async def me(principal: CurrentUser, session: DbSession) -> MeOut:
    """The caller: user id, email, role and the account-holder profile (null for staff
    accounts created without one)."""
    user = await identity.get_user(session, principal.user_id)
    holder = await holders.find_for_user(session, user_id=user.id)
    return MeOut(
        id=user.id,
        email=user.email,
        role=user.role,
        created_at=user.created_at,
        profile=HolderOut.of(holder, email=user.email) if holder else None,
    )
