"""Settings of a long-running hub process (`hub serve`, `hub worker`).

Python's cyclic garbage collector, left at its defaults (collect the youngest
generation every 700 new objects), promotes the objects of every in-flight
request to the old generations under load, which soon triggers a full
collection; a full collection walks every object the process holds — with
thousands of open web-chat and agent sockets, a million objects — and stops
the event loop for up to ~300 ms each time (measured with bench/webchat.py:
8 full collections and 1.2 s of pauses in a 50 s run with 5,000 sockets).

A larger first threshold lets request objects die young, before any
collection sees them, so full collections become rare; objects alive at start-up
(modules, settings) are frozen out of every collection. Reference counting
still frees almost everything immediately; only reference cycles wait longer.

The event loop is uvloop's where it is installed (Linux and macOS; a
dependency there): the same asyncio API with its I/O, timers and callbacks in
C. `server.event_loop = "asyncio"` keeps the standard loop.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
from typing import Literal

EventLoopChoice = Literal["auto", "uvloop", "asyncio"]

# (young, middle, old): a young collection every 50,000 net allocations instead
# of 700; the middle and old generations as often as before, relative to it.
GC_THRESHOLDS = (50_000, 20, 10)


def tune_for_server() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def new_event_loop(choice: EventLoopChoice = "auto") -> asyncio.AbstractEventLoop:
    """A new event loop as configured: uvloop when installed (or required),
    else asyncio's own."""
    if choice == "uvloop" or (choice == "auto" and uvloop_available()):
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()
