"""The example config's account blocks, as an administrator would use them.

Only the API-channel example is active in `config/hub.example.toml` (so the
README's quick start runs with one secret set); the others are commented out.
Each commented block starts at `# [[accounts]]` and runs to the next blank
line; `# key = value` lines are the block, `# # ...` lines are its comments.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).parent.parent / "config" / "hub.example.toml"


def example_accounts() -> dict[str, dict[str, Any]]:
    """Every commented-out example account, uncommented and parsed, by channel."""
    text = EXAMPLE.read_text(encoding="utf-8")
    accounts: dict[str, dict[str, Any]] = {}
    for block in re.findall(r"^# \[\[accounts\]\]\n((?:^#.*\n)+)", text, re.M):
        lines = [
            line[2:]
            for line in block.splitlines()
            if line.startswith("# ") and not line.startswith("# #")
        ]
        [account] = tomllib.loads("[[accounts]]\n" + "\n".join(lines))["accounts"]
        accounts[account["channel"]] = account
    return accounts
