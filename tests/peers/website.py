"""A company's website with the chat widget pasted in: a real HTTP server on
its own origin, serving pages with the one `<script>` tag the company adds."""

from __future__ import annotations

import html

from aiohttp import web


class Website:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.hub_url = ""  # set once the hub is up (the hub needs our origin first)
        self.account = "web"
        self.lang: str | None = None
        self._runner: web.AppRunner | None = None

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.origin + path

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/{page}", self._page)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _page(self, request: web.Request) -> web.Response:
        page = request.match_info.get("page", "home")
        lang = f' data-lang="{html.escape(self.lang)}"' if self.lang else ""
        src = html.escape(f"{self.hub_url}/widget.js")
        body = f"""<!doctype html><html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Cửa hàng ABC — {html.escape(page)}</title>
<style>body{{font:16px/1.5 Georgia,serif;margin:0;padding:2rem;background:#fbf8f3;color:#333}}
.card{{max-width:36rem;background:#fff;padding:1.5rem;border-radius:8px}}</style></head>
<body><div class="card"><h1>Cửa hàng ABC</h1>
<p>Áo thun cotton, giao hàng toàn quốc. Trang: {html.escape(page)}.</p>
<p><a href="/other">Một trang khác</a></p></div>
<script src="{src}" data-account="{html.escape(self.account)}"{lang} async></script>
</body></html>"""
        return web.Response(text=body, content_type="text/html")
