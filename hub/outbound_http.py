"""Fetching a URL that someone other than the administrator named — the file an
agent's reply links to, which Telegram and Zalo want uploaded — without letting
that someone point hub at itself or the network it runs in.

Whoever can put a URL in a reply could otherwise have hub GET
`http://127.0.0.1:6379/`, the cloud metadata service at 169.254.169.254 or an
admin page on the office network, and then hand the answer to a chat they read.
So, as mature products do (Mastodon's `ALLOWED_PRIVATE_ADDRESSES`, GitLab's
"allow requests to the local network"):

- only `http` and `https`;
- every address a name resolves to is checked *at connection time* (a resolver
  on the fetcher's own connector), so a name that resolves to a public address
  when checked and a private one when used (DNS rebinding) gains nothing; an
  address written in the URL is checked as it stands;
- redirects are followed by hand, each hop checked the same way, at most
  `max_redirects`;
- the body is read up to `max_bytes` (the length the server announces is
  believed only to refuse early), within `timeout_seconds` for the whole fetch.

Only globally routable addresses are fetched, unless the administrator names
networks in `allowed_networks` (an intranet file server; the tests' local
peers on 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from hub.errors import ProviderRejected

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class AddressRefused(OSError):
    """A URL's host is, or resolves only to, addresses hub does not fetch from.
    (An OSError so that aiohttp reports it as the connection's failure.)"""


@dataclass(frozen=True)
class FetchPolicy:
    """What a fetch may reach and how much of it hub takes."""

    allowed_networks: tuple[Network, ...] = ()
    max_bytes: int = 50 * 1024 * 1024
    timeout_seconds: float = 30.0
    max_redirects: int = 3

    def permits(self, address: Address) -> bool:
        """Whether hub may connect to `address`: a global unicast address, or one
        inside a network the administrator allowed."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if any(address in network for network in self.allowed_networks):
            return True
        return address.is_global and not address.is_multicast


class PolicyResolver(AbstractResolver):
    """Resolves as usual, then keeps only the addresses the policy permits;
    raises AddressRefused when none is left."""

    def __init__(self, policy: FetchPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        permitted = [r for r in found if self.policy.permits(ipaddress.ip_address(r["host"]))]
        if not permitted:
            raise AddressRefused(f"{host} resolves only to addresses hub does not fetch from")
        return permitted

    async def close(self) -> None:
        await self.inner.close()


@dataclass
class Fetcher:
    """GETs URLs under a FetchPolicy, with its own connection pool (whose
    resolver enforces the policy). Opened on first use; `close()` at shutdown."""

    policy: FetchPolicy = field(default_factory=FetchPolicy)
    user_agent: str = "hub"
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=PolicyResolver(self.policy)),
                timeout=aiohttp.ClientTimeout(total=self.policy.timeout_seconds),
                headers={"User-Agent": self.user_agent},
                trust_env=False,  # a proxy would connect on our behalf, past the resolver
            )
        return self._session

    def check_url(self, url: str) -> URL:
        """The URL parsed, if its scheme and (literal) address may be fetched;
        ProviderRejected (not retryable) otherwise. Names are checked when
        resolved, by the connector."""
        try:
            parsed = URL(url)
        except (ValueError, TypeError) as exc:
            raise ProviderRejected(f"{url!r} is not a URL", retryable=False) from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ProviderRejected(
                f"{url!r}: only http and https URLs are fetched", retryable=False
            )
        try:
            literal: Address | None = ipaddress.ip_address(parsed.host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None and not self.policy.permits(literal):
            raise ProviderRejected(
                f"{url!r}: hub does not fetch from {literal} (a private or local address)",
                retryable=False,
            )
        return parsed

    async def fetch(self, url: str) -> bytes:
        """The body at `url`, following redirects that stay within the policy.

        Raises ProviderRejected: not retryable for a URL, address or size the
        policy refuses and for a 4xx; retryable for a timeout, a network error,
        a 429 or a 5xx."""
        current = url
        for _ in range(self.policy.max_redirects + 1):
            target = self.check_url(current)
            try:
                async with self._client().get(target, allow_redirects=False) as response:
                    if response.status in REDIRECTS and "Location" in response.headers:
                        current = urljoin(str(target), response.headers["Location"])
                        continue
                    if response.status >= 400:
                        raise ProviderRejected(
                            f"{url} answered {response.status}",
                            retryable=response.status == 429 or response.status >= 500,
                        )
                    return await self._body(url, response)
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, AddressRefused):
                    raise ProviderRejected(f"{url}: {exc.os_error}", retryable=False) from exc
                raise _unreachable(url, exc) from exc
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise _unreachable(url, exc) from exc
        raise ProviderRejected(
            f"{url} redirects more than {self.policy.max_redirects} times", retryable=False
        )

    async def _body(self, url: str, response: aiohttp.ClientResponse) -> bytes:
        body = await read_within(response, self.policy.max_bytes)
        if body is None:
            raise ProviderRejected(
                f"{url} is larger than {self.policy.max_bytes} bytes", retryable=False
            )
        return body

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def read_within(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """A response's whole body, or None as soon as it is known to be longer than
    `limit` bytes (what the server announces is believed only to refuse early):
    a body from outside never fills hub's memory."""
    if response.content_length is not None and response.content_length > limit:
        return None
    body = bytearray()
    # StreamReader.read(n) answers with what has arrived so far, not n bytes:
    # read to the end, counting, so a body is never cut short silently.
    async for chunk in response.content.iter_chunked(65_536):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def read_head(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most the first `limit` bytes of a response's body, the rest left
    unread: for an answer hub only glances at (a receiver's acknowledgement),
    which may be long, or never end."""
    head = bytearray()
    async for chunk in response.content.iter_chunked(min(limit, 65_536)):
        head += chunk
        if len(head) >= limit:
            break
    return bytes(head[:limit])


def _unreachable(url: str, exc: Any) -> ProviderRejected:
    return ProviderRejected(f"{url} unreachable: {type(exc).__name__}", retryable=True)
