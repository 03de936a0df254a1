"""A yardstick for bench/ingest.py: the work of hub's API-channel ingest path,
written as leanly as Python allows, to run `bench/ingest.py --url` against.

    HUB_BENCH_SECRET=... python bench/ingest_floor.py --port 18123 --db /tmp/floor.db &
    HUB_BENCH_SECRET=... python bench/ingest.py --url http://127.0.0.1:18123 --pid $!

Per webhook, as hub does it: read the body, check its HMAC signature, parse
it, and in one group-committed SQLite transaction (WAL, synchronous=NORMAL,
a savepoint per message) find a repeat by external id, the contact by its
identity (or create both), the contact's latest conversation on the account
(or start one), insert the message and move the conversation's activity;
then publish `message.created` (and `conversation.created`) to Redis, one
pipeline per commit, and answer with the ids once committed. The tables carry
hub's indexes on the columns they keep.

What it leaves out is hub's: validation into models, phone and e-mail
normalisation, routing a new conversation to an agent, the in-process event
subscribers (care rules, SLA timers, campaign replies, live sockets), the
search index, metrics and logs. So `ingest_ratio` against it says what the
ingest target (>= 0.25 of the bare endpoint) asks of the work itself, and the
gap to hub's own figure is what hub's layers cost. Measured 2026-11-29 on the
2-vCPU machine, in one session: 5,240 msgs/s at 0.17 ms CPU a message, ratio
0.342, against hub's 3,000-3,500 msgs/s at 0.28-0.32 ms (ratio 0.20-0.235).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.process import new_event_loop  # noqa: E402

SECRET_ENV = "HUB_BENCH_SECRET"
SIGNATURE_HEADER = "X-Hub-Signature-256"
SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, tags TEXT NOT NULL, attributes TEXT NOT NULL,
    consent TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS identities (
    channel TEXT NOT NULL, address TEXT NOT NULL, contact_id TEXT NOT NULL,
    position INTEGER NOT NULL, PRIMARY KEY (channel, address)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS identities_by_contact ON identities (contact_id, position);
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, contact_id TEXT NOT NULL, account_id TEXT NOT NULL,
    channel TEXT NOT NULL, status TEXT NOT NULL, assignee_id TEXT,
    last_activity_at INTEGER NOT NULL, unread_count INTEGER NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_by_contact
    ON conversations (contact_id, account_id, last_activity_at DESC);
CREATE INDEX IF NOT EXISTS conversations_by_status
    ON conversations (status, last_activity_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS conversations_by_assignee
    ON conversations (assignee_id, status, last_activity_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, account_id TEXT NOT NULL,
    channel TEXT NOT NULL, direction TEXT NOT NULL, sender TEXT NOT NULL, text TEXT NOT NULL,
    attachments TEXT NOT NULL, external_id TEXT, meta TEXT NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_external_id
    ON messages (channel, account_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, created_at, id);
"""


