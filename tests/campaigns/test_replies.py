"""What comes back from a campaign: a customer's reply is linked to the send it
answers (once, within the reply window or by the e-mail's own references), and
a bounce fails the recipient and keeps later campaigns away from the address."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from typing import Any

from hub.inbox.bounces import is_bouncing
from hub.inbox.store import ConversationFilter
from tests.campaigns.conftest import CampaignHub, contact
from tests.campaigns.test_campaigns import _status, create
from tests.channels.email.mails import mail
from tests.channels.email.test_bounces import bounce_of
from tests.channels.twilio_hub import text_in
from tests.conftest import eventually
from tests.peers.smtp_server import SmtpPeer
from tests.peers.twilio import TwilioPeer


async def settled(app: CampaignHub) -> None:
    replies = app.hub.runtime.campaign_replies
    assert replies is not None
    await replies.settled()


async def progress(app: CampaignHub, campaign_id: str) -> dict[str, Any]:
    _, campaign = await app.api("GET", f"/api/v1/campaigns/{campaign_id}")
    return dict(campaign["progress"])


async def test_an_sms_reply_in_the_window_counts_once_and_labels_the_conversation(
    campaign_hub: Any, twilio_peer: TwilioPeer
) -> None:
    app: CampaignHub = await campaign_hub()
    binh = contact("Bình", phone="+84901000001")
    hoa = contact("Hoa", phone="+84901000002")
    for person in (binh, hoa):
        await app.store.add_contact(person)
    campaign = await create(app, channel="sms", account_id="hotline", text="Sale 20%!")
    await app.api("POST", f"/api/v1/campaigns/{campaign['id']}/launch")
    await eventually(lambda: _status(app, campaign["id"], "completed"))

    app.clock.advance(timedelta(hours=2))
    await text_in(twilio_peer, "Còn size M không?", sid="SM" + "1" * 32, sender="+84901000001")
    await settled(app)
    await text_in(twilio_peer, "Mình lấy 2 cái", sid="SM" + "2" * 32, sender="+84901000001")
    await settled(app)
    app.clock.advance(timedelta(days=4))  # past the 72-hour window
    await text_in(twilio_peer, "Chào shop", sid="SM" + "3" * 32, sender="+84901000002")
    await settled(app)

    assert (await progress(app, campaign["id"]))["replied"] == 1
    _, recipient = await app.api("GET", f"/api/v1/campaigns/{campaign['id']}/recipients/{binh.id}")
    [answered] = (
        await app.store.list_conversations(ConversationFilter(contact_id=binh.id), limit=5)
    ).items
    assert recipient["reply_conversation_id"] == answered.id
    assert recipient["replied_at"] is not None
    assert answered.labels == ["campaign-reply"]
    [late] = (
        await app.store.list_conversations(ConversationFilter(contact_id=hoa.id), limit=5)
    ).items
    assert late.labels == []


async def test_a_forged_bounce_naming_a_guessed_message_id_changes_nothing(
    campaign_hub: Any, smtp_peer: SmtpPeer
) -> None:
    # Anyone can mail the shop a "bounce". Naming a campaign mail by what it is
    # made of (the campaign and contact ids, as hub's Message-IDs once were) or
    # with a wrong tag must not fail the send nor flag the address as bouncing.
    app: CampaignHub = await campaign_hub()
    lan = contact("Lan", email="lan@example.com")
    await app.store.add_contact(lan)
    first = await create(app, channel="email", account_id="news", subject="Ưu đãi", text="Sale!")
    await app.api("POST", f"/api/v1/campaigns/{first['id']}/launch")
    await eventually(lambda: _status(app, first["id"], "completed"))
    [received] = smtp_peer.received
    genuine = email.message_from_bytes(received.data, policy=email.policy.default)["Message-ID"]
    recipient_key, _ = genuine.strip("<>").split("@")[0].removesuffix(".hub").rsplit(".", 1)
    domain = genuine.strip("<>").split("@")[1]
    channel = app.hub.runtime.channels["news"]
    for forged in (f"<{recipient_key}.hub@{domain}>", f"<{recipient_key}.{'0' * 16}.hub@{domain}>"):
        await channel.receive(bounce_of(forged), source={})  # type: ignore[attr-defined]
    _, recipient = await app.api("GET", f"/api/v1/campaigns/{first['id']}/recipients/{lan.id}")
    assert recipient["status"] == "sent"
    stored = await app.store.get_contact(lan.id)
    assert stored is not None and not is_bouncing(stored, "lan@example.com")


async def test_an_email_bounce_fails_the_recipient_and_later_campaigns_skip_the_address(
    campaign_hub: Any, smtp_peer: SmtpPeer
) -> None:
    app: CampaignHub = await campaign_hub()
    binh = contact("Bình", email="binh@example.com")
    gone = contact("Gone", email="khong-ton-tai@gmail.com")
    for person in (binh, gone):
        await app.store.add_contact(person)
    first = await create(app, channel="email", account_id="news", subject="Ưu đãi", text="Sale!")
    await app.api("POST", f"/api/v1/campaigns/{first['id']}/launch")
    await eventually(lambda: _status(app, first["id"], "completed"))
    sent = {
        received.rcpt_tos[0]: email.message_from_bytes(received.data, policy=email.policy.default)
        for received in smtp_peer.received
    }
    channel = app.hub.runtime.channels["news"]

    outcome = await channel.receive(
        bounce_of(sent["khong-ton-tai@gmail.com"]["Message-ID"]), source={}
    )  # type: ignore[attr-defined]
    assert outcome is None  # applied to the campaign, not stored as a message
    _, failed = await app.api("GET", f"/api/v1/campaigns/{first['id']}/recipients/{gone.id}")
    assert failed["status"] == "failed"
    assert failed["reason"].startswith("bounced: 550-5.1.1 The email account")
    flagged = await app.store.get_contact(gone.id)
    assert flagged is not None and is_bouncing(flagged, "khong-ton-tai@gmail.com")

    # Binh answers days later, past the window: the reply names the campaign mail.
    app.clock.advance(timedelta(days=5))
    campaign_mail = sent["binh@example.com"]
    await channel.receive(  # type: ignore[attr-defined]
        mail(
            1,
            sender="binh@example.com",
            to="news@shop.vn",
            subject="Re: Ưu đãi",
            in_reply_to=campaign_mail["Message-ID"],
            references=[campaign_mail["Message-ID"]],
        ),
        source={},
    )
    await settled(app)
    figures = await progress(app, first["id"])
    assert (figures["replied"], figures["failed"], figures["sent"]) == (1, 1, 1)

    smtp_peer.received.clear()
    second = await create(app, channel="email", account_id="news", subject="Lần 2", text="Sale!")
    await app.api("POST", f"/api/v1/campaigns/{second['id']}/launch")
    await eventually(lambda: _status(app, second["id"], "completed"))
    assert [r.rcpt_tos for r in smtp_peer.received] == [["binh@example.com"]]
    assert (await progress(app, second["id"]))["bouncing"] == 1
