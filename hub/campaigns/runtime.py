"""Campaigns assembled from a hub runtime's parts (called by `hub.app`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from hub.campaigns.dispatch import Dispatcher
from hub.campaigns.service import CampaignService
from hub.campaigns.store import CampaignStore
from hub.campaigns.unsubscribe import UnsubscribeLinks
from hub.care.templates import Templates
from hub.keys import hub_secret_key

if TYPE_CHECKING:
    from hub.app import Runtime

log = logging.getLogger(__name__)


def public_url(runtime: Runtime) -> str:
    server = runtime.settings.server
    return server.public_url or f"http://{server.host}:{server.port}"


def build_campaigns(runtime: Runtime, store: CampaignStore) -> CampaignService:
    settings = runtime.settings
    links = UnsubscribeLinks(hub_secret_key(settings), public_url(runtime))
    mailing = [a.id for a in settings.accounts if a.channel == "email"]
    if mailing and not links.public_url.startswith("https://"):
        # RFC 8058 section 3.1: the one-click link must be https; Gmail and
        # Yahoo offer no unsubscribe button (and treat bulk mail without one
        # worse) otherwise.
        log.warning(
            "campaign e-mails' unsubscribe links are not https: set server.public_url"
            " to the hub's https address, or mail clients offer no one-click unsubscribe",
            extra={
                "event": "campaigns.unsubscribe_not_https",
                "public_url": links.public_url,
                "accounts": mailing,
            },
        )
    dispatcher = Dispatcher(
        store,
        runtime.channels,
        runtime.clock,
        settings,
        runtime.redis,
        Templates(settings.templates.default_language),
        links,
        runtime.bus,
    )

    async def enqueue(campaign_id: str) -> None:
        from hub.inbox.model import new_id

        await runtime.jobs.enqueue_campaign(campaign_id, turn=new_id())

    return CampaignService(
        store,
        dispatcher,
        runtime.channels,
        runtime.clock,
        enqueue,
        default_region=settings.inbox.default_region,
        links=links,
        inbox_store=runtime.store,
    )
