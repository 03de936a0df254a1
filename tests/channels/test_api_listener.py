"""`hub api listen`: the stand-in for the system behind an API-channel account,
which the README's quick start sends its first reply to."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.channels.api import SIGNATURE_HEADER, sign
from hub.channels.api_listener import listener_app
from tests.conftest import API_SECRET, eventually, free_port
from tests.hub_process import clean_env
from tests.peers.api_sender import message, signed

REPLY = {
    "type": "message",
    "id": "m-1",
    "conversation_id": "c-1",
    "to": {"id": "cust-42", "name": "Nguyễn Văn Bình"},
    "sender": {"name": "Lan"},
    "text": "Dạ, đơn hàng của anh đang được giao ạ.",
    "attachments": [{"url": "https://files.example/hoa-don.pdf", "name": "hoa-don.pdf"}],
    "created_at": "2026-11-30T03:00:00+00:00",
}


@asynccontextmanager
async def listener(lines: list[str]) -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(listener_app("shop", API_SECRET, lines.append)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def test_a_signed_reply_is_printed_and_answered_with_an_external_id():
    lines: list[str] = []
    body = json.dumps(REPLY, ensure_ascii=False).encode()
    async with listener(lines) as client:
        answer = await client.post(
            "/replies", data=body, headers={SIGNATURE_HEADER: sign(API_SECRET, body)}
        )
        assert answer.status == 200
        assert await answer.json() == {"external_id": "shop-listen-1"}
    [line] = lines
    assert "reply m-1 from Lan to Nguyễn Văn Bình (cust-42)" in line
    assert "'Dạ, đơn hàng của anh đang được giao ạ.'" in line
    assert line.endswith("+ 1 file (hoa-don.pdf)")


@pytest.mark.parametrize(
    ("headers", "body", "status", "said"),
    [
        ({}, b"{}", 401, "missing X-Hub-Signature-256"),
        (
            {SIGNATURE_HEADER: sign("another-secret-0123456789", b"{}")},
            b"{}",
            401,
            "does not match",
        ),
        ({SIGNATURE_HEADER: sign(API_SECRET, b"{not json")}, b"{not json", 400, "not JSON"),
        ({SIGNATURE_HEADER: sign(API_SECRET, b"[1]")}, b"[1]", 400, "not a JSON object"),
    ],
    ids=["unsigned", "wrong-secret", "not-json", "not-an-object"],
)
async def test_what_the_real_system_must_refuse_is_refused_and_said(headers, body, status, said):
    lines: list[str] = []
    async with listener(lines) as client:
        answer = await client.post("/replies", data=body, headers=headers)
        assert answer.status == status
        assert said in (await answer.json())["error"]
    [line] = lines
    assert "refused a POST to /replies" in line and said in line


async def test_a_reply_from_the_hub_reaches_the_listener_and_is_marked_sent(
    make_settings, start_hub
):
    lines: list[str] = []
    server = TestServer(listener_app("shop", API_SECRET, lines.append))
    await server.start_server()
    try:
        account = {
            "id": "shop",
            "channel": "api",
            "secret_env": "HUB_TEST_API_SECRET",
            "callback_url": str(server.make_url("/replies")),
        }
        hub = await start_hub(make_settings(accounts=[account]))
        body, headers = signed(message("m-1", name="Nguyễn Văn Bình"), API_SECRET)
        answer = await (
            await hub.client.post("/webhooks/api/shop", data=body, headers=headers)
        ).json()
        reply, _ = await hub.runtime.inbox.reply(answer["conversation_id"], None, "Chào anh Bình")

        async def sent() -> bool:
            stored = await hub.runtime.store.get_message(reply.id)
            return stored is not None and stored.status == "sent"

        await eventually(sent)
        stored = await hub.runtime.store.get_message(reply.id)
        assert stored.external_id == "shop-listen-1"
        [line] = lines
        assert f"reply {reply.id}" in line and "'Chào anh Bình'" in line
    finally:
        await server.close()


@pytest.fixture
def listening(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`hub api listen` as a user runs it, with the example config's account."""
    port = free_port()
    config = tmp_path / "hub.toml"
    config.write_text(
        "[[accounts]]\nid = 'shop'\nchannel = 'api'\nsecret_env = 'HUB_SHOP_SECRET'\n"
        f"callback_url = 'http://127.0.0.1:{port}/replies'\n",
        encoding="utf-8",
    )
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hub",
            "api",
            "listen",
            "--config",
            str(config),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean_env(), "HUB_SHOP_SECRET": API_SECRET},
    )
    try:
        yield child, port
    finally:
        child.terminate()
        child.wait(timeout=10)


def test_the_command_checks_prints_and_answers(listening):
    child, port = listening
    assert child.stderr is not None and child.stdout is not None
    started = child.stderr.readline()
    assert f"listening on http://127.0.0.1:{port}/" in started and "'shop'" in started
    body = json.dumps(REPLY, ensure_ascii=False).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/replies",
        data=body,
        headers={SIGNATURE_HEADER: sign(API_SECRET, body), "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert json.load(answer) == {"external_id": "shop-listen-1"}
    assert "reply m-1 from Lan to Nguyễn Văn Bình (cust-42)" in child.stdout.readline()
    forged = urllib.request.Request(
        f"http://127.0.0.1:{port}/replies", data=body, headers={SIGNATURE_HEADER: "sha256=00"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged, timeout=10)
    assert refused.value.code == 401
    assert "does not match" in child.stdout.readline()


@pytest.mark.parametrize(
    ("accounts", "args", "said"),
    [
        ("", [], "API-channel accounts in the config: none"),
        (
            "[[accounts]]\nid = 'shop'\nchannel = 'api'\nsecret_env = 'HUB_NO_SUCH_SECRET'\n",
            [],
            "HUB_NO_SUCH_SECRET",
        ),
        (
            "[[accounts]]\nid = 'shop'\nchannel = 'api'\nsecret_env = 'HUB_SHORT'\n",
            ["--account", "shop"],
            "at least 16 characters",
        ),
        (
            "[[accounts]]\nid = 'shop'\nchannel = 'api'\nsecret_env = 'HUB_SHORT'\n",
            ["--account", "crm"],
            "no API-channel account 'crm' (API-channel accounts in the config: shop)",
        ),
    ],
    ids=["no-account", "secret-unset", "secret-short", "unknown-account"],
)
def test_the_command_says_what_is_missing(tmp_path, accounts, args, said):
    config = tmp_path / "hub.toml"
    config.write_text(accounts, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "hub", "api", "listen", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env={**clean_env(), "HUB_SHORT": "short"},
        timeout=60,
    )
    assert result.returncode == 1
    assert said in result.stderr
