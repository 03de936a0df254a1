"""Settings: file, environment and flags, and errors that name what is wrong."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from hub.channels.api import ApiChannel
from hub.errors import ConfigError
from hub.settings import load_settings

EXAMPLE = Path(__file__).parent.parent / "config" / "hub.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_config_loads_and_documents_every_setting(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = load_settings(EXAMPLE)
    assert settings.accounts[0].id == "shop"
    text = EXAMPLE.read_text()
    for section_name in (
        "server",
        "store",
        "redis",
        "inbox",
        "delivery",
        "attachments",
        "smtp_listener",
        "routing",
        "campaigns",
        "reports",
    ):
        section = getattr(settings, section_name)
        for key in type(section).model_fields:
            if (section_name, key) in (("routing", "teams"), ("routing", "accounts")):
                continue  # tables, documented by the routing example test below
            if (section_name, key) in (("campaigns", "defaults"), ("campaigns", "accounts")):
                key = f"\\[campaigns.{key}"  # tables: documented by their header
                assert re.search(rf"^(# )?{key}", text, re.M), f"[{section_name}] {key}"
                continue
            assert re.search(rf"^(# )?{key} = ", text, re.M), f"[{section_name}] {key} undocumented"
    for key in type(settings.campaigns.defaults).model_fields:
        assert re.search(rf"^(# )?{key} = ", text, re.M), f"[campaigns.defaults] {key} undocumented"
    for key in ("data_dir", "log_level", "log_format", "redis_url", "mongodb_url", "secret_key"):
        assert re.search(rf"^(# )?{key} = ", text, re.M), f"{key} is not documented"


def test_the_example_email_account_is_valid_and_documents_every_option(monkeypatch):
    """The (commented-out) e-mail example, uncommented, is a working account."""
    from hub.channels.email.options import EmailOptions
    from hub.settings import AccountSettings

    text = EXAMPLE.read_text()
    start = text.index('# [[accounts]]\n# id = "support"')
    block = text[start : text.index("\n\n", start)]
    uncommented = "\n".join(line.removeprefix("# ") for line in block.splitlines())
    [raw_account] = tomllib.loads(uncommented)["accounts"]
    for variable in ("HUB_SUPPORT_IMAP_PASSWORD", "HUB_SUPPORT_SMTP_PASSWORD"):
        monkeypatch.setenv(variable, "secret")
    account = AccountSettings.model_validate(raw_account)
    options = EmailOptions.model_validate(account.options())
    assert options.address == "support@example.com" and options.imap_password == "secret"
    secrets = {"imap_password", "smtp_password", "dkim_private_key"}
    for key in EmailOptions.model_fields:
        name = f"{key}_env" if key in secrets else key
        assert re.search(rf"^(# )*{name} = ", block, re.M), f"email option {name} undocumented"


def test_the_example_config_documents_every_webchat_option(monkeypatch):
    from hub.channels.webchat.options import WebChatOptions

    monkeypatch.delenv("REDIS_URL", raising=False)
    text = EXAMPLE.read_text()
    for key in WebChatOptions.model_fields:
        assert re.search(rf"^(# )?{key} = ", text, re.M), f"webchat option {key} undocumented"
    [website] = [a for a in load_settings(EXAMPLE).accounts if a.channel == "webchat"]
    options = WebChatOptions.model_validate(website.options())
    assert options.allows("https://shop.example.com")


def test_environment_beats_the_file_and_flags_beat_both(tmp_path, monkeypatch):
    path = write(tmp_path, '[server]\nport = 9000\nhost = "0.0.0.0"\n')
    monkeypatch.setenv("HUB_SERVER__PORT", "9100")
    monkeypatch.setenv("REDIS_URL", "redis://example:6379/0")
    settings = load_settings(path)
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 9100)
    assert settings.redis_url == "redis://example:6379/0" and not settings.embedded_redis
    flagged = load_settings(path, **{"server.port": 9200, "data_dir": tmp_path / "d"})
    assert flagged.server.port == 9200 and flagged.data_dir == tmp_path / "d"


def test_defaults_are_embedded(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("MONGODB_URL", raising=False)
    monkeypatch.delenv("HUB_CONFIG", raising=False)
    settings = load_settings(None)
    assert settings.embedded_redis and settings.embedded_store
    assert settings.server.port == 8080 and settings.data_dir == Path("hub-data")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[server]\nport = 'eighty'\n", "server.port"),
        ("[server]\nprot = 1\n", "server.prot"),
        ("[[accounts]]\nid = 'Shop Main'\nchannel = 'api'\n", "account id must be lower-case"),
        (
            "[[accounts]]\nid = 'a'\nchannel = 'api'\n[[accounts]]\nid = 'a'\nchannel = 'api'\n",
            "account id 'a' is defined twice",
        ),
        ("port = [", "is not valid TOML"),
    ],
)
def test_bad_config_is_refused_naming_the_key(tmp_path, text, says):
    with pytest.raises(ConfigError, match=says.replace("(", r"\(").replace("[", r"\[")):
        load_settings(write(tmp_path, text))


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_secret_comes_from_the_named_environment_variable(tmp_path, monkeypatch):
    path = write(
        tmp_path, "[[accounts]]\nid = 'shop'\nchannel = 'api'\nsecret_env = 'SHOP_SECRET'\n"
    )
    settings = load_settings(path)
    with pytest.raises(
        ConfigError, match="secret_env names environment variable 'SHOP_SECRET', which is not set"
    ):
        settings.accounts[0].options()
    monkeypatch.setenv("SHOP_SECRET", "s" * 20)
    assert settings.accounts[0].options() == {"secret": "s" * 20}


def test_channel_options_are_validated_naming_account_and_key(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOP_SECRET", "short")
    path = write(
        tmp_path,
        "[[accounts]]\nid = 'shop'\nchannel = 'api'\n"
        "secret_env = 'SHOP_SECRET'\ncallback_url = 'nope'\n",
    )
    account = load_settings(path).accounts[0]
    with pytest.raises(ConfigError) as error:
        ApiChannel(account, context=None)  # type: ignore[arg-type]
    assert "account 'shop' (api)" in error.value.message
    assert "secret:" in error.value.message and "callback_url:" in error.value.message


def test_unknown_channel_family_is_named():
    from hub.channels.registry import channel_class

    with pytest.raises(ConfigError, match="unknown channel 'fax'"):
        channel_class("fax")


def test_teams_must_name_defined_accounts(tmp_path):
    text = (
        "[[accounts]]\nid = 'shop'\nchannel = 'api'\n[[teams]]\nid = 'care'\naccounts = ['nope']\n"
    )
    with pytest.raises(ConfigError, match="team 'care' names account 'nope', which is not defined"):
        load_settings(write(tmp_path, text))


def test_the_example_routing_rules_are_valid_and_document_every_key(monkeypatch):
    """The commented [routing.teams.support] example, uncommented, is a valid rule."""
    from hub.settings import RouteRule

    text = EXAMPLE.read_text()
    block = re.search(r"^# \[routing\.teams\.support\]\n((?:^#.*\n)+)", text, re.M)
    assert block is not None
    lines = [line[2:] for line in block.group(1).splitlines() if not line.startswith("# #")]
    routing = tomllib.loads("[routing.teams.support]\n" + "\n".join(lines))["routing"]
    support = routing["teams"]["support"]
    rule = RouteRule.model_validate(support)
    RouteRule.model_validate(routing["accounts"]["shop"])
    assert rule.hours is not None and rule.hours.timezone == "Asia/Ho_Chi_Minh"
    for key in RouteRule.model_fields:
        assert key in support, f"routing rule key {key} undocumented"
