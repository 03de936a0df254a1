"""Care messages end to end: a running hub with the example templates, real
Redis, SQLite and worker, the API channel delivering to a local peer. Time is a
FrozenClock moved by the test; each care message must go out exactly once when
it should and never when it should not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.care.engine import Situation
from hub.care.messages import CareMessages
from hub.clock import FrozenClock
from hub.events import Event
from hub.inbox.model import Agent, ApiToken, CareTask, Consent, Message, to_ms
from hub.inbox.store import ConversationFilter
from hub.web.auth import hash_token, new_token
from tests.conftest import API_SECRET, Hub, eventually
from tests.peers.api_sender import message, signed
from tests.peers.callback import CallbackPeer

TEMPLATES = Path(__file__).parent.parent.parent / "config" / "templates"
# Monday 5 January 2026; Saigon is UTC+7.
MONDAY = datetime(2026, 1, 5, tzinfo=UTC)


def saigon(day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock moment in Saigon in that week of January 2026, as UTC."""
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC) - timedelta(hours=7)


RULES: list[dict[str, Any]] = [
    {
        "name": "greeting",
        "event": "message.created",
        "when": {"first_message": True, "business_hours": "open"},
        "actions": [{"type": "reply", "template": "greeting", "once": "contact"}],
    },
    {
        "name": "away",
        "event": "message.created",
        "when": {"business_hours": "closed"},
        "actions": [{"type": "reply", "template": "away", "once": "closed_period"}],
    },
    {
        "name": "satisfaction",
        "event": "conversation.resolved",
        "actions": [{"type": "survey"}],
    },
    {
        "name": "birthday",
        "event": "schedule.birthday",
        "actions": [{"type": "reply", "template": "birthday", "once": "year"}],
    },
    {
        "name": "after-purchase",
        "event": "contact.tagged",
        "when": {"tag": ["purchased"]},
        "actions": [{"type": "follow_up", "template": "follow_up", "after_days": 3}],
    },
]


@pytest.fixture
async def care_hub(
    make_settings: Callable[..., Any],
    start_hub: Callable[..., Awaitable[Hub]],
    callback_peer: CallbackPeer,
) -> AsyncIterator[tuple[Hub, FrozenClock]]:
    clock = FrozenClock(saigon(5, 10))
    yield await start_care_hub(make_settings, start_hub, callback_peer, RULES, clock), clock


async def start_care_hub(
    make_settings: Callable[..., Any],
    start_hub: Callable[..., Awaitable[Hub]],
    callback_peer: CallbackPeer,
    rules: list[dict[str, Any]],
    clock: FrozenClock,
    *,
    with_worker: bool = True,
) -> Hub:
    """A hub with these rules, the example templates and an API account."""
    settings = make_settings(
        templates={"folder": TEMPLATES, "default_language": "vi"},
        care={"rules": rules, "company_name": "Cửa hàng ABC"},
        accounts=[
            {
                "id": "shop",
                "channel": "api",
                "secret_env": "HUB_TEST_API_SECRET",
                "callback_url": callback_peer.url,
            }
        ],
    )
    return await start_hub(settings, clock=clock, with_worker=with_worker)


async def customer_writes(hub: Hub, external_id: str, text: str = "Xin chào", **sender: Any) -> str:
    body, headers = signed(message(external_id, text=text, **sender), API_SECRET)
    response = await hub.client.post("/webhooks/api/shop", data=body, headers=headers)
    assert response.status == 200, await response.text()
    await hub.runtime.care.settled()
    stored = await hub.runtime.store.message_by_external_id("api", "shop", external_id)
    assert stored is not None
    return stored.conversation_id


async def agent_token(hub: Hub) -> str:
    agent = Agent(name="Lan", email="lan@shop.vn", created_at=hub.runtime.clock.now())
    await hub.runtime.store.add_agent(agent)
    token = new_token()
    await hub.runtime.store.add_token(
        ApiToken(agent_id=agent.id, token_hash=hash_token(token), created_at=agent.created_at)
    )
    return token


async def care_sent(hub: Hub, conversation_id: str) -> list[Message]:
    return [
        m
        for m in await hub.runtime.store.list_messages(conversation_id)
        if m.direction == "outbound" and m.sender.kind == "system"
    ]


