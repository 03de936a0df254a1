"""The readable content of a mail: HTML made safe for an agent's browser, plain
text made from HTML when a mail has no text part, and where the quoted reply
history starts (so the workspace can fold it away without deleting it)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

ALLOWED_TAGS = (set(nh3.ALLOWED_TAGS) | {"font"}) - {"area", "map"}
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()},
    # `class` keeps the quote markers (gmail_quote, moz-cite-prefix, ...) the
    # workspace folds; `dir` keeps right-to-left text right.
    "*": {"class", "dir", "lang", "title"},
    "a": {"href", "hreflang", "title"},
    "blockquote": {"cite", "type"},
    "font": {"color", "face", "size"},
}
# `cid:` links inline images to attachments (by Content-ID); nothing that runs.
URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}


def sanitise_html(html: str) -> str:
    """HTML that cannot run anything: no scripts, styles, event handlers, frames,
    forms or javascript: links; links get rel="noopener noreferrer nofollow"."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style", "title", "head", "template", "noscript"},
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        # Remote images (tracking pixels) learn nothing about the agent's page.
        set_tag_attribute_values={"img": {"referrerpolicy": "no-referrer", "loading": "lazy"}},
        strip_comments=True,
    )


BLOCKS = {
    "address", "article", "aside", "blockquote", "div", "dl", "dt", "dd", "fieldset",
    "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul",
}  # fmt: skip
SKIPPED = {"script", "style", "head", "title", "template", "noscript"}


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skipping = 0
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED:
            self.skipping += 1
        elif tag == "br":
            self.chunks.append("\n")
        elif tag == "li":
            self.chunks.append("\n- ")
        elif tag in ("td", "th"):
            self.chunks.append(" ")
        elif tag in BLOCKS:
            self.chunks.append("\n")
        if tag == "pre":
            self.pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED:
            self.skipping = max(self.skipping - 1, 0)
        elif tag in BLOCKS and tag != "li":  # the next item starts its own line
            self.chunks.append("\n")
        if tag == "pre":
            self.pre = max(self.pre - 1, 0)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        self.chunks.append(data if self.pre else re.sub(r"[ \t\r\n\f]+", " ", data))


def html_to_text(html: str) -> str:
    """The text an HTML mail shows, with paragraphs and line breaks kept."""
    parser = _TextOf()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # pathological markup; keep what was read
        pass
    text = "".join(parser.chunks).replace("\xa0", " ")
    lines = [line.strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# Lines that introduce the quoted history of a reply, in the mail clients our
# customers use. Gmail's attribution may wrap onto a second line, so each
# pattern is also tried on a line joined with the one before it.
ATTRIBUTION = [
    re.compile(r"^On .{1,300}wrote:\s*$", re.S),  # Gmail, Apple Mail, Thunderbird (en)
    re.compile(r"^Vào .{1,300}đã viết:\s*$", re.S),  # Gmail (vi)
    re.compile(r"^Le .{1,300}a écrit\s?:\s*$", re.S),
    re.compile(r"^Am .{1,300}schrieb .{0,200}:\s*$", re.S),
    re.compile(r"^El .{1,300}escribió:\s*$", re.S),
    re.compile(r"^在.{1,300}写道[:\uff1a]\s*$", re.S),  # full-width colon too
]
SEPARATORS = [
    re.compile(r"^-{2,}\s*(Original Message|Thư gốc|Ursprüngliche Nachricht)\s*-{2,}\s*$", re.I),
    re.compile(r"^_{20,}\s*$"),  # Outlook on the web, before a From:/Sent: block
]
# Forwarded mail is content the sender wants read: nothing after this is a quote.
FORWARDED = re.compile(
    r"^-*\s*(Forwarded message|Begin forwarded message|Thư được chuyển tiếp|"
    r"Weitergeleitete Nachricht|Message transféré)\s*:?\s*-*\s*$",
    re.I,
)
# Outlook's header block: "From: ..." followed closely by "Sent:/Date:" (or Vietnamese).
OUTLOOK_FROM = re.compile(r"^\*?(From|Từ|Von|De)\*?\s*:", re.I)
OUTLOOK_SENT = re.compile(r"^\*?(Sent|Date|Đã gửi|Ngày|Gesendet|Envoyé)\*?\s*:", re.I)


def quote_start(text: str) -> int | None:
    """Where the quoted reply history begins in `text` (a character offset), or
    None when there is none, or nothing but quotes (then nothing is folded)."""
    lines = text.split("\n")
    offsets = []
    position = 0
    for line in lines:
        offsets.append(position)
        position += len(line) + 1
    start = _first_quote_line(lines)
    if start is None:
        return None
    offset = offsets[start]
    return offset if text[:offset].strip() else None


def _first_quote_line(lines: list[str]) -> int | None:
    # quoted_tail[i]: every line from i on is blank or starts with ">".
    quoted_tail = [True] * (len(lines) + 1)
    for index in range(len(lines) - 1, -1, -1):
        rest = lines[index].lstrip()
        quoted_tail[index] = quoted_tail[index + 1] and (not rest or rest.startswith(">"))
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if FORWARDED.match(stripped):
            return None
        joined = f"{lines[index - 1].strip()} {stripped}" if index else stripped
        for pattern in ATTRIBUTION:
            if pattern.match(stripped):
                return index
            if index and lines[index - 1].strip() and pattern.match(joined):
                return index - 1
        if any(p.match(stripped) for p in SEPARATORS):
            return index
        if OUTLOOK_FROM.match(stripped) and any(
            OUTLOOK_SENT.match(following.strip()) for following in lines[index + 1 : index + 4]
        ):
            return index
        if stripped.startswith(">") and quoted_tail[index]:
            return index
    return None
