"""Files through the REST API: what a customer's e-mail carried, the raw mail,
and uploads for replies, served only to agents and never runnable in a browser."""

from __future__ import annotations

import base64

import pytest

from tests.web.test_api import add_agent

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(20)
HTML = b"<script>alert(document.cookie)</script>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
BIG = bytes(2000)


def part(name: str, kind: str, data: bytes) -> str:
    encoded = base64.encodebytes(data).decode()
    return (
        f"--z\r\nContent-Type: {kind}\r\nContent-Disposition: attachment;"
        f" filename*=utf-8''{name}\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}"
    )


MAIL = (
    "From: Khách <khach@example.vn>\r\nTo: support@shop.vn\r\nSubject: Files\r\n"
    "Message-ID: <files@example.vn>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=z\r\n\r\n"
    "--z\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGửi shop các tệp.\r\n"
    + part("H%C3%B3a%20%C4%91%C6%A1n.pdf", "application/pdf", PDF)
    + part("anh.png", "image/png", PNG)
    + part("trang.html", "text/html", HTML)
    + part("logo.svg", "image/svg+xml", SVG)
    + part("video.mp4", "video/mp4", BIG)
    + "--z--\r\n"
).encode()


@pytest.fixture
async def hub(make_settings, start_hub):
    account = {"id": "support", "channel": "email", "address": "support@shop.vn"}
    hub = await start_hub(make_settings(accounts=[account], attachments={"max_bytes": 1000}))
    hub.agent, hub.token = await add_agent(hub, "an@example.vn")
    return hub


@pytest.fixture
async def message(hub):
    outcome = await hub.runtime.channels["support"].receive(MAIL, source={})
    return await hub.runtime.store.get_message(outcome.message_id)


async def get(hub, path):
    return await hub.api("GET", path, hub.token)


async def test_a_file_from_a_mail_is_a_download_with_its_utf8_name(hub, message):
    response = await get(hub, f"/api/v1/messages/{message.id}/attachments/0")
    assert response.status == 200
    assert await response.read() == PDF
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"Hoa don.pdf\"; filename*=UTF-8''H%C3%B3a%20%C4%91%C6%A1n.pdf"
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"


async def test_files_that_could_run_script_are_opaque_downloads(hub, message):
    image = await get(hub, f"/api/v1/messages/{message.id}/attachments/1")
    assert image.headers["Content-Type"] == "image/png"
    assert image.headers["Content-Disposition"] == 'attachment; filename="anh.png"'
    for index in (2, 3):  # HTML and SVG: bytes to download, never a page
        response = await get(hub, f"/api/v1/messages/{message.id}/attachments/{index}")
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers["Content-Disposition"].startswith("attachment;")


async def test_a_file_that_was_too_large_to_keep_says_so(hub, message):
    assert message.attachments[4].too_large and message.attachments[4].size == len(BIG)
    response = await get(hub, f"/api/v1/messages/{message.id}/attachments/4")
    assert response.status == 404
    assert "too large to keep" in (await response.json())["error"]["message"]
    missing = await get(hub, f"/api/v1/messages/{message.id}/attachments/9")
    assert missing.status == 404


async def test_the_raw_mail_is_a_download(hub, message):
    response = await get(hub, f"/api/v1/messages/{message.id}/raw")
    assert response.status == 200 and await response.read() == MAIL
    assert response.headers["Content-Type"] == "message/rfc822"
    assert response.headers["Content-Disposition"].startswith("attachment;")


async def test_files_need_a_token(hub, message):
    for path in (
        f"/api/v1/messages/{message.id}/attachments/0",
        f"/api/v1/messages/{message.id}/raw",
    ):
        assert (await hub.client.get(path)).status == 401


async def test_upload_then_download_and_the_cap_holds(hub):
    upload = await hub.api(
        "POST",
        "/api/v1/attachments?name=bảng giá.pdf",
        hub.token,
        data=PDF,
        headers={"Content-Type": "application/pdf"},
    )
    assert upload.status == 201
    body = await upload.json()
    assert body["name"] == "bảng giá.pdf" and body["size"] == len(PDF)
    download = await get(hub, f"/api/v1/attachments/{body['storage_key']}?name=bảng giá.pdf")
    assert await download.read() == PDF
    assert download.headers["Content-Type"] == "application/octet-stream"

    too_big = await hub.api("POST", "/api/v1/attachments", hub.token, data=b"x" * 1001)
    assert too_big.status == 413
    empty = await hub.api("POST", "/api/v1/attachments", hub.token, data=b"")
    assert empty.status == 422


@pytest.mark.parametrize("key", ["..%2F..%2Fhub.db", "not-a-key", "0" * 64])
async def test_keys_that_are_not_stored_files_are_not_found(hub, key):
    response = await get(hub, f"/api/v1/attachments/{key}")
    assert response.status == 404


