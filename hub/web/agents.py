"""Managing the people: agents (admins create them, change roles, teams and
capacity, deactivate them), the teams from the configuration, and the audit
log admins read."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.errors import InvalidRequest, NotFound, QueueUnavailable
from hub.events import Event
from hub.inbox.addresses import normalise_email
from hub.inbox.model import Agent, Role
from hub.web.api import BUS, INBOX, STORE, TEAMS, agent_json, me, read_body
from hub.web.audit import record
from hub.web.auth import PASSWORD_MIN_LENGTH, hash_password
from hub.web.permissions import require
from hub.web.sessions import SESSIONS

routes = web.RouteTableDef()


class NewAgent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)
    role: Role = "agent"
    team_ids: list[str] = Field(default_factory=list, max_length=50)
    languages: list[str] = Field(default_factory=list, max_length=20)
    capacity: int = Field(10, ge=0, le=1000)
    password: str = Field(min_length=PASSWORD_MIN_LENGTH, max_length=1024)


class AgentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    role: Role | None = None
    team_ids: list[str] | None = Field(None, max_length=50)
    languages: list[str] | None = Field(None, max_length=20)
    capacity: int | None = Field(None, ge=0, le=1000)
    active: bool | None = None
    password: str | None = Field(None, min_length=PASSWORD_MIN_LENGTH, max_length=1024)


def check_teams(request: web.Request, team_ids: list[str]) -> None:
    known = {t.id for t in request.app[TEAMS]}
    unknown = [t for t in team_ids if t not in known]
    if unknown:
        raise InvalidRequest(f"no such team: {', '.join(unknown)}")


@routes.get("/api/v1/teams")
async def list_teams(request: web.Request) -> web.Response:
    return web.json_response({"items": [t.model_dump(mode="json") for t in request.app[TEAMS]]})


@routes.post("/api/v1/agents")
async def create_agent(request: web.Request) -> web.Response:
    admin = me(request)
    require(admin, "admin")
    body = await read_body(request, NewAgent)
    check_teams(request, body.team_ids)
    agent = Agent(
        name=body.name,
        email=normalise_email(body.email),
        role=body.role,
        team_ids=body.team_ids,
        languages=body.languages,
        capacity=body.capacity,
        password_hash=hash_password(body.password),
        created_at=request.app[INBOX].clock.now(),
    )
    await request.app[STORE].add_agent(agent)
    await record(
        request,
        request.app[STORE],
        "agent.created",
        actor_id=admin.id,
        target=agent.id,
        role=agent.role,
    )
    return web.json_response(agent_json(agent), status=201)


@routes.patch("/api/v1/agents/{id}")
async def update_agent(request: web.Request) -> web.Response:
    """Admins change anything; role changes and deactivation are audited and
    announced (`agent.updated`), so routers and open pages follow."""
    admin = me(request)
    require(admin, "admin")
    store = request.app[STORE]
    agent = await store.get_agent(request.match_info["id"])
    if agent is None:
        raise NotFound(f"agent {request.match_info['id']} does not exist")
    body = await read_body(request, AgentPatch)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"password"})
    changes = {k: v for k, v in changes.items() if v is not None}
    if body.team_ids is not None:
        check_teams(request, body.team_ids)
    if agent.id == admin.id and (
        changes.get("role", "admin") != "admin" or changes.get("active") is False
    ):
        raise InvalidRequest("you cannot demote or deactivate yourself; ask another admin")
    if body.password is not None:
        changes["password_hash"] = hash_password(body.password)
    if not changes:
        raise InvalidRequest("send at least one field to change")
    await store.update_agent(agent.id, **changes)
    updated = agent.model_copy(update=changes)
    if "role" in changes and changes["role"] != agent.role:
        await record(
            request,
            store,
            "agent.role_changed",
            actor_id=admin.id,
            target=agent.id,
            before=agent.role,
            after=changes["role"],
        )
    if "active" in changes and changes["active"] != agent.active:
        action = "agent.reactivated" if changes["active"] else "agent.deactivated"
        await record(request, store, action, actor_id=admin.id, target=agent.id)
    if "password_hash" in changes:
        await request.app[SESSIONS].end_all(agent.id)
        await record(request, store, "agent.password_set", actor_id=admin.id, target=agent.id)
    try:
        await request.app[BUS].publish(
            Event("agent.updated", {"agent": agent_json(updated), "changed": sorted(changes)})
        )
    except QueueUnavailable:
        pass  # stored; every request reads the agent afresh
    return web.json_response(agent_json(updated))


AUDIT_PAGE = 50


@routes.get("/api/v1/audit")
async def list_audit(request: web.Request) -> web.Response:
    """Admins only: newest first, 50 at a time; pass `before` (an entry id) for more."""
    require(me(request), "admin")
    before = request.query.get("before") or None
    entries = await request.app[STORE].list_audit(limit=AUDIT_PAGE + 1, before=before)
    return web.json_response(
        {
            "items": [e.model_dump(mode="json") for e in entries[:AUDIT_PAGE]],
            "next_cursor": entries[AUDIT_PAGE - 1].id if len(entries) > AUDIT_PAGE else None,
        }
    )
