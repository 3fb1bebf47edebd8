"""The real bot (aiogram Dispatcher + Bot over HTTP) against the project's Bot API test
server, on a real SQLite file with migrations; tests act as people through the simulator."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import make_dispatcher, set_commands
from bot.middlewares import RetryAfter
from bot.session import BotSession
from bot.testserver import BotAPIServer, BotSimulator
from bot.testserver.state import ChatMessage
from core.config import Settings
from core.models import OutboxMail


class QuickSession(BotSession):
    """No 250 ms pause on close: the test server is plain HTTP."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


@dataclass
class Running:
    server: BotAPIServer
    sim: BotSimulator
    bot: Bot
    dp: Dispatcher
    task: asyncio.Task[None]
    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings

    async def restart(self) -> None:
        """Stop polling and start a fresh Dispatcher and Bot, as after a process restart."""
        await self.dp.stop_polling()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.bot.session.close()
        self.bot, self.dp, self.task = await start_bot(
            self.server, self.sessionmaker, self.settings
        )


async def start_bot(
    server: BotAPIServer, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> tuple[Bot, Dispatcher, asyncio.Task[None]]:
    session = QuickSession(api=TelegramAPIServer.from_base(server.base_url, is_local=False))
    session.middleware(RetryAfter())
    bot = Bot(server.sim.token, session=session, default=DefaultBotProperties())
    dp = make_dispatcher(sessionmaker, settings, bot_username=server.sim.username)
    await set_commands(bot)
    # One update at a time: the simulator then knows when an update has been handled.
    task = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, polling_timeout=1, handle_as_tasks=False)
    )
    return bot, dp, task


@pytest.fixture
def bot_settings(tmp_path: Path) -> Settings:
    return Settings(
        secret_key="s" * 32,
        mail_from="aesh@ac-test.fr",
        storage_dir=tmp_path / "files",
        departement="062",
    )


@pytest.fixture
async def running(
    sessionmaker: async_sessionmaker[AsyncSession], bot_settings: Settings
) -> AsyncIterator[Running]:
    server = BotAPIServer()
    server.add_bot()
    await server.start()
    bot, dp, task = await start_bot(server, sessionmaker, bot_settings)
    r = Running(server, server.sim, bot, dp, task, sessionmaker, bot_settings)
    try:
        yield r
    finally:
        await r.dp.stop_polling()
        await asyncio.gather(r.task, return_exceptions=True)
        await r.bot.session.close()
        await server.stop()


class Person:
    """A user of the bot: every call is one action, then waits for the bot's answer."""

    def __init__(self, running: Running, user_id: int, first_name: str = "Chloé") -> None:
        self.r = running
        self.sim = running.sim
        self.id = user_id
        self.sim.user(user_id, first_name)

    async def answer(self) -> ChatMessage:
        await self.sim.wait_handled(timeout=15)
        return await self.sim.wait_for_bot(self.id, quiet=0.0)

    async def say(self, text: str) -> ChatMessage:
        self.sim.send_text(self.id, text)
        return await self.answer()

    async def press(self, label: str) -> ChatMessage:
        self.sim.press(self.id, label)
        return await self.answer()

    async def press_on(self, message_id: int, label: str) -> ChatMessage:
        self.sim.press(self.id, label, message_id=message_id)
        return await self.answer()

    async def upload(self, content: bytes, name: str, mime: str = "application/pdf") -> ChatMessage:
        self.sim.send_document(self.id, content, name, mime)
        return await self.answer()

    @property
    def last(self) -> ChatMessage:
        m = self.sim.last_bot_message(self.id)
        assert m is not None
        return m

    def texts(self) -> list[str]:
        return [m.content or "" for m in self.sim.chat(self.id) if m.from_bot]


async def last_mail(sessionmaker: async_sessionmaker[AsyncSession], kind: str) -> OutboxMail:
    async with sessionmaker() as s:
        row = (
            await s.scalars(
                select(OutboxMail).where(OutboxMail.kind == kind).order_by(OutboxMail.id.desc())
            )
        ).first()
    assert row is not None, f"no {kind} mail queued"
    return row


def link_token(mail: OutboxMail) -> str:
    m = re.search(r"\?start=([A-Za-z0-9_-]+)", mail.body_text)
    assert m, mail.body_text
    return m.group(1)
