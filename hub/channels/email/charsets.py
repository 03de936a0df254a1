"""Turning the bytes of a mail part into text, whatever charset it claims.

Every charset Python knows is used as declared. Vietnamese mail adds two
habits: windows-1258 writes tone marks as separate combining characters
(so all text is put in NFC, or "ệ" would not equal "ệ" in a search), and
old mail systems still send VISCII (RFC 1456), which Python lacks, so it is
registered here. Undeclared 8-bit text is tried as UTF-8, then
windows-1258. Decoding never raises: what cannot be decoded is replaced.
"""

from __future__ import annotations

import codecs
import unicodedata

# VISCII (RFC 1456): ASCII except six C0 positions, and 128 Vietnamese
# letters above 0x7F (generated once from glibc's iconv table).
_VISCII_LOW = {0x02: "Ẳ", 0x05: "Ẵ", 0x06: "Ẫ", 0x14: "Ỷ", 0x19: "Ỹ", 0x1E: "Ỵ"}
_VISCII_HIGH = (
    "ẠẮẰẶẤẦẨẬẼẸẾỀỂỄỆỐ"
    "ỒỔỖỘỢỚỜỞỊỎỌỈỦŨỤỲ"
    "Õắằặấầẩậẽẹếềểễệố"
    "ồổỗỠƠộờởịỰỨỪỬơớƯ"
    "ÀÁÂÃẢĂẳẵÈÉÊẺÌÍĨỳ"
    "ĐứÒÓÔạỷừửÙÚỹỵÝỡư"
    "àáâãảăữẫèéêẻìíĩỉ"
    "đựòóôõỏọụùúũủýợỮ"
)
VISCII_TABLE = "".join(_VISCII_LOW.get(i, chr(i)) for i in range(128)) + _VISCII_HIGH
assert len(VISCII_TABLE) == 256
_VISCII_ENCODING = codecs.charmap_build(VISCII_TABLE)
VISCII_NAMES = {"viscii", "csviscii", "viscii1.1-1", "viscii1_1_1"}


def _viscii(name: str) -> codecs.CodecInfo | None:
    if name.replace("_", "-") not in VISCII_NAMES and name not in VISCII_NAMES:
        return None
    return codecs.CodecInfo(
        name="viscii",
        encode=lambda text, errors="strict": codecs.charmap_encode(text, errors, _VISCII_ENCODING),
        decode=lambda data, errors="strict": codecs.charmap_decode(data, errors, VISCII_TABLE),
    )


codecs.register(_viscii)

# Names mail software writes that Python spells differently.
ALIASES = {
    "x-viet-vps": "windows-1258",  # VPS is rare; cp1258 keeps the ASCII readable
    "vietnamese": "windows-1258",
    "x-unknown": "utf-8",
    "unknown-8bit": "utf-8",
    "x-user-defined": "windows-1252",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",  # a superset: mail labelled gb2312 is often GBK
    "iso-8859-8-i": "iso-8859-8",
    "utf8": "utf-8",
}


def codec_for(charset: str | None) -> str | None:
    """A Python codec name for a declared charset, or None if Python has none."""
    if not charset:
        return None
    name = charset.strip().strip('"').lower()
    name = ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):
        return None


def decode(data: bytes, charset: str | None) -> str:
    """Text from `data` in its declared charset (replacing what does not decode);
    with no usable declaration: UTF-8 if it is valid UTF-8, else windows-1258.
    Always NFC, never containing NUL."""
    codec = codec_for(charset)
    if codec is not None and codec not in ("ascii", "us-ascii"):
        text = data.decode(codec, errors="replace")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("windows-1258", errors="replace")
    return clean(text)


def clean(text: str) -> str:
    """NFC, without NUL characters or lone surrogates (which no store keeps)."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    text = text.encode("utf-8", errors="replace").decode("utf-8")
    return unicodedata.normalize("NFC", text)
