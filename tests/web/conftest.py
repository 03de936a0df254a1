"""A hub with two teams and one person of each role, for the workspace tests.

- account `shop` belongs to team `support`, account `crm` to team `sales`,
  account `misc` to no team;
- lan (agent, support), minh (agent, sales), an (admin), mai (marketer).
Each has an API token; every password is PASSWORD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from hub.inbox.model import Agent, ApiToken
from hub.web.auth import hash_password, hash_token, new_token
from tests.channels.test_api import post
from tests.peers.api_sender import message

PASSWORD = "mật-khẩu-đủ-dài-42"
_HASH = hash_password(PASSWORD)  # argon2 is slow on purpose: hash once per run


@dataclass
class Person:
    agent: Agent
    token: str


async def add_person(hub: Any, email: str, role: str = "agent", teams=(), **fields) -> Person:
    agent = Agent(
        name=email.split("@")[0].title(),
        email=email,
        role=role,
        team_ids=list(teams),
        password_hash=_HASH,
        created_at=hub.runtime.clock.now(),
        **fields,
    )
    await hub.runtime.store.add_agent(agent)
    token = new_token()
    await hub.runtime.store.add_token(
        ApiToken(agent_id=agent.id, token_hash=hash_token(token), created_at=agent.created_at)
    )
    return Person(agent, token)


@pytest.fixture
async def team_hub(make_settings, start_hub, callback_peer):
    accounts = [
        {
            "id": account,
            "channel": "api",
            "secret_env": "HUB_TEST_API_SECRET",
            "callback_url": callback_peer.url,
        }
        for account in ("shop", "crm", "misc")
    ]
    teams = [
        {"id": "support", "name": "Support", "accounts": ["shop"]},
        {"id": "sales", "name": "Sales", "accounts": ["crm"]},
    ]
    hub = await start_hub(
        make_settings(accounts=accounts, teams=teams, workspace={"login_attempts": 3})
    )
    hub.peer = callback_peer
    hub.lan = await add_person(hub, "lan@example.vn", teams=["support"])
    hub.minh = await add_person(hub, "minh@example.vn", teams=["sales"])
    hub.an = await add_person(hub, "an@example.vn", role="admin")
    hub.mai = await add_person(hub, "mai@example.vn", role="marketer")
    return hub


async def inbound(hub, external_id, sender="cust-1", account="shop", text="Xin chào", **who):
    response = await post(hub, message(external_id, sender, text, **who), account=account)
    assert response.status < 300, await response.text()
    return (await response.json())["conversation_id"]


async def call(hub, method, path, person: Person, status=200, **kwargs) -> Any:
    response = await hub.api(method, path, person.token, **kwargs)
    assert response.status == status, f"{method} {path}: {await response.text()}"
    return await response.json()


def browser(hub) -> aiohttp.ClientSession:
    """A client with its own cookie jar, as a browser tab would be."""
    return aiohttp.ClientSession(
        base_url=str(hub.client.make_url("/")), cookie_jar=aiohttp.CookieJar(unsafe=True)
    )


async def sign_in(session: aiohttp.ClientSession, email: str, password: str = PASSWORD) -> str:
    response = await session.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status == 200, await response.text()
    return (await response.json())["csrf_token"]
