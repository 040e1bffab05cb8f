"""Identity: sign-up, login, sessions and refresh-token rotation, lockout.

Guarantees: passwords are stored only as Argon2id hashes and refresh tokens only as
SHA-256 digests; a refresh token works once (its reuse revokes the whole session); an
access token stops working as soon as its session is revoked; after `lockout_threshold`
consecutive failures a user cannot log in for `lockout_duration_s`, and the response never
reveals whether the email exists. Each login reserves its attempt on the user's row before
the password is checked, so no more than `lockout_threshold` passwords are checked per
lockout window however many logins arrive at once (`tests/reliability/test_login_lockout.py`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, case, literal, null, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from banking.audit import service as audit
from banking.core import reads, security
from banking.core.config import Settings
from banking.core.db import UTCDateTime, utcnow, write_transaction
from banking.core.deps import ClientInfo
from banking.core.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
)
from banking.core.metrics import AUTH_EVENTS
from banking.core.prepared import Prepared
from banking.events import outbox
from banking.holders.models import AccountHolder
from banking.identity.models import AuthSession, RefreshToken, Role, User
from banking.identity.policy import password_problem
from banking.identity.schemas import SignupIn, TokenOut

MINIMUM_AGE_YEARS = 18


class EmailTaken(Conflict):
    code = "email_taken"
    title = "An account with this email cannot be created."


class WeakPassword(InvalidRequest):
    code = "weak_password"
    title = "The password does not meet the password policy."


class TooYoung(InvalidRequest):
    code = "underage"
    title = "Account holders must be at least 18 years old."


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    title = "The email or password is incorrect, or the account is temporarily locked."


class InvalidRefreshToken(Unauthorized):
    code = "invalid_refresh_token"
    title = "The refresh token is invalid, expired or revoked."


class InvalidAccessToken(Unauthorized):
    code = "invalid_token"
    title = "The access token is missing, invalid, expired or revoked."


class InsufficientRole(Forbidden):
    code = "insufficient_role"
    title = "Your role does not allow this operation."


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    role: Role

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.support, Role.admin)


def _age_on(birth: dt.date, today: dt.date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


async def signup(session: AsyncSession, *, request: SignupIn, client: ClientInfo) -> User:
    today = utcnow().date()
    if request.date_of_birth > today or _age_on(request.date_of_birth, today) < MINIMUM_AGE_YEARS:
        raise TooYoung()
    if request.date_of_birth.year < 1900:
        raise InvalidRequest("date_of_birth is not plausible.")
    problem = password_problem(request.password, request.email)
    if problem:
        raise WeakPassword(f"The password {problem}.")
    password_hash = await _hash(request.password)
    user = User(email=request.email, password_hash=password_hash, role=Role.member.value)
    try:
        async with write_transaction(session):
            session.add(user)
            await session.flush()
            session.add(
                AccountHolder(
                    user_id=user.id,
                    first_name=request.first_name,
                    last_name=request.last_name,
                    date_of_birth=request.date_of_birth,
                    phone=request.phone,
                )
            )
            await audit.record(
                session,
                event_type="user.signup",
                actor_id=user.id,
                target_type="user",
                target_id=user.id,
                client=client,
            )
    except IntegrityError as exc:
        raise EmailTaken() from exc
    AUTH_EVENTS.labels("signup").inc()
    return user


async def _open_session(
    session: AsyncSession, *, user: User, settings: Settings, client: ClientInfo, now: dt.datetime
) -> TokenOut:
    auth_session = AuthSession(
        user_id=user.id,
        created_at=now,
        last_used_at=now,
        expires_at=now + dt.timedelta(seconds=settings.refresh_token_ttl_s),
        ip=client.ip,
        user_agent=client.user_agent,
    )
    session.add(auth_session)
    await session.flush()
    # A login opens a new session: its owner hears of it (never the tokens).
    await outbox.emit(
        session,
        type="session.created",
        owner_id=user.id,
        subject_type="session",
        subject_id=auth_session.id,
        data={
            "id": auth_session.id,
            "created_at": auth_session.created_at,
            "last_used_at": auth_session.last_used_at,
            "expires_at": auth_session.expires_at,
            "ip": auth_session.ip,
            "user_agent": auth_session.user_agent,
        },
        created_at=now,
    )
    return await _issue_tokens(
        session, auth_session=auth_session, role=user.role, settings=settings, now=now
    )


async def _issue_tokens(
    session: AsyncSession,
    *,
    auth_session: AuthSession,
    role: str,
    settings: Settings,
    now: dt.datetime,
) -> TokenOut:
    refresh_token = security.new_opaque_token()
    session.add(
        RefreshToken(
            session_id=auth_session.id,
            token_hash=security.token_digest(refresh_token),
            created_at=now,
            expires_at=min(
                auth_session.expires_at, now + dt.timedelta(seconds=settings.refresh_token_ttl_s)
            ),
        )
    )
    access_token = security.issue_access_token(
        secret=settings.jwt_secret,
        user_id=auth_session.user_id,
        session_id=auth_session.id,
        role=role,
        ttl_s=settings.access_token_ttl_s,
        now=now,
    )
    return TokenOut(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=settings.access_token_ttl_s,
    )


class HashingBusy(ServiceUnavailable):
    code = "hashing_busy"
    title = "Too many password checks are waiting; retry in a moment."


async def _hash(password: str) -> str:
    try:
        return await security.hash_password_async(password)
    except security.HashingBusy as exc:
        raise HashingBusy(headers={"Retry-After": "1"}) from exc


async def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return await security.verify_password_async(password_hash, password)
    except security.HashingBusy as exc:
        raise HashingBusy(headers={"Retry-After": "1"}) from exc


@dataclass(frozen=True, slots=True)
class _Attempt:
    """A login attempt reserved on the user's row before the password is checked."""

    user_id: uuid.UUID
    password_hash: str
    role: str
    number: int
    """The attempt's place in the failure count (1 for the first since the last reset)."""
    locked_until: dt.datetime | None
    """Set when this very attempt used the last free place and so locked the user."""


