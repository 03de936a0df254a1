"""Attachments through the REST API: served only to agents, as downloads that
cannot run in the browser (inline only for raster images), uploads capped."""

from __future__ import annotations

import pytest

from hub.inbox.model import Attachment, Message, Sender
from tests.web.test_api import add_agent, ingest

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(20)
HTML = b"<script>alert(document.cookie)</script>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
RAW = b"From: a@b.vn\r\nSubject: x\r\n\r\nbody\r\n"


@pytest.fixture
async def hub(make_settings, start_hub, callback_peer):
    account = {
        "id": "shop",
        "channel": "api",
        "secret_env": "HUB_TEST_API_SECRET",
        "callback_url": callback_peer.url,
    }
    hub = await start_hub(make_settings(accounts=[account], attachments={"max_bytes": 1000}))
    hub.agent, hub.token = await add_agent(hub, "an@example.vn")
    return hub


@pytest.fixture
async def message(hub) -> Message:
    conversation_id = await ingest(hub, "m1")
    files = hub.runtime.attachments
    attachments = [
        Attachment(name="Hóa đơn.pdf", content_type="application/pdf", size=len(PDF)),
        Attachment(name="ảnh.png", content_type="image/png", size=len(PNG)),
        Attachment(name="trang.html", content_type="text/html", size=len(HTML)),
        Attachment(name="logo.svg", content_type="image/svg+xml", size=len(SVG)),
        Attachment(name="video.mp4", content_type="video/mp4", size=10**8, too_large=True),
    ]
    for attachment, data in zip(attachments, (PDF, PNG, HTML, SVG), strict=False):
        attachment.storage_key = await files.save(data)
    now = hub.runtime.clock.now()
    stored = Message(
        conversation_id=conversation_id,
        account_id="shop",
        channel="api",
        direction="inbound",
        sender=Sender(kind="contact"),
        attachments=attachments,
        meta={"raw_key": await files.save(RAW, capped=False)},
        created_at=now,
        updated_at=now,
    )
    await hub.runtime.store.add_message(stored)
    return stored


async def get(hub, path, token=None):
    return await hub.api("GET", path, token or hub.token)


async def test_a_document_is_served_as_a_download_with_its_name(hub, message):
    response = await get(hub, f"/api/v1/messages/{message.id}/attachments/0")
    assert response.status == 200
    assert await response.read() == PDF
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"Hoa don.pdf\"; filename*=UTF-8''H%C3%B3a%20%C4%91%C6%A1n.pdf"
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"


async def test_only_raster_images_are_shown_inline(hub, message):
    image = await get(hub, f"/api/v1/messages/{message.id}/attachments/1")
    assert image.headers["Content-Type"] == "image/png"
    assert image.headers["Content-Disposition"].startswith("inline;")
    for index in (2, 3):  # HTML and SVG could run script: bytes to download, never a page
        response = await get(hub, f"/api/v1/messages/{message.id}/attachments/{index}")
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers["Content-Disposition"].startswith("attachment;")


async def test_an_attachment_that_was_too_large_to_keep_says_so(hub, message):
    response = await get(hub, f"/api/v1/messages/{message.id}/attachments/4")
    assert response.status == 404
    assert "too large to keep" in (await response.json())["error"]["message"]
    missing = await get(hub, f"/api/v1/messages/{message.id}/attachments/9")
    assert missing.status == 404


async def test_the_raw_message_is_a_download(hub, message):
    response = await get(hub, f"/api/v1/messages/{message.id}/raw")
    assert response.status == 200 and await response.read() == RAW
    assert response.headers["Content-Type"] == "message/rfc822"
    assert response.headers["Content-Disposition"].startswith("attachment;")


async def test_attachments_need_a_token(hub, message):
    response = await hub.client.get(f"/api/v1/messages/{message.id}/attachments/0")
    assert response.status == 401


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
async def test_keys_that_are_not_stored_blobs_are_not_found(hub, key):
    response = await get(hub, f"/api/v1/attachments/{key}")
    assert response.status == 404
