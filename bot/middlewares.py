"""Update-level plumbing: one unit of work per update, applied once, errors kept from users."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import TelegramObject, Update
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.storage import current_session
from core.models import BotUpdate

log = logging.getLogger("aesh.bot")


class UnitOfWork(BaseMiddleware):
    """Open a session per update, inject it, commit after the handler with the update id.

    Telegram delivers updates at least once: an update whose id is already recorded is
    dropped, so a redelivery after a crash changes nothing twice.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, Update)
        bot: Bot = data["bot"]
        async with self.sessionmaker() as session:
            seen = await session.scalar(
                select(BotUpdate.update_id).where(
                    BotUpdate.update_id == event.update_id, BotUpdate.bot_id == bot.id
                )
            )
            if seen is not None:
                log.info("update %s already handled", event.update_id)
                return None
            token = current_session.set(session)
            data["session"] = session
            try:
                result = await handler(event, data)
                session.add(BotUpdate(update_id=event.update_id, bot_id=bot.id))
                await session.commit()
                return result
            except BaseException:
                await session.rollback()
                raise
            finally:
                current_session.reset(token)


class RetryAfter(BaseRequestMiddleware):
    """Honour Telegram's flood control: wait `retry_after` seconds and try again (bounded)."""

    def __init__(self, attempts: int = 3, max_wait: float = 60.0) -> None:
        self.attempts = attempts
        self.max_wait = max_wait

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        for attempt in range(self.attempts):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as err:
                if attempt == self.attempts - 1 or err.retry_after > self.max_wait:
                    raise
                log.warning(
                    "flood control on %s: waiting %ss", type(method).__name__, err.retry_after
                )
                await asyncio.sleep(err.retry_after)
        raise AssertionError("unreachable")


class Caller(BaseMiddleware):
    """Resolve who is talking (a validated candidate, or nobody yet) once per update."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        from core.services import candidatures

        user = data.get("event_from_user")
        session = data.get("session")
        data["candidat"] = (
            await candidatures.by_telegram(session, user.id)
            if user is not None and session is not None
            else None
        )
        return await handler(event, data)
