"""Contact imports started from the workspace: the uploaded CSV is imported in
the background by the same `ContactImporter` as `hub import`, and its progress
and report are kept in Redis so that any hub process can answer "how far is
it?" (the page polls) and the report outlives the request that started it.

An import runs as a task of the process that took the upload. Its state is
written every half second while it runs; if that process dies, the state
stops moving and is reported `interrupted` (rows already imported stay: each
row is its own transaction, and importing the file again merges them).
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, Field
from redis.asyncio import Redis
from redis.exceptions import RedisError

from hub.campaigns.csv_text import UTF8, delimiter_of
from hub.campaigns.importer import ContactImporter, ImportReport, column_map, rejects_csv
from hub.clock import Clock
from hub.errors import HubError, InvalidRequest, NotFound, QueueUnavailable
from hub.inbox.model import Moment, new_id
from hub.inbox.store import Store

log = logging.getLogger(__name__)

ImportStatus = Literal["running", "done", "failed", "interrupted"]
KEEP_SECONDS = 7 * 24 * 3600  # how long a finished import's report can be read
SAVE_EVERY_SECONDS = 0.5
STALE_SECONDS = 60.0  # a running import whose state has not moved for this long died
UNREACHABLE = "Redis is not reachable: the import's state is kept there"
# Rows written per transaction: the event loop is held while one is written
# (about 0.2 ms a row), so a few dozen keep a serving hub answering promptly.
ROWS_PER_TRANSACTION = 50
SHOWN_REJECTED = 1_000  # rejected rows in the JSON state; the CSV download has them all


class RejectedRow(BaseModel):
    line: int = Field(description="line in the file, the header being line 1")
    reason: str
    row: dict[str, str]


class ContactImport(BaseModel):
    """An import's state: what the page shows while it runs and after."""

    id: str
    status: ImportStatus
    file_name: str = ""
    started_by: str | None = None
    started_at: Moment
    finished_at: Moment | None = None
    bytes_total: int = Field(description="characters of the file")
    bytes_done: int = Field(0, description="characters read so far")
    rows: int = Field(0, description="rows handled so far")
    created: int = 0
    merged: int = 0
    rejected_count: int = 0
    rejected: list[RejectedRow] = Field(
        default_factory=list, description=f"the first {SHOWN_REJECTED} rejected rows"
    )
    blank: int = Field(0, description="rows without a filled cell, skipped")
    encoding: str = Field(
        UTF8, description="UTF-8, UTF-16 or Windows-1258: what the file was read as"
    )
    delimiter: str = Field(",", description="the cell separator, given or found from the header")
    error: str | None = Field(None, description="why the import stopped (status failed)")
    heartbeat: float = Field(0.0, description="wall-clock seconds of the last save")


class _Counted:
    """The file's lines, counting the characters handed out (for progress)."""

    def __init__(self, text: str) -> None:
        self.lines = io.StringIO(text, newline="")
        self.read = 0

    def __iter__(self) -> Iterator[str]:
        for line in self.lines:
            self.read += len(line)
            yield line


def header_of(text: str, delimiter: str | None = None) -> list[str]:
    """The first row of a CSV text (its column names), the delimiter found from
    it when not given. Raises InvalidRequest."""
    delimiter = delimiter or delimiter_of(text)
    try:
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), None)
    except csv.Error as exc:
        raise InvalidRequest(f"the file is not CSV this hub can read: {exc}") from exc
    if not header:
        raise InvalidRequest("the file is empty: it needs a header row")
    return header


