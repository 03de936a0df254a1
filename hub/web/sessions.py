"""Signing in and out of the workspace, and the caller's API tokens.

`POST /api/v1/auth/login` checks the password (argon2), counts failures per
e-mail and per address (`LoginGuard`), starts a session and sets its cookie;
the answer carries the CSRF token the page sends back on every change.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.errors import Forbidden, NotFound, Unauthenticated
from hub.inbox.model import Agent, ApiToken
from hub.settings import WorkspaceSettings
from hub.web.api import INBOX, STORE, agent_json, me, read_body
from hub.web.audit import client_address, record
from hub.web.auth import (
    SESSION,
    SESSION_COOKIE,
    LoginGuard,
    Sessions,
    hash_token,
    new_token,
    password_matches,
    same_origin,
)
from hub.web.permissions import require

SESSIONS = web.AppKey("sessions", Sessions)
LOGIN_GUARD = web.AppKey("login_guard", LoginGuard)
WORKSPACE = web.AppKey("workspace_settings", WorkspaceSettings)
PUBLIC_URL = web.AppKey("public_url", str)

routes = web.RouteTableDef()


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class TokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=100)


def secure_cookie(request: web.Request) -> bool:
    mode = request.app[WORKSPACE].secure_cookies
    if mode != "auto":
        return mode == "always"
    return request.secure or request.app[PUBLIC_URL].startswith("https://")


def session_json(request: web.Request, agent: Agent, csrf_token: str) -> dict[str, Any]:
    """The signed-in agent, the CSRF token, and the wall clock the page shows times on."""
    return {
        "agent": agent_json(agent),
        "csrf_token": csrf_token,
        "timezone": request.app[WORKSPACE].timezone,
    }


@routes.post("/api/v1/auth/login")
async def login(request: web.Request) -> web.Response:
    # A login form posted from another site would sign the victim in as the
    # attacker (login CSRF): browsers name the page's origin, so refuse others.
    if not same_origin(request):
        raise Forbidden("sign in from the hub's own page")
    body = await read_body(request, LoginBody)
    email = body.email.strip().lower()
    address = client_address(request)
    guard = request.app[LOGIN_GUARD]
    store = request.app[STORE]
    await guard.check(email, address)
    agent = await store.agent_by_email(email)
    if (
        agent is None
        or not agent.active
        or not password_matches(agent.password_hash, body.password)
    ):
        await guard.failed(email, address)
        await record(
            request,
            store,
            "auth.sign_in_failed",
            actor_id=agent.id if agent else None,
            email=email,
        )
        raise Unauthenticated("the e-mail or password is wrong")
    await guard.succeeded(email)
    sessions = request.app[SESSIONS]
    session_id, session = await sessions.start(agent.id)
    await record(request, store, "auth.signed_in", actor_id=agent.id, target=agent.id)
    response = web.json_response(session_json(request, agent, session.csrf_token))
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int(sessions.ttl.total_seconds()),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=secure_cookie(request),
    )
    return response


@routes.post("/api/v1/auth/logout")
async def logout(request: web.Request) -> web.Response:
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id and SESSION in request:
        await request.app[SESSIONS].end(session_id)
        await record(request, request.app[STORE], "auth.signed_out", actor_id=me(request).id)
    response = web.json_response({"status": "signed_out"})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.get("/api/v1/auth/session")
async def current_session(request: web.Request) -> web.Response:
    """Who is signed in, and the CSRF token (the page asks after a reload)."""
    if SESSION not in request:
        raise Unauthenticated("this request carries a token, not a session")
    return web.json_response(session_json(request, me(request), request[SESSION].csrf_token))


@routes.get("/api/v1/tokens")
async def list_tokens(request: web.Request) -> web.Response:
    """The caller's API tokens (never the token itself: it is shown once)."""
    tokens = await request.app[STORE].list_tokens(me(request).id)
    return web.json_response(
        {"items": [t.model_dump(mode="json", exclude={"token_hash"}) for t in tokens]}
    )


@routes.post("/api/v1/tokens")
async def create_token(request: web.Request) -> web.Response:
    """A new token for the caller; the answer is the only time it is shown."""
    require(me(request), "admin", "agent", "marketer")
    body = await read_body(request, TokenBody)
    token = new_token()
    record_ = ApiToken(
        agent_id=me(request).id,
        name=body.name,
        token_hash=hash_token(token),
        created_at=request.app[INBOX].clock.now(),
    )
    await request.app[STORE].add_token(record_)
    await record(
        request, request.app[STORE], "token.created", actor_id=me(request).id, target=record_.id
    )
    return web.json_response(
        {**record_.model_dump(mode="json", exclude={"token_hash"}), "token": token}, status=201
    )


@routes.delete("/api/v1/tokens/{id}")
async def revoke_token(request: web.Request) -> web.Response:
    store = request.app[STORE]
    token_id = request.match_info["id"]
    agent = me(request)
    owned = {t.id for t in await store.list_tokens(agent.id)}
    if token_id not in owned and agent.role != "admin":
        raise NotFound(f"token {token_id} does not exist")
    if not await store.delete_token(token_id):
        raise NotFound(f"token {token_id} does not exist")
    await record(request, store, "token.deleted", actor_id=agent.id, target=token_id)
    return web.json_response({"status": "deleted"})
