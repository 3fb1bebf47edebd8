"""Updates kept from their receipt until handled, so that a stop or a crash loses none.

Telegram confirms an update when the bot asks for the next ones (getUpdates with a higher
offset) and never sends it again. aiogram asks for the next batch while the previous one is
still being handled, so an update in flight when the process stops was lost. Here each
batch is written to the ``bot_inbox`` table before it is handled; the unit of work that
handles an update deletes its row in the same transaction (bot.storage), and at start the
rows left are handled first. An update handled twice that way (the row written, the bot
stopped after the commit of another) is dropped by the unit of work's update-id check.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

from aiogram import Bot, Dispatcher, loggers
from aiogram.dispatcher.dispatcher import DEFAULT_BACKOFF_CONFIG
from aiogram.methods import GetUpdates
from aiogram.types import Update
from aiogram.utils.backoff import Backoff, BackoffConfig
from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core import sqlite_driver
from core.models import BotInbox
from core.models.base import utcnow

log = logging.getLogger("aesh.bot")

_INBOX = cast(Table, BotInbox.__table__)


@contextlib.asynccontextmanager
async def _connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            yield conn
            return
        driver = (await conn.get_raw_connection()).driver_connection
        with sqlite_driver.inline(driver):  # a few short statements (see bot.middlewares)
            yield conn


async def keep(engine: AsyncEngine, bot_id: int, updates: list[Update]) -> None:
    """Write a batch of updates just received (one already kept stays as it is)."""
    now = utcnow()
    rows = [
        {
            "update_id": u.update_id,
            "bot_id": bot_id,
            "payload": u.model_dump_json(exclude_none=True),
            "received_at": now,
        }
        for u in updates
    ]
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    async with _connection(engine) as conn:
        await conn.execute(insert(_INBOX).on_conflict_do_nothing(), rows)
        await conn.commit()


async def pending(engine: AsyncEngine, bot: Bot) -> list[Update]:
    """The updates received before the last stop and not handled, oldest first."""
    async with _connection(engine) as conn:
        payloads = (
            await conn.scalars(
                select(_INBOX.c.payload)
                .where(_INBOX.c.bot_id == bot.id)
                .order_by(_INBOX.c.update_id)
            )
        ).all()
    updates = []
    for payload in payloads:
        try:
            updates.append(Update.model_validate_json(payload, context={"bot": bot}))
        except ValueError:
            log.warning("an update kept in the inbox could not be read back; dropped")
    return updates


class InboxDispatcher(Dispatcher):
    """aiogram's dispatcher, its polling keeping each batch in the inbox before handing it
    out, and handing out first what the inbox kept from before the last stop."""

    async def _listen_updates(  # type: ignore[override]
        self,
        bot: Bot,
        polling_timeout: int = 30,
        backoff_config: BackoffConfig = DEFAULT_BACKOFF_CONFIG,
        allowed_updates: list[str] | None = None,
    ) -> AsyncGenerator[Update, None]:
        engine: AsyncEngine = self.workflow_data["sessionmaker"].kw["bind"]
        left = await pending(engine, bot)
        if left:
            log.info("handling %d update(s) received before the last stop", len(left))
        for update in left:
            yield update
        # What follows is aiogram's own loop (Dispatcher._listen_updates), the batch kept
        # before it is handed out.
        backoff = Backoff(config=backoff_config)
        get_updates = GetUpdates(timeout=polling_timeout, allowed_updates=allowed_updates)
        kwargs: dict[str, Any] = {}
        if bot.session.timeout:
            kwargs["request_timeout"] = int(bot.session.timeout + polling_timeout)
        failed = False
        while True:
            try:
                updates = await bot(get_updates, **kwargs)
                if updates:
                    await keep(engine, bot.id, updates)
            except Exception as e:
                failed = True
                loggers.dispatcher.error("Failed to fetch updates - %s", type(e).__name__)
                await backoff.asleep()
                continue
            if failed:
                backoff.reset()
                failed = False
            for update in updates:
                yield update
                get_updates.offset = update.update_id + 1
