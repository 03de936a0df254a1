"""The text of a contact file as spreadsheets save it, whatever the program.

Vietnamese marketers' files come out of Excel or Google Sheets:

- Excel's "CSV UTF-8" writes UTF-8 with a byte-order mark, Google Sheets
  writes UTF-8 without one;
- Excel's "Unicode Text" writes UTF-16 with a byte-order mark (tab-separated);
- Excel's plain "CSV (Comma delimited)" on a Vietnamese Windows writes the ANSI
  code page, Windows-1258, where a letter is often a base letter followed by a
  combining tone mark ("e" + "\u0303" rather than "ẽ");
- with Vietnamese regional settings the decimal separator is ",", so Excel
  separates cells with ";".

`decode` tries the encodings in an order that never silently mangles text:
UTF-8 first (a Windows-1258 file with any Vietnamese letter in it is not valid
UTF-8, while UTF-8 read as Windows-1258 would become mojibake without any
error; a UTF-8 file with one broken byte is refused, not read as
Windows-1258), then UTF-16 when a byte-order mark says so, else Windows-1258 (bytes
that Windows-1258 leaves undefined are refused). Whatever the source, the text
comes out in Unicode NFC, so that "Nguyễn" is one string for search and
de-duplication whether it was typed on Windows, on a Mac (NFD) or read from
Windows-1258. The encoding read is returned, to be shown to the marketer: odd
names in a report are explained by it.

`delimiter_of` finds the cell separator from the header line. csv.Sniffer is
not used: it guesses from how consistently a character repeats across lines,
and gives up ("Could not determine delimiter") on a one-column file or a
header-only sample; the header line alone decides here, deterministically.
"""

from __future__ import annotations

import codecs
import unicodedata
from dataclasses import dataclass

from hub.errors import InvalidRequest

DELIMITERS = (",", ";", "\t", "|")  # in order of preference when counts tie
UTF8 = "UTF-8"
UTF16 = "UTF-16"
WINDOWS_1258 = "Windows-1258"


@dataclass(frozen=True)
class CsvText:
    text: str  # NFC, without a byte-order mark
    encoding: str  # UTF8, UTF16 or WINDOWS_1258: what the file was read as


def decode(raw: bytes, *, final: bool = True) -> CsvText:
    """The text of a contact file, in NFC, and the encoding it was read as.

    `final=False` is for the start of a file (a preview): a character cut at the
    end of `raw` is left out instead of failing. Raises InvalidRequest naming
    the problem when the bytes are none of the encodings spreadsheets write."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = codecs.getincrementaldecoder("utf-16")().decode(raw, final=final)
        except UnicodeDecodeError as exc:
            raise InvalidRequest(
                f"the file starts as UTF-16 text but is not (byte {exc.start});"
                " save it as CSV UTF-8"
            ) from exc
        return CsvText(_nfc(text), UTF16)
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(raw, final=final)
        return CsvText(_nfc(text), UTF8)
    except UnicodeDecodeError as exc:
        if _has_utf8_letters(raw):
            raise InvalidRequest(
                f"the file is UTF-8 text with a byte that is not UTF-8 (byte {exc.start});"
                " save it as CSV UTF-8 again"
            ) from exc
    try:
        text = raw.decode("cp1258")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"the file is neither UTF-8, UTF-16 nor Windows-1258 text (byte {exc.start});"
            " save it as CSV UTF-8"
        ) from exc
    return CsvText(_nfc(text), WINDOWS_1258)


def delimiter_of(text: str) -> str:
    """The cell separator of a CSV text: whichever of , ; tab | occurs most often
    outside quotes in its header line ("," when none does: a one-column file)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted  # a doubled quote inside quotes toggles twice
        elif quoted:
            continue
        elif char in "\r\n":
            break
        elif char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])  # max keeps the first of a tie
    return best if counts[best] else ","


def _has_utf8_letters(raw: bytes) -> bool:
    """Whether `raw` holds well-formed UTF-8 multi-byte characters: then it is
    broken UTF-8, and reading it as Windows-1258 would garble every accented
    letter. (Vietnamese Windows-1258 text practically never forms one: a
    lead byte is a letter, which is followed by ASCII or a tone mark, never by
    bytes 0x80-0xBF.)"""
    return any(char > "\x7f" and char != "\ufffd" for char in raw.decode("utf-8", errors="replace"))


def _nfc(text: str) -> str:
    # Python's cp1258 codec maps each byte to one code point and leaves the
    # combining tone marks (0xCC, 0xD2, 0xDE, 0xEC, 0xF2) as they are.
    return unicodedata.normalize("NFC", text)
