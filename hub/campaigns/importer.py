"""Contacts from a CSV file into the contact book the support team uses.

The text comes decoded by `hub.campaigns.csv_text` (whatever the spreadsheet
saved it as); the separator is found from the header line unless given.
Columns map to fields (`name`, `phone`, `email`, `language`, `timezone`,
`birthday`, `tags`, `consent.sms`, `consent.email`, `attributes.<key>`); by
default a column maps to the field of its own name or a common alias ("Họ và
tên", "SĐT", "Điện thoại", "Di động", "E-mail:", "Ngày sinh"... in any case,
with or without diacritics). Phones become E.164 (`default_region` for numbers
without a country code; numbers Excel stored as numbers are taken back when
whole, refused in scientific notation). Birthdays are day first, as in Vietnam:
03/04/1990 is 3 April 1990 (or ISO 1990-04-03; a five-digit number is an Excel
serial date). Text is stored in Unicode NFC. Rows without a filled cell (Excel
writes them as lines of separators) are skipped and counted, not rejected.

A consent column says yes or no (yes/no, true/false, 1/0, opted_in/opted_out,
có/không; empty: not known). An opt-out on file always stands: an import never
turns a contact who said no back into a yes; a "no" in the file is recorded.

A row whose phone or e-mail is already someone's is merged into that contact
(tags added, attributes updated, empty fields filled; nothing overwritten that
the contact already has). Every row that cannot be used is reported with its
line number and why — nothing is dropped silently — and nothing of it is
written.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from hub.campaigns.csv_text import delimiter_of
from hub.errors import IdentityTaken, InvalidRequest
from hub.inbox.addresses import normalise_email, normalise_phone
from hub.inbox.model import Consent, ConsentStatus, Contact, Identity
from hub.inbox.search import fold
from hub.inbox.store import Store
from hub.spreadsheet import cell

FIELDS = (
    "name",
    "phone",
    "email",
    "language",
    "timezone",
    "birthday",
    "tags",
    "consent.sms",
    "consent.email",
)
CONSENT_VALUES: dict[str, ConsentStatus] = {
    **dict.fromkeys(("yes", "y", "true", "1", "opted_in", "opt-in", "có", "co"), "opted_in"),
    **dict.fromkeys(
        ("no", "n", "false", "0", "opted_out", "opt-out", "không", "khong"), "opted_out"
    ),
}
# Column names as people type them, lower-cased and without diacritics (see
# `default_field`): "Họ và tên", "SĐT", "Số ĐT", "Điện thoại", "E-mail:"...
ALIASES = {
    **dict.fromkeys(
        (
            "full name",
            "fullname",
            "customer",
            "customer name",
            "contact name",
            "ho ten",
            "ho va ten",
            "ten",
            "ten khach hang",
            "ho ten khach hang",
            "ho va ten khach hang",
            "khach hang",
        ),
        "name",
    ),
    **dict.fromkeys(
        (
            "mobile",
            "phone number",
            "tel",
            "telephone",
            "so dien thoai",
            "sdt",
            "so dt",
            "dt",
            "dien thoai",
            "dien thoai di dong",
            "di dong",
            "so di dong",
            "dtdd",
        ),
        "phone",
    ),
    **dict.fromkeys(("e-mail", "e mail", "mail", "dia chi email", "thu dien tu"), "email"),
    **dict.fromkeys(("lang", "ngon ngu"), "language"),
    **dict.fromkeys(("tz", "mui gio"), "timezone"),
    **dict.fromkeys(
        ("date of birth", "dob", "ngay sinh", "sinh nhat", "ngay thang nam sinh"), "birthday"
    ),
    **dict.fromkeys(("labels", "nhan"), "tags"),
}
TAG_SEPARATORS = re.compile(r"[;|,]")
LANGUAGE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z]{2,4})?$")
# A phone column that Excel took for numbers: "84901234567.0" (or ",0" with
# Vietnamese regional settings) is whole; "9.01234567E+08" has lost digits.
WHOLE_NUMBER = re.compile(r"^(\d+)[.,]0+$")
SCIENTIFIC = re.compile(r"^\d+([.,]\d+)?[eE][+-]?\d+$")
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d")
# A birthday column that Excel took for numbers holds day counts from its 1900
# date system (day 1 is 1900-01-01, and it counts a 29 February 1900 that never
# was: so from day 61 on, day n is 1899-12-30 + n). Five digits are 1927-05-18
# (10000) to 2173 (99999): a four-digit number is a year, not a date.
EXCEL_SERIAL = re.compile(r"^\d{5}$")
EXCEL_EPOCH = date(1899, 12, 30)
MAX_ROWS_PER_TRANSACTION = 500


@dataclass(frozen=True)
class Rejected:
    line: int  # in the file, counting the header as line 1
    reason: str
    row: dict[str, str]


@dataclass
class ImportReport:
    created: int = 0
    merged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    blank: int = 0  # rows without a single filled cell (Excel's empty lines), skipped
    delimiter: str = ","  # the cell separator the file was read with

    @property
    def rows(self) -> int:
        return self.created + self.merged + len(self.rejected)


@dataclass(frozen=True)
class ContactRow:
    """One usable row, as contact fields."""

    identities: list[Identity]
    name: str = ""
    language: str | None = None
    timezone: str | None = None
    birthday: date | None = None
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    consent: dict[str, ConsentStatus] = field(default_factory=dict)  # "sms" / "email"


def column_map(header: Iterable[str], mapping: Mapping[str, str] | None) -> dict[str, str]:
    """Column → field. Explicit `mapping` (column → field, or "" to ignore a
    column) wins; other columns map by name or alias; unknown ones are ignored.
    Raises InvalidRequest naming a mapping to an unknown field or column."""
    columns = list(header)
    result: dict[str, str] = {}
    explicit = dict(mapping or {})
    for column in explicit:
        if column not in columns:
            raise InvalidRequest(f"the file has no column {column!r} (it has {', '.join(columns)})")
    for column in columns:
        target = explicit.get(column)
        if target is None:
            target = default_field(column)
        if not target:
            continue
        if target not in FIELDS and not re.match(r"^attributes\.[A-Za-z0-9_]{1,64}$", target):
            raise InvalidRequest(
                f"column {column!r} maps to {target!r}: fields are {', '.join(FIELDS)}"
                " or attributes.<name>"
            )
        result[column] = target
    if not {"phone", "email"} & set(result.values()):
        raise InvalidRequest("no column maps to phone or email: contacts need one of them")
    return result


def default_field(column: str) -> str:
    """The field a column maps to when nobody says otherwise: its own name or a
    common alias ("" for a column that is ignored), whatever the case, spacing,
    diacritics, byte-order mark or trailing ":" ("Số ĐT:" is a phone column)."""
    key = " ".join(unicodedata.normalize("NFC", column).replace("\ufeff", " ").split())
    key = key.rstrip(":").strip().lower()
    if key in FIELDS or key.startswith("attributes."):
        return key
    return ALIASES.get(" ".join(fold(key).split()), "")


def read_row(row: Mapping[str, str], columns: Mapping[str, str], region: str) -> ContactRow:
    """A CSV row as contact fields. Raises InvalidRequest naming what is wrong."""
    values: dict[str, str] = {}
    attributes: dict[str, str] = {}
    for column, target in columns.items():
        text = unicodedata.normalize("NFC", (row.get(column) or "").strip())
        if not text:
            continue
        if target.startswith("attributes."):
            attributes[target.split(".", 1)[1]] = text
        else:
            values[target] = text
    identities = []
    if "phone" in values:
        identities.append(Identity(channel="phone", address=_phone(values["phone"], region)))
    if "email" in values:
        try:
            identities.append(Identity(channel="email", address=normalise_email(values["email"])))
        except InvalidRequest as exc:
            raise InvalidRequest(f"email: {exc.message}") from exc
    if not identities:
        raise InvalidRequest("no phone and no e-mail")
    timezone = values.get("timezone")
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidRequest(f"timezone: {timezone!r} is not a time zone name") from exc
    language = values.get("language")
    if language and not LANGUAGE.match(language):
        raise InvalidRequest(f"language: {language!r} is not a language code such as vi or en")
    birthday = None
    if values.get("birthday"):
        birthday = _date(values["birthday"])
    tags = [t.strip() for t in TAG_SEPARATORS.split(values.get("tags", "")) if t.strip()]
    consent: dict[str, ConsentStatus] = {}
    for key in ("sms", "email"):
        said = values.get(f"consent.{key}")
        if said:
            status = CONSENT_VALUES.get(said.strip().lower())
            if status is None:
                raise InvalidRequest(f"consent.{key}: {said!r} is not yes or no")
            consent[key] = status
    return ContactRow(
        identities=identities,
        name=values.get("name", ""),
        language=language,
        timezone=timezone,
        birthday=birthday,
        tags=tags,
        attributes=attributes,
        consent=consent,
    )


def _phone(raw: str, region: str) -> str:
    """E.164, and a number that exists (a campaign list wants real numbers, not
    merely possible ones). A number Excel stored as a number is taken back when
    it is whole ("901234567": the leading 0 dropped; "84901234567.0"), refused
    when in scientific notation (its digits are lost, never guessed)."""
    if SCIENTIFIC.match(raw):
        raise InvalidRequest(
            f"phone: {raw!r} is in scientific notation, which has lost the number's digits"
            " (the spreadsheet treated the column as numbers): format the column as Text,"
            " type the numbers again and export"
        )
    whole = WHOLE_NUMBER.match(raw)
    text = whole[1] if whole else raw
    try:
        e164 = normalise_phone(text, region)
    except InvalidRequest as exc:
        raise InvalidRequest(f"phone: {exc.message}") from exc
    if not phonenumbers.is_valid_number(phonenumbers.parse(e164)):
        raise InvalidRequest(f"phone: {raw!r} is not a valid number (region {region})")
    return e164


def _date(text: str) -> date:
    """A birthday as Vietnamese write it: day first, so 03/04/1990 is 3 April
    1990 (also 3/4/1990, 03-04-1990, 03.04.1990), or ISO 1990-04-03; a
    five-digit number is an Excel serial date (1900 date system), converted."""
    if EXCEL_SERIAL.match(text):
        return EXCEL_EPOCH + timedelta(days=int(text))
    for pattern in DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise InvalidRequest(f"birthday: {text!r} is not a date (DD/MM/YYYY, day first, or YYYY-MM-DD)")


class ContactImporter:
    def __init__(self, store: Store, clock: Callable[[], datetime], *, default_region: str) -> None:
        self.store = store
        self.now = clock
        self.region = default_region

    async def import_csv(
        self,
        text: Iterable[str],
        *,
        mapping: Mapping[str, str] | None = None,
        extra_tags: Iterable[str] = (),
        delimiter: str | None = None,
        progress: Callable[[int], None] | None = None,
        report: ImportReport | None = None,
        rows_per_transaction: int = MAX_ROWS_PER_TRANSACTION,
    ) -> ImportReport:
        """Import every row of `text` (lines of a CSV file with a header row).
        Raises InvalidRequest when the header cannot be used at all. `report`, if
        given, is filled as the rows go (for a live progress display) and returned.
        Without a `delimiter`, the header line says which of , ; tab | it is.

        The rows of one transaction are written without a turn of the event loop
        (the SQLite store runs statements on the loop's thread): a hub serving
        requests meanwhile imports in small transactions."""
        lines = iter(text)
        first = next(lines, None)
        if first is None:
            raise InvalidRequest("the file is empty: it needs a header row")
        report = report if report is not None else ImportReport()
        report.delimiter = delimiter or delimiter_of(first)
        reader = csv.DictReader(itertools.chain([first], lines), delimiter=report.delimiter)
        if reader.fieldnames is None:
            raise InvalidRequest("the file is empty: it needs a header row")
        columns = column_map(reader.fieldnames, mapping)
        tags = [t for t in extra_tags if t]
        for chunk in _chunks(_numbered(reader), rows_per_transaction):
            async with self.store.transaction():
                for line, row in chunk:
                    await self._one(line, row, columns, tags, report)
            if progress is not None:
                progress(len(chunk))
        return report

    async def _one(
        self,
        line: int,
        row: dict[str, Any],
        columns: Mapping[str, str],
        tags: list[str],
        report: ImportReport,
    ) -> None:
        clean = {k: v for k, v in row.items() if isinstance(k, str) and isinstance(v, str)}
        surplus = next((v for k, v in row.items() if k is None), None) or ()  # DictReader's
        extra = [cell for cell in surplus if cell.strip()]
        if not extra and not any(v.strip() for v in clean.values()):
            report.blank += 1  # an empty line, or one of only separators (Excel's)
            return
        if extra:  # more filled cells than the header has columns
            report.rejected.append(Rejected(line, "more cells than the header has columns", clean))
            return
        try:
            fields = read_row(clean, columns, self.region)
            async with self.store.transaction():
                merged = await self._write(fields, tags)
        except (InvalidRequest, IdentityTaken) as exc:
            report.rejected.append(Rejected(line, exc.message, clean))
            return
        if merged:
            report.merged += 1
        else:
            report.created += 1

    async def _write(self, row: ContactRow, tags: list[str]) -> bool:
        """Create the contact, or merge into the one owning its identities.
        Returns True when merged."""
        owners = await self.store.contacts_by_identity(row.identities)
        all_tags = list(dict.fromkeys([*row.tags, *tags]))
        now = self.now()
        if not owners:
            await self.store.add_contact(
                Contact(
                    name=row.name,
                    identities=row.identities,
                    language=row.language,
                    timezone=row.timezone,
                    birthday=row.birthday,
                    tags=all_tags,
                    attributes=dict(row.attributes),
                    consent=merge_consent({}, row.consent, now),
                    created_at=now,
                    updated_at=now,
                )
            )
            return False
        if len(set(owners.values())) > 1:
            described = ", ".join(f"{i.channel} {i.address}" for i in owners)
            raise InvalidRequest(f"{described} belong to different contacts; merge them first")
        contact_id = next(iter(owners.values()))
        contact = await self.store.get_contact(contact_id)
        if contact is None:
            raise InvalidRequest("the matching contact was deleted meanwhile")
        for identity in row.identities:
            if identity not in owners:
                await self.store.link_identity(contact_id, identity)
        changes: dict[str, Any] = {
            "tags": list(dict.fromkeys([*contact.tags, *all_tags])),
            "attributes": {**contact.attributes, **row.attributes},
            "updated_at": now,
        }
        consent = merge_consent(contact.consent, row.consent, now)
        if consent != contact.consent:
            changes["consent"] = consent
        for name in ("name", "language", "timezone", "birthday"):
            if not getattr(contact, name) and getattr(row, name):
                changes[name] = getattr(row, name)
        await self.store.update_contact(contact_id, **changes)
        return True


def merge_consent(
    current: Mapping[str, Consent], said: Mapping[str, ConsentStatus], now: datetime
) -> dict[str, Consent]:
    """The contact's consent after an import said `said`: an opt-out on file
    stands; anything else takes the file's answer (unchanged answers keep
    their original date)."""
    merged = dict(current)
    for key, status in said.items():
        before = merged.get(key)
        if before is not None and (before.status == "opted_out" or before.status == status):
            continue
        merged[key] = Consent(status=status, at=now, how="contact import")
    return merged


def _numbered(reader: csv.DictReader[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for row in reader:
        yield reader.line_num, row


def _chunks(
    rows: Iterator[tuple[int, dict[str, Any]]], size: int
) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    chunk: list[tuple[int, dict[str, Any]]] = []
    for item in rows:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def rejects_csv(report: ImportReport) -> str:
    """The rejected rows as CSV (line, reason, then the row's own cells), the
    cells as text a spreadsheet never runs (`hub.spreadsheet`): the file came
    from elsewhere, and the marketer opens this one in Excel to fix it."""
    buffer = io.StringIO()
    columns: list[str] = []
    for rejected in report.rejected:
        for key in rejected.row:
            if key not in columns:
                columns.append(key)
    writer = csv.writer(buffer)
    writer.writerow(["line", "reason", *columns])
    for rejected in report.rejected:
        writer.writerow(
            [
                rejected.line,
                cell(rejected.reason),
                *(cell(rejected.row.get(c, "")) for c in columns),
            ]
        )
    return buffer.getvalue()
