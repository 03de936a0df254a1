"""Rules are checked at start-up: every mistake names the rule and the key."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hub.app import create_app
from hub.care.rules import parse_rules
from hub.care.templates import Templates
from hub.errors import ConfigError
from hub.settings import CareSettings, load_settings
from tests.example_config import EXAMPLE

TEMPLATES = Path(__file__).parent.parent.parent / "config" / "templates"


def rule(**fields: Any) -> dict[str, Any]:
    return {
        "name": "r1",
        "event": "message.created",
        "actions": [{"type": "label", "label": "x"}],
        **fields,
    }


def check(*rules: dict[str, Any], templates: Templates | None = None) -> None:
    parse_rules(list(rules), templates=templates, teams={"support"}, accounts={"shop"})


def test_the_example_rules_and_templates_pass_the_start_up_check(monkeypatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = load_settings(EXAMPLE)
    templates = Templates.load(TEMPLATES)
    rules = parse_rules(settings.care.rules, templates=templates, accounts={"shop", "website"})
    assert [r.name for r in rules][:5] == [
        "greeting",
        "away",
        "satisfaction",
        "birthday",
        "after-purchase",
    ]
    text = EXAMPLE.read_text(encoding="utf-8")
    for key in CareSettings.model_fields:
        assert re.search(rf"^(# )?{key} = ", text, re.M) or f"[care.{key}]" in text, key


def test_every_care_message_has_vi_and_en_templates_and_a_short_sms_variant() -> None:
    templates = Templates.load(TEMPLATES)
    for name in ("greeting", "away", "survey", "birthday", "follow_up", "still_there"):
        for language in ("vi", "en"):
            assert (TEMPLATES / f"{name}.{language}.txt").exists()
            sms = TEMPLATES / f"{name}.{language}.sms.txt"
            assert sms.exists()
            assert len(sms.read_text(encoding="utf-8")) <= 160, sms
        templates.require(name, offered=("conversation", "survey_url"))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (rule(when={"chanel": ["sms"]}), "care rule 'r1': when.chanel: Extra inputs"),
        (rule(event="message.sent"), "care rule 'r1': event: Input should be"),
        (
            rule(actions=[{"type": "shout"}]),
            "care rule 'r1': actions.0: Input tag 'shout' found using 'type' does not match",
        ),
        (rule(actions=[{"type": "reply"}]), "care rule 'r1': actions.0.reply.template: Field"),
        (rule(actions=[]), "care rule 'r1': actions: List should have at least 1 item"),
        (rule(when={"text_regex": "(unclosed"}), "care rule 'r1': when.text_regex: Value error"),
        (
            rule(actions=[{"type": "assign", "team": "sales"}]),
            "care rule 'r1': actions.0.team: no team 'sales' is configured",
        ),
        (
            rule(actions=[{"type": "assign", "team": "support", "agent": "a@b.vn"}]),
            "care rule 'r1': actions.0: give exactly one of team or agent",
        ),
        (
            rule(when={"account": ["shopp"]}),
            "care rule 'r1': when.account: no account 'shopp' is configured",
        ),
        (
            rule(actions=[{"type": "reply", "template": "away", "once": "closed_period"}]),
            "care rule 'r1': actions.0.once: closed_period needs when.business_hours",
        ),
        (
            rule(event="contact.created"),
            "care rule 'r1': actions.0.type: 'label' needs a conversation",
        ),
        (
            rule(actions=[{"type": "follow_up", "template": "follow_up", "after_days": 3}]),
            "care rule 'r1': actions.0.type: follow_up starts from event contact.tagged",
        ),
        (rule(when={"tag": ["purchased"]}), "care rule 'r1': when.tag: only event contact.tagged"),
        ({"event": "message.created"}, "care rule #1: name: Field required"),
        (rule(event="schedule"), "care rule 'r1': schedule: event schedule needs it"),
        (
            rule(event="schedule", schedule={"at": "09:00", "every_minutes": 60}),
            "care rule 'r1': schedule: give exactly one of every_minutes or at",
        ),
        (
            rule(event="schedule", schedule={"at": "9h"}),
            "care rule 'r1': schedule.at: String should match pattern",
        ),
        (
            rule(event="schedule", schedule={"at": "09:00", "timezone": "Asia/Saigonn"}),
            "care rule 'r1': schedule.timezone: Value error, unknown timezone",
        ),
        (
            rule(event="schedule", schedule={"at": "09:00", "days": []}),
            "care rule 'r1': schedule.days: name at least one day",
        ),
        (rule(schedule={"at": "09:00"}), "care rule 'r1': schedule: only for event schedule"),
        (rule(when={"idle_hours": 24}), "care rule 'r1': when.idle_hours: only for event schedule"),
    ],
)
def test_a_wrong_rule_is_refused_naming_the_rule_and_the_key(
    entry: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        check(entry)
    assert message in str(error.value)


def test_two_rules_with_one_name_are_refused() -> None:
    with pytest.raises(ConfigError, match="care rule 'r1': name: another rule has this name"):
        check(rule(), rule())


def test_a_missing_template_or_a_variable_its_use_does_not_offer_is_refused(
    tmp_path: Path,
) -> None:
    templates = Templates.load(TEMPLATES)
    with pytest.raises(ConfigError, match=r"care rule 'r1': actions.0.template: .*'thanks'"):
        check(rule(actions=[{"type": "reply", "template": "thanks"}]), templates=templates)
    (tmp_path / "wish.vi.txt").write_text("Chúc mừng {{ contact.given_name }}! {{ survey_url }}")
    with pytest.raises(ConfigError, match=r"actions.0.template: .*wish.vi.txt: unknown variable"):
        check(
            rule(
                event="schedule.birthday",
                actions=[{"type": "reply", "template": "wish", "once": "year"}],
            ),
            templates=Templates.load(tmp_path),
        )


async def test_the_hub_does_not_start_with_a_webhook_secret_missing(
    make_settings: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUB_TEST_NOT_SET", raising=False)
    webhook = {"type": "webhook", "url": "http://127.0.0.1:9/x", "secret_env": "HUB_TEST_NOT_SET"}
    settings = make_settings(care={"rules": [rule(actions=[webhook])]})
    with pytest.raises(ConfigError, match="'HUB_TEST_NOT_SET' must hold the webhook secret"):
        await create_app(settings)


async def test_the_hub_does_not_start_with_hours_for_an_unknown_account(
    make_settings: Callable[..., Any],
) -> None:
    settings = make_settings(care={"account_hours": {"shopp": {"mon": ["08:00-17:00"]}}})
    with pytest.raises(ConfigError, match=r"care\.account_hours names account 'shopp'"):
        await create_app(settings)
