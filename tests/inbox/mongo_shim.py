"""A thin async face over mongomock, so MongoStore's queries run without a server.

It exposes only the part of PyMongo's asyncio API (`AsyncDatabase`,
`AsyncCollection`, `AsyncCursor`) that `hub/inbox/mongo.py` calls; every
method does what mongomock does, made awaitable. Where mongomock falls short
of a real server:

- Unique multikey indexes: mongomock does not index array elements, so the
  unique index on (identities.channel, identities.address) is NOT enforced and
  two contacts can share an identity here. The contract tests that need it
  expect a failure on the shim and pass against a real server
  (HUB_TEST_MONGODB_URL).
- Partial unique indexes (external_id, idempotency_key) ARE enforced, on insert
  and on update; the unique indexes on _id, agents.email and
  api_tokens.token_hash are too.
- No sessions or transactions: `hello` answers as a standalone server, so
  MongoStore never starts one (mongomock would refuse a session).
- Codec options are ignored: datetimes come back naive, which MongoStore must
  (and does) read as UTC.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import mongomock
from bson.codec_options import CodecOptions
from pymongo import IndexModel, UpdateOne

Document = dict[str, Any]


class AsyncCursor:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        self._iterator: Iterator[Document] | None = None

    def sort(self, keys: Sequence[tuple[str, int]]) -> AsyncCursor:
        self._cursor.sort(list(keys))
        return self

    def limit(self, limit: int) -> AsyncCursor:
        self._cursor.limit(limit)
        return self

    async def to_list(self, length: int | None = None) -> list[Document]:
        documents = list(self._cursor)
        return documents if length is None else documents[:length]

    def __aiter__(self) -> AsyncCursor:
        return self

    async def __anext__(self) -> Document:
        if self._iterator is None:
            self._iterator = iter(self._cursor)
        try:
            return next(self._iterator)
        except StopIteration:
            raise StopAsyncIteration from None


class AsyncCollection:
    def __init__(self, collection: mongomock.Collection) -> None:
        self._collection = collection

    async def create_indexes(self, indexes: Sequence[IndexModel]) -> list[str]:
        # mongomock's own create_indexes drops partialFilterExpression; its
        # create_index keeps it.
        names = []
        for index in indexes:
            options = dict(index.document)
            keys = list(options.pop("key").items())
            names.append(self._collection.create_index(keys, **options))
        return names

    async def insert_one(self, document: Document, *, session: None = None) -> Any:
        return self._collection.insert_one(document, session=session)

    async def insert_many(
        self, documents: list[Document], *, ordered: bool = True, session: None = None
    ) -> Any:
        return self._collection.insert_many(documents, ordered=ordered, session=session)

    async def count_documents(self, query: Document, *, session: None = None) -> int:
        return int(self._collection.count_documents(query, session=session))

    async def find_one(self, query: Document, *, session: None = None) -> Document | None:
        return self._collection.find_one(query, session=session)

    def find(
        self, query: Document, projection: Document | None = None, *, session: None = None
    ) -> AsyncCursor:
        return AsyncCursor(self._collection.find(query, projection, session=session))

    async def update_one(
        self, query: Document, update: Document, *, upsert: bool = False, session: None = None
    ) -> Any:
        return self._collection.update_one(query, update, upsert=upsert, session=session)

    async def find_one_and_update(
        self, query: Document, update: Document, *, session: None = None, **options: Any
    ) -> Document | None:
        return self._collection.find_one_and_update(query, update, session=session, **options)

    async def update_many(self, query: Document, update: Document, *, session: None = None) -> Any:
        return self._collection.update_many(query, update, session=session)

    async def bulk_write(
        self, requests: list[Any], *, ordered: bool = True, session: None = None
    ) -> Any:
        # mongomock's bulk_write does not take the UpdateOne of today's PyMongo:
        # the updates one by one (the store sends only UpdateOne here).
        matched = modified = 0
        for request in requests:
            assert isinstance(request, UpdateOne), request
            result = self._collection.update_one(request._filter, request._doc, session=session)
            matched += result.matched_count
            modified += result.modified_count
        return SimpleNamespace(matched_count=matched, modified_count=modified)

    async def delete_one(self, query: Document, *, session: None = None) -> Any:
        return self._collection.delete_one(query, session=session)

    async def aggregate(self, pipeline: list[Document], *, session: None = None) -> AsyncCursor:
        return AsyncCursor(self._collection.aggregate(pipeline, session=session))


class AsyncDatabase:
    def __init__(self, database: mongomock.Database) -> None:
        self._database = database

    def __getitem__(self, name: str) -> AsyncCollection:
        return AsyncCollection(self._database[name])

    def with_options(self, *, codec_options: CodecOptions[Any] | None = None) -> AsyncDatabase:
        return AsyncDatabase(self._database.with_options(codec_options=codec_options))

    async def command(self, command: str) -> Document:
        if command == "hello":
            # mongomock has no `hello`; it is a standalone server without sessions.
            return {"isWritablePrimary": True, "ok": 1.0}
        return self._database.command(command)


def shim_database(name: str = "hub") -> AsyncDatabase:
    """A fresh, empty in-memory database."""
    return AsyncDatabase(mongomock.MongoClient()[name])
