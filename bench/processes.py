"""The processes a benchmark starts and measures: a free port, a clean child
environment, a server process and its health, and what a process costs (CPU
from /proc, resident memory sampled in a thread). Shared by bench/ingest.py
and bench/webchat.py, which run as scripts with this folder on sys.path."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(**extra: str) -> dict[str, str]:
    """A fresh shell's environment: no outside Redis, Mongo or config leaks in."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MONGODB_URL", "HUB_CONFIG")
    }
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


@dataclass
class Server:
    """A server under test: one we started (`process`), or one already running
    that we only know by URL (and perhaps pid)."""

    name: str
    url: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    pid: int | None = None
    token: str = ""  # an API token, where the benchmark needs one
    data_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.pid is None and self.process is not None:
            self.pid = self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(
            f"{self.name} did not answer /healthz in {timeout:.0f} s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Ctrl-C (the servers shut down gracefully on SIGINT); kill if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def spawn(name: str, command: list[str], log_path: Path, url: str, env: dict[str, str]) -> Server:
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    return Server(name, url, process=process, log_path=log_path)


def redis_pid_for(data_dir: Path) -> int | None:
    """The embedded redis-server runs daemonised (not our child); it is the one
    whose working directory is the hub's data folder."""
    wanted = data_dir.resolve()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "redis-server":
                continue
            if Path(os.readlink(entry / "cwd")).resolve() == wanted:
                return int(entry.name)
        except OSError:
            continue
    return None


# -- what the processes cost ---------------------------------------------------
def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process (all its threads); our own process when None."""
    if pid is None:
        return time.process_time()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / TICKS


def _cpu_ticks() -> list[int]:
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def machine_busy_seconds() -> float:
    """CPU time all processes on the machine have used (every core; idle, I/O
    wait and the hypervisor's steal excluded)."""
    fields = _cpu_ticks()
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:7]) - idle) / TICKS


def machine_steal_seconds() -> float:
    """CPU time the hypervisor gave to other virtual machines while this one's
    cores wanted to run ("steal"; 0 on bare metal): on a shared host, what
    makes the same code measure slower in one run than in the next."""
    fields = _cpu_ticks()
    return fields[7] / TICKS if len(fields) > 7 else 0.0


def status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class MemoryWatch:
    """Samples VmRSS of some processes every 100 ms in a thread (the event loop is
    too busy under load to keep time) and keeps each one's peak."""

    def __init__(self, pids: dict[str, int], interval: float = 0.1) -> None:
        self.pids = pids
        self.interval = interval
        self.peak_kb: dict[str, int] = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-watch", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                rss = status_kb(pid, "VmRSS")
                if rss is not None and rss > self.peak_kb[name]:
                    self.peak_kb[name] = rss
            self._stop.wait(self.interval)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
