"""The hub's secret key: from the environment, else made once and kept."""

from __future__ import annotations

import pytest

from hub.errors import ConfigError
from hub.keys import derive, hub_secret_key
from hub.settings import HubSettings


def test_a_key_is_made_once_and_kept_in_the_data_folder(tmp_path):
    settings = HubSettings(data_dir=tmp_path / "data")
    first = hub_secret_key(settings)
    assert len(first) == 64 and hub_secret_key(settings) == first
    key_file = tmp_path / "data" / "secret.key"
    assert oct(key_file.stat().st_mode)[-3:] == "600"
    assert [p.name for p in key_file.parent.iterdir()] == ["secret.key"]  # no drafts left


def test_the_environment_key_wins_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_SECRET_KEY", "k" * 40)
    settings = HubSettings(data_dir=tmp_path / "data")
    assert hub_secret_key(settings) == b"k" * 40
    assert not (tmp_path / "data" / "secret.key").exists()


def test_a_short_environment_key_is_refused(monkeypatch):
    monkeypatch.setenv("HUB_SECRET_KEY", "short")
    with pytest.raises(ValueError, match="secret_key"):
        HubSettings()


def test_a_damaged_key_file_stops_the_hub_instead_of_logging_everyone_out(tmp_path):
    (tmp_path / "secret.key").write_text("abc\n")
    with pytest.raises(ConfigError, match="damaged"):
        hub_secret_key(HubSettings(data_dir=tmp_path))


def test_derived_keys_differ_by_purpose():
    assert derive(b"k" * 32, "a") != derive(b"k" * 32, "b")
    assert derive(b"k" * 32, "a") == derive(b"k" * 32, "a")
