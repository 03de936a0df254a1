"""Ingest benchmark: how fast hub takes in signed API-channel webhooks, compared
with a bare aiohttp endpoint on the same machine, measured the same way.

    python bench/ingest.py                      # starts both servers itself
    python bench/ingest.py --levels 1,8,32 --duration 10
    python bench/ingest.py --url http://127.0.0.1:8080 --pid 1234 --data-dir hub-data

It starts `hub serve` (embedded SQLite store and Redis, three online agents) and a
bare endpoint (this file behind `--bare-server PORT`: read the body, answer 200),
each as its own process, then for every concurrency level runs a closed loop of N
workers against each. After the levels it offers the hub an open-loop (fixed
arrival rate) load at half its peak throughput: that latency is the one the
"p99 <= 25 ms at half of peak load" target is about. It samples the hub's
resident memory every 100 ms, checks that hub.db holds exactly the messages the
hub said it accepted, and prints `ingest_ratio=<hub peak / bare peak>` last.

Bodies are built and signed before each phase, so the timed loop only sends.
Senders are a realistic mix: most messages come from a pool of `--senders`
known customers (their conversation exists: continue it), `--new-share` of them
from first-time customers (new contact, new conversation, round-robin assignment).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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
    machine_steal_seconds,
    redis_pid_for,
    spawn,
    status_kb,
)

ACCOUNT = "bench"
SECRET_ENV = "HUB_BENCH_SECRET"
WEBHOOK_PATH = f"/webhooks/api/{ACCOUNT}"
TARGETS = {"ratio": 0.25, "p99_ms": 25.0, "rss_mb": 200.0}
OTHERS_CPU_WARNING = 15.0  # % of one core used by processes not ours during a phase

TEXTS = [
    "Xin chào, cho em hỏi đơn hàng của em đến đâu rồi ạ?",
    "Shop ơi, áo size M còn màu xanh không?",
    "Mình muốn đổi địa chỉ giao hàng sang 12 Nguyễn Huệ, Quận 1.",
    "Cảm ơn shop, em nhận được hàng rồi nhé.",
    "Hello, I was charged twice for order 4471, can you check please?",
    "Bao giờ thì có chương trình khuyến mãi tiếp theo vậy ạ? Em muốn mua thêm hai "
    "bộ nữa cho gia đình nhưng đang chờ giảm giá.",
    "ok",
    "Cho mình xin hoá đơn VAT cho đơn hàng tháng trước, thông tin công ty mình gửi "
    "kèm: Công ty TNHH ABC, MST 0312345678, địa chỉ 45 Lê Lợi, Quận 1, TP.HCM.",
]


# -- the bare endpoint ---------------------------------------------------------
def run_bare_server(port: int) -> None:
    """The floor: an aiohttp server that reads the body and answers 200, set up
    like `hub serve` (one process, the same event loop, no access log)."""
    from hub.process import new_event_loop

    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "accepted"})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=1_048_576)
    app.router.add_post(WEBHOOK_PATH, accept)
    app.router.add_get("/healthz", healthz)
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        print=None,
        access_log=None,
        loop=new_event_loop(os.environ.get("HUB_SERVER__EVENT_LOOP", "auto")),  # type: ignore[arg-type]
    )


# -- the servers under test ----------------------------------------------------
def start_bare(workdir: Path) -> Server:
    port = free_port()
    server = spawn(
        "bare endpoint",
        [sys.executable, str(Path(__file__).resolve()), "--bare-server", str(port)],
        workdir / "bare.log",
        f"http://127.0.0.1:{port}",
        child_env(),
    )
    server.wait_healthy()
    return server


def start_hub(workdir: Path, secret: str, agents: int, profile: Path | None) -> Server:
    """Write a config, add online agents through the CLI, run `hub serve`."""
    data_dir = workdir / "data"
    config = workdir / "hub.toml"
    config.write_text(
        'log_level = "WARNING"\n\n'
        "[[accounts]]\n"
        f'id = "{ACCOUNT}"\n'
        'channel = "api"\n'
        f'secret_env = "{SECRET_ENV}"\n',
        encoding="utf-8",
    )
    env = child_env(**{SECRET_ENV: secret})
    where = ["--config", str(config), "--data-dir", str(data_dir)]
    for n in range(1, agents + 1):
        subprocess.run(
            [sys.executable, "-m", "hub", "agent", "add", *where,
             "--email", f"agent{n}@bench.vn", "--name", f"Agent {n}", "--online"],
            env=env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    port = free_port()
    python = [sys.executable]
    if profile is not None:
        python += ["-m", "cProfile", "-o", str(profile)]
    server = spawn(
        "hub",
        [*python, "-m", "hub", "serve", *where, "--port", str(port)],
        workdir / "hub.log",
        f"http://127.0.0.1:{port}",
        env,
    )
    server.wait_healthy()
    return server


# -- the workload ----------------------------------------------------------------
Request = tuple[bytes, dict[str, str]]


class Workload:
    """Signed webhook bodies, each with a unique external_id, from a mix of known
    customers (`senders`) and first-time ones (`new_share`)."""

    def __init__(self, secret: str, senders: int, new_share: float, seed: int) -> None:
        # Imported here, not at the top: the bare endpoint runs this file too and
        # must not carry hub's imports in its memory figure.
        from hub.channels.api import SIGNATURE_HEADER, sign

        self.sign = sign
        self.header = SIGNATURE_HEADER
        self.secret = secret
        self.senders = senders
        self.new_share = new_share
        self.random = random.Random(seed)
        self.run_id = secrets.token_hex(4)
        # New customers' phone numbers differ from run to run, so a second run on
        # the same hub does not find last run's "new" customers by their phone.
        self.phones = random.Random(self.run_id)
        self.sequence = 0

    def _customer(self, key: str, number: int) -> dict[str, str]:
        customer = {"id": key, "name": f"Khách hàng {number}", "phone": f"09{number:08d}"}
        if number % 3 == 0:
            customer["email"] = f"Khach.Hang{number}@Example.VN"
        return customer

    def _signed(self, customer: dict[str, str]) -> Request:
        self.sequence += 1
        payload = {
            "external_id": f"bench-{self.run_id}-{self.sequence}",
            "from": customer,
            "text": self.random.choice(TEXTS),
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        return body, {"Content-Type": "application/json", self.header: self.sign(self.secret, body)}

    def first_messages(self) -> list[Request]:
        """One message from each known customer: creates their contact and conversation."""
        return [self._signed(self._customer(f"cust-{n}", n)) for n in range(self.senders)]

    def next(self) -> Request:
        if self.senders == 0 or self.random.random() < self.new_share:
            number = self.phones.randrange(10**7, 10**8)  # never a known customer's
            return self._signed(self._customer(f"new-{self.run_id}-{self.sequence}", number))
        n = self.random.randrange(self.senders)
        return self._signed(self._customer(f"cust-{n}", n))


class Feed:
    """Pre-signed requests for one target. The hub's are used once each (unique
    external ids); the bare endpoint's are recycled, since it stores nothing."""

    def __init__(self, workload: Workload, *, recycle: bool) -> None:
        self.workload = workload
        self.recycle = recycle
        self.ready: deque[Request] = deque()
        self.signed_late = 0

    def refill(self, count: int) -> None:
        if self.recycle and self.ready:
            return
        while len(self.ready) < count:
            self.ready.append(self.workload.next())

    def take(self) -> Request:
        if not self.ready:
            self.signed_late += 1
            return self.workload.next()
        request = self.ready.popleft()
        if self.recycle:
            self.ready.append(request)
        return request


