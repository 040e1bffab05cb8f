from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response
from sqlalchemy.engine import Connection

from banking.core.deps import AppSettings, Client, DbSession, Now
from banking.core.errors import PROBLEM_JSON, Forbidden
from banking.core.ratelimit import RateLimit
from banking.holders.schemas import HolderOut
from banking.identity import service as identity
from banking.identity.deps import CurrentUser, MemberRead
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
from banking.identity.service import Principal

router = APIRouter(prefix="/v1/auth", tags=["auth"])

# The web bank keeps its refresh token where page scripts cannot read it: an HttpOnly,
# Secure, SameSite=Strict cookie sent only to the refresh route. The access token stays in
# the page's memory. A second, readable cookie without any secret tells the page that a
# refresh is worth trying after a reload (so a logged-out visitor sends no doomed request).
REFRESH_COOKIE = "banking_refresh"
SIGNED_IN_COOKIE = "banking_signed_in"
REFRESH_PATH = "/v1/auth/refresh"
CSRF_HEADER = "x-requested-with"
CSRF_VALUE = "banking-web"


class CsrfRejected(Forbidden):
    code = "csrf_rejected"
    title = "A refresh by cookie needs the web bank's request header and origin."


def _set_session_cookies(response: Response, tokens: TokenOut, *, max_age_s: int) -> TokenOut:
    assert tokens.refresh_token is not None  # login and refresh always issue one
    response.set_cookie(
        REFRESH_COOKIE,
        tokens.refresh_token,
        max_age=max_age_s,
        path=REFRESH_PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )
    response.set_cookie(
        SIGNED_IN_COOKIE, "1", max_age=max_age_s, path="/", secure=True, samesite="strict"
    )
    return tokens.model_copy(update={"refresh_token": None})


def _clear_session_cookies(response: Response) -> None:
    response.delete_cookie(
        REFRESH_COOKIE, path=REFRESH_PATH, secure=True, httponly=True, samesite="strict"
    )
    response.delete_cookie(SIGNED_IN_COOKIE, path="/", secure=True, samesite="strict")


def _check_same_origin(request: Request) -> None:
    """CSRF defence for the cookie: besides SameSite=Strict, the request must carry a
    header a cross-site form cannot send (a cross-origin script would need a CORS
    preflight we never grant), and its Origin, when the browser sends one, must be ours."""
    if request.headers.get(CSRF_HEADER) != CSRF_VALUE:
        raise CsrfRejected()
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise CsrfRejected()


@router.post("/signup", status_code=201, response_model=UserOut, dependencies=[RateLimit("signup")])
async def signup(body: SignupIn, session: DbSession, client: Client) -> User:
    """Create a member and their account-holder profile.

    The password must be 12-128 characters, not a common password and not contain the
    email's name. A taken email is answered with 409 `email_taken`.
    """
    return await identity.signup(session, request=body, client=client)


@router.post("/login", response_model=TokenOut, dependencies=[RateLimit("login")])
async def login(
    body: LoginIn,
    session: DbSession,
    settings: AppSettings,
    client: Client,
    now: Now,
    response: Response,
) -> TokenOut:
    """Exchange email and password for an access token and a refresh token.

    After 5 consecutive failures the user is locked out for 15 minutes; the answer is the
    same 401 `invalid_credentials` whether the email exists, the password is wrong or the
    user is locked. With `refresh_cookie: true` (the web bank) the refresh token is set as
    an HttpOnly, Secure, SameSite=Strict cookie for `/v1/auth/refresh` and `refresh_token`
    is null.
    """
    tokens = await identity.login(
        session,
        email=body.email,
        password=body.password,
        settings=settings,
        client=client,
        now=now,
    )
    if body.refresh_cookie:
        return _set_session_cookies(response, tokens, max_age_s=settings.refresh_token_ttl_s)
    return tokens


@router.post(
    "/refresh",
    response_model=TokenOut,
    dependencies=[RateLimit("refresh")],
    responses={
        403: {
            "description": CsrfRejected.title,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    },
)
async def refresh(
    request: Request,
    response: Response,
    session: DbSession,
    settings: AppSettings,
    client: Client,
    now: Now,
    body: RefreshIn | None = None,
) -> TokenOut:
    """Rotate a refresh token. Each one works once; presenting a used one again revokes
    the whole session (it was probably stolen).

    Without `refresh_token` in the body, the refresh cookie set by a login with
    `refresh_cookie: true` is used and rotated (the new one is set as a cookie again); the
    request must then carry `X-Requested-With: banking-web` and, if it has an `Origin`, come
    from this server's origin, else 403 `csrf_rejected`.
    """
    if body is not None and body.refresh_token is not None:
        return await identity.refresh(
            session, refresh_token=body.refresh_token, settings=settings, client=client, now=now
        )
    _check_same_origin(request)
    presented = request.cookies.get(REFRESH_COOKIE)
    if not presented or len(presented) > 256:
        raise identity.InvalidRefreshToken()
    tokens = await identity.refresh(
        session, refresh_token=presented, settings=settings, client=client, now=now
    )
    return _set_session_cookies(response, tokens, max_age_s=settings.refresh_token_ttl_s)


@router.post("/logout", status_code=204)
async def logout(principal: CurrentUser, session: DbSession, client: Client) -> Response:
    """End this session: its access and refresh tokens stop working at once (the web
    bank's refresh cookie is cleared too)."""
    await identity.logout(session, principal=principal, client=client)
    response = Response(status_code=204)
    _clear_session_cookies(response)
    return response


@router.post("/logout-all", status_code=204)
async def logout_all(principal: CurrentUser, session: DbSession, client: Client) -> Response:
    """End every session of the caller, this one included."""
    await identity.logout_all(session, principal=principal, client=client)
    response = Response(status_code=204)
    _clear_session_cookies(response)
    return response


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
async def sessions(read: MemberRead) -> Response:
    """The caller's active sessions (devices), most recently used first.

    A user has few sessions, so the list comes in one page (`next_cursor` is null)."""

    def listing(connection: Connection, principal: Principal) -> SessionPage:
        rows = identity.list_sessions_sync(connection, principal)
        return SessionPage(
            items=[
                SessionOut.model_validate(row).model_copy(
                    update={"current": row.id == principal.session_id}
                )
                for row in rows
            ]
        )

    return await read.json(listing)


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
async def me(read: MemberRead) -> Response:
    """The caller: user id, email, role and the account-holder profile (null for staff
    accounts created without one)."""

    def caller(connection: Connection, principal: Principal) -> MeOut:
        view = identity.me_sync(connection, principal)
        user = view.user
        return MeOut(
            id=user.id,
            email=user.email,
            role=user.role,
            created_at=user.created_at,
            profile=HolderOut.of(view.holder, email=user.email) if view.holder else None,
        )

    return await read.json(caller)
