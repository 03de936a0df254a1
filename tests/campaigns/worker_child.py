"""A hub worker in a child process, on an injected clock, for crash tests:

    python -m tests.campaigns.worker_child CONFIG START_ISO

The clock starts at START_ISO and runs at real speed from there, so the test
decides what time of day (and which quiet hours) the worker sees. It is the
same runtime and worker `hub worker` runs; only the clock is the test's."""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import signal
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from hub.app import open_runtime
from hub.inbox.model import utc_ms
from hub.settings import load_settings
from hub.worker import WorkerService


class RunningClock:
    def __init__(self, start: datetime) -> None:
        self.start = start
        self.origin = time.monotonic()

    def now(self) -> datetime:
        return utc_ms(self.start + timedelta(seconds=time.monotonic() - self.origin))


def dump_tasks() -> None:
    """SIGUSR1: every task's stack to stderr (what a stuck worker is waiting on)."""
    for task in asyncio.all_tasks():
        print(f"--- {task.get_name()}", file=sys.stderr)
        task.print_stack(file=sys.stderr)
    sys.stderr.flush()


async def main(config: Path, start: datetime) -> None:
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)
    faulthandler.register(signal.SIGUSR2, all_threads=True)
    settings = load_settings(config)
    async with open_runtime(settings, clock=RunningClock(start)) as runtime:
        await WorkerService(runtime).run_until_cancelled()


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    asyncio.run(main(Path(sys.argv[1]), datetime.fromisoformat(sys.argv[2])))
