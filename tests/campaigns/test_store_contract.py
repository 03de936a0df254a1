"""The campaign store contract, on both backends: SQLite, and MongoDB through
the mongomock shim (or a real server with HUB_TEST_MONGODB_URL)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from hub.campaigns.model import (
    Addressee,
    Audience,
    AudienceFilter,
    Campaign,
    Outcome,
    Progress,
    recipient_key,
)
from hub.campaigns.mongo import MongoCampaignStore
from hub.campaigns.sqlite import SqliteCampaignStore
from hub.campaigns.store import CampaignStore
from hub.inbox.model import Consent, Conversation, Identity
from hub.inbox.mongo import MongoStore
from hub.inbox.sqlite import SqliteStore
from hub.inbox.store import Store
from tests.campaigns.conftest import contact
from tests.inbox.mongo_shim import shim_database

NOW = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
MONGODB_URL = os.environ.get("HUB_TEST_MONGODB_URL")


@pytest.fixture(params=["sqlite", "mongo"])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Store, CampaignStore]]:
    inbox: Store
    campaigns: CampaignStore
    if request.param == "sqlite":
        inbox = SqliteStore(tmp_path / "hub.db")
        await inbox.open()
        campaigns = SqliteCampaignStore(inbox)
    else:
        inbox = (
            MongoStore.from_url(MONGODB_URL, f"hub_test_{uuid4().hex}")
            if MONGODB_URL
            else MongoStore(shim_database())  # type: ignore[arg-type]
        )
        await inbox.open()
        campaigns = MongoCampaignStore(inbox)
    await campaigns.open()
    await campaigns.open()  # idempotent
    yield inbox, campaigns
    await inbox.close()


async def launched(
    campaigns: CampaignStore, audience: AudienceFilter, channel: str = "sms"
) -> Campaign:
    record = Audience(name="a", filter=audience, created_at=NOW, updated_at=NOW)
    await campaigns.add_audience(record)
    campaign = Campaign(
        name="c", channel=channel, account_id="hotline", audience_id=record.id, text="Hi",
        status="running", launched_at=NOW, created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    await campaigns.add_campaign(campaign)
    return campaign


async def test_audience_filters_count_and_snapshot_the_same_contacts(
    stores: tuple[Store, CampaignStore],
) -> None:
    inbox, campaigns = stores
    people = {
        "binh": contact(
            "Bình", phone="+84900000001", email="b@x.vn", tags=("vip", "hn"), city="HN"
        ),
        "hoa": contact("Hoa", phone="+84900000002", tags=("vip",), city="Huế"),
        "an": contact("An", phone="+84900000003", tags=("vip", "hn"), opted_out="sms", city="HN"),
        "mai": contact("Mai", email="m@x.vn", tags=("vip", "hn"), city="HN"),
        "lan": contact("Lan", phone="+84900000005", tags=("vip", "banned"), city="HN"),
    }
    for person in people.values():
        await inbox.add_contact(person)
    await inbox.link_identity(people["binh"].id, Identity(channel="phone", address="+84900000009"))
    await inbox.add_conversation(
        Conversation(
            contact_id=people["hoa"].id, account_id="hotline", channel="twilio",
            contact_address="+84900000002", last_activity_at=NOW - timedelta(days=2),
            created_at=NOW, updated_at=NOW,
        )
    )  # fmt: skip

    async def names(audience: AudienceFilter, channel: str = "sms") -> set[str]:
        count = await campaigns.count_audience(audience, channel)  # type: ignore[arg-type]
        campaign = await launched(campaigns, audience, channel)
        assert await campaigns.snapshot(campaign, audience, NOW) == count
        assert await campaigns.snapshot(campaign, audience, NOW) == count  # idempotent
        page = await campaigns.list_recipients(campaign.id, status=None, limit=100)
        by_id = {p.id: key for key, p in people.items()}
        return {by_id[r.contact_id] for r in page.items}

    assert await names(AudienceFilter(tags_any=["vip"])) == {"binh", "hoa", "an", "lan"}
    assert await names(AudienceFilter(tags_any=["vip"]), "email") == {"binh", "mai"}
    assert await names(AudienceFilter(tags_all=["vip", "hn"], tags_none=["banned"])) == {
        "binh",
        "an",
    }
    assert await names(AudienceFilter(attributes={"city": "HN"}, consent="not_opted_out")) == {
        "binh",
        "lan",
    }
    assert await names(AudienceFilter(has_conversation=True)) == {"hoa"}
    assert await names(AudienceFilter(has_conversation=False, tags_any=["hn"])) == {"binh", "an"}
    assert await names(AudienceFilter(active_after=NOW - timedelta(days=1))) == set()
    assert await names(AudienceFilter(active_before=NOW - timedelta(days=1))) == {"hoa"}
    campaign = await launched(campaigns, AudienceFilter(tags_any=["hn"]))
    await campaigns.snapshot(campaign, AudienceFilter(tags_any=["hn"]), NOW)
    binh = await campaigns.get_recipient(campaign.id, people["binh"].id)
    assert binh is not None and binh.address == "+84900000001"  # the first phone
    sample = await campaigns.sample_contact(AudienceFilter(tags_any=["banned"]), "sms")
    assert sample is not None and sample.id == people["lan"].id


async def test_outcomes_are_written_together_and_unsent_claims_given_back(
    stores: tuple[Store, CampaignStore],
) -> None:
    inbox, campaigns = stores
    people = [contact(f"Q{n}", phone=f"+8490000020{n}") for n in range(5)]
    for person in people:
        await inbox.add_contact(person)
    campaign = await launched(campaigns, AudienceFilter())
    await campaigns.snapshot(campaign, AudienceFilter(), NOW)
    ids = sorted(p.id for p in people)
    assert await campaigns.claim(campaign.id, ids, NOW) == ids
    await campaigns.hand_over(campaign.id, ids[2], "<m2@x>")
    later = NOW + timedelta(minutes=5)
    written = await campaigns.finish_many(
        campaign.id,
        [
            Outcome(ids[0], "sent", NOW, external_id="SM0"),
            Outcome(ids[1], "failed", NOW, reason="21211 invalid number"),
            Outcome(ids[2], "pending", NOW, reason="timeout", not_before=later),
            Outcome("not-a-recipient", "sent", NOW),
        ],
    )
    assert written == 3
    # Only from `sending`: a second outcome for a row changes nothing.
    assert await campaigns.finish_many(campaign.id, [Outcome(ids[0], "failed", NOW)]) == 0
    sent, failed, retry = [await campaigns.get_recipient(campaign.id, i) for i in ids[:3]]
    assert sent is not None and (sent.status, sent.external_id, sent.sent_at) == (
        "sent",
        "SM0",
        NOW,
    )
    assert failed is not None and (failed.status, failed.reason) == (
        "failed",
        "21211 invalid number",
    )
    assert retry is not None and (retry.status, retry.not_before) == ("pending", later)
    assert retry.external_id is None  # the failed handover's id is forgotten
    # Claimed, never sent: back to pending, the claim's attempt taken back.
    assert await campaigns.release(campaign.id, [*ids[3:], ids[0]], NOW) == 2
    for contact_id in ids[3:]:
        row = await campaigns.get_recipient(campaign.id, contact_id)
        assert row is not None and (row.status, row.attempts, row.sending_at) == (
            "pending",
            0,
            None,
        )
    assert await campaigns.finish_many(campaign.id, []) == 0
    assert await campaigns.release(campaign.id, [], NOW) == 0


async def test_due_sends_carry_each_contact_as_it_is_at_send_time(
    stores: tuple[Store, CampaignStore],
) -> None:
    inbox, campaigns = stores
    binh = contact(
        "Nguyễn Văn Bình", phone="+84900000031", email="b@x.vn", tags=("vip", "hn"),
        timezone="Asia/Ho_Chi_Minh", city="HN",
    ).model_copy(update={"language": "vi-VN", "birthday": date(1990, 5, 17)})  # fmt: skip
    an = contact("An", phone="+84900000032", opted_out="sms")
    gone = contact("Gone", phone="+84900000033")
    kept = contact("Kept", phone="+84900000034")
    waits = contact("Waits", phone="+84900000035")
    for person in (binh, an, gone, kept, waits):
        await inbox.add_contact(person)
    await inbox.link_identity(binh.id, Identity(channel="phone", address="+84900000039"))
    campaign = await launched(campaigns, AudienceFilter())
    await campaigns.snapshot(campaign, AudienceFilter(), NOW)
    await inbox.merge_contacts(kept.id, gone.id)  # deleted after the launch
    await campaigns.hold(campaign.id, [waits.id], NOW + timedelta(hours=1), NOW)
    await campaigns.claim(campaign.id, [kept.id], NOW)  # sending: not due

    due = await campaigns.due_sends(campaign.id, "sms", NOW, 10)
    assert [d.contact_id for d in due] == sorted([binh.id, an.id, gone.id])
    by_id = {d.contact_id: d for d in due}
    first = by_id[binh.id]
    assert (first.address, first.attempts) == ("+84900000031", 0)
    assert first.key == recipient_key(campaign.id, binh.id)
    assert first.contact == Addressee(
        id=binh.id, name="Nguyễn Văn Bình", language="vi-VN", timezone="Asia/Ho_Chi_Minh",
        birthday=date(1990, 5, 17), tags=["vip", "hn"], attributes={"city": "HN"},
        phone="+84900000031", email="b@x.vn", consent=None,
    )  # fmt: skip
    stored = await inbox.get_contact(binh.id)
    assert stored is not None and first.contact == Addressee.of(stored, "sms")
    assert by_id[an.id].contact is not None and by_id[an.id].contact.consent == "opted_out"
    assert by_id[gone.id].contact is None

    # One pass a page at a time, as due_recipients.
    page = await campaigns.due_sends(campaign.id, "sms", NOW, 2)
    rest = await campaigns.due_sends(campaign.id, "sms", NOW, 2, after=page[-1].contact_id)
    assert [d.contact_id for d in page + rest] == [d.contact_id for d in due]
    # Consent is the channel's, and read fresh: a change after the launch shows.
    emailed = await campaigns.due_sends(campaign.id, "email", NOW, 10)
    assert all(d.contact is None or d.contact.consent is None for d in emailed)
    said_no = {"sms": Consent(status="opted_out", at=NOW, how="STOP")}
    assert await inbox.update_contact(binh.id, consent=said_no)
    [again] = await campaigns.due_sends(campaign.id, "sms", NOW, 1)
    assert again.contact is not None and again.contact.consent == "opted_out"


async def test_progress_counts_every_row_once_by_what_became_of_it(
    stores: tuple[Store, CampaignStore],
) -> None:
    inbox, campaigns = stores
    people = [contact(f"R{n}", phone=f"+849000004{n:02d}") for n in range(12)]
    for person in people:
        await inbox.add_contact(person)
    campaign = await launched(campaigns, AudienceFilter())
    other = await launched(campaigns, AudienceFilter())  # its rows are not counted
    await campaigns.snapshot(campaign, AudienceFilter(), NOW)
    await campaigns.snapshot(other, AudienceFilter(), NOW)
    ids = sorted(p.id for p in people)
    later = NOW + timedelta(hours=1)
    await campaigns.claim(campaign.id, ids[:6], NOW)
    await campaigns.finish_many(
        campaign.id,
        [
            Outcome(ids[0], "sent", NOW, external_id="SM0"),
            Outcome(ids[1], "sent", NOW, external_id="SM1"),
            Outcome(ids[2], "failed", NOW, reason="21211"),
            Outcome(ids[3], "pending", NOW, reason="timeout", not_before=later),  # a retry
        ],
    )  # ids[4], ids[5] still sending
    assert await campaigns.record_delivery(campaign.id, ids[1], "delivered", None)
    assert await campaigns.mark_replied(campaign.id, ids[0], NOW, "conv-0")
    assert await campaigns.mark_replied(campaign.id, ids[1], NOW, "conv-1")
    await campaigns.skip(campaign.id, [ids[6], ids[7]], "opted_out", NOW)
    await campaigns.skip(campaign.id, [ids[8]], "frequency_cap", NOW)
    await campaigns.skip(campaign.id, [ids[9]], "no_address", NOW)
    await campaigns.hold(campaign.id, [ids[10]], later, NOW)  # ids[11]: pending, due
    await campaigns.hold(campaign.id, [ids[11]], NOW - timedelta(minutes=1), NOW)  # due again

    progress = await campaigns.progress(campaign.id, NOW)
    assert progress.model_dump() == {
        "total": 12, "pending": 3, "waiting": 2, "sending": 2, "sent": 1, "delivered": 1,
        "failed": 1, "opted_out": 2, "frequency_capped": 1, "bouncing": 0,
        "skipped_other": 1, "replied": 2,
    }  # fmt: skip
    # Once the hour has passed, nothing waits any more.
    assert (await campaigns.progress(campaign.id, later)).waiting == 0
    assert (await campaigns.progress(other.id, NOW)).model_dump() == {
        **Progress().model_dump(), "total": 12, "pending": 12,
    }  # fmt: skip


async def test_recipient_state_machine_is_compare_and_set(
    stores: tuple[Store, CampaignStore],
) -> None:
    inbox, campaigns = stores
    people = [contact(f"P{n}", phone=f"+8490000010{n}") for n in range(4)]
    for person in people:
        await inbox.add_contact(person)
    assert not await campaigns.any_sent_since(NOW)  # no campaign at all yet
    campaign = await launched(campaigns, AudienceFilter())
    assert await campaigns.snapshot(campaign, AudienceFilter(), NOW) == 4
    ids = sorted(p.id for p in people)
    due = await campaigns.due_recipients(campaign.id, NOW, 10)
    assert [r.contact_id for r in due] == ids and all(r.status == "pending" for r in due)
    # One pass a page at a time: the next page starts after the last contact read.
    page = await campaigns.due_recipients(campaign.id, NOW, 3)
    assert [r.contact_id for r in page] == ids[:3]
    rest = await campaigns.due_recipients(campaign.id, NOW, 3, after=page[-1].contact_id)
    assert [r.contact_id for r in rest] == ids[3:]
    assert await campaigns.due_recipients(campaign.id, NOW, 3, after=ids[-1]) == []

    assert await campaigns.claim(campaign.id, ids[:2], NOW) == ids[:2]
    assert await campaigns.claim(campaign.id, ids[:3], NOW) == ids[2:3]  # taken ones stay taken
    await campaigns.hand_over(campaign.id, ids[0], "<m0@x>")
    assert await campaigns.finish(campaign.id, ids[0], "sent", NOW)
    assert not await campaigns.finish(campaign.id, ids[0], "failed", NOW)  # only from sending
    await campaigns.hand_over(campaign.id, ids[1], "<m1@x>")
    later = NOW + timedelta(minutes=5)
    assert await campaigns.finish(campaign.id, ids[1], "pending", NOW, not_before=later)
    retried = await campaigns.get_recipient(campaign.id, ids[1])
    assert retried is not None and retried.external_id is None and retried.attempts == 1
    assert [r.contact_id for r in await campaigns.stuck_sending(campaign.id, later, 10)] == [ids[2]]
    await campaigns.hold(campaign.id, [ids[3]], later, NOW)
    assert await campaigns.due_recipients(campaign.id, NOW, 10) == []
    assert await campaigns.next_waiting(campaign.id) == later
    assert len(await campaigns.due_recipients(campaign.id, later, 10)) == 2

    assert await campaigns.skip(campaign.id, [ids[3], ids[0]], "opted_out", NOW) == 1
    assert await campaigns.record_delivery(campaign.id, ids[0], "delivered", None)
    assert not await campaigns.record_delivery(campaign.id, ids[0], "sent", None)
    assert not await campaigns.record_delivery(campaign.id, ids[2], "delivered", None)
    progress = await campaigns.progress(campaign.id, NOW)
    assert (progress.total, progress.delivered, progress.sending, progress.opted_out) == (
        4,
        1,
        1,
        1,
    )
    assert (progress.pending, progress.waiting) == (1, 1)
    assert await campaigns.skip_all_pending(campaign.id, "cancelled", NOW) == 1
    page = await campaigns.list_recipients(campaign.id, status=None, limit=3)
    assert len(page.items) == 3 and page.next_cursor == page.items[-1].contact_id
    rest = await campaigns.list_recipients(
        campaign.id, status=None, limit=3, cursor=page.next_cursor
    )
    assert [r.contact_id for r in rest.items] == ids[3:] and rest.next_cursor is None
    found = await campaigns.contacts([ids[0], "nope"])
    assert list(found) == [ids[0]] and found[ids[0]].identities[0].channel == "phone"

    assert await campaigns.update_campaign(
        campaign.id, expect={"status": ("running",)}, status="paused"
    )
    assert not await campaigns.update_campaign(
        campaign.id, expect={"status": "running"}, status="paused"
    )
    assert [c.id for c in await campaigns.list_campaigns(statuses=["paused"])] == [campaign.id]

    # Replies: is any campaign near at all (launched, not finished long ago)?
    assert await campaigns.any_sent_since(NOW + timedelta(days=30))  # still under way
    # Replies: the sends of the last days, newest first; the first reply sticks.
    [recent] = await campaigns.recent_sends(ids[0], NOW - timedelta(days=3))
    assert recent.campaign_id == campaign.id and recent.replied_at is None
    assert await campaigns.recent_sends(ids[0], NOW + timedelta(seconds=1)) == []
    assert await campaigns.recent_sends(ids[2], NOW - timedelta(days=3)) == []  # never sent
    assert await campaigns.mark_replied(campaign.id, ids[0], later, "conv-1")
    assert not await campaigns.mark_replied(campaign.id, ids[0], later, "conv-2")
    replied = await campaigns.get_recipient(campaign.id, ids[0])
    assert replied is not None and replied.reply_conversation_id == "conv-1"
    assert replied.replied_at == later
    assert (await campaigns.progress(campaign.id, NOW)).replied == 1