async def all_care_sent(hub: Hub) -> list[Message]:
    page = await hub.runtime.store.list_conversations(ConversationFilter(), limit=100)
    return [m for c in page.items for m in await care_sent(hub, c.id)]


async def test_greeting_goes_once_on_a_contacts_first_message_through_the_outbound_path(
    care_hub: tuple[Hub, FrozenClock], callback_peer: CallbackPeer
) -> None:
    hub, clock = care_hub
    conversation_id = await customer_writes(hub, "m1")
    clock.advance(timedelta(minutes=5))
    await customer_writes(hub, "m2", "Còn hàng không?")
    await customer_writes(hub, "m1")  # the provider retries the first: still one greeting
    [greeting] = await care_sent(hub, conversation_id)
    assert greeting.text.startswith("Xin chào Bình! Cảm ơn bạn đã liên hệ Cửa hàng ABC.")
    assert greeting.sender.name == "hub"

    async def delivered() -> bool:
        return len(callback_peer.deliveries) == 1

    await eventually(delivered)
    assert callback_peer.deliveries[0].signature_ok
    assert "Cửa hàng ABC" in str(callback_peer.deliveries[0].body)
    # A resolved conversation and a new one later: the contact is greeted only once.
    await hub.runtime.inbox.resolve(conversation_id)
    await hub.runtime.care.settled()
    clock.advance(timedelta(days=10))
    again = await customer_writes(hub, "m3")
    assert again != conversation_id
    assert await care_sent(hub, again) == []


async def test_away_reply_goes_once_per_conversation_per_closed_period(
    care_hub: tuple[Hub, FrozenClock],
) -> None:
    hub, clock = care_hub
    clock.set(saigon(5, 19))  # Monday evening: closed
    conversation_id = await customer_writes(hub, "m1")
    clock.set(saigon(5, 23))
    await customer_writes(hub, "m2")
    clock.set(saigon(6, 7, 59))  # still the same night
    await customer_writes(hub, "m3")
    texts = [m.text for m in await care_sent(hub, conversation_id)]
    assert len(texts) == 1 and "ngoài giờ làm việc" in texts[0]
    assert not any("Cảm ơn bạn đã liên hệ" in t for t in texts)  # no greeting when closed
    clock.set(saigon(6, 10))  # open: no away reply
    await customer_writes(hub, "m4")
    assert len(await care_sent(hub, conversation_id)) == 1
    clock.set(saigon(6, 12, 30))  # lunch break: a new closed period
    await customer_writes(hub, "m5")
    clock.set(saigon(6, 20))  # Tuesday night: another one
    await customer_writes(hub, "m6")
    await customer_writes(hub, "m7")
    assert len(await care_sent(hub, conversation_id)) == 3


async def surveys_come_due(hub: Hub, clock: FrozenClock) -> None:
    """Time passes past the survey's delay (10 minutes by default) and the
    worker's every-minute run sends what is due."""
    clock.advance(timedelta(minutes=10))
    await hub.runtime.care_messages.run_due()


async def test_survey_after_resolve_and_a_score_reply_is_recorded_without_reopening(
    care_hub: tuple[Hub, FrozenClock],
) -> None:
    hub, clock = care_hub
    conversation_id = await customer_writes(hub, "m1")
    clock.advance(timedelta(minutes=30))
    await hub.runtime.inbox.resolve(conversation_id)
    await hub.runtime.care.settled()
    await surveys_come_due(hub, clock)
    [_, survey] = await care_sent(hub, conversation_id)
    assert "từ 1 (không hài lòng) đến 5" in survey.text
    assert "/care/survey/" in survey.text
    clock.advance(timedelta(minutes=10))
    await customer_writes(hub, "m2", " 4 ")
    conversation = await hub.runtime.inbox.conversation(conversation_id)
    assert conversation.satisfaction == 4 and conversation.satisfaction_at == clock.now()
    assert conversation.status == "resolved"
    assert len(await care_sent(hub, conversation_id)) == 2  # nothing answers the score
    # Resolved again by the answer, it is not surveyed again.
    await hub.runtime.care.settled()
    await surveys_come_due(hub, clock)
    assert len(await care_sent(hub, conversation_id)) == 2
    # Resolved once more, later: a second survey (another resolution), once.
    await customer_writes(hub, "m3", "Cho mình hỏi thêm")
    clock.advance(timedelta(hours=1))
    await hub.runtime.inbox.resolve(conversation_id)
    await hub.runtime.care.settled()
    await hub.runtime.inbox.resolve(conversation_id)
    await hub.runtime.care.settled()
    await surveys_come_due(hub, clock)
    await surveys_come_due(hub, clock)
    assert len(await care_sent(hub, conversation_id)) == 3


