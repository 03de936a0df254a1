"""Search benchmark: an agent's text search over the embedded store, answered by
the message index (hub/inbox/search_index.py) against the scan it replaced,
in the same run over the same data.

    python bench/search.py                      # 200,000 messages in a temp store
    python bench/search.py --messages 500000

Seeding goes through the store (`add_conversation`, `add_message`, in
transactions of 2,000): 20,000 conversations, messages drawn from a shop's
Vietnamese and English texts with an order number each. Then the index is
brought up to date (`MessageIndexer.catch_up`, timed: what an upgraded hub
pays once, behind the writers).

For each query (a common phrase, a rare order number, two characters, a phrase
typed without diacritics) the workspace's list call
(`list_conversations(ConversationFilter(text=...))`, first page of 25) runs
`--repeat` times in two ways:
- scan: the index's mark set back to 0, so every message is folded and
  compared in Python, as every search did before the index;
- index: the mark at the newest message.
Meanwhile a ticker on the event loop measures how late a 1 ms sleep wakes up
(the scan runs Python per message on the long-read thread, competing with the
loop for the GIL).

The contact finder (`search_contacts`, as the workspace's contact search and
merge dialog call it) is timed the same way over `--contacts` more contacts,
each with a phone and an e-mail address, against the scan it replaced (every
name and address folded in Python).

Prints the median time per query and mode, the loop's worst lag, the contact
finder's figures, and last
`search_speedup=<median scan time / median index time over all queries>`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.inbox.model import Contact, Conversation, Identity, Message, Sender  # noqa: E402
from hub.inbox.sqlite import SqliteStore  # noqa: E402
from hub.inbox.store import ConversationFilter  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TEXTS = [
    "Xin chào, cho em hỏi đơn hàng của em đến đâu rồi ạ?",
    "Shop ơi, áo size M còn màu xanh không?",
    "Mình muốn đổi địa chỉ giao hàng sang 12 Nguyễn Huệ, Quận 1.",
    "Cảm ơn shop, em nhận được hàng rồi nhé.",
    "Hello, I was charged twice for my order, can you check please?",
    "Cho mình xin hoá đơn VAT cho đơn hàng tháng trước nhé.",
    "Tôi muốn hoàn tiền vì sản phẩm bị lỗi.",
    "ok",
]
CONTACT_QUERIES = {
    "a name": "Khách 4242",
    "typed without marks": "khach 77",
    "phone digits": "0900012",
    "part of an e-mail": "k9876@",
    "nobody": "Zzyzx",
}
QUERIES = {
    "common phrase": "hoá đơn VAT",
    "rare order number": "DH-0123457",
    "two characters": "ok",
    "typed without marks": "hoan tien vi san pham",
}


async def seed(store: SqliteStore, messages: int, conversations: int) -> None:
    rng = random.Random(7)
    owners: list[Conversation] = []
    async with store.transaction():
        for n in range(conversations):
            contact = Contact(name=f"Khách {n}", created_at=T0, updated_at=T0)
            await store.add_contact(contact)
            conversation = Conversation(
                contact_id=contact.id,
                account_id="web",
                channel="webchat",
                contact_address=f"visitor-{n}",
                last_activity_at=T0 + timedelta(seconds=n),
                created_at=T0,
                updated_at=T0,
            )
            await store.add_conversation(conversation)
            owners.append(conversation)
    for start in range(0, messages, 2000):
        async with store.transaction():
            for n in range(start, min(start + 2000, messages)):
                conversation = owners[rng.randrange(conversations)]
                await store.add_message(
                    Message(
                        conversation_id=conversation.id,
                        account_id="web",
                        channel="webchat",
                        direction="inbound",
                        sender=Sender(kind="contact", id=conversation.contact_id),
                        text=f"{rng.choice(TEXTS)} (DH-{n:07d})",
                        created_at=T0 + timedelta(seconds=n),
                        updated_at=T0 + timedelta(seconds=n),
                    )
                )


async def seed_contacts(store: SqliteStore, count: int) -> None:
    for start in range(0, count, 2000):
        async with store.transaction():
            for n in range(start, min(start + 2000, count)):
                await store.add_contact(
                    Contact(
                        name=f"Khách {n}",
                        identities=[
                            Identity(channel="phone", address=f"+849{n:08d}"),
                            Identity(channel="email", address=f"k{n}@example.com"),
                        ],
                        created_at=T0,
                        updated_at=T0,
                    )
                )


class Ticker:
    """How late a 1 ms sleep on the event loop wakes up, at worst."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.001)
            self.worst = max(self.worst, loop.time() - before - 0.001)

    def __enter__(self) -> Ticker:
        self.worst = 0.0
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def set_mark(store: SqliteStore, rowid: int, table: str = "messages") -> None:
    await store._write("UPDATE search_marks SET last_rowid = ? WHERE name = ?", (rowid, table))


