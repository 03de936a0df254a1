"""The REST API: token auth, conversation views, the timeline and agents' actions."""

from __future__ import annotations

import pytest

from hub.inbox.model import Agent, ApiToken
from hub.web.auth import hash_token, new_token
from tests.channels.test_api import post
from tests.conftest import eventually
from tests.peers.api_sender import message


async def add_agent(hub, email, *, presence="offline", role="agent", active=True):
    agent = Agent(
        name=email.split("@")[0].title(),
        email=email,
        role=role,
        presence=presence,
        active=active,
        created_at=hub.runtime.clock.now(),
    )
    await hub.runtime.store.add_agent(agent)
    token = new_token()
    await hub.runtime.store.add_token(
        ApiToken(
            agent_id=agent.id, token_hash=hash_token(token), created_at=hub.runtime.clock.now()
        )
    )
    return agent, token


@pytest.fixture
async def hub(make_settings, start_hub, callback_peer):
    account = {
        "id": "shop",
        "channel": "api",
        "secret_env": "HUB_TEST_API_SECRET",
        "callback_url": callback_peer.url,
    }
    second = {**account, "id": "crm"}
    hub = await start_hub(make_settings(accounts=[account, second]))
    hub.peer = callback_peer
    hub.agent, hub.token = await add_agent(hub, "an@example.vn")
    return hub


async def ingest(hub, external_id, sender="cust-1", account="shop"):
    response = await post(hub, message(external_id, sender), account=account)
    return (await response.json())["conversation_id"]


async def get_json(hub, path, status=200):
    response = await hub.api("GET", path, hub.token)
    assert response.status == status, await response.text()
    return await response.json()


async def test_api_refuses_requests_without_a_valid_token(hub):
    missing = await hub.client.get("/api/v1/conversations")
    assert missing.status == 401
    assert (await missing.json())["error"]["code"] == "unauthenticated"
    wrong = await hub.api("GET", "/api/v1/conversations", "hub_not-a-token")
    assert wrong.status == 401


async def test_token_of_a_deactivated_agent_stops_working(hub):
    _, token = await add_agent(hub, "gone@example.vn", active=False)
    response = await hub.api("GET", "/api/v1/conversations", token)
    assert response.status == 401
    assert "deactivated" in (await response.json())["error"]["message"]


async def test_list_filters_by_status_assignee_channel_and_account(hub):
    first = await ingest(hub, "m1", "a")
    second = await ingest(hub, "m2", "b")
    third = await ingest(hub, "m3", "c", account="crm")
    await hub.runtime.inbox.assign(first, hub.agent.id)
    await hub.runtime.inbox.resolve(second)

    async def ids(query):
        return [c["id"] for c in (await get_json(hub, f"/api/v1/conversations?{query}"))["items"]]

    assert await ids("") == [third, second, first]
    assert await ids("status=open") == [third, first]
    assert await ids("status=open,resolved") == [third, second, first]
    assert await ids("assignee=me") == [first]
    assert await ids(f"assignee={hub.agent.id}") == [first]
    assert await ids("assignee=none&status=open") == [third]
    assert await ids("account=crm") == [third]
    assert await ids("channel=api&status=resolved") == [second]
    assert await ids("channel=email") == []


async def test_list_pages_with_a_cursor_without_gaps_or_repeats(hub):
    created = [await ingest(hub, f"m{i}", f"c{i}") for i in range(7)]
    seen, cursor = [], None
    while True:
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = await get_json(hub, f"/api/v1/conversations?{query}")
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("status=closed", "status must be one of"),
        ("limit=0", "limit must be"),
        ("limit=1000", "limit must be"),
        ("limit=%C2%B2", "limit must be"),  # "²" is a digit to str.isdigit, not to int()
        ("cursor=%%%", "cursor is not one this server gave out"),
    ],
)
async def test_bad_list_queries_are_422(hub, query, says):
    response = await hub.api("GET", f"/api/v1/conversations?{query}", hub.token)
    assert response.status == 422
    assert says in (await response.json())["error"]["message"]