async def _reserve_attempt(
    session: AsyncSession, *, email: str, settings: Settings, now: dt.datetime
) -> _Attempt | None:
    """Count the attempt as a failure before the password is checked, in one conditional
    UPDATE ... RETURNING: None when the email is unknown or the user is locked.

    The count and the lock change in the same statement, so however many logins arrive
    at once, at most `lockout_threshold` of them get a place per lockout window: the one
    that takes the last place locks the user. A lock that has lapsed starts a new count.
    A success gives its place back (`_finish_success`).
    """
    lapsed = User.locked_until.is_not(None)
    number = case((lapsed, 1), else_=User.failed_login_count + 1)
    until = now + dt.timedelta(seconds=settings.lockout_duration_s)
    row = (
        await session.execute(
            update(User)
            .where(
                User.email == email,
                or_(
                    and_(
                        User.locked_until.is_(None),
                        User.failed_login_count < settings.lockout_threshold,
                    ),
                    User.locked_until <= now,
                ),
            )
            .values(
                failed_login_count=number,
                locked_until=case(
                    (number >= settings.lockout_threshold, literal(until, UTCDateTime())),
                    else_=null(),
                ),
            )
            .returning(
                User.id, User.password_hash, User.role, User.failed_login_count, User.locked_until
            )
        )
    ).first()
    if row is None:
        return None
    return _Attempt(
        user_id=row[0], password_hash=row[1], role=row[2], number=row[3], locked_until=row[4]
    )


