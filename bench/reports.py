"""Reports benchmark: every report over 1,000,000 messages on the embedded store,
compared with a bare `SELECT count(*)` over the same period's messages.

    python bench/reports.py                       # seeds a temp store, then times
    python bench/reports.py --messages 200000     # smaller
    python bench/reports.py --data-dir /tmp/rb    # keep (and reuse) the seeded store

Seeding writes straight into SQLite (one transaction, executemany): 1,000,000
messages in about 100,000 conversations of 50,000 contacts over 90 days, on 8
accounts of 6 channels, 20 agents in 3 teams (two with business hours), with
first replies, resolutions, survey answers and SLA breaches. Busier in the
day than at night, as a shop's inbox is.

The message rollup (hub/reports/sqlite.py) is brought up to date once after
seeding and its time printed: what the first report after an upgrade pays.
Each report is the service call the API makes (so business hours, percentiles
and the calendar are in the time). The first call of each is cold for the
report (not for SQLite's page cache, which the baseline warms the same way);
the median of `--repeat` calls is printed with its ratio to the baseline.
Target: every report under 2 s. Prints `reports_max_s=<slowest median>` last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bson import ObjectId

from hub.clock import FrozenClock
from hub.inbox.model import to_ms
from hub.inbox.sqlite import SqliteStore
from hub.inbox.store import Visibility
from hub.reports.model import ReportFilter
from hub.reports.service import ReportService
from hub.reports.sqlite import SqliteReportStore
from hub.routing.hours import Schedule

TARGET_S = 2.0
NOW = datetime(2026, 3, 31, 10, 0, tzinfo=UTC)
DAYS = 90
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
ACCOUNTS = [
    ("sms-main", "sms"),
    ("sms-2", "sms"),
    ("support-mail", "email"),
    ("web", "webchat"),
    ("zalo-oa", "zalo"),
    ("tg-bot", "telegram"),
    ("fb-page", "messenger"),
    ("wa", "whatsapp"),
]
TEAMS = ["support", "sales", "vip"]
OFFICE = Schedule(
    timezone="Asia/Ho_Chi_Minh",
    **{day: ["08:00-12:00", "13:30-17:30"] for day in ("mon", "tue", "wed", "thu", "fri")},
    sat=["08:00-12:00"],
    holidays=[datetime(2026, 2, d).date() for d in range(16, 21)],  # Tết
)
SCHEDULES = {"support": OFFICE, "sales": OFFICE}
TEXTS = [
    "Xin chào, cho em hỏi đơn hàng của em đến đâu rồi ạ?",
    "Shop ơi, áo size M còn màu xanh không?",
    "Dạ, đơn của chị đang được giao, dự kiến mai đến ạ.",
    "Cảm ơn shop, em nhận được hàng rồi nhé.",
]
# Relative weight of each hour of the day (local): quiet nights, busy days.
HOURLY = [1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 14, 12, 9, 10, 13, 14, 13, 11, 9, 8, 7, 5, 3, 2]


def oid(at_ms: int, rng: random.Random) -> str:
    """An ObjectId for a moment (ids are roughly ordered by creation, as live ones)."""
    return str(ObjectId.from_datetime(datetime.fromtimestamp(at_ms / 1000, UTC)))[:8] + (
        f"{rng.getrandbits(64):016x}"
    )


def seed(path: Path, messages: int, rng: random.Random) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    start_ms = to_ms(NOW - timedelta(days=DAYS))
    span_ms = DAYS * 86_400_000
    hours = list(range(24))
    agents = [
        (oid(start_ms, rng), f"Agent {n:02d}", f"agent{n:02d}@shop.vn", TEAMS[n % 3])
        for n in range(20)
    ]
    contacts = [oid(start_ms, rng) for _ in range(messages // 20)]
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO agents (id, name, email, role, team_ids, skills, languages, capacity,"
        " presence, active, created_at, open_count) VALUES (?, ?, ?, 'agent', ?, '[]', '[]',"
        " 10, 'online', 1, ?, 0)",
        [(a[0], a[1], a[2], json.dumps([a[3]]), start_ms) for a in agents],
    )
    db.executemany(
        "INSERT INTO contacts (id, name, tags, attributes, consent, created_at, updated_at)"
        " VALUES (?, ?, '[]', '{}', '{}', ?, ?)",
        [(c, f"Khách {n}", start_ms, start_ms) for n, c in enumerate(contacts)],
    )
    conversation_rows: list[tuple[Any, ...]] = []
    message_rows: list[tuple[Any, ...]] = []
    written = 0
    while written < messages:
        day = rng.randrange(DAYS)
        hour = rng.choices(hours, HOURLY)[0]
        # Hours are local (UTC+7): subtract the offset to land on the wall clock.
        created = start_ms + day * 86_400_000 + (hour - 7) * 3_600_000 + rng.randrange(3_600_000)
        created = min(max(created, start_ms), start_ms + span_ms - 1)
        account, channel = rng.choice(ACCOUNTS)
        agent = rng.choice(agents)
        assigned = rng.random() < 0.93
        first = created + int(rng.expovariate(1 / 1_800_000)) if assigned else None
        resolved = (
            first + int(rng.expovariate(1 / 14_400_000))
            if first is not None and rng.random() < 0.85
            else None
        )
        count = min(rng.randint(2, 18), messages - written)
        conversation = oid(created, rng)
        labels = ["sla-breached"] if rng.random() < 0.05 else []
        if rng.random() < 0.1:
            labels.append("vip")
        satisfaction = rng.choices([1, 2, 3, 4, 5], [1, 1, 2, 4, 6])[0]
        answered = resolved is not None and rng.random() < 0.3
        last = resolved or first or created
        conversation_rows.append(
            (
                conversation, rng.choice(contacts), account, channel, "+84901234567", "",
                "resolved" if resolved else "open", agent[0] if assigned else None,
                agent[3], json.dumps(labels), "normal", first, resolved,
                satisfaction if answered else None,
                (resolved + 600_000) if answered and resolved else None,
                last, 0, created, last,
            )
        )  # fmt: skip
        at = created
        for n in range(count):
            inbound = n == 0 or rng.random() < 0.55
            if n == 1 and first is not None:
                at, inbound = first, False
            else:
                at += rng.randrange(1, 3_600_000)
            sender = (
                {"kind": "contact", "id": None, "name": ""}
                if inbound
                else {"kind": "agent", "id": agent[0], "name": agent[1]}
            )
            message_rows.append(
                (
                    oid(at, rng), conversation, account, channel,
                    "inbound" if inbound else "outbound", json.dumps(sender),
                    rng.choice(TEXTS), "[]", f"ext-{written + n}" if inbound else None,
                    "{}", None if inbound else "delivered", 0, "{}", at, at,
                )
            )  # fmt: skip
        written += count
        if len(message_rows) >= 50_000:
            flush(db, conversation_rows, message_rows)
    flush(db, conversation_rows, message_rows)
    db.execute(
        "UPDATE agents SET open_count = (SELECT COUNT(*) FROM conversations"
        " WHERE assignee_id = agents.id AND status != 'resolved')"
    )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def flush(db: sqlite3.Connection, conversations: list[Any], messages: list[Any]) -> None:
    db.executemany(
        "INSERT INTO conversations (id, contact_id, account_id, channel, contact_address,"
        " subject, status, assignee_id, team_id, labels, priority, first_response_at,"
        " resolved_at, satisfaction, satisfaction_at, last_activity_at, unread_count,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        conversations,
    )
    db.executemany(
        "INSERT INTO messages (id, conversation_id, account_id, channel, direction, sender,"
        " text, attachments, external_id, thread, status, attempts, meta, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        messages,
    )
    conversations.clear()
    messages.clear()


class LoopWatch:
    """The longest the event loop went without a turn while reports ran: what a
    webhook arriving meanwhile would have waited (reports read on threads)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last - 0.005)
            last = now

    def __enter__(self) -> LoopWatch:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def timed(call: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, float]:
    """(first call's seconds, median of `repeat` calls)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return times[0], statistics.median(times)


async def run(args: argparse.Namespace) -> float:
    folder = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="hub-reports-"))
    path = folder / "hub.db"
    store = SqliteStore(path)
    fresh = not path.exists()
    await store.open()  # the schema
    if fresh:
        started = time.perf_counter()
        seed(path, args.messages, random.Random(args.seed))
        print(f"seeded {args.messages:,} messages in {time.perf_counter() - started:.1f} s")
    reports = SqliteReportStore(store)
    started = time.perf_counter()
    await reports.open()
    print(f"report indexes ready in {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    folded = await reports.catch_up()
    print(
        f"message rollup brought up to date in {time.perf_counter() - started:.2f} s"
        f" ({folded:,} messages; once, then only new messages at each report)"
    )
    counts = await store._fetch_one(
        "SELECT (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM conversations)", ()
    )
    assert counts is not None
    print(f"store: {counts[0]:,} messages, {counts[1]:,} conversations, {path}")
    service = ReportService(
        reports,
        store,
        None,
        FrozenClock(NOW),
        schedule_for=lambda account, team: SCHEDULES.get(team or ""),
        timezone=ZONE.key,
    )
    agents = await store.list_agents()
    one = agents[0]

    def window(days: int, **slices: Any) -> ReportFilter:
        return ReportFilter(since=NOW - timedelta(days=days), until=NOW, **slices)

    async def baseline(days: int) -> None:
        await store._fetch_one(
            "SELECT COUNT(*) FROM messages WHERE created_at >= ? AND created_at < ?",
            (to_ms(NOW - timedelta(days=days)), to_ms(NOW)),
        )

    cases: list[tuple[str, int, Callable[[], Awaitable[Any]]]] = []
    for days in (7, 30, 90):
        cases += [
            (f"summary {days}d", days, lambda d=days: service.summary(window(d), ZONE)),
            (f"days {days}d", days, lambda d=days: service.days(window(d), ZONE)),
            (f"channels {days}d", days, lambda d=days: service.channels(window(d), ZONE)),
            (f"hours {days}d", days, lambda d=days: service.hours(window(d), ZONE)),
            (f"agents {days}d", days, lambda d=days: service.agents(window(d))),
            (f"satisfaction {days}d", days, lambda d=days: service.scores(window(d))),
        ]
    cases += [
        (
            "summary 30d team=support",
            30,
            lambda: service.summary(window(30, teams=("support",)), ZONE),
        ),
        ("summary 30d label=vip", 30, lambda: service.summary(window(30, labels=("vip",)), ZONE)),
        (
            "summary 30d channel=sms",
            30,
            lambda: service.summary(window(30, channels=("sms",)), ZONE),
        ),
        (
            "summary 30d agent's scope",
            30,
            lambda: service.summary(
                window(30, scope=Visibility(one.id, tuple(one.team_ids))), ZONE
            ),
        ),
        (
            "agents 90d agent's scope",
            90,
            lambda: service.agents(window(90, scope=Visibility(one.id, tuple(one.team_ids)))),
        ),
    ]
    base: dict[int, float] = {}
    for days in (7, 30, 90):
        await baseline(days)  # warm the page cache the same way for everyone
        base[days] = (await timed(lambda d=days: baseline(d), args.repeat))[1]
        print(f"baseline count(*) of {days}d messages: {base[days] * 1000:8.1f} ms")
    print(f"{'report':<30}{'first ms':>10}{'median ms':>11}{'x baseline':>12}{'loop stall':>12}")
    slowest = 0.0
    for name, days, call in cases:
        with LoopWatch() as watch:
            first, median = await timed(call, args.repeat)
        slowest = max(slowest, median, first)
        flag = "" if max(first, median) < TARGET_S else "  OVER TARGET"
        ratio = median / base[days]
        stall = watch.longest * 1000
        print(
            f"{name:<30}{first * 1000:>10.1f}{median * 1000:>11.1f}{ratio:>11.1f}x"
            f"{stall:>9.0f} ms{flag}"
        )
    await store.close()
    print(f"reports_max_s={slowest:.3f} (target < {TARGET_S})")
    return slowest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", help="keep the seeded store here (reused when present)")
    args = parser.parse_args()
    slowest = asyncio.run(run(args))
    sys.exit(0 if slowest < TARGET_S else 1)


if __name__ == "__main__":
    main()
