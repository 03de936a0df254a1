"""Roles and visibility, enforced by the API and the live stream: an agent sees
their own conversations, their teams' and those in no team; a marketer sees no
conversation; an admin sees all. Guessing an id gets 404, as if it did not exist."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.web.conftest import browser, call, inbound, sign_in

CONVERSATION_PATHS = [
    ("GET", ""),
    ("GET", "/messages"),
    ("POST", "/messages"),
    ("POST", "/notes"),
    ("POST", "/assign"),
    ("PATCH", ""),
    ("POST", "/snooze"),
    ("POST", "/resolve"),
    ("POST", "/reopen"),
    ("POST", "/read"),
    ("GET", "/export"),
]
BODIES = {
    "/messages": {"text": "hi"},
    "/notes": {"text": "hi"},
    "/assign": {"agent_id": None},
    "": {"priority": "high"},
    "/snooze": {"until": "2099-01-01T00:00:00Z"},
}


@pytest.mark.parametrize(("method", "suffix"), CONVERSATION_PATHS)
async def test_an_agent_cannot_reach_another_teams_conversation_by_its_id(team_hub, method, suffix):
    sales = await inbound(team_hub, "s1", account="crm")
    before = await team_hub.runtime.store.get_conversation(sales)
    body = BODIES.get(suffix) if method != "GET" else None
    response = await team_hub.api(
        method, f"/api/v1/conversations/{sales}{suffix}", team_hub.lan.token, json=body
    )
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
    missing = await team_hub.api(
        method, f"/api/v1/conversations/{'0' * 24}{suffix}", team_hub.lan.token, json=body
    )
    assert (await missing.json())["error"]["code"] == "not_found"  # indistinguishable
    assert await team_hub.runtime.store.get_conversation(sales) == before
    assert len(await team_hub.runtime.store.list_messages(sales)) == 1


async def test_lists_show_each_role_what_it_may_see(team_hub):
    shop = await inbound(team_hub, "m1", "a", account="shop")
    crm = await inbound(team_hub, "m2", "b", account="crm")
    misc = await inbound(team_hub, "m3", "c", account="misc")

    async def ids(person, query=""):
        body = await call(team_hub, "GET", f"/api/v1/conversations{query}", person)
        return [c["id"] for c in body["items"]]

    assert await ids(team_hub.lan) == [misc, shop]
    assert await ids(team_hub.minh) == [misc, crm]
    assert await ids(team_hub.an) == [misc, crm, shop]
    assert await ids(team_hub.lan, "?team=sales") == []
    assert await ids(team_hub.lan, "?team=mine") == [shop]
    # Assigned to her by an admin, a sales conversation becomes visible to lan.
    await call(
        team_hub,
        "POST",
        f"/api/v1/conversations/{crm}/assign",
        team_hub.an,
        json={"agent_id": team_hub.lan.agent.id},
    )
    assert await ids(team_hub.lan) == [misc, crm, shop]
    await call(team_hub, "GET", f"/api/v1/conversations/{crm}", team_hub.lan)
    response = await team_hub.api("GET", "/api/v1/conversations", team_hub.mai.token)
    assert response.status == 403
    assert (await response.json())["error"] == {
        "code": "forbidden",
        "message": "marketers do not see conversations",
    }


async def test_a_message_of_an_invisible_conversation_is_404(team_hub):
    crm = await inbound(team_hub, "m1", account="crm")
    [message] = await team_hub.runtime.store.list_messages(crm)
    await call(team_hub, "GET", f"/api/v1/messages/{message.id}", team_hub.lan, status=404)
    await call(team_hub, "GET", f"/api/v1/messages/{message.id}", team_hub.minh)


async def test_contact_timeline_shows_only_visible_conversations(team_hub):
    shop = await inbound(team_hub, "m1", "x", account="shop", phone="+84901234567")
    crm = await inbound(team_hub, "m2", "y", account="crm", phone="+84901234567")
    contact_id = (await team_hub.runtime.store.get_conversation(shop)).contact_id
    mine = await call(team_hub, "GET", f"/api/v1/contacts/{contact_id}/timeline", team_hub.lan)
    assert [c["id"] for c in mine["conversations"]] == [shop]
    everything = await call(team_hub, "GET", f"/api/v1/contacts/{contact_id}/timeline", team_hub.an)
    assert {c["id"] for c in everything["conversations"]} == {shop, crm}
    await call(team_hub, "GET", f"/api/v1/contacts/{contact_id}", team_hub.mai)
    await call(team_hub, "GET", f"/api/v1/contacts/{contact_id}/timeline", team_hub.mai, status=403)


async def test_an_agent_cannot_move_a_conversation_to_another_team_or_a_marketer(team_hub):
    shop = await inbound(team_hub, "m1")
    await call(
        team_hub,
        "POST",
        f"/api/v1/conversations/{shop}/assign",
        team_hub.lan,
        json={"team_id": "sales"},
        status=403,
    )
    await call(
        team_hub,
        "POST",
        f"/api/v1/conversations/{shop}/assign",
        team_hub.lan,
        json={"agent_id": team_hub.mai.agent.id},
        status=403,
    )
    moved = await call(
        team_hub,
        "POST",
        f"/api/v1/conversations/{shop}/assign",
        team_hub.an,
        json={"team_id": "sales"},
    )
    assert moved["team_id"] == "sales"
    await call(team_hub, "GET", f"/api/v1/conversations/{shop}", team_hub.lan, status=404)


async def test_admin_only_endpoints_refuse_agents_and_marketers(team_hub):
    new = {"name": "Hoa", "email": "hoa@example.vn", "password": "a-long-password"}
    for person in (team_hub.lan, team_hub.mai):
        await call(team_hub, "POST", "/api/v1/agents", person, json=new, status=403)
        await call(
            team_hub,
            "PATCH",
            f"/api/v1/agents/{team_hub.minh.agent.id}",
            person,
            json={"role": "admin"},
            status=403,
        )
        await call(team_hub, "GET", "/api/v1/audit", person, status=403)
    await call(
        team_hub,
        "POST",
        "/api/v1/contacts/x/merge",
        team_hub.mai,
        json={"contact_id": "y"},
        status=403,
    )
    await call(
        team_hub,
        "POST",
        "/api/v1/canned-responses",
        team_hub.mai,
        json={"shortcut": "hi", "text": "hi"},
        status=403,
    )


async def stream(team_hub, person) -> aiohttp.ClientWebSocketResponse:
    ws = await team_hub.client.ws_connect(
        "/api/v1/stream", headers={"Authorization": f"Bearer {person.token}"}
    )
    hello = await ws.receive_json()
    assert hello["type"] == "hello"
    return ws


async def events(ws, until: str) -> list[dict]:
    seen = []
    while True:
        frame = await asyncio.wait_for(ws.receive_json(), timeout=10)
        seen.append(frame)
        if frame.get("event") == until:
            return seen


async def test_the_stream_shows_each_agent_only_what_they_may_see(team_hub):
    lan = await stream(team_hub, team_hub.lan)
    minh = await stream(team_hub, team_hub.minh)
    mai = await stream(team_hub, team_hub.mai)
    crm = await inbound(team_hub, "m1", "b", account="crm", text="sales question")
    shop = await inbound(team_hub, "m2", "a", account="shop", text="support question")
    # minh sees the sales conversation; lan only the support one, which comes second.
    seen_by_minh = await events(minh, "message.created")
    assert seen_by_minh[-1]["data"]["message"]["conversation_id"] == crm
    seen_by_lan = await events(lan, "message.created")
    assert {f["data"].get("conversation", {}).get("id") for f in seen_by_lan} <= {shop, None}
    assert all(crm not in json.dumps(f) for f in seen_by_lan)
    # The marketer hears of contacts and agents' presence, of no conversation.
    await call(
        team_hub, "PUT", "/api/v1/agents/me/presence", team_hub.lan, json={"presence": "online"}
    )
    seen_by_mai = await events(mai, "agent.presence")
    assert [f["event"] for f in seen_by_mai] == [
        "contact.created",
        "contact.created",
        "agent.presence",
    ]
    # lan cannot type into (or mark read) a conversation she cannot see.
    await lan.send_json({"type": "typing", "conversation_id": crm, "typing": True})
    error = await asyncio.wait_for(lan.receive_json(), timeout=10)
    while error.get("type") != "error":
        error = await asyncio.wait_for(lan.receive_json(), timeout=10)
    assert error["code"] == "not_found"
    for ws in (lan, minh, mai):
        await ws.close()


async def test_stream_opened_with_a_cookie_must_come_from_the_hubs_origin(team_hub):
    async with browser(team_hub) as tab:
        await sign_in(tab, "lan@example.vn")
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await tab.ws_connect("/api/v1/stream", headers={"Origin": "https://evil.example"})
        assert refused.value.status == 403
        origin = str(team_hub.client.make_url("/")).rstrip("/")
        ws = await tab.ws_connect("/api/v1/stream", headers={"Origin": origin})
        assert (await ws.receive_json())["type"] == "hello"
        await ws.close()


async def test_deactivation_closes_the_agents_open_stream(team_hub):
    ws = await stream(team_hub, team_hub.minh)
    await call(
        team_hub,
        "PATCH",
        f"/api/v1/agents/{team_hub.minh.agent.id}",
        team_hub.an,
        json={"active": False},
    )
    while True:
        frame = await asyncio.wait_for(ws.receive(), timeout=10)
        if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            break
    assert ws.closed


async def test_a_role_change_applies_to_the_open_stream(team_hub):
    ws = await stream(team_hub, team_hub.mai)
    await call(
        team_hub,
        "PATCH",
        f"/api/v1/agents/{team_hub.mai.agent.id}",
        team_hub.an,
        json={"role": "agent", "team_ids": ["sales"]},
    )
    await events(ws, "agent.updated")
    crm = await inbound(team_hub, "m1", account="crm")
    seen = await events(ws, "message.created")
    assert seen[-1]["data"]["message"]["conversation_id"] == crm


async def test_only_colleagues_who_may_see_a_conversation_hear_who_is_viewing_it(team_hub):
    lan = await stream(team_hub, team_hub.lan)
    minh = await stream(team_hub, team_hub.minh)
    an = await stream(team_hub, team_hub.an)
    shop = await inbound(team_hub, "m1", "a", account="shop", text="support question")
    await events(an, "message.created")
    await lan.send_json({"type": "viewing", "conversation_id": shop})
    [seen] = [f for f in await events(an, "conversation.viewing")][-1:]
    assert seen["data"]["viewing"] is True
    assert seen["data"]["by"] == {"kind": "agent", "id": team_hub.lan.agent.id, "name": "Lan"}
    # minh (sales) may not see it: he is not told, and cannot claim to view it.
    await minh.send_json({"type": "viewing", "conversation_id": shop})
    error = await asyncio.wait_for(minh.receive_json(), timeout=10)
    while error.get("type") != "error":
        assert "conversation.viewing" not in json.dumps(error)
        error = await asyncio.wait_for(minh.receive_json(), timeout=10)
    assert error["code"] == "not_found"
    # Lan's stream closes: an hears she stopped viewing.
    await lan.close()
    stopped = (await events(an, "conversation.viewing"))[-1]
    assert stopped["data"]["viewing"] is False and stopped["data"]["conversation_id"] == shop
    await minh.send_json({"type": "ping"})
    frame = await asyncio.wait_for(minh.receive_json(), timeout=10)
    while frame.get("type") != "pong":
        assert "conversation.viewing" not in json.dumps(frame)
        frame = await asyncio.wait_for(minh.receive_json(), timeout=10)
    for ws in (minh, an):
        await ws.close()
