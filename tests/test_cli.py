"""The `hub` command as an administrator uses it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

from tests.hub_process import HubProcess, hub_command


def test_help_lists_every_command():
    result = subprocess.run(
        [sys.executable, "-m", "hub", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("serve", "worker", "agent", "token"):
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
