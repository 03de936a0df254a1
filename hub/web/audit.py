"""The audit trail: sign-ins, role changes, exports, merges and deletions, with
who did them and from where. Written after the action succeeded; viewable by
admins at `GET /api/v1/audit`."""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from hub.clock import Clock
from hub.inbox.model import AuditEntry
from hub.inbox.store import Store

AUDIT_CLOCK = web.AppKey("audit_clock", Clock)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
TRUSTED_PROXIES = web.AppKey("trusted_proxies", tuple[Network, ...])


def client_address(request: web.Request) -> str:
    """Where the request came from, for the sign-in guard and the audit log.

    Behind a reverse proxy every request comes from the proxy: counted per
    address, five wrong passwords from anyone would lock everyone out. When the
    peer is one of `server.trusted_proxies`, the client is the nearest
    `X-Forwarded-For` entry that is not a trusted proxy (what the proxy itself
    appended); entries further left are the client's own claims, and a peer that
    is not a trusted proxy is believed about nothing."""
    peer = request.remote or "unknown"
    trusted = request.config_dict.get(TRUSTED_PROXIES, ())
    if not trusted or not _within(peer, trusted):
        return peer
    hops = [
        hop.strip()
        for header in request.headers.getall("X-Forwarded-For", [])
        for hop in header.split(",")
    ]
    for hop in reversed(hops):
        if not _within(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # not an address: nothing to believe
        peer = hop
    return peer


def _within(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


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
