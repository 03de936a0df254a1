"""CSV import: phones to E.164, duplicates merged by identity, every rejected
row reported with its line and reason (and nothing of it written)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.campaigns.importer import ContactImporter, column_map
from hub.errors import InvalidRequest
from hub.inbox.model import Consent, Contact, Identity
from hub.inbox.sqlite import SqliteStore
from tests.hub_process import hub_command

DATA = Path(__file__).parent.parent / "data" / "campaigns" / "contacts.csv"
NOW = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)


async def test_rows_are_normalised_merged_and_every_rejection_named(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    try:
        existing = Contact(
            name="Old",
            identities=[Identity(channel="email", address="old@example.com")],
            tags=["loyal"],
            created_at=NOW,
            updated_at=NOW,
        )
        await store.add_contact(existing)
        importer = ContactImporter(store, lambda: NOW, default_region="VN")
        seen: list[int] = []
        with DATA.open(encoding="utf-8-sig", newline="") as handle:
            report = await importer.import_csv(
                handle,
                mapping={"City": "attributes.city"},
                extra_tags=["spring-import"],
                progress=seen.append,
            )
        assert (report.created, report.merged) == (2, 2) and sum(seen) == report.rows == 9
        assert [(r.line, r.reason.split(":")[0]) for r in report.rejected] == [
            (5, "no phone and no e-mail"),
            (6, "phone"),
            (7, "email"),
            (8, "timezone"),
            (9, "more cells than the header has columns"),
        ]
        binh_id = (
            await store.contacts_by_identity([Identity(channel="phone", address="+84901234567")])
        )[Identity(channel="phone", address="+84901234567")]
        binh = await store.get_contact(binh_id)
        assert binh is not None and binh.name == "Nguyễn Văn Bình"
        assert [i.address for i in binh.identities] == ["+84901234567", "binh@example.com"]
        assert binh.tags == ["vip", "hanoi", "spring-import", "new"]
        assert binh.attributes == {"city": "Hà Nội"}
        old = await store.get_contact(existing.id)
        assert old is not None and old.tags == ["loyal", "imported", "spring-import"]
        assert old.name == "Old"  # a merge fills in, never overwrites
        taken = await store.contacts_by_identity(
            [Identity(channel="phone", address="+84903111222")]
        )
        assert taken == {}  # the rejected row wrote nothing
    finally:
        await store.close()


def test_a_header_without_phone_or_email_is_refused_up_front() -> None:
    with pytest.raises(InvalidRequest, match="phone or email"):
        column_map(["name", "city"], None)
    with pytest.raises(InvalidRequest, match="no column 'Mobile'"):
        column_map(["name", "phone"], {"Mobile": "phone"})
    with pytest.raises(InvalidRequest, match="fields are"):
        column_map(["name", "phone"], {"name": "nickname"})


def test_hub_import_reports_and_writes_the_rejected_rows(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('log_format = "text"\n', encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    result = hub_command(
        "import", str(DATA), "--map", "City=attributes.city", "--rejects", str(rejects),
        config=config, data_dir=tmp_path / "data", check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "9 rows: 3 created, 1 merged, 5 rejected" in result.stdout
    assert "line 6: phone: '12345' is not a" in result.stderr
    lines = rejects.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("line,reason,Họ tên") and len(lines) == 6


async def test_consent_columns_record_yes_and_no_and_an_opt_out_on_file_stands(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    try:
        said_no = Contact(
            name="Đã từ chối",
            identities=[Identity(channel="phone", address="+84901000001")],
            consent={"sms": Consent(status="opted_out", at=NOW, how="STOP")},
            created_at=NOW,
            updated_at=NOW,
        )
        await store.add_contact(said_no)
        importer = ContactImporter(store, lambda: NOW, default_region="VN")
        text = (
            "name,phone,email,sms ok,mail ok\n"
            "Đã từ chối,0901000001,,có,\n"  # a yes in the file does not undo a STOP
            "Mới,0901000002,moi@example.com,yes,không\n"
            "Sai,0901000003,,maybe,\n"
        )
        report = await importer.import_csv(
            io.StringIO(text), mapping={"sms ok": "consent.sms", "mail ok": "consent.email"}
        )
        assert (report.created, report.merged) == (1, 1)
        assert [(r.line, r.reason) for r in report.rejected] == [
            (4, "consent.sms: 'maybe' is not yes or no")
        ]
        kept = await store.get_contact(said_no.id)
        assert kept is not None and kept.consent["sms"].how == "STOP"
        owners = await store.contacts_by_identity(
            [Identity(channel="phone", address="+84901000002")]
        )
        new = await store.get_contact(next(iter(owners.values())))
        assert new is not None
        assert {k: c.status for k, c in new.consent.items()} == {
            "sms": "opted_in",
            "email": "opted_out",
        }
        assert new.consent["sms"].how == "contact import"
    finally:
        await store.close()
