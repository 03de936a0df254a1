"""The example config documents every phone option, and its accounts are valid."""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel

from hub.channels.asterisk.channel import AsteriskOptions
from hub.channels.cti import CtiOptions
from hub.channels.registry import channel_class
from hub.channels.twilio.options import TwilioOptions, VoiceOptions
from hub.routing.hours import Schedule
from hub.settings import AccountSettings
from tests.example_config import EXAMPLE, example_accounts


@pytest.mark.parametrize(
    "options", [TwilioOptions, VoiceOptions, Schedule, AsteriskOptions, CtiOptions]
)
def test_every_phone_option_is_documented(options: type[BaseModel]):
    text = EXAMPLE.read_text()
    for key in options.model_fields:
        # A key, a secret's `<key>_env`, or a sub-table ([accounts.voice.hours]).
        pattern = rf"^(# )*{key}(_env)? = |^(# )?\[accounts\.(voice\.)?{key}\]"
        assert re.search(pattern, text, re.M), (
            f"{options.__name__}.{key} is not documented in {EXAMPLE.name}"
        )


def test_the_example_phone_accounts_are_valid(monkeypatch):
    examples = example_accounts()
    phone = [AccountSettings(**examples[family]) for family in ("twilio", "asterisk", "cti")]
    assert {a.channel for a in phone} == {"twilio", "asterisk", "cti"}
    for account in phone:
        for key, variable in (account.model_extra or {}).items():
            if key.endswith("_env"):
                monkeypatch.setenv(variable, "example-secret-0123456789")
        options = channel_class(account.channel).Options.model_validate(account.options())
        if isinstance(options, TwilioOptions):
            assert options.voice.hours is not None and options.voice.hours.sat == ["08:00-12:00"]