async def test_conversation_has_its_contact_and_timeline(hub):
    conversation_id = await ingest(hub, "m1")
    body = await get_json(hub, f"/api/v1/conversations/{conversation_id}")
    assert body["contact"]["name"] == "Nguyễn Văn Bình"
    assert body["status"] == "open"
    assert body["reply_window"] is None  # the API channel lets a reply go at any time
    timeline = await get_json(hub, f"/api/v1/conversations/{conversation_id}/messages")
    assert [(m["direction"], m["text"]) for m in timeline["items"]] == [("inbound", "Xin chào")]
    await get_json(hub, "/api/v1/conversations/000000000000000000000000", status=404)


async def test_a_long_timeline_is_read_back_from_its_end_a_page_at_a_time(hub):
    texts = [f"tin {i}" for i in range(57)]
    for i, text in enumerate(texts):
        response = await post(hub, message(f"m{i}", text=text))
        conversation_id = (await response.json())["conversation_id"]
    path = f"/api/v1/conversations/{conversation_id}/messages"

    newest = await get_json(hub, path)
    assert [m["text"] for m in newest["items"]] == texts[7:]  # 50, oldest first
    rest = await get_json(hub, f"{path}?cursor={newest['next_cursor']}")
    assert [m["text"] for m in rest["items"]] == texts[:7]
    assert rest["next_cursor"] is None

    pages, cursor = [], None
    while True:
        page = await get_json(hub, f"{path}?limit=10" + (f"&cursor={cursor}" if cursor else ""))
        pages.append([m["text"] for m in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [10, 10, 10, 10, 10, 7]
    assert [text for page in reversed(pages) for text in page] == texts
    whole = await get_json(hub, f"{path}?limit=500")
    assert len(whole["items"]) == 57 and whole["next_cursor"] is None

    for query, says in [
        ("limit=0", "limit must be a whole number from 1 to 500"),
        ("limit=501", "limit must be a whole number from 1 to 500"),
        ("cursor=%%%", "cursor is not one this server gave out"),
    ]:
        response = await hub.api("GET", f"{path}?{query}", hub.token)
        assert response.status == 422
        assert says in (await response.json())["error"]["message"]


async def test_reply_through_the_api_is_delivered_and_idempotent(hub):
    conversation_id = await ingest(hub, "m1")
    path = f"/api/v1/conversations/{conversation_id}/messages"
    headers = {"Idempotency-Key": "retry-safe-1"}
    first = await hub.api(
        "POST", path, hub.token, json={"text": "Dạ, em chào anh"}, headers=headers
    )
    assert first.status == 202
    reply = await first.json()
    assert reply["status"] == "queued" and reply["sender"]["name"] == "An"
    again = await hub.api(
        "POST", path, hub.token, json={"text": "Dạ, em chào anh"}, headers=headers
    )
    assert again.status == 200 and (await again.json())["id"] == reply["id"]

    async def sent():
        return (await get_json(hub, f"/api/v1/messages/{reply['id']}"))["status"] == "sent"

    await eventually(sent)
    assert hub.peer.received_ids() == [reply["id"]]


async def test_note_is_stored_but_never_sent(hub):
    conversation_id = await ingest(hub, "m1")
    response = await hub.api(
        "POST", f"/api/v1/conversations/{conversation_id}/notes", hub.token, json={"text": "VIP"}
    )
    assert response.status == 201
    note = await response.json()
    assert note["direction"] == "note" and note["status"] is None
    timeline = await get_json(hub, f"/api/v1/conversations/{conversation_id}/messages")
    assert [m["direction"] for m in timeline["items"]] == ["inbound", "note"]
    assert hub.peer.deliveries == []


async def test_assign_resolve_reopen_and_read(hub):
    conversation_id = await ingest(hub, "m1")
    base = f"/api/v1/conversations/{conversation_id}"
    other, _ = await add_agent(hub, "binh@example.vn")
    assigned = await hub.api("POST", f"{base}/assign", hub.token, json={"agent_id": other.id})
    assert (await assigned.json())["assignee_id"] == other.id
    unassigned = await hub.api("POST", f"{base}/assign", hub.token, json={"agent_id": None})
    assert (await unassigned.json())["assignee_id"] is None
    nobody = await hub.api("POST", f"{base}/assign", hub.token, json={"agent_id": "x" * 24})
    assert nobody.status == 422
    resolved = await hub.api("POST", f"{base}/resolve", hub.token)
    assert (await resolved.json())["status"] == "resolved"
    reopened = await hub.api("POST", f"{base}/reopen", hub.token)
    assert (await reopened.json())["status"] == "open"
    assert (await get_json(hub, base))["unread_count"] == 1
    await hub.api("POST", f"{base}/read", hub.token)
    assert (await get_json(hub, base))["unread_count"] == 0


async def test_waiting_on_the_customer_until_they_write(hub):
    conversation_id = await ingest(hub, "m1")
    base = f"/api/v1/conversations/{conversation_id}"
    pending = await hub.api("POST", f"{base}/pending", hub.token)
    assert pending.status == 200 and (await pending.json())["status"] == "pending"
    assert await ids_with(hub, "status=open") == []
    await ingest(hub, "m2")  # the customer answers: it is open work again
    assert (await get_json(hub, base))["status"] == "open"
    await hub.api("POST", f"{base}/resolve", hub.token)
    refused = await hub.api("POST", f"{base}/pending", hub.token)
    assert refused.status == 409
    assert "reopen it first" in (await refused.json())["error"]["message"]


async def ids_with(hub, query: str) -> list[str]:
    page = await get_json(hub, f"/api/v1/conversations?{query}")
    return [c["id"] for c in page["items"]]


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("messages", b"{", "not valid JSON"),
        ("messages", b'{"text": "  "}', "needs text or an attachment"),
        ("messages", b'{"txt": "hi"}', "txt: Extra inputs are not permitted"),
        ("notes", b'{"text": ""}', "text: String should have at least 1 character"),
        ("assign", b"{}", "agent_id: Field required"),
    ],
)
async def test_bad_bodies_are_422_naming_the_field(hub, path, body, says):
    conversation_id = await ingest(hub, "m1")
    response = await hub.api(
        "POST", f"/api/v1/conversations/{conversation_id}/{path}", hub.token, data=body
    )
    assert response.status == 422
    assert says in (await response.json())["error"]["message"]


