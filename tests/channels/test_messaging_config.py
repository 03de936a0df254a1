"""Every option of the messaging channels is documented in the example config,
and each commented-out example account is valid as written."""

from __future__ import annotations

import re

import pytest

from hub.channels.registry import channel_class
from hub.settings import AccountSettings
from tests.example_config import EXAMPLE, example_accounts


@pytest.mark.parametrize("family", ["telegram", "zalo", "messenger", "whatsapp"])
def test_example_account_documents_every_option_and_is_valid(family, monkeypatch):
    account = example_accounts()[family]
    text = EXAMPLE.read_text(encoding="utf-8")
    options = channel_class(family).Options.model_fields
    for name, field in options.items():
        key = f"{name}_env" if "_env`" in (field.description or "") else name
        assert re.search(rf"^# (# )?{key} = ", text, re.M), f"{family}: {key} undocumented"
    for key, value in account.items():
        if key.endswith("_env"):
            monkeypatch.setenv(value, "example-secret-value-0123")
    resolved = AccountSettings(**account).options()
    channel_class(family).Options.model_validate(resolved)
