"""Campaign routes: the marketer's API under `/api/v1` (audiences, campaigns,
progress, recipients) and the public unsubscribe page that campaign e-mails
link to (`/unsubscribe/<signed token>`, RFC 8058 one-click by POST).

Only admins and marketers may use the campaign API (`permissions.require`).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from html import escape
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.campaigns.csv_text import decode
from hub.campaigns.importer import ContactImporter
from hub.campaigns.messages import TEMPLATE_VARIABLES
from hub.campaigns.model import AudienceFilter, CampaignChannel
from hub.campaigns.service import FAMILIES, CampaignService
from hub.errors import InvalidRequest, NotFound, StoreUnavailable
from hub.spreadsheet import cell
from hub.web.api import me, page_limit, read_body
from hub.web.contact_imports import IMPORT_MAX_BYTES, import_options
from hub.web.permissions import require
from hub.web.public_page import public_page

CAMPAIGNS = web.AppKey("campaigns", CampaignService)  # absent where campaigns are not built
RECIPIENT_STATUSES = ("pending", "sending", "sent", "delivered", "failed", "skipped")

routes = web.RouteTableDef()


def service(request: web.Request, *, public: bool = False) -> CampaignService:
    if not public:
        require(me(request), "admin", "marketer")
    campaigns = request.app.get(CAMPAIGNS)
    if campaigns is None:
        raise StoreUnavailable("campaigns are not available on this store yet (SQLite only)")
    return campaigns


class AudienceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    filter: AudienceFilter = Field(default_factory=AudienceFilter)


class CountBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: AudienceFilter = Field(default_factory=AudienceFilter)
    channel: CampaignChannel


class CampaignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    channel: CampaignChannel
    account_id: str
    audience_id: str
    text: str = Field(min_length=1, max_length=20_000)
    subject: str = Field("", max_length=300)


class CampaignPatch(BaseModel):
    """The fields of a draft to change; the others stay."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    channel: CampaignChannel | None = None
    account_id: str | None = None
    audience_id: str | None = None
    text: str | None = Field(None, min_length=1, max_length=20_000)
    subject: str | None = Field(None, max_length=300)


class DraftPreviewBody(CampaignBody):
    """A campaign being written (not saved yet), and whom to preview it for."""

    name: str = Field("draft", min_length=1, max_length=200)
    contact_id: str | None = None


class PreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: str | None = None


class TestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str | None = Field(None, description="default: the caller's own phone or e-mail")


class ScheduleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: datetime


@routes.get("/api/v1/audiences")
async def list_audiences(request: web.Request) -> web.Response:
    audiences = await service(request).store.list_audiences()
    return web.json_response({"items": [a.model_dump(mode="json") for a in audiences]})


@routes.post("/api/v1/audiences")
async def create_audience(request: web.Request) -> web.Response:
    body = await read_body(request, AudienceBody)
    audience = await service(request).create_audience(
        body.name, body.filter, created_by=me(request).id
    )
    return web.json_response(audience.model_dump(mode="json"), status=201)


@routes.post("/api/v1/audiences/count")
async def count_filter(request: web.Request) -> web.Response:
    """The live count of a filter being edited (before it is saved)."""
    body = await read_body(request, CountBody)
    return web.json_response({"count": await service(request).count(body.filter, body.channel)})


@routes.get("/api/v1/audiences/{id}")
async def get_audience(request: web.Request) -> web.Response:
    campaigns = service(request)
    audience = await campaigns.audience(request.match_info["id"])
    counts = {
        channel: await campaigns.count(audience.filter, channel) for channel in ("sms", "email")
    }
    return web.json_response({**audience.model_dump(mode="json"), "counts": counts})


