"""Campaigns end to end in one process: the API, the worker's turns, the local
Twilio and SMTP peers. Time is injected (a frozen clock); nothing sleeps to wait
for time to pass."""

from __future__ import annotations

import email
import email.policy
import logging
from datetime import timedelta
from typing import Any

import pytest

from hub.events import Event
from hub.inbox.store import ConversationFilter
from tests.campaigns.conftest import CampaignHub, contact, email_account
from tests.channels.twilio_hub import text_in
from tests.conftest import eventually
from tests.peers.dkim_dns import DkimDns
from tests.peers.smtp_server import SmtpPeer
from tests.peers.twilio import TwilioPeer


async def create(app: CampaignHub, **fields: Any) -> dict[str, Any]:
    status, audience = await app.api(
        "POST", "/api/v1/audiences", json={"name": "VIP", "filter": {"tags_any": ["vip"]}}
    )
    assert status == 201, audience
    body = {"name": "Tết sale", "audience_id": audience["id"], **fields}
    status, campaign = await app.api("POST", "/api/v1/campaigns", json=body)
    assert status == 201, campaign
    return dict(campaign)


async def finished(app: CampaignHub, campaign_id: str, *, sent: int) -> dict[str, Any]:
    result: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal result
        _, result = await app.api("GET", f"/api/v1/campaigns/{campaign_id}")
        progress = result["progress"]
        return bool(progress["sent"] == sent and progress["sending"] == 0)

    await eventually(done, timeout=15)
    return result


async def test_sms_campaign_sends_once_each_skips_opted_out_and_holds_quiet_hours(
    campaign_hub: Any, twilio_peer: TwilioPeer
) -> None:
    app: CampaignHub = await campaign_hub()
    people = [
        contact("Nguyễn Văn Bình", phone="+84901000001"),
        contact("Trần Thị Hoa", phone="+84901000002"),
        contact("Lê Văn Cường", phone="+84901000003", opted_out="sms"),
        contact("John Smith", phone="+12125550100", timezone="America/New_York"),
        contact("Mail Only", email="only@example.com"),
        contact("Not VIP", phone="+84901000009", tags=("other",)),
    ]
    for person in people:
        await app.store.add_contact(person)
    status, counted = await app.api(
        "POST", "/api/v1/audiences/count", json={"filter": {"tags_any": ["vip"]}, "channel": "sms"}
    )
    assert (status, counted) == (200, {"count": 4})
    campaign = await create(
        app, channel="sms", account_id="hotline", text="Chào {{ contact.given_name }}, giảm 20%!"
    )
    status, preview = await app.api(
        "POST", f"/api/v1/campaigns/{campaign['id']}/preview", json={"contact_id": people[0].id}
    )
    assert status == 200 and preview["text"].startswith("Chào Bình, giảm 20%!")
    status, launched = await app.api("POST", f"/api/v1/campaigns/{campaign['id']}/launch")
    assert status == 200 and launched["recipient_count"] == 4, launched

    result = await finished(app, campaign["id"], sent=2)
    progress = result["progress"]
    assert progress["opted_out"] == 1 and progress["waiting"] == 1 and progress["pending"] == 1
    assert result["status"] == "running"  # New York's recipient waits for 07:00 there
    bodies = {m.get("To"): m.get("Body") for m in twilio_peer.sent}
    assert sorted(bodies) == ["+84901000001", "+84901000002"]
    assert bodies["+84901000002"] == "Chào Hoa, giảm 20%!\nTu choi QC: soan TC gui 8xxx"

    app.clock.advance(timedelta(hours=8))  # 07:00 in New York
    result = await finished(app, campaign["id"], sent=3)
    await eventually(lambda: _status(app, campaign["id"], "completed"))
    assert len(twilio_peer.sent) == 3 and twilio_peer.sent[-1].get("To") == "+12125550100"
    status, page = await app.api(
        "GET", f"/api/v1/campaigns/{campaign['id']}/recipients?status=skipped"
    )
    assert [r["reason"] for r in page["items"]] == ["opted_out"]


