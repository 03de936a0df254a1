"""Signing in to the workspace: passwords, session cookies, CSRF, the sign-in
guard, API tokens shown once, and the audit trail of it all."""

from __future__ import annotations

from tests.web.conftest import PASSWORD, add_person, browser, call, sign_in


async def test_sign_in_sets_an_httponly_samesite_session_cookie(team_hub):
    async with browser(team_hub) as tab:
        response = await tab.post(
            "/api/v1/auth/login", json={"email": "LAN@example.vn", "password": PASSWORD}
        )
        assert response.status == 200
        body = await response.json()
        assert body["agent"]["email"] == "lan@example.vn" and "password_hash" not in body["agent"]
        cookie = response.headers["Set-Cookie"]
        assert "hub_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert "Secure" not in cookie  # plain http here; behind TLS it is set
        me = await tab.get("/api/v1/agents/me")
        assert (await me.json())["email"] == "lan@example.vn"
        session = await tab.get("/api/v1/auth/session")
        assert (await session.json())["csrf_token"] == body["csrf_token"]


async def test_cookie_is_secure_when_the_public_url_is_https(make_settings, start_hub):
    from tests.web.conftest import add_person

    hub = await start_hub(make_settings(server={"public_url": "https://hub.example.vn"}))
    await add_person(hub, "lan@example.vn")
    response = await hub.client.post(
        "/api/v1/auth/login", json={"email": "lan@example.vn", "password": PASSWORD}
    )
    assert response.status == 200 and "Secure" in response.headers["Set-Cookie"]


async def test_wrong_password_and_unknown_email_get_the_same_401(team_hub):
    async with browser(team_hub) as tab:
        for email in ("lan@example.vn", "nobody@example.vn"):
            response = await tab.post(
                "/api/v1/auth/login", json={"email": email, "password": "wrong-password"}
            )
            assert response.status == 401
            assert (await response.json())["error"] == {
                "code": "unauthenticated",
                "message": "the e-mail or password is wrong",
            }
        assert (await tab.get("/api/v1/agents/me")).status == 401


async def test_changes_made_with_the_cookie_need_the_csrf_token(team_hub):
    async with browser(team_hub) as tab:
        csrf = await sign_in(tab, "lan@example.vn")
        body = {"presence": "online"}
        refused = await tab.put("/api/v1/agents/me/presence", json=body)
        assert refused.status == 403
        assert "X-CSRF-Token" in (await refused.json())["error"]["message"]
        wrong = await tab.put(
            "/api/v1/agents/me/presence", json=body, headers={"X-CSRF-Token": "guess"}
        )
        assert wrong.status == 403
        done = await tab.put(
            "/api/v1/agents/me/presence", json=body, headers={"X-CSRF-Token": csrf}
        )
        assert done.status == 200
        assert (await team_hub.runtime.store.get_agent(team_hub.lan.agent.id)).presence == "online"