@routes.post("/api/v1/contacts/import")
async def import_contacts(request: web.Request) -> web.Response:
    """A CSV file as the body (header row first; UTF-8, UTF-16 or Windows-1258,
    see `hub.campaigns.csv_text`). Query: `map=Column=field` (repeatable),
    `tag=...` (repeatable), `region=VN`, `delimiter=,` (default: found from the
    header line). Answers the report: the `encoding` and `delimiter` the file
    was read with, created, merged, `blank` (empty rows skipped), and every
    rejected row with its line and reason."""
    campaigns = service(request)
    mapping, tags, delimiter = import_options(request)
    decoded = decode(await request.read())
    importer = ContactImporter(
        campaigns.inbox_store,
        campaigns.clock.now,
        default_region=request.query.get("region") or campaigns.default_region,
    )
    try:
        report = await importer.import_csv(
            io.StringIO(decoded.text, newline=""),
            mapping=mapping,
            extra_tags=tags,
            delimiter=delimiter,
        )
    except csv.Error as exc:
        raise InvalidRequest(f"the body is not CSV this hub can read: {exc}") from exc
    return web.json_response(
        {
            "encoding": decoded.encoding,
            "delimiter": report.delimiter,
            "rows": report.rows,
            "blank": report.blank,
            "created": report.created,
            "merged": report.merged,
            "rejected": [
                {"line": r.line, "reason": r.reason, "row": r.row} for r in report.rejected
            ],
        }
    )


@routes.get("/api/v1/campaign-options")
async def campaign_options(request: web.Request) -> web.Response:
    """What the campaign page offers: the accounts each channel can send through,
    the variables a template may use, and the largest contact file to upload.

    `accounts`: [{"id", "name", "channel": "sms"|"email"}]; `variables`:
    template expressions (`contact.given_name`...); `me`: the caller's own
    address for test sends (`email`, `phone`)."""
    campaigns = service(request)
    accounts = [
        {"id": account_id, "name": channel.account.name or account_id, "channel": kind}
        for account_id, channel in sorted(campaigns.channels.items())
        for kind, families in FAMILIES.items()
        if channel.name in families
    ]
    agent = me(request)
    return web.json_response(
        {
            "accounts": accounts,
            "variables": list(TEMPLATE_VARIABLES),
            "import_max_bytes": request.app.get(IMPORT_MAX_BYTES, 0),
            "recipient_statuses": list(RECIPIENT_STATUSES),
            "me": {"email": agent.email, "phone": agent.phone or ""},
        }
    )


@routes.get("/api/v1/campaigns")
async def list_campaigns(request: web.Request) -> web.Response:
    items = await service(request).store.list_campaigns()
    return web.json_response({"items": [c.model_dump(mode="json") for c in items]})


@routes.post("/api/v1/campaigns")
async def create_campaign(request: web.Request) -> web.Response:
    body = await read_body(request, CampaignBody)
    campaign = await service(request).create_campaign(
        **body.model_dump(), created_by=me(request).id
    )
    return web.json_response(campaign.model_dump(mode="json"), status=201)


async def _with_progress(campaigns: CampaignService, campaign_id: str) -> dict[str, Any]:
    campaign = await campaigns.campaign(campaign_id)
    progress = await campaigns.progress(campaign_id)
    return {**campaign.model_dump(mode="json"), "progress": progress.model_dump()}


@routes.get("/api/v1/campaigns/{id}")
async def get_campaign(request: web.Request) -> web.Response:
    """The campaign and its live figures (poll it, or watch `campaign.*` events)."""
    return web.json_response(await _with_progress(service(request), request.match_info["id"]))


@routes.post("/api/v1/campaigns/preview")
async def preview_draft(request: web.Request) -> web.Response:
    """A campaign being written, as one contact would get it (nothing is saved).

    Rendered by the same sandboxed templates as the sends: the text with the
    SMS opt-out line or the e-mail's unsubscribe footer, the subject, and for
    SMS the encoding and segments it goes out in. A template that cannot
    render is refused with 422 naming the problem."""
    campaigns = service(request)
    body = await read_body(request, DraftPreviewBody)
    now = campaigns.clock.now()
    fields = body.model_dump(exclude={"contact_id"})
    draft = await campaigns.draft(**fields, created_at=now, updated_at=now)
    return web.json_response(await campaigns.preview_of(draft, body.contact_id))


