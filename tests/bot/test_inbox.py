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


async def test_a_stop_lets_the_update_in_flight_finish(running: Running) -> None:
    """`aesh run` stopping (SIGTERM) while an update waits on Telegram: the update ends
    normally (answer sent, applied, out of the inbox), and only then is the session closed;
    aiogram alone would close it under the update, which then failed with an apology."""
    from bot.app import run_bot

    await running.dp.stop_polling()
    await asyncio.gather(running.task, return_exceptions=True)
    p = Person(running, 3303)
    entered, release = asyncio.Event(), asyncio.Event()
    settings = running.settings.model_copy(
        update={"bot_token": running.sim.token, "telegram_api": running.server.base_url}
    )
    made: list[Any] = []
    original = make_dispatcher

    def spy(*args: Any, **kwargs: Any) -> Any:
        dp = original(*args, **kwargs)

        async def slow(handler: Handler, event: Any, data: dict[str, Any]) -> Any:
            if event.message is not None and event.message.text == "/aide":
                entered.set()
                await release.wait()  # a slow Bot API call
            return await handler(event, data)

        dp.update.outer_middleware(slow)
        made.append(dp)
        return dp

    import bot.app as app

    app.make_dispatcher = spy  # type: ignore[assignment]
    stop = asyncio.Event()
    try:
        runner = asyncio.create_task(run_bot(running.sessionmaker, settings, stop))
        running.sim.send_text(p.id, "/aide")
        await asyncio.wait_for(entered.wait(), 10)
        stop.set()
        await asyncio.sleep(0.3)
        assert not runner.done()  # waiting for the update in flight
        release.set()
        await asyncio.wait_for(runner, 15)
    finally:
        app.make_dispatcher = original  # type: ignore[assignment]
    texts = [m.content or "" for m in running.sim.chat(p.id) if m.from_bot]
    assert len(texts) == 1 and "aide" in texts[0].lower()  # the answer, no apology
    assert await _inbox(running) == []
    running.bot, running.dp, running.task = await start_bot(
        running.server, running.sessionmaker, running.settings
    )


async def test_the_inbox_drops_what_it_cannot_hand_out_for_good(running: Running) -> None:
    """At start: an update handed out three times without being handled (it stopped the
    process each time), a row older than two days, an unreadable one are dropped; a fresh
    one is handled."""
    from datetime import timedelta

    from core.models.base import utcnow

    p = Person(running, 3304)
    await p.say("/start")
    await running.dp.stop_polling()
    await asyncio.gather(running.task, return_exceptions=True)
    await running.bot.session.close()
    bot_id = running.bot.id
    payload = (
        '{"update_id": %d, "message": {"message_id": 900, "date": 1700000000, '
        '"chat": {"id": %d, "type": "private"}, "from": {"id": %d, "is_bot": false, '
        '"first_name": "X"}, "text": "/statut"}}'
    )
    async with running.sessionmaker() as s:
        s.add_all(
            [
                BotInbox(
                    update_id=800_001,
                    bot_id=bot_id,
                    payload=payload % (800_001, p.id, p.id),
                    attempts=3,
                ),
                BotInbox(
                    update_id=800_002,
                    bot_id=bot_id,
                    payload=payload % (800_002, p.id, p.id),
                    received_at=utcnow() - timedelta(days=3),
                ),
                BotInbox(update_id=800_003, bot_id=bot_id, payload="{not json"),
            ]
        )
        await s.commit()
    running.bot, running.dp, running.task = await start_bot(
        running.server, running.sessionmaker, running.settings
    )
    await running.sim.wait_handled()
    await running.sim.wait_idle()
    assert await _inbox(running) == []
    async with running.sessionmaker() as s:  # none was handed to the bot
        done = set((await s.scalars(select(BotUpdate.update_id))).all())
    assert not done & {800_001, 800_002, 800_003}
    assert [m.content for m in running.sim.chat(p.id) if m.from_bot][-1] != ""
    await p.say("/statut")  # and the bot goes on
