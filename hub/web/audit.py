"""The audit trail: sign-ins, role changes, exports, merges and deletions, with
who did them and from where. Written after the action succeeded; viewable by
admins at `GET /api/v1/audit`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.clock import Clock
from hub.inbox.model import AuditEntry
from hub.inbox.store import Store

AUDIT_CLOCK = web.AppKey("audit_clock", Clock)


def client_address(request: web.Request) -> str:
    return request.remote or "unknown"


async def record(
    request: web.Request,
    store: Store,
    action: str,
    *,
    actor_id: str | None,
    target: str | None = None,
    **detail: Any,
) -> AuditEntry:
    """Append one entry to the audit log (with the caller's address)."""
    entry = AuditEntry(
        at=request.app[AUDIT_CLOCK].now(),
        actor_id=actor_id,
        action=action,
        target=target,
        detail={"address": client_address(request), **detail},
    )
    await store.add_audit(entry)
    return entry
