"""Schedule rules: time-based automation over conversations (reminders to idle
customers, closing what nobody answers, weekly sweeps). A running hub with
real Redis and SQLite; time is a FrozenClock moved by the test and the runs are
called as the worker's minute cron calls them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.care.rules import Timing
from hub.care.schedule import latest_occurrence
from hub.clock import FrozenClock
from hub.worker import cron_jobs
from tests.care.test_care_messages import care_sent, customer_writes, saigon, start_care_hub
from tests.conftest import Hub
from tests.peers.callback import CallbackPeer

SAIGON = ZoneInfo("Asia/Ho_Chi_Minh")


def test_a_sweep_runs_on_the_clocks_steps_in_the_rules_timezone() -> None:
    hourly = Timing(every_minutes=60)
    assert latest_occurrence(hourly, saigon(5, 10, 59), SAIGON) == saigon(5, 10)
    assert latest_occurrence(hourly, saigon(5, 11), SAIGON) == saigon(5, 11)
    twice_a_day = Timing(every_minutes=720)
    assert latest_occurrence(twice_a_day, saigon(5, 11, 30), SAIGON) == saigon(5, 0)
    assert latest_occurrence(twice_a_day, saigon(5, 12, 30), SAIGON) == saigon(5, 12)
    weekdays = Timing(every_minutes=30, days=["mon", "tue", "wed", "thu", "fri"])
    assert latest_occurrence(weekdays, saigon(10, 9), SAIGON) is None  # a Saturday


def test_a_daily_run_is_the_last_due_one_on_its_days() -> None:
    mondays = Timing(at="08:30", days=["mon"])
    # Monday 5 January 2026 in Saigon.
    assert latest_occurrence(mondays, saigon(5, 8, 29), SAIGON) == saigon(5, 8, 30) - timedelta(
        days=7
    )
    assert latest_occurrence(mondays, saigon(5, 8, 30), SAIGON) == saigon(5, 8, 30)
    assert latest_occurrence(mondays, saigon(9, 23), SAIGON) == saigon(5, 8, 30)
    daily_in_paris = Timing(at="09:00", timezone="Europe/Paris")
    paris = ZoneInfo("Europe/Paris")
    assert latest_occurrence(daily_in_paris, datetime(2026, 1, 6, 8, 0, tzinfo=UTC), paris) == (
        datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
    )


async def schedule_hub(
    make_settings: Callable[..., Any],
    start_hub: Callable[..., Awaitable[Hub]],
    callback_peer: CallbackPeer,
    rules: list[dict[str, Any]],
    clock: FrozenClock,
) -> Hub:
    """The rules are run by the test, as the worker's minute cron would."""
    return await start_care_hub(
        make_settings, start_hub, callback_peer, rules, clock, with_worker=False
    )


IDLE_RULES: list[dict[str, Any]] = [
    {
        "name": "still-there",
        "event": "schedule",
        "schedule": {"every_minutes": 60},
        "when": {"status": ["pending"], "idle_hours": 48},
        "actions": [{"type": "reply", "template": "still_there", "once": "conversation"}],
    },
    {
        "name": "close-idle",
        "event": "schedule",
        "schedule": {"every_minutes": 60},
        "when": {"status": ["pending"], "idle_hours": 168},
        "actions": [{"type": "label", "label": "auto-closed"}, {"type": "resolve"}],
    },
]


async def test_an_idle_pending_conversation_gets_one_reminder_then_is_closed(
    make_settings: Callable[..., Any],
    start_hub: Callable[..., Awaitable[Hub]],
    callback_peer: CallbackPeer,
) -> None:
    clock = FrozenClock(saigon(5, 10))
    hub = await schedule_hub(make_settings, start_hub, callback_peer, IDLE_RULES, clock)
    inbox, care = hub.runtime.inbox, hub.runtime.care
    waiting = await customer_writes(hub, "m1", "Đơn hàng của tôi đâu?")
    chatty = await customer_writes(hub, "m2", "Cho hỏi", sender_id="cust-2")
    open_one = await customer_writes(hub, "m3", "Alo", sender_id="cust-3")
    for conversation_id in (waiting, chatty):
        await inbox.mark_pending(conversation_id)

    clock.set(saigon(7, 9, 59))  # 47 h 59 min idle: not yet
    assert await care.run_schedules() == 0
    await customer_writes(hub, "m4", "Còn đó không?", sender_id="cust-2")  # chatty writes
    await inbox.mark_pending(chatty)
    clock.set(saigon(7, 10, 5))
    assert await care.run_schedules() == 1
    reminders = await care_sent(hub, waiting)
    assert [m.text.startswith("Xin chào") for m in reminders] == [True]
    assert "chúng tôi chưa nhận được phản hồi" in reminders[0].text
    assert await care.run_schedules() == 0  # this hour's run is done
    clock.set(saigon(7, 11, 5))
    assert await care.run_schedules() == 0  # the reminder was activity: not idle now
    clock.set(saigon(9, 12, 5))  # 48 h after the reminder: once per conversation
    await care.run_schedules()
    assert len(await care_sent(hub, waiting)) == 1
    assert await care_sent(hub, chatty) != []  # its own 48 h came
    assert await care_sent(hub, open_one) == []  # open ones wait for an agent

    clock.set(saigon(14, 11, 30))  # a week after the reminder: closed, labelled
    await care.run_schedules()
    closed = await inbox.conversation(waiting)
    assert closed.status == "resolved" and closed.labels == ["auto-closed"]
    assert (await inbox.conversation(open_one)).status == "open"


