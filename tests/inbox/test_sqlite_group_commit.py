"""SQLite group commit: units of work that run in one turn of the event loop
share a commit; each caller returns only once its unit is committed."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime

import pytest

from hub.errors import Conflict, StoreUnavailable
from hub.inbox.model import Agent
from hub.inbox.sqlite import SqliteStore

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def agent(n: int) -> Agent:
    return Agent(name=f"A{n}", email=f"a{n}@shop.vn", created_at=T0)


def doom_the_commit_of_doomed(tmp_path) -> None:
    """A constraint checked only at COMMIT: a deferred foreign key, broken by a
    trigger when the agent "doomed" is inserted."""
    with sqlite3.connect(tmp_path / "hub.db", isolation_level=None) as other:
        other.execute(
            "CREATE TABLE probe (agent_id TEXT REFERENCES agents(id) DEFERRABLE INITIALLY DEFERRED)"
        )
        other.execute(
            "CREATE TRIGGER doom AFTER INSERT ON agents WHEN NEW.email = 'doomed@shop.vn'"
            " BEGIN INSERT INTO probe VALUES ('no-such-agent'); END"
        )


@pytest.fixture
async def store(tmp_path):
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    yield store
    await store.close()


async def test_concurrent_units_are_each_committed_before_their_caller_returns(store, tmp_path):
    agents = [agent(n) for n in range(20)]

    async def add_and_check(new: Agent) -> None:
        await store.add_agent(new)
        # Another connection (another process) sees it as soon as the call returns.
        with sqlite3.connect(tmp_path / "hub.db") as other:
            assert other.execute("SELECT 1 FROM agents WHERE id = ?", (new.id,)).fetchone()

    await asyncio.gather(*(add_and_check(a) for a in agents))
    assert len(await store.list_agents()) == 20


async def test_a_failing_unit_does_not_take_its_group_down(store):
    await store.add_agent(agent(0))
    results = await asyncio.gather(
        store.add_agent(agent(1)),
        store.add_agent(agent(0).model_copy(update={"id": "x" * 24})),  # same e-mail
        store.add_agent(agent(2)),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], Conflict)
    assert sorted(a.email for a in await store.list_agents()) == [
        "a0@shop.vn",
        "a1@shop.vn",
        "a2@shop.vn",
    ]


async def test_a_caller_cancelled_while_it_waits_for_the_commit_cancels_nobody_elses(
    store, tmp_path
):
    """A webhook whose client hangs up mid-request is cancelled; the units
    sharing its commit still commit (its own unit too: it was done)."""
    first = asyncio.create_task(store.add_agent(agent(1)))
    others = [asyncio.create_task(store.add_agent(agent(n))) for n in (2, 3)]
    await asyncio.sleep(0)  # every unit ran; the commit waits for the next turn
    first.cancel()
    await asyncio.gather(*others)
    with pytest.raises(asyncio.CancelledError):
        await first
    with sqlite3.connect(tmp_path / "hub.db") as other:
        emails = sorted(row[0] for row in other.execute("SELECT email FROM agents"))
    assert emails == ["a1@shop.vn", "a2@shop.vn", "a3@shop.vn"]


async def test_a_nested_transaction_that_raises_undoes_only_its_own_writes(store):
    async with store.transaction():
        await store.add_agent(agent(1))
        with pytest.raises(Conflict):
            async with store.transaction():
                await store.add_agent(agent(2))
                await store.add_agent(agent(1).model_copy(update={"id": "y" * 24}))
        async with store.transaction():
            await store.add_agent(agent(3))
    assert sorted(a.email for a in await store.list_agents()) == ["a1@shop.vn", "a3@shop.vn"]


async def test_a_failed_commit_fails_every_unit_of_the_group_and_writes_nothing(store, tmp_path):
    # A constraint checked only at COMMIT fails: the whole group then fails.
    doom_the_commit_of_doomed(tmp_path)
    doomed = Agent(name="D", email="doomed@shop.vn", created_at=T0)
    results = await asyncio.gather(
        store.add_agent(agent(1)),
        store.add_agent(doomed),
        store.add_agent(agent(2)),
        return_exceptions=True,
    )
    assert all(isinstance(r, StoreUnavailable) for r in results), results
    assert await store.list_agents() == []
    # The store goes on working afterwards.
    await store.add_agent(agent(3))
    assert [a.email for a in await store.list_agents()] == ["a3@shop.vn"]


async def test_write_committed_returns_without_a_loop_turn_after_its_commit(store, tmp_path):
    """For a record that must be on disk right before an irreversible act: the
    commit happens inside the call, and the caller resumes in the same step (no
    other task runs in between, so no other work can delay the act)."""
    ran_between: list[str] = []

    async def other_task() -> None:
        ran_between.append("other")

    await store.add_agent(agent(0))
    task = asyncio.create_task(other_task())  # ready to run at the next loop turn
    await store.write_committed("UPDATE agents SET name = ? WHERE email = ?", ("B", "a0@shop.vn"))
    assert ran_between == []  # no loop turn happened after the commit
    with sqlite3.connect(tmp_path / "hub.db") as other:
        assert other.execute("SELECT name FROM agents").fetchone() == ("B",)
    await task


async def test_under_sustained_load_groups_are_committed_on_a_thread(store, tmp_path):
    # Writers that never pause: after a few commits back to back, the commit
    # moves to the committer's thread and the loop goes on meanwhile; every
    # caller still returns only once its own write is on disk. Few writers, so
    # that a turn of the loop (their units, their checks, a commit) stays well
    # within COMMIT_GAP_SECONDS: with 16 a turn took about that long, and the
    # test failed once in some twenty runs.
    other = sqlite3.connect(tmp_path / "hub.db")

    async def writer(n: int) -> None:
        for k in range(100):
            new = agent(n * 100 + k)
            await store.add_agent(new)
            assert other.execute("SELECT 1 FROM agents WHERE id = ?", (new.id,)).fetchone()

    await asyncio.gather(*(writer(n) for n in range(4)))
    assert store._commits_on_thread > 0
    assert len(await store.list_agents()) == 4 * 100
    other.close()


async def test_a_lone_writer_commits_on_the_loop(store):
    for n in range(40):
        await store.add_agent(agent(n))
        await asyncio.sleep(0.002)  # a moderate pace: commits spaced out
    assert store._commits_on_thread == 0


async def test_a_failed_commit_on_the_thread_fails_its_group_and_the_store_goes_on(store, tmp_path):
    doom_the_commit_of_doomed(tmp_path)
    store._pipelined = True  # as under sustained load
    doomed = Agent(name="D", email="doomed@shop.vn", created_at=T0)
    results = await asyncio.gather(
        *(store.add_agent(agent(n)) for n in range(5)),
        store.add_agent(doomed),
        return_exceptions=True,
    )
    assert all(isinstance(r, StoreUnavailable) for r in results), results
    assert store._commits_on_thread == 0
    assert await store.list_agents() == []
    await store.add_agent(agent(9))
    assert [a.email for a in await store.list_agents()] == ["a9@shop.vn"]


async def test_closing_while_a_commit_runs_on_the_thread_waits_for_it(tmp_path):
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    store._pipelined = True
    writes = [asyncio.create_task(store.add_agent(agent(n))) for n in range(6)]
    while store._committing is None:  # the units run; their commit goes to the thread
        await asyncio.sleep(0)
    await store.close()
    await asyncio.gather(*writes)
    with sqlite3.connect(tmp_path / "hub.db") as other:
        assert other.execute("SELECT COUNT(*) FROM agents").fetchone() == (6,)
