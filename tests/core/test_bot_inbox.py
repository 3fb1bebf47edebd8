"""The bot's inbox and unit of work on both databases: a kept update leaves the inbox in the
transaction that applies it, a failed one leaves it at once, a redelivered one is dropped
(PostgreSQL has no other test of the bot's own statements)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from aiogram import Bot
from aiogram.dispatcher.middlewares.user_context import EVENT_CONTEXT_KEY, EventContext
from aiogram.types import Chat, Message, Update, User
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.inbox import keep, pending
from bot.middlewares import UnitOfWork
from core.db import make_sessionmaker
from core.models import BotInbox, BotUpdate


def _update(update_id: int, text: str) -> Update:
    user = User(id=4242, is_bot=False, first_name="X")
    message = Message(
        message_id=update_id,
        date=datetime.now(),
        chat=Chat(id=4242, type="private"),
        from_user=user,
        text=text,
    )
    return Update(update_id=update_id, message=message)


async def test_inbox_and_unit_of_work(engine: AsyncEngine) -> None:
    sm = make_sessionmaker(engine)
    bot = Bot("123456:TEST")
    try:
        first, second = _update(501, "/aide"), _update(502, "/statut")
        await keep(engine, bot.id, [first, second])
        await keep(engine, bot.id, [second])  # the same batch fetched again: kept once
        left = await pending(engine, bot)
        assert [(u.update_id, u.message.text) for u in left] == [(501, "/aide"), (502, "/statut")]  # type: ignore[union-attr]

        uow = UnitOfWork(sm)
        context = EventContext(chat=Chat(id=4242, type="private"), user=first.message.from_user)  # type: ignore[union-attr]
        data: dict[str, Any] = {"bot": bot, EVENT_CONTEXT_KEY: context}
        handled: list[int] = []

        async def fine(event: Any, data: dict[str, Any]) -> None:
            handled.append(event.update_id)

        async def failing(event: Any, data: dict[str, Any]) -> None:
            raise RuntimeError("boom")

        await uow(fine, first, dict(data))
        with pytest.raises(RuntimeError):
            await uow(failing, second, dict(data))
        await keep(engine, bot.id, [first])  # delivered again
        await uow(fine, first, dict(data))
        assert handled == [501]  # applied once

        async with sm() as s:
            assert (await s.scalars(select(BotInbox.update_id))).all() == []
            done = (await s.scalars(select(BotUpdate.update_id))).all()
        assert done == [501]
    finally:
        await bot.session.close()
