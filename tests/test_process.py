"""The settings of a long-running hub process."""

from __future__ import annotations

import gc

from hub.process import GC_THRESHOLDS, new_event_loop, tune_for_server


def test_server_processes_collect_garbage_rarely_and_skip_start_up_objects():
    before = gc.get_threshold()
    try:
        tune_for_server()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_server_loop_is_uvloop_where_installed_unless_asyncio_is_chosen():
    import uvloop

    for choice, expected in (("auto", uvloop.Loop), ("uvloop", uvloop.Loop)):
        loop = new_event_loop(choice)
        try:
            assert isinstance(loop, expected)
        finally:
            loop.close()
    loop = new_event_loop("asyncio")
    try:
        assert not isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