class Floor:
    def __init__(self, db: sqlite3.Connection, redis: Redis, secret: bytes, account: str) -> None:
        self.db = db
        self.redis = redis
        self.secret = secret
        self.account = account
        self.channel = f"api:{account}"
        self.group: asyncio.Future[None] | None = None
        self.published: list[str] = []
        self.units = 0

    def join(self) -> asyncio.Future[None]:
        """The open group commit, begun if none is: committed on the loop's next turn."""
        if self.group is None:
            self.db.execute("BEGIN IMMEDIATE")
            loop = asyncio.get_running_loop()
            self.group = loop.create_future()
            loop.call_soon(lambda: loop.create_task(self.commit()))
        return self.group

    async def commit(self) -> None:
        group, self.group = self.group, None
        assert group is not None
        self.db.execute("COMMIT")
        events, self.published = self.published, []
        group.set_result(None)
        if events:
            pipe = self.redis.pipeline(transaction=False)
            for event in events:
                pipe.publish("floor:events", event)
            await pipe.execute()

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get(SIGNATURE_HEADER, ""), expected):
            return web.json_response({"error": "signature does not match"}, status=401)
        try:
            payload: dict[str, Any] = json.loads(body)
            external_id, sender = str(payload["external_id"]), payload["from"]
            address = str(sender["id"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "not an API-channel message"}, status=400)
        now = int(time.time() * 1000)
        group = self.join()
        db = self.db
        db.execute("SAVEPOINT unit")
        try:
            stored = db.execute(
                "SELECT id, conversation_id FROM messages"
                " WHERE channel = 'api' AND account_id = ? AND external_id = ?",
                (self.account, external_id),
            ).fetchone()
            if stored is not None:
                db.execute("RELEASE unit")
                await asyncio.shield(group)
                return web.json_response(
                    {"status": "duplicate", "message_id": stored[0], "conversation_id": stored[1]}
                )
            owner = db.execute(
                "SELECT contact_id FROM identities WHERE channel = ? AND address = ?",
                (self.channel, address),
            ).fetchone()
            conversation_id = None
            if owner is None:
                contact_id = secrets.token_hex(12)
                db.execute(
                    "INSERT INTO contacts VALUES (?, ?, '[]', '{}', '{}', ?, ?)",
                    (contact_id, str(sender.get("name") or ""), now, now),
                )
                db.execute(
                    "INSERT INTO identities VALUES (?, ?, ?, 0)",
                    (self.channel, address, contact_id),
                )
            else:
                contact_id = owner[0]
                latest = db.execute(
                    "SELECT id, status FROM conversations WHERE contact_id = ? AND account_id = ?"
                    " ORDER BY last_activity_at DESC LIMIT 1",
                    (contact_id, self.account),
                ).fetchone()
                if latest is not None and latest[1] != "resolved":
                    conversation_id = latest[0]
            if conversation_id is None:
                conversation_id = secrets.token_hex(12)
                db.execute(
                    "INSERT INTO conversations VALUES (?, ?, ?, 'api', 'open', NULL, ?, 1, ?, ?)",
                    (conversation_id, contact_id, self.account, now, now, now),
                )
                self.published.append(
                    json.dumps({"type": "conversation.created", "id": conversation_id})
                )
            else:
                db.execute(
                    "UPDATE conversations SET unread_count = unread_count + 1,"
                    " last_activity_at = MAX(last_activity_at, ?), updated_at = ? WHERE id = ?",
                    (now, now, conversation_id),
                )
            message_id = secrets.token_hex(12)
            db.execute(
                "INSERT INTO messages"
                " VALUES (?, ?, ?, 'api', 'inbound', ?, ?, '[]', ?, '{}', ?, ?)",
                (
                    message_id,
                    conversation_id,
                    self.account,
                    json.dumps({"kind": "contact", "id": contact_id}),
                    str(payload.get("text") or ""),
                    external_id,
                    now,
                    now,
                ),
            )
            db.execute("RELEASE unit")
        except BaseException:
            db.execute("ROLLBACK TO unit")
            db.execute("RELEASE unit")
            raise
        self.published.append(
            json.dumps(
                {"type": "message.created", "id": message_id, "conversation_id": conversation_id}
            )
        )
        await asyncio.shield(group)
        return web.json_response(
            {
                "status": "accepted",
                "message_id": message_id,
                "conversation_id": conversation_id,
                "contact_id": contact_id,
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=18123)
    parser.add_argument("--db", type=Path, required=True, help="the SQLite file (created)")
    parser.add_argument("--account", default="bench", help="as bench/ingest.py posts to")
    args = parser.parse_args()
    db = sqlite3.connect(args.db, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    redis = Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    floor = Floor(db, redis, os.environ[SECRET_ENV].encode(), args.account)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=1_048_576)
    app.router.add_post(f"/webhooks/api/{args.account}", floor.receive)
    app.router.add_get("/healthz", healthz)
    web.run_app(
        app, host="127.0.0.1", port=args.port, print=None, access_log=None, loop=new_event_loop()
    )


if __name__ == "__main__":
    main()
