"""A hub with one Twilio account ("hotline") wired to the local Twilio peer."""

from __future__ import annotations

from typing import Any

import pytest

from hub.inbox.model import Agent, ApiToken
from hub.web.auth import hash_token, new_token
from tests.conftest import Hub
from tests.peers.twilio import ACCOUNT_SID, AUTH_TOKEN, LINE, TwilioPeer, recorded

TOKEN_ENV = "HUB_TEST_TWILIO_TOKEN"


def twilio_account(peer: TwilioPeer, **options: Any) -> dict[str, Any]:
    return {
        "id": "hotline",
        "channel": "twilio",
        "account_sid": ACCOUNT_SID,
        "auth_token_env": TOKEN_ENV,
        "from_number": LINE,
        "api_base_url": peer.url,
        **options,
    }


async def start_twilio_hub(
    make_settings: Any,
    start_hub: Any,
    peer: TwilioPeer,
    monkeypatch: pytest.MonkeyPatch,
    *,
    extra_accounts: list[dict[str, Any]] | None = None,
    clock: Any = None,
    **options: Any,
) -> Hub:
    monkeypatch.setenv(TOKEN_ENV, AUTH_TOKEN)
    settings = make_settings(
        accounts=[twilio_account(peer, **options), *(extra_accounts or [])],
        server={"public_url": peer.public_url, "shutdown_grace_seconds": 2},
    )
    hub: Hub = await start_hub(settings, clock=clock)
    peer.hub_url = str(hub.client.make_url("/"))
    return hub


async def add_agent(hub: Hub, email: str, **fields: Any) -> tuple[Agent, str]:
    agent = Agent(
        name=fields.pop("name", email.split("@")[0].title()),
        email=email,
        created_at=hub.runtime.clock.now(),
        **fields,
    )
    await hub.runtime.store.add_agent(agent)
    token = new_token()
    await hub.runtime.store.add_token(
        ApiToken(agent_id=agent.id, token_hash=hash_token(token), created_at=agent.created_at)
    )
    return agent, token


async def text_in(peer: TwilioPeer, body: str, *, sid: str, sender: str = "+84901234567") -> Any:
    """The customer texts the hotline; returns (status, TwiML body)."""
    params = recorded("inbound_sms")
    params.update({"Body": body, "MessageSid": sid, "SmsSid": sid, "From": sender})
    return await peer.post(peer.webhook_url("hotline", "sms"), params)
