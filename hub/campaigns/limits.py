"""Limits shared by every worker, kept in Redis: the send rate of each provider
account, and the daily cap of advertising messages per recipient.

Both are Lua scripts, so a check and its update are one atomic step however
many workers ask at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

# A sliding one-second window of grants per account (a sorted set of grant
# times, Redis's own clock). A grant is made only while fewer than `limit` are
# inside the window, so no window of `window_ms` ever holds more than `limit`.
# A provider's 429 halves the limit (`slow` key) for a while; it then recovers.
RATE = """
local key, slow = KEYS[1], KEYS[2]
local limit, want, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local factor = tonumber(redis.call('GET', slow) or '1')
limit = math.max(1, math.floor(limit * factor))
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local used = redis.call('ZCARD', key)
local grant = math.min(want, limit - used)
if grant > 0 then
  local last = redis.call('INCRBY', key .. ':seq', grant)
  for i = 1, grant do
    redis.call('ZADD', key, now, last - grant + i)
  end
  redis.call('PEXPIRE', key, math.ceil(window / 1000) + 1000)
  redis.call('PEXPIRE', key .. ':seq', math.ceil(window / 1000) + 1000)
  return {grant, 0}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, math.max(1, math.ceil((tonumber(oldest[2]) + window - now) / 1000))}
"""

SLOW_DOWN = """
local factor = tonumber(redis.call('GET', KEYS[1]) or '1')
factor = math.max(tonumber(ARGV[1]), factor / 2)
redis.call('SET', KEYS[1], tostring(factor), 'PX', ARGV[2])
return tostring(factor)
"""

# One set per (account, recipient, local day) of the campaign sends counted
# against the cap. Adding a send that is already in it is a no-op, so a send
# retried after a crash is not counted twice.
CAP = """
local cap, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local allowed = {}
for i, key in ipairs(KEYS) do
  local member = ARGV[i + 2]
  if redis.call('SISMEMBER', key, member) == 1 then
    allowed[i] = 1
  elseif redis.call('SCARD', key) >= cap then
    allowed[i] = 0
  else
    redis.call('SADD', key, member)
    redis.call('EXPIRE', key, ttl)
    allowed[i] = 1
  end
end
return allowed
"""


@dataclass(frozen=True)
class Grant:
    count: int
    wait_seconds: float  # when nothing was granted: how long until a slot frees


class RateLimiter:
    """Messages per second through one provider account, across all workers."""

    SLOW_FOR_MS = 30_000
    SLOWEST = 0.1

    def __init__(self, redis: Redis, prefix: str, *, window_seconds: float = 1.2) -> None:
        # Grants are made before a request leaves; the provider sees them a little
        # later and not evenly (network, a busy host). Counting in a window a bit
        # longer than a second keeps every one-second window at the provider
        # within the rate, at the cost of that fraction of throughput.
        self.window_us = int(window_seconds * 1_000_000)
        self.redis = redis
        self.prefix = prefix
        self._rate = redis.register_script(RATE)
        self._slow = redis.register_script(SLOW_DOWN)

    def _keys(self, account_id: str) -> list[str]:
        base = f"{self.prefix}:campaign-rate:{account_id}"
        return [base, f"{base}:slow"]

    async def acquire(self, account_id: str, limit: float, want: int) -> Grant:
        """Up to `want` sends now. `limit` 0 means no limit."""
        if limit <= 0:
            return Grant(want, 0.0)
        granted, wait_ms = await self._rate(
            keys=self._keys(account_id), args=[limit, want, self.window_us]
        )
        return Grant(int(granted), int(wait_ms) / 1000)

    async def slow_down(self, account_id: str) -> float:
        """The provider said "too many requests": halve the account's rate for a while."""
        factor = await self._slow(
            keys=self._keys(account_id)[1:], args=[self.SLOWEST, self.SLOW_FOR_MS]
        )
        return float(factor)


class DailyCaps:
    """At most `cap` campaign messages per recipient per local day, per account."""

    TTL_SECONDS = 2 * 24 * 3600

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._cap = redis.register_script(CAP)

    async def reserve(
        self, account_id: str, cap: int, sends: Sequence[tuple[str, str, str]]
    ) -> list[bool]:
        """For each (contact id, local day, send key): may it go out? A yes is
        counted at once (a send that then fails still counts: the cap errs on
        the side of the recipient)."""
        if not sends:
            return []
        if cap <= 0:
            return [True] * len(sends)
        keys = [f"{self.prefix}:campaign-cap:{account_id}:{c}:{day}" for c, day, _ in sends]
        answers = await self._cap(
            keys=keys, args=[cap, self.TTL_SECONDS, *(k for _, _, k in sends)]
        )
        return [bool(a) for a in answers]
