"""The inbox: an update received but not yet handled when the bot stops (a crash, a
restart) is handled at the next start; one handled, or failed, leaves no trace there."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select

from bot.app import make_dispatcher
from core.models import BotInbox, BotUpdate
from tests.bot.conftest import Person, Running, start_bot

Handler = Callable[[Any, dict[str, Any]], Awaitable[Any]]


async def _inbox(running: Running) -> list[int]:
    async with running.sessionmaker() as s:
        return list((await s.scalars(select(BotInbox.update_id))).all())


async def test_an_update_in_flight_when_the_bot_stops_is_handled_at_the_next_start(
    running: Running,
) -> None:
    p = Person(running, 3301)
    await p.say("/start")
    assert await _inbox(running) == []  # handled: gone from the inbox
    entered = asyncio.Event()

    async def stuck(handler: Handler, event: Any, data: dict[str, Any]) -> Any:
        if event.message is not None and event.message.text == "/aide":
            entered.set()
            await asyncio.Event().wait()  # the process dies here
        return await handler(event, data)

    # As in production, updates are handled as tasks: the next batch is asked for (and this
    # one confirmed to Telegram, which will never send it again) while it is handled.
    await running.dp.stop_polling()
    await asyncio.gather(running.task, return_exceptions=True)
    dp = make_dispatcher(running.sessionmaker, running.settings, bot_username=running.sim.username)
    dp.update.outer_middleware(stuck)  # inside the unit of work
    polling = asyncio.create_task(
        dp.start_polling(running.bot, handle_signals=False, polling_timeout=1)
    )
    running.sim.send_text(p.id, "/aide")
    await asyncio.wait_for(entered.wait(), 5)
    await running.sim.wait_handled()  # confirmed to Telegram
    kept = await _inbox(running)
    assert len(kept) == 1  # kept before being handled
    polling.cancel()  # the crash
    await asyncio.gather(polling, return_exceptions=True)
    await running.bot.session.close()
    assert await _inbox(running) == kept  # nothing of the update was applied, it stays

    running.bot, running.dp, running.task = await start_bot(
        running.server, running.sessionmaker, running.settings
    )
    answer = await running.sim.wait_for_bot(p.id, lambda m: "aide" in (m.content or "").lower())
    assert answer.content
    await running.sim.wait_handled()
    assert await _inbox(running) == []
    async with running.sessionmaker() as s:
        assert await s.get(BotUpdate, (kept[0], running.bot.id)) is not None
    # Handled once: one help answer after the /aide message.
    texts = [m.content or "" for m in running.sim.chat(p.id)]
    after = texts[texts.index("/aide") + 1 :]
    assert len(after) == 1
    await p.say("/statut")  # and the bot goes on


async def test_a_failed_update_leaves_the_inbox(running: Running) -> None:
    p = Person(running, 3302)

    async def broken(handler: Handler, event: Any, data: dict[str, Any]) -> Any:
        if event.message is not None and event.message.text == "/aide":
            raise RuntimeError("boom")
        return await handler(event, data)

    running.dp.update.outer_middleware(broken)
    answer = await p.say("/aide")
    assert "boom" not in (answer.content or "")  # the user gets the apology, not the error
    assert await _inbox(running) == []
    await p.say("/start")
    assert await _inbox(running) == []
