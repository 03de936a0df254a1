"""One contract for every store backend (see conftest.py for which ones run)."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hub.errors import (
    Conflict,
    DuplicateMessage,
    IdentityTaken,
    InvalidRequest,
    NotFound,
    StoreUnavailable,
)
from hub.inbox.model import (
    Agent,
    ApiToken,
    Attachment,
    CareTask,
    Consent,
    Contact,
    Conversation,
    Identity,
    Message,
    Sender,
    ThreadKeys,
    new_id,
    utc_ms,
)
from hub.inbox.mongo import MongoStore
from hub.inbox.sqlite import SqliteStore
from hub.inbox.store import ConversationFilter, Page, Store

if TYPE_CHECKING:
    from tests.inbox.conftest import Backend

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
SAIGON = timezone(timedelta(hours=7))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def identity(channel: str, address: str) -> Identity:
    return Identity(channel=channel, address=address)


def make_contact(*identities: Identity, **fields: Any) -> Contact:
    return Contact(identities=list(identities), created_at=T0, updated_at=T0, **fields)


async def saved_contact(store: Store, *identities: Identity, **fields: Any) -> Contact:
    contact = make_contact(*identities, **fields)
    await store.add_contact(contact)
    return contact


async def saved_conversation(
    store: Store, contact: Contact | None = None, **fields: Any
) -> Conversation:
    if contact is None:
        contact = await saved_contact(store)
    fields = {
        "account_id": "sms-main",
        "channel": "sms",
        "contact_address": "+84901234567",
        "last_activity_at": T0,
        "created_at": T0,
        "updated_at": T0,
        **fields,
    }
    conversation = Conversation(contact_id=contact.id, **fields)
    await store.add_conversation(conversation)
    return conversation


def make_message(conversation: Conversation, **fields: Any) -> Message:
    fields = {
        "direction": "inbound",
        "sender": Sender(kind="contact", id=conversation.contact_id),
        "created_at": T0,
        "updated_at": T0,
        **fields,
    }
    return Message(
        conversation_id=conversation.id,
        account_id=conversation.account_id,
        channel=conversation.channel,
        **fields,
    )


async def saved_message(store: Store, conversation: Conversation, **fields: Any) -> Message:
    message = make_message(conversation, **fields)
    await store.add_message(message)
    return message


def make_agent(email: str, **fields: Any) -> Agent:
    fields = {"name": email.split("@")[0], "created_at": T0, **fields}
    return Agent(email=email, **fields)


def expect_failure(request: pytest.FixtureRequest, reason: str, **xfail: Any) -> None:
    """Mark the running test as a known failure on this backend: it must fail
    (strict), so fixing the backend makes the marker visibly stale."""
    request.applymarker(pytest.mark.xfail(reason=reason, strict=True, **xfail))


SHIM_HAS_NO_MULTIKEY_UNIQUE = (
    "mongomock does not enforce unique multikey indexes; run with HUB_TEST_MONGODB_URL"
)


# -- lifecycle -----------------------------------------------------------


async def test_ping_answers_on_an_open_store(store: Store) -> None:
    await store.ping()


async def test_reopening_keeps_data_and_open_is_idempotent(backend: Backend) -> None:
    conversation = await saved_conversation(backend.store)
    message = await saved_message(backend.store, conversation, external_id="SM1")
    again = backend.reopen()
    await again.open()  # schema and indexes already there
    try:
        assert await again.get_message(message.id) == message
        with pytest.raises(DuplicateMessage):
            await again.add_message(make_message(conversation, external_id="SM1"))
    finally:
        await again.close()


@pytest.fixture(params=["sqlite", "mongo"])
async def unusable(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A store whose database cannot serve it: SQLite locked by another process's
    writer, MongoDB with no server behind the address."""
    if request.param == "sqlite":
        path = tmp_path / "hub.sqlite3"
        store: Store = SqliteStore(path, busy_timeout_ms=50)
        await store.open()
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            yield store
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
            await store.close()
        return
    store = MongoStore.from_url(
        "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200&connectTimeoutMS=200", "hub"
    )
    try:
        yield store
    finally:
        await store.close()


async def test_a_database_that_cannot_serve_raises_store_unavailable(unusable: Store) -> None:
    if isinstance(unusable, MongoStore):
        with pytest.raises(StoreUnavailable):
            await unusable.open()
        with pytest.raises(StoreUnavailable):
            await unusable.ping()
        with pytest.raises(StoreUnavailable):
            await unusable.get_contact(new_id())
    contact = make_contact(identity("phone", "+84901"))
    with pytest.raises(StoreUnavailable):
        await unusable.add_contact(contact)
    with pytest.raises(StoreUnavailable):
        async with unusable.transaction():
            await unusable.add_agent(make_agent("minh@shop.vn"))


# -- contacts ------------------------------------------------------------


async def test_contact_round_trips_with_every_field(store: Store) -> None:
    contact = make_contact(
        identity("phone", "+84901234567"),
        identity("email", "lan.nguyen@example.vn"),
        identity("telegram", "123456789"),
        name="Nguyễn Thị Lan",
        language="vi",
        timezone="Asia/Ho_Chi_Minh",
        birthday=date(1990, 2, 28),
        tags=["vip", "khách quen"],
        attributes={
            "hạng": "vàng",
            "note": "thích 🍜",
            "orders": 3,
            "ratio": 0.5,
            "flags": [True, None],
            "nested": {"city": "Đà Nẵng"},
        },
        owner_id=new_id(),
        consent={
            "sms": Consent(status="opted_in", at=at(1), how="import"),
            "email": Consent(status="opted_out", at=at(2), how="keyword STOP"),
        },
    )
    await store.add_contact(contact)
    assert await store.get_contact(contact.id) == contact


async def test_missing_contact_is_none(store: Store) -> None:
    assert await store.get_contact(new_id()) is None


