"""The update's unit of work: the dialog row and the update id are written in the update's
own transaction (on SQLite straight on the session's driver connection), in the format
SQLAlchemy itself reads back, and nothing is written when the handler fails."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import Chat, Message, Update, User
from sqlalchemy import select

from bot.dialogs import engine
from bot.middlewares import UnitOfWork
from core.models import BotFsm, BotUpdate
from tests.bot.conftest import Person, Running


async def test_a_step_is_stored_as_sqlalchemy_reads_it(running: Running) -> None:
    p = Person(running, 3101)
    await p.say("/start")
    await p.press("Créer mon compte")
    await p.press("Mme")
    key = StorageKey(bot_id=running.bot.id, chat_id=p.id, user_id=p.id)
    async with running.sessionmaker() as s:
        row = await s.get(BotFsm, running.dp.storage.keys.build(key))  # type: ignore[attr-defined]
        assert row is not None
        assert row.state == engine.state_of("inscription", "nom")
        assert row.data["values"] == {"civilite": "Mme"}
        assert isinstance(row.updated_at, datetime)
        ids = (await s.scalars(select(BotUpdate.update_id).order_by(BotUpdate.update_id))).all()
        stamps = (await s.scalars(select(BotUpdate.processed_at))).all()
    assert len(ids) == 3 and all(isinstance(x, datetime) for x in stamps)
    # The storage reads back what the unit of work wrote, outside any update too.
    assert await running.dp.storage.get_state(key) == engine.state_of("inscription", "nom")
    assert (await running.dp.storage.get_data(key))["values"] == {"civilite": "Mme"}


def _message_update(update_id: int, user_id: int, text: str) -> Update:
    user = User(id=user_id, is_bot=False, first_name="X")
    message = Message(
        message_id=1,
        date=datetime.now(),
        chat=Chat(id=user_id, type="private"),
        from_user=user,
        text=text,
    )
    return Update(update_id=update_id, message=message)


async def test_a_failed_handler_writes_neither_state_nor_update_id(running: Running) -> None:
    from aiogram.dispatcher.middlewares.user_context import EVENT_CONTEXT_KEY, EventContext

    uow = UnitOfWork(running.sessionmaker, running.dp.fsm)
    update = _message_update(900_001, 3102, "x")

    async def failing(event: object, data: dict[str, object]) -> None:
        state = data["state"]
        await state.set_state("form:inscription:nom")  # type: ignore[attr-defined]
        await state.set_data({"nonce": 7})  # type: ignore[attr-defined]
        raise RuntimeError("boom")

    context = EventContext(chat=Chat(id=3102, type="private"), user=update.message.from_user)  # type: ignore[union-attr]
    with pytest.raises(RuntimeError):
        await uow(failing, update, {"bot": running.bot, EVENT_CONTEXT_KEY: context})
    async with running.sessionmaker() as s:
        assert await s.get(BotUpdate, (900_001, running.bot.id)) is None
        assert (await s.scalars(select(BotFsm).where(BotFsm.key.contains("3102")))).all() == []

    async def fine(event: object, data: dict[str, object]) -> None:
        assert data["raw_state"] is None
        await data["state"].set_state("form:inscription:nom")  # type: ignore[attr-defined]

    await uow(fine, update, {"bot": running.bot, EVENT_CONTEXT_KEY: context})
    handled: list[int] = []

    async def again(event: object, data: dict[str, object]) -> None:
        handled.append(1)

    # The same update delivered again is dropped; the state written the first time stays.
    await uow(again, update, {"bot": running.bot, EVENT_CONTEXT_KEY: context})
    assert handled == []
    key = StorageKey(bot_id=running.bot.id, chat_id=3102, user_id=3102)
    assert await running.dp.storage.get_state(key) == "form:inscription:nom"


async def test_the_handler_session_commits_with_the_step_or_not_at_all(running: Running) -> None:
    """On SQLite the handler's session is bound to the update's connection and only used on
    demand: an object merely added is written with the step; a failure after an ORM write
    leaves nothing; a handler's own commit mid-step keeps the rest on the same connection."""
    from aiogram.dispatcher.middlewares.user_context import EVENT_CONTEXT_KEY, EventContext

    from core.models import BotNotification

    uow = UnitOfWork(running.sessionmaker, running.dp.fsm)
    chat = Chat(id=3103, type="private")

    def run(update_id: int, handler: object) -> object:
        update = _message_update(update_id, 3103, "x")
        context = EventContext(chat=chat, user=update.message.from_user)  # type: ignore[union-attr]
        return uow(handler, update, {"bot": running.bot, EVENT_CONTEXT_KEY: context})  # type: ignore[arg-type]

    def note(kind: str) -> BotNotification:
        return BotNotification(telegram_id=3103, kind=kind, payload={})

    async def adds_only(event: object, data: dict[str, object]) -> None:
        data["session"].add(note("added"))  # type: ignore[attr-defined]

    async def writes_then_fails(event: object, data: dict[str, object]) -> None:
        data["session"].add(note("lost"))  # type: ignore[attr-defined]
        await data["session"].flush()  # type: ignore[attr-defined]
        raise RuntimeError("boom")

    async def commits_midway(event: object, data: dict[str, object]) -> None:
        session = data["session"]
        session.add(note("first"))  # type: ignore[attr-defined]
        await session.commit()  # type: ignore[attr-defined]
        session.add(note("second"))  # type: ignore[attr-defined]
        await data["state"].set_state("form:inscription:nom")  # type: ignore[attr-defined]

    await run(900_101, adds_only)
    with pytest.raises(RuntimeError):
        await run(900_102, writes_then_fails)
    await run(900_103, commits_midway)
    async with running.sessionmaker() as s:
        kinds = (
            await s.scalars(select(BotNotification.kind).where(BotNotification.telegram_id == 3103))
        ).all()
        assert sorted(kinds) == ["added", "first", "second"]
        assert await s.get(BotUpdate, (900_101, running.bot.id)) is not None
        assert await s.get(BotUpdate, (900_102, running.bot.id)) is None
        assert await s.get(BotUpdate, (900_103, running.bot.id)) is not None
    key = StorageKey(bot_id=running.bot.id, chat_id=3103, user_id=3103)
    assert await running.dp.storage.get_state(key) == "form:inscription:nom"


