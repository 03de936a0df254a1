"""How hub's attachments and shared places map onto what messaging apps know.

Messaging apps send and receive a handful of media kinds (image, video, audio,
file) and shared locations; these are the two translations every messaging
channel needs, kept in one place so they read the same in every inbox.
"""

from __future__ import annotations

from typing import Literal

from hub.errors import ProviderRejected
from hub.inbox.model import Attachment
from hub.outbound_http import Fetcher

MediaKind = Literal["image", "video", "audio", "file"]


def media_kind(attachment: Attachment) -> MediaKind:
    """The app-level kind of an attachment, from its content type."""
    major = attachment.content_type.split("/", 1)[0].strip().lower()
    if major in ("image", "video", "audio"):
        return major  # type: ignore[return-value]
    return "file"


def location_text(latitude: float, longitude: float, name: str = "", address: str = "") -> str:
    """A shared location as an agent reads it, with a map link any browser opens."""
    label = ", ".join(part for part in (name, address) if part)
    where = f"{latitude:.6f}, {longitude:.6f}"
    link = f"https://www.openstreetmap.org/?mlat={latitude:.6f}&mlon={longitude:.6f}#map=17"
    return f"📍 {label} ({where}) {link}" if label else f"📍 {where} {link}"


async def download(files: Fetcher, attachment: Attachment) -> bytes:
    """The bytes behind an outbound attachment's URL, for providers that want an
    upload rather than a link, fetched under the hub's policy (public addresses
    only, size-capped: hub.outbound_http). ProviderRejected (retryable when it
    may pass) if the file cannot be had."""
    if not attachment.url:
        raise ProviderRejected(
            f"attachment {attachment.name or '(unnamed)'} has no URL to send it from",
            retryable=False,
        )
    return await files.fetch(attachment.url)
