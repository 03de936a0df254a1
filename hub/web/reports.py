"""Report routes, `/api/v1/reports/...`: JSON by default, CSV with `?format=csv`.

Every report takes the same query: `since` and `until` (`7d`, `24h`, a date
or an ISO 8601 time; default the last 7 days), `tz` (days and hours of day),
and slices, each repeatable or comma-separated: `account`, `channel`, `team`,
`agent` (an id or `me`), `label`.

Who sees what (decided here, not by the page):
- admin: every report over every conversation;
- agent: the conversation reports over the conversations they may see (their
  own, their teams', those in no team), the same rule as the inbox; not the
  campaign funnel;
- marketer: the campaign funnel only (conversations are private to support).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from hub.errors import InvalidRequest, StoreUnavailable
from hub.reports.export import rows_csv, summary_csv
from hub.reports.model import (
    AgentRow,
    CampaignRow,
    ChannelRow,
    DayRow,
    HourRow,
    Period,
    ReportFilter,
    ScoreRow,
    Table,
)
from hub.reports.service import ReportService, period
from hub.web.api import me
from hub.web.permissions import conversation_scope, require

REPORTS = web.AppKey("reports", ReportService)
SLICES = {"account": "accounts", "channel": "channels", "team": "teams", "agent": "agents"}
KNOWN = {"since", "until", "tz", "format", "label", *SLICES}
MAX_VALUES = 50

routes = web.RouteTableDef()


def service(request: web.Request) -> ReportService:
    reports = request.app.get(REPORTS)
    if reports is None:
        raise StoreUnavailable("reports are not available on this store")
    return reports


def _values(request: web.Request, name: str) -> tuple[str, ...]:
    values: list[str] = []
    for item in request.query.getall(name, []):
        values.extend(v.strip() for v in item.split(",") if v.strip())
    if len(values) > MAX_VALUES:
        raise InvalidRequest(f"{name}: at most {MAX_VALUES} values")
    if any(len(v) > 200 for v in values):
        raise InvalidRequest(f"{name}: a value is longer than 200 characters")
    return tuple(dict.fromkeys(values))


def report_filter(request: web.Request, *, conversations: bool = True) -> ReportFilter:
    """The request's period and slices, within what the caller may see.
    `conversations`: a report over conversations (an agent sees theirs only)."""
    unknown = sorted(set(request.query) - KNOWN)
    if unknown:
        raise InvalidRequest(f"unknown parameter {unknown[0]!r}; reports take {sorted(KNOWN)}")
    if request.query.get("format", "json") not in ("json", "csv"):
        raise InvalidRequest("format: json or csv")
    agent = me(request)
    scope = conversation_scope(agent) if conversations else None
    reports = service(request)
    zone = reports.zone(request.query.get("tz"))
    since, until = period(
        request.query.get("since"), request.query.get("until"), reports.clock.now(), zone
    )
    slices: dict[str, tuple[str, ...]] = {
        field: _values(request, name) for name, field in SLICES.items()
    }
    slices["agents"] = tuple(agent.id if a == "me" else a for a in slices["agents"])
    return ReportFilter(
        since=since, until=until, labels=_values(request, "label"), scope=scope, **slices
    )


def answer(
    request: web.Request,
    name: str,
    report: ReportFilter,
    body: BaseModel,
    csv: Callable[[], str],
) -> web.Response:
    if request.query.get("format") == "csv":
        zone = service(request).zone(request.query.get("tz"))
        first = report.since.astimezone(zone).date().isoformat()
        last = report.until.astimezone(zone).date().isoformat()
        return web.Response(
            text=csv(),
            content_type="text/csv",
            charset="utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="hub-{name}-{first}-{last}.csv"'
            },
        )
    return web.json_response(body.model_dump(mode="json"))


async def table(
    request: web.Request,
    name: str,
    rows: Callable[[ReportService, ReportFilter, Any], Awaitable[list[Any]]],
    row_type: type[BaseModel],
    *,
    conversations: bool = True,
) -> web.Response:
    report = report_filter(request, conversations=conversations)
    reports = service(request)
    zone = reports.zone(request.query.get("tz"))
    found = await rows(reports, report, zone)
    body = Table[row_type](  # type: ignore[valid-type]
        period=Period(since=report.since, until=report.until, timezone=zone.key),
        rows=found,
    )
    return answer(request, name, report, body, lambda: rows_csv(found, list(row_type.model_fields)))


@routes.get("/api/v1/reports/summary")
async def summary(request: web.Request) -> web.Response:
    """The period's figures: conversations opened and resolved, first response and
    resolution times (median, 90th percentile; business hours where the team has
    them), messages in and out, waiting unassigned now, SLA breaches, satisfaction."""
    report = report_filter(request)
    reports = service(request)
    figures = await reports.summary(report, reports.zone(request.query.get("tz")))
    return answer(request, "summary", report, figures, lambda: summary_csv(figures))


@routes.get("/api/v1/reports/days")
async def days(request: web.Request) -> web.Response:
    """Day by day (on the report's wall clock): opened, resolved, SLA breaches,
    messages in and out."""
    return await table(request, "days", lambda s, r, z: s.days(r, z), DayRow)


@routes.get("/api/v1/reports/channels")
async def channels(request: web.Request) -> web.Response:
    """Per channel: conversations opened and resolved, messages in and out."""
    return await table(request, "channels", lambda s, r, z: s.channels(r, z), ChannelRow)


@routes.get("/api/v1/reports/hours")
async def hours(request: web.Request) -> web.Response:
    """Messages in and out by hour of day (0-23, on the report's wall clock)."""
    return await table(request, "hours", lambda s, r, z: s.hours(r, z), HourRow)


@routes.get("/api/v1/reports/agents")
async def agents(request: web.Request) -> web.Response:
    """Per agent: conversations opened (assigned to them) and resolved, open now,
    messages sent, their first response and resolution times, satisfaction."""
    return await table(request, "agents", lambda s, r, z: s.agents(r), AgentRow)


@routes.get("/api/v1/reports/satisfaction")
async def satisfaction(request: web.Request) -> web.Response:
    """Survey answers given in the period, per score (1-5)."""
    return await table(request, "satisfaction", lambda s, r, z: s.scores(r), ScoreRow)


@routes.get("/api/v1/reports/campaigns")
async def campaigns(request: web.Request) -> web.Response:
    """The funnel of each campaign that ran in the period: audience, sent,
    delivered, failed, opted out, replied. Admins and marketers."""
    require(me(request), "admin", "marketer")
    return await table(
        request,
        "campaigns",
        lambda s, r, z: s.campaign_funnel(r),
        CampaignRow,
        conversations=False,
    )
