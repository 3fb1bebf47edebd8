"""Push the message journal to connected agents (domain 3.10); called by the bot's loop.

The choices (who, what, how often) are `core.services.notifications`'; this module only
sends and reports what was sent, in one transaction per round.
"""

from __future__ import annotations

import logging
from datetime import datetime

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError, TelegramNotFound
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models.base import utcnow
from core.services import chat_retention, notifications

log = logging.getLogger("aesh.bot.journal")


async def push_journal(
    bot: Bot,
    sessionmaker: async_sessionmaker[AsyncSession],
    now: datetime | None = None,
    *,
    retention_hours: float | None = None,
) -> int:
    """One round: send each connected agent at most one grouped message (at most one a
    minute), mark the entries everyone concerned has seen. Returns the messages sent.

    The messages name students (initials and file id): each is scheduled for deletion from
    the chat after `retention_hours` (default 24 h, `chat_retention`).
    """
    now = now or utcnow()
    sent = 0
    async with sessionmaker() as session:
        tour = await notifications.preparer(session, now)
        served: set[int] = set()
        for envoi in tour.envois:
            try:
                message = await bot.send_message(envoi.telegram_id, envoi.text)
            except (TelegramForbiddenError, TelegramNotFound):
                # The agent blocked the bot or the chat is gone: waiting for them would hold
                # the entries back from everyone else for ever, so they count as told.
                pass
            except TelegramAPIError as err:
                log.warning("journal push to an agent failed: %s", type(err).__name__)
                continue
            else:
                chat_retention.record(
                    session, message.chat.id, message.message_id, hours=retention_hours, now=now
                )
                sent += 1
            await notifications.enregistrer_envoi(session, envoi, now)
            served.add(envoi.telegram_id)
        await notifications.conclure(session, tour, served)
        await session.commit()
    return sent