async def test_a_run_cut_short_goes_on_where_it_stopped_and_acts_once_per_conversation(
    make_settings: Callable[..., Any],
    start_hub: Callable[..., Awaitable[Hub]],
    callback_peer: CallbackPeer,
) -> None:
    rules = [
        {
            "name": "monday-review",
            "event": "schedule",
            "schedule": {"at": "08:30", "days": ["mon"]},
            "when": {"unassigned": True},
            "actions": [
                {"type": "label", "label": "weekly-review"},
                {"type": "reply", "template": "still_there", "once": "never"},
            ],
        }
    ]
    clock = FrozenClock(saigon(2, 10))  # Friday 2 January
    hub = await schedule_hub(make_settings, start_hub, callback_peer, rules, clock)
    care, store = hub.runtime.care, hub.runtime.store
    conversations = [
        await customer_writes(hub, f"m{n}", "Xin chào", sender_id=f"cust-{n}") for n in range(230)
    ]
    assert await care.run_schedules() == 0  # last Monday's run is long past its catch-up
    clock.set(saigon(5, 8, 29))
    assert await care.run_schedules() == 0
    clock.set(saigon(5, 8, 31))
    # A run stopped after its first page (as a crash or the time budget would)...
    assert await care.run_schedules(max_seconds=0) == 100
    assert await care.run_schedules(max_seconds=0) == 100
    # ...goes on from its place, and everything after is a no-op.
    assert await care.run_schedules() == 30
    assert await care.run_schedules() == 0
    clock.set(saigon(6, 9))
    assert await care.run_schedules() == 0
    for conversation_id in conversations:
        assert (await store.get_conversation(conversation_id)).labels == ["weekly-review"]
        assert len(await care_sent(hub, conversation_id)) == 1, conversation_id
    clock.set(saigon(12, 8, 30))  # the next Monday: a new run
    assert await care.run_schedules() == 230


async def test_the_same_run_repeated_after_a_crash_sends_nothing_twice(
    make_settings: Callable[..., Any],
    start_hub: Callable[..., Awaitable[Hub]],
    callback_peer: CallbackPeer,
) -> None:
    rules = [
        {
            "name": "nudge",
            "event": "schedule",
            "schedule": {"every_minutes": 60},
            "when": {"status": ["open"], "idle_hours": 1},
            "actions": [{"type": "reply", "template": "still_there", "once": "never"}],
        }
    ]
    clock = FrozenClock(saigon(5, 10))
    hub = await schedule_hub(make_settings, start_hub, callback_peer, rules, clock)
    care, store = hub.runtime.care, hub.runtime.store
    conversation_id = await customer_writes(hub, "m1")
    clock.set(saigon(5, 11, 30))
    assert await care.run_schedules() == 1
    # As if the process died before writing that the run was done.
    await store.save_channel_state(
        "care", "schedule:nudge", {"occurrence": 0, "cursor": None, "done": False}
    )
    clock.set(saigon(5, 11, 31))
    await care.run_schedules()
    assert len(await care_sent(hub, conversation_id)) == 1


def test_the_worker_runs_schedule_rules_every_minute() -> None:
    [schedules] = [job for job in cron_jobs(10.0) if job.name == "care_schedules"]
    assert schedules.second == 10 and schedules.minute is None and schedules.run_at_startup


@pytest.mark.parametrize("once", ["conversation", "activity"])
async def test_once_per_activity_reminds_again_after_the_customer_writes(
    make_settings: Callable[..., Any],
    start_hub: Callable[..., Awaitable[Hub]],
    callback_peer: CallbackPeer,
    once: str,
) -> None:
    rules = [
        {
            "name": "nudge",
            "event": "schedule",
            "schedule": {"every_minutes": 60},
            "when": {"status": ["pending"], "idle_hours": 24},
            "actions": [{"type": "reply", "template": "still_there", "once": once}],
        }
    ]
    clock = FrozenClock(saigon(5, 10))
    hub = await schedule_hub(make_settings, start_hub, callback_peer, rules, clock)
    inbox, care = hub.runtime.inbox, hub.runtime.care
    conversation_id = await customer_writes(hub, "m1")
    await inbox.mark_pending(conversation_id)
    clock.set(saigon(6, 11))
    await care.run_schedules()
    await customer_writes(hub, "m2", "Vâng, chờ chút")
    await inbox.mark_pending(conversation_id)
    clock.set(saigon(7, 12))
    await care.run_schedules()
    assert len(await care_sent(hub, conversation_id)) == (1 if once == "conversation" else 2)