async def test_a_step_waits_for_a_database_locked_elsewhere_without_stopping_the_bot(
    running: Running, tmp_path: Path
) -> None:
    """The update's statements run on the event loop's thread, never waiting there for a
    lock: while another process holds the write lock, the step waits on the driver's
    thread (the loop keeps running), then completes once the lock is released."""
    p = Person(running, 3104)
    await p.say("/start")
    other = sqlite3.connect(tmp_path / "aesh.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process writing
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        running.sim.press(p.id, "Créer mon compte")
        await asyncio.sleep(0.6)
        assert ticks >= 10  # the loop was not stopped by the wait (about 60 expected)
        async with running.sessionmaker() as s:  # readers are not blocked (WAL)
            done = (await s.scalars(select(BotUpdate.update_id))).all()
        assert len(done) == 1  # /start only: the press waits for the lock
        other.execute("COMMIT")
        await p.answer()
    finally:
        ticker.cancel()
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()
    key = StorageKey(bot_id=running.bot.id, chat_id=p.id, user_id=p.id)
    assert await running.dp.storage.get_state(key) == engine.state_of("inscription", "civilite")
    await p.press("Mme")
    assert await running.dp.storage.get_state(key) == engine.state_of("inscription", "nom")


async def test_inline_sqlite_restores_the_busy_timeout(tmp_path: Path) -> None:
    from core import sqlite_driver
    from core.db import make_engine

    eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        async with eng.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert await sqlite_driver.fetchall(driver, "PRAGMA busy_timeout", ()) == [(10000,)]
            with sqlite_driver.inline(driver):
                assert driver._conn.execute("PRAGMA busy_timeout").fetchone() == (0,)
                assert await sqlite_driver.fetchall(driver, "SELECT 1", ()) == [(1,)]
            assert await sqlite_driver.fetchall(driver, "PRAGMA busy_timeout", ()) == [(10000,)]
    finally:
        await eng.dispose()