@pytest.mark.parametrize(
    "attachment",
    [
        {"name": "x", "storage_key": "whatsapp:1234567890"},  # a channel's key for a customer file
        {"name": "x", "storage_key": "telegram:AgACAgIAAxkBAAIB"},
        {"name": "x", "storage_key": "0" * 64},  # never uploaded
        {"name": "x", "url": "file:///etc/passwd"},
        {"name": "x", "url": "javascript:alert(document.cookie)"},
        {"name": "x", "url": "gopher://127.0.0.1:6379/_FLUSHALL"},
        {"name": "x"},
    ],
)
async def test_a_reply_attaches_only_uploads_and_http_links(hub, message, attachment):
    # A storage key is also how a channel fetches a customer's file with its own
    # credentials: a reply naming one would read files of conversations its
    # author may not see (GET .../attachments/n on the reply).
    response = await hub.api(
        "POST",
        f"/api/v1/conversations/{message.conversation_id}/messages",
        hub.token,
        json={"text": "tệp", "attachments": [attachment]},
    )
    assert response.status == 422, await response.text()
    assert "attachments[0]" in (await response.json())["error"]["message"]
    messages = await hub.runtime.store.list_messages(message.conversation_id)
    assert [m.direction for m in messages] == ["inbound"]


async def test_a_reply_attaches_an_upload_and_a_link(hub, message):
    upload = await hub.api(
        "POST", "/api/v1/attachments?name=a.pdf", hub.token, data=PDF,
        headers={"Content-Type": "application/pdf"},
    )  # fmt: skip
    link = {"name": "b.pdf", "url": "https://files.shop.vn/b.pdf"}
    response = await hub.api(
        "POST",
        f"/api/v1/conversations/{message.conversation_id}/messages",
        hub.token,
        json={"text": "tệp", "attachments": [await upload.json(), link]},
    )
    assert response.status == 202, await response.text()


async def test_a_key_is_not_a_permission(hub, message):
    # The store holds customers' files and raw mails under the same kind of key
    # as uploads: by key, a file is served only to the agent who uploaded it.
    _, marketer = await add_agent(hub, "mai@example.vn", role="marketer")
    _, colleague = await add_agent(hub, "binh@example.vn")
    mine = PDF + b"% the agent's own\n"  # keys are content hashes: other bytes
    upload = await hub.api("POST", "/api/v1/attachments?name=a.pdf", hub.token, data=mine)
    key = (await upload.json())["storage_key"]
    assert (await get(hub, f"/api/v1/attachments/{key}")).status == 200
    for token in (marketer, colleague):
        assert (await hub.api("GET", f"/api/v1/attachments/{key}", token)).status == 404
    customer_file = message.attachments[0].storage_key
    raw_mail = message.meta["raw_key"]
    for other in (customer_file, raw_mail):
        assert (await hub.api("GET", f"/api/v1/attachments/{other}", marketer)).status == 404
        assert (await get(hub, f"/api/v1/attachments/{other}")).status == 404
        # ...nor can it be attached to a reply and so sent on.
        response = await hub.api(
            "POST",
            f"/api/v1/conversations/{message.conversation_id}/messages",
            colleague,
            json={"text": "x", "attachments": [{"name": "x", "storage_key": other}]},
        )
        assert response.status == 422
    # The customer's file is the agent's through its message.
    assert (await get(hub, f"/api/v1/messages/{message.id}/attachments/0")).status == 200


async def test_a_reply_cannot_attach_a_colleagues_upload(hub, message):
    _, colleague = await add_agent(hub, "binh@example.vn")
    upload = await hub.api("POST", "/api/v1/attachments?name=a.pdf", hub.token, data=PDF)
    response = await hub.api(
        "POST",
        f"/api/v1/conversations/{message.conversation_id}/messages",
        colleague,
        json={"text": "x", "attachments": [await upload.json()]},
    )
    assert response.status == 422


async def test_a_file_an_agent_sent_is_shown_back_on_any_channel(team_hub):
    """The reply's file, on an API account (a channel that keeps no files of its
    own), opens from the timeline instead of a 404."""
    from tests.web.conftest import call, inbound

    uploaded = await call(
        team_hub,
        "POST",
        "/api/v1/attachments?name=bảng giá.png",
        team_hub.lan,
        status=201,
        data=PNG,
        headers={"Content-Type": "image/png"},
    )
    conversation = await inbound(team_hub, "m1")
    reply = await call(
        team_hub,
        "POST",
        f"/api/v1/conversations/{conversation}/messages",
        team_hub.lan,
        status=202,
        json={"text": "Bảng giá đây ạ", "attachments": [uploaded]},
    )
    response = await team_hub.api(
        "GET", f"/api/v1/messages/{reply['id']}/attachments/0", team_hub.lan.token
    )
    assert response.status == 200 and await response.read() == PNG
    assert response.headers["Content-Type"] == "image/png"
    # And only to those who may see the conversation.
    hidden = await team_hub.api(
        "GET", f"/api/v1/messages/{reply['id']}/attachments/0", team_hub.minh.token
    )
    assert hidden.status == 404