async def test_add_contact_with_taken_identity_raises_and_writes_nothing(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    if not backend.identity_index:
        expect_failure(request, SHIM_HAS_NO_MULTIKEY_UNIQUE)
    store = backend.store
    owner = await saved_contact(store, identity("phone", "+84901234567"))
    newcomer = make_contact(identity("email", "b@example.com"), identity("phone", "+84901234567"))
    with pytest.raises(IdentityTaken):
        await store.add_contact(newcomer)
    assert await store.get_contact(newcomer.id) is None
    found = await store.contacts_by_identity(
        [identity("email", "b@example.com"), identity("phone", "+84901234567")]
    )
    assert found == {identity("phone", "+84901234567"): owner.id}


async def test_contacts_owning_returns_whole_contacts_once_each(store: Store) -> None:
    phone, email = identity("phone", "+84901234567"), identity("email", "mai@example.com")
    mai = await saved_contact(store, phone, email, name="Mai", tags=["vip"])
    other = await saved_contact(store, identity("telegram", "42"), name="Other")
    await saved_contact(store, identity("phone", "+84900000000"), name="Not asked")
    found = await store.contacts_owning([email, phone, identity("telegram", "42")])
    assert sorted(found, key=lambda c: c.name) == [mai, other]
    assert await store.contacts_owning([identity("phone", "+84911111111")]) == []
    assert await store.contacts_owning([]) == []


async def test_add_contact_listing_an_identity_twice_raises_and_writes_nothing(
    store: Store,
) -> None:
    twice = make_contact(identity("phone", "+84901234567"), identity("phone", "+84901234567"))
    with pytest.raises(IdentityTaken):
        await store.add_contact(twice)
    assert await store.get_contact(twice.id) is None
    assert await store.contacts_by_identity([identity("phone", "+84901234567")]) == {}


async def test_contacts_without_identities_do_not_collide(store: Store) -> None:
    first = await saved_contact(store, name="walk-in 1")
    second = await saved_contact(store, name="walk-in 2")
    assert await store.get_contact(first.id) == first
    assert await store.get_contact(second.id) == second


async def test_contacts_by_identity_maps_known_identities_to_their_contact(store: Store) -> None:
    lan = await saved_contact(store, identity("phone", "+84901"), identity("email", "lan@x.vn"))
    minh = await saved_contact(store, identity("phone", "+84902"))
    found = await store.contacts_by_identity(
        [
            identity("phone", "+84901"),
            identity("email", "lan@x.vn"),
            identity("phone", "+84902"),
            identity("telegram", "999"),
        ]
    )
    assert found == {
        identity("phone", "+84901"): lan.id,
        identity("email", "lan@x.vn"): lan.id,
        identity("phone", "+84902"): minh.id,
    }
    # Channel of one identity with the address of another is no identity at all.
    assert await store.contacts_by_identity([identity("phone", "lan@x.vn")]) == {}
    assert await store.contacts_by_identity([]) == {}


async def test_link_identity_appends_it_to_the_contact(store: Store) -> None:
    contact = await saved_contact(store, identity("phone", "+84901"))
    await store.link_identity(contact.id, identity("email", "lan@x.vn"))
    stored = await store.get_contact(contact.id)
    assert stored is not None
    assert stored.identities == [identity("phone", "+84901"), identity("email", "lan@x.vn")]
    assert await store.contacts_by_identity([identity("email", "lan@x.vn")]) == {
        identity("email", "lan@x.vn"): contact.id
    }


async def test_linking_an_identity_the_contact_has_is_a_no_op(store: Store) -> None:
    contact = await saved_contact(store, identity("phone", "+84901"), identity("web", "v-1"))
    await store.link_identity(contact.id, identity("phone", "+84901"))
    assert await store.get_contact(contact.id) == contact


async def test_contact_without_identities_can_link_one(store: Store) -> None:
    first = await saved_contact(store)
    second = await saved_contact(store)
    await store.link_identity(first.id, identity("web", "visitor-1"))
    await store.link_identity(second.id, identity("web", "visitor-2"))
    assert await store.contacts_by_identity(
        [identity("web", "visitor-1"), identity("web", "visitor-2")]
    ) == {identity("web", "visitor-1"): first.id, identity("web", "visitor-2"): second.id}


async def test_linking_another_contacts_identity_raises_and_changes_nothing(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    if not backend.identity_index:
        expect_failure(request, SHIM_HAS_NO_MULTIKEY_UNIQUE)
    store = backend.store
    owner = await saved_contact(store, identity("phone", "+84901"))
    other = await saved_contact(store, identity("email", "minh@x.vn"))
    with pytest.raises(IdentityTaken):
        await store.link_identity(other.id, identity("phone", "+84901"))
    assert await store.get_contact(other.id) == other
    assert await store.contacts_by_identity([identity("phone", "+84901")]) == {
        identity("phone", "+84901"): owner.id
    }


async def test_adding_a_contact_id_twice_raises_conflict(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    contact = await saved_contact(backend.store, identity("phone", "+84901"))
    with pytest.raises(Conflict):
        await backend.store.add_contact(contact.model_copy(update={"identities": [], "name": "x"}))
    assert await backend.store.get_contact(contact.id) == contact


async def test_linking_to_a_missing_contact_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.link_identity("0" * 24, identity("phone", "+84909"))
    assert await store.contacts_by_identity([identity("phone", "+84909")]) == {}


async def test_update_contact_sets_fields_with_compare_and_set(store: Store) -> None:
    contact = await saved_contact(store, identity("phone", "+84901"))
    consent = Consent(status="opted_out", at=at(5), how="STOP in message SM9")
    assert await store.update_contact(
        contact.id, consent={"sms": consent}, tags=["vip"], birthday=date(1990, 2, 3)
    )
    stored = await store.get_contact(contact.id)
    assert stored.consent == {"sms": consent}
    assert stored.tags == ["vip"] and stored.birthday == date(1990, 2, 3)
    assert stored.identities == contact.identities
    assert not await store.update_contact(contact.id, expect={"name": "someone else"}, name="x")
    assert not await store.update_contact("0" * 24, name="x")
    with pytest.raises(ValueError, match=r"cannot update Contact\.identities"):
        await store.update_contact(contact.id, identities=[])


# -- channel state -------------------------------------------------------


async def test_channel_state_is_remembered_per_account_and_key(store: Store) -> None:
    assert await store.channel_state("support-mail", "INBOX") is None
    await store.save_channel_state("support-mail", "INBOX", {"uidvalidity": 7, "last_uid": 41})
    await store.save_channel_state("support-mail", "INBOX", {"uidvalidity": 7, "last_uid": 42})
    await store.save_channel_state("sales-mail", "INBOX", {"uidvalidity": 1, "last_uid": 3})
    assert await store.channel_state("support-mail", "INBOX") == {"uidvalidity": 7, "last_uid": 42}
    assert await store.channel_state("sales-mail", "INBOX") == {"uidvalidity": 1, "last_uid": 3}
    assert await store.channel_state("support-mail", "Sent") is None


# -- conversations -------------------------------------------------------


async def test_conversation_round_trips_with_every_field(store: Store) -> None:
    contact = await saved_contact(store)
    conversation = await saved_conversation(
        store,
        contact,
        account_id="support-mail",
        channel="email",
        contact_address="lan@x.vn",
        subject="Đơn hàng #123 chưa tới",
        status="snoozed",
        assignee_id=new_id(),
        team_id=new_id(),
        labels=["giao hàng", "urgent"],
        priority="high",
        first_response_due_at=at(15),
        resolution_due_at=at(60 * 24),
        first_response_at=at(5),
        resolved_at=None,
        snoozed_until=at(120),
        satisfaction=4,
        satisfaction_at=at(130),
        last_activity_at=at(3),
        unread_count=2,
        updated_at=at(4),
    )
    assert await store.get_conversation(conversation.id) == conversation
    assert await store.get_conversation(new_id()) is None


async def test_latest_conversation_is_the_newest_activity_among_the_statuses(store: Store) -> None:
    contact = await saved_contact(store)
    old_open = await saved_conversation(store, contact, status="open", last_activity_at=at(1))
    resolved = await saved_conversation(store, contact, status="resolved", last_activity_at=at(9))
    pending = await saved_conversation(store, contact, status="pending", last_activity_at=at(5))
    await saved_conversation(store, contact, account_id="sms-alt", last_activity_at=at(20))
    other = await saved_contact(store)
    await saved_conversation(store, other, last_activity_at=at(30))

    assert await store.latest_conversation(contact.id, "sms-main", statuses=None) == resolved
    assert (
        await store.latest_conversation(
            contact.id, "sms-main", statuses=("open", "pending", "snoozed")
        )
        == pending
    )
    assert await store.latest_conversation(contact.id, "sms-main", statuses=["open"]) == old_open
    assert await store.latest_conversation(contact.id, "sms-main", statuses=["snoozed"]) is None
    assert await store.latest_conversation(contact.id, "nowhere", statuses=None) is None


async def test_known_sender_is_one_contact_writing_into_an_open_conversation(
    store: Store,
) -> None:
    phone, chat = identity("sms", "+84901234567"), identity("webchat:site", "v-1")
    lan = await saved_contact(store, phone, chat, name="Lan")
    minh = await saved_contact(store, identity("sms", "+84907654321"), name="Minh")
    await saved_conversation(store, lan, status="open", last_activity_at=at(1))
    newest = await saved_conversation(store, lan, status="open", last_activity_at=at(2))
    await saved_conversation(store, lan, status="resolved", last_activity_at=at(9))
    await saved_conversation(store, lan, account_id="sms-alt", last_activity_at=at(20))

    found = await store.known_sender([phone, chat], "sms-main")
    assert found is not None
    assert (found.contact_id, found.contact_name, found.conversation_id) == (
        lan.id,
        "Lan",
        newest.id,
    )
    assert await store.known_sender([chat], "sms-main") == found
    assert await store.known_sender([phone, phone], "sms-main") == found
    # Anything else takes the general path: a new identity, another contact's,
    # no conversation on the account, one to wake.
    assert await store.known_sender([phone, identity("email", "lan@x.vn")], "sms-main") is None
    assert await store.known_sender([phone, minh.identities[0]], "sms-main") is None
    assert await store.known_sender([identity("sms", "+84900000000")], "sms-main") is None
    assert await store.known_sender(minh.identities, "sms-main") is None
    assert await store.known_sender([], "sms-main") is None
    await saved_conversation(store, lan, status="pending", last_activity_at=at(3))
    assert await store.known_sender([phone], "sms-main") is None


async def _views(store: Store) -> dict[str, Conversation]:
    lan = await saved_contact(store)
    minh = await saved_contact(store)
    rows = {
        "c1": (lan, "open", "a1", "sms", "sms-main", 1),
        "c2": (lan, "pending", None, "email", "support-mail", 2),
        "c3": (minh, "resolved", "a2", "sms", "sms-alt", 3),
        "c4": (minh, "snoozed", "a1", "telegram", "tg-bot", 4),
        "c5": (minh, "open", None, "sms", "sms-main", 5),
    }
    return {
        name: await saved_conversation(
            store,
            contact,
            status=status,
            assignee_id=assignee,
            channel=channel,
            account_id=account,
            last_activity_at=at(minute),
        )
        for name, (contact, status, assignee, channel, account, minute) in rows.items()
    }


async def test_list_conversations_applies_each_filter(store: Store) -> None:
    c = await _views(store)

    async def names(view: ConversationFilter) -> list[str]:
        page = await store.list_conversations(view, limit=10)
        assert page.next_cursor is None
        by_id = {conversation.id: name for name, conversation in c.items()}
        return [by_id[conversation.id] for conversation in page.items]

    assert await names(ConversationFilter()) == ["c5", "c4", "c3", "c2", "c1"]
    assert await names(ConversationFilter(statuses=["open", "pending"])) == ["c5", "c2", "c1"]
    assert await names(ConversationFilter(assignee_id="a1")) == ["c4", "c1"]
    assert await names(ConversationFilter(unassigned=True)) == ["c5", "c2"]
    assert await names(ConversationFilter(channel="sms")) == ["c5", "c3", "c1"]
    assert await names(ConversationFilter(account_id="sms-main")) == ["c5", "c1"]
    assert await names(ConversationFilter(contact_id=c["c1"].contact_id)) == ["c2", "c1"]
    assert await names(ConversationFilter(statuses=["open"], channel="sms", unassigned=True)) == [
        "c5"
    ]
    assert await names(ConversationFilter(statuses=["open"], assignee_id="a2")) == []
    # Changed since a moment (the moment itself included).
    await store.update_conversation(c["c2"].id, updated_at=at(7))
    await store.update_conversation(c["c4"].id, updated_at=at(8))
    assert await names(ConversationFilter(updated_since=at(7))) == ["c4", "c2"]
    assert await names(ConversationFilter(updated_since=at(8))) == ["c4"]
    # Idle since a moment: no activity after it (the moment itself included).
    assert await names(ConversationFilter(inactive_since=at(3))) == ["c3", "c2", "c1"]
    assert await names(ConversationFilter(statuses=["pending"], inactive_since=at(1))) == []


async def _pages(store: Store, view: ConversationFilter, limit: int) -> list[list[Conversation]]:
    pages: list[list[Conversation]] = []
    cursor: str | None = None
    while True:
        page = await store.list_conversations(view, limit=limit, cursor=cursor)
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        assert len(page.items) == limit
        cursor = page.next_cursor
        assert len(pages) < 50, "pagination does not end"


async def test_list_conversations_pages_through_ties_without_skipping_or_repeating(
    store: Store,
) -> None:
    contact = await saved_contact(store)
    # Ids deliberately out of creation order, and most activity times shared.
    ids = sorted(new_id() for _ in range(9))
    random.Random(7).shuffle(ids)
    minutes = [5, 5, 5, 3, 3, 9, 1, 5, 3]
    statuses = ["open", "pending", "open", "open", "resolved", "open", "open", "open", "pending"]
    for conversation_id, minute, status in zip(ids, minutes, statuses, strict=True):
        await saved_conversation(
            store, contact, id=conversation_id, status=status, last_activity_at=at(minute)
        )
    everything = await store.list_conversations(ConversationFilter(), limit=100)
    expected = sorted(everything.items, key=lambda c: (c.last_activity_at, c.id), reverse=True)
    assert everything.items == expected
    assert len(expected) == 9

    for view in (ConversationFilter(), ConversationFilter(statuses=["open"])):
        wanted = [c.id for c in expected if not view.statuses or c.status in view.statuses]
        for limit in (1, 2, 3, len(wanted) - 1, len(wanted), len(wanted) + 1):
            pages = await _pages(store, view, limit)
            seen = [c.id for page in pages for c in page]
            assert seen == wanted, (view, limit)
            assert len(pages) == max(1, -(-len(wanted) // limit)), (view, limit)


async def test_list_conversations_refuses_a_cursor_it_never_gave(store: Store) -> None:
    with pytest.raises(InvalidRequest):
        await store.list_conversations(ConversationFilter(), limit=5, cursor="bm90LWEtY3Vyc29y")


async def test_update_conversation_sets_fields_when_expectations_hold(store: Store) -> None:
    conversation = await saved_conversation(store, labels=["new"])
    assert await store.update_conversation(
        conversation.id,
        expect={"status": "open", "labels": ["new"]},
        status="resolved",
        resolved_at=at(10),
        labels=["done", "đã xử lý"],
        updated_at=at(10),
    )
    stored = await store.get_conversation(conversation.id)
    assert stored == conversation.model_copy(
        update={
            "status": "resolved",
            "resolved_at": at(10),
            "labels": ["done", "đã xử lý"],
            "updated_at": at(10),
        }
    )
    # Without expectations it is a plain update.
    assert await store.update_conversation(conversation.id, priority="urgent")
    stored = await store.get_conversation(conversation.id)
    assert stored is not None and stored.priority == "urgent"


async def test_update_conversation_changes_nothing_when_an_expectation_fails(store: Store) -> None:
    conversation = await saved_conversation(store, status="pending", assignee_id="a1")
    assert not await store.update_conversation(
        conversation.id, expect={"status": "open"}, status="resolved"
    )
    # Every expectation must hold, not just one of them.
    assert not await store.update_conversation(
        conversation.id, expect={"status": "pending", "assignee_id": "a2"}, status="resolved"
    )
    assert not await store.update_conversation(
        conversation.id, expect={"status": ("open", "snoozed")}, status="resolved"
    )
    assert not await store.update_conversation(new_id(), status="resolved")
    assert await store.get_conversation(conversation.id) == conversation


async def test_update_conversation_tuple_expectation_means_any_of_them(store: Store) -> None:
    conversation = await saved_conversation(store, status="pending")
    assert await store.update_conversation(
        conversation.id, expect={"status": ("open", "pending", "snoozed")}, status="resolved"
    )
    assert not await store.update_conversation(
        conversation.id, expect={"status": ("open", "pending", "snoozed")}, status="open"
    )
    stored = await store.get_conversation(conversation.id)
    assert stored is not None and stored.status == "resolved"


async def test_update_conversation_can_expect_a_list_and_consent_a_dict(store: Store) -> None:
    # A missed call labels its conversation with a compare-and-set on the labels;
    # a consent keyword updates the contact's consent the same way.
    conversation = await saved_conversation(store)
    assert await store.update_conversation(conversation.id, expect={"labels": []}, labels=["vip"])
    assert not await store.update_conversation(
        conversation.id, expect={"labels": []}, labels=["call-back"]
    )
    assert await store.update_conversation(
        conversation.id, expect={"labels": ["vip"]}, labels=["vip", "call-back"]
    )
    assert (await store.get_conversation(conversation.id)).labels == ["vip", "call-back"]
    contact = await store.get_contact(conversation.contact_id)
    out = {"sms": Consent(status="opted_out", at=at(1), how="message:m1")}
    assert await store.update_contact(contact.id, expect={"consent": {}}, consent=out)
    back = {"sms": Consent(status="opted_in", at=at(2), how="message:m2")}
    assert not await store.update_contact(contact.id, expect={"consent": {}}, consent=back)
    assert await store.update_contact(contact.id, expect={"consent": out}, consent=back)
    assert (await store.get_contact(contact.id)).consent == back


async def test_update_conversation_none_expectation_means_unset(store: Store) -> None:
    conversation = await saved_conversation(store)
    # Two agents race to claim an unassigned conversation: exactly one wins.
    assert await store.update_conversation(
        conversation.id, expect={"assignee_id": None}, assignee_id="a1"
    )
    assert not await store.update_conversation(
        conversation.id, expect={"assignee_id": None}, assignee_id="a2"
    )
    # None inside a tuple: unassigned, or assigned to one of them.
    other = await saved_conversation(store)
    assert await store.update_conversation(
        other.id, expect={"assignee_id": (None, "a1")}, assignee_id="a1"
    )
    assert await store.update_conversation(
        other.id, expect={"assignee_id": (None, "a1")}, assignee_id="a3"
    )
    assert not await store.update_conversation(
        other.id, expect={"assignee_id": (None, "a1")}, assignee_id="a4"
    )
    assert await store.update_conversation(
        conversation.id, expect={"first_response_at": None}, first_response_at=at(2)
    )
    assert not await store.update_conversation(
        conversation.id, expect={"first_response_at": None}, first_response_at=at(3)
    )
    stored = await store.get_conversation(conversation.id)
    assert stored is not None
    assert (stored.assignee_id, stored.first_response_at) == ("a1", at(2))
    stored = await store.get_conversation(other.id)
    assert stored is not None and stored.assignee_id == "a3"


@pytest.mark.parametrize(
    ("expect", "changes"),
    [
        (None, {"colour": "red"}),
        ({"colour": "red"}, {"status": "open"}),
        (None, {"contact_id": "someone-else"}),
        (None, {"id": "another-id"}),
        (None, {"created_at": T0}),
    ],
)
async def test_update_conversation_refuses_unknown_and_identity_fields(
    store: Store, expect: dict[str, Any] | None, changes: dict[str, Any]
) -> None:
    conversation = await saved_conversation(store)
    with pytest.raises(ValueError):
        await store.update_conversation(conversation.id, expect=expect, **changes)
    assert await store.get_conversation(conversation.id) == conversation


async def test_record_inbound_activity_counts_unread_and_only_moves_activity_forward(
    store: Store,
) -> None:
    conversation = await saved_conversation(store, last_activity_at=at(0))
    await store.record_inbound_activity(conversation.id, at(5))
    stored = await store.get_conversation(conversation.id)
    assert stored is not None
    assert (stored.unread_count, stored.last_activity_at, stored.updated_at) == (1, at(5), at(5))
    # A message that arrives late (older timestamp) still counts as unread.
    await store.record_inbound_activity(conversation.id, at(2))
    stored = await store.get_conversation(conversation.id)
    assert stored is not None
    assert (stored.unread_count, stored.last_activity_at) == (2, at(5))
    await store.record_inbound_activity(new_id(), at(9))  # unknown: nothing to do


async def test_adding_a_conversation_id_twice_raises_conflict(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    conversation = await saved_conversation(backend.store)
    with pytest.raises(Conflict):
        await backend.store.add_conversation(conversation.model_copy(update={"subject": "x"}))
    assert await backend.store.get_conversation(conversation.id) == conversation


async def test_list_conversations_needs_a_positive_limit(store: Store) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        await store.list_conversations(ConversationFilter(), limit=0)


# -- messages ------------------------------------------------------------


async def test_message_round_trips_with_every_field(store: Store) -> None:
    conversation = await saved_conversation(store, channel="email", account_id="support-mail")
    message = await saved_message(
        store,
        conversation,
        direction="outbound",
        sender=Sender(kind="agent", id=new_id(), name="Trần Minh"),
        text="Chào chị Lan, đơn hàng đã được gửi 📦",
        html="<p>Chào chị Lan</p>",
        attachments=[
            Attachment(
                name="hoá đơn.pdf", content_type="application/pdf", size=1234, url="https://x/1"
            ),
            Attachment(name="huge.mov", too_large=True),
        ],
        external_id="<abc@mail.example.vn>",
        thread=ThreadKeys(
            message_id="<abc@mail.example.vn>",
            in_reply_to="<prev@mail.example.vn>",
            references=["<first@mail.example.vn>", "<prev@mail.example.vn>"],
        ),
        status="sent",
        error=None,
        attempts=2,
        idempotency_key="reply-1",
        meta={"provider": {"id": "SM123", "segments": 2}, "ghi chú": "ổn"},
        sent_parts=["<abc@mail.example.vn>", None, "part-3"],
        created_at=at(1),
        updated_at=at(2),
    )
    assert await store.get_message(message.id) == message
    assert await store.get_message(new_id()) is None


async def test_duplicate_external_id_raises_and_writes_nothing(store: Store) -> None:
    conversation = await saved_conversation(store)
    first = await saved_message(store, conversation, external_id="SM1")
    retry = make_message(conversation, external_id="SM1", text="the provider retried")
    with pytest.raises(DuplicateMessage):
        await store.add_message(retry)
    assert await store.get_message(retry.id) is None
    assert await store.list_messages(conversation.id) == [first]
    assert await store.message_by_external_id("sms", "sms-main", "SM1") == first


async def test_same_external_id_on_another_account_or_channel_is_another_message(
    store: Store,
) -> None:
    contact = await saved_contact(store)
    main = await saved_conversation(store, contact)
    alt = await saved_conversation(store, contact, account_id="sms-alt")
    zalo = await saved_conversation(store, contact, channel="zalo")
    on_main = await saved_message(store, main, external_id="42")
    on_alt = await saved_message(store, alt, external_id="42")
    on_zalo = await saved_message(store, zalo, external_id="42")
    assert await store.message_by_external_id("sms", "sms-main", "42") == on_main
    assert await store.message_by_external_id("sms", "sms-alt", "42") == on_alt
    assert await store.message_by_external_id("zalo", "sms-main", "42") == on_zalo
    assert await store.message_by_external_id("sms", "sms-main", "43") is None
    assert await store.message_by_external_id("telegram", "sms-main", "42") is None


async def test_duplicate_idempotency_key_in_a_conversation_raises(store: Store) -> None:
    contact = await saved_contact(store)
    conversation = await saved_conversation(store, contact)
    other = await saved_conversation(store, contact, account_id="sms-alt")
    first = await saved_message(store, conversation, direction="outbound", idempotency_key="k1")
    again = make_message(conversation, direction="outbound", idempotency_key="k1")
    with pytest.raises(DuplicateMessage):
        await store.add_message(again)
    assert await store.get_message(again.id) is None
    elsewhere = await saved_message(store, other, direction="outbound", idempotency_key="k1")
    assert await store.message_by_idempotency_key(conversation.id, "k1") == first
    assert await store.message_by_idempotency_key(other.id, "k1") == elsewhere
    assert await store.message_by_idempotency_key(conversation.id, "k2") is None


async def test_messages_without_external_id_or_key_never_collide(store: Store) -> None:
    conversation = await saved_conversation(store)
    first = await saved_message(store, conversation, direction="outbound", text="a")
    second = await saved_message(store, conversation, direction="outbound", text="a")
    note = await saved_message(store, conversation, direction="note", created_at=at(1))
    same_time = sorted([first, second], key=lambda m: m.id)
    assert await store.list_messages(conversation.id) == [*same_time, note]


async def test_adding_a_message_id_twice_raises_duplicate_message(store: Store) -> None:
    conversation = await saved_conversation(store)
    message = await saved_message(store, conversation)
    with pytest.raises(DuplicateMessage):
        await store.add_message(message.model_copy(update={"text": "changed"}))
    assert await store.list_messages(conversation.id) == [message]


async def test_list_messages_is_the_timeline_oldest_first(store: Store) -> None:
    contact = await saved_contact(store)
    conversation = await saved_conversation(store, contact)
    other = await saved_conversation(store, contact, account_id="sms-alt")
    ids = sorted(new_id() for _ in range(4))
    late = await saved_message(store, conversation, id=ids[0], created_at=at(9))
    tie_b = await saved_message(store, conversation, id=ids[3], created_at=at(4))
    first = await saved_message(store, conversation, id=ids[2], created_at=at(1))
    tie_a = await saved_message(store, conversation, id=ids[1], created_at=at(4))
    await saved_message(store, other, created_at=at(2))
    assert await store.list_messages(conversation.id) == [first, tie_a, tie_b, late]
    assert await store.list_messages(new_id()) == []


async def test_last_message_is_the_newest_of_that_direction_in_that_conversation(
    store: Store,
) -> None:
    contact = await saved_contact(store)
    conversation = await saved_conversation(store, contact)
    other = await saved_conversation(store, contact, account_id="sms-alt")
    assert await store.last_message(conversation.id, "inbound") is None
    ids = sorted(new_id() for _ in range(2))
    await saved_message(store, conversation, created_at=at(1))
    tie_b = await saved_message(store, conversation, id=ids[1], created_at=at(4))
    await saved_message(store, conversation, id=ids[0], created_at=at(4))
    reply = await saved_message(store, conversation, direction="outbound", created_at=at(7))
    await saved_message(store, conversation, direction="note", created_at=at(8))
    await saved_message(store, other, created_at=at(9))
    assert await store.last_message(conversation.id, "inbound") == tie_b
    assert await store.last_message(conversation.id, "outbound") == reply
    assert await store.last_message(conversation.id, "event") is None


async def test_find_messages_reads_the_part_of_a_timeline_asked_for(store: Store) -> None:
    contact = await saved_contact(store)
    conversation = await saved_conversation(store, contact)
    other = await saved_conversation(store, contact, account_id="sms-alt")
    ids = sorted(new_id() for _ in range(2))
    asked = await saved_message(store, conversation, created_at=at(1), text="")
    keyed = await saved_message(
        store, conversation, created_at=at(2), thread=ThreadKeys(message_id="<a@shop.vn>")
    )
    sent = await saved_message(
        store, conversation, direction="outbound", status="sent", created_at=at(3)
    )
    tie_b = await saved_message(
        store, conversation, id=ids[1], direction="outbound", status="delivered", created_at=at(4)
    )
    tie_a = await saved_message(
        store, conversation, id=ids[0], direction="outbound", status="read", created_at=at(4)
    )
    answered = await saved_message(
        store,
        conversation,
        direction="outbound",
        status="queued",
        created_at=at(5),
        thread=ThreadKeys(message_id="<b@hub>", in_reply_to="<a@shop.vn>"),
    )
    note = await saved_message(store, conversation, direction="note", created_at=at(6))
    await saved_message(store, other, created_at=at(7), thread=ThreadKeys(message_id="<c@x>"))
    whole = [asked, keyed, sent, tie_a, tie_b, answered, note]
    assert await store.find_messages(conversation.id) == whole
    assert await store.find_messages(conversation.id, newest_first=True) == whole[::-1]
    assert await store.find_messages(conversation.id, limit=2) == [asked, keyed]
    assert await store.find_messages(conversation.id, threaded=True) == [keyed, answered]
    assert await store.find_messages(
        conversation.id, threaded=True, newest_first=True, limit=1
    ) == [answered]
    assert await store.find_messages(conversation.id, directions=["inbound"], limit=5) == [
        asked,
        keyed,
    ]
    delivered = await store.find_messages(
        conversation.id, directions=["outbound"], statuses=["sent", "delivered"], until=at(4)
    )
    assert delivered == [sent, tie_b]
    assert await store.find_messages(conversation.id, until=at(2)) == [asked, keyed]
    assert await store.find_messages(conversation.id, directions=["event"]) == []
    assert await store.find_messages(new_id()) == []


async def test_a_timeline_pages_back_from_the_newest_message(store: Store) -> None:
    conversation = await saved_conversation(store)
    other = await saved_conversation(store, account_id="sms-alt")
    # Seven messages at minute 3 tie on their time: the pages split them by id.
    ids = sorted(new_id() for _ in range(7))
    timeline = [await saved_message(store, conversation, created_at=at(m)) for m in (1, 2)]
    for i in ids:
        timeline.append(await saved_message(store, conversation, id=i, created_at=at(3)))
    timeline += [await saved_message(store, conversation, created_at=at(m)) for m in (4, 5)]
    await saved_message(store, other, created_at=at(2.5))

    pages, cursor = [], None
    while True:
        page = await store.timeline_page([conversation.id], limit=4, cursor=cursor)
        pages.append(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == [timeline[7:], timeline[3:7], timeline[:3]]
    whole = await store.timeline_page([conversation.id], limit=11)
    assert whole.items == timeline
    assert whole.next_cursor is None
    first = await store.timeline_page([conversation.id], limit=10)
    assert first.items == timeline[1:]
    assert first.next_cursor is not None
    rest = await store.timeline_page([conversation.id], limit=10, cursor=first.next_cursor)
    assert rest.items == [timeline[0]]
    assert await store.timeline_page([new_id()], limit=5) == Page([], None)
    with pytest.raises(InvalidRequest):
        await store.timeline_page([conversation.id], limit=5, cursor="not a cursor")


async def test_a_contacts_history_pages_back_across_its_conversations(store: Store) -> None:
    contact = await saved_contact(store)
    sms = await saved_conversation(store, contact)
    mail = await saved_conversation(store, contact, account_id="mail", channel="email")
    stranger = await saved_conversation(store)
    ids = sorted(new_id() for _ in range(2))
    history = [
        await saved_message(store, sms, created_at=at(1)),
        await saved_message(store, mail, created_at=at(2)),
        await saved_message(store, sms, created_at=at(3)),
        await saved_message(store, mail, id=ids[0], created_at=at(4)),
        await saved_message(store, sms, id=ids[1], created_at=at(4)),
        await saved_message(store, mail, created_at=at(5)),
        await saved_message(store, sms, created_at=at(6)),
    ]
    await saved_message(store, stranger, created_at=at(3.5))

    pages, cursor = [], None
    while True:
        page = await store.timeline_page([sms.id, mail.id], limit=3, cursor=cursor)
        pages.append(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == [history[4:], history[1:4], history[:1]]
    both = await store.timeline_page([mail.id, sms.id, mail.id], limit=50)
    assert both == Page(history, None)


async def test_update_message_moves_delivery_status_forward_only(store: Store) -> None:
    conversation = await saved_conversation(store)
    message = await saved_message(store, conversation, direction="outbound", status="queued")

    async def receipt(status: str, **changes: Any) -> bool:
        earlier = ("queued", "sent", "delivered", "read", "failed")
        allowed = earlier[: earlier.index(status)]
        return await store.update_message(
            message.id, expect={"status": allowed}, status=status, **changes
        )

    assert await receipt("sent", attempts=1, updated_at=at(1))
    assert await receipt("delivered", updated_at=at(2))
    assert not await receipt("sent", updated_at=at(3))  # late receipt must not undo delivered
    stored = await store.get_message(message.id)
    assert stored == message.model_copy(
        update={"status": "delivered", "attempts": 1, "updated_at": at(2)}
    )
    assert not await store.update_message(message.id, expect={"status": "queued"}, error="x")
    assert not await store.update_message(new_id(), status="sent")
    with pytest.raises(ValueError):
        await store.update_message(message.id, direction="inbound")
    with pytest.raises(ValueError):
        await store.update_message(message.id, expect={"nonsense": 1}, status="read")
    assert await store.get_message(message.id) == stored


async def test_update_message_stores_nested_records(store: Store) -> None:
    conversation = await saved_conversation(store)
    message = await saved_message(store, conversation, direction="outbound", status="queued")
    thread = ThreadKeys(message_id="<m@x>", references=["<a@x>"])
    attachments = [Attachment(name="ảnh.jpg", content_type="image/jpeg", size=10)]
    assert await store.update_message(
        message.id,
        expect={"status": ("queued",), "external_id": None},
        external_id="<m@x>",
        thread=thread,
        attachments=attachments,
        meta={"sent_via": "smtp"},
    )
    stored = await store.get_message(message.id)
    assert stored == message.model_copy(
        update={
            "external_id": "<m@x>",
            "thread": thread,
            "attachments": attachments,
            "meta": {"sent_via": "smtp"},
        }
    )
    assert await store.message_by_external_id("sms", "sms-main", "<m@x>") == stored


async def test_sent_parts_are_appended_in_order_only_by_the_attempt_that_owns_the_message(
    store: Store,
) -> None:
    conversation = await saved_conversation(store, channel="messenger", account_id="page")
    message = await saved_message(
        store, conversation, direction="outbound", status="queued", attempts=1
    )
    assert await store.record_sent_part(message.id, 0, "m_1", attempt=1)
    assert not await store.record_sent_part(message.id, 0, "m_again", attempt=1)  # taken
    assert not await store.record_sent_part(message.id, 2, "m_3", attempt=1)  # a gap
    assert not await store.record_sent_part(message.id, 1, "m_2", attempt=2)  # not its attempt
    assert await store.record_sent_part(message.id, 1, None, attempt=1)  # no id given
    assert await store.record_sent_part(message.id, 2, "m_3", attempt=1)
    assert not await store.record_sent_part(new_id(), 0, "m_x", attempt=1)
    stored = await store.get_message(message.id)
    assert stored is not None and stored.sent_parts == ["m_1", None, "m_3"]
    assert stored == message.model_copy(update={"sent_parts": ["m_1", None, "m_3"]})
    # Once the message left `queued` (sent, or failed by a receipt) no part is added.
    assert await store.update_message(message.id, status="failed")
    assert not await store.record_sent_part(message.id, 3, "m_4", attempt=1)
    assert (await store.get_message(message.id)).sent_parts == ["m_1", None, "m_3"]


async def test_a_receipt_naming_any_sent_part_finds_its_message(store: Store) -> None:
    page = await saved_conversation(store, channel="messenger", account_id="page")
    other_page = await saved_conversation(store, channel="messenger", account_id="page-2")
    message = await saved_message(store, page, direction="outbound", status="queued", attempts=1)
    other = await saved_message(
        store, other_page, direction="outbound", status="queued", attempts=1
    )
    for index, part in enumerate(["m_1", "m_2"]):
        assert await store.record_sent_part(message.id, index, part, attempt=1)
    assert await store.record_sent_part(other.id, 0, "m_2", attempt=1)  # same id elsewhere
    assert await store.update_message(message.id, status="sent", external_id="m_1")
    stored = await store.get_message(message.id)
    assert await store.message_by_sent_part("messenger", "page", "m_1") == stored
    assert await store.message_by_sent_part("messenger", "page", "m_2") == stored
    assert (await store.message_by_sent_part("messenger", "page-2", "m_2")).id == other.id
    assert await store.message_by_sent_part("messenger", "page", "m_3") is None
    assert await store.message_by_sent_part("whatsapp", "page", "m_1") is None
    # Receipts look there; the message's own external id is still its first part's only.
    assert await store.message_by_external_id("messenger", "page", "m_1") == stored
    assert await store.message_by_external_id("messenger", "page", "m_2") is None


async def test_message_by_thread_key_finds_the_newest_message_with_one_of_the_keys(
    store: Store,
) -> None:
    conversation = await saved_conversation(store)
    other_account = await saved_conversation(store, account_id="mail-sales")
    first = await saved_message(
        store, conversation, thread=ThreadKeys(message_id="<a@x>"), created_at=at(1)
    )
    reply = await saved_message(
        store,
        conversation,
        direction="outbound",
        status="sent",
        thread=ThreadKeys(message_id="<b@x>", in_reply_to="<a@x>", references=["<a@x>"]),
        created_at=at(2),
    )
    await saved_message(store, conversation, created_at=at(3))  # no key of its own
    await saved_message(
        store, other_account, thread=ThreadKeys(message_id="<c@x>"), created_at=at(4)
    )
    assert await store.message_by_thread_key("sms-main", ["<a@x>"]) == first
    assert await store.message_by_thread_key("sms-main", ["<nope@x>", "<a@x>", "<b@x>"]) == reply
    # Only a message's own key counts, not the keys it refers to; accounts stay apart.
    assert await store.message_by_thread_key("sms-main", ["<c@x>"]) is None
    assert await store.message_by_thread_key("mail-sales", ["<c@x>"]) is not None
    assert await store.message_by_thread_key("sms-main", []) is None


async def test_a_thread_key_recorded_after_sending_is_found(store: Store) -> None:
    conversation = await saved_conversation(store)
    message = await saved_message(store, conversation, direction="outbound", status="queued")
    assert await store.message_by_thread_key("sms-main", ["<hub@x>"]) is None
    assert await store.update_message(
        message.id, status="sent", thread=ThreadKeys(message_id="<hub@x>")
    )
    found = await store.message_by_thread_key("sms-main", ["<hub@x>"])
    assert found is not None and found.id == message.id


async def test_update_message_can_expect_the_whole_meta(store: Store) -> None:
    # Call events are kept up to date with a compare-and-set on their meta.
    conversation = await saved_conversation(store)
    call = {"call": {"status": "ringing", "transfers": [], "answered_by": None}}
    message = await saved_message(store, conversation, direction="event", meta=call)
    answered = {"call": {"status": "answered", "transfers": [], "answered_by": {"name": "Lan"}}}
    assert await store.update_message(message.id, expect={"meta": call}, meta=answered)
    assert not await store.update_message(message.id, expect={"meta": call}, meta={"call": {}})
    assert (await store.get_message(message.id)).meta == answered


async def test_messages_awaiting_delivery_are_old_queued_outbound_oldest_first(
    store: Store,
) -> None:
    conversation = await saved_conversation(store)
    ids = sorted(new_id() for _ in range(3))

    async def outbound(minute: float, status: str | None, **fields: Any) -> Message:
        return await saved_message(
            store,
            conversation,
            direction="outbound",
            status=status,
            created_at=at(minute),
            **fields,
        )

    tie_b = await outbound(3, "queued", id=ids[2])
    oldest = await outbound(1, "queued", id=ids[1])
    tie_a = await outbound(3, "queued", id=ids[0])
    await outbound(10, "queued")  # exactly at the cut-off: not before it
    await outbound(12, "queued")
    await outbound(0, "sent")
    await outbound(0, "failed")
    await saved_message(store, conversation, created_at=at(0))  # inbound, no status

    assert await store.messages_awaiting_delivery(at(10), 10) == [oldest, tie_a, tie_b]
    assert await store.messages_awaiting_delivery(at(10), 2) == [oldest, tie_a]
    assert await store.messages_awaiting_delivery(at(1), 10) == []
    assert await store.messages_awaiting_delivery(at(10), 0) == []


async def test_counts_tally_messages_by_delivery_status(store: Store) -> None:
    assert (await store.counts()).messages_by_status == {}
    conversation = await saved_conversation(store)
    for status in ("queued", "queued", "sent", "delivered", "failed", None, None):
        await saved_message(store, conversation, direction="outbound", status=status)
    counts = await store.counts()
    assert counts.messages_by_status == {"queued": 2, "sent": 1, "delivered": 1, "failed": 1}


# -- agents and tokens ---------------------------------------------------


async def test_agent_round_trips_and_is_found_by_email(store: Store) -> None:
    agent = make_agent(
        "minh@shop.vn",
        name="Trần Văn Minh",
        role="admin",
        team_ids=[new_id()],
        skills=["billing", "tiếng Việt"],
        languages=["vi", "en"],
        capacity=3,
        presence="online",
        password_hash="$argon2id$v=19$...",
        last_assigned_at=at(7),
    )
    await store.add_agent(agent)
    assert await store.get_agent(agent.id) == agent
    assert await store.agent_by_email("minh@shop.vn") == agent
    assert await store.agent_by_email("nobody@shop.vn") is None
    assert await store.get_agent(new_id()) is None


async def test_duplicate_agent_email_raises_conflict(store: Store) -> None:
    first = make_agent("minh@shop.vn")
    await store.add_agent(first)
    second = make_agent("minh@shop.vn", name="another Minh")
    with pytest.raises(Conflict):
        await store.add_agent(second)
    assert await store.get_agent(second.id) is None
    assert await store.agent_by_email("minh@shop.vn") == first


async def test_list_agents_shows_active_agents_by_id(store: Store) -> None:
    ids = sorted(new_id() for _ in range(4))
    agents = [
        make_agent("c@x", id=ids[2], presence="online"),
        make_agent("a@x", id=ids[0], presence="away"),
        make_agent("gone@x", id=ids[1], presence="online", active=False),
        make_agent("d@x", id=ids[3], presence="online"),
    ]
    for agent in agents:
        await store.add_agent(agent)
    c, a, _, d = agents
    assert await store.list_agents() == [a, c, d]
    assert await store.list_agents(presence="online") == [c, d]
    assert await store.list_agents(presence="offline") == []


async def test_update_agent(store: Store) -> None:
    agent = make_agent("minh@shop.vn")
    await store.add_agent(agent)
    assert await store.update_agent(
        agent.id, presence="online", last_assigned_at=at(3), active=False
    )
    assert await store.get_agent(agent.id) == agent.model_copy(
        update={"presence": "online", "last_assigned_at": at(3), "active": False}
    )
    assert await store.list_agents() == []
    # Setting what is already there still counts as done.
    assert await store.update_agent(agent.id, presence="online")
    assert not await store.update_agent(new_id(), presence="online")
    with pytest.raises(ValueError):
        await store.update_agent(agent.id, created_at=at(1))
    with pytest.raises(ValueError):
        await store.update_agent(agent.id, mood="happy")


async def test_agents_phone_and_extension_round_trip_and_extension_finds_them(
    store: Store,
) -> None:
    lan = make_agent("lan@shop.vn", phone="+84911000111", extension="101")
    minh = make_agent("minh@shop.vn", extension="102", active=False)
    await store.add_agent(lan)
    await store.add_agent(minh)
    await store.add_agent(make_agent("no-phone@shop.vn"))
    await store.add_agent(make_agent("also-no-phone@shop.vn"))  # many without extension
    assert await store.agent_by_extension("101") == lan
    assert await store.agent_by_extension("102") == minh  # deactivated agents are still found
    assert await store.agent_by_extension("103") is None
    assert await store.update_agent(minh.id, extension="103", phone="+84911000333")
    assert await store.agent_by_extension("103") == minh.model_copy(
        update={"extension": "103", "phone": "+84911000333"}
    )
    assert await store.agent_by_extension("102") is None


async def test_an_extension_belongs_to_one_agent(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    store = backend.store
    await store.add_agent(make_agent("lan@shop.vn", extension="101"))
    other = make_agent("minh@shop.vn", extension="101")
    with pytest.raises(Conflict, match="extension"):
        await store.add_agent(other)
    assert await store.get_agent(other.id) is None
    third = make_agent("hoa@shop.vn", extension="105")
    await store.add_agent(third)
    with pytest.raises(Conflict):
        await store.update_agent(third.id, extension="101")
    assert (await store.get_agent(third.id)).extension == "105"


async def test_token_is_found_by_hash(store: Store) -> None:
    agent = make_agent("minh@shop.vn")
    await store.add_agent(agent)
    token = ApiToken(agent_id=agent.id, name="CRM sync", token_hash="sha256:abc", created_at=at(1))
    used = ApiToken(
        agent_id=agent.id, token_hash="sha256:def", created_at=at(1), last_used_at=at(2)
    )
    await store.add_token(token)
    await store.add_token(used)
    assert await store.token_by_hash("sha256:abc") == token
    assert await store.token_by_hash("sha256:def") == used
    assert await store.token_by_hash("sha256:nope") is None


async def test_duplicate_token_hash_raises_conflict(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    agent = make_agent("minh@shop.vn")
    await backend.store.add_agent(agent)
    token = ApiToken(agent_id=agent.id, token_hash="sha256:abc", created_at=at(1))
    await backend.store.add_token(token)
    with pytest.raises(Conflict):
        await backend.store.add_token(
            ApiToken(agent_id=agent.id, token_hash="sha256:abc", created_at=at(2))
        )
    assert await backend.store.token_by_hash("sha256:abc") == token


async def test_updating_an_agent_to_a_taken_email_raises_conflict(store: Store) -> None:
    first, second = make_agent("a@shop.vn"), make_agent("b@shop.vn")
    await store.add_agent(first)
    await store.add_agent(second)
    with pytest.raises(Conflict):
        await store.update_agent(second.id, email="a@shop.vn")
    assert (await store.get_agent(second.id)).email == "b@shop.vn"


async def test_updating_a_message_to_a_taken_external_id_raises_duplicate(store: Store) -> None:
    conversation = await saved_conversation(store)
    await saved_message(store, conversation, external_id="SM1")
    second = await saved_message(store, conversation, external_id=None)
    with pytest.raises(DuplicateMessage):
        await store.update_message(second.id, external_id="SM1")
    assert (await store.get_message(second.id)).external_id is None


# -- transactions --------------------------------------------------------


async def test_transaction_commits_its_writes_and_reads_its_own(store: Store) -> None:
    contact = make_contact(identity("phone", "+84901"))
    async with store.transaction():
        await store.add_contact(contact)
        assert await store.get_contact(contact.id) == contact
        async with store.transaction():  # nested use joins in
            conversation = await saved_conversation(store, contact)
        assert await store.get_conversation(conversation.id) == conversation
    assert await store.get_contact(contact.id) == contact
    assert await store.get_conversation(conversation.id) == conversation


class Boom(Exception):
    pass


async def test_exception_in_a_transaction_leaves_none_of_its_writes(backend: Backend) -> None:
    if not backend.transactions:
        pytest.skip(
            f"{backend.kind}: no multi-document transactions (standalone server or mongomock);"
            " each method is still atomic on its own"
        )
    store = backend.store
    contact = make_contact(identity("phone", "+84901"))
    conversation_id = new_id()
    with pytest.raises(Boom):
        async with store.transaction():
            await store.add_contact(contact)
            await saved_conversation(store, contact, id=conversation_id)
            raise Boom
    assert await store.get_contact(contact.id) is None
    assert await store.get_conversation(conversation_id) is None
    assert await store.contacts_by_identity([identity("phone", "+84901")]) == {}


async def test_a_method_that_raises_inside_a_transaction_writes_nothing_and_the_rest_commits(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    if backend.kind == "mongo" and backend.transactions:
        request.applymarker(
            pytest.mark.xfail(
                reason="a write error inside a MongoDB transaction aborts the whole transaction"
            )
        )
    store = backend.store
    conversation = await saved_conversation(store)
    first = make_message(conversation, external_id="SM1")
    retry = make_message(conversation, external_id="SM1")
    after = make_message(conversation, external_id="SM2", created_at=at(1))
    async with store.transaction():
        await store.add_message(first)
        with pytest.raises(DuplicateMessage):
            await store.add_message(retry)
        await store.add_message(after)
    assert await store.list_messages(conversation.id) == [first, after]


# -- time ----------------------------------------------------------------


def assert_utc(moments: Sequence[datetime | None]) -> None:
    for moment in moments:
        assert moment is not None and moment.utcoffset() == timedelta(0), moment


async def test_datetimes_come_back_as_the_same_utc_instants(store: Store) -> None:
    def saigon(minute: int) -> datetime:
        return (at(minute) + timedelta(microseconds=123_456)).astimezone(SAIGON)

    contact = make_contact(consent={"sms": Consent(status="opted_in", at=saigon(1), how="web")})
    await store.add_contact(contact)
    conversation = await saved_conversation(
        store,
        contact,
        first_response_due_at=saigon(2),
        resolution_due_at=saigon(3),
        first_response_at=saigon(4),
        resolved_at=saigon(5),
        snoozed_until=saigon(6),
        satisfaction_at=saigon(6.5),
        last_activity_at=saigon(7),
        created_at=saigon(8),
        updated_at=saigon(9),
    )
    message = await saved_message(store, conversation, created_at=saigon(10), updated_at=saigon(11))
    agent = make_agent("minh@shop.vn", last_assigned_at=saigon(12), created_at=saigon(13))
    await store.add_agent(agent)
    token = ApiToken(
        agent_id=agent.id, token_hash="h", created_at=saigon(14), last_used_at=saigon(15)
    )
    await store.add_token(token)
    # Times given to update methods are kept at millisecond precision too.
    assert await store.update_conversation(
        conversation.id, expect={"snoozed_until": saigon(6)}, snoozed_until=saigon(16)
    )
    await store.record_inbound_activity(conversation.id, saigon(17))

    stored_contact = await store.get_contact(contact.id)
    stored_conversation = await store.get_conversation(conversation.id)
    listed = (await store.list_conversations(ConversationFilter(), limit=1)).items[0]
    stored_message = await store.get_message(message.id)
    stored_agent = await store.get_agent(agent.id)
    stored_token = await store.token_by_hash("h")
    assert stored_contact == contact
    assert (
        stored_conversation
        == listed
        == conversation.model_copy(
            update={
                "snoozed_until": utc_ms(saigon(16)),
                "last_activity_at": utc_ms(saigon(17)),
                "updated_at": utc_ms(saigon(17)),
                "unread_count": 1,
            }
        )
    )
    assert stored_message == message
    assert stored_agent == agent
    assert stored_token == token
    assert stored_conversation is not None and stored_message is not None
    assert stored_agent is not None and stored_token is not None and stored_contact is not None
    assert_utc(
        [
            stored_contact.consent["sms"].at,
            stored_contact.created_at,
            *(
                getattr(stored_conversation, f)
                for f in Conversation.model_fields
                if f.endswith(("_at", "_until"))
            ),
            stored_message.created_at,
            stored_agent.last_assigned_at,
            stored_token.last_used_at,
        ]
    )
    assert stored_conversation.last_activity_at == datetime(
        2025, 3, 1, 8, 17, 0, 123_000, tzinfo=UTC
    )


# -- routing: capacity-safe assignment and the agent's load -----------------


async def load(store: Store, agent_id: str) -> int:
    agent = await store.get_agent(agent_id)
    assert agent is not None
    return agent.open_count


async def test_assign_within_capacity_stops_at_the_agent_capacity(store: Store) -> None:
    agent = make_agent("cap@x.vn", capacity=2)
    await store.add_agent(agent)
    conversations = [await saved_conversation(store) for _ in range(3)]
    results = [
        await store.assign_within_capacity(c.id, agent.id, at(n))
        for n, c in enumerate(conversations)
    ]
    assert results == [True, True, False]
    assert await load(store, agent.id) == 2
    third = await store.get_conversation(conversations[2].id)
    assert third is not None and third.assignee_id is None
    fresh = await store.get_agent(agent.id)
    assert fresh is not None and fresh.last_assigned_at == at(1)


async def test_assign_within_capacity_never_takes_an_assigned_or_resolved_conversation(
    store: Store,
) -> None:
    a, b = make_agent("a@x.vn"), make_agent("b@x.vn")
    await store.add_agent(a)
    await store.add_agent(b)
    taken = await saved_conversation(store)
    resolved = await saved_conversation(store, status="resolved")
    assert await store.assign_within_capacity(taken.id, a.id, T0)
    assert not await store.assign_within_capacity(taken.id, b.id, T0)
    assert not await store.assign_within_capacity(resolved.id, b.id, T0)
    assert not await store.assign_within_capacity("nope", b.id, T0)
    assert (await load(store, a.id), await load(store, b.id)) == (1, 0)


async def test_assign_within_capacity_refuses_a_deactivated_agent(store: Store) -> None:
    agent = make_agent("gone@x.vn", active=False)
    await store.add_agent(agent)
    conversation = await saved_conversation(store)
    assert not await store.assign_within_capacity(conversation.id, agent.id, T0)


async def test_resolving_reopening_and_reassigning_move_the_agents_load(store: Store) -> None:
    a, b = make_agent("a@x.vn"), make_agent("b@x.vn")
    await store.add_agent(a)
    await store.add_agent(b)
    conversation = await saved_conversation(store)
    assert await store.assign_within_capacity(conversation.id, a.id, T0)
    assert await store.update_conversation(conversation.id, status="resolved")
    assert await load(store, a.id) == 0
    assert await store.update_conversation(conversation.id, status="open")
    assert await load(store, a.id) == 1
    assert await store.update_conversation(conversation.id, assignee_id=b.id)
    assert (await load(store, a.id), await load(store, b.id)) == (0, 1)
    # A write that fails its compare-and-set moves nothing.
    assert not await store.update_conversation(
        conversation.id, expect={"assignee_id": a.id}, assignee_id=None
    )
    assert await load(store, b.id) == 1
    assert await store.update_conversation(conversation.id, status="pending")
    assert await load(store, b.id) == 1
    assert await store.update_conversation(conversation.id, assignee_id=None)
    assert await load(store, b.id) == 0
    await saved_conversation(store, assignee_id=a.id)
    await saved_conversation(store, assignee_id=a.id, status="resolved")
    assert await load(store, a.id) == 1
    assert await store.recount_open_conversations(a.id) == 1


async def test_an_agents_load_cannot_be_set_directly(store: Store) -> None:
    agent = make_agent("a@x.vn")
    await store.add_agent(agent)
    with pytest.raises(ValueError):
        await store.update_agent(agent.id, open_count=3)


async def test_waiting_conversations_are_the_unassigned_open_ones_oldest_first(
    store: Store,
) -> None:
    agent = make_agent("a@x.vn")
    await store.add_agent(agent)
    late = await saved_conversation(store, created_at=at(5))
    early = await saved_conversation(store, created_at=at(1))
    await saved_conversation(store, created_at=at(0), assignee_id=agent.id)
    await saved_conversation(store, created_at=at(0), status="resolved")
    waiting = await store.waiting_conversations(10)
    assert [c.id for c in waiting] == [early.id, late.id]
    assert [c.id for c in await store.waiting_conversations(1)] == [early.id]


async def test_concurrent_assignments_never_pass_capacity_nor_assign_twice(
    store: Store,
) -> None:
    agents = [make_agent(f"a{n}@x.vn", capacity=3) for n in range(4)]
    for agent in agents:
        await store.add_agent(agent)
    conversations = [await saved_conversation(store) for _ in range(20)]

    async def grab(conversation: Conversation) -> list[str]:
        won = []
        for agent in agents:
            if await store.assign_within_capacity(conversation.id, agent.id, T0):
                won.append(agent.id)
        return won

    results = await asyncio.gather(*(grab(c) for c in conversations for _ in range(3)))
    assert sum(len(r) for r in results) == 12  # 4 agents x capacity 3, each once
    for agent in agents:
        assert await load(store, agent.id) == 3
        assert await store.recount_open_conversations(agent.id) == 3


# -- care tasks ------------------------------------------------------------


def care_task(key: str, contact_id: str = "c1", **fields: Any) -> CareTask:
    fields = {"kind": key.split(":")[0], "created_at": T0, "updated_at": T0, **fields}
    return CareTask(key=key, contact_id=contact_id, **fields)


async def test_a_care_task_key_is_added_once(store: Store) -> None:
    task = care_task(
        "greeting:c1", conversation_id="v1", due_at=at(5), payload={"template": "greeting"}
    )
    assert await store.add_care_task(task) is True
    assert await store.add_care_task(care_task("greeting:c1", conversation_id="v2")) is False
    assert await store.get_care_task("greeting:c1") == task
    assert await store.get_care_task("greeting:c2") is None


async def test_update_care_task_is_compare_and_set_on_its_state(store: Store) -> None:
    await store.add_care_task(care_task("follow_up:c1:1", due_at=at(10)))
    assert await store.update_care_task(
        "follow_up:c1:1", expect={"state": "pending"}, state="done", updated_at=at(11)
    )
    assert not await store.update_care_task(
        "follow_up:c1:1", expect={"state": "pending"}, state="done"
    )
    stored = await store.get_care_task("follow_up:c1:1")
    assert stored is not None and stored.state == "done" and stored.updated_at == at(11)


async def test_due_care_tasks_are_pending_ones_due_by_then_soonest_first(store: Store) -> None:
    await store.add_care_task(care_task("follow_up:late", due_at=at(30)))
    await store.add_care_task(care_task("follow_up:soon", due_at=at(10)))
    await store.add_care_task(care_task("follow_up:now", due_at=at(20)))
    await store.add_care_task(care_task("follow_up:done", due_at=at(5), state="done"))
    await store.add_care_task(care_task("greeting:undated"))
    due = await store.due_care_tasks(at(20), limit=10)
    assert [t.key for t in due] == ["follow_up:soon", "follow_up:now"]
    assert [t.key for t in await store.due_care_tasks(at(20), limit=1)] == ["follow_up:soon"]


async def test_cancel_care_tasks_cancels_the_contacts_pending_ones_of_that_kind(
    store: Store,
) -> None:
    await store.add_care_task(care_task("follow_up:a", "c1", due_at=at(10)))
    await store.add_care_task(care_task("follow_up:b", "c1", due_at=at(10), state="done"))
    await store.add_care_task(care_task("follow_up:c", "c2", due_at=at(10)))
    await store.add_care_task(care_task("birthday:d", "c1", due_at=at(10)))
    assert await store.cancel_care_tasks("c1", "follow_up", at(1)) == 1
    states = {t: (await store.get_care_task(t)) for t in ("follow_up:a", "follow_up:b")}
    assert [s.state for s in states.values() if s] == ["cancelled", "done"]
    assert [t.key for t in await store.due_care_tasks(at(10), limit=10)] == [
        "birthday:d",
        "follow_up:c",
    ]


async def test_contacts_born_on_finds_any_year_by_id_in_pages(store: Store) -> None:
    born = [
        await saved_contact(store, identity("phone", f"+8490000000{n}"), birthday=day)
        for n, day in enumerate([date(1990, 3, 1), date(2001, 3, 1), date(1990, 3, 2)])
    ]
    await saved_contact(store)  # no birthday
    wanted = sorted([born[0].id, born[1].id])
    found = await store.contacts_born_on(3, 1, limit=10)
    assert [c.id for c in found] == wanted
    assert found[0].identities  # whole contacts, identities included
    first = await store.contacts_born_on(3, 1, limit=1)
    rest = await store.contacts_born_on(3, 1, limit=10, after_id=first[0].id)
    assert [c.id for c in first + rest] == wanted
