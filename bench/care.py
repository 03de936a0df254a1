"""Care benchmark: what automation rules add to ingesting a message, against the
same ingest without them, measured in the same run.

    python bench/care.py                    # 3000 messages, a few seconds
    python bench/care.py --messages 20000 --new-share 0.2

Both phases push the same stream through `InboxService.ingest` on the embedded
SQLite store: `--senders` known customers writing again and `--new-share` of
the messages from first-time customers, a third of them asking a price.

- baseline: no rules (what a hub without `[[care.rules]]` does);
- care: the example rules of `config/hub.example.toml` with the shipped
  templates, at an open hour — every new contact is greeted (a care task and
  an outbound message), price questions are labelled and prioritised, and each
  inbound message looks for follow-ups to cancel and for a survey score.

The store is checked at the end: exactly one greeting per new contact and one
label per price conversation, or it exits 1. Pure in-process: no Redis (the
event bus has no remote side here), no HTTP, no worker (outbound messages stay
queued). Prints `care_ingest_ratio=<care time / baseline time>` last.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.app import build_care  # noqa: E402
from hub.clock import FrozenClock  # noqa: E402
from hub.events import EventBus  # noqa: E402
from hub.inbox.addresses import phone_identity  # noqa: E402
from hub.inbox.inbound import InboundMessage, InboundSender  # noqa: E402
from hub.inbox.service import InboxService  # noqa: E402
from hub.inbox.sqlite import SqliteStore  # noqa: E402
from hub.inbox.store import ConversationFilter  # noqa: E402
from hub.routing.router import Router  # noqa: E402
from hub.settings import load_settings  # noqa: E402

# Monday 5 January 2026, 10:00 in Saigon: open, so new contacts are greeted.
OPEN_HOUR = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
TEXTS = ("Cho hỏi giá áo này bao nhiêu?", "Shop ơi còn hàng không ạ", "Cảm ơn shop nhiều")


class NoQueue:
    async def enqueue_delivery(self, message_id: str) -> bool:
        return True

    async def enqueue_wake(self, conversation_id: str, until: datetime) -> bool:
        return True

    async def enqueue_care_webhook(self, rule: str, index: int, body: str, delivery: str) -> bool:
        return True


def stream(messages: int, senders: int, new_share: float) -> list[tuple[str, str]]:
    """(sender phone, text) for each message; the first `senders` warm up."""
    rng = random.Random(7)
    out = [(f"+8490{n:07d}", TEXTS[1]) for n in range(senders)]
    fresh = senders
    for _ in range(messages):
        if rng.random() < new_share:
            phone, fresh = f"+8490{fresh:07d}", fresh + 1
        else:
            phone = f"+8490{rng.randrange(senders):07d}"
        out.append((phone, rng.choice(TEXTS)))
    return out


async def phase(label: str, plan: list[tuple[str, str]], warm: int, folder: Path) -> dict:
    store = SqliteStore(folder / f"{label}.db")
    await store.open()
    clock = FrozenClock(OPEN_HOUR)
    bus = EventBus(None, "bench")
    inbox = InboxService(store, bus, clock, NoQueue())
    if label == "care":
        settings = load_settings(ROOT / "config" / "hub.example.toml")
        settings.templates.folder = ROOT / "config" / "templates"
        engine, _ = build_care(
            settings,
            store,
            inbox,
            clock,
            {},
            NoQueue(),
            "https://hub.example",
            b"k" * 32,  # type: ignore[arg-type]
            Router(store, inbox, clock, settings.routing),
        )
        engine.attach(bus)
        settled = engine.settled
    else:

        async def settled() -> None:
            return None

    async def ingest(n: int, phone: str, text: str) -> None:
        await inbox.ingest(
            InboundMessage(
                account_id="shop",
                channel="api",
                external_id=f"m-{n}",
                sender=InboundSender(identities=[phone_identity(phone, "VN")]),
                text=text,
            )
        )
        await settled()  # the care work each message causes counts in its time

    for n, (phone, text) in enumerate(plan[:warm]):
        await ingest(n, phone, text)
    start = time.perf_counter()
    for n, (phone, text) in enumerate(plan[warm:], start=warm):
        await ingest(n, phone, text)
    seconds = time.perf_counter() - start
    conversations, cursor = [], None
    while True:
        page = await store.list_conversations(ConversationFilter(), limit=500, cursor=cursor)
        conversations += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    greetings = 0
    for conversation in conversations:
        greetings += sum(
            m.sender.kind == "system" for m in await store.list_messages(conversation.id)
        )
    labelled = sum("pricing" in c.labels for c in conversations)
    asked = {phone for phone, text in plan if "giá" in text}
    await store.close()
    return {
        "seconds": seconds,
        "contacts": len(conversations),
        "greetings": greetings,
        "labelled": labelled,
        "asked": len(asked),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--senders", type=int, default=300)
    parser.add_argument("--new-share", type=float, default=0.1)
    args = parser.parse_args()
    plan = stream(args.messages, args.senders, args.new_share)
    with tempfile.TemporaryDirectory() as folder:
        base = asyncio.run(phase("baseline", plan, args.senders, Path(folder)))
        care = asyncio.run(phase("care", plan, args.senders, Path(folder)))
    n = args.messages
    print(f"messages: {n} after {args.senders} warm-up, new contacts: {care['contacts']}")
    print(f"{'phase':<28}{'rate':>14}{'per message':>14}")
    for label, result in (("baseline: no rules", base), ("care: example rules", care)):
        print(
            f"{label:<28}{n / result['seconds']:>10,.0f} msg/s"
            f"{result['seconds'] / n * 1e3:>11.3f} ms"
        )
    ok = care["greetings"] == care["contacts"] and care["labelled"] == care["asked"]
    ok = ok and base["greetings"] == 0
    print(
        f"store check: {care['greetings']} greetings for {care['contacts']} contacts,"
        f" {care['labelled']} labelled for {care['asked']} asking a price:"
        f" {'ok' if ok else 'FAILED'}"
    )
    print(f"care_ingest_ratio={care['seconds'] / base['seconds']:.2f}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
