"""Contact imports from the workspace (admins and marketers): look at a file's
columns first, then upload it and watch it being imported in the background.

- `POST /api/v1/contacts/imports/preview`: the start of a CSV file (the page
  sends its first 64 KiB) → its columns, the field each maps to by default,
  and a few rows, so that people can map columns before uploading;
- `POST /api/v1/contacts/imports`: the whole file → 202 and the import's state;
- `GET /api/v1/contacts/imports/{id}`: its progress, then its report: created,
  merged, and every rejected row with its line and why;
- `GET /api/v1/contacts/imports/{id}/rejected`: the rejected rows as CSV.

The upload is read in pieces up to `[campaigns] import_max_bytes` (a larger
file is refused with 413, before it is all read when it says its length).
"""

from __future__ import annotations

import csv
import io
import itertools

from aiohttp import web

from hub.campaigns.csv_text import decode, delimiter_of
from hub.campaigns.importer import FIELDS, default_field
from hub.campaigns.imports import ContactImports, header_of
from hub.errors import InvalidRequest, PayloadTooLarge, StoreUnavailable
from hub.web.api import me
from hub.web.permissions import require

IMPORTS = web.AppKey("contact_imports", ContactImports)
IMPORT_MAX_BYTES = web.AppKey("import_max_bytes", int)
PREVIEW_MAX_BYTES = 65_536
SAMPLE_ROWS = 5

routes = web.RouteTableDef()


def imports(request: web.Request) -> ContactImports:
    require(me(request), "admin", "marketer")
    found = request.app.get(IMPORTS)
    if found is None:
        raise StoreUnavailable("contact imports are not available on this store yet")
    return found


def import_options(request: web.Request) -> tuple[dict[str, str], list[str], str | None]:
    """`map=Column=field` (repeatable), `tag=` (repeatable), `delimiter=` (absent
    or empty: found from the header line)."""
    mapping: dict[str, str] = {}
    for item in request.query.getall("map", []):
        column, sep, target = item.partition("=")
        if not sep or not column:
            raise InvalidRequest(f"map: {item!r} is not Column=field")
        mapping[column] = target.strip()
    delimiter = request.query.get("delimiter") or None
    if delimiter is not None and len(delimiter) != 1:
        raise InvalidRequest("delimiter: one character")
    tags = [t.strip() for t in request.query.getall("tag", []) if t.strip()]
    return mapping, tags, delimiter


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The body, refusing with PayloadTooLarge beyond `limit` bytes."""
    too_large = PayloadTooLarge(
        f"the file is larger than {limit:,} bytes; split it, or use `hub import` on the server"
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    parts: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65_536):
        size += len(chunk)
        if size > limit:
            raise too_large
        parts.append(chunk)
    return b"".join(parts)


@routes.post("/api/v1/contacts/imports/preview")
async def preview_import(request: web.Request) -> web.Response:
    """The columns of a CSV file and the field each maps to by default.

    The body is the start of the file (up to 64 KiB: a longer body is cut).
    Answers `columns` ([{"name", "field"}], field "" for an ignored column),
    `rows` (the first few rows, as lists of cells) and `fields` (what a column
    can map to, besides `attributes.<name>`), with the `encoding` the file is
    read as and the `delimiter` (given, or found from the header line)."""
    imports(request)
    _, _, delimiter = import_options(request)
    raw = await request.content.read(PREVIEW_MAX_BYTES)
    decoded = decode(raw, final=len(raw) < PREVIEW_MAX_BYTES)
    text = decoded.text
    delimiter = delimiter or delimiter_of(text)
    header = header_of(text, delimiter)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        next(reader)
        filled = (row for row in reader if any(cell.strip() for cell in row))
        rows = list(itertools.islice(filled, SAMPLE_ROWS))
    except csv.Error as exc:
        raise InvalidRequest(f"the file is not CSV this hub can read: {exc}") from exc
    return web.json_response(
        {
            "columns": [{"name": name, "field": default_field(name)} for name in header],
            "rows": rows,
            "fields": list(FIELDS),
            "encoding": decoded.encoding,
            "delimiter": delimiter,
        }
    )


@routes.post("/api/v1/contacts/imports")
async def start_import(request: web.Request) -> web.Response:
    """Upload a CSV file of contacts to import in the background.

    The body is the file (header row first; UTF-8, UTF-16 or Windows-1258, see
    `hub.campaigns.csv_text`); the query as for
    `POST /api/v1/contacts/import`, plus `name` (the file's name, shown in the
    report). A header or mapping that cannot work is refused at once (422);
    otherwise 202 with the import's state, to follow at
    `GET /api/v1/contacts/imports/{id}`."""
    jobs = imports(request)
    mapping, tags, delimiter = import_options(request)
    raw = await read_limited(request, request.app[IMPORT_MAX_BYTES])
    decoded = decode(raw)
    state = await jobs.start(
        decoded.text,
        encoding=decoded.encoding,
        mapping=mapping,
        tags=tags,
        region=request.query.get("region") or None,
        delimiter=delimiter,
        file_name=request.query.get("name", ""),
        started_by=me(request).id,
    )
    return web.json_response(state.model_dump(mode="json", exclude={"heartbeat"}), status=202)


@routes.get("/api/v1/contacts/imports/{id}")
async def get_import(request: web.Request) -> web.Response:
    """An import's progress (`bytes_done` of `bytes_total`, rows so far) and, once
    `done`, its report: created, merged, and the rejected rows with the reason."""
    state = await imports(request).get(request.match_info["id"])
    return web.json_response(state.model_dump(mode="json", exclude={"heartbeat"}))


@routes.get("/api/v1/contacts/imports/{id}/rejected")
async def rejected_rows(request: web.Request) -> web.Response:
    """Every rejected row of a finished import as CSV: line, reason, the row's cells."""
    import_id = request.match_info["id"]
    body = await imports(request).rejected_csv(import_id)
    return web.Response(
        text=body,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="rejected-{import_id}.csv"'},
    )
