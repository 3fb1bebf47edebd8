"""Benchmark of the candidate bot (issue: candidate journey).

Updates per second through the real Dispatcher and the project's Bot API test server, for a
mix of dialog steps (registration form answers, back, a choice, /statut, /aide), against an
echo bot on the same server. Targets: ≥ 300 updates/s, ratio ≤ 2.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiogram import Bot, Dispatcher, Router  # noqa: E402
from aiogram.client.session.aiohttp import AiohttpSession  # noqa: E402
from aiogram.client.telegram import TelegramAPIServer  # noqa: E402
from aiogram.types import Message  # noqa: E402

from bot.app import make_dispatcher  # noqa: E402
from bot.testserver import BotAPIServer  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db import make_engine, make_sessionmaker, upgrade  # noqa: E402

USERS = 20
ROUNDS = 15


def session_for(server: BotAPIServer) -> AiohttpSession:
    return AiohttpSession(api=TelegramAPIServer.from_base(server.base_url, is_local=False))


def echo_dispatcher() -> Dispatcher:
    router = Router()

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "?")

    dp = Dispatcher()
    dp.include_router(router)
    return dp


def script(i: int) -> list[tuple[str, str]]:
    """One user's mix of steps: the first screens of registration, a back, a cancel, help."""
    return [
        ("text", "/start"),
        ("press", "Créer mon compte"),
        ("press", "Mme"),
        ("text", "Dupré"),
        ("text", "Chloé"),
        ("text", "14/07/1990"),
        ("press", "Retour"),
        ("text", "14/07/1990"),
        ("text", f"u{i}@exemple.test"),
        ("text", "pas un numéro"),
        ("text", "/annuler"),
        ("text", "/aide"),
        ("text", "bonjour"),
        ("text", "/statut"),
        ("text", "/start"),
    ]


async def drive(server: BotAPIServer, bot: Bot, dp: Dispatcher, echo: bool) -> tuple[int, float]:
    sim = server.sim
    for u in range(USERS):
        sim.user(10_000 + u, f"U{u}")
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    steps = 0
    t0 = time.perf_counter()

    async def user(u: int) -> int:
        n = 0
        uid = 10_000 + u
        for kind, arg in script(u) if not echo else [("text", f"m{k}") for k in range(15)]:
            since = len(sim.chat(uid))
            if kind == "text":
                sim.send_text(uid, arg)
            else:
                try:
                    sim.press(uid, arg)
                except LookupError:
                    continue
            while len(sim.chat(uid)) == since or not sim.chat(uid)[-1].from_bot:
                await asyncio.sleep(0.001)
            n += 1
        return n

    counts = await asyncio.gather(*(user(u) for u in range(USERS)))
    steps = sum(counts)
    elapsed = time.perf_counter() - t0
    await dp.stop_polling()
    await asyncio.gather(task, return_exceptions=True)
    return steps, elapsed


async def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        await upgrade(engine)
        settings = Settings(secret_key="b" * 32, storage_dir=Path(tmp) / "files")
        async with BotAPIServer() as server:
            server.add_bot()
            bot = Bot(server.sim.token, session=session_for(server))
            steps, dt = await drive(server, bot, echo_dispatcher(), echo=True)
            echo_rate = steps / dt
            print(f"echo bot: {steps} updates in {dt:.2f} s = {echo_rate:.0f} updates/s")
            await bot.session.close()
        async with BotAPIServer() as server:
            server.add_bot()
            bot = Bot(server.sim.token, session=session_for(server))
            dp = make_dispatcher(
                make_sessionmaker(engine), settings, bot_username=server.sim.username
            )
            steps, dt = await drive(server, bot, dp, echo=False)
            rate = steps / dt
            await bot.session.close()
        await engine.dispose()
    ratio = echo_rate / rate
    print(
        f"aesh bot (dialog mix, {USERS} users): {steps} updates in {dt:.2f} s = "
        f"{rate:.0f} updates/s (target ≥ 300: {'OK' if rate >= 300 else 'MISSED'})"
    )
    print(f"ratio echo/aesh: {ratio:.2f} (target ≤ 2: {'OK' if ratio <= 2 else 'MISSED'})")
    return 0 if rate >= 300 and ratio <= 2 else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
