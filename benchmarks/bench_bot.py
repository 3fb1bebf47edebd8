"""Benchmark of the candidate bot (issue: candidate journey).

Updates per second through the real Dispatcher and the project's Bot API test server, for a
mix of dialog steps (registration form answers, back, a choice, /statut, /aide), against an
echo bot on the same server. Targets: ≥ 300 updates/s, ratio ≤ 2.

As in production, Telegram is another machine: the test server and the simulated users run
in a process of their own, the bot (aiogram polling over HTTP, the SQLite database) in this
one. Each user acts, waits for the bot's answer in the chat, then acts again; the rate is
measured on the users' side, from the first action to the last answer. Each bot first plays
one wave of users that is not counted (warm-up), then five measured waves; the median wave
is reported.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

USERS = 20
ROUNDS = 15
# A running bot has compiled its statements and templates long ago: the first wave warms up
# and is not counted; the figure is the median of the measured waves.
WARMUP = 1
WAVES = 5
ANSWER_TIMEOUT = 30.0


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


def echo_script(i: int) -> list[tuple[str, str]]:
    return [("text", f"m{k}") for k in range(ROUNDS)]


# --------------------------------------------------------------------- Telegram's side


def telegram_side(conn: Connection, kind: str) -> None:
    """Child process: the Bot API test server and the users, until one run is done."""
    asyncio.run(_telegram_side(conn, kind))


async def _telegram_side(conn: Connection, kind: str) -> None:
    from bot.testserver import BotAPIServer

    loop = asyncio.get_running_loop()
    async with BotAPIServer() as server:
        sim = server.add_bot()
        for u in range(USERS * (WARMUP + WAVES)):
            sim.user(10_000 + u, f"U{u}")
        conn.send((server.base_url, sim.token, sim.username))
        steps = script if kind == "aesh" else echo_script
        # One wave per "go": fresh users each time, so every wave plays the same journey.
        while (wave := await loop.run_in_executor(None, conn.recv)) != "stop":
            users = range(wave * USERS, (wave + 1) * USERS)
            cpu0 = time.process_time()
            t0 = time.perf_counter()
            counts = await asyncio.gather(*(_user(sim, u, steps(u)) for u in users))
            elapsed = time.perf_counter() - t0
            conn.send(
                (
                    sum(c[0] for c in counts),
                    sum(c[1] for c in counts),
                    elapsed,
                    time.process_time() - cpu0,
                )
            )


async def _user(sim: Any, u: int, steps: list[tuple[str, str]]) -> tuple[int, int]:
    """Act, wait until the chat ends with a new bot message, act again."""
    uid = 10_000 + u
    chat = sim.state.chat(uid)
    done = skipped = 0
    for kind, arg in steps:
        since = len(chat.messages)
        if kind == "text":
            sim.send_text(uid, arg)
        else:
            try:
                sim.press(uid, arg)
            except LookupError:
                skipped += 1
                continue
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while len(chat.messages) == since or not chat.messages[-1].from_bot:
            if not await chat.changed.wait(deadline - time.monotonic()):
                raise TimeoutError(f"user {uid}: no answer to {kind} {arg!r}")
        done += 1
    return done, skipped


# --------------------------------------------------------------------- the bot's side


def echo_dispatcher() -> Any:
    from aiogram import Dispatcher, Router
    from aiogram.types import Message

    router = Router()

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "?")

    dp = Dispatcher()
    dp.include_router(router)
    return dp


async def run(kind: str, tmp: Path) -> tuple[int, int, float, float, float]:
    """Waves against a fresh server; the median one: (updates, skipped, s, bot CPU, server CPU)."""
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    from bot.app import make_dispatcher, make_session
    from core.config import Settings
    from core.db import make_engine, make_sessionmaker, upgrade

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=telegram_side, args=(child, kind), daemon=True)
    proc.start()
    loop = asyncio.get_running_loop()
    base_url, token, username = await loop.run_in_executor(None, parent.recv)
    engine = None
    if kind == "echo":
        # The reference: a plain aiogram bot with aiogram's own session.
        session = AiohttpSession(api=TelegramAPIServer.from_base(base_url, is_local=False))
        dp = echo_dispatcher()
    else:
        # The bot as it runs in production (bot.app.make_bot's session).
        session = make_session(base_url)
        engine = make_engine(f"sqlite+aiosqlite:///{tmp / 'bench.db'}")
        await upgrade(engine)
        settings = Settings(secret_key="b" * 32, storage_dir=tmp / "files")
        dp = make_dispatcher(make_sessionmaker(engine), settings, bot_username=username)
    bot = Bot(token, session=session)
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    await asyncio.sleep(0.2)  # the first getUpdates is in
    waves = []
    for wave in range(WARMUP + WAVES):
        cpu0 = time.process_time()
        parent.send(wave)
        steps, skipped, elapsed, server_cpu = await loop.run_in_executor(None, parent.recv)
        if wave >= WARMUP:
            waves.append((steps, skipped, elapsed, time.process_time() - cpu0, server_cpu))
    await dp.stop_polling()
    await asyncio.gather(polling, return_exceptions=True)
    await bot.session.close()
    if engine is not None:
        await engine.dispose()
    parent.send("stop")
    await loop.run_in_executor(None, proc.join, 10)
    return sorted(waves, key=lambda w: w[0] / w[2])[len(waves) // 2]


async def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        e_steps, _, e_dt, e_cpu, e_srv = await run("echo", Path(tmp))
        echo_rate = e_steps / e_dt
        print(
            f"echo bot (median of {WAVES} waves): {e_steps} updates in {e_dt:.2f} s = "
            f"{echo_rate:.0f} updates/s "
            f"(CPU per update: bot {1000 * e_cpu / e_steps:.2f} ms, "
            f"server {1000 * e_srv / e_steps:.2f} ms)"
        )
        steps, skipped, dt, cpu, srv = await run("aesh", Path(tmp))
    rate = steps / dt
    ratio = echo_rate / rate
    print(
        f"aesh bot (dialog mix, {USERS} users, median of {WAVES} waves): "
        f"{steps} updates in {dt:.2f} s = "
        f"{rate:.0f} updates/s (target ≥ 300: {'OK' if rate >= 300 else 'MISSED'}; "
        f"CPU per update: bot {1000 * cpu / steps:.2f} ms, server {1000 * srv / steps:.2f} ms"
        + (f"; {skipped} presses found no button" if skipped else "")
        + ")"
    )
    print(f"ratio echo/aesh: {ratio:.2f} (target ≤ 2: {'OK' if ratio <= 2 else 'MISSED'})")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, cpus: {os.cpu_count()}")
    return 0 if rate >= 300 and ratio <= 2 else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
