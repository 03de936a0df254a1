"""A real local HTTP server for a provider stand-in: started on a free loopback
port, stopped at the end of the test."""

from __future__ import annotations

from aiohttp import web


class LocalServer:
    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class FileServer(LocalServer):
    """Serves attachment bytes at `/files/<name>`, as a company's file store would."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, tuple[bytes, str]] = {}

    def add(self, name: str, content: bytes, content_type: str) -> str:
        self.files[name] = (content, content_type)
        return f"{self.url}/files/{name}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/files/{name}", self._get)
        return app

    async def _get(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["name"])
        if found is None:
            return web.Response(status=404)
        return web.Response(body=found[0], content_type=found[1])
