"""Deactivating an agent in the workspace (`PATCH /api/v1/agents/{id}`) hands
their open conversations to colleagues: the router listens to `agent.updated`."""

from __future__ import annotations

from tests.web.conftest import add_person, call, inbound


async def test_deactivating_in_the_workspace_reassigns_open_conversations(team_hub):
    hub = team_hub
    await hub.runtime.store.update_agent(hub.lan.agent.id, presence="online")
    conversations = [await inbound(hub, f"m{n}", sender=f"cust-{n}") for n in range(2)]
    for conversation_id in conversations:
        conversation = await hub.runtime.store.get_conversation(conversation_id)
        assert conversation.assignee_id == hub.lan.agent.id
    hoa = await add_person(hub, "hoa@example.vn", teams=["support"], presence="online")
    await call(hub, "PATCH", f"/api/v1/agents/{hub.lan.agent.id}", hub.an, json={"active": False})
    for conversation_id in conversations:
        conversation = await hub.runtime.store.get_conversation(conversation_id)
        assert conversation.assignee_id == hoa.agent.id
    lan = await hub.runtime.store.get_agent(hub.lan.agent.id)
    assert lan is not None and not lan.active and lan.open_count == 0