# -- measuring -------------------------------------------------------------------
@dataclass
class Outcomes:
    """Every answer a target gave during the run, timed or not."""

    accepted: int = 0
    duplicates: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def record(self, status: int, answer: bytes, *, expect: str = "accepted") -> bool:
        if status == 200 and b'"accepted"' in answer:
            self.accepted += 1
            return expect == "accepted"
        if status == 200 and b'"duplicate"' in answer:
            self.duplicates += 1
            return expect == "duplicate"
        reason = answer.decode(errors="replace").strip()[:160]
        self.errors[f"{status or 'no answer'}: {reason}"] += 1
        return False


@dataclass
class Phase:
    completed: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu: float = math.nan
    client_cpu: float = math.nan
    redis_cpu: float = math.nan
    others_cpu: float = math.nan
    steal_cpu: float = math.nan
    max_in_flight: int = 0

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    def percentile_ms(self, p: float) -> float:
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000


class CpuMeter:
    """CPU used between start() and stop() by the server under load, its redis, this
    client, and by processes that are not ours: on a shared machine they disturb
    every figure, so the report says when they were busy."""

    def __init__(self, server_pid: int | None, redis_pid: int | None, ours: list[int]) -> None:
        """`ours`: every process this run started or measures (both servers, redis)."""
        self.pids: dict[str, int | None] = {"server": server_pid, "redis": redis_pid}
        self.pids.update({f"idle-{p}": p for p in ours if p not in (server_pid, redis_pid)})
        self._start: dict[str, float] = {}
        self._at = 0.0

    def _read(self) -> dict[str, float]:
        figures = {k: cpu_seconds(p) if p else math.nan for k, p in self.pids.items()}
        figures["client"] = cpu_seconds(None)
        figures["machine"] = machine_busy_seconds()
        figures["steal"] = machine_steal_seconds()
        return figures

    def start(self) -> None:
        self._at = time.perf_counter()
        self._start = self._read()

    def stop(self, phase: Phase) -> None:
        wall = time.perf_counter() - self._at
        end = self._read()
        share = {k: 100 * (end[k] - self._start[k]) / wall for k in end}
        phase.server_cpu, phase.redis_cpu, phase.client_cpu = (
            share["server"],
            share["redis"],
            share["client"],
        )
        ours = sum(
            v for k, v in share.items() if k not in ("machine", "steal") and not math.isnan(v)
        )
        phase.others_cpu = max(0.0, share["machine"] - ours)
        phase.steal_cpu = share["steal"]