async def test_a_survey_waits_its_delay_and_is_not_sent_for_a_resolve_that_was_undone(
    care_hub: tuple[Hub, FrozenClock],
) -> None:
    """Resolving is one key away and undone from the notice it leaves; a
    customer often writes again a minute later. The survey waits `after_minutes`
    (10 by default) and goes only if the conversation is still resolved by the
    same resolve."""
    hub, clock = care_hub
    care = hub.runtime.care_messages
    conversation_id = await customer_writes(hub, "m1")
    resolved = await hub.runtime.inbox.resolve(conversation_id)
    await hub.runtime.care.settled()
    assert resolved.resolved_at is not None
    key = f"survey:satisfaction:{conversation_id}:{to_ms(resolved.resolved_at)}"
    clock.advance(timedelta(minutes=9, seconds=59))
    await care.run_due()
    assert len(await care_sent(hub, conversation_id)) == 1  # the greeting only: not yet
    await hub.runtime.inbox.reopen(conversation_id)  # the agent's undo
    clock.advance(timedelta(seconds=1))
    await care.run_due()
    await surveys_come_due(hub, clock)
    assert len(await care_sent(hub, conversation_id)) == 1
    task = await hub.runtime.store.get_care_task(key)
    assert task is not None and task.state == "cancelled"
    assert "reopened" in task.payload["reason"]
    # Resolved for good this time: its own survey, after its own delay, once.
    await hub.runtime.inbox.resolve(conversation_id)
    await hub.runtime.care.settled()
    await care.run_due()
    assert len(await care_sent(hub, conversation_id)) == 1
    await surveys_come_due(hub, clock)
    await surveys_come_due(hub, clock)
    [_, survey] = await care_sent(hub, conversation_id)
    assert "/care/survey/" in survey.text
    # Resolved again after the customer wrote: the survey about the earlier
    # resolve is long sent; the one about this resolve waits, and a reply
    # from the customer within the delay reopens the conversation and stops it.
    await customer_writes(hub, "m2", "Cảm ơn shop nhiều!")
    await hub.runtime.inbox.resolve(conversation_id)
    await hub.runtime.care.settled()
    clock.advance(timedelta(minutes=2))
    await customer_writes(hub, "m3", "À cho mình hỏi thêm")
    await surveys_come_due(hub, clock)
    assert len(await care_sent(hub, conversation_id)) == 2


async def test_a_survey_with_no_delay_goes_at_the_resolve(
    make_settings: Callable[..., Any],
    start_hub: Callable[..., Awaitable[Hub]],
    callback_peer: CallbackPeer,
) -> None:
    rules = [
        {
            "name": "satisfaction",
            "event": "conversation.resolved",
            "actions": [{"type": "survey", "after_minutes": 0}],
        }
    ]
    clock = FrozenClock(saigon(5, 10))
    hub = await start_care_hub(make_settings, start_hub, callback_peer, rules, clock)
    conversation_id = await customer_writes(hub, "m1")
    await hub.runtime.inbox.resolve(conversation_id)
    await hub.runtime.care.settled()
    [survey] = await care_sent(hub, conversation_id)
    assert "/care/survey/" in survey.text


async def test_a_number_that_does_not_answer_a_survey_is_just_a_message(
    care_hub: tuple[Hub, FrozenClock],
) -> None:
    hub, _ = care_hub
    conversation_id = await customer_writes(hub, "m1")
    await hub.runtime.inbox.reply(conversation_id, None, "Bạn cần mấy cái?")
    await customer_writes(hub, "m2", "3")
    conversation = await hub.runtime.inbox.conversation(conversation_id)
    assert conversation.satisfaction is None and conversation.status == "open"