async def login(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    settings: Settings,
    client: ClientInfo,
    now: dt.datetime | None = None,
) -> TokenOut:
    """Check the password of a user whose attempt was reserved first (`_reserve_attempt`):
    at most `lockout_threshold` passwords are ever checked per lockout window, and a
    locked user is refused whatever the password. `tests/reliability/test_login_lockout.py`
    fires concurrent logins at a real server to show it."""
    now = now or utcnow()
    email = email.strip().lower()
    async with write_transaction(session):
        attempt = await _reserve_attempt(session, email=email, settings=settings, now=now)
    if attempt is None:
        # Unknown or locked: verify against the dummy hash so timing reveals nothing.
        await _verify(None, password)
        await _record_failed_login(
            session, attempt=None, email=email, settings=settings, client=client, now=now
        )
        raise InvalidCredentials()
    if not await _verify(attempt.password_hash, password):
        await _record_failed_login(
            session, attempt=attempt, email=email, settings=settings, client=client, now=now
        )
        raise InvalidCredentials()
    new_hash = (
        await _hash(password) if security.password_needs_rehash(attempt.password_hash) else None
    )
    async with write_transaction(session):
        if not await _finish_success(session, attempt=attempt, new_hash=new_hash, now=now):
            await _record_locked(session, user_id=attempt.user_id, client=client)
            locked_out = True
        else:
            locked_out = False
            user = await session.get_one(User, attempt.user_id)
            tokens = await _open_session(
                session, user=user, settings=settings, client=client, now=now
            )
            await audit.record(
                session,
                event_type="auth.login",
                actor_id=user.id,
                target_type="user",
                target_id=user.id,
                client=client,
            )
    if locked_out:
        AUTH_EVENTS.labels("login_failed").inc()
        raise InvalidCredentials()
    AUTH_EVENTS.labels("login").inc()
    return tokens


async def _finish_success(
    session: AsyncSession, *, attempt: _Attempt, new_hash: str | None, now: dt.datetime
) -> bool:
    """Give the attempt's place back; False when the user is locked (by attempts that
    came in while this password was being checked), and the login must be refused.

    When no attempt was reserved after this one, the count starts again from zero (and a
    lock this attempt took itself is lifted); otherwise only this attempt's place is
    returned, so the others still count.
    """
    last = User.failed_login_count == attempt.number
    values: dict[str, object] = {
        "failed_login_count": case((last, 0), else_=User.failed_login_count - 1),
        "locked_until": case((last, null()), else_=User.locked_until),
    }
    if new_hash is not None:
        values["password_hash"] = new_hash
    locked_until = (
        await session.execute(
            update(User)
            .where(User.id == attempt.user_id)
            .values(**values)
            .returning(User.locked_until)
        )
    ).scalar_one()
    return locked_until is None or locked_until <= now


async def _record_locked(session: AsyncSession, *, user_id: uuid.UUID, client: ClientInfo) -> None:
    await audit.record(
        session,
        event_type="auth.login",
        outcome="failure",
        actor_id=user_id,
        target_type="user",
        target_id=user_id,
        client=client,
        details={"reason": "locked"},
    )


async def _record_failed_login(
    session: AsyncSession,
    *,
    attempt: _Attempt | None,
    email: str,
    settings: Settings,
    client: ClientInfo,
    now: dt.datetime,
) -> None:
    """Persist the failure in its own transaction: the failed request must leave a trace."""
    AUTH_EVENTS.labels("login_failed").inc()
    async with write_transaction(session):
        if attempt is None:
            user_id = (
                await session.execute(select(User.id).where(User.email == email))
            ).scalar_one_or_none()
            if user_id is None:
                await audit.record(
                    session,
                    event_type="auth.login",
                    outcome="failure",
                    client=client,
                    details={"reason": "unknown_email"},
                )
            else:
                await _record_locked(session, user_id=user_id, client=client)
            return
        await audit.record(
            session,
            event_type="auth.login",
            outcome="failure",
            actor_id=attempt.user_id,
            target_type="user",
            target_id=attempt.user_id,
            client=client,
            details={"reason": "bad_password", "consecutive_failures": attempt.number},
        )
        if attempt.locked_until is not None:
            await audit.record(
                session,
                event_type="auth.lockout",
                outcome="success",
                actor_id=attempt.user_id,
                target_type="user",
                target_id=attempt.user_id,
                client=client,
                details={"locked_until": attempt.locked_until.isoformat()},
            )
            AUTH_EVENTS.labels("lockout").inc()


