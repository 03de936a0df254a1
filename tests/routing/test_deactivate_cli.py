"""`hub agent deactivate`: the agent's open conversations go to colleagues."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hub.clock import SystemClock
from hub.inbox.model import Agent, Contact, Conversation, new_id
from hub.inbox.sqlite import SqliteStore
from tests.hub_process import hub_command

pytestmark = pytest.mark.slow


async def seed(db: Path) -> tuple[str, str, list[str]]:
    store = SqliteStore(db)
    await store.open()
    now = SystemClock().now()
    leaving = Agent(name="Leaving", email="leaving@x.vn", presence="online", created_at=now)
    staying = Agent(name="Staying", email="staying@x.vn", presence="online", created_at=now)
    for agent in (leaving, staying):
        await store.add_agent(agent)
    contact = Contact(name="C", created_at=now, updated_at=now)
    await store.add_contact(contact)
    ids = []
    for status in ("open", "pending", "resolved"):
        conversation = Conversation(
            contact_id=contact.id,
            account_id="shop",
            channel="api",
            contact_address="c",
            status=status,
            assignee_id=leaving.id,
            last_activity_at=now,
            created_at=now,
            updated_at=now,
        )
        await store.add_conversation(conversation)
        ids.append(conversation.id)
    await store.close()
    return leaving.id, staying.id, ids


async def read(db: Path, ids: list[str]) -> tuple[list[str | None], Agent | None]:
    store = SqliteStore(db)
    await store.open()
    try:
        conversations = [await store.get_conversation(c) for c in ids]
        agent = await store.agent_by_email("leaving@x.vn")
        return [c.assignee_id if c else None for c in conversations], agent
    finally:
        await store.close()


def test_deactivating_an_agent_reassigns_their_open_conversations(tmp_path, redis_url):
    config = tmp_path / "hub.toml"
    config.write_text(f'[redis]\nprefix = "test-{new_id()}"\n', encoding="utf-8")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    leaving, staying, ids = asyncio.run(seed(data_dir / "hub.db"))
    result = hub_command(
        "agent",
        "deactivate",
        "--email",
        "leaving@x.vn",
        config=config,
        data_dir=data_dir,
        env={"REDIS_URL": redis_url},
    )
    assert "2 open conversations handed back, 2 reassigned" in result.stdout
    assignees, agent = asyncio.run(read(data_dir / "hub.db", ids))
    # The resolved one keeps its history as it was; the open ones moved on.
    assert assignees == [staying, staying, leaving]
    assert agent is not None and not agent.active and agent.open_count == 0
    unknown = hub_command(
        "agent",
        "deactivate",
        "--email",
        "nobody@x.vn",
        config=config,
        data_dir=data_dir,
        env={"REDIS_URL": redis_url},
        check=False,
    )
    assert unknown.returncode != 0 and "no agent with e-mail nobody@x.vn" in unknown.stderr
