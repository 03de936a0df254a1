"""What the marketer's page needs from the API beyond the campaign API itself:
background contact imports with progress and a report, a preview of a
campaign still being written (with SMS segments), drafts that can change,
the recipients as CSV, and campaign figures on the live stream for marketers
only."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

from hub.campaigns.imports import STALE_SECONDS, ContactImport
from hub.events import Event
from hub.inbox.model import Agent
from hub.web.contact_imports import IMPORTS
from hub.web.realtime import AgentStream
from tests.campaigns.conftest import CampaignHub, contact
from tests.campaigns.test_campaigns import _status, create
from tests.conftest import eventually

CSV_TYPE = {"Content-Type": "text/csv"}
DATA = Path(__file__).parent.parent / "data" / "campaigns"
FILE = (
    "Họ tên,Số điện thoại,E-mail,city,Ghi chú\n"
    "Nguyễn Văn Bình,0901 234 567,,Hà Nội,vip\n"
    "Không Ai,,,Huế,\n"
    "Trần Thị Hoa,,hoa@example.com,Đà Nẵng,\n"
    "Sai Số,12,,HCM,\n"
)


async def imported(app: CampaignHub, import_id: str) -> dict[str, Any]:
    state: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal state
        status, state = await app.api("GET", f"/api/v1/contacts/imports/{import_id}")
        assert status == 200, state
        return bool(state["status"] != "running")

    await eventually(done)
    return state


async def test_a_csv_import_runs_in_the_background_and_reports_each_rejected_row(
    campaign_hub: Any,
) -> None:
    app: CampaignHub = await campaign_hub()
    status, columns = await app.api(
        "POST", "/api/v1/contacts/imports/preview", data=FILE.encode()[:90], headers=CSV_TYPE
    )
    assert status == 200, columns
    assert [(c["name"], c["field"]) for c in columns["columns"]] == [
        ("Họ tên", "name"),
        ("Số điện thoại", "phone"),
        ("E-mail", "email"),
        ("city", ""),
        ("Ghi chú", ""),
    ]
    assert columns["rows"][0][0] == "Nguyễn Văn Bình" and "tags" in columns["fields"]

    query = "map=city%3Dattributes.city&map=Ghi+ch%C3%BA%3Dtags&tag=spring&name=list.csv"
    status, started = await app.api(
        "POST", f"/api/v1/contacts/imports?{query}", data=FILE.encode(), headers=CSV_TYPE
    )
    assert status == 202 and started["status"] == "running", started
    state = await imported(app, started["id"])
    assert state["status"] == "done" and state["file_name"] == "list.csv"
    assert (state["rows"], state["created"], state["merged"]) == (4, 2, 0)
    assert state["bytes_done"] == state["bytes_total"] == len(FILE)
    assert [(r["line"], r["reason"]) for r in state["rejected"]] == [
        (3, "no phone and no e-mail"),
        (5, "phone: '12' is not a possible phone number"),
    ]
    response = await app.hub.api(
        "GET", f"/api/v1/contacts/imports/{started['id']}/rejected", app.marketer
    )
    assert response.status == 200 and response.content_type == "text/csv"
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[0][:2] == ["line", "reason"] and [r[0] for r in rows[1:]] == ["3", "5"]
    status, counted = await app.api(
        "POST",
        "/api/v1/audiences/count",
        json={"filter": {"tags_all": ["spring", "vip"], "attributes": {"city": "Hà Nội"}},
              "channel": "sms"},
    )  # fmt: skip
    assert counted == {"count": 1}


async def test_excel_and_unicode_text_files_import_without_choosing_anything(
    campaign_hub: Any,
) -> None:
    """The page sends no delimiter (its "automatic" choice): Excel's Windows-1258
    ";" file and its UTF-16 tab-separated "Unicode Text" both import, and the
    report says what each was read as."""
    app: CampaignHub = await campaign_hub()
    excel = (DATA / "excel-vietnamese-windows.csv").read_bytes()
    status, preview = await app.api(
        "POST", "/api/v1/contacts/imports/preview?delimiter=", data=excel, headers=CSV_TYPE
    )
    assert status == 200, preview
    assert (preview["encoding"], preview["delimiter"]) == ("Windows-1258", ";")
    assert [c["field"] for c in preview["columns"]][:4] == ["name", "phone", "email", "birthday"]
    assert [row[0] for row in preview["rows"]] == [
        "Nguyễn Văn Bình", "Trần Thị Hoà", "Lê Văn Ẩn", "Phạm Thu Hương",
    ]  # fmt: skip
    status, started = await app.api(
        "POST", "/api/v1/contacts/imports?name=excel.csv", data=excel, headers=CSV_TYPE
    )
    assert status == 202, started
    state = await imported(app, started["id"])
    assert (state["encoding"], state["delimiter"], state["status"]) == ("Windows-1258", ";", "done")
    assert (state["created"], state["blank"], state["rejected_count"]) == (3, 2, 1)
    assert "scientific notation" in state["rejected"][0]["reason"]

    unicode_text = (DATA / "excel-unicode-text.txt").read_bytes()
    status, report = await app.api("POST", "/api/v1/contacts/import", data=unicode_text)
    assert status == 200, report
    assert (report["encoding"], report["delimiter"]) == ("UTF-16", "\t")
    assert (report["created"], report["rejected"]) == (2, [])
    status, found = await app.api("GET", "/api/v1/contacts?q=do%20thi%20mai")
    assert status == 200 and [c["name"] for c in found["items"]] == ["Đỗ Thị Mai"], found


async def test_an_import_refuses_bad_files_clearly_and_agents_entirely(campaign_hub: Any) -> None:
    app: CampaignHub = await campaign_hub(import_max_bytes=2048)
    big = ("name,phone\n" + "Bình,0901234567\n" * 200).encode()
    status, body = await app.api("POST", "/api/v1/contacts/imports", data=big, headers=CSV_TYPE)
    assert status == 413 and "2,048 bytes" in body["error"]["message"]

    async def chunks() -> Any:
        for _ in range(4):
            yield b"name,phone\n" + b"x" * 1000 + b"\n"

    status, body = await app.api("POST", "/api/v1/contacts/imports", data=chunks())
    assert status == 413, body  # no Content-Length: counted while reading
    for data, problem in [
        (b"name,\x81phone\n", "neither UTF-8, UTF-16 nor Windows-1258 text (byte 5)"),
        ("Tên,SĐT\n".encode() + b"\xe2,0901234567\n", "a byte that is not UTF-8"),
        (b"", "empty"),
        (b"name,city\nA,B\n", "phone or email"),
    ]:
        status, body = await app.api("POST", "/api/v1/contacts/imports", data=data)
        assert status == 422 and problem in body["error"]["message"], (data, body)
    status, body = await app.api("POST", "/api/v1/contacts/imports?map=nope%3Dphone", data=b"a\n1")
    assert status == 422 and "no column 'nope'" in body["error"]["message"]
    status, body = await app.api("GET", "/api/v1/contacts/imports/nope")
    assert status == 404
    for method, path in [
        ("POST", "/api/v1/contacts/imports"),
        ("POST", "/api/v1/contacts/imports/preview"),
        ("GET", "/api/v1/contacts/imports/x"),
        ("GET", "/api/v1/campaign-options"),
        ("POST", "/api/v1/campaigns/preview"),
    ]:
        status, body = await app.api(method, path, token=app.agent, data=b"name,phone\n")
        assert status == 403, (path, body)


async def test_a_draft_is_previewed_with_its_sms_size_and_can_change_until_scheduled(
    campaign_hub: Any,
) -> None:
    app: CampaignHub = await campaign_hub()
    binh = contact("Nguyễn Văn Bình", phone="+84901000001", email="binh@example.com")
    await app.store.add_contact(binh)
    status, options = await app.api("GET", "/api/v1/campaign-options")
    assert status == 200
    assert {(a["id"], a["channel"]) for a in options["accounts"]} == {
        ("hotline", "sms"),
        ("news", "email"),
    }
    assert "contact.given_name" in options["variables"] and options["me"]["email"] == "mai@shop.vn"
    status, audience = await app.api("POST", "/api/v1/audiences", json={"name": "VIP"})
    draft = {
        "channel": "sms",
        "account_id": "hotline",
        "audience_id": audience["id"],
        "text": "Chào {{ contact.given_name }}, giảm 20%!",
    }
    status, preview = await app.api("POST", "/api/v1/campaigns/preview", json=draft)
    assert status == 200, preview
    assert preview["text"] == "Chào Bình, giảm 20%!\nTu choi QC: soan TC gui 8xxx"
    assert preview["to"] == "+84901000001" and preview["contact_name"] == "Nguyễn Văn Bình"
    assert preview["sms"]["encoding"] == "UCS-2" and preview["sms"]["segments"] == 1
    status, long = await app.api(
        "POST", "/api/v1/campaigns/preview", json={**draft, "text": "Sale " * 40}
    )
    assert long["sms"] == {**long["sms"], "encoding": "GSM-7", "segments": 2}
    status, body = await app.api(
        "POST", "/api/v1/campaigns/preview", json={**draft, "text": "{{ contact.nmae }}"}
    )
    assert status == 422 and "nmae" in body["error"]["message"]
    email = {"channel": "email", "account_id": "news", "subject": "Cho {{ contact.name }}"}
    status, mail = await app.api("POST", "/api/v1/campaigns/preview", json={**draft, **email})
    assert mail["subject"] == "Cho Nguyễn Văn Bình" and "/unsubscribe/" in mail["text"]
    assert mail["sms"] is None

    campaign = await create(app, **draft)
    status, changed = await app.api(
        "PATCH", f"/api/v1/campaigns/{campaign['id']}", json={"text": "Mới", "name": "Tết 2"}
    )
    assert status == 200 and (changed["text"], changed["name"]) == ("Mới", "Tết 2")
    status, body = await app.api(
        "PATCH", f"/api/v1/campaigns/{campaign['id']}", json={"account_id": "news"}
    )
    assert status == 422 and "email account" in body["error"]["message"]
    await app.api("POST", f"/api/v1/campaigns/{campaign['id']}/launch")
    status, body = await app.api(
        "PATCH", f"/api/v1/campaigns/{campaign['id']}", json={"text": "Muộn"}
    )
    assert status == 409 and "only a draft" in body["error"]["message"]


async def test_recipients_download_as_csv_with_names(campaign_hub: Any) -> None:
    app: CampaignHub = await campaign_hub()
    people = [contact(f"Khách {n}", phone=f"+8490100000{n}") for n in range(3)]
    people.append(contact("Từ chối", phone="+84901000009", opted_out="sms"))
    people.append(contact('=HYPERLINK("http://x.example","bấm")', phone="+84901000008"))
    for person in people:
        await app.store.add_contact(person)
    campaign = await create(app, channel="sms", account_id="hotline", text="Hi")
    await app.api("POST", f"/api/v1/campaigns/{campaign['id']}/launch")
    await eventually(lambda: _status(app, campaign["id"], "completed"))
    response = await app.hub.api(
        "GET", f"/api/v1/campaigns/{campaign['id']}/recipients?format=csv", app.marketer
    )
    assert response.status == 200 and response.content_type == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert sorted((r["name"], r["status"], r["reason"]) for r in rows) == [
        ('\'=HYPERLINK("http://x.example","bấm")', "sent", ""),  # shown, never run
        ("Khách 0", "sent", ""),
        ("Khách 1", "sent", ""),
        ("Khách 2", "sent", ""),
        ("Từ chối", "skipped", "opted_out"),
    ]
    response = await app.hub.api(
        "GET", f"/api/v1/campaigns/{campaign['id']}/recipients?format=csv&status=skipped",
        app.marketer,
    )  # fmt: skip
    assert len(list(csv.DictReader(io.StringIO(await response.text())))) == 1


def test_campaign_figures_stream_to_marketers_and_admins_only() -> None:
    event = Event("campaign.progress", {"campaign_id": "c1", "sent": 3})
    visible = {
        role: AgentStream.visible(None, _agent(role), event, None)  # type: ignore[arg-type]
        for role in ("admin", "marketer", "agent")
    }
    assert visible == {"admin": True, "marketer": True, "agent": False}


def _agent(role: str) -> Agent:
    from datetime import UTC, datetime

    return Agent(name=role, email=f"{role}@shop.vn", role=role, created_at=datetime.now(UTC))  # type: ignore[arg-type]


async def test_a_large_import_reports_its_progress_while_the_hub_keeps_answering(
    campaign_hub: Any,
) -> None:
    app: CampaignHub = await campaign_hub()
    imports = app.hub.app[IMPORTS]
    imports.save_every = 0.01  # every turn of the saver, so that a running state is seen
    rows = "".join(f"Khách {n},09{n:08d}\n" for n in range(3000))
    body = ("name,phone\n" + rows).encode()
    status, started = await app.api("POST", "/api/v1/contacts/imports", data=body)
    assert status == 202, started
    seen: list[dict[str, Any]] = []

    async def midway() -> bool:
        # The hub answers while the rows go in: the import runs beside requests.
        _, state = await app.api("GET", f"/api/v1/contacts/imports/{started['id']}")
        seen.append(state)
        return bool(state["status"] == "running" and 0 < state["rows"] < 3000)

    await eventually(midway, interval=0.005)
    state = await imported(app, started["id"])
    assert state["status"] == "done" and state["rows"] == 3000
    assert state["created"] + state["rejected_count"] == 3000
    assert state["bytes_done"] == state["bytes_total"] == len(body.decode())
    done_rows = [s["rows"] for s in seen]
    assert done_rows == sorted(done_rows)  # progress only moves forward


async def test_an_import_whose_process_died_is_reported_interrupted(campaign_hub: Any) -> None:
    app: CampaignHub = await campaign_hub()
    imports = app.hub.app[IMPORTS]
    state = ContactImport(
        id="dead1",
        status="running",
        started_at=app.clock.now(),
        bytes_total=100,
        bytes_done=40,
        rows=3,
        heartbeat=time.time() - STALE_SECONDS - 1,  # its process stopped saving a while ago
    )
    await imports.redis.set(imports._key(state.id), state.model_dump_json(), ex=60)
    status, shown = await app.api("GET", "/api/v1/contacts/imports/dead1")
    assert status == 200 and shown["status"] == "interrupted" and shown["rows"] == 3
    assert "import the file again" in shown["error"]
