"""The few pages hub shows customers rather than agents — a satisfaction
survey, an unsubscribe confirmation: one small HTML page each, reached from a
link in a message.

They are locked down as the workspace is, for the same reasons: no script may
run on them (`default-src 'none'`, their one style block allowed by its hash),
they post only to hub itself, no other site may frame them (a customer must
not be tricked into clicking "unsubscribe" or a score under someone else's
page), and they are neither cached nor sent as a Referer, since their
address carries a signed token.
"""

from __future__ import annotations

import base64
import hashlib
import html

from aiohttp import web

STYLE = (
    "body{font:17px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;"
    "padding:0 1rem;text-align:center}"
    "button{font-size:1.2rem;min-width:3rem;min-height:3rem;margin:.2rem;padding:0 1rem}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
POLICY = "; ".join(
    [
        "default-src 'none'",
        f"style-src 'sha256-{_STYLE_HASH}'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def public_page(title: str, body: str, *, lang: str = "vi", status: int = 200) -> web.Response:
    """A page with `title` (escaped here) and `body` (markup the caller built,
    with every value in it escaped), in language `lang`."""
    text = (
        f'<!doctype html><html lang="{html.escape(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(status=status, content_type="text/html", text=text, headers=HEADERS)
