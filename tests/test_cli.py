"""The `hub` command as an administrator uses it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.hub_process import HubProcess, hub_command


def test_help_lists_every_command():
    result = subprocess.run(
        [sys.executable, "-m", "hub", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("serve", "worker", "agent", "token", "email"):
        assert f"  {command} " in result.stdout
    serve = subprocess.run(
        [sys.executable, "-m", "hub", "serve", "--help"], capture_output=True, text=True, check=True
    )
    for option in ("--port", "--data-dir", "--config", "--with-worker / --no-worker"):
        assert option in serve.stdout


def test_agents_and_tokens(tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text("log_format = 'text'\n")
    data = tmp_path / "data"
    added = hub_command(
        "agent",
        "add",
        "--email",
        "An@Example.VN",
        "--name",
        "An",
        "--role",
        "admin",
        "--online",
        "--password",
        "correct horse",
        config=config,
        data_dir=data,
    )
    assert "added admin An <an@example.vn>" in added.stdout
    again = hub_command(
        "agent",
        "add",
        "--email",
        "an@example.vn",
        "--name",
        "An",
        config=config,
        data_dir=data,
        check=False,
    )
    assert again.returncode == 1
    assert "an agent with e-mail an@example.vn exists" in again.stderr
    bad = hub_command(
        "agent",
        "add",
        "--email",
        "not-an-address",
        "--name",
        "X",
        config=config,
        data_dir=data,
        check=False,
    )
    assert bad.returncode == 2 and "is not an e-mail address" in bad.stderr
    listed = hub_command("agent", "list", config=config, data_dir=data)
    assert "admin    online  An <an@example.vn>" in listed.stdout
    token = hub_command(
        "token", "create", "--agent", "an@example.vn", "--name", "crm", config=config, data_dir=data
    ).stdout.strip()
    assert token.startswith("hub_") and len(token) > 40
    nobody = hub_command(
        "token", "create", "--agent", "who@example.vn", config=config, data_dir=data, check=False
    )
    assert nobody.returncode == 1 and "no agent with e-mail who@example.vn" in nobody.stderr

    hub = HubProcess(config, data).start()
    try:
        request = urllib.request.Request(
            f"{hub.url}/api/v1/agents/me", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert json.load(answer)["email"] == "an@example.vn"
    finally:
        assert hub.interrupt() == 0
    assert "hub stopped" in hub.log()


def test_bad_config_is_a_clear_error_not_a_traceback(tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text("[server]\nport = 'x'\n")
    result = hub_command("agent", "list", config=config, data_dir=tmp_path, check=False)
    assert result.returncode == 1
    assert "Error: invalid settings in" in result.stderr and "server.port" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_an_account_whose_secret_is_not_set(tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text(
        "[[accounts]]\nid = 'shop'\nchannel = 'api'\nsecret_env = 'NOT_SET_ANYWHERE'\n"
    )
    result = hub_command(
        "serve", "--port", "0", config=config, data_dir=tmp_path / "d", check=False
    )
    assert result.returncode == 1
    assert "NOT_SET_ANYWHERE" in result.stderr and "Traceback" not in result.stderr


def email_parse(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "hub", "email", "parse", *args],
        capture_output=True,
        input=stdin,
        timeout=60,
    )


def test_email_parse_prints_the_normalised_message_as_json(tmp_path):
    from pathlib import Path

    corpus = Path(__file__).parent / "data" / "email"
    result = email_parse(str(corpus / "14-gmail-reply-quoted-vi.eml"))
    assert result.returncode == 0
    body = json.loads(result.stdout)
    assert body["subject"] == "Re: Đơn hàng #1042 chưa giao"
    assert body["from"] == {"name": "Nguyễn Thị Bình", "address": "binh.nguyen@gmail.com"}
    assert body["to"] == [{"name": "Cửa hàng Bình An", "address": "support@shop.vn"}]
    assert body["date"] == "2026-01-05T08:40:02+00:00"
    assert body["message_id"] == "<CAF7e1Q3vR+REPLY14@mail.gmail.com>"
    assert body["in_reply_to"] == "<CAF7e1Q3vR+q9x0u1=Hn8Jb2pYkQh@mail.gmail.com>"
    assert body["references"] == ["<CAF7e1Q3vR+q9x0u1=Hn8Jb2pYkQh@mail.gmail.com>"]
    assert body["text"].startswith("Shop ơi, có mã vận đơn chưa ạ?")
    assert body["quoted_at"] == 32
    assert (body["automated"], body["bounce"], "error" in body) == (False, None, False)

    attachments = json.loads(email_parse(str(corpus / "05-rfc2231-attachment-names.eml")).stdout)
    assert attachments["attachments"][0] == {
        "name": "Hóa đơn tháng 12.pdf",
        "type": "application/pdf",
        "size": 125,
        "inline": False,
        "content_id": None,
        "too_large": False,
    }
    dsn = json.loads(email_parse(str(corpus / "08-dsn-postfix-bounce.eml")).stdout)
    assert dsn["automated"] is True and dsn["auto_submitted"] == "auto-replied"
    assert dsn["bounce"]["recipients"][0]["status"] == "5.1.1"
    html = json.loads(email_parse(str(corpus / "13-html-only-hostile.eml")).stdout)
    assert "<h1>Cơ hội hợp tác</h1>" in html["html"] and "script" not in html["html"]


def test_email_parse_exits_0_with_an_error_field_for_anything_else(tmp_path):
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 10)
    for args, stdin, error in [
        ([str(empty)], None, "empty message (0 bytes)"),
        ([str(garbage)], None, "no header fields: this is not an e-mail message"),
        (["-"], b"\x00\x00\x00", "no header fields: this is not an e-mail message"),
        ([str(tmp_path / "missing.eml")], None, "cannot read"),
    ]:
        result = email_parse(*args, stdin=stdin)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["error"].startswith(error)


def test_an_agent_added_without_a_password_is_given_one_and_old_sessions_end(tmp_path):
    """README step 2 adds an agent with no password: `hub agent set-password`
    gives them one, on a running hub too, as the API does (at least 10
    characters, every signed-in session ended, an audit entry)."""
    config = tmp_path / "hub.toml"
    config.write_text("log_format = 'text'\n")
    data = tmp_path / "data"
    hub_command("agent", "add", "--email", "an@example.vn", "--name", "An", config=config,
                data_dir=data)  # fmt: skip
    short = hub_command(
        "agent", "set-password", "--email", "an@example.vn", "--password", "short",
        config=config, data_dir=data, check=False,
    )  # fmt: skip
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
    first = hub_command(
        "agent", "set-password", "--email", "an@example.vn", "--password", "mật khẩu đầu tiên",
        config=config, data_dir=data,
    )  # fmt: skip
    assert "password set for an@example.vn" in first.stdout
    hub = HubProcess(config, data).start()
    try:
        browser = signed_in(hub.url, "an@example.vn", "mật khẩu đầu tiên")
        assert me(browser, hub.url) == 200
        hub_command(
            "agent", "set-password", "--email", "an@example.vn", "--password", "mật khẩu thứ hai",
            config=config, data_dir=data,
        )  # fmt: skip
        assert me(browser, hub.url) == 401  # the session made with the old password ended
        with pytest.raises(urllib.error.HTTPError):
            signed_in(hub.url, "an@example.vn", "mật khẩu đầu tiên")
        assert me(signed_in(hub.url, "an@example.vn", "mật khẩu thứ hai"), hub.url) == 200
    finally:
        assert hub.interrupt() == 0
    nobody = hub_command(
        "agent", "set-password", "--email", "who@example.vn", "--password", "0123456789",
        config=config, data_dir=data, check=False,
    )  # fmt: skip
    assert nobody.returncode == 1 and "no agent with e-mail who@example.vn" in nobody.stderr


def signed_in(url: str, email: str, password: str) -> urllib.request.OpenerDirector:
    """A browser's cookie jar, signed in."""
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    body = json.dumps({"email": email, "password": password}).encode()
    request = urllib.request.Request(
        f"{url}/api/v1/auth/login", data=body, headers={"Content-Type": "application/json"}
    )
    with browser.open(request, timeout=10) as answer:
        assert answer.status == 200
    return browser


def me(browser: urllib.request.OpenerDirector, url: str) -> int:
    try:
        with browser.open(f"{url}/api/v1/agents/me", timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