async def test_survey_link_records_the_score_without_login_and_refuses_forgeries(
    care_hub: tuple[Hub, FrozenClock],
) -> None:
    hub, clock = care_hub
    conversation_id = await customer_writes(hub, "m1")
    await hub.runtime.inbox.resolve(conversation_id)
    await hub.runtime.care.settled()
    await surveys_come_due(hub, clock)
    [_, survey] = await care_sent(hub, conversation_id)
    path = "/care/survey/" + survey.text.split("/care/survey/")[1].split()[0]
    page = await hub.client.get(path)
    assert page.status == 200 and 'name="score"' in await page.text()
    answer = await hub.client.post(path, data={"score": "5"})
    assert answer.status == 200
    assert (await hub.runtime.inbox.conversation(conversation_id)).satisfaction == 5
    bad_score = await hub.client.post(path, data={"score": "9"})
    assert bad_score.status == 422 and "1 to 5" in (await bad_score.json())["error"]["message"]
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    refused = await hub.client.post(forged, data={"score": "1"})
    assert refused.status == 403
    other = path.replace(conversation_id, "0" * 24)
    assert (await hub.client.get(other)).status == 403
    clock.advance(timedelta(days=31))
    expired = await hub.client.get(path)
    assert expired.status == 403 and "expired" in (await expired.json())["error"]["message"]
    assert (await hub.runtime.inbox.conversation(conversation_id)).satisfaction == 5


async def test_a_survey_decided_at_night_waits_for_the_contacts_daytime(
    care_hub: tuple[Hub, FrozenClock],
) -> None:
    hub, clock = care_hub
    conversation_id = await customer_writes(hub, "m1")
    clock.set(saigon(5, 23))
    await hub.runtime.inbox.resolve(conversation_id)
    await hub.runtime.care.settled()
    care = hub.runtime.care_messages
    assert len(await care_sent(hub, conversation_id)) == 1  # the greeting only
    clock.set(saigon(6, 7, 59))
    await care.run_due()
    assert len(await care_sent(hub, conversation_id)) == 1
    clock.set(saigon(6, 8))
    # (The worker's own cron may run too: whoever sends it, it is sent once.)
    await asyncio.gather(care.run_due(), care.run_due())
    await care.run_due()
    assert len(await care_sent(hub, conversation_id)) == 2


async def test_birthday_wishes_go_once_a_year_from_nine_in_the_contacts_timezone(
    care_hub: tuple[Hub, FrozenClock],
) -> None:
    hub, clock = care_hub
    store = hub.runtime.store
    saigon_id = await customer_writes(hub, "m1", "Hi", name="Trần Thị Mai")
    paris_id = await customer_writes(hub, "m2", "Hi", sender_id="cust-2", name="Jean Dupont")
    saigon_contact = (await hub.runtime.inbox.conversation(saigon_id)).contact_id
    paris_contact = (await hub.runtime.inbox.conversation(paris_id)).contact_id
    await store.update_contact(saigon_contact, birthday=date(1990, 1, 7))
    await store.update_contact(
        paris_contact, birthday=date(1985, 1, 7), timezone="Europe/Paris", language="en"
    )
    birthdays = hub.runtime.care.run_birthdays
    daytime = hub.runtime.settings.care.daytime
    clock.set(saigon(7, 8, 45))  # Wednesday 08:45 in Saigon, 02:45 in Paris
    await birthdays(daytime)
    assert len(await care_sent(hub, saigon_id)) == 1  # the greeting only
    clock.set(saigon(7, 9))
    await birthdays(daytime)
    await birthdays(daytime)
    wishes = await care_sent(hub, saigon_id)
    assert len(wishes) == 2 and wishes[1].text.startswith("Chúc mừng sinh nhật Mai!")
    assert len(await care_sent(hub, paris_id)) == 1
    clock.set(datetime(2026, 1, 7, 8, 0, tzinfo=UTC))  # 09:00 in Paris, 15:00 in Saigon
    await birthdays(daytime)
    await birthdays(daytime)
    paris = await care_sent(hub, paris_id)
    assert len(paris) == 2 and paris[1].text.startswith("Happy birthday, Jean!")
    assert len(await care_sent(hub, saigon_id)) == 2
    clock.set(datetime(2026, 1, 8, 3, 0, tzinfo=UTC))  # the next day: nothing more
    await birthdays(daytime)
    assert len(await all_care_sent(hub)) == 4


