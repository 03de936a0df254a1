"""Canned responses: saved replies an agent inserts with `/shortcut`."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.errors import NotFound
from hub.inbox.model import CannedResponse
from hub.web.api import INBOX, STORE, me, read_body
from hub.web.audit import record
from hub.web.permissions import require

routes = web.RouteTableDef()


class CannedBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shortcut: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    text: str = Field(min_length=1, max_length=10_000)


@routes.get("/api/v1/canned-responses")
async def list_canned(request: web.Request) -> web.Response:
    items = await request.app[STORE].list_canned()
    return web.json_response({"items": [c.model_dump(mode="json") for c in items]})


@routes.post("/api/v1/canned-responses")
async def create_canned(request: web.Request) -> web.Response:
    agent = me(request)
    require(agent, "admin", "agent")
    body = await read_body(request, CannedBody)
    canned = CannedResponse(
        shortcut=body.shortcut,
        text=body.text,
        created_by=agent.id,
        created_at=request.app[INBOX].clock.now(),
    )
    await request.app[STORE].add_canned(canned)
    return web.json_response(canned.model_dump(mode="json"), status=201)


@routes.delete("/api/v1/canned-responses/{id}")
async def delete_canned(request: web.Request) -> web.Response:
    agent = me(request)
    require(agent, "admin")
    store = request.app[STORE]
    if not await store.delete_canned(request.match_info["id"]):
        raise NotFound(f"canned response {request.match_info['id']} does not exist")
    await record(
        request,
        store,
        "canned_response.deleted",
        actor_id=agent.id,
        target=request.match_info["id"],
    )
    return web.json_response({"status": "deleted"})
