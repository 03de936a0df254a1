"""Who is calling: API tokens (integrations, the CLI), and agents signed in to the
workspace with a password and a session cookie.

Tokens are shown once when created and stored only as a SHA-256 hash: they
are long random strings, so a fast hash is enough and a stolen database
holds no usable token. Passwords are people's, so they get argon2.

Sessions live in Redis (they are short-lived and every hub process must see
them): the cookie holds a random id, Redis holds only its hash. A request
authenticated by the cookie that changes something must repeat the session's
CSRF token in `X-CSRF-Token` — a page on another site can make the browser
send the cookie, never read the token — and the cookie is SameSite=Strict
and HttpOnly besides. A WebSocket opened with the cookie must come from the
hub's own origin (browsers send the cookie on cross-site upgrades too).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web
from aiohttp.typedefs import Handler
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError

from hub.errors import Forbidden, QueueUnavailable, RateLimited, Unauthenticated
from hub.inbox.model import Agent, ApiToken
from hub.inbox.store import Store

TOKEN_PREFIX = "hub_"
SESSION_COOKIE = "hub_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Paths under /api/ that answer without a caller: signing in, and the API's description.
PUBLIC_PATHS = frozenset({"/api/v1/auth/login", "/api/v1/openapi.json", "/api/docs"})

AGENT = web.RequestKey("agent", Agent)  # the caller, set by the middleware on /api/ requests

_passwords = PasswordHasher()
# Verified against when the e-mail is unknown, so that a wrong e-mail takes as
# long to refuse as a wrong password (no probing for who has an account).
_DUMMY_HASH = _passwords.hash(secrets.token_urlsafe(16))


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# The shortest password an agent may have, wherever it is set (API, CLI).
PASSWORD_MIN_LENGTH = 10


def hash_password(password: str) -> str:
    return _passwords.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    try:
        return _passwords.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
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


class Session(BaseModel):
    agent_id: str
    csrf_token: str


@dataclass
class Sessions:
    """Sign-in sessions in Redis, each expiring `ttl` after it was last used."""

    redis: Redis
    prefix: str
    ttl: timedelta

    def _key(self, session_id: str) -> str:
        return f"{self.prefix}:session:{hash_token(session_id)}"

    def _agent_key(self, agent_id: str) -> str:
        """The set of an agent's session keys, so that all can be ended at once."""
        return f"{self.prefix}:agent-sessions:{agent_id}"

    async def start(self, agent_id: str) -> tuple[str, Session]:
        """A new session: its id (for the cookie, never stored) and its record."""
        session_id = secrets.token_urlsafe(32)
        session = Session(agent_id=agent_id, csrf_token=secrets.token_urlsafe(32))
        key, agent_key = self._key(session_id), self._agent_key(agent_id)
        try:
            # Sessions expire on their own (each use moves their end): forget the
            # ended ones here, at sign-in, rather than on every request.
            # redis-py types set commands as sync-or-async: hence the ignores.
            listed = list(await self.redis.smembers(agent_key))  # type: ignore[misc]
            if listed:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for old in listed:
                        pipe.exists(old)
                    found = await pipe.execute()
                gone = [k for k, alive in zip(listed, found, strict=True) if not alive]
                if gone:
                    await self.redis.srem(agent_key, *gone)  # type: ignore[misc]
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(key, session.model_dump_json(), ex=self.ttl)
                pipe.sadd(agent_key, key)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"sessions unavailable: {exc}") from exc
        return session_id, session

    async def end_all(self, agent_id: str) -> None:
        """End every session of the agent (their password was changed: whoever
        had it, or had a session made with it, is signed out everywhere)."""
        agent_key = self._agent_key(agent_id)
        try:
            keys = await self.redis.smembers(agent_key)  # type: ignore[misc]
            await self.redis.delete(agent_key, *keys)
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"sessions unavailable: {exc}") from exc

    async def find(self, session_id: str) -> Session | None:
        """The live session with that id (its life starts again), or None."""
        try:
            raw = await self.redis.getex(self._key(session_id), ex=self.ttl)
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"sessions unavailable: {exc}") from exc
        return None if raw is None else Session.model_validate_json(raw)

    async def end(self, session_id: str) -> None:
        try:
            await self.redis.delete(self._key(session_id))
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"sessions unavailable: {exc}") from exc


@dataclass
class LoginGuard:
    """Counts failed sign-ins per e-mail and per client address; past `attempts`
    within `window`, sign-ins from either are refused until the window ends."""

    redis: Redis
    prefix: str
    attempts: int
    window: timedelta

    def _keys(self, email: str, address: str) -> list[str]:
        return [
            f"{self.prefix}:login-fail:email:{hash_token(email.lower())}",
            f"{self.prefix}:login-fail:addr:{address}",
        ]

    async def check(self, email: str, address: str) -> None:
        """Raise RateLimited if either counter is used up."""
        try:
            keys = self._keys(email, address)
            counts = await self.redis.mget(keys)
            if any(int(c or 0) >= self.attempts for c in counts):
                ttl = max([await self.redis.ttl(k) for k in keys] + [1])
                raise RateLimited("too many failed sign-ins; try again later", retry_after=int(ttl))
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"sign-in guard unavailable: {exc}") from exc

    async def failed(self, email: str, address: str) -> None:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for key in self._keys(email, address):
                    # The window starts at the first failure (SET NX: Redis 6 has no EXPIRE NX).
                    pipe.set(key, 0, ex=self.window, nx=True)
                    pipe.incr(key)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"sign-in guard unavailable: {exc}") from exc

    async def succeeded(self, email: str) -> None:
        try:
            await self.redis.delete(self._keys(email, "")[0])
        except (RedisError, OSError):
            pass  # the counter runs out by itself


SESSION = web.RequestKey("session", Session)  # set when the caller came with the cookie


def same_origin(request: web.Request) -> bool:
    """Whether the browser says the request comes from a page of this hub (or
    says nothing: only browsers send Origin, and only they send cookies unasked)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin in (f"{request.scheme}://{request.host}", f"https://{request.host}")


def auth_middleware(store: Store, sessions: Sessions, *, prefix: str = "/api/") -> web.middleware:  # type: ignore[valid-type]
    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(prefix) or request.path in PUBLIC_PATHS:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated(
                    "send 'Authorization: Bearer <token>' (see `hub token create`)"
                )
            request[AGENT] = await agent_for_token(store, token.strip())
            return await handler(request)
        session_id = request.cookies.get(SESSION_COOKIE)
        session = await sessions.find(session_id) if session_id else None
        if session is None:
            raise Unauthenticated(
                "sign in, or send 'Authorization: Bearer <token>' (see `hub token create`)"
            )
        agent = await store.get_agent(session.agent_id)
        if agent is None or not agent.active:
            await sessions.end(session_id or "")
            raise Unauthenticated("this agent is deactivated")
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
                raise Forbidden(f"send the session's CSRF token in the {CSRF_HEADER} header")
        if request.headers.get("Upgrade", "").lower() == "websocket" and not same_origin(request):
            raise Forbidden("the live stream opens only from the hub's own pages")
        request[AGENT] = agent
        request[SESSION] = session
        return await handler(request)

    return authenticate
