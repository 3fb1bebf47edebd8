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
from aiogram.dispatcher.middlewares.user_context import EVENT_CONTEXT_KEY
from aiogram.exceptions import TelegramRetryAfter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import TelegramObject, Update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.storage import (
    SqlStorage,
    UpdateScope,
    current_scope,
    finish_update,
    forget_update,
    open_update,
)
from core import sqlite_driver

log = logging.getLogger("aesh.bot")


class UnitOfWork(BaseMiddleware):
    """One update, one transaction: lock the chat, open a session, skip an update already
    applied, load the dialog state, run the handler, then write the dialog state and the
    update id and commit.

    Telegram delivers updates at least once: an update whose id is already recorded is
    dropped, so a redelivery after a crash changes nothing twice. The chat lock comes first
    (updates of one chat run one at a time, so a double tap cannot race itself), then the
    session: the check and the state are read under the lock. This replaces aiogram's own
    FSM middleware (the dispatcher is built with ``disable_fsm=True``), whose state read
    would otherwise run in a session of its own before this one.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        fsm: FSMContextMiddleware | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.fsm = fsm

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, Update)
        context: FSMContext | None = None
        if self.fsm is not None:
            data["fsm_storage"] = self.fsm.storage
            if data.get(EVENT_CONTEXT_KEY) is not None:
                context = self.fsm.resolve_event_context(data["bot"], data)
        if context is None:
            return await self._apply(handler, event, data, None)
        assert self.fsm is not None
        async with self.fsm.events_isolation.lock(key=context.key):
            return await self._apply(handler, event, data, context)

    async def _apply(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: Update,
        data: dict[str, Any],
        context: FSMContext | None,
    ) -> Any:
        fsm_key = None
        if context is not None and isinstance(context.storage, SqlStorage):
            fsm_key = context.storage.keys.build(context.key)
        engine = self.sessionmaker.kw.get("bind")
        if isinstance(engine, AsyncEngine) and engine.dialect.name == "sqlite":
            # On SQLite the update has one connection of its own. Its own statements
            # (already applied? dialog row, then dialog row, update id and commit) run on
            # the connection's driver (see `bot.storage`), inline on the loop's thread (they
            # are few and short; see core.sqlite_driver.inline). The handler's session is
            # bound to that same connection and costs nothing until a handler uses it (most
            # dialog steps never do); when used, its changes are flushed into the same
            # transaction before the commit, and its own commit runs its after-commit hooks.
            # A failure anywhere rolls the whole transaction back.
            async with sqlite_driver.inline_connection(engine) as (conn, driver):
                session = self.sessionmaker(bind=conn)
                return await self._handle(session, driver, handler, event, data, context, fsm_key)
        async with self.sessionmaker() as session:
            return await self._handle(session, None, handler, event, data, context, fsm_key)

    async def _handle(
        self,
        session: AsyncSession,
        driver: Any,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: Update,
        data: dict[str, Any],
        context: FSMContext | None,
        fsm_key: str | None,
    ) -> Any:
        """The update in `session` (on SQLite with its aiosqlite `driver`, else None)."""
        bot: Bot = data["bot"]
        scope = UpdateScope(session)
        if hasattr(driver, "execute_fetchall"):
            scope.driver = driver
        if await open_update(scope, event.update_id, bot.id, fsm_key):
            log.info("update %s already handled", event.update_id)
            await _forget_quietly(scope, event.update_id, bot.id)
            return None
        token = current_scope.set(scope)
        data["session"] = session
        try:
            if context is not None:
                data["state"] = context
                data["raw_state"] = await context.get_state()
            result = await handler(event, data)
            await finish_update(scope, event.update_id, bot.id)
            return result
        except Exception:
            await _roll_back(session, driver)
            await _forget_quietly(scope, event.update_id, bot.id)
            raise
        except BaseException:
            # Stopped (cancelled): the update stays in the inbox for the next start.
            await _roll_back(session, driver)
            raise
        finally:
            current_scope.reset(token)


async def _roll_back(session: AsyncSession, driver: Any) -> None:
    """Undo the update's transaction, begun by the handler's session or on the driver."""
    if session.in_transaction():
        await session.rollback()
    if hasattr(driver, "_execute"):
        await sqlite_driver.rollback(driver)


async def _forget_quietly(scope: UpdateScope, update_id: int, bot_id: int) -> None:
    """An update applied before (delivered again), or failed (answered with an apology by
    bot.app.on_error; it would fail again), leaves the inbox. If even that fails it stays
    there, counted and in the end dropped at the next starts (bot.inbox.pending); the user
    is not told."""
    try:
        await forget_update(scope, update_id, bot_id)
    except Exception:
        log.warning("update %s left in the inbox", update_id)


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
