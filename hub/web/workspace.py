"""The agents' workspace page: `/app`, plain JavaScript modules and CSS from
`hub/web/static` (no build step), served with a strict Content-Security-Policy.

The policy allows scripts, styles and connections from the hub only: a
customer's text that somehow became markup could not load or run a script,
and e-mail HTML (sanitised by nh3 at ingest already) is shown in an iframe
with an empty `sandbox` — no scripts, no forms, no same-origin access — that
inherits the same policy (remote images are blocked too: no tracking pixels).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self'",
        "connect-src 'self'",
        "frame-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

routes = web.RouteTableDef()


def _file(name: str, folder: Path = STATIC) -> web.Response:
    path = folder / name
    # Only files directly in the static folder, by an exact name: no traversal.
    if "/" in name or name.startswith(".") or not path.is_file():
        raise web.HTTPNotFound()
    content_type = CONTENT_TYPES.get(path.suffix)
    if content_type is None:
        raise web.HTTPNotFound()
    return web.Response(
        body=path.read_bytes(),
        headers={**HEADERS, "Content-Type": content_type, "Cache-Control": "no-cache"},
    )


@routes.get("/app")
async def page(request: web.Request) -> web.Response:
    return _file("index.html")


@routes.get("/favicon.ico")
async def favicon(request: web.Request) -> web.Response:
    """What browsers ask every page for (the pages also link it by name)."""
    return _file("icon.svg")


@routes.get("/app/static/{name}")
async def static(request: web.Request) -> web.Response:
    return _file(request.match_info["name"])


@routes.get("/app/static/vendor/{name}")
async def vendored(request: web.Request) -> web.Response:
    """Third-party files kept in the hub (no CDN): see static/vendor/README.md."""
    return _file(request.match_info["name"], STATIC / "vendor")