async def refresh(
    session: AsyncSession,
    *,
    refresh_token: str,
    settings: Settings,
    client: ClientInfo,
    now: dt.datetime | None = None,
) -> TokenOut:
    now = now or utcnow()
    digest = security.token_digest(refresh_token)
    failure: str | None = None
    async with write_transaction(session):
        row = (
            await session.execute(
                select(RefreshToken, AuthSession, User.role)
                .join(AuthSession, AuthSession.id == RefreshToken.session_id)
                .join(User, User.id == AuthSession.user_id)
                .where(RefreshToken.token_hash == digest)
            )
        ).first()
        if row is None:
            failure = "unknown"
        else:
            token, auth_session, role = row
            if auth_session.revoked_at is not None:
                failure = "revoked"
            elif token.used_at is not None:
                # A rotated token came back: someone holds a copy. Kill the whole family.
                failure = "reused"
                await _revoke_family(session, auth_session, client=client, now=now)
            elif token.expires_at <= now or auth_session.expires_at <= now:
                failure = "expired"
            else:
                claimed = await session.execute(
                    update(RefreshToken)
                    .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
                    .values(used_at=now)
                )
                if claimed.rowcount != 1:  # type: ignore[attr-defined]
                    # Another request rotated the same token at the same moment.
                    failure = "reused"
                    await _revoke_family(session, auth_session, client=client, now=now)
                else:
                    await session.execute(
                        update(AuthSession)
                        .where(AuthSession.id == auth_session.id)
                        .values(last_used_at=now, ip=client.ip, user_agent=client.user_agent)
                    )
                    tokens = await _issue_tokens(
                        session, auth_session=auth_session, role=role, settings=settings, now=now
                    )
                    await audit.record(
                        session,
                        event_type="auth.refresh",
                        actor_id=auth_session.user_id,
                        target_type="session",
                        target_id=auth_session.id,
                        client=client,
                    )
    # The transaction above has committed: a revocation persists although we answer 401.
    if failure is not None:
        AUTH_EVENTS.labels(f"refresh_{failure}").inc()
        raise InvalidRefreshToken()
    AUTH_EVENTS.labels("refresh").inc()
    return tokens


async def _revoke_family(
    session: AsyncSession, auth_session: AuthSession, *, client: ClientInfo, now: dt.datetime
) -> None:
    await _revoke(session, auth_session.id, reason="refresh_reuse", now=now)
    await audit.record(
        session,
        event_type="auth.refresh_reuse",
        outcome="failure",
        actor_id=auth_session.user_id,
        target_type="session",
        target_id=auth_session.id,
        client=client,
    )


async def _revoke(
    session: AsyncSession, session_id: uuid.UUID, *, reason: str, now: dt.datetime
) -> None:
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )


_AUTH_SESSION = cast(Table, AuthSession.__table__)
_USER = cast(Table, User.__table__)
# The columns that decide whether a token's session is still good, read once per request
# (the shared read path, identity/deps.py `Read`, and `authenticate`).
_SESSION_STATE = (_AUTH_SESSION.c.revoked_at, _AUTH_SESSION.c.expires_at, _USER.c.role)
_CHECK_SESSION = (
    select(*_SESSION_STATE)
    .select_from(_AUTH_SESSION.join(_USER, _USER.c.id == _AUTH_SESSION.c.user_id))
    .where(
        _AUTH_SESSION.c.id == bindparam("auth_session_id"),
        _AUTH_SESSION.c.user_id == bindparam("auth_user_id"),
    )
)
# On every authenticated request: straight on the DBAPI cursor (see core/prepared.py).
_PREPARED_CHECK_SESSION = Prepared(_CHECK_SESSION)


def decode_claims(token: str, *, settings: Settings) -> security.AccessClaims:
    """Check the token's signature and lifetime (no database); 401 when it is not valid."""
    try:
        return security.decode_access_token(token, secret=settings.jwt_secret)
    except security.InvalidToken as exc:
        raise InvalidAccessToken() from exc


def session_params(claims: security.AccessClaims) -> dict[str, Any]:
    return {"auth_session_id": claims.session_id, "auth_user_id": claims.user_id}


def session_checked(claims: security.AccessClaims, row: Any, *, now: dt.datetime) -> Principal:
    """The principal from a row of the session state columns (or None)."""
    if row is None or row[0] is not None or row[1] <= now:
        raise InvalidAccessToken()
    # The role comes from the database, so a demotion takes effect at once.
    return Principal(user_id=claims.user_id, session_id=claims.session_id, role=Role(row[2]))


