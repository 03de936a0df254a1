"""Call records: updates in any order, replayed any number of times, fold into
one record whose status never goes backwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.inbox.calls import CallAgent, CallRecord, CallUpdate, describe, merge

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
LAN = CallAgent(agent_id="a1", name="Lan", extension="101")
MINH = CallAgent(agent_id="a2", name="Minh", extension="102")
RANK = {"ringing": 0, "answered": 1, "missed": 1, "completed": 2, "voicemail": 2}


def update(seconds: int = 0, **facts) -> CallUpdate:
    return CallUpdate(call_id="c1", at=T0 + timedelta(seconds=seconds), **facts)


def fold(updates, agents=None) -> CallRecord:
    record = None
    for u, agent, transfer in updates:
        record = merge(
            record, u, customer="+84901234567", answered_by=agent, transferred_to=transfer
        )
    return record


def test_answered_then_transferred_then_ended():
    record = fold(
        [
            (update(0), None, None),
            (update(5), LAN, None),
            (update(60), None, MINH),
            (update(200, ended=True, end_reason="completed", duration_seconds=195), None, None),
        ]
    )
    assert record.status == "completed"
    assert record.answered_by == LAN.model_copy(update={"at": T0 + timedelta(seconds=5)})
    assert record.transfers == [MINH.model_copy(update={"at": T0 + timedelta(seconds=60)})]
    assert record.duration_seconds == 195
    assert describe(record) == (
        "Call from +84901234567 answered by Lan (ext 101),"
        " transferred to Minh (ext 102) · 3 min 15 s"
    )


def test_missed_then_voicemail():
    record = fold(
        [
            (update(0), None, None),
            (update(20, missed=True, miss_reason="no answer"), None, None),
            (update(50, recording_url="https://r/1.mp3", recording_seconds=12), None, None),
        ]
    )
    assert record.status == "voicemail" and record.needs_callback
    assert describe(record) == "Voicemail from +84901234567 (12 s)"


def test_a_real_end_replaces_an_unknown_one():
    blind = fold(
        [(update(0), LAN, None), (update(30, ended=True, end_reason="unknown"), None, None)]
    )
    assert blind.end_reason == "unknown" and "connection was lost" in describe(blind)
    cdr = merge(
        blind,
        update(90, ended=True, end_reason="completed", duration_seconds=80),
        customer="x",
    )
    assert cdr.end_reason == "completed" and cdr.duration_seconds == 80
    assert cdr.ended_at == T0 + timedelta(seconds=90)


facts = st.sampled_from(
    [
        (dict(), None, None),
        (dict(), LAN, None),
        (dict(), None, MINH),
        (dict(missed=True, miss_reason="busy"), None, None),
        (dict(ended=True, end_reason="completed", duration_seconds=30), None, None),
        (dict(ended=True, end_reason="no-answer"), None, None),
        (dict(recording_url="https://r/1.mp3", recording_seconds=9), None, None),
        (dict(transcription="gọi lại giúp em"), None, None),
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 600), facts), min_size=1, max_size=12))
def test_status_never_goes_back_and_replays_change_nothing(steps):
    record = None
    for seconds, (fields, agent, transfer) in steps:
        u = update(seconds, **fields)
        after = merge(
            record, u, customer="+84901234567", answered_by=agent, transferred_to=transfer
        )
        if record is not None:
            assert RANK[after.status] >= RANK[record.status] or after.status == "completed"
            assert after.started_at <= record.started_at
        again = merge(after, u, customer="+84901234567", answered_by=agent, transferred_to=transfer)
        assert again == after
        record = after
    assert describe(record)


@settings(max_examples=200, deadline=None)
@given(st.permutations([0, 1, 2, 3, 4]))
def test_who_answered_does_not_depend_on_the_order_updates_arrive_in(order):
    anyone = CallAgent()  # "someone answered" (Twilio's <Dial> end says no more)
    steps = [
        (update(0), None, None),
        (update(5), LAN, None),
        (update(60), None, MINH),
        (update(100, ended=True, end_reason="completed", duration_seconds=95), anyone, None),
        (update(60), None, MINH),  # a replay
    ]
    record = fold([steps[i] for i in order])
    assert record.answered_by is not None and record.answered_by.same_person(LAN)
    assert record.answered_at == T0 + timedelta(seconds=5)
    assert [t.extension for t in record.transfers] == ["102"]
    assert record.status == "completed"
