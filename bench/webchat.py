"""Web-chat benchmark: thousands of open widget sockets, one message on each, and
how long each takes to reach a connected agent's socket; compared with a bare
aiohttp relay measured the same way, by the same client, in the same run.

    python bench/webchat.py                         # 5,000 sockets, starts both servers
    python bench/webchat.py --sockets 1000 --rate 200

It starts `hub serve` (embedded SQLite store and Redis, three online agents, one
web-chat account) and a bare relay (this file behind `--bare-server PORT`: it
greets each socket and forwards every visitor message to the agent sockets as
one JSON frame, with no storage), each as its own process. For each target it:

1. opens the agent socket (`GET /api/v1/stream` with an API token on the hub);
2. opens `--sockets` widget sockets (hello → welcome, `--connect-concurrency` at
   a time) and keeps them all open;
3. sends one message on every socket at `--rate` messages per second (an open
   loop: the schedule does not wait for answers), each a first message from a
   new visitor — the hub stores it, creates the contact and conversation,
   assigns an agent and publishes the events;
4. times each message from the moment it is written to the visitor socket until
   its `message.created` event arrives on the agent socket.

It samples the hub's resident memory every 100 ms, checks that hub.db holds
exactly one stored message per socket, and prints as its last line
`sockets=<n> p99_ms=<float> rss_mb=<float>`. Targets: p99 <= 100 ms, <= 400 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import resource
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from processes import (
    MemoryWatch,
    Server,
    child_env,
    cpu_seconds,
    free_port,
    machine_busy_seconds,
    redis_pid_for,
    spawn,
    status_kb,
)

ACCOUNT = "bench"
ORIGIN = "https://shop.example.vn"
SOCKET_PATH = f"/webchat/{ACCOUNT}/socket"
STREAM_PATH = "/api/v1/stream"
TARGETS = {"p99_ms": 100.0, "rss_mb": 400.0}
OTHERS_WARNING = 0.15  # of one core
TEXTS = [
    "Xin chào, cho em hỏi đơn hàng của em đến đâu rồi ạ?",
    "Shop ơi, áo size M còn màu xanh không?",
    "Hello, I was charged twice for order 4471, can you check please?",
    "ok",
]


# -- the bare relay ------------------------------------------------------------------
def run_bare_server(port: int) -> None:
    """The floor: the same socket dance with nothing behind it. A visitor's
    `message` frame goes to every agent socket as one event frame, like the
    hub's `message.created`, and is acknowledged to the visitor."""
    agents: set[web.WebSocketResponse] = set()

    async def visitor(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=25.0)
        await ws.prepare(request)
        async for frame in ws:
            body = json.loads(frame.data)
            if body["type"] == "hello":
                await ws.send_str(json.dumps({"type": "welcome", "token": "t", "messages": []}))
            elif body["type"] == "message":
                event = json.dumps(
                    {
                        "type": "event",
                        "event": "message.created",
                        "data": {
                            "message": {
                                "direction": "inbound",
                                "text": body["text"],
                                "meta": {"client_id": body["client_id"]},
                            }
                        },
                    }
                )
                for agent in list(agents):
                    await agent.send_str(event)
                await ws.send_str(json.dumps({"type": "ack", "client_id": body["client_id"]}))
        return ws

    async def stream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=25.0)
        await ws.prepare(request)
        await ws.send_str(json.dumps({"type": "hello"}))
        agents.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            agents.discard(ws)
        return ws

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get(SOCKET_PATH, visitor)
    app.router.add_get(STREAM_PATH, stream)
    app.router.add_get("/healthz", healthz)
    from hub.process import new_event_loop

    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        print=None,
        access_log=None,
        # The same loop as `hub serve`, as bench/ingest.py's bare endpoint.
        loop=new_event_loop(os.environ.get("HUB_SERVER__EVENT_LOOP", "auto")),  # type: ignore[arg-type]
    )


# -- the servers under test ------------------------------------------------------------
def start_bare(workdir: Path) -> Server:
    port = free_port()
    command = [sys.executable, str(Path(__file__).resolve()), "--bare-server", str(port)]
    server = spawn("bare", command, workdir / "bare.log", f"http://127.0.0.1:{port}", child_env())
    server.wait_healthy()
    return server


