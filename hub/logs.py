"""Structured logs: one JSON object per line, with the `extra` fields a call passes
(`event`, ids, channel). Message bodies and secrets are never passed in."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

# Attributes every LogRecord has; anything else came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(
            f"{k}={v}"
            for k, v in vars(record).items()
            if k not in _STANDARD and not k.startswith("_")
        )
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.getMessage()}"
        if fields:
            line += f"  {fields}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


# arq's "job started" and "job finished" lines (`ref` is "<job id>:<function>").
_ARQ_ROUTINE = frozenset({"%6.2fs → %s(%s)%s", "%6.2fs ← %s ● %s"})


class QuietCronRuns(logging.Filter):
    """Drops arq's start and finish lines for the worker's cron jobs: several
    crons run every minute, which made thousands of lines a day that say only
    "nothing went wrong". Their failures and retries, and every other job's
    lines, still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or record.msg not in _ARQ_ROUTINE:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        return not (len(args) > 1 and str(args[1]).startswith("cron:"))


def configure_logging(level: str, fmt: str) -> None:
    """`fmt` "auto" is text for a person at a terminal, JSON for everything else."""
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp logs every request at INFO; arq logs every job. Keep them quieter.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # httpx (under python-telegram-bot) logs every request URL at INFO, and the Bot
    # API puts the bot's token in the URL: never let it reach the logs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The twilio library logs every request (method, URL, headers) at INFO: one
    # line per SMS of a campaign, with the account SID. Its errors still show.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    logging.getLogger("arq").setLevel(max(logging.INFO, logging.getLevelName(level)))
    arq_worker = logging.getLogger("arq.worker")
    if not any(isinstance(f, QuietCronRuns) for f in arq_worker.filters):
        arq_worker.addFilter(QuietCronRuns())
