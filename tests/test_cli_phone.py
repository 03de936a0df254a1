"""`hub agent` for phones: an agent's number (rung by Twilio voice) and PBX
extension (calls taken there are theirs; click-to-call rings it first)."""

from __future__ import annotations

from tests.hub_process import hub_command


def test_agent_phone_and_extension(tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text("log_format = 'text'\n")
    data = tmp_path / "data"
    added = hub_command(
        "agent",
        "add",
        "--email",
        "lan@shop.vn",
        "--name",
        "Lan",
        "--phone",
        "0911 000 111",
        "--extension",
        "101",
        config=config,
        data_dir=data,
    )
    assert "added agent Lan <lan@shop.vn>" in added.stdout
    listed = hub_command("agent", "list", config=config, data_dir=data).stdout
    assert "Lan <lan@shop.vn>  +84911000111 ext 101" in listed
    taken = hub_command(
        "agent",
        "add",
        "--email",
        "minh@shop.vn",
        "--name",
        "Minh",
        "--extension",
        "101",
        config=config,
        data_dir=data,
        check=False,
    )
    assert taken.returncode == 1 and "extension 101 exists" in taken.stderr
    changed = hub_command(
        "agent",
        "set-phone",
        "--email",
        "lan@shop.vn",
        "--extension",
        "102",
        "--phone",
        "",
        config=config,
        data_dir=data,
    )
    assert "updated lan@shop.vn: phone=-, extension=102" in changed.stdout
    assert (
        "Lan <lan@shop.vn>  ext 102"
        in hub_command("agent", "list", config=config, data_dir=data).stdout
    )
    bad = hub_command(
        "agent",
        "set-phone",
        "--email",
        "lan@shop.vn",
        "--phone",
        "12",
        config=config,
        data_dir=data,
        check=False,
    )
    assert bad.returncode == 2 and "--phone" in bad.stderr
    nobody = hub_command(
        "agent",
        "set-phone",
        "--email",
        "x@shop.vn",
        "--extension",
        "9",
        config=config,
        data_dir=data,
        check=False,
    )
    assert nobody.returncode == 1 and "no agent with e-mail x@shop.vn" in nobody.stderr