Search = Callable[[str], Awaitable[int]]  # a query -> how many it found


async def time_queries(
    queries: dict[str, str], search: Search, repeat: int
) -> tuple[dict[str, float], float, int]:
    """(median seconds per query, the loop's worst lag, hits in all)."""
    medians: dict[str, float] = {}
    hits = 0
    with Ticker() as ticker:
        for name, query in queries.items():
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                found = await search(query)
                times.append(time.perf_counter() - started)
                await asyncio.sleep(0.01)  # the ticker runs between searches too
            hits += found
            medians[name] = statistics.median(times)
        worst = ticker.worst
    return medians, worst, hits


def conversations_with(store: SqliteStore) -> Search:
    async def search(query: str) -> int:
        page = await store.list_conversations(ConversationFilter(text=query), limit=25)
        return len(page.items)

    return search


def contacts_with(store: SqliteStore) -> Search:
    async def search(query: str) -> int:
        return len(await store.search_contacts(query, limit=20))

    return search


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "hub.db")
        await store.open()
        # The bench moves the index's mark itself: the background indexer stops.
        assert store._indexing is not None
        store._indexing.cancel()
        try:
            started = time.perf_counter()
            await seed(store, args.messages, args.conversations)
            print(f"seeded {args.messages:,} messages in {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            indexed = await store.indexer.catch_up()
            seconds = time.perf_counter() - started
            print(
                f"indexed {indexed:,} rows (messages, conversations, contacts) in {seconds:.1f} s"
                f" ({indexed / seconds:,.0f}/s, behind the writers)"
            )
            top = args.messages
            await set_mark(store, 0)
            scan, scan_lag, scan_hits = await time_queries(
                QUERIES, conversations_with(store), args.repeat
            )
            await set_mark(store, top)
            index, index_lag, index_hits = await time_queries(
                QUERIES, conversations_with(store), args.repeat
            )
            assert scan_hits == index_hits, (scan_hits, index_hits)

            await seed_contacts(store, args.contacts)
            await store.indexer.catch_up()
            row = await store._fetch_one("SELECT MAX(rowid) AS top FROM contacts", ())
            assert row is not None
            await set_mark(store, 0, "contacts")
            contact_scan, contact_scan_lag, scan_hits = await time_queries(
                CONTACT_QUERIES, contacts_with(store), args.repeat
            )
            await set_mark(store, row["top"], "contacts")
            contact_index, contact_index_lag, index_hits = await time_queries(
                CONTACT_QUERIES, contacts_with(store), args.repeat
            )
            assert scan_hits == index_hits, (scan_hits, index_hits)
        finally:
            await store.close()
    print(f"{'query':<22} {'scan ms':>10} {'index ms':>10} {'speedup':>8}")
    for name in QUERIES:
        print(
            f"{name:<22} {scan[name] * 1000:>10.1f} {index[name] * 1000:>10.1f}"
            f" {scan[name] / index[name]:>7.0f}x"
        )
    print(
        f"event loop's worst lag during searches: scan {scan_lag * 1000:.0f} ms,"
        f" index {index_lag * 1000:.0f} ms"
    )
    contacts = args.contacts + args.conversations
    print(
        f"\n{'contact finder':<22} {'scan ms':>10} {'index ms':>10} {'speedup':>8}"
        f"  ({contacts:,} contacts)"
    )
    for name in CONTACT_QUERIES:
        print(
            f"{name:<22} {contact_scan[name] * 1000:>10.1f} {contact_index[name] * 1000:>10.1f}"
            f" {contact_scan[name] / contact_index[name]:>7.0f}x"
        )
    print(
        f"event loop's worst lag during contact searches: scan {contact_scan_lag * 1000:.0f} ms,"
        f" index {contact_index_lag * 1000:.0f} ms"
    )
    contact_speedup = statistics.median(contact_scan.values()) / statistics.median(
        contact_index.values()
    )
    print(f"contact_search_speedup={contact_speedup:.1f}")
    speedup = statistics.median(scan.values()) / statistics.median(index.values())
    print(f"search_speedup={speedup:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--contacts", type=int, default=100_000, help="more contacts to find")
    parser.add_argument("--repeat", type=int, default=5)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