@routes.patch("/api/v1/campaigns/{id}")
async def update_campaign(request: web.Request) -> web.Response:
    """Change a draft (409 once it is scheduled or launched)."""
    campaigns = service(request)
    body = await read_body(request, CampaignPatch)
    campaign = await campaigns.update_draft(
        request.match_info["id"], **body.model_dump(exclude_unset=True, exclude_none=True)
    )
    return web.json_response(campaign.model_dump(mode="json"))


@routes.post("/api/v1/campaigns/{id}/preview")
async def preview(request: web.Request) -> web.Response:
    body = await read_body(request, PreviewBody)
    result = await service(request).preview(request.match_info["id"], body.contact_id)
    return web.json_response(result)


@routes.post("/api/v1/campaigns/{id}/test")
async def test_send(request: web.Request) -> web.Response:
    """Send the message once to the caller (their phone for SMS, e-mail for e-mail)."""
    body = await read_body(request, TestBody)
    campaigns = service(request)
    campaign = await campaigns.campaign(request.match_info["id"])
    agent = me(request)
    to = body.to or (agent.phone if campaign.channel == "sms" else agent.email)
    if not to:
        raise InvalidRequest("to: give the address to test with (your profile has no phone)")
    external_id = await campaigns.test_send(campaign.id, to, name=agent.name)
    return web.json_response({"to": to, "external_id": external_id}, status=202)


@routes.post("/api/v1/campaigns/{id}/schedule")
async def schedule(request: web.Request) -> web.Response:
    body = await read_body(request, ScheduleBody)
    if body.at.tzinfo is None:
        raise InvalidRequest("at: give a time zone (e.g. 2026-03-01T09:00:00+07:00)")
    campaign = await service(request).schedule(request.match_info["id"], body.at)
    return web.json_response(campaign.model_dump(mode="json"))


def _action(name: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        campaigns = service(request)
        await getattr(campaigns, name)(request.match_info["id"])
        return web.json_response(await _with_progress(campaigns, request.match_info["id"]))

    handler.__name__ = name
    return handler


for _name in ("launch", "pause", "resume", "cancel"):
    routes.post(f"/api/v1/campaigns/{{id}}/{_name}")(_action(_name))


@routes.get("/api/v1/campaigns/{id}/recipients")
async def list_recipients(request: web.Request) -> web.StreamResponse:
    """Recipients by contact id, a page at a time; `format=csv` downloads them
    all (with each contact's name) as one CSV file."""
    campaigns = service(request)
    campaign = await campaigns.campaign(request.match_info["id"])
    status = request.query.get("status") or None
    if status is not None and status not in RECIPIENT_STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(RECIPIENT_STATUSES)}")
    if request.query.get("format") == "csv":
        return await _recipients_csv(request, campaigns, campaign.id, status)
    page = await campaigns.store.list_recipients(
        campaign.id,
        status=status,  # type: ignore[arg-type]
        limit=page_limit(request),
        cursor=request.query.get("cursor") or None,
    )
    return web.json_response(
        {"items": [r.model_dump(mode="json") for r in page.items], "next_cursor": page.next_cursor}
    )


CSV_COLUMNS = ("contact_id", "name", "address", "status", "reason", "attempts", "external_id",
               "sent_at", "replied_at", "updated_at")  # fmt: skip
CSV_PAGE = 500


