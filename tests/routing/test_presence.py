"""Presence from agents' browser sockets: online while a tab is open, away a
grace period after the last one closed, counted across processes in Redis."""

from __future__ import annotations

from hub.inbox.inbound import InboundMessage, InboundSender
from hub.inbox.model import Identity
from tests.conftest import eventually
from tests.peers.widget_client import AgentStreamClient
from tests.web.test_api import add_agent


def stream(hub, token: str) -> AgentStreamClient:
    return AgentStreamClient(hub.client.session, str(hub.client.make_url("/api/v1/stream")), token)


async def presence_of(hub, agent_id: str) -> str:
    agent = await hub.runtime.store.get_agent(agent_id)
    assert agent is not None
    return agent.presence


async def test_an_agent_is_online_while_a_tab_is_open_and_away_after_the_grace(
    make_settings, start_hub
):
    hub = await start_hub(make_settings(routing={"away_grace_seconds": 0.3}))
    agent, token = await add_agent(hub, "lan@shop.vn", presence="online")
    first, second = stream(hub, token), stream(hub, token)
    await first.connect()
    assert await presence_of(hub, agent.id) == "online"
    await second.connect()
    await first.close()
    tracker = hub.runtime.presence
    assert tracker is not None

    async def one_tab_left() -> bool:
        return await tracker.live_sockets(agent.id) == 1

    await eventually(one_tab_left)
    # One tab is still open: the grace job, if any ran, changes nothing.
    assert await tracker.settle(agent.id) is None
    await second.close()

    async def away() -> bool:
        return await presence_of(hub, agent.id) == "away"

    await eventually(away)
    # Coming back brings them online (the away was the grace's, not their choice).
    again = stream(hub, token)
    await again.connect()
    assert await presence_of(hub, agent.id) == "online"
    await again.close()


async def test_a_page_reload_within_the_grace_keeps_the_agent_online(make_settings, start_hub):
    hub = await start_hub(make_settings(routing={"away_grace_seconds": 60}), with_worker=False)
    agent, token = await add_agent(hub, "lan@shop.vn", presence="online")
    tab = stream(hub, token)
    await tab.connect()
    await tab.close()
    tracker = hub.runtime.presence
    assert tracker is not None

    async def closed() -> bool:
        return await tracker.live_sockets(agent.id) == 0

    await eventually(closed)
    reloaded = stream(hub, token)
    await reloaded.connect()
    assert await tracker.settle(agent.id) is None  # the deferred job, run now
    assert await presence_of(hub, agent.id) == "online"
    await reloaded.close()


async def test_an_agent_who_chose_away_stays_away_when_a_tab_opens(make_settings, start_hub):
    hub = await start_hub(make_settings(), with_worker=False)
    agent, token = await add_agent(hub, "lan@shop.vn", presence="online")
    response = await hub.api("PUT", "/api/v1/agents/me/presence", token, json={"presence": "away"})
    assert response.status == 200
    tab = stream(hub, token)
    await tab.connect()
    assert await presence_of(hub, agent.id) == "away"
    await tab.close()


async def test_signing_in_does_not_make_an_offline_agent_available(make_settings, start_hub):
    hub = await start_hub(make_settings(), with_worker=False)
    agent, token = await add_agent(hub, "lan@shop.vn")
    tab = stream(hub, token)
    await tab.connect()
    assert await presence_of(hub, agent.id) == "offline"  # the manual switch decides
    await tab.close()


async def test_coming_back_from_an_automatic_away_routes_the_waiting_queue(
    make_settings, start_hub
):
    hub = await start_hub(make_settings(), with_worker=False)
    agent, token = await add_agent(hub, "lan@shop.vn", presence="online")
    tracker = hub.runtime.presence
    assert tracker is not None
    assert await tracker.settle(agent.id) == "away"  # no tab open: the grace job
    outcome = await hub.runtime.inbox.ingest(
        InboundMessage(
            account_id="shop",
            channel="api",
            external_id="m1",
            sender=InboundSender(identities=[Identity(channel="api:shop", address="c1")]),
            text="hello",
        )
    )
    waiting = await hub.runtime.store.get_conversation(outcome.conversation_id)
    assert waiting is not None and waiting.assignee_id is None
    tab = stream(hub, token)
    await tab.connect()
    assert await presence_of(hub, agent.id) == "online"
    conversation = await hub.runtime.store.get_conversation(outcome.conversation_id)
    assert conversation is not None and conversation.assignee_id == agent.id
    await tab.close()
