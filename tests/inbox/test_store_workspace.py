"""The store's part of the agent workspace, on both backends: views by team,
visibility, label, text and time; tokens; the audit log; canned responses;
labels in use; merging contacts."""

from __future__ import annotations

import pytest

from hub.errors import Conflict, InvalidRequest, NotFound
from hub.inbox.model import ApiToken, AuditEntry, CannedResponse, Consent
from hub.inbox.store import ConversationFilter, Store, Visibility
from tests.inbox.test_store_contract import (
    T0,
    at,
    identity,
    make_agent,
    saved_contact,
    saved_conversation,
    saved_message,
)


async def _names(store: Store, named: dict[str, str], view: ConversationFilter) -> list[str]:
    page = await store.list_conversations(view, limit=20)
    return [named[c.id] for c in page.items]


async def test_views_by_team_visibility_label_text_and_update_time(store: Store) -> None:
    rows = {
        "own": {"team_id": "sales", "assignee_id": "a1", "labels": ["vip"]},
        "team": {"team_id": "support", "subject": "Hóa đơn tháng 3"},
        "other": {"team_id": "sales", "labels": ["vip", "refund"]},
        "none": {"team_id": None, "contact_address": "lan@example.vn"},
    }
    named: dict[str, str] = {}
    for minute, (name, fields) in enumerate(rows.items()):
        conversation = await saved_conversation(
            store, last_activity_at=at(minute), updated_at=at(minute), **fields
        )
        named[conversation.id] = name
    other = next(i for i, n in named.items() if n == "other")
    await saved_message(store, (await store.get_conversation(other)), text="100% đúng_hạn")

    async def names(**view: object) -> list[str]:
        return await _names(store, named, ConversationFilter(**view))  # type: ignore[arg-type]

    assert await names(team_ids=["sales"]) == ["other", "own"]
    assert await names(visible_to=Visibility("a1", ("support",))) == ["none", "team", "own"]
    assert await names(visible_to=Visibility("a9")) == ["none"]
    assert await names(label="vip") == ["other", "own"]
    assert await names(text="hóa ĐƠN") == ["team"]
    assert await names(text="Hóa đơn") == ["team"]
    assert await names(text="hoa don thang") == ["team"]  # as people type without marks
    assert await names(text="hòa") == ["team"]  # marks in the query are ignored too
    assert await names(text="LAN@example") == ["none"]
    assert await names(text="100%") == ["other"]
    assert await names(text="0%") == ["other"]
    assert await names(text="%") == ["other"]  # literal, not a wildcard
    assert await names(text="đúng_hạn") == ["other"]
    assert await names(updated_since=at(2)) == ["none", "other"]


async def test_tokens_are_listed_per_agent_and_revoked(store: Store) -> None:
    agent = make_agent("an@example.vn")
    await store.add_agent(agent)
    first = ApiToken(agent_id=agent.id, token_hash="h1", created_at=at(1), name="crm")
    second = ApiToken(agent_id=agent.id, token_hash="h2", created_at=at(2))
    await store.add_token(second)
    await store.add_token(first)
    other = make_agent("minh@example.vn")
    await store.add_agent(other)
    await store.add_token(ApiToken(agent_id=other.id, token_hash="h3", created_at=at(0)))
    assert [t.id for t in await store.list_tokens(agent.id)] == [first.id, second.id]
    assert await store.delete_token(first.id) is True
    assert await store.delete_token(first.id) is False
    assert await store.token_by_hash("h1") is None
    assert [t.id for t in await store.list_tokens(agent.id)] == [second.id]


async def test_audit_log_lists_newest_first_and_pages_back(store: Store) -> None:
    entries = [
        AuditEntry(at=at(i), actor_id="a1", action="auth.sign_in", detail={"ip": f"10.0.0.{i}"})
        for i in range(5)
    ]
    for entry in entries:
        await store.add_audit(entry)
    newest = await store.list_audit(limit=3)
    assert newest == list(reversed(entries))[:3]
    assert await store.list_audit(limit=3, before=newest[-1].id) == list(reversed(entries))[3:]