async def test_unknown_routes_and_methods_answer_json(hub):
    missing = await hub.client.get("/nowhere")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"
    wrong = await hub.api("DELETE", "/api/v1/conversations", hub.token)
    assert wrong.status == 405
    assert (await wrong.json())["error"]["code"] == "method_not_allowed"


async def test_presence_and_agents(hub):
    response = await hub.api(
        "PUT", "/api/v1/agents/me/presence", hub.token, json={"presence": "online"}
    )
    assert (await response.json())["presence"] == "online"
    me = await get_json(hub, "/api/v1/agents/me")
    assert me["presence"] == "online" and "password_hash" not in me
    agents = await get_json(hub, "/api/v1/agents")
    assert [a["email"] for a in agents["items"]] == ["an@example.vn"]
    bad = await hub.api("PUT", "/api/v1/agents/me/presence", hub.token, json={"presence": "busy"})
    assert bad.status == 422


async def test_online_agent_gets_new_conversations(hub):
    await hub.api("PUT", "/api/v1/agents/me/presence", hub.token, json={"presence": "online"})
    conversation_id = await ingest(hub, "m1")
    assert (await get_json(hub, f"/api/v1/conversations/{conversation_id}"))[
        "assignee_id"
    ] == hub.agent.id


async def test_healthz_and_metrics(hub):
    health = await hub.client.get("/healthz")
    assert health.status == 200
    assert await health.json() == {"status": "ok", "store": "ok", "redis": "ok"}
    await ingest(hub, "m1")
    await ingest(hub, "m1")
    metrics = await (await hub.client.get("/metrics")).text()
    assert 'hub_messages_ingested_total{channel="api"} 1.0' in metrics
    assert 'hub_messages_duplicate_total{channel="api"} 1.0' in metrics
    assert "hub_queue_depth" in metrics
