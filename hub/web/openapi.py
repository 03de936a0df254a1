"""The API described: `GET /api/v1/openapi.json` (OpenAPI 3.1, built from the
routes the app really serves, their docstrings and the pydantic models that
check their bodies) and `GET /api/docs`, the same as a page people can read.

What a route takes and answers is listed once, in `OPERATIONS`; a test holds
it to the router, so a new endpoint without a description fails CI.
"""

from __future__ import annotations

import html
import inspect
import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from hub import __version__
from hub.campaigns.imports import ContactImport
from hub.campaigns.model import Audience, Campaign, Recipient
from hub.inbox.model import (
    Agent,
    ApiToken,
    Attachment,
    AuditEntry,
    CannedResponse,
    Contact,
    Conversation,
    Message,
)
from hub.reports.model import (
    AgentRow,
    CampaignRow,
    ChannelRow,
    DayRow,
    HourRow,
    ScoreRow,
    Summary,
    Table,
)
from hub.web import agents, api, calls, campaigns, canned, contacts, sessions
from hub.web.workspace import HEADERS

Body = type[BaseModel] | None
REF = "#/components/schemas/"
# (method, path) → (request body model, answer: a component name, "list of" one, or a note)
OPERATIONS: dict[tuple[str, str], tuple[Body, str]] = {
    ("POST", "/api/v1/auth/login"): (sessions.LoginBody, "Session"),
    ("POST", "/api/v1/auth/logout"): (None, "Status"),
    ("GET", "/api/v1/auth/session"): (None, "Session"),
    ("GET", "/api/v1/tokens"): (None, "[ApiToken]"),
    ("POST", "/api/v1/tokens"): (sessions.TokenBody, "NewToken"),
    ("DELETE", "/api/v1/tokens/{id}"): (None, "Status"),
    ("GET", "/api/v1/views"): (None, "Views"),
    ("GET", "/api/v1/conversations"): (None, "[Conversation]"),
    ("GET", "/api/v1/conversations/{id}"): (None, "Conversation"),
    ("PATCH", "/api/v1/conversations/{id}"): (api.ConversationPatch, "Conversation"),
    ("GET", "/api/v1/conversations/{id}/messages"): (None, "[Message]"),
    ("POST", "/api/v1/conversations/{id}/messages"): (api.ReplyBody, "Message"),
    ("POST", "/api/v1/conversations/{id}/notes"): (api.NoteBody, "Message"),
    ("POST", "/api/v1/conversations/{id}/assign"): (api.AssignBody, "Conversation"),
    ("POST", "/api/v1/conversations/{id}/snooze"): (api.SnoozeBody, "Conversation"),
    ("POST", "/api/v1/conversations/{id}/resolve"): (None, "Conversation"),
    ("POST", "/api/v1/conversations/{id}/reopen"): (None, "Conversation"),
    ("POST", "/api/v1/conversations/{id}/pending"): (None, "Conversation"),
    ("POST", "/api/v1/conversations/{id}/read"): (None, "Status"),
    ("GET", "/api/v1/conversations/{id}/export"): (None, "Export"),
    ("POST", "/api/v1/conversations/{id}/call"): (calls.CallBody, "Calling"),
    ("GET", "/api/v1/labels"): (None, "Labels"),
    ("GET", "/api/v1/messages/{id}"): (None, "Message"),
    ("GET", "/api/v1/messages/{id}/attachments/{index}"): (None, "the file"),
    ("GET", "/api/v1/messages/{id}/raw"): (None, "the raw message (message/rfc822)"),
    ("POST", "/api/v1/attachments"): (None, "Attachment"),
    ("GET", "/api/v1/attachments/{key}"): (None, "the file"),
    ("GET", "/api/v1/contacts"): (None, "[Contact]"),
    ("GET", "/api/v1/contacts/{id}"): (None, "Contact"),
    ("PATCH", "/api/v1/contacts/{id}"): (contacts.ContactPatch, "Contact"),
    ("POST", "/api/v1/contacts/{id}/tags"): (contacts.TagBody, "Contact"),
    ("GET", "/api/v1/contacts/{id}/timeline"): (None, "Timeline"),
    ("POST", "/api/v1/contacts/{id}/merge"): (contacts.MergeBody, "Contact"),
    ("GET", "/api/v1/canned-responses"): (None, "[CannedResponse]"),
    ("POST", "/api/v1/canned-responses"): (canned.CannedBody, "CannedResponse"),
    ("DELETE", "/api/v1/canned-responses/{id}"): (None, "Status"),
    ("GET", "/api/v1/agents"): (None, "[Agent]"),
    ("POST", "/api/v1/agents"): (agents.NewAgent, "Agent"),
    ("PATCH", "/api/v1/agents/{id}"): (agents.AgentPatch, "Agent"),
    ("GET", "/api/v1/agents/me"): (None, "Agent"),
    ("PUT", "/api/v1/agents/me/presence"): (api.PresenceBody, "Agent"),
    ("GET", "/api/v1/teams"): (None, "[Team]"),
    ("GET", "/api/v1/audit"): (None, "[AuditEntry]"),
    ("GET", "/api/v1/stream"): (None, "a WebSocket: see hub/web/realtime.py"),
    # Campaigns (hub/web/campaigns.py): admins and marketers.
    ("POST", "/api/v1/contacts/import"): (None, "ImportReport (CSV body, text/csv)"),
    ("POST", "/api/v1/contacts/imports/preview"): (None, "ImportColumns (the file's start)"),
    ("POST", "/api/v1/contacts/imports"): (None, "ContactImport (CSV body, text/csv)"),
    ("GET", "/api/v1/contacts/imports/{id}"): (None, "ContactImport"),
    ("GET", "/api/v1/contacts/imports/{id}/rejected"): (None, "the rejected rows (text/csv)"),
    ("GET", "/api/v1/campaign-options"): (None, "CampaignOptions"),
    ("POST", "/api/v1/campaigns/preview"): (campaigns.DraftPreviewBody, "Preview"),
    ("PATCH", "/api/v1/campaigns/{id}"): (campaigns.CampaignPatch, "Campaign"),
    ("GET", "/api/v1/audiences"): (None, "[Audience]"),
    ("POST", "/api/v1/audiences"): (campaigns.AudienceBody, "Audience"),
    ("POST", "/api/v1/audiences/count"): (campaigns.CountBody, "Count"),
    ("GET", "/api/v1/audiences/{id}"): (None, "Audience"),
    ("GET", "/api/v1/campaigns"): (None, "[Campaign]"),
    ("POST", "/api/v1/campaigns"): (campaigns.CampaignBody, "Campaign"),
    ("GET", "/api/v1/campaigns/{id}"): (None, "Campaign"),
    ("POST", "/api/v1/campaigns/{id}/preview"): (campaigns.PreviewBody, "Preview"),
    ("POST", "/api/v1/campaigns/{id}/test"): (campaigns.TestBody, "TestSend"),
    ("POST", "/api/v1/campaigns/{id}/schedule"): (campaigns.ScheduleBody, "Campaign"),
    ("POST", "/api/v1/campaigns/{id}/launch"): (None, "Campaign"),
    ("POST", "/api/v1/campaigns/{id}/pause"): (None, "Campaign"),
    ("POST", "/api/v1/campaigns/{id}/resume"): (None, "Campaign"),
    ("POST", "/api/v1/campaigns/{id}/cancel"): (None, "Campaign"),
    ("GET", "/api/v1/campaigns/{id}/recipients"): (None, "[Recipient]"),
    ("GET", "/api/v1/campaigns/{id}/recipients/{contact_id}"): (None, "Recipient"),
    # Reports (hub/web/reports.py): JSON, or CSV with ?format=csv.
    ("GET", "/api/v1/reports/summary"): (None, "ReportSummary"),
    ("GET", "/api/v1/reports/days"): (None, "DaysReport"),
    ("GET", "/api/v1/reports/channels"): (None, "ChannelsReport"),
    ("GET", "/api/v1/reports/hours"): (None, "HoursReport"),
    ("GET", "/api/v1/reports/agents"): (None, "AgentsReport"),
    ("GET", "/api/v1/reports/satisfaction"): (None, "SatisfactionReport"),
    ("GET", "/api/v1/reports/campaigns"): (None, "CampaignsReport"),
}
REPORT_QUERY = {
    "since": "7d, 24h, 2w, a date (2026-03-01, midnight in tz) or an ISO 8601 time"
    " (default: 7 days before until)",
    "until": "the same forms (default: now); the period is [since, until), at most 400 days",
    "tz": "IANA timezone for days and hours of day (default: [reports] timezone)",
    "account": "channel account ids (repeatable or comma-separated)",
    "channel": "channel families: sms, email, webchat... (repeatable or comma-separated)",
    "team": "team ids (repeatable or comma-separated)",
    "agent": "agent ids or `me`: conversations assigned to them",
    "label": "conversations carrying any of these labels",
    "format": "json (default) or csv (a download, one line per row)",
}
TIMELINE_QUERY = {
    "limit": "1 to 500 (default 50): the newest messages, oldest first",
    "cursor": "next_cursor of the previous page: the messages before it",
}
DELIMITER = "the cell separator (default: , ; tab or |, whichever the header line uses)"
# Query parameters by path, or by "METHOD path" where methods of one path differ.
QUERY = {
    "/api/v1/conversations": {
        "status": "comma-separated: open, pending, snoozed, resolved",
        "assignee": "an agent id, `me` or `none`",
        "team": "a team id or `mine`",
        "account": "a channel account id",
        "channel": "a channel family (sms, email, webchat...)",
        "contact": "a contact id",
        "label": "one label",
        "q": "text in the subject, the address or any message",
        "updated_since": "ISO 8601 time with a timezone",
        "limit": "1 to 100 (default 25)",
        "cursor": "next_cursor of the previous page",
    },
    "GET /api/v1/conversations/{id}/messages": TIMELINE_QUERY,
    "/api/v1/contacts/{id}/timeline": TIMELINE_QUERY,
    "/api/v1/audit": {"before": "next_cursor of the previous page"},
    "/api/v1/contacts": {"q": "2 to 200 characters of a name, phone or address"},
    "/api/v1/contacts/import": {
        "map": "Column=field (repeatable): name, phone, email, language, timezone, birthday"
        " (day first: 03/04/1990 is 3 April), tags, consent.sms, consent.email (yes/no) or"
        " attributes.<key>",
        "tag": "a tag for every imported contact (repeatable)",
        "region": "country of phone numbers without +code (default: the inbox's)",
        "delimiter": DELIMITER,
    },
    "/api/v1/contacts/imports": {
        "map": "Column=field (repeatable), as for /api/v1/contacts/import",
        "tag": "a tag for every imported contact (repeatable)",
        "region": "country of phone numbers without +code (default: the inbox's)",
        "delimiter": DELIMITER,
        "name": "the file's name, shown with the report",
    },
    "/api/v1/contacts/imports/preview": {"delimiter": DELIMITER},
    "/api/v1/campaigns/{id}/recipients": {
        "format": "`csv`: every recipient (with the contact's name) as one CSV file",
        "status": "pending, sending, sent, delivered, failed or skipped",
        "limit": "1 to 100 (default 25)",
        "cursor": "next_cursor of the previous page",
    },
}
QUERY.update(
    {path: REPORT_QUERY for method, path in OPERATIONS if path.startswith("/api/v1/reports/")}
)
MODELS: dict[str, type[BaseModel]] = {
    "Conversation": Conversation,
    "Message": Message,
    "Contact": Contact,
    "Agent": Agent,
    "ApiToken": ApiToken,
    "Attachment": Attachment,
    "AuditEntry": AuditEntry,
    "CannedResponse": CannedResponse,
    "Audience": Audience,
    "Campaign": Campaign,
    "Recipient": Recipient,
    "ContactImport": ContactImport,
    "ReportSummary": Summary,
    "DaysReport": Table[DayRow],
    "ChannelsReport": Table[ChannelRow],
    "HoursReport": Table[HourRow],
    "AgentsReport": Table[AgentRow],
    "SatisfactionReport": Table[ScoreRow],
    "CampaignsReport": Table[CampaignRow],
}
HIDDEN_FIELDS = {"Agent": {"password_hash"}, "ApiToken": {"token_hash"}}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "stable, for programs"},
                "message": {"type": "string", "description": "for people"},
            },
        }
    },
}


