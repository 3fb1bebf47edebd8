"""The bot's HTTP session to the Bot API: aiogram's aiohttp session, minus per-call waste.

aiogram builds every request body through aiohttp's ``FormData``, whose constructor makes a
multipart writer (a random boundary, read from the OS) even when the body is then sent
URL-encoded, which is the case for every call without a file. Here a call without a file
gets the very same URL-encoded body directly; a call with a file goes through aiogram's
own multipart path unchanged. The Bot API sets no cookies, so the client keeps none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiogram.client.session.aiohttp import AiohttpSession
from aiohttp import ClientSession, DummyCookieJar, FormData
from aiohttp.hdrs import USER_AGENT
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.payload import BytesPayload

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import TelegramMethod
    from aiogram.types import InputFile

_URLENCODED = "application/x-www-form-urlencoded"


class BotSession(AiohttpSession):
    async def create_session(self) -> ClientSession:
        if self._should_reset_connector:
            await self.close()
        if self._session is None or self._session.closed:
            from aiogram.__meta__ import __version__

            self._session = ClientSession(
                connector=self._connector_type(**self._connector_init),
                headers={USER_AGENT: f"{SERVER_SOFTWARE} aiogram/{__version__}"},
                cookie_jar=DummyCookieJar(),
            )
            self._should_reset_connector = False
        return self._session

    def build_form_data(self, bot: Bot, method: TelegramMethod[Any]) -> Any:  # type: ignore[override]
        files: dict[str, InputFile] = {}
        fields: list[tuple[str, Any]] = []
        for key, value in method.model_dump(warnings=False).items():
            value = self.prepare_value(value, bot=bot, files=files)
            if value:
                fields.append((key, value))
        if files:
            form = FormData(quote_fields=False)
            for key, value in fields:
                form.add_field(key, value)
            for key, file in files.items():
                form.add_field(key, file.read(bot), filename=file.filename or key)
            return form
        # What FormData would send for these fields (its URL-encoded form, UTF-8).
        return BytesPayload(
            urlencode(fields, doseq=True, encoding="utf-8").encode(), content_type=_URLENCODED
        )
