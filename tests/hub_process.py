"""Run the real `hub` command in a child process, as an administrator would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import free_port


def hub_command(
    *args: str, config: Path, data_dir: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub", *args, "--config", str(config), "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env={**clean_env(), **(env or {})},
        check=check,
        timeout=60,
    )


def hub_config(tmp_path: Path, accounts: str, *, send_timeout: float | None = None) -> Path:
    """hub.toml for a hub these tests start, stop and kill: plain-text logs, a
    5 s graceful stop, then `accounts`. With `send_timeout`, deliveries time out
    after it and are retried and swept back within a second or so."""
    delivery = (
        f"[delivery]\ntimeout_seconds = {send_timeout}\nbackoff_base_seconds = 0.1\n"
        "backoff_max_seconds = 0.5\nsweep_interval_seconds = 0.5\nsweep_after_seconds = 1\n"
        if send_timeout is not None
        else ""
    )
    config = tmp_path / "hub.toml"
    config.write_text(
        'log_format = "text"\n[server]\nshutdown_grace_seconds = 5\n' + delivery + accounts,
        encoding="utf-8",
    )
    return config


def clean_env() -> dict[str, str]:
    """The environment of a fresh shell: no test Redis or Mongo leaks into the child."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MONGODB_URL", "HUB_CONFIG")
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


class HubProcess:
    def __init__(self, config: Path, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.data_dir = data_dir
        self.env = {**clean_env(), **(env or {})}
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"hub-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *extra: str) -> HubProcess:
        """Start `hub serve` (with `extra` flags) and wait until /healthz answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hub",
                "serve",
                "--config",
                str(self.config),
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hub exited at start:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"hub did not become healthy:\n{self.log()}")

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C, and wait for the process to finish shutting down."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
