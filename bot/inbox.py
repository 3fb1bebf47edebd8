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

import asyncio
import logging
from collections.abc import AsyncGenerator
from datetime import timedelta
from typing import Any, cast

from aiogram import Bot, Dispatcher, loggers
from aiogram.dispatcher.dispatcher import DEFAULT_BACKOFF_CONFIG
from aiogram.methods import GetUpdates
from aiogram.types import Update
from aiogram.utils.backoff import Backoff, BackoffConfig
from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core.models import BotInbox
from core.models.base import utcnow
from core.sqlite_driver import inline_connection

log = logging.getLogger("aesh.bot")

_INBOX = cast(Table, BotInbox.__table__)


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
    async with inline_connection(engine) as (conn, _):
        await conn.execute(insert(_INBOX).on_conflict_do_nothing(), rows)
        await conn.commit()


MAX_ATTEMPTS = 3  # starts at which a kept update is handed out again
MAX_AGE = timedelta(days=2)  # older rows (another bot's, a failed delete) are dropped


async def pending(engine: AsyncEngine, bot: Bot) -> list[Update]:
    """The updates received before the last stop and not handled, oldest first.

    Each start that finds an update still there counts one attempt: one that was handed
    out MAX_ATTEMPTS times without ever being handled (it stopped the process each time)
    is dropped, as are rows older than MAX_AGE: messages are personal data, kept here only
    until handled."""
    now = utcnow()
    inbox = _INBOX.c
    async with inline_connection(engine) as (conn, _):
        await conn.execute(delete(_INBOX).where(inbox.received_at < now - MAX_AGE))
        dropped = await conn.execute(
            delete(_INBOX).where(inbox.bot_id == bot.id, inbox.attempts >= MAX_ATTEMPTS)
        )
        if dropped.rowcount:
            log.warning("%d update(s) dropped after %d starts", dropped.rowcount, MAX_ATTEMPTS)
        await conn.execute(
            update(_INBOX).where(inbox.bot_id == bot.id).values(attempts=inbox.attempts + 1)
        )
        rows = (
            await conn.execute(
                select(inbox.update_id, inbox.payload)
                .where(inbox.bot_id == bot.id)
                .order_by(inbox.update_id)
            )
        ).all()
        updates, unreadable = [], []
        for update_id, payload in rows:
            try:
                updates.append(Update.model_validate_json(payload, context={"bot": bot}))
            except ValueError:
                unreadable.append(update_id)
        if unreadable:
            log.warning("%d update(s) kept in the inbox could not be read back", len(unreadable))
            await conn.execute(
                delete(_INBOX).where(inbox.bot_id == bot.id, inbox.update_id.in_(unreadable))
            )
        await conn.commit()
    return updates


STOP_GRACE = 10.0  # seconds the updates in flight get to finish when the bot stops


class InboxDispatcher(Dispatcher):
    """aiogram's dispatcher, its polling keeping each batch in the inbox before handing it
    out, and handing out first what the inbox kept from before the last stop."""

    async def settle(self, grace: float = STOP_GRACE) -> None:
        """After polling stopped: let the updates still being handled finish (their Bot API
        calls need the bot's session open, so close it after this), and cancel those still
        running after `grace` seconds; a cancelled update stays in the inbox for the next
        start. aiogram itself leaves them running while it closes the session under them,
        and each then failed and was apologised for."""
        tasks = set(getattr(self, "_handle_update_tasks", ()))
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _listen_updates(  # type: ignore[override]
        self,
        bot: Bot,
        polling_timeout: int = 30,
        backoff_config: BackoffConfig = DEFAULT_BACKOFF_CONFIG,
        allowed_updates: list[str] | None = None,
    ) -> AsyncGenerator[Update, None]:
        engine: AsyncEngine = self.workflow_data["sessionmaker"].kw["bind"]
        backoff = Backoff(config=backoff_config)
        while True:  # like polling itself, never given up
            try:
                left = await pending(engine, bot)
                break
            except Exception as e:
                log.error("could not read the inbox - %s", type(e).__name__)
                await backoff.asleep()
        backoff.reset()
        if left:
            log.info("handling %d update(s) received before the last stop", len(left))
        for kept in left:
            yield kept
        # What follows is aiogram's own loop (Dispatcher._listen_updates), the batch kept
        # before it is handed out (if it cannot be, the same batch is fetched again).
        get_updates = GetUpdates(timeout=polling_timeout, allowed_updates=allowed_updates)
        kwargs: dict[str, Any] = {}
        if bot.session.timeout:
            kwargs["request_timeout"] = int(bot.session.timeout + polling_timeout)
        failed = False
        while True:
            try:
                updates = await bot(get_updates, **kwargs)
            except Exception as e:  # as aiogram: polling never stops
                failed = True
                loggers.dispatcher.error("Failed to fetch updates - %s", type(e).__name__)
                await backoff.asleep()
                continue
            if updates:
                try:
                    await keep(engine, bot.id, updates)
                except Exception as e:
                    failed = True
                    log.error("could not keep updates in the inbox - %s", type(e).__name__)
                    await backoff.asleep()
                    continue
            if failed:
                backoff.reset()
                failed = False
            for received in updates:
                yield received
                get_updates.offset = received.update_id + 1
