from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
import uuid

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from banking.audit.models import AuditEvent
from banking.core import security
from banking.core.db import utcnow
from banking.identity.models import AuthSession
from tests.conftest import TEST_SECRETS
from tests.factories import PASSWORD, login, make_member, make_staff, signup

NEW_PASSWORD = "Velvet-Orchard-Compass-77"


def _claims(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _events(app: FastAPI, event_type: str) -> list[AuditEvent]:
    async with app.state.db.sessionmaker() as session:
        rows = await session.execute(
            select(AuditEvent).where(AuditEvent.event_type == event_type).order_by(AuditEvent.id)
        )
        return list(rows.scalars())


async def _session_row(app: FastAPI, session_id: str) -> AuthSession:
    async with app.state.db.sessionmaker() as session:
        row = await session.get(AuthSession, uuid.UUID(session_id))
        assert row is not None
        return row


class TestSignup:
    async def test_signup_creates_a_member_with_a_profile(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        response = await signup(client, email="Grace.Hopper@Example.com", phone="+44 20 7946 0000")
        assert response.status_code == 201
        body = response.json()
        assert body["email"] == "grace.hopper@example.com"
        assert body["role"] == "member"
        assert uuid.UUID(body["id"])
        assert "password" not in response.text
        assert len(await _events(app, "user.signup")) == 1

    async def test_an_underage_applicant_is_refused(self, client: httpx.AsyncClient) -> None:
        seventeen = dt.date.today().replace(year=dt.date.today().year - 17)
        response = await signup(client, date_of_birth=seventeen.isoformat())
        assert response.status_code == 422
        assert response.json()["code"] == "underage"

    async def test_a_date_of_birth_in_the_future_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await signup(client, date_of_birth="2999-01-01")
        assert response.status_code == 422
        assert response.json()["code"] == "underage"

    @pytest.mark.parametrize(
        ("password", "reason"),
        [
            ("Short-1", "at least 12"),
            ("x" * 129, "at most 128"),
            ("password1234", "too common"),
            ("qwertyuiop123", "too common"),
            ("aaaaaaaaaaaaaaaa", "repetitive"),
        ],
    )
    async def test_a_weak_password_is_refused_with_the_reason(
        self, client: httpx.AsyncClient, password: str, reason: str
    ) -> None:
        response = await signup(client, password=password)
        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "weak_password"
        assert reason in body["detail"]

    async def test_a_password_containing_the_email_name_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await signup(
            client, email="lighthouse@example.com", password="My-Lighthouse-Keeper-9"
        )
        assert response.status_code == 422
        assert "email" in response.json()["detail"]

    async def test_a_duplicate_email_in_any_case_is_409_email_taken(
        self, client: httpx.AsyncClient
    ) -> None:
        assert (await signup(client, email="twin@example.com")).status_code == 201
        response = await signup(client, email="TWIN@Example.COM")
        assert response.status_code == 409
        body = response.json()
        assert body["code"] == "email_taken"
        assert "twin" not in body["detail"].lower()

    @pytest.mark.parametrize(
        "extra",
        [
            {"role": "admin"},
            {"id": "00000000-0000-0000-0000-000000000001"},
            {"balance": 1_000_000},
        ],
    )
    async def test_unknown_fields_are_rejected(
        self, client: httpx.AsyncClient, extra: dict[str, object]
    ) -> None:
        response = await signup(client, **extra)
        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "validation_error"
        assert [error["type"] for error in body["errors"]] == ["extra_forbidden"]

    async def test_an_invalid_email_is_a_validation_error(self, client: httpx.AsyncClient) -> None:
        response = await signup(client, email="not-an-email")
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "email"


class TestLogin:
    async def test_login_returns_a_short_lived_access_token_and_a_refresh_token(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        response = await login(client, member.email.upper())
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 15 * 60
        claims = _claims(body["access_token"])
        assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
        assert claims["sub"] == member.user_id
        assert claims["role"] == "member"
        assert {"jti", "iat", "exp", "sid"} <= set(claims)
        assert int(str(claims["exp"])) - int(str(claims["iat"])) == 15 * 60
        assert len(body["refresh_token"]) >= 40

    async def test_wrong_password_and_unknown_email_get_the_same_answer(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        wrong = await login(client, member.email, "Not-The-Password-123")
        unknown = await login(client, "nobody@example.com")
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json()["code"] == unknown.json()["code"] == "invalid_credentials"
        assert wrong.json()["detail"] == unknown.json()["detail"]
        assert wrong.headers["www-authenticate"] == "Bearer"

    async def test_failed_logins_are_audited(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        member = await make_member(client)
        await login(client, member.email, "Not-The-Password-123")
        events = await _events(app, "auth.login")
        assert [event.outcome for event in events] == ["success", "failure"]
        assert json.loads(events[1].details)["reason"] == "bad_password"


class TestLockout:
    async def test_five_failures_lock_the_account_until_the_window_passes(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        start = utcnow() - dt.timedelta(minutes=30)
        app.state.clock = lambda: start
        for _ in range(5):
            assert (await login(client, member.email, "Not-The-Password-123")).status_code == 401

        # Locked: even the right password is refused, with the usual answer.
        app.state.clock = lambda: start + dt.timedelta(minutes=14)
        locked = await login(client, member.email)
        assert locked.status_code == 401
        assert locked.json()["code"] == "invalid_credentials"

        # The 15-minute window has passed: the right password works again.
        app.state.clock = lambda: start + dt.timedelta(minutes=15, seconds=1)
        unlocked = await login(client, member.email)
        assert unlocked.status_code == 200
        lockouts = await _events(app, "auth.lockout")
        assert len(lockouts) == 1
        assert str(lockouts[0].target_id) == member.user_id

    async def test_a_success_resets_the_failure_count(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        for _ in range(4):
            await login(client, member.email, "Not-The-Password-123")
        assert (await login(client, member.email)).status_code == 200
        for _ in range(4):
            await login(client, member.email, "Not-The-Password-123")
        assert (await login(client, member.email)).status_code == 200
        assert await _events(app, "auth.lockout") == []


@pytest.mark.usefixtures("production_passwords")
class TestPasswordHashingOffTheLoop:
    """With the production parameters: the point is what a real check's cost does."""

    async def test_logins_being_checked_leave_the_event_loop_free(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        started = time.perf_counter()
        security.verify_password(security.hash_password(PASSWORD), "Not-The-Password-123")
        one_check_s = time.perf_counter() - started
        gaps: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.002)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        async def logins() -> None:
            await asyncio.gather(
                *(login(client, member.email, f"Not-The-Password-{index}") for index in range(3))
            )
            done.set()

        await asyncio.gather(ticker(), logins())
        # Checked on the event loop, each password would stall it for one whole check.
        assert max(gaps) < one_check_s / 2, (max(gaps), one_check_s)

    @pytest.mark.parametrize(
        "settings_overrides",
        [{"password_hash_workers": 1, "password_hash_queue": 0}],
        indirect=True,
    )
    async def test_a_flood_beyond_the_hashing_queue_is_refused_with_503(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        answers = await asyncio.gather(
            *(login(client, member.email, f"Not-The-Password-{index}") for index in range(4))
        )
        codes = sorted(answer.json()["code"] for answer in answers)
        assert "hashing_busy" in codes, codes
        busy = next(answer for answer in answers if answer.json()["code"] == "hashing_busy")
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "1"
        assert security.HASHING.pending == 0


class TestAccessTokens:
    async def test_a_valid_token_reaches_me(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        response = await client.get("/v1/auth/me", headers=member.headers)
        assert response.status_code == 200
        body = response.json()
        assert body["id"] == member.user_id
        assert body["role"] == "member"
        assert body["profile"]["first_name"] == "Ada"
        assert body["profile"]["email"] == member.email

    async def test_no_token_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/auth/me")
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_token"

    async def test_a_tampered_signature_is_401(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        header, payload, signature = member.access_token.split(".")
        claims = _claims(member.access_token) | {"role": "admin"}
        forged = f"{header}.{_b64(claims)}.{signature}"
        assert (await client.get("/v1/auth/me", headers=_bearer(forged))).status_code == 401
        flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
        tampered = f"{header}.{payload}.{flipped}"
        assert (await client.get("/v1/auth/me", headers=_bearer(tampered))).status_code == 401

    async def test_a_token_signed_with_another_secret_is_401(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        other = jwt.encode(_claims(member.access_token), "x" * 48, algorithm="HS256")
        assert (await client.get("/v1/auth/me", headers=_bearer(other))).status_code == 401

    async def test_an_alg_none_token_is_401(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(member.access_token))}."
        response = await client.get("/v1/auth/me", headers=_bearer(unsigned))
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_token"

    async def test_an_expired_token_is_401(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        claims = _claims(member.access_token)
        expired = security.issue_access_token(
            secret=TEST_SECRETS["jwt_secret"],
            user_id=uuid.UUID(str(claims["sub"])),
            session_id=uuid.UUID(str(claims["sid"])),
            role="member",
            ttl_s=60,
            now=utcnow() - dt.timedelta(minutes=5),
        )
        assert (await client.get("/v1/auth/me", headers=_bearer(expired))).status_code == 401

    async def test_a_token_of_a_revoked_session_is_401(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        assert (await client.post("/v1/auth/logout", headers=member.headers)).status_code == 204
        response = await client.get("/v1/auth/me", headers=member.headers)
        assert response.status_code == 401

    async def test_the_role_claim_is_not_trusted(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        claims = _claims(member.access_token)
        promoted = security.issue_access_token(
            secret=TEST_SECRETS["jwt_secret"],
            user_id=uuid.UUID(str(claims["sub"])),
            session_id=uuid.UUID(str(claims["sid"])),
            role="admin",
            ttl_s=60,
            now=utcnow(),
        )
        response = await client.get("/v1/admin/audit", headers=_bearer(promoted))
        assert response.status_code == 403


class TestRefresh:
    async def test_refresh_rotates_the_token(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        member = await make_member(client)
        response = await client.post(
            "/v1/auth/refresh", json={"refresh_token": member.refresh_token}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["refresh_token"] != member.refresh_token
        assert _claims(body["access_token"])["sid"] == _claims(member.access_token)["sid"]
        assert (await client.get("/v1/auth/me", headers=_bearer(body["access_token"]))).is_success
        assert len(await _events(app, "auth.refresh")) == 1

    async def test_reuse_of_a_rotated_token_revokes_the_whole_family(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        first = member.refresh_token
        rotated = (await client.post("/v1/auth/refresh", json={"refresh_token": first})).json()

        reuse = await client.post("/v1/auth/refresh", json={"refresh_token": first})
        assert reuse.status_code == 401
        assert reuse.json()["code"] == "invalid_refresh_token"

        # The legitimate holder's newer tokens die with the family.
        again = await client.post(
            "/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
        )
        assert again.status_code == 401
        me = await client.get("/v1/auth/me", headers=_bearer(rotated["access_token"]))
        assert me.status_code == 401
        # The revocation was committed although the request failed.
        row = await _session_row(app, str(_claims(member.access_token)["sid"]))
        assert row.revoked_at is not None
        assert row.revoked_reason == "refresh_reuse"
        assert len(await _events(app, "auth.refresh_reuse")) == 1

    async def test_an_unknown_refresh_token_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/auth/refresh", json={"refresh_token": "nope"})
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_refresh_token"

    async def test_an_expired_refresh_token_is_401(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        app.state.clock = lambda: utcnow() + dt.timedelta(days=15)
        response = await client.post(
            "/v1/auth/refresh", json={"refresh_token": member.refresh_token}
        )
        assert response.status_code == 401

    async def test_a_refresh_token_of_a_logged_out_session_is_401(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        await client.post("/v1/auth/logout", headers=member.headers)
        response = await client.post(
            "/v1/auth/refresh", json={"refresh_token": member.refresh_token}
        )
        assert response.status_code == 401


class TestLogout:
    async def test_logout_ends_only_this_session(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        other = (await login(client, member.email)).json()
        assert (await client.post("/v1/auth/logout", headers=member.headers)).status_code == 204
        assert (await client.get("/v1/auth/me", headers=member.headers)).status_code == 401
        assert (await client.get("/v1/auth/me", headers=_bearer(other["access_token"]))).is_success

    async def test_logout_all_ends_every_session(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        other = (await login(client, member.email)).json()
        response = await client.post("/v1/auth/logout-all", headers=member.headers)
        assert response.status_code == 204
        assert (await client.get("/v1/auth/me", headers=member.headers)).status_code == 401
        me = await client.get("/v1/auth/me", headers=_bearer(other["access_token"]))
        assert me.status_code == 401
        refresh = await client.post(
            "/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}
        )
        assert refresh.status_code == 401

    async def test_logout_needs_a_token(self, client: httpx.AsyncClient) -> None:
        assert (await client.post("/v1/auth/logout")).status_code == 401
        assert (await client.post("/v1/auth/logout-all")).status_code == 401


class TestPasswordChange:
    async def test_changing_the_password_revokes_the_other_sessions(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        other = (await login(client, member.email)).json()
        response = await client.post(
            "/v1/auth/password",
            headers=member.headers,
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        )
        assert response.status_code == 204
        assert (await client.get("/v1/auth/me", headers=member.headers)).is_success
        me = await client.get("/v1/auth/me", headers=_bearer(other["access_token"]))
        assert me.status_code == 401
        assert (await login(client, member.email)).status_code == 401
        assert (await login(client, member.email, NEW_PASSWORD)).status_code == 200
        assert len(await _events(app, "auth.password_change")) == 1

    async def test_a_wrong_current_password_is_refused_and_audited(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        response = await client.post(
            "/v1/auth/password",
            headers=member.headers,
            json={"current_password": "Wrong-Password-123", "new_password": NEW_PASSWORD},
        )
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_credentials"
        events = await _events(app, "auth.password_change")
        assert [event.outcome for event in events] == ["failure"]

    @pytest.mark.parametrize("new_password", ["password1234", PASSWORD])
    async def test_a_weak_or_unchanged_new_password_is_refused(
        self, client: httpx.AsyncClient, new_password: str
    ) -> None:
        member = await make_member(client)
        response = await client.post(
            "/v1/auth/password",
            headers=member.headers,
            json={"current_password": PASSWORD, "new_password": new_password},
        )
        assert response.status_code == 422
        assert response.json()["code"] == "weak_password"


class TestSessions:
    async def test_sessions_lists_the_devices_and_marks_this_one(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        await client.post(
            "/v1/auth/login",
            json={"email": member.email, "password": PASSWORD},
            headers={"User-Agent": "phone-app/1.0"},
        )
        response = await client.get("/v1/auth/sessions", headers=member.headers)
        assert response.status_code == 200
        body = response.json()
        assert body["next_cursor"] is None
        assert len(body["items"]) == 2
        assert sum(item["current"] for item in body["items"]) == 1
        assert {item["ip"] for item in body["items"]} == {"203.0.113.7"}
        assert "phone-app/1.0" in {item["user_agent"] for item in body["items"]}

    async def test_revoking_another_device_ends_its_tokens(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        other = (await login(client, member.email)).json()
        other_id = _claims(other["access_token"])["sid"]
        response = await client.delete(f"/v1/auth/sessions/{other_id}", headers=member.headers)
        assert response.status_code == 204
        me = await client.get("/v1/auth/me", headers=_bearer(other["access_token"]))
        assert me.status_code == 401
        listed = (await client.get("/v1/auth/sessions", headers=member.headers)).json()
        assert [item["id"] for item in listed["items"]] == [_claims(member.access_token)["sid"]]

    async def test_another_users_session_is_404_and_stays_alive(
        self, client: httpx.AsyncClient
    ) -> None:
        owner = await make_member(client)
        intruder = await make_member(client)
        owner_session = _claims(owner.access_token)["sid"]
        response = await client.delete(
            f"/v1/auth/sessions/{owner_session}", headers=intruder.headers
        )
        assert response.status_code == 404
        assert (await client.get("/v1/auth/me", headers=owner.headers)).is_success

    async def test_unknown_and_malformed_session_ids(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        unknown = await client.delete(f"/v1/auth/sessions/{uuid.uuid4()}", headers=member.headers)
        assert unknown.status_code == 404
        malformed = await client.delete("/v1/auth/sessions/not-a-uuid", headers=member.headers)
        assert malformed.status_code == 422


class TestRoles:
    async def test_a_member_is_refused_on_admin_routes(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        for path in ("/v1/admin/audit", "/v1/admin/account-holders"):
            response = await client.get(path, headers=member.headers)
            assert response.status_code == 403
            assert response.json()["code"] == "insufficient_role"

    async def test_support_reads_holders_but_not_the_audit_log(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        support = await make_staff(client, app, "support")
        assert (await client.get("/v1/admin/account-holders", headers=support.headers)).is_success
        assert (await client.get("/v1/admin/audit", headers=support.headers)).status_code == 403

    async def test_a_demotion_takes_effect_on_the_next_request(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        from banking.identity import service as identity
        from banking.identity.models import Role

        admin = await make_staff(client, app, "admin")
        assert (await client.get("/v1/admin/audit", headers=admin.headers)).is_success
        async with app.state.db.sessionmaker() as session:
            await identity.set_role(session, email=admin.email, role=Role.member)
        assert (await client.get("/v1/admin/audit", headers=admin.headers)).status_code == 403

    async def test_nobody_changes_their_own_role(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        from banking.core.errors import Forbidden
        from banking.identity import service as identity
        from banking.identity.models import Role

        admin = await make_staff(client, app, "support")
        async with app.state.db.sessionmaker() as session:
            with pytest.raises(Forbidden):
                await identity.set_role(
                    session,
                    email=admin.email,
                    role=Role.admin,
                    actor_id=uuid.UUID(admin.user_id),
                )
        me = await client.get("/v1/auth/me", headers=admin.headers)
        assert me.json()["role"] == "support"