def start_hub(workdir: Path, agents: int, profile: Path | None) -> Server:
    """Write a config, add online agents and a token through the CLI, run `hub serve`."""
    data_dir = workdir / "data"
    config = workdir / "hub.toml"
    config.write_text(
        'log_level = "WARNING"\n\n'
        "[[accounts]]\n"
        f'id = "{ACCOUNT}"\n'
        'channel = "webchat"\n'
        f'allowed_origins = ["{ORIGIN}"]\n',
        encoding="utf-8",
    )
    env = child_env()
    where = ["--config", str(config), "--data-dir", str(data_dir)]
    for n in range(1, agents + 1):
        subprocess.run(
            [sys.executable, "-m", "hub", "agent", "add", *where,
             "--email", f"agent{n}@bench.vn", "--name", f"Agent {n}", "--online"],
            env=env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    token = subprocess.run(
        [sys.executable, "-m", "hub", "token", "create", *where, "--agent", "agent1@bench.vn"],
        env=env, check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    port = free_port()
    python = [sys.executable]
    if profile is not None:
        python += ["-m", "cProfile", "-o", str(profile)]
    command = [*python, "-m", "hub", "serve", *where, "--port", str(port)]
    server = spawn("hub", command, workdir / "hub.log", f"http://127.0.0.1:{port}", env)
    server.token = token
    server.data_dir = data_dir
    server.wait_healthy()
    return server


def raise_file_limit(needed: int) -> int:
    """Raise the soft limit on open files (children inherit it) as far as needed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        new = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return int(soft)


# -- one run against one target ------------------------------------------------------------
@dataclass
class Run:
    name: str
    sockets: int = 0
    connect_seconds: float = 0.0
    connect_errors: int = 0
    sent: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    acks: int = 0
    errors: list[str] = field(default_factory=list)
    send_seconds: float = 0.0
    rss_after_connect_kb: int | None = None
    rss_end_kb: int | None = None
    peak_kb: int = 0
    server_cpu_seconds: float = math.nan
    redis_cpu_seconds: float = math.nan
    client_cpu_seconds: float = math.nan
    machine_busy_seconds: float = math.nan
    window_seconds: float = math.nan

    @property
    def others_share(self) -> float:
        """Share of the machine's CPUs used by processes outside this benchmark."""
        ours = sum(
            x
            for x in (self.server_cpu_seconds, self.redis_cpu_seconds, self.client_cpu_seconds)
            if not math.isnan(x)
        )
        return (self.machine_busy_seconds - ours) / (self.window_seconds * (os.cpu_count() or 1))

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return math.nan
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    @property
    def lost(self) -> int:
        return self.sent - len(self.latencies_ms)


class Visitor:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.reader: asyncio.Task[None] | None = None


async def drive(args: argparse.Namespace, server: Server) -> Run:
    run = Run(server.name)
    sent_at: dict[str, float] = {}
    arrived: dict[str, float] = {}
    all_arrived = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        headers = {"Authorization": f"Bearer {server.token}"} if server.token else {}
        agent = await session.ws_connect(server.url + STREAM_PATH, headers=headers)
        hello = await agent.receive_json(timeout=30)
        assert hello["type"] == "hello", hello

        async def read_agent() -> None:
            async for frame in agent:
                now = time.perf_counter()
                if frame.type != aiohttp.WSMsgType.TEXT or '"message.created"' not in frame.data:
                    continue
                body = json.loads(frame.data)
                message = body["data"]["message"]
                client_id = (message.get("meta") or {}).get("client_id")
                if message.get("direction") == "inbound" and client_id in sent_at:
                    if client_id not in arrived:
                        arrived[client_id] = now
                        run.latencies_ms.append((now - sent_at[client_id]) * 1000)
                        if len(arrived) == args.sockets:
                            all_arrived.set()

        agent_reader = asyncio.create_task(read_agent())

        async def read_visitor(visitor: Visitor) -> None:
            async for frame in visitor.ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    continue
                if '"ack"' in frame.data:
                    run.acks += 1
                elif '"error"' in frame.data and len(run.errors) < 20:
                    run.errors.append(frame.data[:200])

        visitors: list[Visitor] = []
        gate = asyncio.Semaphore(args.connect_concurrency)

        async def open_one() -> None:
            async with gate:
                try:
                    ws = await session.ws_connect(
                        server.url + SOCKET_PATH, headers={"Origin": ORIGIN}, autoping=True
                    )
                    await ws.send_str(json.dumps({"type": "hello", "token": None}))
                    welcome = await ws.receive_json(timeout=60)
                    assert welcome["type"] == "welcome", welcome
                except (aiohttp.ClientError, OSError, TimeoutError, AssertionError) as exc:
                    run.connect_errors += 1
                    if len(run.errors) < 20:
                        run.errors.append(f"connect: {type(exc).__name__}: {exc}"[:200])
                    return
                visitor = Visitor(ws)
                visitor.reader = asyncio.create_task(read_visitor(visitor))
                visitors.append(visitor)

        started = time.perf_counter()
        await asyncio.gather(*(open_one() for _ in range(args.sockets)))
        run.connect_seconds = time.perf_counter() - started
        run.sockets = len(visitors)
        if server.pid:
            run.rss_after_connect_kb = status_kb(server.pid, "VmRSS")
        # The client's own garbage collector, walking 5,000 sockets' objects, would
        # pause this loop for tens of ms and be timed as server latency.
        gc.collect()
        gc.freeze()
        await asyncio.sleep(args.settle)

        # The open loop: message i goes out at start + i / rate, whatever happened before.
        redis_pid = redis_pid_for(server.data_dir) if server.data_dir else None
        cpu_before = cpu_seconds(server.pid)
        redis_before = cpu_seconds(redis_pid) if redis_pid else math.nan
        client_before = time.process_time()
        machine_before = machine_busy_seconds()
        window_start = time.perf_counter()
        bodies = []
        for n, _ in enumerate(visitors):
            client_id = f"bench-{secrets.token_hex(6)}-{n}"
            text = TEXTS[n % len(TEXTS)]
            bodies.append(
                (client_id, json.dumps({"type": "message", "client_id": client_id, "text": text}))
            )
        start = time.perf_counter()
        for n, (visitor, (client_id, body)) in enumerate(zip(visitors, bodies, strict=True)):
            delay = start + n / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_at[client_id] = time.perf_counter()
            await visitor.ws.send_str(body)
            run.sent += 1
        run.send_seconds = time.perf_counter() - start
        try:
            await asyncio.wait_for(all_arrived.wait(), timeout=args.drain_timeout)
        except TimeoutError:
            pass
        run.server_cpu_seconds = cpu_seconds(server.pid) - cpu_before
        if redis_pid:
            run.redis_cpu_seconds = cpu_seconds(redis_pid) - redis_before
        run.client_cpu_seconds = time.process_time() - client_before
        run.machine_busy_seconds = machine_busy_seconds() - machine_before
        run.window_seconds = time.perf_counter() - window_start
        if server.pid:
            run.rss_end_kb = status_kb(server.pid, "VmRSS")

        gc.unfreeze()
        await agent.close()
        agent_reader.cancel()
        closing = [v.ws.close() for v in visitors]
        for chunk in range(0, len(closing), 500):
            await asyncio.gather(*closing[chunk : chunk + 500], return_exceptions=True)
        for visitor in visitors:
            if visitor.reader is not None:
                visitor.reader.cancel()
    return run


def stored_messages(data_dir: Path) -> tuple[int, int]:
    """(webchat messages, distinct client ids) read straight from hub.db."""
    db = sqlite3.connect(f"file:{data_dir / 'hub.db'}?mode=ro", uri=True)
    try:
        total = db.execute("SELECT COUNT(*) FROM messages WHERE channel = 'webchat'").fetchone()[0]
        distinct = db.execute(
            "SELECT COUNT(DISTINCT external_id) FROM messages WHERE channel = 'webchat'"
        ).fetchone()[0]
        return int(total), int(distinct)
    finally:
        db.close()


def fmt(value: float | None, width: int, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{'-':>{width}}"
    return f"{value:>{width}.{digits}f}"


def mb(kb: int | None) -> float | None:
    return None if kb is None else kb / 1024


def report(runs: list[Run], args: argparse.Namespace) -> None:
    print(
        "target |  socks  open s  errs |   sent  lost  acks   send s |"
        "  p50 ms  p95 ms  p99 ms  max ms | cpu s: srv redis client other% | RSS open  end  peak MB"
    )
    for r in runs:
        print(
            f"{r.name:<6} | {r.sockets:>6} {fmt(r.connect_seconds, 7)} {r.connect_errors:>5} |"
            f" {r.sent:>6} {r.lost:>5} {r.acks:>5} {fmt(r.send_seconds, 8)} |"
            f" {fmt(r.percentile(50), 7)} {fmt(r.percentile(95), 7)} {fmt(r.percentile(99), 7)}"
            f" {fmt(max(r.latencies_ms) if r.latencies_ms else None, 7)} |"
            f" {fmt(r.server_cpu_seconds, 10)} {fmt(r.redis_cpu_seconds, 5)}"
            f" {fmt(r.client_cpu_seconds, 6)} {fmt(100 * r.others_share, 6, 0)} |"
            f" {fmt(mb(r.rss_after_connect_kb), 8)} {fmt(mb(r.rss_end_kb), 5)}"
            f" {fmt(mb(r.peak_kb), 5)}"
        )
        for error in r.errors[:5]:
            print(f"         {r.name} error: {error}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Widget sockets → agent socket latency of hub against a bare aiohttp relay.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--sockets", type=int, default=5000, help="widget sockets kept open")
    parser.add_argument(
        "--rate", type=float, default=100.0, help="messages per second (one per socket)"
    )
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between open and send")
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--agents", type=int, default=3, help="online agents to assign to")
    parser.add_argument("--skip-bare", action="store_true", help="measure only the hub")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, hub.db)")
    parser.add_argument(
        "--profile", type=Path, help="run the hub under cProfile, writing its stats to this file"
    )
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.bare_server is not None:
        run_bare_server(args.bare_server)
        return 0
    limit = raise_file_limit(args.sockets + 1024)
    if limit < args.sockets + 256:
        raise SystemExit(
            f"open-file limit is {limit}; {args.sockets} sockets need more (raise `ulimit -Hn`)"
        )
    runs: list[Run] = []
    with ExitStack() as stack:
        if args.keep:
            workdir = Path(tempfile.mkdtemp(prefix="hub-bench-webchat-"))
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hub-webchat-")))
        print(
            f"webchat benchmark: {os.cpu_count()} CPUs, {args.sockets} widget sockets, one message"
            f" each at {args.rate:g}/s (open loop), open-file limit {limit}"
            + (f", data in {workdir}" if args.keep else ""),
            flush=True,
        )
        if not args.skip_bare:
            bare = start_bare(workdir)
            with MemoryWatch({"bare": bare.pid or 0}) as watch:
                bare_run = asyncio.run(drive(args, bare))
            bare_run.peak_kb = watch.peak_kb["bare"]
            bare.stop()
            runs.append(bare_run)
        hub = start_hub(workdir, args.agents, args.profile)
        stack.callback(hub.stop)
        with MemoryWatch({"hub": hub.pid or 0}) as watch:
            hub_run = asyncio.run(drive(args, hub))
        hub_run.peak_kb = watch.peak_kb["hub"]
        runs.append(hub_run)
        hub.stop()
        assert hub.data_dir is not None
        total, distinct = stored_messages(hub.data_dir)
    print()
    report(runs, args)
    p99 = hub_run.percentile(99)
    rss = mb(hub_run.peak_kb) or math.nan
    print(
        f"store check: hub.db holds {total} web-chat messages ({distinct} distinct) for"
        f" {hub_run.sent} sent: {'ok' if total == distinct == hub_run.sent else 'MISMATCH'}"
    )
    if not args.skip_bare:
        floor = runs[0].percentile(99)
        print(f"p99: hub {p99:.1f} ms vs bare relay {floor:.1f} ms (+{p99 - floor:.1f} ms)")
    print(
        "(cpu s: CPU seconds from the first send until the last arrival; other%: share of"
        " the machine's CPUs busy with processes outside this benchmark meanwhile)"
    )
    busiest = max(runs, key=lambda r: r.others_share)
    if busiest.others_share * (os.cpu_count() or 1) > OTHERS_WARNING:
        print(
            f"warning: processes outside this benchmark kept"
            f" {busiest.others_share * (os.cpu_count() or 1):.0%} of a core busy during the"
            f" {busiest.name} run; the latency tail reflects that"
        )
    print(
        f"targets: p99 <= {TARGETS['p99_ms']:g} ms:"
        f" {'ok' if p99 <= TARGETS['p99_ms'] else 'MISSED'}; peak RSS <= {TARGETS['rss_mb']:g} MB:"
        f" {'ok' if rss <= TARGETS['rss_mb'] else 'MISSED'}"
    )
    print(f"sockets={hub_run.sockets} p99_ms={p99:.1f} rss_mb={rss:.1f}")
    correct = hub_run.lost == 0 and hub_run.connect_errors == 0 and total == hub_run.sent
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