async def test_follow_up_goes_n_days_after_the_tag_unless_the_contact_writes_first(
    care_hub: tuple[Hub, FrozenClock],
) -> None:
    hub, clock = care_hub
    inbox = hub.runtime.inbox
    quiet = await customer_writes(hub, "m1", sender_id="quiet")
    chatty = await customer_writes(hub, "m2", sender_id="chatty")
    token = await agent_token(hub)
    quiet_contact = (await inbox.conversation(quiet)).contact_id
    for _ in range(2):  # the shop's system tags through the API; a repeat changes nothing
        tagged = await hub.api(
            "POST", f"/api/v1/contacts/{quiet_contact}/tags", token, json={"tag": "purchased"}
        )
        assert tagged.status == 200 and (await tagged.json())["tags"] == ["purchased"]
        await hub.runtime.care.settled()
    empty = await hub.api("POST", f"/api/v1/contacts/{quiet_contact}/tags", token, json={"tag": ""})
    assert empty.status == 422
    unknown = await hub.api("POST", "/api/v1/contacts/nobody/tags", token, json={"tag": "x"})
    assert unknown.status == 404
    # The workspace edits tags as a whole list: a tag added that way starts them too.
    chatty_contact = (await inbox.conversation(chatty)).contact_id
    edited = await hub.api(
        "PATCH", f"/api/v1/contacts/{chatty_contact}", token, json={"tags": ["purchased", "other"]}
    )
    assert edited.status == 200 and (await edited.json())["tags"] == ["purchased", "other"]
    await hub.runtime.care.settled()
    chatty_tasks = await hub.runtime.store.due_care_tasks(clock.now() + timedelta(days=4), 10)
    assert {t.contact_id for t in chatty_tasks} == {quiet_contact, chatty_contact}
    clock.advance(timedelta(days=1))
    await customer_writes(hub, "m3", "Hàng tốt lắm", sender_id="chatty")
    care = hub.runtime.care_messages
    clock.advance(timedelta(days=1, hours=23))
    assert await care.run_due() == 0
    clock.advance(timedelta(hours=1))  # three days after the tag, 10:00 in Saigon
    await care.run_due()
    await care.run_due()
    [_, follow_up] = await care_sent(hub, quiet)
    assert follow_up.text.startswith("Xin chào Bình, bạn dùng sản phẩm")
    assert len(await care_sent(hub, chatty)) == 1  # its greeting only


async def test_one_care_task_completed_by_two_racers_records_one_message(
    care_hub: tuple[Hub, FrozenClock],
) -> None:
    """What a crash between deciding and sending leaves (a pending task) is sent
    by the runner, once, even while the event handler sends it too."""
    hub, clock = care_hub
    conversation_id = await customer_writes(hub, "m1")
    contact_id = (await hub.runtime.inbox.conversation(conversation_id)).contact_id
    care = hub.runtime.care_messages
    contact = await hub.runtime.store.get_contact(contact_id)
    conversation = await hub.runtime.inbox.conversation(conversation_id)
    assert contact is not None
    task = await care.decide(
        "manual:1",
        kind="reply",
        contact=contact,
        conversation=conversation,
        template="greeting",
        answer=True,
        due_at=clock.now() + timedelta(seconds=1),
    )
    assert task is not None
    clock.advance(timedelta(seconds=1))
    results = await asyncio.gather(care.complete(task), care.complete(task), care.run_due())
    assert results[:2].count("done") + results[2] == 1  # one of them reports sending it
    assert len(await care_sent(hub, conversation_id)) == 2  # the greeting and this one
    stored = await hub.runtime.store.get_care_task("manual:1")
    assert stored is not None and stored.state == "done"