def _schema(model: type[BaseModel], hidden: set[str] | None = None) -> dict[str, Any]:
    schema = model.model_json_schema(
        ref_template="#/components/schemas/{model}", mode="serialization"
    )
    for name in hidden or ():
        schema.get("properties", {}).pop(name, None)
        if name in schema.get("required", []):
            schema["required"].remove(name)
    return schema


def _components() -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": ERROR}
    for name, model in MODELS.items():
        schema = _schema(model, HIDDEN_FIELDS.get(name))
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    return schemas


def _answer(answer: str) -> dict[str, Any]:
    if answer.startswith("[") and answer[1:-1] in MODELS:
        items = {"$ref": f"#/components/schemas/{answer[1:-1]}"}
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {"items": {"type": "array", "items": items}},
        }
        return {
            "description": f"a list of {answer[1:-1]}",
            "content": {"application/json": {"schema": schema}},
        }
    if answer in MODELS:
        ref = {"$ref": f"#/components/schemas/{answer}"}
        return {"description": answer, "content": {"application/json": {"schema": ref}}}
    return {"description": answer}


def _summary(handler: Any) -> tuple[str, str]:
    doc = inspect.getdoc(handler) or ""
    first, _, rest = doc.partition("\n\n")
    return first.replace("\n", " ") or handler.__name__.replace("_", " "), rest


