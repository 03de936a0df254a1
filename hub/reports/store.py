"""The queries reports need, over the inbox's own database (one backend module
each: SQL on SQLite, aggregation pipelines on MongoDB).

Counts are grouped by the database; what needs every conversation (time
percentiles, business hours) comes back as one small row per conversation,
found through indexes on the conversations' own times — never through an
index on messages, which every inbound message would have to update.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from hub.reports.model import (
    ConversationTimes,
    MessageCount,
    ReportFilter,
    SatisfactionCount,
    Waiting,
)


class ReportStore(ABC):
    @abstractmethod
    async def open(self) -> None:
        """Create the indexes reports use (idempotent). The inbox store must be open."""

    async def catch_up(self, max_seconds: float | None = None) -> int:
        """Bring what the store keeps for reports up to date (the embedded
        store's message rollup); returns how much it went through. Nothing to
        do by default. The worker calls it every minute."""
        return 0

    @abstractmethod
    async def conversation_times(self, report: ReportFilter) -> list[ConversationTimes]:
        """Every conversation of the filter opened in the period or resolved in
        it (each once), grouped by account, team, assignee and channel."""

    @abstractmethod
    async def message_counts(self, report: ReportFilter, bucket_ms: int) -> list[MessageCount]:
        """Inbound and outbound messages created in the period, counted per
        `bucket_ms`-long bucket of time (from the epoch), channel and direction."""

    @abstractmethod
    async def message_totals(self, report: ReportFilter) -> tuple[int, int]:
        """(inbound, outbound) messages created in the period."""

    @abstractmethod
    async def agent_messages(self, report: ReportFilter) -> dict[str, int]:
        """Agent id → outbound messages that agent wrote in the period."""

    @abstractmethod
    async def satisfaction(self, report: ReportFilter) -> list[SatisfactionCount]:
        """Survey answers given in the period, per assignee and score."""

    @abstractmethod
    async def waiting(self, report: ReportFilter) -> Waiting:
        """Conversations of the filter's slices open with nobody assigned, now
        (the period does not apply), and since when the oldest waits."""
