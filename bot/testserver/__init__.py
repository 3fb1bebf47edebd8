"""A local Telegram Bot API server that a real aiogram ``Bot`` can talk to.

Used by the test suite to drive the bot like a person would, and by the local web
sandbox (``/_sim/`` JSON routes) to chat with it from a browser.

    async with BotAPIServer() as server:
        bot = Bot(server.sim.token, session=AiohttpSession(
            api=TelegramAPIServer.from_base(server.base_url)))
        server.sim.send_text(42, "/start")
        reply = await server.sim.wait_for_bot(42)
"""

from bot.testserver.errors import ApiError
from bot.testserver.files import DOWNLOAD_LIMIT, StoredFile
from bot.testserver.server import DEFAULT_TOKEN, BotAPIServer
from bot.testserver.simulator import AlbumItem, BotSimulator
from bot.testserver.state import ApiCall, CallbackAnswer, ChatMessage, SimUser

__all__ = [
    "DEFAULT_TOKEN",
    "DOWNLOAD_LIMIT",
    "AlbumItem",
    "ApiCall",
    "ApiError",
    "BotAPIServer",
    "BotSimulator",
    "CallbackAnswer",
    "ChatMessage",
    "SimUser",
    "StoredFile",
]
