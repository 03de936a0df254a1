"""Every report figure over a known history, on both store backends (SQLite, and
MongoDB through the mongomock shim or a real server with HUB_TEST_MONGODB_URL).

The week reported is Monday 5 to Sunday 11 January 2026 in Ho Chi Minh City
(UTC+7). The "support" team answers 08:00-17:30 Monday to Friday, and
Wednesday 7 January is its holiday; conversations in no team count wall time.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from hub.campaigns.model import Audience, AudienceFilter, Campaign
from hub.campaigns.mongo import MongoCampaignStore
from hub.campaigns.sqlite import SqliteCampaignStore
from hub.campaigns.store import CampaignStore
from hub.clock import FrozenClock
from hub.inbox.model import Agent, Contact, Conversation, Identity, Message, Sender, to_ms
from hub.inbox.mongo import MongoStore
from hub.inbox.sqlite import SqliteStore
from hub.inbox.store import Store, Visibility
from hub.reports.model import ReportFilter
from hub.reports.mongo import MongoReportStore
from hub.reports.service import ReportService
from hub.reports.sqlite import SqliteReportStore
from hub.reports.store import ReportStore
from hub.routing.hours import Schedule
from tests.inbox.mongo_shim import shim_database

MONGODB_URL = os.environ.get("HUB_TEST_MONGODB_URL")
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
SUPPORT_HOURS = Schedule(
    timezone="Asia/Ho_Chi_Minh",
    **{day: ["08:00-17:30"] for day in ("mon", "tue", "wed", "thu", "fri")},
    holidays=[date(2026, 1, 7)],
)


def hcm(day: int, hour: int, minute: int = 0, month: int = 1, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=HCM).astimezone(UTC)


WEEK = ReportFilter(since=hcm(5, 0), until=hcm(12, 0))
NOW = hcm(12, 12)


@dataclass
class History:
    inbox: Store
    reports: ReportStore
    campaigns: CampaignStore
    service: ReportService
    ids: dict[str, str]  # name → conversation or agent id


@pytest.fixture(params=["sqlite", "mongo"])
async def history(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[History]:
    inbox: Store
    reports: ReportStore
    campaigns: CampaignStore
    if request.param == "sqlite":
        inbox = SqliteStore(tmp_path / "hub.db")
        await inbox.open()
        reports, campaigns = SqliteReportStore(inbox), SqliteCampaignStore(inbox)
    else:
        inbox = (
            MongoStore.from_url(MONGODB_URL, f"hub_test_{uuid4().hex}")
            if MONGODB_URL
            else MongoStore(shim_database())  # type: ignore[arg-type]
        )
        await inbox.open()
        reports, campaigns = MongoReportStore(inbox), MongoCampaignStore(inbox)
    await reports.open()
    await reports.open()  # idempotent
    await campaigns.open()
    service = ReportService(
        reports,
        inbox,
        campaigns,
        FrozenClock(NOW),
        schedule_for=lambda account, team: SUPPORT_HOURS if team == "support" else None,
        timezone="Asia/Ho_Chi_Minh",
    )
    ids = await build(inbox, campaigns)
    yield History(inbox, reports, campaigns, service, ids)
    await inbox.close()


async def build(inbox: Store, campaigns: CampaignStore) -> dict[str, str]:
    t0 = hcm(30, 9, month=12, year=2025)
    ids: dict[str, str] = {}
    for name, role in (("An", "agent"), ("Bình", "agent"), ("Mai", "marketer")):
        agent = Agent(name=name, email=f"{name.lower()}@shop.vn", role=role, created_at=t0)
        await inbox.add_agent(agent)
        ids[name] = agent.id
    customer = Contact(
        name="Lan",
        identities=[Identity(channel="phone", address="+84901234567")],
        created_at=t0,
        updated_at=t0,
    )
    await inbox.add_contact(customer)

    async def conversation(name: str, channel: str, account: str, **fields: Any) -> Conversation:
        created = fields["created_at"]
        record = Conversation(
            contact_id=customer.id,
            channel=channel,
            account_id=account,
            contact_address="+84901234567",
            last_activity_at=created,
            updated_at=created,
            **fields,
        )
        await inbox.add_conversation(record)
        ids[name] = record.id
        return record

    async def message(
        record: Conversation, direction: str, at: datetime, by: str | None = None
    ) -> None:
        sender = (
            Sender(kind="agent", id=ids[by])
            if by
            else Sender(kind="system")
            if direction in ("outbound", "event")
            else Sender(kind="contact", id=customer.id)
        )
        await inbox.add_message(
            Message(
                conversation_id=record.id,
                account_id=record.account_id,
                channel=record.channel,
                direction=direction,  # type: ignore[arg-type]
                sender=sender,
                created_at=at,
                updated_at=at,
            )
        )

    # Friday 17:00 → first reply Monday 12 at 08:15: 30 + 15 business minutes.
    c1 = await conversation(
        "c1", "sms", "sms-main", team_id="support", assignee_id=ids["An"], status="resolved",
        created_at=hcm(9, 17), first_response_at=hcm(12, 8, 15), resolved_at=hcm(12, 10),
    )  # fmt: skip
    await message(c1, "inbound", hcm(9, 17))
    await message(c1, "outbound", hcm(12, 8, 15), by="An")  # after the week
    # Tuesday 16:00 → reply Thursday 09:00 across the holiday: 90 + 0 + 60 minutes;
    # resolved Thursday 10:00: 90 + 120 minutes. A 5 on Thursday.
    c2 = await conversation(
        "c2", "sms", "sms-main", team_id="support", assignee_id=ids["An"], status="resolved",
        labels=["vip"], created_at=hcm(6, 16), first_response_at=hcm(8, 9),
        resolved_at=hcm(8, 10), satisfaction=5, satisfaction_at=hcm(8, 11),
    )  # fmt: skip
    await message(c2, "inbound", hcm(6, 16))
    await message(c2, "outbound", hcm(8, 9), by="An")
    await message(c2, "note", hcm(8, 9, 5), by="An")
    await message(c2, "inbound", hcm(8, 9, 30))
    # No team: wall time, 20 minutes to answer, a day to resolve; breached; a 2.
    c3 = await conversation(
        "c3", "email", "mail", assignee_id=ids["Bình"], status="resolved",
        labels=["sla-breached"], created_at=hcm(5, 10), first_response_at=hcm(5, 10, 20),
        resolved_at=hcm(6, 10), satisfaction=2, satisfaction_at=hcm(6, 12),
    )  # fmt: skip
    await message(c3, "inbound", hcm(5, 10))
    await message(c3, "outbound", hcm(5, 10, 20), by="Bình")
    await message(c3, "outbound", hcm(6, 10))  # a care message
    # Saturday night on the web chat, breached, still waiting for someone.
    c4 = await conversation(
        "c4", "webchat", "web", team_id="support", labels=["sla-breached"],
        created_at=hcm(10, 20),
    )  # fmt: skip
    await message(c4, "inbound", hcm(10, 20))
    await message(c4, "event", hcm(10, 20, 1))
    # Opened before the week, resolved in it (5 days 23 hours); a 4.
    c5 = await conversation(
        "c5", "email", "mail", assignee_id=ids["Bình"], status="resolved",
        created_at=hcm(30, 10, month=12, year=2025),
        first_response_at=hcm(30, 11, month=12, year=2025),
        resolved_at=hcm(5, 9), satisfaction=4, satisfaction_at=hcm(5, 9, 30),
    )  # fmt: skip
    await message(c5, "inbound", hcm(30, 10, month=12, year=2025))
    await message(c5, "outbound", hcm(30, 11, month=12, year=2025), by="Bình")
    # After the week, in another team, waiting.
    c6 = await conversation("c6", "sms", "sms-main", team_id="sales", created_at=hcm(12, 9))
    await message(c6, "inbound", hcm(12, 9))

    # A campaign launched in the week: 4 recipients, 2 delivered, 1 failed, 1 opted out.
    people = [
        Contact(
            name=f"P{n}",
            identities=[Identity(channel="phone", address=f"+8490000010{n}")],
            created_at=t0,
            updated_at=t0,
        )
        for n in range(4)
    ]
    for person in people:
        await inbox.add_contact(person)
    audience = Audience(name="all", filter=AudienceFilter(), created_at=t0, updated_at=t0)
    await campaigns.add_audience(audience)
    for name, launched in (("Tết sale", hcm(6, 9)), ("Old", hcm(1, 9, month=11, year=2025))):
        campaign = Campaign(
            name=name, channel="sms", account_id="sms-main", audience_id=audience.id,
            text="Hi", status="running", launched_at=launched, created_at=launched,
            updated_at=launched,
            finished_at=None if name == "Tết sale" else hcm(2, 9, month=11, year=2025),
        )  # fmt: skip
        await campaigns.add_campaign(campaign)
        ids[name] = campaign.id
        await campaigns.snapshot(campaign, AudienceFilter(), launched)
    campaign_id = ids["Tết sale"]
    # Lan (who has a phone too) is the fifth recipient, left pending.
    everyone = sorted(p.id for p in people)
    await campaigns.claim(campaign_id, everyone[:3], hcm(6, 9))
    for contact_id in everyone[:2]:
        await campaigns.finish(campaign_id, contact_id, "sent", hcm(6, 9))
        await campaigns.record_delivery(campaign_id, contact_id, "delivered", None)
    await campaigns.finish(campaign_id, everyone[2], "failed", hcm(6, 9), reason="invalid")
    await campaigns.skip(campaign_id, everyone[3:], "opted_out", hcm(6, 9))
    # One who got it wrote back (twice: counted once).
    await campaigns.mark_replied(campaign_id, everyone[0], hcm(6, 10), ids["c2"])
    await campaigns.mark_replied(campaign_id, everyone[0], hcm(6, 11), ids["c2"])
    return ids


def minutes(n: float) -> float:
    return n * 60.0


async def test_summary_of_the_week(history: History) -> None:
    summary = await history.service.summary(WEEK, HCM)
    assert summary.model_dump(mode="json") == {
        "period": {
            "since": "2026-01-04T17:00:00Z",
            "until": "2026-01-11T17:00:00Z",
            "timezone": "Asia/Ho_Chi_Minh",
        },
        "business_hours": True,
        "opened": 4,  # c1-c4
        "resolved": 3,  # c2, c3, c5
        # c3 20 min (wall), c1 45 min and c2 150 min (business hours).
        "first_response": {
            "count": 3,
            "median_seconds": minutes(45),
            "p90_seconds": minutes(45 + 0.8 * (150 - 45)),
        },
        # c2 210 min (business), c3 one day, c5 5 days 23 hours (wall).
        "resolution": {
            "count": 3,
            "median_seconds": 86_400.0,
            "p90_seconds": 86_400 + 0.8 * (514_800 - 86_400),
        },
        "messages_in": 5,
        "messages_out": 3,  # two agent replies and a care message; notes and events are not
        "waiting_unassigned": 2,  # c4 and c6, now
        "oldest_waiting_since": "2026-01-10T13:00:00Z",
        "sla_breaches": 2,
        "satisfaction": {"answers": 3, "average": 3.667, "positive_share": 0.6667},
    }


async def test_days_of_the_week(history: History) -> None:
    rows = [row.model_dump(mode="json") for row in await history.service.days(WEEK, HCM)]
    empty = {"opened": 0, "resolved": 0, "sla_breaches": 0, "messages_in": 0, "messages_out": 0}
    assert rows == [
        {**empty, "day": "2026-01-05", "opened": 1, "resolved": 1, "sla_breaches": 1,
         "messages_in": 1, "messages_out": 1},
        {**empty, "day": "2026-01-06", "opened": 1, "resolved": 1, "messages_in": 1,
         "messages_out": 1},
        {**empty, "day": "2026-01-07"},
        {**empty, "day": "2026-01-08", "resolved": 1, "messages_in": 1, "messages_out": 1},
        {**empty, "day": "2026-01-09", "opened": 1, "messages_in": 1},
        {**empty, "day": "2026-01-10", "opened": 1, "sla_breaches": 1, "messages_in": 1},
        {**empty, "day": "2026-01-11"},
    ]  # fmt: skip


async def test_channels_and_hours_of_day(history: History) -> None:
    channels = [row.model_dump() for row in await history.service.channels(WEEK, HCM)]
    assert channels == [
        {"channel": "email", "opened": 1, "resolved": 2, "messages_in": 1, "messages_out": 2},
        {"channel": "sms", "opened": 2, "resolved": 1, "messages_in": 3, "messages_out": 1},
        {"channel": "webchat", "opened": 1, "resolved": 0, "messages_in": 1, "messages_out": 0},
    ]
    hours = {
        row.hour: (row.messages_in, row.messages_out)
        for row in await history.service.hours(WEEK, HCM)
        if row.messages_in or row.messages_out
    }
    assert hours == {9: (1, 1), 10: (1, 2), 16: (1, 0), 17: (1, 0), 20: (1, 0)}
    # The same messages on UTC's clock, seven hours earlier.
    utc = await history.service.hours(WEEK, ZoneInfo("UTC"))
    assert {r.hour for r in utc if r.messages_in or r.messages_out} == {2, 3, 9, 10, 13}


async def test_agents_workload_and_times(history: History) -> None:
    ids = history.ids
    rows = [row.model_dump() for row in await history.service.agents(WEEK)]
    assert rows == [
        {
            "agent_id": ids["An"], "name": "An", "opened": 2, "resolved": 1, "open_now": 0,
            "messages_out": 1,
            "first_response": {"count": 2, "median_seconds": minutes((45 + 150) / 2),
                               "p90_seconds": minutes(45 + 0.9 * 105)},
            "resolution": {"count": 1, "median_seconds": minutes(210),
                           "p90_seconds": minutes(210)},
            "satisfaction": {"answers": 1, "average": 5.0, "positive_share": 1.0},
        },
        {
            "agent_id": ids["Bình"], "name": "Bình", "opened": 1, "resolved": 2, "open_now": 0,
            "messages_out": 1,
            "first_response": {"count": 1, "median_seconds": minutes(20),
                               "p90_seconds": minutes(20)},
            "resolution": {"count": 2, "median_seconds": (86_400 + 514_800) / 2,
                           "p90_seconds": 86_400 + 0.9 * (514_800 - 86_400)},
            "satisfaction": {"answers": 2, "average": 3.0, "positive_share": 0.5},
        },
    ]  # fmt: skip


async def test_satisfaction_scores(history: History) -> None:
    scores = {row.score: row.answers for row in await history.service.scores(WEEK)}
    assert scores == {1: 0, 2: 1, 3: 0, 4: 1, 5: 1}


async def test_campaign_funnel_of_campaigns_that_ran_in_the_period(history: History) -> None:
    rows = await history.service.campaign_funnel(WEEK)
    assert [row.model_dump(mode="json") for row in rows] == [
        {
            "campaign_id": history.ids["Tết sale"], "name": "Tết sale", "channel": "sms",
            "account_id": "sms-main", "status": "running",
            "launched_at": "2026-01-06T02:00:00Z",
            "audience": 5, "sent": 2, "delivered": 2, "failed": 1, "opted_out": 1,
            "replied": 1,
        }
    ]  # fmt: skip
    assert (
        await history.service.campaign_funnel(
            ReportFilter(since=WEEK.since, until=WEEK.until, channels=("email",))
        )
        == []
    )


def sliced(**slices: Any) -> ReportFilter:
    return ReportFilter(since=WEEK.since, until=WEEK.until, **slices)


async def test_slices_narrow_conversations_and_their_messages(history: History) -> None:
    ids = history.ids
    support = await history.service.summary(sliced(teams=("support",)), HCM)
    assert (support.opened, support.resolved, support.messages_in, support.messages_out) == (
        3, 1, 4, 1,
    )  # fmt: skip
    assert (support.waiting_unassigned, support.sla_breaches) == (1, 1)
    vip = await history.service.summary(sliced(labels=("vip",)), HCM)
    assert (vip.opened, vip.messages_in, vip.first_response.median_seconds) == (1, 2, minutes(150))
    mail = await history.service.summary(sliced(accounts=("mail",)), HCM)
    assert (mail.opened, mail.resolved, mail.messages_in, mail.messages_out) == (1, 2, 1, 2)
    assert mail.satisfaction.answers == 2 and mail.business_hours is False
    sms = await history.service.summary(sliced(channels=("sms",)), HCM)
    assert (sms.opened, sms.messages_in, sms.waiting_unassigned) == (2, 3, 1)
    binh = await history.service.summary(sliced(agents=(ids["Bình"],)), HCM)
    assert (binh.opened, binh.resolved, binh.messages_out) == (1, 2, 2)
    assert [row.name for row in await history.service.agents(sliced(agents=(ids["An"],)))] == ["An"]


async def test_an_agent_sees_figures_of_the_conversations_they_may_see(history: History) -> None:
    # An is in "support": support's conversations and those in no team; not sales'.
    an = sliced(scope=Visibility(history.ids["An"], ("support",)))
    summary = await history.service.summary(an, HCM)
    assert (summary.opened, summary.resolved, summary.waiting_unassigned) == (4, 3, 1)
    outsider = sliced(scope=Visibility(history.ids["Bình"], ("sales",)))
    summary = await history.service.summary(outsider, HCM)
    # Bình in "sales": sales' c6 (waiting), Bình's own no-team c3 and c5; nothing of support's.
    assert (summary.opened, summary.resolved, summary.waiting_unassigned) == (1, 2, 1)
    assert summary.messages_in == 1  # c3's


async def test_each_conversation_is_listed_once_in_its_group(history: History) -> None:
    groups = await history.reports.conversation_times(WEEK)
    found = {
        (g.channel, g.team_id, g.assignee_id): sorted(
            zip(g.created_at, g.first_response_at, g.resolved_at, g.breached, strict=True)
        )
        for g in groups
    }
    ms = to_ms
    an, binh = history.ids["An"], history.ids["Bình"]
    assert found == {
        ("sms", "support", an): [
            (ms(hcm(6, 16)), ms(hcm(8, 9)), ms(hcm(8, 10)), 0),
            (ms(hcm(9, 17)), ms(hcm(12, 8, 15)), ms(hcm(12, 10)), 0),
        ],
        ("email", None, binh): [
            (ms(hcm(30, 10, month=12, year=2025)), ms(hcm(30, 11, month=12, year=2025)),
             ms(hcm(5, 9)), 0),
            (ms(hcm(5, 10)), ms(hcm(5, 10, 20)), ms(hcm(6, 10)), 1),
        ],
        ("webchat", "support", None): [(ms(hcm(10, 20)), None, None, 1)],
    }  # fmt: skip


async def test_message_counts_agree_whether_rolled_up_or_scanned(history: History) -> None:
    # A period off the quarter-hours is counted from the messages themselves.
    unaligned = ReportFilter(since=WEEK.since - timedelta(milliseconds=1), until=WEEK.until)
    for bucket in (3_600_000, 900_000):
        rolled = sorted(await history.reports.message_counts(WEEK, bucket))
        scanned = sorted(await history.reports.message_counts(unaligned, bucket))
        assert rolled == scanned and sum(m.messages for m in rolled) == 8
    assert (
        await history.reports.message_totals(WEEK)
        == (await history.reports.message_totals(unaligned))
        == (5, 3)
    )
    assert (
        await history.reports.agent_messages(WEEK)
        == (await history.reports.agent_messages(unaligned))
        == {history.ids["An"]: 1, history.ids["Bình"]: 1}
    )


async def test_the_rollup_counts_messages_added_since_the_last_report(history: History) -> None:
    if not isinstance(history.reports, SqliteReportStore):
        pytest.skip("the rollup is the embedded store's")
    reports = history.reports
    assert (await history.service.summary(WEEK, HCM)).messages_in == 5
    conversation = await history.inbox.get_conversation(history.ids["c4"])
    assert conversation is not None
    late = Message(
        conversation_id=conversation.id, account_id="web", channel="webchat",
        direction="inbound", sender=Sender(kind="contact"), created_at=hcm(11, 9),
        updated_at=hcm(12, 11),
    )  # fmt: skip
    await history.inbox.add_message(late)
    summary = await history.service.summary(WEEK, HCM)
    assert (summary.messages_in, summary.messages_out) == (6, 3)
    assert await reports.catch_up() == 0  # nothing new since
    # Rowids renumbered (as a VACUUM may): the mark no longer names its message,
    # and the rollup is counted again from the start, not twice.
    await history.inbox.write_committed(  # type: ignore[attr-defined]
        "UPDATE report_marks SET last_id = 'gone'", ()
    )
    assert await reports.catch_up() > 0
    assert (await history.service.summary(WEEK, HCM)).messages_in == 6
