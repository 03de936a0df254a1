"""The reports API: the same figures as the service, as JSON or CSV, within
what each role may see; bad input answers 422 in the one error shape."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.inbox.model import Contact, Conversation, Message, Sender
from hub.worker import cron_jobs
from tests.web.conftest import add_person, call

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # Monday 09:00 in Ho Chi Minh City
WEEK = "since=2026-01-05&until=2026-01-12"


async def history(hub: Any, t0: datetime = T0) -> dict[str, str]:
    """Support (shop) answered one in 10 minutes and resolved it in an hour;
    sales (crm) answered one in 30 minutes; one in no team (misc) waits."""
    store = hub.runtime.store
    T0 = t0
    contact = Contact(name="Khách", created_at=T0, updated_at=T0)
    await store.add_contact(contact)
    ids: dict[str, str] = {}
    for name, account, team, assignee, first, resolved in (
        ("support", "shop", "support", hub.lan.agent.id, 10, 60),
        ("sales", "crm", "sales", hub.minh.agent.id, 30, None),
        ("misc", "misc", None, None, None, None),
    ):
        conversation = Conversation(
            contact_id=contact.id,
            account_id=account,
            channel="api",
            contact_address="cust",
            team_id=team,
            assignee_id=assignee,
            status="resolved" if resolved else "open",
            first_response_at=T0 + timedelta(minutes=first) if first else None,
            resolved_at=T0 + timedelta(minutes=resolved) if resolved else None,
            satisfaction=5 if resolved else None,
            satisfaction_at=T0 + timedelta(minutes=90) if resolved else None,
            last_activity_at=T0,
            created_at=T0,
            updated_at=T0,
        )
        await store.add_conversation(conversation)
        ids[name] = conversation.id
        await store.add_message(
            Message(
                conversation_id=conversation.id, account_id=account, channel="api",
                direction="inbound", sender=Sender(kind="contact", id=contact.id),
                created_at=T0, updated_at=T0,
            )
        )  # fmt: skip
        if first:
            at = T0 + timedelta(minutes=first)
            await store.add_message(
                Message(
                    conversation_id=conversation.id, account_id=account, channel="api",
                    direction="outbound", sender=Sender(kind="agent", id=assignee),
                    created_at=at, updated_at=at,
                )
            )  # fmt: skip
    return ids


async def test_an_admin_sees_every_figure_of_the_period(team_hub):
    hub = team_hub
    await history(hub)
    summary = await call(hub, "GET", f"/api/v1/reports/summary?{WEEK}", hub.an)
    assert summary["period"] == {
        "since": "2026-01-04T17:00:00Z",
        "until": "2026-01-11T17:00:00Z",
        "timezone": "Asia/Ho_Chi_Minh",
    }
    assert (summary["opened"], summary["resolved"]) == (3, 1)
    assert summary["first_response"] == {
        "count": 2,
        "median_seconds": 1200.0,
        "p90_seconds": 1680.0,
    }
    assert summary["resolution"] == {"count": 1, "median_seconds": 3600.0, "p90_seconds": 3600.0}
    assert (summary["messages_in"], summary["messages_out"]) == (3, 2)
    assert summary["waiting_unassigned"] == 1
    assert summary["satisfaction"] == {"answers": 1, "average": 5.0, "positive_share": 1.0}
    days = await call(hub, "GET", f"/api/v1/reports/days?{WEEK}", hub.an)
    assert [d["opened"] for d in days["rows"]] == [3, 0, 0, 0, 0, 0, 0]
    hours = await call(hub, "GET", f"/api/v1/reports/hours?{WEEK}&tz=UTC", hub.an)
    assert hours["period"]["timezone"] == "UTC"
    assert [(h["hour"], h["messages_in"]) for h in hours["rows"] if h["messages_in"]] == [(2, 3)]
    agents = await call(hub, "GET", f"/api/v1/reports/agents?{WEEK}", hub.an)
    by_name = {a["name"]: a for a in agents["rows"]}
    assert set(by_name) == {"Lan", "Minh", "An"}  # every active staff member, not marketers
    assert (by_name["Lan"]["opened"], by_name["Lan"]["messages_out"]) == (1, 1)
    one = await call(hub, "GET", f"/api/v1/reports/summary?{WEEK}&account=crm", hub.an)
    assert (one["opened"], one["first_response"]["median_seconds"]) == (1, 1800.0)


async def test_a_period_is_widened_to_whole_quarters_of_an_hour(team_hub):
    hub = team_hub
    query = "since=2026-01-05T09:07:00%2B07:00&until=2026-01-05T09:08:00%2B07:00"
    summary = await call(hub, "GET", f"/api/v1/reports/summary?{query}", hub.an)
    assert summary["period"]["since"] == "2026-01-05T02:00:00Z"
    assert summary["period"]["until"] == "2026-01-05T02:15:00Z"


async def test_an_agent_sees_the_conversations_they_may_see(team_hub):
    hub = team_hub
    await history(hub)
    lan = await call(hub, "GET", f"/api/v1/reports/summary?{WEEK}", hub.lan)
    assert (lan["opened"], lan["waiting_unassigned"]) == (2, 1)  # support's and misc's
    minh = await call(hub, "GET", f"/api/v1/reports/summary?{WEEK}&team=support", hub.minh)
    assert minh["opened"] == 0  # asking for another team's shows nothing of it
    mine = await call(hub, "GET", f"/api/v1/reports/summary?{WEEK}&agent=me", hub.minh)
    assert (mine["opened"], mine["messages_out"]) == (1, 1)
    agents = await call(hub, "GET", f"/api/v1/reports/agents?{WEEK}", hub.lan)
    assert [a["name"] for a in agents["rows"]] == ["Lan"]


async def test_marketers_see_campaign_reports_only_and_agents_no_campaigns(team_hub):
    hub = team_hub
    for path in ("summary", "days", "channels", "hours", "agents", "satisfaction"):
        response = await hub.api("GET", f"/api/v1/reports/{path}", hub.mai.token)
        assert response.status == 403, path
        assert (await response.json())["error"]["code"] == "forbidden"
    campaigns = await call(hub, "GET", "/api/v1/reports/campaigns", hub.mai)
    assert campaigns["rows"] == []
    await call(hub, "GET", "/api/v1/reports/campaigns", hub.lan, status=403)
    await call(hub, "GET", "/api/v1/reports/campaigns", hub.an)


async def test_every_table_downloads_as_csv(team_hub):
    hub = team_hub
    await history(hub)
    # A name a spreadsheet would run as a formula is written as text.
    await add_person(hub, "=cmd@example.vn", role="agent")
    response = await hub.api("GET", f"/api/v1/reports/agents?{WEEK}&format=csv", hub.an.token)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="hub-agents-2026-01-05-2026-01-12.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert "first_response_median_seconds" in rows[0]
    lan = next(r for r in rows if r["name"] == "Lan")
    assert (lan["opened"], lan["resolved"], lan["first_response_median_seconds"]) == (
        "1", "1", "600.0",
    )  # fmt: skip
    assert "'=Cmd" in {r["name"] for r in rows}
    summary = await hub.api("GET", f"/api/v1/reports/summary?{WEEK}&format=csv", hub.an.token)
    lines = dict(csv.reader(io.StringIO(await summary.text())))
    assert lines["opened"] == "3" and lines["first_response_median_seconds"] == "1200.0"
    for path in ("days", "channels", "hours", "satisfaction", "campaigns"):
        response = await hub.api("GET", f"/api/v1/reports/{path}?{WEEK}&format=csv", hub.an.token)
        assert response.status == 200 and response.content_type == "text/csv", path
        header = (await response.text()).splitlines()[0]
        assert header, path
    empty = await hub.api("GET", "/api/v1/reports/campaigns?format=csv", hub.an.token)
    assert (await empty.text()).startswith("campaign_id,name,channel")


async def test_bad_report_requests_answer_422_naming_the_problem(team_hub):
    hub = team_hub
    for query, words in (
        ("since=yesterday", "since"),
        ("since=2026-01-10&until=2026-01-05", "before until"),
        ("since=2026-01-10T00:00:00", "timezone"),
        ("since=2020-01-01&until=2026-01-01", "400 days"),
        ("tz=Mars/Olympus", "tz"),
        ("format=xml", "format"),
        ("sinse=7d", "sinse"),
        ("since=0001-01-01T00:00:00%2B07:00", "since"),
        ("until=9999-12-31T23:00:00-05:00", "until"),
        ("since=9999d", "400 days"),
        ("label=" + ",".join(str(n) for n in range(60)), "at most"),
    ):
        response = await hub.api("GET", f"/api/v1/reports/summary?{query}", hub.an.token)
        assert response.status == 422, query
        error = (await response.json())["error"]
        assert error["code"] == "invalid_request" and words in error["message"], (query, error)


async def test_the_workers_minute_job_keeps_the_message_rollup_up_to_date(team_hub):
    hub = team_hub
    [job] = [job for job in cron_jobs(10.0) if job.name == "reports_catch_up"]
    assert job.run_at_startup
    await history(hub)
    await job.coroutine({"runtime": hub.runtime})
    assert await hub.runtime.reports.store.catch_up() == 0  # nothing left for a report
    rolled = await hub.runtime.store._fetch_one(
        "SELECT SUM(messages) AS n FROM report_message_quarters", ()
    )
    assert rolled["n"] == 5  # three in, two out
