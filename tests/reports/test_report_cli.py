"""`hub report summary` prints the API's figures, read from the store."""

from __future__ import annotations

import json
from pathlib import Path

from hub.campaigns.sqlite import SqliteCampaignStore
from hub.clock import FrozenClock
from hub.inbox.sqlite import SqliteStore
from hub.reports.service import ReportService
from hub.reports.sqlite import SqliteReportStore
from tests.hub_process import hub_command
from tests.reports.test_report_figures import HCM, NOW, WEEK, build


async def seeded(data: Path) -> ReportService:
    store = SqliteStore(data / "hub.db")
    await store.open()
    reports = SqliteReportStore(store)
    await reports.open()
    campaigns = SqliteCampaignStore(store)
    await campaigns.open()
    await build(store, campaigns)
    # No teams in the CLI's config: wall time for everyone.
    return ReportService(
        reports, store, None, FrozenClock(NOW), schedule_for=lambda a, t: None, timezone=HCM.key
    )


async def test_the_summary_in_the_terminal_is_the_apis(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text("log_format = 'text'\n")
    data = tmp_path / "data"
    service = await seeded(data)
    expected = (await service.summary(WEEK, HCM)).model_dump(mode="json")
    await service.inbox.close()

    week = ("--since", "2026-01-05", "--until", "2026-01-12")
    printed = hub_command("report", "summary", *week, "--json", config=config, data_dir=data)
    assert json.loads(printed.stdout) == expected
    assert expected["opened"] == 4 and expected["business_hours"] is False

    text = hub_command("report", "summary", *week, config=config, data_dir=data).stdout
    assert "Report 2026-01-05 00:00 → 2026-01-12 00:00 (Asia/Ho_Chi_Minh)" in text
    assert "conversations opened      4" in text
    assert "messages in / out         5 / 3" in text
    assert "waiting unassigned now    2 (oldest since 2026-01-10 20:00)" in text
    assert "satisfaction              3.67 / 5 from 3 answers, 67% positive (4-5)" in text

    sms = hub_command(
        "report", "summary", *week, "--channel", "sms", "--agent", "an@shop.vn", "--json",
        config=config, data_dir=data,
    )  # fmt: skip
    assert json.loads(sms.stdout)["opened"] == 2  # An's c1 and c2

    bad = hub_command(
        "report", "summary", "--since", "last week", config=config, data_dir=data, check=False
    )
    assert bad.returncode != 0 and "since" in bad.stderr
