"""The fetcher for URLs people name (hub.outbound_http): public addresses only
unless a network is allowed, checked on every redirect and after resolving
names, http(s) only, the body capped and read whole. Real servers on loopback
addresses stand for the places an attacker would aim at."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from hub.errors import ProviderRejected
from hub.outbound_http import Fetcher, FetchPolicy
from tests.peers.server import LocalServer

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)


class Target(LocalServer):
    """Counts what reaches it: `/file` (size `n`, chunked unless `length`),
    `/to?url=` a redirect."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__()
        self.host = host
        self.requests: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/file", self._file)
        app.router.add_get("/to", self._redirect)
        return app

    async def _file(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        size = int(request.query.get("n", "10"))
        response = web.StreamResponse()
        if "length" in request.query:
            response.content_length = size
        await response.prepare(request)
        chunk = bytes(range(256)) * 64
        sent = 0
        while sent < size:
            piece = chunk[: size - sent]
            await response.write(piece)
            sent += len(piece)
        await response.write_eof()
        return response

    async def _redirect(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        raise web.HTTPFound(request.query["url"])


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    server = Target()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def elsewhere() -> AsyncIterator[Target]:
    """A second loopback address (127.0.0.2): outside the allowed 127.0.0.1/32."""
    server = Target("127.0.0.2")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    fetcher = Fetcher(FetchPolicy(allowed_networks=LOOPBACK, max_bytes=1_000_000))
    yield fetcher
    await fetcher.close()


@pytest.fixture
async def strict() -> AsyncIterator[Fetcher]:
    fetcher = Fetcher()
    yield fetcher
    await fetcher.close()


async def refused(fetcher: Fetcher, url: str) -> ProviderRejected:
    with pytest.raises(ProviderRejected) as caught:
        await fetcher.fetch(url)
    assert not caught.value.retryable
    return caught.value


async def test_a_file_over_many_chunks_comes_whole(fetcher, target):
    body = await fetcher.fetch(f"{target.url}/file?n=700000")
    assert body == (bytes(range(256)) * 64 * 43)[:700000]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/file",
        "http://localhost:{port}/file",  # a name that resolves to loopback
        "http://[::ffff:127.0.0.1]:{port}/file",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1]:{port}/file",
        "http://0.0.0.0:{port}/file",
    ],
)
async def test_by_default_only_public_addresses_are_fetched(strict, target, url):
    error = await refused(strict, url.format(port=target.port))
    assert "does not fetch from" in error.reason
    assert target.requests == []


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "ftp://example.com/x", "//x"]
)
async def test_only_http_and_https_urls(fetcher, url):
    error = await refused(fetcher, url)
    assert "only http and https" in error.reason


async def test_a_redirect_to_an_address_outside_the_policy_is_not_followed(
    fetcher, target, elsewhere
):
    error = await refused(fetcher, f"{target.url}/to?url={elsewhere.url}/file")
    assert "does not fetch from 127.0.0.2" in error.reason
    assert target.requests == [f"/to?url={elsewhere.url}/file"]
    assert elsewhere.requests == []


async def test_a_redirect_to_a_file_url_is_not_followed(fetcher, target):
    error = await refused(fetcher, f"{target.url}/to?url=file:///etc/passwd")
    assert "only http and https" in error.reason


async def test_a_redirect_within_the_policy_is_followed(fetcher, target):
    assert await fetcher.fetch(f"{target.url}/to?url=/file%3Fn%3D5") == bytes(range(5))


async def test_endless_redirects_stop(fetcher, target):
    loop = f"{target.url}/to?url={target.url}/to%3Furl%3D{target.url}/file"
    policy = FetchPolicy(allowed_networks=LOOPBACK, max_redirects=1)
    one_hop = Fetcher(policy)
    try:
        error = await refused(one_hop, loop)
    finally:
        await one_hop.close()
    assert "redirects more than 1 times" in error.reason


async def test_a_body_over_the_cap_is_refused_while_streaming(fetcher, target):
    error = await refused(fetcher, f"{target.url}/file?n=1500000")
    assert "larger than 1000000 bytes" in error.reason


async def test_an_announced_length_over_the_cap_is_refused_before_reading(fetcher, target):
    error = await refused(fetcher, f"{target.url}/file?n=1500000&length")
    assert "larger than 1000000 bytes" in error.reason


async def test_an_unreachable_server_may_be_retried(fetcher):
    with pytest.raises(ProviderRejected) as caught:
        await fetcher.fetch("http://127.0.0.1:9/file")
    assert caught.value.retryable
