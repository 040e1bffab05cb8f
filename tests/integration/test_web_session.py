"""The web bank's session: the refresh token in an HttpOnly cookie scoped to the refresh
route, rotated on every refresh, guarded against cross-site use, cleared on logout."""

from __future__ import annotations

from http.cookies import SimpleCookie

import httpx

from tests.factories import PASSWORD, signup

WEB = {"X-Requested-With": "banking-web"}


def _cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    """Each Set-Cookie header of a response, by cookie name."""
    found: dict[str, SimpleCookie] = {}
    for header in response.headers.get_list("set-cookie"):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        for name in parsed:
            found[name] = parsed
    return found


def _refresh_cookie(response: httpx.Response) -> str:
    return _cookies(response)["banking_refresh"]["banking_refresh"].value


async def _web_login(client: httpx.AsyncClient) -> httpx.Response:
    user = (await signup(client)).json()
    response = await client.post(
        "/v1/auth/login",
        json={"email": user["email"], "password": PASSWORD, "refresh_cookie": True},
    )
    assert response.status_code == 200, response.text
    return response


async def _refresh(
    client: httpx.AsyncClient, token: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    # httpx keeps Secure cookies for https only; the test server speaks http, so the
    # cookie goes in by hand exactly as the browser would send it.
    return await client.post(
        "/v1/auth/refresh",
        headers={"Cookie": f"banking_refresh={token}", **(WEB if headers is None else headers)},
    )


def _origin(client: httpx.AsyncClient) -> str:
    return f"{client.base_url.scheme}://{client.base_url.netloc.decode()}"


class TestWebSession:
    async def test_login_sets_an_httponly_strict_cookie_for_the_refresh_path_only(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await _web_login(client)
        body = response.json()
        assert body["refresh_token"] is None
        assert body["access_token"]
        cookie = _cookies(response)["banking_refresh"]["banking_refresh"]
        assert cookie["httponly"] is True
        assert cookie["secure"] is True
        assert cookie["samesite"] == "strict"
        assert cookie["path"] == "/v1/auth/refresh"
        assert int(cookie["max-age"]) > 0
        hint = _cookies(response)["banking_signed_in"]["banking_signed_in"]
        assert hint.value == "1"
        assert hint["httponly"] == ""  # readable by the page, and holds no secret

    async def test_a_refresh_by_cookie_rotates_it_and_keeps_one_session(
        self, client: httpx.AsyncClient
    ) -> None:
        first = _refresh_cookie(await _web_login(client))
        refreshed = await _refresh(client, first)
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["refresh_token"] is None
        second = _refresh_cookie(refreshed)
        assert second != first
        access = refreshed.json()["access_token"]
        sessions = await client.get(
            "/v1/auth/sessions", headers={"Authorization": f"Bearer {access}"}
        )
        # A reload refreshes the same session instead of leaving a new one behind.
        assert len(sessions.json()["items"]) == 1
        assert (await _refresh(client, second)).status_code == 200

    async def test_a_refresh_by_cookie_without_the_web_header_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        token = _refresh_cookie(await _web_login(client))
        response = await _refresh(client, token, headers={})
        assert response.status_code == 403
        assert response.json()["code"] == "csrf_rejected"
        # Nothing was rotated: the cookie still works from the web bank.
        assert (await _refresh(client, token)).status_code == 200

    async def test_a_refresh_by_cookie_from_another_origin_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        token = _refresh_cookie(await _web_login(client))
        response = await _refresh(client, token, headers={**WEB, "Origin": "https://evil.example"})
        assert response.status_code == 403
        assert response.json()["code"] == "csrf_rejected"
        same = await _refresh(client, token, headers={**WEB, "Origin": _origin(client)})
        assert same.status_code == 200, same.text

    async def test_a_refresh_without_token_or_cookie_is_401(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post("/v1/auth/refresh", headers=WEB)
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_refresh_token"

    async def test_logout_clears_the_cookies_and_the_old_cookie_is_dead(
        self, client: httpx.AsyncClient
    ) -> None:
        login = await _web_login(client)
        token = _refresh_cookie(login)
        access = login.json()["access_token"]
        response = await client.post(
            "/v1/auth/logout", headers={"Authorization": f"Bearer {access}"}
        )
        assert response.status_code == 204
        cleared = _cookies(response)
        assert cleared["banking_refresh"]["banking_refresh"].value == ""
        assert cleared["banking_refresh"]["banking_refresh"]["path"] == "/v1/auth/refresh"
        assert cleared["banking_signed_in"]["banking_signed_in"].value == ""
        assert (await _refresh(client, token)).status_code == 401

    async def test_the_api_login_still_returns_the_refresh_token_and_sets_no_cookie(
        self, client: httpx.AsyncClient
    ) -> None:
        user = (await signup(client)).json()
        response = await client.post(
            "/v1/auth/login", json={"email": user["email"], "password": PASSWORD}
        )
        assert response.json()["refresh_token"]
        assert response.headers.get_list("set-cookie") == []
