"""A company's website with the chat widget pasted in: a real HTTP server on
its own origin, serving pages with the one `<script>` tag the company adds.

Real shop sites are not kind to an embedded widget: `head` adds the site's own
CSS (resets, a header on the highest z-index), `csp` sends a strict
Content-Security-Policy, `snippets` pastes the tag more than once (a theme and
a plugin both adding it) and `html_lang` is the page's own language."""

from __future__ import annotations

import html

from aiohttp import web

NONCE = "site-own-style"  # a CSP may let the site's own <style> in with this


class Website:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.hub_url = ""  # set once the hub is up (the hub needs our origin first)
        self.account = "web"
        self.lang: str | None = None
        self.html_lang = ""  # many sites leave it out
        self.head = ""
        self.body = ""
        self.csp: str | None = None
        self.snippets = 1
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
        snippet = (
            f'<script src="{src}" data-account="{html.escape(self.account)}"{lang} async></script>'
        )
        html_lang = f' lang="{html.escape(self.html_lang)}"' if self.html_lang else ""
        body = f"""<!doctype html><html{html_lang}><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Cửa hàng ABC — {html.escape(page)}</title>
<style nonce="{NONCE}">
body{{font:16px/1.5 Georgia,serif;margin:0;padding:2rem;background:#fbf8f3;color:#333}}
.card{{max-width:36rem;background:#fff;padding:1.5rem;border-radius:8px}}</style>{self.head}</head>
<body><div class="card"><h1>Cửa hàng ABC</h1>
<p>Áo thun cotton, giao hàng toàn quốc. Trang: {html.escape(page)}.</p>
<p><a href="/other">Một trang khác</a></p></div>{self.body}
{snippet * self.snippets}
</body></html>"""
        headers = {"Content-Security-Policy": self.csp} if self.csp else {}
        return web.Response(text=body, content_type="text/html", headers=headers)