async def _recipients_csv(
    request: web.Request, campaigns: CampaignService, campaign_id: str, status: str | None
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="campaign-{campaign_id}.csv"',
        }
    )
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    cursor: str | None = None
    while True:
        page = await campaigns.store.list_recipients(
            campaign_id,
            status=status,  # type: ignore[arg-type]
            limit=CSV_PAGE,
            cursor=cursor,
        )
        names = await campaigns.store.contacts([r.contact_id for r in page.items])
        for r in page.items:
            contact = names.get(r.contact_id)
            writer.writerow(
                [r.contact_id, cell(contact.name if contact else ""), r.address, r.status,
                 cell(r.reason or ""), r.attempts, r.external_id or "",
                 r.sent_at.isoformat() if r.sent_at else "",
                 r.replied_at.isoformat() if r.replied_at else "", r.updated_at.isoformat()]
            )  # fmt: skip
        await response.write(buffer.getvalue().encode())
        buffer.seek(0)
        buffer.truncate()
        cursor = page.next_cursor
        if not cursor:
            break
    await response.write_eof()
    return response


@routes.get("/api/v1/campaigns/{id}/recipients/{contact_id}")
async def get_recipient(request: web.Request) -> web.Response:
    campaigns = service(request)
    recipient = await campaigns.store.get_recipient(
        request.match_info["id"], request.match_info["contact_id"]
    )
    if recipient is None:
        raise NotFound("no such recipient in this campaign")
    return web.json_response(recipient.model_dump(mode="json"))


# The unsubscribe pages' words, in the languages hub writes campaign footers in
# (`hub.campaigns.messages.UNSUBSCRIBE_FOOTER`).
UNSUBSCRIBE_WORDS = {
    "vi": {
        "invalid_title": "Liên kết không hợp lệ",
        "invalid": "Liên kết hủy đăng ký này không hợp lệ.",
        "title": "Hủy đăng ký",
        "question": "Bạn muốn ngừng nhận các tin này?",
        "button": "Hủy đăng ký",
        "done_title": "Đã hủy đăng ký",
        "done": "Bạn sẽ không nhận các tin này nữa.",
    },
    "en": {
        "invalid_title": "Link not valid",
        "invalid": "This unsubscribe link is not valid.",
        "title": "Unsubscribe",
        "question": "Stop receiving these messages?",
        "button": "Unsubscribe",
        "done_title": "Unsubscribed",
        "done": "You will not receive these messages any more.",
    },
}


async def _unsubscribe_words(campaigns: CampaignService, token: str) -> tuple[str, dict[str, str]]:
    """The page's language — the contact's, as their campaign footer was — and its words."""
    language = await campaigns.link_language(token)
    if language not in UNSUBSCRIBE_WORDS:
        language = "en"
    return language, UNSUBSCRIBE_WORDS[language]


def _invalid_link(language: str, words: dict[str, str]) -> web.Response:
    return public_page(
        words["invalid_title"], f"<p>{escape(words['invalid'])}</p>", lang=language, status=404
    )


@routes.get("/unsubscribe/{token}")
async def unsubscribe_page(request: web.Request) -> web.Response:
    """A page with one button. Mail scanners open links: a GET changes nothing."""
    campaigns = service(request, public=True)
    language, words = await _unsubscribe_words(campaigns, request.match_info["token"])
    if campaigns.links.verify(request.match_info["token"]) is None:
        return _invalid_link(language, words)
    return public_page(
        words["title"],
        f'<form method="post"><p>{escape(words["question"])}</p>'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        f'<button type="submit">{escape(words["button"])}</button></form>',
        lang=language,
    )


@routes.post("/unsubscribe/{token}")
async def unsubscribe(request: web.Request) -> web.Response:
    """RFC 8058 one-click (the mail client POSTs `List-Unsubscribe=One-Click`),
    or the page's button. Idempotent."""
    campaigns = service(request, public=True)
    language, words = await _unsubscribe_words(campaigns, request.match_info["token"])
    if not await campaigns.unsubscribe(request.match_info["token"], how="unsubscribe link"):
        return _invalid_link(language, words)
    return public_page(words["done_title"], f"<p>{escape(words['done'])}</p>", lang=language)