async def test_a_campaign_of_many_batches_read_ahead_sends_each_once_and_checks_each(
    campaign_hub: Any, twilio_peer: TwilioPeer
) -> None:
    # Batches of 4 with 3 sends in flight: each batch is read and checked while
    # the one before it sends, across a pass of several batches.
    app: CampaignHub = await campaign_hub(batch_size=4, concurrency=3)
    people = [
        contact(
            f"Khách {n}",
            phone=f"+849010001{n:02d}",
            opted_out="sms" if n % 5 == 3 else None,
            timezone="America/New_York" if n == 17 else None,
        )
        for n in range(23)
    ]
    for person in people:
        await app.store.add_contact(person)
    campaign = await create(app, channel="sms", account_id="hotline", text="Hi {{ contact.name }}")
    status, launched = await app.api("POST", f"/api/v1/campaigns/{campaign['id']}/launch")
    assert status == 200 and launched["recipient_count"] == 23

    result = await finished(app, campaign["id"], sent=23 - 4 - 1)
    progress = result["progress"]
    assert (progress["opted_out"], progress["waiting"], progress["failed"]) == (4, 1, 0)
    bodies = [(m.get("To"), m.get("Body")) for m in twilio_peer.sent]
    expected = {
        f"+849010001{n:02d}": f"Hi Khách {n}\nTu choi QC: soan TC gui 8xxx"
        for n in range(23)
        if n % 5 != 3 and n != 17
    }
    assert len(bodies) == len(expected) and dict(bodies) == expected


async def _announced(announced: list[dict[str, Any]], status: str) -> bool:
    return bool(announced) and announced[-1]["status"] == status


async def _status(app: CampaignHub, campaign_id: str, wanted: str) -> bool:
    _, campaign = await app.api("GET", f"/api/v1/campaigns/{campaign_id}")
    return bool(campaign["status"] == wanted)


async def test_email_campaign_carries_one_click_unsubscribe_that_works(
    campaign_hub: Any, smtp_peer: SmtpPeer
) -> None:
    app: CampaignHub = await campaign_hub()
    announced: list[dict[str, Any]] = []

    async def listen(event: Event) -> None:
        announced.append(event.data)

    app.hub.runtime.bus.subscribe("campaign.progress", listen)
    binh = contact("Nguyễn Văn Bình", email="binh@example.com")
    await app.store.add_contact(binh)
    campaign = await create(
        app,
        channel="email",
        account_id="news",
        subject="Ưu đãi cho {{ contact.given_name }}",
        text="Xin chào {{ contact.name }}!",
    )
    await app.api("POST", f"/api/v1/campaigns/{campaign['id']}/launch")
    await finished(app, campaign["id"], sent=1)
    await eventually(lambda: _announced(announced, "completed"))
    assert announced[-1]["sent"] == 1 and announced[-1]["campaign_id"] == campaign["id"]
    [received] = smtp_peer.received
    mail = email.message_from_bytes(received.data, policy=email.policy.default)
    assert mail["Subject"] == "Ưu đãi cho Bình" and received.rcpt_tos == ["binh@example.com"]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = mail["List-Unsubscribe"].strip("<>")
    # As it is on the wire: a URL in angle brackets, never RFC 2047-encoded
    # (mail clients would not offer the one-click unsubscribe).
    assert f"\r\nList-Unsubscribe: <{link}>\r\n".encode() in received.data
    # The same link under the mail, in the contact's language, a link in the HTML.
    text, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().endswith(f"\r\n-- \r\nHủy đăng ký nhận thư: {link}\r\n")
    assert f'Hủy đăng ký nhận thư: <a href="{link}">{link}</a>' in html.get_content()
    path = link.split("/unsubscribe/", 1)[1]

    # A mail scanner's GET changes nothing; the one-click POST unsubscribes.
    response = await app.hub.client.get(f"/unsubscribe/{path}")
    assert response.status == 200
    assert "email" not in (await app.store.get_contact(binh.id)).consent  # type: ignore[union-attr]
    response = await app.hub.client.post(
        f"/unsubscribe/{path}", data={"List-Unsubscribe": "One-Click"}
    )
    assert response.status == 200
    stored = await app.store.get_contact(binh.id)
    assert stored is not None and stored.consent["email"].status == "opted_out"
    response = await app.hub.client.post(f"/unsubscribe/{path[:-2]}xx")
    assert response.status == 404

    second = await create(app, channel="email", account_id="news", text="Lần nữa")
    await app.api("POST", f"/api/v1/campaigns/{second['id']}/launch")
    await eventually(lambda: _status(app, second["id"], "completed"))
    _, result = await app.api("GET", f"/api/v1/campaigns/{second['id']}")
    assert result["progress"]["opted_out"] == 1 and len(smtp_peer.received) == 1


