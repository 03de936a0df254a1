"""The hub's own secret key: what signs credentials the hub hands out (web-chat
visitor tokens today, agent sessions later).

It comes from `HUB_SECRET_KEY` when set. Otherwise — the embedded default — a
random key is generated once and kept in `data_dir/secret.key` (mode 0600), so
a restart does not invalidate what was signed before. Several hub processes on
one machine share the file; processes on different machines must be given the
same `HUB_SECRET_KEY`.

Each use derives its own key (`derive`), so a token made for one purpose can
never be passed off as another.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from hub.errors import ConfigError
from hub.settings import HubSettings

log = logging.getLogger(__name__)

KEY_FILE = "secret.key"
KEY_BYTES = 32


def hub_secret_key(settings: HubSettings) -> bytes:
    """The configured key, else the one kept in the data folder (created on first use).

    Raises ConfigError when the key file exists but cannot be read or is damaged:
    silently making a new key would log every visitor out.
    """
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    if not settings.embedded_store:
        log.warning(
            "HUB_SECRET_KEY is not set: using a key from the data folder; hub processes"
            " on other machines will not accept what this one signs",
            extra={"event": "keys.local"},
        )
    return _kept_key(settings.data_dir / KEY_FILE)


def _kept_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written whole to a private file, then linked into place: link fails if
        # the key exists, so two processes starting at once agree on one key and
        # none ever reads a half-written file.
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as file:
                file.write(secrets.token_hex(KEY_BYTES) + "\n")
                file.flush()
                os.fsync(file.fileno())
            try:
                os.link(draft, path)
                log.info("generated the hub secret key", extra={"event": "keys.generated"})
            except FileExistsError:
                pass
        finally:
            draft.unlink(missing_ok=True)
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the hub secret key at {path}: {exc}") from exc
    if len(text) < 2 * KEY_BYTES:
        raise ConfigError(
            f"the hub secret key at {path} is damaged (too short); restore it or set"
            " HUB_SECRET_KEY (a new key logs every web-chat visitor out)"
        )
    return text.encode()


def derive(key: bytes, purpose: str) -> bytes:
    """A key for one purpose only, derived from the hub key (HMAC-SHA256)."""
    return hmac.new(key, f"hub/{purpose}".encode(), hashlib.sha256).digest()
