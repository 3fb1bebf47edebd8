"""A local Telegram Bot API server for tests and the browser sandbox.

Point a real aiogram ``Bot`` at it with
``AiohttpSession(api=TelegramAPIServer.from_base(server.base_url))``: the bot calls
``{base}/bot{token}/{method}`` and downloads from ``{base}/file/bot{token}/{path}``,
exactly as against api.telegram.org. The user side is driven through ``server.sim`` (a
``BotSimulator``) or the ``/_sim/`` JSON routes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any

from aiohttp import web

from bot.testserver.errors import ApiError
from bot.testserver.methods import METHODS, Call, Params, Upload
from bot.testserver.sim_routes import SimRoutes
from bot.testserver.simulator import BotSimulator
from bot.testserver.state import ApiCall, BotState, World

__all__ = ["DEFAULT_TOKEN", "BotAPIServer"]

DEFAULT_TOKEN = "123456789:TEST-token-for-the-local-bot-api"
_MAX_BODY = 64 * 1024 * 1024  # above Telegram's 50 MB upload limit, so we can refuse it

logger = logging.getLogger(__name__)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(error: ApiError) -> web.Response:
    return web.json_response(error.payload(), status=error.status)


@web.middleware
async def _sim_cors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Let a sandbox page served from another local origin call ``/_sim/``."""
    if not request.path.startswith("/_sim/"):
        return await handler(request)
    if request.method == "OPTIONS":
        response: web.StreamResponse = web.Response()
    else:
        response = await handler(request)
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    return response


async def _read_params(request: web.Request) -> Params:
    values: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.body_exists:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError as exc:
                raise ApiError(400, "Bad Request: can't parse JSON object") from exc
            if isinstance(body, dict):
                values.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    uploads[key] = Upload(value.filename, value.file.read(), value.content_type)
                else:
                    values[key] = value
    return Params(values, uploads)


class BotAPIServer:
    """Bot API subset + user simulation, in memory, on 127.0.0.1.

    ``async with BotAPIServer() as server:`` starts it on a free port; ``server.sim`` is
    the simulator of the default bot (token ``DEFAULT_TOKEN``) unless ``add_bot`` was
    called first.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        routes: Iterable[web.AbstractRouteDef] = (),
    ) -> None:
        """``routes`` are served too, e.g. the sandbox's chat page and its assets."""
        self.host = host
        self.port = port
        self._extra_routes = list(routes)
        self.world = World()
        self._simulators: dict[str, BotSimulator] = {}
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    # ------------------------------------------------------------------ bots

    def add_bot(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        username: str = "aesh_test_bot",
        first_name: str = "AESH (test)",
    ) -> BotSimulator:
        """Register a bot token (the id is the token's numeric prefix); returns its
        simulator. Calls with an unregistered token get 401 Unauthorized."""
        if token in self._simulators:
            return self._simulators[token]
        state = BotState(self.world, token, username, first_name)
        self.world.bots[token] = state
        simulator = self._simulators[token] = BotSimulator(self.world, state)
        return simulator

    def simulator(self, token: str | None = None) -> BotSimulator:
        """The simulator of ``token`` (KeyError if unknown), or of the first bot."""
        if token is None:
            return self.sim
        return self._simulators[token]

    @property
    def sim(self) -> BotSimulator:
        """The first bot's simulator (a default bot is registered if there is none)."""
        if not self._simulators:
            return self.add_bot()
        return next(iter(self._simulators.values()))

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the server is not started")
        return self._base_url

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=_MAX_BODY, middlewares=[_sim_cors])
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        app.add_routes(SimRoutes(self.world, self.simulator).routes())
        app.add_routes(self._extra_routes)
        return app

    async def start(self) -> str:
        """Listen (port 0 picks a free port) and return the base URL, no trailing slash."""
        if self._runner is not None:
            return self.base_url
        self.world.closing = False
        # handler_cancellation: a long poll whose client went away must not linger;
        # a short shutdown_timeout keeps stop() fast in tests.
        runner = web.AppRunner(
            self.make_app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self._base_url = f"http://{self.host}:{self.port}"
        return self._base_url

    async def stop(self) -> None:
        if self._runner is None:
            return
        # Release pending long polls first so their handlers end before the runner
        # waits for them.
        self.world.closing = True
        for bot in self.world.bots.values():
            bot.updates_changed.notify()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> BotAPIServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ HTTP

    async def _api(self, request: web.Request) -> web.Response:
        bot = self.world.bots.get(request.match_info["token"])
        if bot is None:
            return _error(ApiError(401, "Unauthorized"))
        name = request.match_info["method"]
        handler = METHODS.get(name.lower())
        if handler is None:
            return _error(ApiError(404, "Not Found"))
        polling = name.lower() == "getupdates"
        if not polling:
            bot.inflight += 1
        record: ApiCall | None = None
        try:
            params = await _read_params(request)
            if not polling:
                record = ApiCall(name, params.loggable())
                bot.calls.append(record)
            failure = bot.take_failure(name)
            if failure is not None:
                raise failure
            result = await handler(Call(self.world, bot, params))
        except ApiError as error:
            if record is not None:
                record.ok, record.error = False, error.description
            logger.debug("%s -> %s %s", name, error.status, error.description)
            return _error(error)
        finally:
            if not polling:
                bot.inflight -= 1
                bot.last_call_end = asyncio.get_running_loop().time()
        return web.json_response({"ok": True, "result": result}, dumps=json.dumps)

    async def _download(self, request: web.Request) -> web.Response:
        not_found = ApiError(404, "Not Found")
        if request.match_info["token"] not in self.world.bots:
            return _error(not_found)
        stored = self.world.files.by_path(request.match_info["path"])
        if stored is None:
            return _error(not_found)
        return web.Response(
            body=stored.content,
            content_type=stored.mime_type or "application/octet-stream",
        )