async def test_email_campaign_signs_its_one_click_unsubscribe_headers_with_dkim(
    campaign_hub: Any, smtp_peer: SmtpPeer, dkim_dns: DkimDns, monkeypatch: Any
) -> None:
    """RFC 8058 section 4: List-Unsubscribe and List-Unsubscribe-Post MUST be
    covered by the DKIM signature, or Gmail and Yahoo do not offer one-click
    unsubscribe (and count the bulk mail against the sender)."""
    monkeypatch.setenv("HUB_TEST_DKIM_KEY", dkim_dns.private_key)
    app: CampaignHub = await campaign_hub(
        email_options={
            "dkim_selector": dkim_dns.selector,
            "dkim_private_key_env": "HUB_TEST_DKIM_KEY",
        }
    )
    await app.store.add_contact(contact("Nguyễn Văn Bình", email="binh@example.com"))
    campaign = await create(app, channel="email", account_id="news", text="Xin chào!")
    await app.api("POST", f"/api/v1/campaigns/{campaign['id']}/launch")
    await finished(app, campaign["id"], sent=1)
    [received] = smtp_peer.received
    assert dkim_dns.verify(received.data)  # the bytes the receiver got
    signed = dkim_dns.signed_headers(received.data)
    for name in ("from", "list-unsubscribe", "list-unsubscribe-post", "precedence"):
        assert name in signed, name
    # A relay that rewrites the link (or drops the one-click line) breaks it.
    head, body = received.data.split(b"\r\n\r\n", 1)
    tampered = head.replace(b"List-Unsubscribe: <", b"List-Unsubscribe: <https://evil.test/?")
    assert tampered != head and not dkim_dns.verify(tampered + b"\r\n\r\n" + body)
    dropped = head.replace(b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click", b"")
    assert dropped != head and not dkim_dns.verify(dropped + b"\r\n\r\n" + body)


async def test_daily_cap_skips_the_message_over_it_in_the_recipients_day(
    campaign_hub: Any, twilio_peer: TwilioPeer
) -> None:
    app: CampaignHub = await campaign_hub(defaults={"daily_cap": 1, "rate_per_second": 0})
    await app.store.add_contact(contact("Bình", phone="+84901000001"))
    first = await create(app, channel="sms", account_id="hotline", text="Một")
    await app.api("POST", f"/api/v1/campaigns/{first['id']}/launch")
    await eventually(lambda: _status(app, first["id"], "completed"))
    second = await create(app, channel="sms", account_id="hotline", text="Hai")
    await app.api("POST", f"/api/v1/campaigns/{second['id']}/launch")
    await eventually(lambda: _status(app, second["id"], "completed"))
    _, result = await app.api("GET", f"/api/v1/campaigns/{second['id']}")
    assert result["progress"]["frequency_capped"] == 1
    # (these defaults set no opt-out text: none is appended)
    assert [m.get("Body") for m in twilio_peer.sent] == ["Một"]


async def test_campaign_api_refuses_bad_input_and_wrong_roles(campaign_hub: Any) -> None:
    app: CampaignHub = await campaign_hub()
    status, body = await app.api("GET", "/api/v1/campaigns", token=app.agent)
    assert status == 403 and "marketer" in body["error"]["message"]
    _, audience = await app.api("POST", "/api/v1/audiences", json={"name": "All"})
    base = {"name": "x", "audience_id": audience["id"], "text": "Hi"}
    for fields, problem in [
        ({"channel": "sms", "account_id": "news"}, "email account"),
        ({"channel": "sms", "account_id": "nope"}, "no account"),
        ({"channel": "sms", "account_id": "hotline", "text": "{{ contact.nam }"}, "text"),
        ({"channel": "sms", "account_id": "hotline", "text": "{{ secret }}"}, "unknown variable"),
        ({"channel": "fax", "account_id": "hotline"}, "channel"),
    ]:
        status, body = await app.api("POST", "/api/v1/campaigns", json={**base, **fields})
        assert status == 422 and problem in body["error"]["message"], (fields, body)
    status, body = await app.api(
        "POST", "/api/v1/audiences", json={"name": "x", "filter": {"attributes": {"a'b": 1}}}
    )
    assert status == 422 and "attribute" in body["error"]["message"]
    _, campaign = await app.api(
        "POST", "/api/v1/campaigns", json={**base, "channel": "sms", "account_id": "hotline"}
    )
    status, body = await app.api("POST", f"/api/v1/campaigns/{campaign['id']}/pause")
    assert status == 409 and "draft" in body["error"]["message"]
    status, body = await app.api(
        "POST", f"/api/v1/campaigns/{campaign['id']}/schedule", json={"at": "2026-03-10T09:00:00"}
    )
    assert status == 422 and "time zone" in body["error"]["message"]
    status, _ = await app.api("POST", f"/api/v1/campaigns/{campaign['id']}/cancel")
    assert status == 200
    status, body = await app.api("POST", f"/api/v1/campaigns/{campaign['id']}/launch")
    assert status == 409
    status, body = await app.api("GET", "/api/v1/campaigns/nope")
    assert status == 404


async def test_contacts_import_through_the_api_reports_each_rejected_row(
    campaign_hub: Any,
) -> None:
    app: CampaignHub = await campaign_hub()
    body = "name,phone,email\nBình,0901 234 567,\nNobody,,\nHoa,,hoa@example.com\n"
    status, report = await app.api(
        "POST", "/api/v1/contacts/import?tag=spring", data=body.encode(),
        headers={"Content-Type": "text/csv"},
    )  # fmt: skip
    assert status == 200, report
    assert (report["created"], report["merged"]) == (2, 0)
    assert report["rejected"] == [
        {"line": 3, "reason": "no phone and no e-mail", "row": {"name": "Nobody", "phone": "",
                                                               "email": ""}}
    ]  # fmt: skip
    status, counted = await app.api(
        "POST", "/api/v1/audiences/count", json={"filter": {"tags_all": ["spring"]},
                                                 "channel": "email"},
    )  # fmt: skip
    assert counted == {"count": 1}
    broken = "name,phone\nNguyễn,0901234567\n".encode() + b"\xff\n"  # UTF-8 with a bad byte
    status, body = await app.api(
        "POST", "/api/v1/contacts/import", data=broken, headers={"Content-Type": "text/csv"}
    )
    assert status == 422 and "UTF-8" in body["error"]["message"]
    status, body = await app.api(
        "POST", "/api/v1/contacts/import", data=b"name,city\nA,B\n", token=app.agent
    )
    assert status == 403


async def test_sends_a_dead_worker_began_are_settled_without_doubles(
    campaign_hub: Any, twilio_peer: TwilioPeer, smtp_peer: SmtpPeer
) -> None:
    """Rows left `sending` by a crash: Twilio is asked (a message it has is not
    sent again), e-mail is decided by the handover mark (marked: it went)."""
    app: CampaignHub = await campaign_hub()
    runtime = app.hub.runtime
    campaigns = runtime.campaigns
    assert campaigns is not None
    people = [
        contact(f"K{n}", phone=f"+8490100000{n}", email=f"k{n}@example.com") for n in range(4)
    ]
    for person in people:
        await app.store.add_contact(person)
    sms = await create(app, channel="sms", account_id="hotline", text="Chào {{ contact.name }}")
    mail = await create(app, channel="email", account_id="news", text="Chào {{ contact.name }}")
    store = campaigns.store
    ids = sorted(p.id for p in people)
    for campaign_id in (sms["id"], mail["id"]):
        # What a worker killed mid-batch leaves behind: running, rows claimed.
        campaign = await campaigns.campaign(campaign_id)
        audience = await campaigns.audience(campaign.audience_id)
        await store.snapshot(campaign, audience.filter, app.clock.now())
        await store.update_campaign(campaign_id, launched_at=app.clock.now())
        assert await store.claim(campaign_id, ids, app.clock.now()) == ids
    by_id = {p.id: p for p in people}
    # Twilio already has the first two; the SMTP server took the first one.
    sms_campaign = await campaigns.campaign(sms["id"])
    messages = campaigns.dispatcher.messages(sms_campaign)
    for contact_id in ids[:2]:
        recipient = await store.get_recipient(sms["id"], contact_id)
        assert recipient is not None
        outbound = messages.outbound(recipient, by_id[contact_id], sms_campaign.launched_at)
        await runtime.channels["hotline"].send(outbound)
    mail_campaign = await campaigns.campaign(mail["id"])
    recipient = await store.get_recipient(mail["id"], ids[0])
    assert recipient is not None
    outbound = campaigns.dispatcher.messages(mail_campaign).outbound(
        recipient, by_id[ids[0]], mail_campaign.launched_at
    )
    receipt = await runtime.channels["news"].send(outbound)
    await store.hand_over(mail["id"], ids[0], receipt.external_id or "")
    twilio_peer.list_answers = [503, 503]  # Twilio cannot be asked at first: rows wait
    for campaign_id in (sms["id"], mail["id"]):
        await store.update_campaign(campaign_id, status="running")
        await campaigns.kick(campaign_id)
    for campaign_id in (sms["id"], mail["id"]):
        await eventually(lambda campaign_id=campaign_id: _status(app, campaign_id, "completed"))
    assert sorted(m.get("To") for m in twilio_peer.sent) == sorted(
        by_id[i].identities[0].address for i in ids
    )
    assert sorted(r.rcpt_tos[0] for r in smtp_peer.received) == sorted(
        by_id[i].identities[1].address for i in ids
    )
    assert twilio_peer.list_answers == []


async def test_pause_resume_cancel_and_a_provider_429_slows_the_account(
    campaign_hub: Any, twilio_peer: TwilioPeer
) -> None:
    app: CampaignHub = await campaign_hub(
        defaults={"rate_per_second": 20, "daily_cap": 0}, concurrency=2
    )
    for n in range(40):
        await app.store.add_contact(contact(f"K{n}", phone=f"+849020000{n:02d}"))
    twilio_peer.answers = [429]
    campaign = await create(app, channel="sms", account_id="hotline", text="Hi")
    await app.api("POST", f"/api/v1/campaigns/{campaign['id']}/launch")

    async def some_sent() -> bool:
        return len(twilio_peer.sent) >= 5

    await eventually(some_sent)
    status, paused = await app.api("POST", f"/api/v1/campaigns/{campaign['id']}/pause")
    assert status == 200 and paused["status"] == "paused"
    await eventually(lambda: _sending_done(app, campaign["id"]))
    sent_when_paused = len(twilio_peer.sent)
    runtime = app.hub.runtime
    slow = await runtime.redis.get(f"{runtime.settings.redis.prefix}:campaign-rate:hotline:slow")
    assert slow is not None and float(slow) == 0.5  # the 429 halved the rate
    status, resumed = await app.api("POST", f"/api/v1/campaigns/{campaign['id']}/resume")
    assert status == 200 and resumed["status"] == "running"

    async def more_sent() -> bool:
        return len(twilio_peer.sent) >= sent_when_paused + 3

    await eventually(more_sent)
    status, cancelled = await app.api("POST", f"/api/v1/campaigns/{campaign['id']}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled"
    await eventually(lambda: _sending_done(app, campaign["id"]))
    _, result = await app.api("GET", f"/api/v1/campaigns/{campaign['id']}")
    progress = result["progress"]
    assert progress["sent"] == len(twilio_peer.sent) < 40
    assert progress["skipped_other"] == 40 - progress["sent"] and progress["pending"] == 0
    assert len({m.get("To") for m in twilio_peer.sent}) == len(twilio_peer.sent)


async def test_a_rate_limited_campaign_claims_only_a_tenth_of_a_second_of_sends_ahead(
    campaign_hub: Any, twilio_peer: TwilioPeer
) -> None:
    """Rows are claimed up to a hundred at a time when nothing limits the rate,
    but at 20/s a claim takes max(concurrency, 20 x STATUS_EVERY) = 2: rows are
    not held `sending` long before their send (nor left for recovery after a
    crash)."""
    app: CampaignHub = await campaign_hub(
        defaults={"rate_per_second": 20, "daily_cap": 0}, concurrency=1
    )
    for n in range(30):
        await app.store.add_contact(contact(f"L{n}", phone=f"+849030000{n:02d}"))
    campaign = await create(app, channel="sms", account_id="hotline", text="Hi")
    await app.api("POST", f"/api/v1/campaigns/{campaign['id']}/launch")
    store = app.hub.runtime.campaigns.store
    most = 0

    async def all_sent() -> bool:
        nonlocal most
        progress = await store.progress(campaign["id"], app.clock.now())
        most = max(most, progress.sending)
        return progress.sent == 30

    await eventually(all_sent, timeout=15)
    # Two claimed, and at most as many sent whose outcomes are being written
    # (unlimited, all 30 would have been claimed at once).
    assert 1 <= most <= 4


async def _sending_done(app: CampaignHub, campaign_id: str) -> bool:
    _, result = await app.api("GET", f"/api/v1/campaigns/{campaign_id}")
    return bool(result["progress"]["sending"] == 0)


async def test_a_scheduled_campaign_starts_when_its_time_comes_and_replies_land_in_the_inbox(
    campaign_hub: Any, twilio_peer: TwilioPeer
) -> None:
    app: CampaignHub = await campaign_hub()
    binh = contact("Bình", phone="+84901000001")
    await app.store.add_contact(binh)
    campaign = await create(app, channel="sms", account_id="hotline", text="Sale!")
    at = (app.clock.now() + timedelta(hours=1)).isoformat()
    status, scheduled = await app.api(
        "POST", f"/api/v1/campaigns/{campaign['id']}/schedule", json={"at": at}
    )
    assert status == 200 and scheduled["status"] == "scheduled"
    # A test send to the marketer's own phone: not a recipient, not counted.
    status, tested = await app.api(
        "POST", f"/api/v1/campaigns/{campaign['id']}/test", json={"to": "0909 999 999"}
    )
    assert status == 202 and tested["to"] == "0909 999 999"
    [test] = twilio_peer.sent
    assert test.get("To") == "+84909999999" and (test.get("Body") or "").startswith("Sale!")
    twilio_peer.sent.clear()
    app.clock.advance(timedelta(hours=1))
    await eventually(lambda: _status(app, campaign["id"], "completed"))
    assert [m.get("To") for m in twilio_peer.sent] == ["+84901000001"]
    # Twilio reports the delivery to the status callback the send named.
    status, _ = await twilio_peer.status_callback(twilio_peer.sent[0], "delivered")
    assert status == 204
    status, recipient = await app.api(
        "GET", f"/api/v1/campaigns/{campaign['id']}/recipients/{binh.id}"
    )
    assert recipient["status"] == "delivered" and recipient["external_id"].startswith("SM")
    # The customer answers the promotion: a normal conversation in the inbox.
    status, _ = await text_in(twilio_peer, "Còn hàng không?", sid="SM" + "1" * 32,
                              sender="+84901000001")  # fmt: skip
    assert status == 200
    page = await app.store.list_conversations(ConversationFilter(contact_id=binh.id), limit=5)
    [conversation] = page.items
    [message] = await app.store.list_messages(conversation.id)
    assert message.text == "Còn hàng không?" and message.direction == "inbound"


@pytest.mark.parametrize(("public_url", "warned"), [(None, True), ("https://hub.shop.vn", False)])
async def test_an_unsubscribe_link_that_is_not_https_is_warned_about_at_start(
    make_settings, start_hub, smtp_peer, caplog, public_url, warned
):
    """RFC 8058 one-click needs an https link: Gmail and Yahoo show no
    unsubscribe button for anything else."""
    settings = make_settings(accounts=[email_account(smtp_peer)], server={"public_url": public_url})
    with caplog.at_level(logging.WARNING, logger="hub.campaigns.runtime"):
        await start_hub(settings)
    said = [r for r in caplog.records if "not https" in r.getMessage()]
    assert bool(said) == warned