def check_session_sync(
    connection: Connection, claims: security.AccessClaims, *, now: dt.datetime
) -> Principal:
    """The session check on a synchronous connection: one statement."""
    row = _PREPARED_CHECK_SESSION.first(connection, session_params(claims))
    return session_checked(claims, row, now=now)


async def authenticate(
    session: AsyncSession, *, token: str, settings: Settings, now: dt.datetime | None = None
) -> Principal:
    """Decode the JWT, then check its session and the user's current role in one query."""
    claims = decode_claims(token, settings=settings)
    row = (await session.execute(_CHECK_SESSION, session_params(claims))).first()
    return session_checked(claims, row, now=now or utcnow())


def emails_of_sync(connection: Connection, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """`emails_of` on the read path's connection."""
    if not user_ids:
        return {}
    rows = connection.execute(select(User.id, User.email).where(User.id.in_(user_ids)))
    return {row.id: row.email for row in rows}


async def emails_of(session: AsyncSession, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The email of each of these users (unknown ids are left out), for staff screens."""
    if not user_ids:
        return {}
    rows = await session.execute(select(User.id, User.email).where(User.id.in_(user_ids)))
    return {row.id: row.email for row in rows}


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound()
    return user


async def logout(session: AsyncSession, *, principal: Principal, client: ClientInfo) -> None:
    async with write_transaction(session):
        await _revoke(session, principal.session_id, reason="logout", now=utcnow())
        await audit.record(
            session,
            event_type="auth.logout",
            actor_id=principal.user_id,
            target_type="session",
            target_id=principal.session_id,
            client=client,
        )


async def logout_all(
    session: AsyncSession,
    *,
    principal: Principal,
    client: ClientInfo,
    except_current: bool = False,
    reason: str = "logout_all",
) -> int:
    async with write_transaction(session):
        count = await _revoke_all(session, principal, except_current=except_current, reason=reason)
        await audit.record(
            session,
            event_type="auth.logout_all",
            actor_id=principal.user_id,
            target_type="user",
            target_id=principal.user_id,
            client=client,
            details={"sessions_revoked": count},
        )
    return count


async def _revoke_all(
    session: AsyncSession, principal: Principal, *, except_current: bool, reason: str
) -> int:
    statement = update(AuthSession).where(
        AuthSession.user_id == principal.user_id, AuthSession.revoked_at.is_(None)
    )
    if except_current:
        statement = statement.where(AuthSession.id != principal.session_id)
    result = await session.execute(statement.values(revoked_at=utcnow(), revoked_reason=reason))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def change_password(
    session: AsyncSession,
    *,
    principal: Principal,
    current_password: str,
    new_password: str,
    client: ClientInfo,
) -> None:
    user = await get_user(session, principal.user_id)
    if not await _verify(user.password_hash, current_password):
        await audit.record_alone(
            session,
            event_type="auth.password_change",
            outcome="failure",
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
            client=client,
            details={"reason": "bad_password"},
        )
        raise InvalidCredentials("The current password is incorrect.")
    problem = password_problem(new_password, user.email)
    if problem:
        raise WeakPassword(f"The password {problem}.")
    if await _verify(user.password_hash, new_password):
        raise WeakPassword("The new password must differ from the current one.")
    new_hash = await _hash(new_password)
    async with write_transaction(session):
        await session.execute(
            update(User)
            .where(User.id == user.id)
            .values(password_hash=new_hash, password_changed_at=utcnow())
        )
        revoked = await _revoke_all(
            session, principal, except_current=True, reason="password_change"
        )
        await audit.record(
            session,
            event_type="auth.password_change",
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
            client=client,
            details={"sessions_revoked": revoked},
        )
        await outbox.emit(
            session,
            type="user.password_changed",
            owner_id=user.id,
            subject_type="user",
            subject_id=user.id,
            data={"id": user.id, "sessions_revoked": revoked},
        )


_HOLDER = cast(Table, AccountHolder.__table__)
_HOLDER_PREFIX = "holder_"
# The caller and their account-holder profile (if any) in one statement.
_ME = (
    select(
        _USER.c.id,
        _USER.c.email,
        _USER.c.role,
        _USER.c.created_at,
        *(column.label(_HOLDER_PREFIX + column.name) for column in _HOLDER.c),
    )
    .select_from(_USER.outerjoin(_HOLDER, _HOLDER.c.user_id == _USER.c.id))
    .where(_USER.c.id == bindparam("user_id"))
)


@dataclass(frozen=True, slots=True)
class MeView:
    user: Any
    """A row with the `User` attribute names used by `MeOut`."""
    holder: SimpleNamespace | None
    """The profile's columns under their `AccountHolder` names, or None."""


def me_sync(connection: Connection, principal: Principal) -> MeView:
    row = reads.first(connection, _ME, {"user_id": principal.user_id})
    if row is None:
        raise NotFound()
    values = row._asdict()
    holder = None
    if values[_HOLDER_PREFIX + "id"] is not None:
        holder = SimpleNamespace(
            **{column.name: values[_HOLDER_PREFIX + column.name] for column in _HOLDER.c}
        )
    return MeView(row, holder)


_SESSIONS = (
    select(_AUTH_SESSION)
    .where(
        _AUTH_SESSION.c.user_id == bindparam("user_id"),
        _AUTH_SESSION.c.revoked_at.is_(None),
        _AUTH_SESSION.c.expires_at > bindparam("now", type_=UTCDateTime()),
    )
    .order_by(_AUTH_SESSION.c.last_used_at.desc())
)


def list_sessions_sync(connection: Connection, principal: Principal) -> list[Any]:
    """The caller's active sessions, most recently used first."""
    return reads.rows(connection, _SESSIONS, {"user_id": principal.user_id, "now": utcnow()})


async def list_sessions(session: AsyncSession, *, principal: Principal) -> list[AuthSession]:
    now = utcnow()
    rows = await session.execute(
        select(AuthSession)
        .where(
            AuthSession.user_id == principal.user_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
        .order_by(AuthSession.last_used_at.desc())
    )
    return list(rows.scalars())


async def revoke_session(
    session: AsyncSession, *, principal: Principal, session_id: uuid.UUID, client: ClientInfo
) -> None:
    async with write_transaction(session):
        owned = await session.execute(
            update(AuthSession)
            .where(
                AuthSession.id == session_id,
                AuthSession.user_id == principal.user_id,
                AuthSession.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow(), revoked_reason="revoked_by_user")
        )
        if owned.rowcount != 1:  # type: ignore[attr-defined]
            raise NotFound()
        await audit.record(
            session,
            event_type="auth.session_revoked",
            actor_id=principal.user_id,
            target_type="session",
            target_id=session_id,
            client=client,
        )


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    role: Role,
    client: ClientInfo | None = None,
) -> User:
    """Create a user without an account-holder profile (staff, from the CLI)."""
    email = email.strip().lower()
    problem = password_problem(password, email)
    if problem:
        raise WeakPassword(f"The password {problem}.")
    user = User(email=email, password_hash=await _hash(password), role=role.value)
    try:
        async with write_transaction(session):
            session.add(user)
            await session.flush()
            await audit.record(
                session,
                event_type="user.created",
                target_type="user",
                target_id=user.id,
                client=client,
                details={"role": role.value},
            )
    except IntegrityError as exc:
        raise EmailTaken() from exc
    return user


async def set_role(
    session: AsyncSession,
    *,
    email: str,
    role: Role,
    actor_id: uuid.UUID | None = None,
    client: ClientInfo | None = None,
) -> User:
    """Change a user's role (CLI and admins only; the API never lets users raise their own)."""
    async with write_transaction(session):
        user = (
            await session.execute(select(User).where(User.email == email.strip().lower()))
        ).scalar_one_or_none()
        if user is None:
            raise NotFound("No user with that email.")
        if actor_id is not None and actor_id == user.id:
            raise InsufficientRole("Nobody may change their own role.")
        previous = user.role
        user.role = role.value
        await audit.record(
            session,
            event_type="user.role_changed",
            actor_id=actor_id,
            target_type="user",
            target_id=user.id,
            client=client,
            details={"from": previous, "to": role.value},
        )
    return user
