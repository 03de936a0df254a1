"""Store fixtures: the contract suite runs once per backend.

- sqlite: a file in the test's temporary directory, always.
- mongo: a real server when HUB_TEST_MONGODB_URL is set (a fresh database per
  test, dropped afterwards); otherwise MongoStore over the mongomock shim.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from uuid import uuid4

import pytest
from pymongo import AsyncMongoClient

from hub.inbox.mongo import MongoStore
from hub.inbox.sqlite import SqliteStore
from hub.inbox.store import Store
from tests.inbox.mongo_shim import shim_database

MONGODB_URL = os.environ.get("HUB_TEST_MONGODB_URL")


@dataclass
class Backend:
    kind: Literal["sqlite", "mongo", "mongomock"]
    store: Store
    # Another store over the same data, not yet opened.
    reopen: Callable[[], Store]
    # Two contacts can never share an identity (mongomock cannot enforce it).
    identity_index: bool
    # Writes inside `transaction()` are all-or-nothing (known once the store is open).
    transactions: bool = False


@pytest.fixture(params=["sqlite", "mongo"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    database_name = f"hub_test_{uuid4().hex}"
    if request.param == "sqlite":
        path = tmp_path / "hub.sqlite3"
        backend = Backend(
            "sqlite", SqliteStore(path), lambda: SqliteStore(path), identity_index=True
        )
    elif MONGODB_URL:
        url = MONGODB_URL
        backend = Backend(
            "mongo",
            MongoStore.from_url(url, database_name),
            lambda: MongoStore.from_url(url, database_name),
            identity_index=True,
        )
    else:
        database: Any = shim_database()
        backend = Backend(
            "mongomock", MongoStore(database), lambda: MongoStore(database), identity_index=False
        )
    await backend.store.open()
    backend.transactions = (
        backend.store.supports_transactions if isinstance(backend.store, MongoStore) else True
    )
    try:
        yield backend
    finally:
        await backend.store.close()
        if backend.kind == "mongo" and MONGODB_URL:
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGODB_URL)
            try:
                await client.drop_database(database_name)
            finally:
                await client.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store
