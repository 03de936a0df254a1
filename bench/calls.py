"""Calls benchmark: what following a PBX costs, against the cheapest thing the
same code could do instead, measured in the same run.

    python bench/calls.py                  # 400 calls, about 20 s
    python bench/calls.py --calls 2000

1. AMI: the recorded call transcripts (answered, missed, transferred,
   voicemail), repeated with fresh ids, are read by `AmiReader` and folded by
   `CallAssembler`. Baseline: `AmiReader` alone (bytes to messages). A busy
   PBX sends a few hundred events a second; the assembler must not be the
   bottleneck.
2. Inbox: the updates the assembler emitted go through `InboxService.ingest`
   on the embedded SQLite store (each one merged into its call's single
   timeline message with a compare-and-set). Baseline: the same number of
   calls ingested as one plain inbound message each. The ratio says what one
   call costs the store compared with one chat message.

The store is checked at the end: one event message per call, none left ringing.
Pure in-process: no Redis (the event bus has no remote side here), no HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.channels.asterisk.assembler import CallAssembler, Emit
from hub.channels.asterisk.protocol import AmiReader
from hub.clock import SystemClock
from hub.events import EventBus
from hub.inbox.addresses import phone_identity
from hub.inbox.inbound import InboundMessage, InboundSender
from hub.inbox.service import InboxService
from hub.inbox.sqlite import SqliteStore
from hub.inbox.store import ConversationFilter

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "tests" / "data" / "asterisk"
KINDS = ("answered", "missed", "transferred", "voicemail")


class NoQueue:
    async def enqueue_delivery(self, message_id: str) -> bool:
        return True


def blocks(name: str) -> list[str]:
    text = (TRANSCRIPTS / f"{name}.ami").read_text(encoding="utf-8")
    return [
        "\n".join(line for line in raw.split("\n") if line and not line.startswith("#"))
        for raw in text.split("\n\n")
        if raw.strip() and not raw.startswith("#")
    ]


IDS = {
    "Uniqueid",
    "Linkedid",
    "DestUniqueid",
    "DestLinkedid",
    "UniqueID",
    "TransfererUniqueid",
    "TransfererLinkedid",
    "TransfereeUniqueid",
    "TransfereeLinkedid",
}
NUMBERS = {"CallerIDNum", "DestCallerIDNum", "Source", "Destination", "DialString"}


def renumber(block: str, n: int) -> str:
    """The block as part of call `n`: its own ids, and its own customer."""
    lines = []
    for line in block.split("\n"):
        key, sep, value = line.partition(": ")
        if key in IDS and value:
            value = f"{n}-{value}"
        elif key in NUMBERS and value.startswith("09") and len(value) == 10:
            value = f"09{n:08d}"
        lines.append(f"{key}{sep}{value}" if sep else line)
    return "\n".join(lines)


def stream(calls: int) -> bytes:
    """`calls` calls from the transcripts, each with its own ids and customer."""
    parts = [b"Asterisk Call Manager/9.0.0\r\n"]
    templates = {kind: blocks(kind) for kind in KINDS}
    for n in range(calls):
        for block in templates[KINDS[n % len(KINDS)]]:
            parts.append(renumber(block, n).replace("\n", "\r\n").encode() + b"\r\n\r\n")
    return b"".join(parts)


def ami_phase(raw: bytes) -> tuple[list[Emit], dict[str, float]]:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    start = time.perf_counter()
    parsed = AmiReader().feed(raw)
    parse_s = time.perf_counter() - start
    start = time.perf_counter()
    emits: list[Emit] = []
    assembler = CallAssembler(recording_url="https://pbx/vm/{mailbox}/{call_id}")
    for message in AmiReader().feed(raw):
        emits += assembler.feed(message, now)
    full_s = time.perf_counter() - start
    return emits, {"events": len(parsed), "parse_s": parse_s, "full_s": full_s}


async def inbox_phase(emits: list[Emit], calls: int, folder: Path) -> dict[str, float]:
    results: dict[str, float] = {}
    for label in ("plain", "calls"):
        store = SqliteStore(folder / f"{label}.db")
        await store.open()
        inbox = InboxService(store, EventBus(None, "bench"), SystemClock(), NoQueue())
        start = time.perf_counter()
        if label == "plain":
            for n in range(calls):
                await inbox.ingest(
                    InboundMessage(
                        account_id="pbx",
                        channel="api",
                        external_id=f"m-{n}",
                        sender=InboundSender(identities=[phone_identity(f"+8490{n:07d}", "VN")]),
                        text="Alo shop, cho em hỏi đơn hàng với ạ",
                    )
                )
        else:
            for emit in emits:
                await inbox.ingest(
                    InboundMessage(
                        account_id="pbx",
                        channel="asterisk",
                        external_id=emit.update.call_id,
                        sender=InboundSender(identities=[phone_identity(emit.customer, "VN")]),
                        direction="event",
                        call=emit.update,
                    )
                )
        results[f"{label}_s"] = time.perf_counter() - start
        if label == "calls":
            page = await store.list_conversations(ConversationFilter(), limit=100)
            cursor, messages = page.next_cursor, []
            conversations = list(page.items)
            while cursor:
                page = await store.list_conversations(
                    ConversationFilter(), limit=100, cursor=cursor
                )
                conversations += page.items
                cursor = page.next_cursor
            for conversation in conversations:
                messages += await store.list_messages(conversation.id)
            results["call_messages"] = len(messages)
            results["ringing_left"] = sum(m.meta["call"]["status"] == "ringing" for m in messages)
        await store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    raw = stream(args.calls)
    emits, ami = ami_phase(raw)
    with tempfile.TemporaryDirectory() as folder:
        inbox = asyncio.run(inbox_phase(emits, args.calls, Path(folder)))
    events = ami["events"]
    print(f"calls: {args.calls}  AMI events: {events:.0f}  call updates emitted: {len(emits)}")
    print()
    print(f"{'phase':<34}{'rate':>16}{'per item':>14}")
    print(
        f"{'AMI read only (baseline)':<34}{events / ami['parse_s']:>11,.0f} ev/s"
        f"{ami['parse_s'] / events * 1e6:>11.1f} us"
    )
    print(
        f"{'AMI read + assemble':<34}{events / ami['full_s']:>11,.0f} ev/s"
        f"{ami['full_s'] / events * 1e6:>11.1f} us"
    )
    print(
        f"{'inbox: 1 message per call (base)':<34}{args.calls / inbox['plain_s']:>9,.0f} calls/s"
        f"{inbox['plain_s'] / args.calls * 1e3:>11.2f} ms"
    )
    print(
        f"{'inbox: call updates merged':<34}{args.calls / inbox['calls_s']:>9,.0f} calls/s"
        f"{inbox['calls_s'] / args.calls * 1e3:>11.2f} ms"
    )
    print()
    print(f"assemble/read = {ami['full_s'] / ami['parse_s']:.2f}x the baseline's time")
    print(
        f"call/message = {inbox['calls_s'] / inbox['plain_s']:.2f}x the baseline's time"
        f" ({len(emits) / args.calls:.1f} updates per call)"
    )
    ok = inbox["call_messages"] == args.calls and inbox["ringing_left"] == 0
    print(
        f"store check: {inbox['call_messages']:.0f} call events for {args.calls} calls,"
        f" {inbox['ringing_left']:.0f} left ringing: {'ok' if ok else 'FAILED'}"
    )
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