def document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document of the routes `app` serves under /api/v1."""
    paths: dict[str, Any] = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if not path or not path.startswith("/api/v1") or route.method == "HEAD":
            continue
        body, answer = OPERATIONS.get((route.method, path), (None, "undocumented"))
        summary, description = _summary(route.handler)
        operation: dict[str, Any] = {
            "summary": summary,
            "responses": {
                "2XX": _answer(answer),
                "4XX": {
                    "description": "refused: the error names the problem",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
        if description:
            operation["description"] = description
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_names(path)
        ]
        parameters += [
            {"name": name, "in": "query", "description": note, "schema": {"type": "string"}}
            for name, note in QUERY.get(f"{route.method} {path}", QUERY.get(path, {})).items()
        ]
        if parameters:
            operation["parameters"] = parameters
        if body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema(body)}},
            }
        if path not in ("/api/v1/auth/login", "/api/v1/openapi.json"):
            operation["security"] = [{"bearer": []}, {"session": []}]
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hub API",
            "version": __version__,
            "description": 'The shared inbox\'s REST API. Errors: {"error": {"code", "message"}}.'
            ' Lists: {"items", "next_cursor"}. Changes made with the session cookie send'
            " the session's CSRF token in X-CSRF-Token.",
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": _components(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "hub token create"},
                "session": {"type": "apiKey", "in": "cookie", "name": "hub_session"},
            },
        },
    }


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


routes = web.RouteTableDef()


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """This document."""
    return web.json_response(document(request.app))


@routes.get("/api/docs")
async def docs(request: web.Request) -> web.Response:
    """The API for people: every operation, its parameters and bodies."""
    spec = document(request.app)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>hub API</title>",
        "<link rel='icon' href='/app/static/icon.svg' type='image/svg+xml'>"
        "<link rel='stylesheet' href='/app/static/docs.css'></head><body>",
        f"<h1>hub API {html.escape(spec['info']['version'])}</h1>",
        f"<p>{html.escape(spec['info']['description'])}</p>",
        "<p><a href='/api/v1/openapi.json'>openapi.json</a></p>",
    ]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            parts.append(
                f"<section><h2><span class='method'>{method.upper()}</span> "
                f"<code>{html.escape(path)}</code></h2>"
                f"<p>{html.escape(operation['summary'])}</p>"
            )
            if operation.get("description"):
                parts.append(f"<p>{html.escape(operation['description'])}</p>")
            for parameter in operation.get("parameters", []):
                note = parameter.get("description", "")
                parts.append(
                    f"<p class='param'><code>{html.escape(parameter['name'])}</code>"
                    f" ({parameter['in']}) {html.escape(note)}</p>"
                )
            if "requestBody" in operation:
                schema = operation["requestBody"]["content"]["application/json"]["schema"]
                shown = html.escape(json.dumps(schema, indent=2, ensure_ascii=False))
                parts.append(f"<details><summary>Body</summary><pre>{shown}</pre></details>")
            answer = html.escape(operation["responses"]["2XX"]["description"])
            parts.append(f"<p class='answer'>→ {answer}</p></section>")
    parts.append("</body></html>")
    return web.Response(text="".join(parts), content_type="text/html", headers=dict(HEADERS))