async def post(session: aiohttp.ClientSession, url: str, request: Request) -> tuple[int, bytes]:
    body, headers = request
    try:
        async with session.post(url, data=body, headers=headers) as response:
            return response.status, await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return 0, f"{type(exc).__name__}: {exc}".encode()


async def closed_loop(
    session: aiohttp.ClientSession,
    url: str,
    feed: Feed,
    outcomes: Outcomes,
    meter: CpuMeter,
    *,
    concurrency: int,
    warmup: float,
    duration: float,
) -> Phase:
    """N workers, each sending its next request as soon as the last one is answered.
    Throughput and latency count requests answered inside the window after warm-up."""
    phase = Phase(seconds=duration)
    begin = time.perf_counter()
    window_start, window_end = begin + warmup, begin + warmup + duration

    async def worker() -> None:
        while time.perf_counter() < window_end:
            request = feed.take()
            sent = time.perf_counter()
            status, answer = await post(session, url, request)
            done = time.perf_counter()
            good = outcomes.record(status, answer)
            if window_start <= done < window_end:
                if good:
                    phase.completed += 1
                    phase.latencies.append(done - sent)
                else:
                    phase.errors += 1

    async def cpu_window() -> None:
        await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
        meter.start()
        await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
        meter.stop(phase)

    await asyncio.gather(cpu_window(), *(worker() for _ in range(concurrency)))
    return phase


async def open_loop(
    session: aiohttp.ClientSession,
    url: str,
    feed: Feed,
    outcomes: Outcomes,
    meter: CpuMeter,
    *,
    rate: float,
    warmup: float,
    duration: float,
) -> Phase:
    """Requests at a fixed arrival rate whatever the answers do. Latency runs from
    the moment a request was due, so a stalled server (or client) is not hidden;
    the achieved rate counts answers to requests due inside the window."""
    phase = Phase(seconds=duration)
    interval = 1.0 / rate
    total = int(rate * (warmup + duration))
    begin = time.perf_counter() + 0.01
    window_start, window_end = begin + warmup, begin + warmup + duration
    in_flight: set[asyncio.Task[None]] = set()

    async def one(due: float, request: Request) -> None:
        status, answer = await post(session, url, request)
        done = time.perf_counter()
        good = outcomes.record(status, answer)
        if window_start <= due < window_end:
            if good:
                phase.completed += 1
                phase.latencies.append(done - due)
            else:
                phase.errors += 1

    measuring = False
    sent = 0
    while sent < total:
        now = time.perf_counter()
        if not measuring and now >= window_start:
            measuring = True
            meter.start()
        due = begin + sent * interval
        if due > now:
            await asyncio.sleep(due - now)
            continue
        while sent < total and begin + sent * interval <= now:
            task = asyncio.create_task(one(begin + sent * interval, feed.take()))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            sent += 1
        phase.max_in_flight = max(phase.max_in_flight, len(in_flight))
    await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
    meter.stop(phase)
    if in_flight:
        await asyncio.gather(*in_flight)
    return phase


