"""The dispatcher factory (one for polling, tests and the sandbox) and the bot's run loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.fsm.storage.base import BaseEventIsolation
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.types import BotCommand, BotCommandScopeDefault, ErrorEvent
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.inbox import InboxDispatcher
from bot.middlewares import RetryAfter, UnitOfWork
from bot.session import BotSession
from bot.storage import SqlStorage
from core.config import Settings
from core.errors import DomainError
from core.services.storage import FileStore
from core.texts import t

log = logging.getLogger("aesh.bot")

CANDIDATE_COMMANDS = ("start", "candidature", "pieces", "diplomes", "statut", "aide", "annuler")


def make_session(telegram_api: str | None = None) -> AiohttpSession:
    """The bot's Bot API session (Telegram's servers, or `telegram_api`), 429s waited out."""
    session = (
        BotSession(api=TelegramAPIServer.from_base(telegram_api, is_local=False))
        if telegram_api
        else BotSession()
    )
    session.middleware(RetryAfter())
    return session


def make_bot(settings: Settings) -> Bot:
    assert settings.bot_token, "AESH_BOT_TOKEN is required to run the bot"
    session = make_session(settings.telegram_api)
    return Bot(settings.bot_token, session=session, default=DefaultBotProperties())


def make_dispatcher(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    bot_username: str | None = None,
    isolation: BaseEventIsolation | None = None,
) -> InboxDispatcher:
    from bot.handlers import (
        candidate,
        common,
        fallback,
        forms,
        pieces,
        service_actions,
        service_auth,
        service_reports,
    )

    dp = InboxDispatcher(
        storage=SqlStorage(sessionmaker),
        # Updates of one chat run one at a time: a double tap cannot race itself.
        events_isolation=isolation or SimpleEventIsolation(),
        # The unit of work below locks the chat and reads the state in its own session.
        disable_fsm=True,
        sessionmaker=sessionmaker,
        settings=settings,
        store=FileStore(settings.storage_dir),
        bot_username=bot_username,
    )
    dp.update.outer_middleware(UnitOfWork(sessionmaker, dp.fsm))
    # Commands first (they work in any state), then dialogs, then the catch-all; the steps of
    # a running form right after the commands (see bot.handlers.forms.lane).
    routers = (
        common.router,
        forms.lane,
        service_auth.router,
        service_reports.router,
        service_actions.router,
        candidate.router,
        pieces.router,
        forms.router,
        fallback.router,
    )
    for router in routers:
        # Handler modules declare their routers at import, as aiogram's docs do; one process
        # may build several dispatchers (tests, a restart of the sandbox's bot).
        router._parent_router = None
    dp.include_routers(*routers)
    dp.errors.register(on_error)
    dp.startup.register(settle_heap)
    _inline_sync_filters(dp)
    return dp


_heap_settled = False


async def settle_heap() -> None:
    """Leave what exists when the bot starts out of the cyclic garbage collector's walks.

    Modules, routers, templates, SQLAlchemy's mappers and aiogram's models are some hundreds
    of thousands of objects that live as long as the process. Every full collection walked
    them all again, and a busy bot triggers one every few dozen requests (each report's rows
    are promoted on their way): measured, 40 % of a department's /couverture answer. Frozen
    once (`gc.freeze`), they are never walked again; objects made later are collected as
    before. Done once per process (tests and the sandbox start several dispatchers).
    """
    global _heap_settled
    if _heap_settled:
        return
    _heap_settled = True
    gc.collect()
    gc.freeze()


def _inline_sync_filters(dp: Dispatcher) -> None:
    """Run plain (non-async) filters in the event loop instead of a worker thread.

    aiogram runs every synchronous callable through ``asyncio.to_thread``: each ``F.text``,
    ``F.data.startswith(...)`` checked on the way to a handler cost a thread round trip
    (about fifty such filters stand before the catch-all). Ours are pure and cheap
    (attribute reads, string tests): calling them inline gives the same answers."""
    for router in dp.chain_tail:
        for observer in router.observers.values():
            for handler in observer.handlers:
                for flt in handler.filters or ():
                    if flt.awaitable:
                        continue
                    sync = flt.callback

                    async def inline(*args: Any, _sync: Any = sync, **kwargs: Any) -> Any:
                        return _sync(*args, **kwargs)

                    # The parameters aiogram passes were read from the filter's own
                    # signature (flt.params / flt.varkw) and stay as they were.
                    flt.callback, flt.awaitable = inline, True


async def on_error(event: ErrorEvent, bot: Bot) -> bool:
    """No exception text ever reaches a user: a domain refusal is said in French, anything
    else gets a neutral sentence and goes to the log (type only, no personal data)."""
    update = event.update
    chat_id = None
    if update.message is not None:
        chat_id = update.message.chat.id
    elif update.callback_query is not None and update.callback_query.message is not None:
        chat_id = update.callback_query.message.chat.id
        with contextlib.suppress(Exception):
            await update.callback_query.answer()
    if isinstance(event.exception, DomainError):
        text = str(event.exception)
    else:
        log.error(
            "update %s failed: %s",
            update.update_id,
            type(event.exception).__name__,
            exc_info=(type(event.exception), event.exception, None),
        )
        text = t("bot.erreur_generale")
    if chat_id is not None:
        try:
            await bot.send_message(chat_id, text)
        except Exception:
            log.warning("could not tell chat about failed update %s", update.update_id)
    return True


async def set_commands(bot: Bot) -> None:
    await bot.set_my_commands(
        [BotCommand(command=c, description=t(f"bot.commande_{c}")) for c in CANDIDATE_COMMANDS],
        scope=BotCommandScopeDefault(),
    )


async def deliver_notifications(
    bot: Bot, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, limit: int = 50
) -> int:
    """Send the chat messages core queued (renewal questions …); each is marked sent once."""
    from sqlalchemy import select

    from bot import keyboards
    from core.models import BotNotification, Candidature
    from core.models.base import utcnow
    from core.rules.candidature import reply_deadline
    from core.services import candidatures

    sent = 0
    async with sessionmaker() as session:
        rows = (
            await session.scalars(
                select(BotNotification)
                .where(BotNotification.sent_at.is_(None))
                .order_by(BotNotification.id)
                .limit(limit)
            )
        ).all()
        for n in rows:
            if n.kind == "renewal_question":
                cand = await session.get(Candidature, int(str(n.payload["candidature_id"])))
                if cand is not None and cand.relance_le is not None:
                    deadline = reply_deadline(cand.relance_le, settings.renewal_reply_days)
                    try:
                        await bot.send_message(
                            n.telegram_id,
                            t(
                                "bot.renouvellement.question",
                                reference=candidatures.reference(cand.id),
                                type=candidatures.type_label(cand.type),
                                date_limite=f"{deadline:%d/%m/%Y}",
                            ),
                            reply_markup=keyboards.renewal(cand.id),
                        )
                    except Exception:
                        log.warning("notification %s not delivered", n.id)
            n.sent_at = utcnow()
            sent += 1
            await session.commit()
    return sent


async def run_bot(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, stop: asyncio.Event
) -> None:
    bot = make_bot(settings)
    me = await bot.get_me()
    dp = make_dispatcher(sessionmaker, settings, bot_username=me.username)
    await set_commands(bot)

    async def notifications() -> None:
        while not stop.is_set():
            try:
                await deliver_notifications(bot, sessionmaker, settings)
                await push_journal(bot, sessionmaker)
                await delete_expired_messages(bot, sessionmaker)
            except Exception:
                log.exception("notification round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=5)

    from bot.handlers.service_reports import delete_expired_messages
    from bot.journal import push_journal

    # The session is closed here, once the updates in flight are done (InboxDispatcher.settle).
    polling = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, close_bot_session=False)
    )
    notifier = asyncio.create_task(notifications())
    await stop.wait()
    with contextlib.suppress(RuntimeError):  # polling had already ended on its own
        await dp.stop_polling()
    await asyncio.gather(polling, return_exceptions=True)
    await dp.settle()
    notifier.cancel()
    await asyncio.gather(notifier, return_exceptions=True)
    await bot.session.close()


def workflow_data(dp: Dispatcher) -> dict[str, Any]:
    return dict(dp.workflow_data)