class ContactImports:
    """Starts imports and answers their state."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        store: Store,
        clock: Clock,
        *,
        default_region: str,
        save_every: float = SAVE_EVERY_SECONDS,
    ) -> None:
        self.save_every = save_every  # seconds between writes of a running import's state
        self.redis = redis
        self.prefix = prefix
        self.store = store
        self.clock = clock
        self.default_region = default_region
        self.tasks: set[asyncio.Task[None]] = set()

    def _key(self, import_id: str, part: str = "") -> str:
        return f"{self.prefix}:contact-import:{import_id}{part}"

    async def start(
        self,
        text: str,
        *,
        mapping: Mapping[str, str],
        tags: Sequence[str] = (),
        region: str | None = None,
        delimiter: str | None = None,
        encoding: str = UTF8,
        file_name: str = "",
        started_by: str | None = None,
    ) -> ContactImport:
        """Check the header and the mapping now (a bad one is refused with
        InvalidRequest before anything runs), then import in the background.
        `text` is the file as `csv_text.decode` read it, `encoding` what it was
        read as (shown in the report); without a `delimiter`, the header says."""
        delimiter = delimiter or delimiter_of(text)
        column_map(header_of(text, delimiter), mapping)
        state = ContactImport(
            encoding=encoding,
            delimiter=delimiter,
            id=new_id(),
            status="running",
            file_name=file_name[:200],
            started_by=started_by,
            started_at=self.clock.now(),
            bytes_total=len(text),
        )
        await self._save(state)
        importer = ContactImporter(
            self.store, self.clock.now, default_region=region or self.default_region
        )
        task = asyncio.create_task(
            self._run(state, importer, text, dict(mapping), list(tags), delimiter)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return state

    async def _run(
        self,
        state: ContactImport,
        importer: ContactImporter,
        text: str,
        mapping: dict[str, str],
        tags: list[str],
        delimiter: str,
    ) -> None:
        lines = _Counted(text)
        report = ImportReport()

        async def save_now_and_then() -> None:
            while True:
                await asyncio.sleep(self.save_every)
                self._fill(state, report, lines.read)
                await self._save(state)

        saver = asyncio.create_task(save_now_and_then())
        try:
            await importer.import_csv(
                lines,
                mapping=mapping,
                extra_tags=tags,
                delimiter=delimiter,
                report=report,
                rows_per_transaction=ROWS_PER_TRANSACTION,
            )
            state.status = "done"
        except csv.Error as exc:
            state.status, state.error = "failed", f"the file is not CSV this hub can read: {exc}"
        except HubError as exc:
            state.status, state.error = "failed", exc.message
        except Exception:
            log.exception("contact import failed", extra={"event": "import.error", "id": state.id})
            state.status, state.error = "failed", "the import stopped on an unexpected error"
        finally:
            saver.cancel()
        state.finished_at = self.clock.now()
        self._fill(state, report, len(text) if state.status == "done" else lines.read)
        try:
            rejected = rejects_csv(report)
            await self.redis.set(self._key(state.id, ":rejected"), rejected, ex=KEEP_SECONDS)
            await self._save(state)
        except (RedisError, OSError):
            log.warning("import not saved", extra={"event": "import.unsaved", "id": state.id})
        log.info(
            "contact import finished",
            extra={
                "event": "import.finished",
                "id": state.id,
                "status": state.status,
                "created": report.created,
                "merged": report.merged,
                "rejected": len(report.rejected),
            },
        )

    @staticmethod
    def _fill(state: ContactImport, report: ImportReport, read: int) -> None:
        state.bytes_done = min(read, state.bytes_total)
        state.rows = report.rows
        state.created = report.created
        state.merged = report.merged
        state.rejected_count = len(report.rejected)
        state.blank = report.blank
        shown = len(state.rejected)
        state.rejected.extend(
            RejectedRow(line=r.line, reason=r.reason, row=r.row)
            for r in report.rejected[shown:SHOWN_REJECTED]
        )

    async def _save(self, state: ContactImport) -> None:
        state.heartbeat = time.time()
        try:
            await self.redis.set(self._key(state.id), state.model_dump_json(), ex=KEEP_SECONDS)
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(UNREACHABLE) from exc

    async def get(self, import_id: str) -> ContactImport:
        try:
            raw = await self.redis.get(self._key(import_id))
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(UNREACHABLE) from exc
        if raw is None:
            raise NotFound(f"import {import_id} does not exist (reports are kept for 7 days)")
        state = ContactImport.model_validate_json(raw)
        if state.status == "running" and time.time() - state.heartbeat > STALE_SECONDS:
            state.status = "interrupted"
            state.error = "the hub process running this import stopped; import the file again"
        return state

    async def rejected_csv(self, import_id: str) -> str:
        """Every rejected row (line, reason, the row's cells) of a finished import."""
        state = await self.get(import_id)
        if state.status == "running":
            raise InvalidRequest("the import is still running: the rejected rows come at its end")
        raw = await self.redis.get(self._key(import_id, ":rejected"))
        return raw.decode() if isinstance(raw, bytes) else (raw or "line,reason\n")

    async def close(self) -> None:
        """Stop running imports (the hub is stopping); their state ends interrupted."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
