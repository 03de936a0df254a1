"""The embedded store's work on threads (a WAL checkpoint, waiting for another
process's write lock) never outlives its caller: a caller cancelled meanwhile
(the store closing, a request given up) interrupts it and waits until the
thread has let go of the connection. A connection closed, or used, while a
thread is inside it crashes the whole process (seen: a segfault in the suite,
the store closed during its checkpoint)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.inbox import sqlite as sqlite_store
from hub.inbox.model import Agent
from hub.inbox.sqlite import SqliteStore

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def wal_sequence(wal: Path) -> int:
    """The WAL header's checkpoint sequence number: one more each time it starts over."""
    return int.from_bytes(wal.read_bytes()[12:16], "big")


def agent(n: int) -> Agent:
    return Agent(name="Nhân viên " * 40, email=f"a{n}@shop.vn", created_at=T0)


async def test_closing_the_store_while_its_checkpoint_runs(tmp_path, monkeypatch):
    # A checkpoint every millisecond, over a WAL of a few megabytes, so that
    # close() lands while one is running on its thread (it did 2 runs in 3).
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY_SECONDS", 0.001)
    for round_ in range(30):
        store = SqliteStore(tmp_path / f"hub{round_}.db")
        await store.open()
        async with store.transaction():
            for n in range(3000):
                await store.add_agent(agent(n))
        await asyncio.sleep(0.003 + (round_ % 5) * 0.002)
        await store.close()
        with sqlite3.connect(tmp_path / f"hub{round_}.db") as check:
            assert check.execute("SELECT COUNT(*) FROM agents").fetchone() == (3000,)


async def test_a_write_given_up_while_another_process_holds_the_lock_leaves_no_transaction(
    tmp_path,
):
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    other = sqlite3.connect(tmp_path / "hub.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process writes
        waiting = asyncio.create_task(store.add_agent(agent(1)))
        await asyncio.sleep(0.2)  # the store waits for the lock on a thread
        waiting.cancel()
        await asyncio.wait({waiting})
        other.execute("ROLLBACK")  # the lock is free again
        await asyncio.sleep(0.2)
        # Had the waiting thread gone on and taken the lock, the store would hold
        # a transaction nobody commits, and refuse every write from here on.
        await store.add_agent(agent(2))
        assert [a.email for a in await store.list_agents()] == ["a2@shop.vn"]
    finally:
        other.close()
        await store.close()


async def test_the_wal_starts_over_while_writes_never_pause(tmp_path, monkeypatch):
    # A checkpoint on its thread never catches up with writers that never pause,
    # and SQLite starts the WAL over only once one has: without the restart
    # under the write lock, the WAL grew by every page written (thousands of
    # frames here; 640-800 MB in a 30-second benchmark).
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY_SECONDS", 0.02)
    monkeypatch.setattr(sqlite_store, "WAL_RESTART_FRAMES", 200)
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    wal = tmp_path / "hub.db-wal"
    written = largest = 0
    try:
        loop = asyncio.get_running_loop()
        until = loop.time() + 2.5
        while loop.time() < until:
            await asyncio.gather(*(store.add_agent(agent(written + n)) for n in range(10)))
            written += 10
            largest = max(largest, wal.stat().st_size)
    finally:
        await store.close()
    frames = largest // (4096 + 24)
    with sqlite3.connect(tmp_path / "hub.db") as check:
        assert check.execute("SELECT COUNT(*) FROM agents").fetchone() == (written,)
    # About one frame an agent when the WAL only grows (32,500 for 35,400).
    assert written > 3000
    assert frames < max(written // 10, 1000), (
        f"{frames} frames in the WAL at its largest, {written} agents"
    )


@pytest.mark.parametrize("restart_frames", [50, sqlite_store.WAL_RESTART_FRAMES])
async def test_the_wal_starts_over_on_the_checkpointers_thread_not_in_the_next_commit(
    tmp_path, monkeypatch, restart_frames
):
    # The write that starts a WAL over syncs its header. Left to the store's next
    # commit (after a burst of writes; or after the restart past
    # WAL_RESTART_FRAMES), that fsync ran on the event loop; the checkpointer
    # now makes that write itself, on its thread, so the WAL has started over
    # before the store writes again.
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY_SECONDS", 0.02)
    monkeypatch.setattr(sqlite_store, "WAL_RESTART_FRAMES", restart_frames)
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    try:
        for n in range(300):
            await store.add_agent(agent(n))
        started = wal_sequence(tmp_path / "hub.db-wal")
        await asyncio.sleep(0.3)  # rounds of the checkpointer; the store writes nothing
        assert wal_sequence(tmp_path / "hub.db-wal") > started  # started over
        with sqlite3.connect(tmp_path / "hub.db") as check:
            busy, frames, _ = check.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            assert (busy, frames) == (0, 1)  # the one write that started it over
            assert check.execute("SELECT COUNT(*) FROM agents").fetchone() == (300,)
        await store.add_agent(agent(300))  # and the store writes on, in the new WAL
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "hub.db") as check:
        assert check.execute("SELECT COUNT(*) FROM agents").fetchone() == (301,)
        assert check.execute("PRAGMA user_version").fetchone()[0] == len(sqlite_store.MIGRATIONS)


async def test_steady_writes_are_not_held_for_a_start_over_every_round(
    tmp_path, monkeypatch, caplog
):
    # A start-over by the checkpointer holds writes. Under steady writes a
    # round's checkpoint usually copies back every frame it saw, and the store
    # took that as "writes paused" and started over every round (every second
    # at 1,640 webhooks a second, holding writes 6-27 ms each time). It now
    # does once writes pause, or past WAL_RESTART_FRAMES. (Meanwhile SQLite
    # may start the WAL over itself, in a commit that finds every frame copied
    # back: one fsync, no hold.)
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY_SECONDS", 0.02)
    caplog.set_level(logging.DEBUG, logger="hub.inbox.sqlite")
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()

    def held() -> int:
        return sum(r.msg.startswith("WAL copied") for r in caplog.records)

    try:
        loop = asyncio.get_running_loop()
        until, n = loop.time() + 0.6, 0
        while loop.time() < until:  # ~30 rounds of the checkpointer
            await store.add_agent(agent(n))
            n += 1
            await asyncio.sleep(0.002)
        assert held() == 0
        await asyncio.sleep(0.2)  # writes paused
        assert held() == 1
    finally:
        await store.close()


async def test_the_wal_start_over_holds_writes_for_a_few_frames_only(tmp_path, monkeypatch, caplog):
    # Past WAL_RESTART_FRAMES, the checkpointer catches up without the write
    # lock before it takes it, so the frames it copies with writes held are
    # those of its last pass, not of its whole round.
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY_SECONDS", 0.05)
    monkeypatch.setattr(sqlite_store, "WAL_RESTART_FRAMES", 300)
    monkeypatch.setattr(sqlite_store, "RESTART_LOCKED_FRAMES", 4)
    monkeypatch.setattr(sqlite_store, "RESTART_PASSES", 20)
    caplog.set_level(logging.DEBUG, logger="hub.inbox.sqlite")
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    try:
        loop = asyncio.get_running_loop()
        until, n = loop.time() + 1.5, 0
        while loop.time() < until:
            await asyncio.gather(*(store.add_agent(agent(n + k)) for k in range(20)))
            n += 20
    finally:
        await store.close()
    held = [r.frames_with_writes_held for r in caplog.records if r.msg.startswith("WAL copied")]
    assert len(held) >= 3
    # Each round writes hundreds of frames; copied under the lock, all of them.
    assert sorted(held)[len(held) // 2] <= 40, held
