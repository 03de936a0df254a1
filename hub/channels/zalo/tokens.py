"""The Zalo OA access token, and refreshing it without losing the grant.

An OA access token lives 25 hours; a refresh token lives 3 months and is
single-use: a refresh returns a new access token AND a new refresh token, and
the old refresh token is dead from then on. So:

- the current pair lives in the store (`channel_state`, key "zalo_tokens"),
  shared by every hub process; the tokens in the config (`access_token_env`,
  `refresh_token_env`) only seed it the first time;
- a refresh happens before the access token expires, or when Zalo says it is
  invalid or expired (errors -216, -220, -124);
- one process refreshes at a time (a lock in Redis), and re-reads the store
  once it holds the lock: if another process refreshed meanwhile, it uses that
  pair instead of spending the (now dead) refresh token again.

Refresh: `POST <oauth>/v4/oa/access_token`, header `secret_key: <app secret>`,
form `refresh_token, app_id, grant_type=refresh_token`; answer
`{"access_token", "refresh_token", "expires_in": "90000"}`, or an error object
(`{"error": <negative>, "error_name", "error_reason", ...}`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from hub.channels.base import ChannelState, Locks
from hub.clock import Clock
from hub.errors import ProviderRejected, QueueUnavailable

log = logging.getLogger(__name__)

STATE_KEY = "zalo_tokens"
# Zalo's answers to an access token it no longer accepts.
TOKEN_ERRORS = frozenset({-216, -220, -124})


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_at: datetime | None  # None: unknown (a token seeded from the config)

    def to_state(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TokenPair:
        expires = state.get("expires_at")
        return cls(
            access_token=str(state["access_token"]),
            refresh_token=str(state["refresh_token"]),
            expires_at=datetime.fromisoformat(expires) if expires else None,
        )


class ZaloTokens:
    """The OA's current access token, refreshed when due. Safe across processes."""

    def __init__(
        self,
        *,
        account_id: str,
        app_id: str,
        app_secret: str,
        seed: TokenPair,
        oauth_url: str,
        refresh_before: timedelta,
        http: aiohttp.ClientSession,
        state: ChannelState,
        locks: Locks,
        clock: Clock,
    ) -> None:
        self.account_id = account_id
        self.app_id = app_id
        self.app_secret = app_secret
        self.seed = seed
        self.oauth_url = oauth_url
        self.refresh_before = refresh_before
        self.http = http
        self.state = state
        self.locks = locks
        self.clock = clock

    async def current(self) -> str:
        """An access token to use now (refreshed first if it is about to expire)."""
        pair = await self._load()
        if self._due(pair):
            pair = await self.refresh(rejected=None)
        return pair.access_token

    async def refresh(self, *, rejected: str | None) -> TokenPair:
        """Refresh the pair, once across all processes. `rejected` is the access
        token Zalo just refused (None for a refresh because expiry is near): if the
        stored token is already a different one, another process refreshed it."""
        try:
            async with self.locks.hold(f"zalo-token:{self.account_id}", ttl=60, wait=60):
                return await self._refresh_locked(rejected)
        except QueueUnavailable as exc:
            raise ProviderRejected(
                f"cannot refresh the Zalo token now: {exc.message}", retryable=True
            ) from exc

    async def _refresh_locked(self, rejected: str | None) -> TokenPair:
        pair = await self._load()
        if rejected is not None and pair.access_token != rejected:
            return pair
        if rejected is None and not self._due(pair):
            return pair
        fresh = await self._exchange(pair.refresh_token)
        # Saved before use: losing the new refresh token would lose the grant.
        await self.state.save_channel_state(self.account_id, STATE_KEY, fresh.to_state())
        log.info(
            "zalo access token refreshed",
            extra={"event": "zalo.token_refreshed", "account_id": self.account_id},
        )
        return fresh

    def _due(self, pair: TokenPair) -> bool:
        return pair.expires_at is not None and pair.expires_at - self.clock.now() <= (
            self.refresh_before
        )

    async def _load(self) -> TokenPair:
        stored = await self.state.channel_state(self.account_id, STATE_KEY)
        if stored:
            return TokenPair.from_state(stored)
        return self.seed

    async def _exchange(self, refresh_token: str) -> TokenPair:
        form = {
            "refresh_token": refresh_token,
            "app_id": self.app_id,
            "grant_type": "refresh_token",
        }
        try:
            async with self.http.post(
                f"{self.oauth_url}/v4/oa/access_token",
                data=form,
                headers={"secret_key": self.app_secret},
            ) as response:
                text = await response.text(errors="replace")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderRejected(
                f"Zalo OAuth unreachable while refreshing the access token: {exc}", retryable=True
            ) from exc
        if response.status == 429 or response.status >= 500:
            raise ProviderRejected(
                f"Zalo OAuth answered {response.status} while refreshing the access token",
                retryable=True,
            )
        try:
            answer = json.loads(text)
        except ValueError:
            answer = {}
        if not isinstance(answer, dict) or not answer.get("access_token"):
            detail = _describe(answer if isinstance(answer, dict) else {}, text)
            log.error(
                "zalo refresh token rejected",
                extra={"event": "zalo.refresh_failed", "account_id": self.account_id},
            )
            raise ProviderRejected(
                f"Zalo refused to refresh the OA access token ({detail}); an OA admin must"
                " grant the app access again and set new tokens",
                retryable=False,
                provider_code=str(answer.get("error")) if isinstance(answer, dict) else None,
            )
        expires_in = str(answer.get("expires_in") or "90000")
        seconds = int(expires_in) if expires_in.isascii() and expires_in.isdigit() else 90000
        return TokenPair(
            access_token=str(answer["access_token"]),
            refresh_token=str(answer.get("refresh_token") or refresh_token),
            expires_at=self.clock.now() + timedelta(seconds=seconds),
        )


def _describe(answer: dict[str, Any], text: str) -> str:
    parts = [
        str(answer[k]) for k in ("error_name", "error_reason", "error_description") if answer.get(k)
    ]
    if "error" in answer:
        parts.append(f"error {answer['error']}")
    return ", ".join(parts) or text[:200]