async def test_sign_in_from_another_sites_page_is_refused(team_hub):
    response = await team_hub.client.post(
        "/api/v1/auth/login",
        json={"email": "lan@example.vn", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status == 403


async def test_repeated_failures_lock_the_email_out_with_429(team_hub):
    async with browser(team_hub) as tab:
        for _ in range(3):  # login_attempts = 3 in this hub
            response = await tab.post(
                "/api/v1/auth/login", json={"email": "lan@example.vn", "password": "nope-nope"}
            )
            assert response.status == 401
        locked = await tab.post(
            "/api/v1/auth/login", json={"email": "lan@example.vn", "password": PASSWORD}
        )
        assert locked.status == 429
        assert (await locked.json())["error"]["code"] == "rate_limited"
        assert int(locked.headers["Retry-After"]) > 0
        # The failures also count against the address, whatever e-mail it tries next.
        other = await tab.post(
            "/api/v1/auth/login", json={"email": "minh@example.vn", "password": PASSWORD}
        )
        assert other.status == 429


async def test_bad_sign_in_bodies_are_422(team_hub):
    for body in (b"{", b'{"email": "a@b.c"}', b'{"email": "a@b.c", "password": "x", "y": 1}'):
        response = await team_hub.client.post("/api/v1/auth/login", data=body)
        assert response.status == 422
        assert (await response.json())["error"]["code"] == "invalid_request"


async def test_sign_out_ends_the_session(team_hub):
    async with browser(team_hub) as tab:
        csrf = await sign_in(tab, "lan@example.vn")
        stolen = tab.cookie_jar.filter_cookies(team_hub.client.make_url("/"))["hub_session"].value
        out = await tab.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
        assert out.status == 200
        replay = await team_hub.client.get(
            "/api/v1/agents/me", headers={"Cookie": f"hub_session={stolen}"}
        )
        assert replay.status == 401


async def test_deactivating_an_agent_ends_their_session(team_hub):
    async with browser(team_hub) as tab:
        await sign_in(tab, "lan@example.vn")
        await call(
            team_hub,
            "PATCH",
            f"/api/v1/agents/{team_hub.lan.agent.id}",
            team_hub.an,
            json={"active": False},
        )
        assert (await tab.get("/api/v1/agents/me")).status == 401


async def test_tokens_are_shown_once_stored_hashed_and_revocable(team_hub):
    created = await call(
        team_hub, "POST", "/api/v1/tokens", team_hub.lan, status=201, json={"name": "crm"}
    )
    token = created["token"]
    assert token.startswith("hub_") and "token_hash" not in created
    listed = await call(team_hub, "GET", "/api/v1/tokens", team_hub.lan)
    assert [t["name"] for t in listed["items"]] == ["", "crm"]
    assert all("token" not in t and "token_hash" not in t for t in listed["items"])
    stored = await team_hub.runtime.store.list_tokens(team_hub.lan.agent.id)
    assert token not in {t.token_hash for t in stored}
    me = await team_hub.api("GET", "/api/v1/agents/me", token)
    assert me.status == 200
    # Someone else's token cannot be revoked by guessing its id...
    await call(team_hub, "DELETE", f"/api/v1/tokens/{created['id']}", team_hub.minh, status=404)
    await call(team_hub, "DELETE", f"/api/v1/tokens/{created['id']}", team_hub.lan)
    assert (await team_hub.api("GET", "/api/v1/agents/me", token)).status == 401


async def test_sign_ins_failures_and_token_changes_are_in_the_audit_log(team_hub):
    async with browser(team_hub) as tab:
        await tab.post("/api/v1/auth/login", json={"email": "lan@example.vn", "password": "no"})
        await sign_in(tab, "lan@example.vn")
    await call(team_hub, "POST", "/api/v1/tokens", team_hub.lan, status=201, json={})
    log = await call(team_hub, "GET", "/api/v1/audit", team_hub.an)
    actions = [(e["action"], e["actor_id"]) for e in log["items"]]
    lan = team_hub.lan.agent.id
    assert actions == [
        ("token.created", lan),
        ("auth.signed_in", lan),
        ("auth.sign_in_failed", lan),
    ]
    assert log["items"][1]["detail"]["address"] == "127.0.0.1"
    await call(team_hub, "GET", "/api/v1/audit", team_hub.lan, status=403)
    await call(team_hub, "GET", "/api/v1/audit", team_hub.mai, status=403)


async def proxied_sign_in(hub, client: str, email: str, password: str):
    """A sign-in as a reverse proxy on 127.0.0.1 forwards it from `client`."""
    return await hub.client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": f"198.18.0.1, {client}"},  # the left part is the client's
    )


async def test_behind_a_trusted_proxy_failures_count_against_the_client_not_the_proxy(
    make_settings, start_hub
):
    # Every request comes from the proxy: counted against its address, three
    # wrong passwords from one attacker locked every agent out.
    hub = await start_hub(
        make_settings(workspace={"login_attempts": 3}, server={"trusted_proxies": ["127.0.0.1/32"]})
    )
    await add_person(hub, "lan@example.vn")
    await add_person(hub, "minh@example.vn")
    for _ in range(3):
        failed = await proxied_sign_in(hub, "203.0.113.7", "lan@example.vn", "nope-nope")
        assert failed.status == 401
    attacker = await proxied_sign_in(hub, "203.0.113.7", "minh@example.vn", PASSWORD)
    assert attacker.status == 429  # the attacker's address is used up
    colleague = await proxied_sign_in(hub, "198.51.100.9", "minh@example.vn", PASSWORD)
    assert colleague.status == 200
    entries = await hub.runtime.store.list_audit(limit=10)
    assert {e.detail["address"] for e in entries if e.action == "auth.sign_in_failed"} == {
        "203.0.113.7"
    }


async def test_without_trusted_proxies_x_forwarded_for_is_not_believed(team_hub):
    for n in range(3):  # login_attempts = 3 in this hub
        failed = await proxied_sign_in(team_hub, f"203.0.113.{n}", "lan@example.vn", "nope")
        assert failed.status == 401
    # A new address claimed in the header does not escape the count.
    again = await proxied_sign_in(team_hub, "203.0.113.99", "minh@example.vn", PASSWORD)
    assert again.status == 429


async def test_a_new_password_signs_the_agent_out_everywhere(team_hub):
    # A password is changed because someone else may have it: the sessions made
    # with it (each use extends one, so it never ran out) end with it.
    async with browser(team_hub) as tab, browser(team_hub) as other_tab:
        await sign_in(tab, "lan@example.vn")
        await sign_in(other_tab, "lan@example.vn")
        await call(
            team_hub,
            "PATCH",
            f"/api/v1/agents/{team_hub.lan.agent.id}",
            team_hub.an,
            json={"password": "a-brand-new-password"},
        )
        assert (await tab.get("/api/v1/agents/me")).status == 401
        assert (await other_tab.get("/api/v1/agents/me")).status == 401
        await sign_in(tab, "lan@example.vn", "a-brand-new-password")
        assert (await tab.get("/api/v1/agents/me")).status == 200


async def test_other_changes_keep_the_session(team_hub):
    async with browser(team_hub) as tab:
        await sign_in(tab, "lan@example.vn")
        await call(
            team_hub,
            "PATCH",
            f"/api/v1/agents/{team_hub.lan.agent.id}",
            team_hub.an,
            json={"name": "Lan Nguyễn"},
        )
        assert (await tab.get("/api/v1/agents/me")).status == 200
