"""Contact files as spreadsheets save them: the encoding is found without ever
garbling a letter, the text comes out in NFC, the separator comes from the
header line."""

from __future__ import annotations

import codecs
import unicodedata
from pathlib import Path

import pytest

from hub.campaigns.csv_text import decode, delimiter_of
from hub.errors import InvalidRequest

DATA = Path(__file__).parent.parent / "data" / "campaigns"


@pytest.mark.parametrize(
    ("name", "encoding", "delimiter", "header"),
    [
        # Excel "CSV (Comma delimited)" on a Vietnamese Windows: tone marks combining
        ("excel-vietnamese-windows.csv", "Windows-1258", ";", "Họ và tên;SĐT;E-mail:"),
        # Excel "Unicode Text": UTF-16 with a byte-order mark, tab-separated
        ("excel-unicode-text.txt", "UTF-16", "\t", "Tên khách hàng\tĐiện thoại"),
        # macOS Numbers: UTF-8 in NFD
        ("macos-numbers.csv", "UTF-8", ",", "Họ tên,Di động"),
        ("contacts.csv", "UTF-8", ",", "Họ tên,Số điện thoại"),
    ],
)
def test_each_spreadsheet_encoding_is_read_as_nfc_text(
    name: str, encoding: str, delimiter: str, header: str
) -> None:
    decoded = decode((DATA / name).read_bytes())
    assert decoded.encoding == encoding
    assert decoded.text.startswith(header)
    assert unicodedata.is_normalized("NFC", decoded.text)
    assert delimiter_of(decoded.text) == delimiter


def test_utf8_with_or_without_a_bom_is_utf8_and_the_bom_is_dropped() -> None:
    text = "Họ tên,SĐT\nNguyễn Văn Bình,0901234567\n"
    assert decode(codecs.BOM_UTF8 + text.encode()).text == text
    assert decode(text.encode()).encoding == "UTF-8"
    assert decode(codecs.BOM_UTF16_BE + text.encode("utf-16-be")).text == text


def test_a_character_cut_at_the_end_of_a_preview_is_left_out() -> None:
    raw = "Họ tên,SĐT\nNguyễn".encode()
    cut = decode(raw[:-2], final=False)  # "n" and the last byte of "ễ" missing
    assert (cut.text, cut.encoding) == ("Họ tên,SĐT\nNguy", "UTF-8")


def test_broken_utf8_is_refused_rather_than_read_as_windows_1258() -> None:
    raw = "Họ tên,SĐT\nNguyễn Văn Bình,0901234567\n".encode() + b"Tr\xe2n,0901234568\n"
    with pytest.raises(InvalidRequest, match="UTF-8 text with a byte that is not UTF-8"):
        decode(raw)


def test_bytes_no_spreadsheet_writes_are_refused_naming_the_byte() -> None:
    with pytest.raises(InvalidRequest, match=r"neither UTF-8, UTF-16 nor Windows-1258.*byte 5"):
        decode(b"name,\x81phone\n")


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [
        ("name;phone;email", ";"),
        ('"Nguyễn, Văn";phone', ";"),  # a comma inside quotes does not count
        ("name,phone;mobile,email", ","),
        ("name|phone", "|"),
        ("phone", ","),  # one column: nothing to find, the usual comma
        ("name;phone\nA,B,C,D,E", ";"),  # the header decides, not the rows
    ],
)
def test_the_delimiter_is_found_from_the_header_line(header: str, delimiter: str) -> None:
    assert delimiter_of(header) == delimiter