async def test_canned_responses_have_unique_shortcuts(store: Store) -> None:
    thanks = CannedResponse(shortcut="thanks", text="Cảm ơn anh/chị!", created_at=T0)
    await store.add_canned(CannedResponse(shortcut="hours", text="8h-17h", created_at=T0))
    await store.add_canned(thanks)
    with pytest.raises(Conflict, match="/thanks"):
        await store.add_canned(CannedResponse(shortcut="thanks", text="again", created_at=T0))
    assert [c.shortcut for c in await store.list_canned()] == ["hours", "thanks"]
    assert await store.delete_canned(thanks.id) is True
    assert await store.delete_canned(thanks.id) is False
    assert [c.shortcut for c in await store.list_canned()] == ["hours"]


async def test_label_counts_count_unresolved_conversations(store: Store) -> None:
    await saved_conversation(store, labels=["vip", "refund"])
    await saved_conversation(store, labels=["vip"])
    await saved_conversation(store, labels=["old"], status="resolved")
    assert await store.label_counts() == {"old": 0, "refund": 1, "vip": 2}


async def test_merge_moves_identities_and_conversations_and_deletes_the_merged_contact(
    store: Store,
) -> None:
    keep = await saved_contact(
        store,
        identity("phone", "+84901234567"),
        name="Lan",
        tags=["vip"],
        attributes={"city": "Huế"},
        consent={"sms": Consent(status="opted_in", at=at(1), how="form")},
    )
    merged = await saved_contact(
        store,
        identity("email", "lan@example.vn"),
        identity("telegram", "42"),
        language="vi",
        tags=["vip", "new"],
        attributes={"city": "Hà Nội", "plan": "gold"},
        consent={"sms": Consent(status="opted_out", at=at(2), how="STOP")},
    )
    conversation = await saved_conversation(store, merged)
    await store.merge_contacts(keep.id, merged.id)

    after = await store.get_contact(keep.id)
    assert after is not None
    assert [i.address for i in after.identities] == ["+84901234567", "lan@example.vn", "42"]
    assert after.name == "Lan" and after.language == "vi"
    assert after.tags == ["vip", "new"]
    assert after.attributes == {"city": "Huế", "plan": "gold"}
    assert after.consent["sms"].status == "opted_out"  # the newer decision
    assert await store.get_contact(merged.id) is None
    moved = await store.get_conversation(conversation.id)
    assert moved is not None and moved.contact_id == keep.id
    found = await store.contacts_by_identity([identity("email", "lan@example.vn")])
    assert found == {identity("email", "lan@example.vn"): keep.id}


async def test_merge_refuses_a_missing_contact_or_itself(store: Store) -> None:
    keep = await saved_contact(store, identity("phone", "+84901234567"))
    with pytest.raises(NotFound):
        await store.merge_contacts(keep.id, "0" * 24)
    with pytest.raises(InvalidRequest):
        await store.merge_contacts(keep.id, keep.id)
    assert await store.get_contact(keep.id) == keep


async def test_contacts_are_found_by_name_or_address_without_marks(store: Store) -> None:
    lan = await saved_contact(store, identity("email", "lan.tran@example.vn"), name="Trần Thị Lan")
    binh = await saved_contact(store, identity("phone", "+84901234567"), name="Bình")
    await saved_contact(store, name="Hoa")
    assert await store.search_contacts("tran thi", limit=5) == [lan]
    assert await store.search_contacts("LAN.TRAN@", limit=5) == [lan]
    assert await store.search_contacts("0123", limit=5) == [binh]
    assert await store.search_contacts("binh", limit=5) == [binh]
    assert await store.search_contacts("%", limit=5) == []
    assert len(await store.search_contacts("a", limit=1)) == 1
