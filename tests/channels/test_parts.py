"""A reply sent as several provider messages goes out part by part, each part
once: the helper on its own, and the real `hub serve` killed (kill -9) between
two parts of a long Messenger reply, then started again."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from hub.channels.base import OutboundMessage
from hub.channels.messenger import TEXT_LIMIT
from hub.channels.parts import first_id, send_parts
from hub.channels.text_parts import split_text
from tests.channels.messaging import recorded
from tests.channels.test_messenger import APP_SECRET, PAGE, PATH, TOKEN, VERIFY
from tests.hub_process import HubProcess, hub_command, hub_config
from tests.peers.meta_graph import GraphPeer, post_webhook

ENV = {
    "HUB_TEST_META_SECRET": APP_SECRET,
    "HUB_TEST_META_VERIFY": VERIFY,
    "HUB_TEST_META_TOKEN": TOKEN,
}


def outbound(**fields: object) -> OutboundMessage:
    return OutboundMessage.model_validate(
        {
            "message_id": "msg-1",
            "conversation_id": "conv-1",
            "account_id": "fanpage",
            "to": "6712345678901234",
            "text": "",
            "created_at": datetime(2026, 1, 1, tzinfo=UTC),
            **fields,
        }
    )


class Provider:
    """What the helper sends parts to: records them, names each by its number."""

    def __init__(self) -> None:
        self.got: list[str] = []

    async def send(self, part: str) -> str | None:
        self.got.append(part)
        return f"id-{len(self.got)}" if part != "nameless" else None


async def test_send_parts_resumes_after_the_parts_already_accepted_and_reports_each():
    provider, reported = Provider(), []

    async def accepted(index: int, external_id: str | None) -> None:
        reported.append((index, external_id))

    message = outbound(sent_parts=["earlier-1", None])
    ids = await send_parts(message, ["a", "b", "c", "nameless"], provider.send, accepted)
    assert provider.got == ["c", "nameless"]
    assert reported == [(2, "id-1"), (3, None)]
    assert ids == ["earlier-1", None, "id-1", None]
    assert first_id(ids) == "earlier-1" and first_id([None, "x"]) == "x"


async def test_a_message_of_one_part_reports_nothing_and_a_failed_part_stops_the_rest():
    provider, reported = Provider(), []

    async def accepted(index: int, external_id: str | None) -> None:
        reported.append(index)

    assert await send_parts(outbound(), ["only"], provider.send, accepted) == ["id-1"]
    assert reported == []

    async def refuse(part: str) -> str | None:
        if part == "b":
            raise RuntimeError("provider down")
        return await provider.send(part)

    with pytest.raises(RuntimeError):
        await send_parts(outbound(), ["a", "b", "c"], refuse, accepted)
    assert provider.got == ["only", "a"] and reported == [0]


async def test_more_parts_recorded_than_the_message_has_sends_nothing_more():
    provider = Provider()

    async def accepted(index: int, external_id: str | None) -> None:
        raise AssertionError("nothing is sent, so nothing is reported")

    message = outbound(sent_parts=["p1", "p2", "p3"])
    assert await send_parts(message, ["a", "b"], provider.send, accepted) == ["p1", "p2", "p3"]
    assert provider.got == []


# -- kill -9 between two parts --------------------------------------------------


def write_config(tmp_path: Path, graph_url: str) -> Path:
    return hub_config(
        tmp_path,
        f"""[[accounts]]
id = "fanpage"
channel = "messenger"
page_id = "{PAGE}"
app_secret_env = "HUB_TEST_META_SECRET"
verify_token_env = "HUB_TEST_META_VERIFY"
access_token_env = "HUB_TEST_META_TOKEN"
graph_url = "{graph_url}"
""",
        send_timeout=2,
    )


def agent_token(config: Path, data: Path) -> str:
    hub_command(
        "agent", "add", "--email", "an@example.vn", "--name", "An",
        config=config, data_dir=data, env=ENV,
    )  # fmt: skip
    return hub_command(
        "token", "create", "--agent", "an@example.vn", config=config, data_dir=data, env=ENV
    ).stdout.strip()


def customer_writes_now() -> bytes:
    """The recorded Messenger text, as if the customer wrote just now (the reply
    window is read against the real clock in a real process)."""
    webhook = json.loads(recorded("messenger", "text.json"))
    now = int(time.time() * 1000)
    webhook["entry"][0]["time"] = now
    webhook["entry"][0]["messaging"][0]["timestamp"] = now
    return json.dumps(webhook).encode()


def stored_reply(data: Path, message_id: str) -> tuple[str, list[str | None], str | None]:
    """(status, sent_parts, external_id) of the reply, read as another process."""
    with sqlite3.connect(data / "hub.db", timeout=5) as db:
        row = db.execute(
            "SELECT status, sent_parts, external_id FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
    return row[0], json.loads(row[1]), row[2]


async def until(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s")
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_a_reply_cut_by_kill_9_between_two_parts_sends_each_part_once(tmp_path):
    graph = GraphPeer(TOKEN)
    # Part 2 reaches Meta and hangs there; the hub is killed before Meta takes it.
    graph.hold_at[2] = held = asyncio.Event()
    await graph.start()
    config = write_config(tmp_path, graph.url)
    data = tmp_path / "data"
    token = await asyncio.to_thread(agent_token, config, data)
    text = ("Dạ, shop gửi anh thông tin chi tiết. " * 55).strip() + "\n\n" + "Cảm ơn anh ạ."
    parts = split_text(text, TEXT_LIMIT)
    assert len(parts) == 2
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            first = await asyncio.to_thread(HubProcess(config, data, ENV).start)
            try:
                answer = await post_webhook(
                    session, first.url + PATH, customer_writes_now(), APP_SECRET
                )
                assert answer.status == 200, await answer.text()
                async with session.get(f"{first.url}/api/v1/conversations", headers=headers) as r:
                    [conversation] = (await r.json())["items"]
                async with session.post(
                    f"{first.url}/api/v1/conversations/{conversation['id']}/messages",
                    json={"text": text},
                    headers=headers,
                ) as r:
                    assert r.status == 202, await r.text()
                    reply_id = (await r.json())["id"]
                await asyncio.wait_for(graph.holding.wait(), 30)
                assert stored_reply(data, reply_id)[:2] == ("queued", ["m_sent0001"])
            finally:
                await asyncio.to_thread(first.kill)
            held.set()  # the hub is gone: Meta never takes the held part

            second = await asyncio.to_thread(HubProcess(config, data, ENV).start)
            try:
                await until(lambda: stored_reply(data, reply_id)[0] == "sent")
            finally:
                assert await asyncio.to_thread(second.interrupt) == 0, second.log()
    finally:
        await graph.stop()
    # The customer got each part once, in order; part 1 was not sent again.
    assert [r.body["message"]["text"] for r in graph.requests] == parts
    assert stored_reply(data, reply_id) == ("sent", ["m_sent0001", "m_sent0002"], "m_sent0001")
