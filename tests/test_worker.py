"""The worker: alone in its own process, and the sweeper that finds lost jobs."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import aiohttp
import pytest
from redis.asyncio import Redis

from hub.jobs import DELIVER
from tests.conftest import API_SECRET, eventually
from tests.hub_process import HubProcess, clean_env, hub_command
from tests.peers.api_sender import message, signed


async def test_sweeper_redelivers_a_queued_reply_whose_job_vanished(
    make_settings, start_hub, callback_peer
):
    account = {
        "id": "shop",
        "channel": "api",
        "secret_env": "HUB_TEST_API_SECRET",
        "callback_url": callback_peer.url,
    }
    settings = make_settings(accounts=[account])
    web = await start_hub(settings, with_worker=False)
    body, headers = signed(message("m-1"), API_SECRET)
    answer = await (await web.client.post("/webhooks/api/shop", data=body, headers=headers)).json()
    reply, _ = await web.runtime.inbox.reply(answer["conversation_id"], None, "hello")
    # Redis loses its data (restart without persistence): the job is gone.
    redis = web.runtime.redis
    await redis.delete(web.runtime.jobs.queue_name, f"arq:job:{DELIVER}:{reply.id}")
    assert await web.runtime.jobs.depth() == 0

    worker_hub = await start_hub(settings, with_worker=True)

    async def sent():
        message_now = await worker_hub.runtime.store.get_message(reply.id)
        return message_now.status == "sent"

    await eventually(sent)
    assert callback_peer.received_ids() == [reply.id]


@pytest.mark.slow
async def test_hub_worker_alone_delivers_what_a_web_process_without_worker_queued(
    tmp_path, redis_url, callback_peer
):
    """The deployment shape of docker-compose: `hub serve --no-worker` + `hub worker`
    on a shared Redis."""
    config = tmp_path / "hub.toml"
    prefix = f"test-{tmp_path.name}"
    config.write_text(
        f"""
log_format = "text"
redis_url = "{redis_url}"
[redis]
prefix = "{prefix}"
[[accounts]]
id = "shop"
channel = "api"
secret_env = "SHOP_SECRET"
callback_url = "{callback_peer.url}"
""",
        encoding="utf-8",
    )
    data = tmp_path / "data"
    env = {"SHOP_SECRET": API_SECRET}
    await asyncio.to_thread(
        hub_command,
        "agent",
        "add",
        "--email",
        "an@example.vn",
        "--name",
        "An",
        config=config,
        data_dir=data,
        env=env,
    )
    token = (
        await asyncio.to_thread(
            hub_command,
            "token",
            "create",
            "--agent",
            "an@example.vn",
            config=config,
            data_dir=data,
            env=env,
        )
    ).stdout.strip()
    web = HubProcess(config, data, env)
    await asyncio.to_thread(web.start, "--no-worker")
    worker = subprocess.Popen(
        [sys.executable, "-m", "hub", "worker", "--config", str(config), "--data-dir", str(data)],
        env={**clean_env(), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as session:
            body, headers = signed(message("m-1"), API_SECRET)
            async with session.post(
                f"{web.url}/webhooks/api/shop", data=body, headers=headers
            ) as r:
                conversation_id = (await r.json())["conversation_id"]
            async with session.post(
                f"{web.url}/api/v1/conversations/{conversation_id}/messages",
                json={"text": "from a separate worker"},
                headers={"Authorization": f"Bearer {token}"},
            ) as r:
                reply_id = (await r.json())["id"]

            async def delivered():
                return callback_peer.received_ids() == [reply_id]

            await eventually(delivered, timeout=20)
        # The worker serves no browsers: it does not listen to the bus, so the
        # web process, alone on it, keeps its events off Redis.
        async with Redis.from_url(redis_url) as redis:
            listening = await redis.pubsub_numsub(f"{prefix}:events")
        assert listening == [(f"{prefix}:events".encode(), 1)]
    finally:
        worker.send_signal(subprocess.signal.SIGINT)
        assert worker.wait(20) == 0
        assert await asyncio.to_thread(web.interrupt) == 0, web.log()


async def test_a_wake_up_for_a_moment_already_past_is_queued_to_run_at_once(redis_url):
    """An injected clock or a late call can ask for a moment days ago: the job is
    queued for now (arq would otherwise give it a negative expiry, refused by Redis)."""
    import time
    from datetime import UTC, datetime, timedelta

    from arq.connections import RedisSettings, create_pool

    from hub.inbox.model import new_id
    from hub.jobs import JobQueue

    redis = await create_pool(RedisSettings.from_dsn(redis_url))
    queue = JobQueue(redis, f"test-{new_id()}:queue")
    try:
        assert await queue.enqueue_wake("c1", datetime.now(UTC) - timedelta(days=3))
        [(_, score)] = await redis.zrange(queue.queue_name, 0, -1, withscores=True)
        assert score <= time.time() * 1000 + 1000
    finally:
        await redis.delete(queue.queue_name)
        await redis.aclose()
