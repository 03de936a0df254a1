"""Record ids: ObjectId-shaped strings (MongoDB takes them as they are), unique
within a process and across processes, a forked child included, and ordered by
the second they were made."""

from __future__ import annotations

import os
import time

from bson import ObjectId

from hub.inbox.model import new_id


def test_ids_are_object_ids_of_this_second_and_never_repeat() -> None:
    before = int(time.time())
    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(ObjectId.is_valid(i) for i in ids)
    stamp = ObjectId(ids[0]).generation_time.timestamp()
    assert before <= stamp <= time.time()


def test_a_forked_child_makes_ids_of_its_own() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, new_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 24).decode()
    os.close(read)
    os.close(write)
    ours = new_id()
    assert child[8:18] != ours[8:18]  # another process's random part
