"""Campaign fixtures: a hub with an SMS account on the local Twilio peer and an
e-mail account on a local SMTP server, a marketer's token, and contacts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from hub.clock import FrozenClock
from hub.inbox.model import Consent, Contact, Identity
from hub.inbox.store import Store
from tests.channels.twilio_hub import add_agent, start_twilio_hub
from tests.conftest import Hub
from tests.peers.smtp_server import SmtpPeer
from tests.peers.twilio import TwilioPeer

# 10:00 in Vietnam, 23:00 the day before in New York (daylight saving time).
START = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)


@pytest.fixture
async def twilio_peer() -> AsyncIterator[TwilioPeer]:
    peer = TwilioPeer()
    await peer.start()
    yield peer
    await peer.stop()


@pytest.fixture
async def smtp_peer() -> AsyncIterator[SmtpPeer]:
    peer = await SmtpPeer().start()
    yield peer
    await peer.stop()


def email_account(peer: SmtpPeer, **options: Any) -> dict[str, Any]:
    return {
        "id": "news",
        "channel": "email",
        "name": "Shop news",
        "address": "news@shop.vn",
        "smtp_host": peer.host,
        "smtp_port": peer.port,
        "smtp_security": "none",
        **options,
    }


@dataclass
class CampaignHub:
    hub: Hub
    clock: FrozenClock
    marketer: str  # API token
    agent: str  # an agent's token (not allowed campaigns)

    @property
    def store(self) -> Store:
        return self.hub.runtime.store

    async def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        response = await self.hub.api(method, path, token or self.marketer, **kwargs)
        return response.status, await response.json()


@pytest.fixture
def campaign_hub(
    make_settings: Any,
    start_hub: Any,
    twilio_peer: TwilioPeer,
    smtp_peer: SmtpPeer,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Awaitable[CampaignHub]]:
    async def start(email_options: dict[str, Any] | None = None, **campaigns: Any) -> CampaignHub:
        clock = FrozenClock(START)
        settings_overrides = {
            "batch_size": 50,
            "concurrency": 5,
            "pump_interval_seconds": 0.1,
            "lock_seconds": 2,
            "defaults": {
                "rate_per_second": 0,
                "send_from": "07:00",
                "send_until": "22:00",
                "daily_cap": 2,
                "sms_opt_out_text": "Tu choi QC: soan TC gui 8xxx",
            },
            **campaigns,
        }

        def settings(**kwargs: Any) -> Any:
            return make_settings(campaigns=settings_overrides, **kwargs)

        hub = await start_twilio_hub(
            settings,
            start_hub,
            twilio_peer,
            monkeypatch,
            extra_accounts=[email_account(smtp_peer, **(email_options or {}))],
            clock=clock,
            voice={"enabled": False},
        )
        _, marketer = await add_agent(hub, "mai@shop.vn", role="marketer")
        _, agent = await add_agent(hub, "an@shop.vn", role="agent")
        return CampaignHub(hub, clock, marketer, agent)

    return start


def contact(
    name: str,
    *,
    phone: str | None = None,
    email: str | None = None,
    tags: tuple[str, ...] = ("vip",),
    timezone: str | None = None,
    opted_out: str | None = None,
    at: datetime = START,
    **attributes: Any,
) -> Contact:
    identities = []
    if phone:
        identities.append(Identity(channel="phone", address=phone))
    if email:
        identities.append(Identity(channel="email", address=email))
    consent = {}
    if opted_out:
        consent[opted_out] = Consent(status="opted_out", at=at, how="test")
    return Contact(
        name=name,
        identities=identities,
        tags=list(tags),
        timezone=timezone,
        consent=consent,
        attributes=attributes,
        created_at=at,
        updated_at=at,
    )