async def send_all(
    session: aiohttp.ClientSession,
    url: str,
    requests: list[Request],
    outcomes: Outcomes,
    *,
    concurrency: int,
    expect: str = "accepted",
) -> int:
    """Send each request once (not timed); returns how many got the expected answer."""
    queue = iter(requests)
    good = 0

    async def worker() -> None:
        nonlocal good
        for request in queue:
            status, answer = await post(session, url, request)
            good += outcomes.record(status, answer, expect=expect)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return good


# -- the run ---------------------------------------------------------------------
@dataclass
class Target:
    name: str
    url: str
    pid: int | None
    redis_pid: int | None
    feed: Feed
    outcomes: Outcomes = field(default_factory=Outcomes)
    phases: dict[int, Phase] = field(default_factory=dict)

    @property
    def peak(self) -> Phase:
        return max(self.phases.values(), key=lambda p: p.rate)


@dataclass
class Results:
    bare: Target
    hub: Target
    primed: int = 0
    half_load: Phase | None = None
    half_load_bare: Phase | None = None
    half_rate: float = 0.0
    resent_duplicates: int = 0
    resent: int = 0


def fmt(value: float, width: int, digits: int = 0) -> str:
    return f"{'-':>{width}}" if math.isnan(value) else f"{value:>{width}.{digits}f}"


TABLE_HEAD = (
    "        |               bare endpoint                |"
    "          hub: full ingest path              |\n"
    "  level |  msgs/s  p50 ms  p99 ms  err  srv%  cli% |"
    "  msgs/s  p50 ms  p99 ms  err  srv%  cli% |  ratio"
)


def table_row(level: int, bare: Phase, hub: Phase) -> str:
    def part(p: Phase) -> str:
        return (
            f"{fmt(p.rate, 8)} {fmt(p.percentile_ms(50), 7, 2)} {fmt(p.percentile_ms(99), 7, 2)}"
            f" {p.errors:>4} {fmt(p.server_cpu, 5)} {fmt(p.client_cpu, 5)}"
        )

    ratio = hub.rate / bare.rate if bare.rate else math.nan
    return f"  {level:>5} |{part(bare)} |{part(hub)} | {fmt(ratio, 6, 3)}"


def quiet_collector() -> None:
    """Keep this client's garbage collector out of the figures: the signed
    bodies of a phase (tens of thousands of objects) go to the permanent
    generation, so a full collection during the phase does not walk them. A
    walk took 20-70 ms, stalled the sends, and was measured as the hub's
    latency (the half-load p99 above all)."""
    gc.collect()
    gc.freeze()


async def drive(args: argparse.Namespace, bare: Target, hub: Target, workload: Workload) -> Results:
    results = Results(bare, hub)
    ours = [p for p in (bare.pid, hub.pid, hub.redis_pid) if p]
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # Known customers write once before timing starts, so the timed mix is
        # "mostly continuing conversations" from the first level on.
        first = workload.first_messages()
        results.primed = await send_all(session, hub.url, first, hub.outcomes, concurrency=16)
        bare.feed.refill(2000)

        print(TABLE_HEAD, flush=True)
        for level in args.levels:
            for target in (bare, hub):
                best = max((p.rate for p in target.phases.values()), default=0.0)
                target.feed.refill(int((args.warmup + args.duration) * max(2000, 3 * best)))
                quiet_collector()
                meter = CpuMeter(target.pid, target.redis_pid, ours)
                target.phases[level] = await closed_loop(
                    session, target.url, target.feed, target.outcomes, meter,
                    concurrency=level, warmup=args.warmup, duration=args.duration,
                )  # fmt: skip
            print(table_row(level, bare.phases[level], hub.phases[level]), flush=True)

        results.half_rate = args.half_rate or hub.peak.rate / 2
        if results.half_rate >= 1:
            for target in (hub, bare):
                target.feed.refill(int(results.half_rate * (args.warmup + args.open_duration)) + 10)
                quiet_collector()
                meter = CpuMeter(target.pid, target.redis_pid, ours)
                phase = await open_loop(
                    session, target.url, target.feed, target.outcomes, meter,
                    rate=results.half_rate, warmup=args.warmup, duration=args.open_duration,
                )  # fmt: skip
                if target is hub:
                    results.half_load = phase
                else:
                    results.half_load_bare = phase

        # A provider retrying: the same bodies again must be answered "duplicate".
        again = first[: min(50, len(first))]
        results.resent = len(again)
        results.resent_duplicates = await send_all(
            session, hub.url, again, hub.outcomes, concurrency=4, expect="duplicate"
        )
    return results