async def test_rule_actions_label_prioritise_assign_and_post_a_signed_webhook(
    make_settings: Callable[..., Any],
    start_hub: Callable[..., Awaitable[Hub]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver = CallbackPeer("crm-secret-0123456789")
    await receiver.start()
    monkeypatch.setenv("HUB_TEST_CRM_SECRET", "crm-secret-0123456789")
    rule = {
        "name": "price",
        "event": "message.created",
        "when": {"text_contains": ["GIÁ"], "channel": ["api"], "account": ["shop"]},
        "actions": [
            {"type": "label", "label": "pricing"},
            {"type": "priority", "priority": "high"},
            {"type": "assign", "agent": "lan@shop.vn"},
            {"type": "webhook", "url": receiver.url, "secret_env": "HUB_TEST_CRM_SECRET"},
        ],
    }
    snooze = {
        "name": "later",
        "event": "message.created",
        "when": {"text_regex": r"(?i)\bmai\b", "contact_tags": ["vip"]},
        "actions": [{"type": "snooze", "hours": 20}],
    }
    # Near the real time: the snooze's wake-up is a real deferred arq job.
    clock = FrozenClock(datetime.now(UTC))
    hub = await start_hub(make_settings(care={"rules": [rule, snooze]}), clock=clock)
    try:
        agent = Agent(name="Lan", email="lan@shop.vn", created_at=clock.now())
        await hub.runtime.store.add_agent(agent)
        plain = await customer_writes(hub, "m0", "Xin chào", sender_id="other")
        conversation_id = await customer_writes(hub, "m1", "Cho hỏi giá áo này?")
        conversation = await hub.runtime.inbox.conversation(conversation_id)
        assert conversation.labels == ["pricing"] and conversation.priority == "high"
        assert conversation.assignee_id == agent.id
        untouched = await hub.runtime.inbox.conversation(plain)
        assert untouched.labels == [] and untouched.priority == "normal"

        async def posted() -> bool:
            return len(receiver.deliveries) == 1

        await eventually(posted)
        [delivery] = receiver.deliveries
        assert delivery.signature_ok and delivery.body["rule"] == "price"
        assert delivery.body["message"]["text"] == "Cho hỏi giá áo này?"
        assert delivery.headers["X-Hub-Delivery"] == delivery.body["id"]

        await customer_writes(hub, "m2", "Mai mình ghé")  # not a vip: no snooze
        assert (await hub.runtime.inbox.conversation(conversation_id)).status == "open"
        await hub.runtime.inbox.tag_contact(conversation.contact_id, "vip")
        await hub.runtime.care.settled()
        await customer_writes(hub, "m3", "Mai mình ghé")
        snoozed = await hub.runtime.inbox.conversation(conversation_id)
        assert snoozed.status == "snoozed"
        assert snoozed.snoozed_until == clock.now() + timedelta(hours=20)
    finally:
        await receiver.stop()


async def test_a_failing_webhook_receiver_is_retried_without_holding_up_ingest(
    make_settings: Callable[..., Any],
    start_hub: Callable[..., Awaitable[Hub]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver = CallbackPeer("crm-secret-0123456789")
    receiver.answers = [503]
    await receiver.start()
    monkeypatch.setenv("HUB_TEST_CRM_SECRET", "crm-secret-0123456789")
    rule = {
        "name": "to-crm",
        "event": "conversation.created",
        "actions": [{"type": "webhook", "url": receiver.url, "secret_env": "HUB_TEST_CRM_SECRET"}],
    }
    settings = make_settings(care={"rules": [rule], "webhook_backoff_seconds": 0.1})
    hub = await start_hub(settings)
    try:
        await customer_writes(hub, "m1")

        async def retried() -> bool:
            return len(receiver.deliveries) == 2

        await eventually(retried, timeout=15)
        first, second = receiver.deliveries
        assert first.headers["X-Hub-Delivery"] == second.headers["X-Hub-Delivery"]
    finally:
        await receiver.stop()


async def test_care_respects_consent_and_uses_the_short_sms_text_where_consent_is_sms(
    care_hub: tuple[Hub, FrozenClock],
) -> None:
    """The same care messages on an account whose sends need "sms" consent (as a
    Twilio number's do): short text, and nothing to a contact who opted out."""
    hub, clock = care_hub
    runtime = hub.runtime
    sms_care = CareMessages(
        runtime.store,
        runtime.inbox,
        clock,
        runtime.care_messages.templates,
        runtime.care_messages.policy,
        consent_key=lambda account_id: "sms",
    )
    willing_id = await customer_writes(hub, "m1", sender_id="willing")
    stopped_id = await customer_writes(hub, "m2", sender_id="stopped")
    willing = await runtime.store.get_contact(
        (await runtime.inbox.conversation(willing_id)).contact_id
    )
    stopped_conversation = await runtime.inbox.conversation(stopped_id)
    opted_out = {"sms": Consent(status="opted_out", at=clock.now(), how="message:x")}
    await runtime.store.update_contact(stopped_conversation.contact_id, consent=opted_out)
    stopped = await runtime.store.get_contact(stopped_conversation.contact_id)
    assert willing is not None and stopped is not None
    for contact in (willing, stopped):
        await sms_care.decide(
            f"birthday:{contact.id}:2026",
            kind="birthday",
            contact=contact,
            conversation=None,
            template="birthday",
            answer=False,
        )
    [_, wish] = await care_sent(hub, willing_id)
    assert wish.text == "Cửa hàng ABC chuc mung sinh nhat Bình! Chuc ban mot nam moi that vui."
    assert len(await care_sent(hub, stopped_id)) == 1  # the greeting, before the opt-out
    task = await runtime.store.get_care_task(f"birthday:{stopped.id}:2026")
    assert task is not None and task.state == "cancelled"
    assert "opted out of sms" in task.payload["reason"]


async def test_the_workers_care_cron_sends_what_is_due_without_being_asked(
    make_settings: Callable[..., Any], start_hub: Callable[..., Awaitable[Hub]]
) -> None:
    """A task left pending (a crash after deciding it) goes out when a worker
    starts: the care cron runs at start-up, then every minute."""
    clock = FrozenClock(saigon(5, 10))
    settings = make_settings(templates={"folder": TEMPLATES}, care={"rules": RULES})
    web_only = await start_hub(settings, clock=clock, with_worker=False)
    conversation_id = await customer_writes(web_only, "m1")
    conversation = await web_only.runtime.inbox.conversation(conversation_id)
    await web_only.runtime.store.add_care_task(
        CareTask(
            key="left-behind",
            kind="reply",
            contact_id=conversation.contact_id,
            conversation_id=conversation_id,
            due_at=clock.now(),
            payload={"template": "greeting", "answer": True, "variables": {}},
            created_at=clock.now(),
            updated_at=clock.now(),
        )
    )
    worker_hub = await start_hub(settings, clock=clock, with_worker=True)

    async def done() -> bool:
        task = await worker_hub.runtime.store.get_care_task("left-behind")
        return task is not None and task.state == "done"

    await eventually(done)
    assert len(await care_sent(worker_hub, conversation_id)) == 2


async def test_no_care_reply_to_a_message_a_machine_sent(
    care_hub: tuple[Hub, FrozenClock],
) -> None:
    """An out-of-office or a bounce gets no greeting or away reply: two robots
    answering each other would never stop (RFC 3834, `hub.inbox.loops`)."""
    hub, clock = care_hub
    conversation_id = await customer_writes(hub, "m1")
    conversation = await hub.runtime.inbox.conversation(conversation_id)
    contact = await hub.runtime.store.get_contact(conversation.contact_id)
    assert contact is not None
    [robot] = [
        m for m in await hub.runtime.store.list_messages(conversation_id) if m.external_id == "m1"
    ]
    robot = robot.model_copy(update={"meta": {"automated": True, "automated_reason": "x"}})
    clock.set(saigon(5, 20))
    await hub.runtime.care.run(
        Situation("message.created", clock.now(), contact, conversation, robot)
    )
    assert len(await care_sent(hub, conversation_id)) == 1  # the greeting to the person only
    person = robot.model_copy(update={"meta": {}})
    await hub.runtime.care.run(
        Situation("message.created", clock.now(), contact, conversation, person)
    )
    assert len(await care_sent(hub, conversation_id)) == 2  # and the away reply to them


async def test_the_customers_message_is_announced_before_the_greeting_it_causes(
    care_hub: tuple[Hub, FrozenClock],
) -> None:
    """Agents' browsers (cluster subscribers) get the timeline in order."""
    hub, _ = care_hub
    seen: list[str] = []

    async def record(event: Event) -> None:
        seen.append(event.data["message"]["direction"])

    hub.runtime.bus.subscribe("message.created", record, scope="cluster")
    await customer_writes(hub, "m1")
    assert seen == ["inbound", "outbound"]
