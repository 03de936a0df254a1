"""E-mail benchmark: how fast hub reads mail, compared with the least any reader
must do, measured the same way in the same run.

    python bench/email_ingest.py                  # both parts, about 30 s
    python bench/email_ingest.py --rounds 50 --mails 300

1. parse: every message of the test corpus (tests/data/email), `--rounds` times,
   through hub's `parse` (text, sanitised HTML, attachments, quotes, loops,
   reports) and through the baseline: the standard library's parser with policy
   `default` plus `get_body()`/`get_content()` and `iter_attachments()`, which is
   what reading a mail costs at the least. Prints mails/s for each and the ratio.
2. imap: `--mails` mails put into a real Dovecot (started here; skipped without
   `dovecot`), then drained three times: `fetch` (stdlib imaplib fetching each
   message by UID with BODY.PEEK[], nothing else: the floor), `baseline` (the
   same, plus the baseline read above and one SQLite commit of the mail and the
   cursor per message: the least a reader that keeps mail safely does) and `hub`
   (the e-mail channel's poller: fetch, parse, attachments and raw MIME to disk,
   ingest into SQLite with contact and conversation, cursor saved after each).
   Prints mails/s for each; the imap ratio is hub / baseline.

The last line is `email_parse_ratio=... email_imap_ratio=...` (hub / baseline).
Compare runs on the same machine only; anything else using the CPU skews it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.channels.email.parse import parse  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "email"


def baseline_read(raw: bytes) -> int:
    """The least a reader does: parse, take the body text, list the attachments."""
    message = BytesParser(policy=default).parsebytes(raw)
    size = 0
    try:
        body = message.get_body(("plain", "html"))
        if body is not None:
            size += len(body.get_content())
    except (LookupError, ValueError, AttributeError):
        pass  # a charset or structure the plain library cannot read
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        size += len(payload or b"")
    return size


def bench_parse(rounds: int) -> tuple[float, float]:
    mails = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml")) if p.stat().st_size]
    total = len(mails) * rounds
    results = {}
    for name, read in (("baseline", baseline_read), ("hub", parse)):
        started = time.perf_counter()
        for _ in range(rounds):
            for raw in mails:
                read(raw)  # type: ignore[operator]
        elapsed = time.perf_counter() - started
        results[name] = total / elapsed
        print(f"parse  {name:<8} {total:>6} mails  {elapsed:6.2f} s  {results[name]:8.0f} mails/s")
    return results["baseline"], results["hub"]


def make_mail(n: int) -> bytes:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = f"Khách {n % 50} <khach{n % 50}@example.vn>"
    message["To"] = "support@shop.vn"
    message["Subject"] = f"Đơn hàng #{10_000 + n} chưa giao"
    message["Message-ID"] = f"<bench-{n}@example.vn>"
    message.set_content(
        "Chào shop,\n\nĐơn hàng của tôi đặt hôm thứ Hai vẫn chưa được giao. "
        "Shop kiểm tra giúp tôi nhé.\n\nCảm ơn,\n" * 3
    )
    message.add_alternative(f"<p>Đơn hàng <b>#{10_000 + n}</b> chưa giao.</p>", subtype="html")
    if n % 5 == 0:
        message.add_attachment(bytes(20_000), maintype="image", subtype="png", filename="ảnh.png")
    return message.as_bytes()


def drain_baseline(mailbox: object, count: int, folder: Path, *, keep: bool) -> float:
    """Fetch each mail by UID; with `keep`, also read it (`baseline_read`) and
    commit it with the cursor to SQLite (WAL, synchronous=NORMAL, as hub does)."""
    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(folder / "baseline.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE mails (uid INTEGER PRIMARY KEY, raw BLOB, size INTEGER)")
    db.execute("CREATE TABLE cursor (last_uid INTEGER)")
    imap = mailbox.client()  # type: ignore[attr-defined]
    try:
        imap.select("INBOX", readonly=True)
        started = time.perf_counter()
        _, data = imap.uid("SEARCH", None, "ALL")
        uids = data[0].split()
        for uid in uids:
            _, fetched = imap.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = bytes(fetched[0][1])  # type: ignore[index]
            if keep:
                size = baseline_read(raw)
                db.execute("BEGIN")
                db.execute("INSERT INTO mails VALUES (?, ?, ?)", (int(uid), raw, size))
                db.execute("DELETE FROM cursor")
                db.execute("INSERT INTO cursor VALUES (?)", (int(uid),))
                db.execute("COMMIT")
        elapsed = time.perf_counter() - started
    finally:
        imap.logout()
        db.close()
    assert len(uids) == count
    return count / elapsed


async def drain_hub(mailbox: object, count: int, folder: Path) -> float:
    from hub.app import open_runtime
    from hub.settings import HubSettings

    os.environ["HUB_BENCH_IMAP_PASSWORD"] = mailbox.password  # type: ignore[attr-defined]
    settings = HubSettings(
        data_dir=folder,
        redis_url=os.environ.get("REDIS_URL"),
        redis={"prefix": f"bench-email-{os.getpid()}"},
        log_level="WARNING",
        log_format="text",
        accounts=[
            {
                "id": "support",
                "channel": "email",
                "address": "support@shop.vn",
                "imap_host": mailbox.host,  # type: ignore[attr-defined]
                "imap_port": mailbox.port,  # type: ignore[attr-defined]
                "imap_security": "none",
                "imap_username": mailbox.username,  # type: ignore[attr-defined]
                "imap_password_env": "HUB_BENCH_IMAP_PASSWORD",
                "imap_backfill_days": 1,  # everything already in the mailbox
            }
        ],
    )
    async with open_runtime(settings) as runtime:
        channel = runtime.channels["support"]
        started = time.perf_counter()
        task = asyncio.create_task(channel.run())
        try:
            while True:
                state = await runtime.store.channel_state("support", "imap:INBOX")
                if state is not None and state["last_uid"] >= count:
                    break
                await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - started
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
    return count / elapsed


def bench_imap(count: int) -> tuple[float, float] | None:
    from tests.peers.dovecot import MISSING, Dovecot

    if MISSING:
        print(f"imap   skipped: {MISSING}")
        return None
    server = Dovecot().start()
    try:
        mailbox = server.new_user("bench")
        mails = [make_mail(n) for n in range(count)]
        imap = mailbox.client()
        try:
            for raw in mails:
                imap.append("INBOX", None, None, raw)
        finally:
            imap.logout()
        with tempfile.TemporaryDirectory(prefix="hub-bench-email-") as folder:
            fetch = drain_baseline(mailbox, count, Path(folder) / "f", keep=False)
            print(f"imap   fetch    {count:>6} mails  {count / fetch:6.2f} s  {fetch:8.0f} mails/s")
            baseline = drain_baseline(mailbox, count, Path(folder) / "b", keep=True)
            print(
                f"imap   baseline {count:>6} mails  {count / baseline:6.2f} s"
                f"  {baseline:8.0f} mails/s"
            )
            hub = asyncio.run(drain_hub(mailbox, count, Path(folder) / "hub"))
        print(f"imap   hub      {count:>6} mails  {count / hub:6.2f} s  {hub:8.0f} mails/s")
        return baseline, hub
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30, help="passes over the corpus")
    parser.add_argument("--mails", type=int, default=300, help="mails in the IMAP mailbox")
    args = parser.parse_args(argv)
    parse_base, parse_hub = bench_parse(args.rounds)
    summary = f"email_parse_ratio={parse_hub / parse_base:.2f}"
    imap = bench_imap(args.mails)
    if imap is not None:
        summary += f" email_imap_ratio={imap[1] / imap[0]:.2f}"
    print(summary, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