@dataclass
class StoreCheck:
    messages: int
    from_run: int
    contacts: int
    conversations: int
    unassigned: int


def count_store(db: Path, run_id: str) -> StoreCheck:
    """Counts read straight from hub.db (read-only; WAL lets us beside the hub)."""
    with contextlib_closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:

        def one(sql: str, *params: str) -> int:
            return int(conn.execute(sql, params).fetchone()[0])

        return StoreCheck(
            messages=one("SELECT COUNT(*) FROM messages"),
            from_run=one(
                "SELECT COUNT(*) FROM messages WHERE external_id LIKE ?", f"bench-{run_id}-%"
            ),
            contacts=one("SELECT COUNT(*) FROM contacts"),
            conversations=one("SELECT COUNT(*) FROM conversations"),
            unassigned=one("SELECT COUNT(*) FROM conversations WHERE assignee_id IS NULL"),
        )


@contextmanager
def contextlib_closing(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:
        yield conn
    finally:
        conn.close()


def cpu_per_message(phase: Phase) -> str:
    """Server CPU (all its threads) per message: the figure that optimisations move."""
    if not phase.rate or math.isnan(phase.server_cpu):
        return "cpu/msg -"
    text = f"{phase.server_cpu * 10 / phase.rate:.2f} ms cpu/msg"
    if not math.isnan(phase.redis_cpu):
        text += f" + {phase.redis_cpu * 10 / phase.rate:.2f} in redis"
    return text


def cost_at_half(half: Phase, peak: Phase) -> float:
    """How many times its CPU a message at the peak a message costs at the half-load
    rate (nan when either was not measured)."""
    if not half.rate or not peak.rate or not peak.server_cpu:
        return math.nan
    return (half.server_cpu / half.rate) / (peak.server_cpu / peak.rate)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def mb(kb: int | None) -> str:
    return "-" if not kb else f"{kb / 1024:.1f} MB"


def report(
    results: Results,
    args: argparse.Namespace,
    peak_kb: dict[str, int],
    hwm_kb: int | None,
    store: StoreCheck | None,
) -> tuple[str, bool]:
    """The lines after the table; returns them and whether the run was correct."""
    lines: list[str] = []
    correct = True
    bare, hub = results.bare, results.hub
    for target in (bare, hub):
        if target.outcomes.errors:
            correct = False
            lines.append(f"errors from the {target.name} (status: answer):")
            lines += [
                f"  {n:>6} x {reason}" for reason, n in target.outcomes.errors.most_common(10)
            ]
        if target.feed.signed_late:
            lines.append(
                f"note: {target.feed.signed_late} {target.name} bodies were signed during timing"
            )
    phases = [
        (f"{target.name} {label}", phase)
        for target in (bare, hub)
        for label, phase in [
            *((f"level {level}", p) for level, p in target.phases.items()),
            ("half load", results.half_load if target is hub else results.half_load_bare),
        ]
        if phase is not None
    ]
    limit = f"{OTHERS_CPU_WARNING:g}%"
    for figure, who, consequence in (
        ("others_cpu", "processes outside this benchmark used up to {}% CPU",
         "the machine was shared, rerun on a quiet one before trusting the figures"),
        ("steal_cpu", "the hypervisor gave up to {}% of a core to other machines ('steal')",
         "the host was shared, and the figures are slower than the code"),
    ):  # fmt: skip
        above = [(getattr(p, figure), where) for where, p in phases]
        above = [(share, where) for share, where in above if share > OTHERS_CPU_WARNING]
        if above:
            worst, where = max(above)
            lines.append(
                f"warning: {who.format(f'{worst:.0f}')} ({where});"
                f" {len(above)} phase(s) above {limit}: {consequence}"
            )
    hub_peak, bare_peak = hub.peak, bare.peak
    ratio = hub_peak.rate / bare_peak.rate if bare_peak.rate else 0.0
    hub_level = next(level for level, p in hub.phases.items() if p is hub_peak)
    bare_level = next(level for level, p in bare.phases.items() if p is bare_peak)
    lines.append(
        f"peak: hub {hub_peak.rate:.0f} msgs/s (level {hub_level}, {cpu_per_message(hub_peak)}),"
        f" bare {bare_peak.rate:.0f} msgs/s (level {bare_level}, {cpu_per_message(bare_peak)});"
        f" ratio {ratio:.3f} [target >= {TARGETS['ratio']}: {verdict(ratio >= TARGETS['ratio'])}]"
    )

    half = results.half_load
    if half is None:
        lines.append("half load: skipped (hub peak below 2 msgs/s)")
    else:
        p99 = half.percentile_ms(99)
        floor = results.half_load_bare
        lines.append(
            f"half load (open loop at {results.half_rate:.0f} msgs/s"
            + (" (--half-rate), " if args.half_rate else " = 50% of hub peak, ")
            + f"{args.open_duration:g} s): hub p50 {half.percentile_ms(50):.2f} ms,"
            f" p99 {p99:.2f} ms"
            f" [target <= {TARGETS['p99_ms']:g} ms: {verdict(p99 <= TARGETS['p99_ms'])}],"
            f" achieved {half.rate:.0f} msgs/s, {half.errors} errors,"
            f" at most {half.max_in_flight} in flight, hub cpu {half.server_cpu:.0f}%"
            f" ({cpu_per_message(half)})"
            + (
                f"; bare at the same rate: p50 {floor.percentile_ms(50):.2f} ms,"
                f" p99 {floor.percentile_ms(99):.2f} ms, cpu {floor.server_cpu:.0f}%"
                f" ({cpu_per_message(floor)})"
                if floor is not None
                else ""
            )
        )
        correct = correct and half.errors == 0
        hub_times = cost_at_half(half, results.hub.peak)
        if not math.isnan(hub_times):
            bare_times = cost_at_half(floor, results.bare.peak) if floor is not None else math.nan
            lines.append(
                f"lone-request cost: a message at the half-load rate costs {hub_times:.1f}x"
                f" its CPU at hub's peak"
                + (
                    f" (the bare endpoint's: {bare_times:.1f}x its peak's)"
                    if not math.isnan(bare_times)
                    else ""
                )
                + f"; at 1x hub would run ~{half.server_cpu / hub_times:.0f}% busy at half load,"
                f" not {half.server_cpu:.0f}%"
            )

    if "hub" in peak_kb:
        hub_kb = max(peak_kb["hub"], hwm_kb or 0)
        extra = [f"VmHWM {mb(hwm_kb)}"] if hwm_kb else []
        line = (
            f"peak RSS (VmRSS every 100 ms): hub {mb(peak_kb['hub'])}"
            f"{' (' + ', '.join(extra) + ')' if extra else ''}"
            f" [target <= {TARGETS['rss_mb']:g} MB: {verdict(hub_kb / 1024 <= TARGETS['rss_mb'])}]"
        )
        if "redis" in peak_kb:
            line += f"; its redis-server {mb(peak_kb['redis'])}"
        if "bare" in peak_kb:
            line += f"; bare endpoint {mb(peak_kb['bare'])}"
        lines.append(line)
    else:
        lines.append("peak RSS: skipped (give --pid of the hub you pointed --url at)")

    accepted = hub.outcomes.accepted
    # Every duplicate answer must come from the deliberate resend: any other means
    # the hub took a fresh external_id for a repeat.
    dedupe = results.resent_duplicates == results.resent == hub.outcomes.duplicates
    dedupe_text = (
        f"{results.resent_duplicates}/{results.resent} resent bodies answered duplicate"
        f" ({hub.outcomes.duplicates} duplicate answers in all): {verdict(dedupe)}"
    )
    correct = correct and dedupe
    if store is None:
        lines.append(
            f"store check: skipped (no --data-dir); {accepted} accepted responses; {dedupe_text}"
        )
    else:
        matches = store.from_run == accepted
        correct = correct and matches
        lines.append(
            f"store check: hub.db holds {store.messages} messages ({store.from_run} from this run)"
            f" for {accepted} accepted responses: {verdict(matches)}; {dedupe_text};"
            f" {store.contacts} contacts, {store.conversations} conversations,"
            f" {store.unassigned} unassigned"
        )
    lines.append(f"ingest_ratio={ratio:.3f}")
    return "\n".join(lines), correct


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Ingest throughput and latency of hub against a bare aiohttp endpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--levels",
        default="1,4,16,64",
        type=lambda s: [int(x) for x in s.split(",") if x.strip()],
        help="concurrent closed-loop workers per level, comma-separated",
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per level")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each phase")
    parser.add_argument(
        "--open-duration", type=float, default=8.0, help="seconds of the half-load open loop"
    )
    parser.add_argument(
        "--half-rate",
        type=float,
        default=0.0,
        help="run the open loop at this many msgs/s rather than at 50%% of hub's peak:"
        " to compare two versions at the same load",
    )
    parser.add_argument(
        "--senders", type=int, default=1000, help="known customers who write again and again"
    )
    parser.add_argument(
        "--new-share", type=float, default=0.1, help="share of messages from first-time customers"
    )
    parser.add_argument("--agents", type=int, default=3, help="online agents to assign to")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the message mix")
    parser.add_argument("--url", help="an already-running hub instead of starting one")
    parser.add_argument("--pid", type=int, help="with --url: the hub's pid, for its RSS")
    parser.add_argument(
        "--data-dir", type=Path, help="with --url: the hub's data folder, for the store check"
    )
    parser.add_argument(
        "--secret", help=f"with --url: the account's HMAC secret (default: ${SECRET_ENV})"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, hub.db)")
    parser.add_argument(
        "--profile", type=Path, help="run the hub under cProfile, writing its stats to this file"
    )
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.levels or min(args.levels) < 1:
        parser.error("--levels needs positive integers")
    if args.url and not (args.secret or os.environ.get(SECRET_ENV)):
        parser.error(f"--url needs --secret or ${SECRET_ENV}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.bare_server is not None:
        run_bare_server(args.bare_server)
        return 0
    secret = args.secret or os.environ.get(SECRET_ENV) or secrets.token_hex(16)

    with ExitStack() as stack:
        if args.keep:
            workdir = Path(tempfile.mkdtemp(prefix="hub-bench-"))
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hub-bench-")))
        bare_server = start_bare(workdir)
        stack.callback(bare_server.stop)
        if args.url:
            hub_server = Server("hub", args.url.rstrip("/"), pid=args.pid)
            hub_server.wait_healthy()
            data_dir = args.data_dir
        else:
            hub_server = start_hub(workdir, secret, args.agents, args.profile)
            stack.callback(hub_server.stop)
            data_dir = workdir / "data"
        redis_pid = redis_pid_for(data_dir) if data_dir else None

        workload = Workload(secret, args.senders, args.new_share, args.seed)
        bare = Target(
            "bare endpoint",
            bare_server.url + WEBHOOK_PATH,
            bare_server.pid,
            None,
            Feed(Workload(secret, args.senders, args.new_share, args.seed + 1), recycle=True),
        )
        hub = Target(
            "hub",
            hub_server.url + WEBHOOK_PATH,
            hub_server.pid,
            redis_pid,
            Feed(workload, recycle=False),
        )
        watched = {"hub": hub_server.pid, "redis": redis_pid, "bare": bare_server.pid}
        print(
            f"ingest benchmark: {os.cpu_count()} CPUs, {args.duration:g} s per level"
            f" (+{args.warmup:g} s warm-up), {args.senders} known senders,"
            f" {args.new_share:.0%} of messages from new contacts; hub at {hub_server.url}"
            + (f", data in {workdir}" if args.keep else ""),
            flush=True,
        )
        with MemoryWatch({k: v for k, v in watched.items() if v}) as memory:
            results = asyncio.run(drive(args, bare, hub, workload))
            hwm_kb = status_kb(hub_server.pid, "VmHWM") if hub_server.pid else None
        store = count_store(data_dir / "hub.db", workload.run_id) if data_dir else None
        lines, correct = report(results, args, memory.peak_kb, hwm_kb, store)
        if not correct and hub_server.log_path:
            print(f"hub log (last lines):\n{hub_server.log_tail()}", file=sys.stderr)
    print(lines, flush=True)
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
