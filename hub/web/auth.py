"""Who is calling: API tokens (for integrations and the CLI) and agent passwords.

Tokens are shown once when created and stored only as a SHA-256 hash: they
are long random strings, so a fast hash is enough and a stolen database
holds no usable token. Passwords are people's, so they get argon2.
"""

from __future__ import annotations

import hashlib
import secrets

from aiohttp import web
from aiohttp.typedefs import Handler
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.errors import Unauthenticated
from hub.inbox.model import Agent, ApiToken
from hub.inbox.store import Store

TOKEN_PREFIX = "hub_"
AGENT = web.RequestKey("agent", Agent)  # the caller, set by the middleware on /api/ requests

_passwords = PasswordHasher()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _passwords.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _passwords.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def agent_for_token(store: Store, token: str) -> Agent:
    """The active agent a bearer token belongs to; Unauthenticated otherwise."""
    record: ApiToken | None = await store.token_by_hash(hash_token(token))
    if record is None:
        raise Unauthenticated("the token is not valid")
    agent = await store.get_agent(record.agent_id)
    if agent is None or not agent.active:
        raise Unauthenticated("the token's agent is deactivated")
    return agent


def token_middleware(store: Store, *, prefix: str = "/api/") -> web.middleware:  # type: ignore[valid-type]
    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(prefix):
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated(
                    "send 'Authorization: Bearer <token>' (see `hub token create`)"
                )
            request[AGENT] = await agent_for_token(store, token.strip())
        return await handler(request)

    return authenticate
