"""Prometheus metrics for /metrics.

Counters are per process, as Prometheus expects (it sums them across scraped
processes). Figures every process must agree on — messages by delivery
status, jobs waiting — are read from the store and Redis at scrape time.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # `_created` series only add noise here
        self.registry = CollectorRegistry(auto_describe=True)
        self.ingested = Counter(
            "hub_messages_ingested",
            "Inbound messages stored",
            ["channel"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "hub_messages_duplicate",
            "Inbound messages received again and ignored",
            ["channel"],
            registry=self.registry,
        )
        self.delivered = Counter(
            "hub_messages_delivered",
            "Outbound messages accepted by their provider",
            ["channel"],
            registry=self.registry,
        )
        self.failed = Counter(
            "hub_messages_failed",
            "Outbound messages given up on",
            ["channel"],
            registry=self.registry,
        )
        self.delivery_retries = Counter(
            "hub_delivery_retries",
            "Delivery attempts that failed and were scheduled again",
            ["channel"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "hub_queue_depth", "Jobs waiting in the job queue", registry=self.registry
        )
        self.messages_by_status = Gauge(
            "hub_messages_by_status",
            "Outbound messages in the store by delivery status",
            ["status"],
            registry=self.registry,
        )

        # Each channel's child counters, looked up once: `labels()` takes a lock
        # and builds its key on every call, and ingest counts every message.
        self._inbound: dict[tuple[str, bool], Any] = {}

    def count_inbound(self, channel: str, *, duplicate: bool) -> None:
        """One inbound message stored (or recognised as a repeat) on `channel`."""
        child = self._inbound.get((channel, duplicate))
        if child is None:
            counter = self.duplicates if duplicate else self.ingested
            child = self._inbound[(channel, duplicate)] = counter.labels(channel=channel)
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
