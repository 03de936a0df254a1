"""What agents do through the API: filters and views, taking and transferring,
labels, priority, snooze, notes with mentions, canned responses, contacts
(edit, timeline, merge), exports, managing agents — each answered in one
error shape when the input is bad."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import eventually
from tests.web.conftest import call, inbound


async def test_list_filters_by_label_text_team_and_updated_since(team_hub):
    first = await inbound(team_hub, "m1", "a", text="Tôi muốn hoàn tiền đơn 100%")
    second = await inbound(team_hub, "m2", "b", text="Giờ mở cửa?")
    third = await inbound(team_hub, "m3", "c", account="misc")
    await call(
        team_hub,
        "PATCH",
        f"/api/v1/conversations/{first}",
        team_hub.lan,
        json={"labels": ["refund", "vip"]},
    )

    async def ids(query):
        body = await call(team_hub, "GET", f"/api/v1/conversations?{query}", team_hub.an)
        return [c["id"] for c in body["items"]]

    assert await ids("label=refund") == [first]
    assert await ids("q=HOÀN tiền") == [first]
    assert await ids("q=hoan tien") == [first]
    assert await ids("q=hoàn tiền") == [first]
    assert await ids("q=100%25") == [first]
    assert await ids("team=support") == [second, first]
    patched = (await team_hub.runtime.store.get_conversation(first)).updated_at
    since = patched - timedelta(milliseconds=1)
    recent = await ids(f"updated_since={since.isoformat().replace('+00:00', 'Z')}")
    # The patched one, and only what changed since (the router may still be
    # assigning the others in the background: whatever it touched counts too).
    assert first in recent
    for conversation_id in recent:
        stored = await team_hub.runtime.store.get_conversation(conversation_id)
        assert stored.updated_at >= since
    later = (patched + timedelta(hours=1)).isoformat()
    assert await ids(f"updated_since={later.replace('+00:00', 'Z')}") == []
    assert third in await ids("")
    listed = await call(team_hub, "GET", "/api/v1/conversations", team_hub.an)
    assert {c["contact_name"] for c in listed["items"]} == {"Nguyễn Văn Bình"}
    bad = await team_hub.api(
        "GET", "/api/v1/conversations?updated_since=yesterday", team_hub.an.token
    )
    assert bad.status == 422
    assert (await bad.json())["error"]["code"] == "invalid_request"


async def test_pages_follow_the_cursor_without_gaps(team_hub):
    made = [await inbound(team_hub, f"m{i}", f"c{i}") for i in range(5)]
    seen, cursor = [], ""
    while True:
        body = await call(
            team_hub, "GET", f"/api/v1/conversations?limit=2&cursor={cursor}", team_hub.lan
        )
        seen += [c["id"] for c in body["items"]]
        if not body["next_cursor"]:
            break
        cursor = body["next_cursor"]
    assert seen == list(reversed(made))


async def test_views_count_conversations_with_unread_messages(team_hub):
    mine = await inbound(team_hub, "m1", "a")
    await inbound(team_hub, "m2", "b")
    await inbound(team_hub, "m3", "c", account="crm")
    await call(
        team_hub,
        "POST",
        f"/api/v1/conversations/{mine}/assign",
        team_hub.lan,
        json={"agent_id": team_hub.lan.agent.id},
    )
    await call(
        team_hub, "PATCH", f"/api/v1/conversations/{mine}", team_hub.lan, json={"labels": ["vip"]}
    )
    views = await call(team_hub, "GET", "/api/v1/views", team_hub.lan)
    counts = {v["view"]: v["unread"] for v in views["items"]}
    assert counts == {"mine": 1, "unassigned": 1, "teams": 2, "all": 2, "label:vip": 1}
    await call(team_hub, "POST", f"/api/v1/conversations/{mine}/read", team_hub.lan)
    views = await call(team_hub, "GET", "/api/v1/views", team_hub.lan)
    assert {v["view"]: v["unread"] for v in views["items"]}["mine"] == 0


async def test_taking_an_unassigned_conversation_is_first_come(team_hub):
    conversation = await inbound(team_hub, "m1")
    body = {"agent_id": team_hub.lan.agent.id, "only_if_unassigned": True}
    taken = await call(
        team_hub, "POST", f"/api/v1/conversations/{conversation}/assign", team_hub.lan, json=body
    )
    assert taken["assignee_id"] == team_hub.lan.agent.id
    late = {"agent_id": team_hub.an.agent.id, "only_if_unassigned": True}
    refused = await call(
        team_hub,
        "POST",
        f"/api/v1/conversations/{conversation}/assign",
        team_hub.an,
        json=late,
        status=409,
    )
    assert refused["error"]["code"] == "conflict"


async def test_priority_snooze_and_labels_are_validated(team_hub):
    conversation = await inbound(team_hub, "m1")
    path = f"/api/v1/conversations/{conversation}"
    updated = await call(team_hub, "PATCH", path, team_hub.lan, json={"priority": "urgent"})
    assert updated["priority"] == "urgent"
    for body, says in [
        ({"priority": "whenever"}, "priority"),
        ({"labels": ["a,b"]}, "label"),
        ({}, "labels"),
        ({"status": "resolved"}, "status"),
    ]:
        error = await call(team_hub, "PATCH", path, team_hub.lan, json=body, status=422)
        assert says in error["error"]["message"]
    until = (team_hub.runtime.clock.now() + timedelta(hours=3)).isoformat()
    snoozed = await call(team_hub, "POST", f"{path}/snooze", team_hub.lan, json={"until": until})
    assert snoozed["status"] == "snoozed" and snoozed["snoozed_until"]
    past = await call(
        team_hub,
        "POST",
        f"{path}/snooze",
        team_hub.lan,
        json={"until": "2001-01-01T00:00:00Z"},
        status=422,
    )
    assert "future" in past["error"]["message"]
    naive = await call(
        team_hub,
        "POST",
        f"{path}/snooze",
        team_hub.lan,
        json={"until": "2099-01-01T00:00:00"},
        status=422,
    )
    assert "until" in naive["error"]["message"]
    await call(team_hub, "POST", f"{path}/resolve", team_hub.lan)
    reopened = await call(team_hub, "POST", f"{path}/reopen", team_hub.lan)
    assert reopened["status"] == "open"


async def test_a_note_mentions_agents_by_name_or_email(team_hub):
    conversation = await inbound(team_hub, "m1")
    note = await call(
        team_hub,
        "POST",
        f"/api/v1/conversations/{conversation}/notes",
        team_hub.lan,
        json={"text": "@minh xem giúp, cc @an@example.vn; not an email@example.vn"},
        status=201,
    )
    assert note["direction"] == "note"
    assert set(note["meta"]["mentions"]) == {team_hub.minh.agent.id, team_hub.an.agent.id}


async def test_canned_responses_are_shared_and_shortcuts_unique(team_hub):
    made = await call(
        team_hub,
        "POST",
        "/api/v1/canned-responses",
        team_hub.lan,
        json={"shortcut": "cam-on", "text": "Cảm ơn anh/chị đã liên hệ!"},
        status=201,
    )
    taken = await call(
        team_hub,
        "POST",
        "/api/v1/canned-responses",
        team_hub.minh,
        json={"shortcut": "cam-on", "text": "again"},
        status=409,
    )
    assert "/cam-on" in taken["error"]["message"]
    bad = await call(
        team_hub,
        "POST",
        "/api/v1/canned-responses",
        team_hub.minh,
        json={"shortcut": "Has Spaces", "text": "x"},
        status=422,
    )
    assert "shortcut" in bad["error"]["message"]
    listed = await call(team_hub, "GET", "/api/v1/canned-responses", team_hub.minh)
    assert [c["shortcut"] for c in listed["items"]] == ["cam-on"]
    await call(
        team_hub, "DELETE", f"/api/v1/canned-responses/{made['id']}", team_hub.lan, status=403
    )
    await call(team_hub, "DELETE", f"/api/v1/canned-responses/{made['id']}", team_hub.an)
    log = await call(team_hub, "GET", "/api/v1/audit", team_hub.an)
    assert log["items"][0]["action"] == "canned_response.deleted"


async def test_contacts_are_edited_and_merged_with_an_audit_entry(team_hub):
    first = await inbound(team_hub, "m1", "a", phone="+84901111111")
    second = await inbound(team_hub, "m2", "b", account="misc", email="lan@example.vn")
    keep = (await team_hub.runtime.store.get_conversation(first)).contact_id
    gone = (await team_hub.runtime.store.get_conversation(second)).contact_id
    edited = await call(
        team_hub,
        "PATCH",
        f"/api/v1/contacts/{keep}",
        team_hub.lan,
        json={"name": "Trần Thị Lan", "attributes": {"city": "Huế", "plan": "gold"}},
    )
    assert edited["name"] == "Trần Thị Lan" and edited["attributes"]["city"] == "Huế"
    removed = await call(
        team_hub,
        "PATCH",
        f"/api/v1/contacts/{keep}",
        team_hub.lan,
        json={"attributes": {"plan": None}},
    )
    assert removed["attributes"] == {"city": "Huế"}
    merged = await call(
        team_hub,
        "POST",
        f"/api/v1/contacts/{keep}/merge",
        team_hub.lan,
        json={"contact_id": gone},
    )
    assert {i["channel"] for i in merged["identities"]} >= {"phone", "email"}
    await call(team_hub, "GET", f"/api/v1/contacts/{gone}", team_hub.lan, status=404)
    timeline = await call(team_hub, "GET", f"/api/v1/contacts/{keep}/timeline", team_hub.lan)
    assert {c["id"] for c in timeline["conversations"]} == {first, second}
    assert [m["text"] for m in timeline["messages"]] == ["Xin chào", "Xin chào"]
    log = await call(team_hub, "GET", "/api/v1/audit", team_hub.an)
    entry = log["items"][0]
    assert entry["action"] == "contact.merged" and entry["target"] == keep
    assert entry["detail"]["merged_contact_id"] == gone
    await call(
        team_hub,
        "POST",
        f"/api/v1/contacts/{keep}/merge",
        team_hub.lan,
        json={"contact_id": keep},
        status=422,
    )


async def test_a_customers_history_across_channels_is_read_back_a_page_at_a_time(team_hub):
    # One customer on two accounts (linked by the phone number), turn by turn.
    texts = [f"tin {n}" for n in range(9)]
    for n, text in enumerate(texts):
        account, sender = ("shop", "cust-1") if n % 2 else ("crm", "cust-9")
        await inbound(team_hub, f"h{n}", sender, account=account, text=text, phone="0901234567")
    conversation = await team_hub.runtime.store.get_conversation(
        await inbound(team_hub, "h9", "cust-1", text="tin 9", phone="0901234567")
    )
    texts.append("tin 9")
    path = f"/api/v1/contacts/{conversation.contact_id}/timeline"

    pages, cursor = [], None
    while True:
        query = "?limit=4" + (f"&cursor={cursor}" if cursor else "")
        page = await call(team_hub, "GET", path + query, team_hub.an)
        assert len(page["conversations"]) == 2
        pages.append([m["text"] for m in page["messages"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [texts[6:], texts[2:6], texts[:2]]
    whole = await call(team_hub, "GET", path, team_hub.an)
    assert [m["text"] for m in whole["messages"]] == texts and whole["next_cursor"] is None
    await call(team_hub, "GET", path + "?cursor=%%%", team_hub.an, status=422)


async def test_export_is_a_json_file_and_is_audited(team_hub):
    conversation = await inbound(team_hub, "m1")
    response = await team_hub.api(
        "GET", f"/api/v1/conversations/{conversation}/export", team_hub.lan.token
    )
    assert response.status == 200
    assert "attachment" in response.headers["Content-Disposition"]
    body = await response.json()
    assert body["conversation"]["id"] == conversation and len(body["messages"]) == 1
    log = await call(team_hub, "GET", "/api/v1/audit", team_hub.an)
    assert (log["items"][0]["action"], log["items"][0]["target"]) == (
        "conversation.exported",
        conversation,
    )


async def test_admin_creates_agents_and_role_changes_are_audited(team_hub):
    created = await call(
        team_hub,
        "POST",
        "/api/v1/agents",
        team_hub.an,
        status=201,
        json={
            "name": "Hoa",
            "email": "Hoa@Example.vn",
            "password": "a-long-password",
            "team_ids": ["sales"],
        },
    )
    assert created["email"] == "hoa@example.vn" and "password_hash" not in created
    await call(
        team_hub,
        "POST",
        "/api/v1/agents",
        team_hub.an,
        status=409,
        json={"name": "Hoa", "email": "hoa@example.vn", "password": "a-long-password"},
    )
    bad_team = await call(
        team_hub,
        "PATCH",
        f"/api/v1/agents/{created['id']}",
        team_hub.an,
        json={"team_ids": ["nowhere"]},
        status=422,
    )
    assert "nowhere" in bad_team["error"]["message"]
    await call(
        team_hub,
        "PATCH",
        f"/api/v1/agents/{created['id']}",
        team_hub.an,
        json={"role": "admin"},
    )
    self_demotion = await call(
        team_hub,
        "PATCH",
        f"/api/v1/agents/{team_hub.an.agent.id}",
        team_hub.an,
        json={"role": "agent"},
        status=422,
    )
    assert "yourself" in self_demotion["error"]["message"]
    log = await call(team_hub, "GET", "/api/v1/audit", team_hub.an)
    entry = log["items"][0]
    assert entry["action"] == "agent.role_changed"
    assert entry["detail"]["before"] == "agent" and entry["detail"]["after"] == "admin"
    teams = await call(team_hub, "GET", "/api/v1/teams", team_hub.lan)
    assert [t["id"] for t in teams["items"]] == ["support", "sales"]


@pytest.mark.parametrize(
    "path",
    ["/api/v1/conversations?limit=0", "/api/v1/conversations?status=done", "/api/v1/nowhere"],
)
async def test_errors_have_one_shape(team_hub, path):
    response = await team_hub.api("GET", path, team_hub.lan.token)
    assert 400 <= response.status < 500
    error = (await response.json())["error"]
    assert set(error) == {"code", "message"} and error["message"]


async def test_a_snoozed_conversation_wakes_when_its_snooze_ends(team_hub):
    conversation = await inbound(team_hub, "m1")
    path = f"/api/v1/conversations/{conversation}"
    soon = team_hub.runtime.clock.now() + timedelta(seconds=1)
    await call(team_hub, "POST", f"{path}/snooze", team_hub.lan, json={"until": soon.isoformat()})
    # Snoozed again for longer: the first wake-up must not cut the second short.
    later = team_hub.runtime.clock.now() + timedelta(hours=1)
    longer = soon + timedelta(milliseconds=300)

    async def status() -> str:
        return (await team_hub.runtime.store.get_conversation(conversation)).status

    await call(team_hub, "POST", f"{path}/snooze", team_hub.lan, json={"until": longer.isoformat()})

    async def woke() -> bool:
        return await status() == "open"

    await eventually(woke)  # the second snooze's wake-up (the worker runs in the hub)
    woken = await team_hub.runtime.store.get_conversation(conversation)
    assert woken.snoozed_until is None and team_hub.runtime.clock.now() >= longer
    await call(team_hub, "POST", f"{path}/snooze", team_hub.lan, json={"until": later.isoformat()})
    assert await team_hub.runtime.inbox.wake(conversation, soon) is False  # not this snooze's
    assert await status() == "snoozed"


async def test_contacts_are_searched_by_name_or_address(team_hub):
    await inbound(team_hub, "m1", "a", phone="+84901111111", name="Trần Thị Lan")
    await inbound(team_hub, "m2", "b", name="Lê Văn Bình")
    found = await call(team_hub, "GET", "/api/v1/contacts?q=tran thi", team_hub.mai)
    assert [c["name"] for c in found["items"]] == ["Trần Thị Lan"]
    by_phone = await call(team_hub, "GET", "/api/v1/contacts?q=0901111", team_hub.lan)
    assert [c["name"] for c in by_phone["items"]] == ["Trần Thị Lan"]
    short = await call(team_hub, "GET", "/api/v1/contacts?q=a", team_hub.lan, status=422)
    assert "q must be" in short["error"]["message"]
