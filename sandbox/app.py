"""`aesh sandbox`: the whole product on one machine, in one process, without Telegram or a
mail server.

    Bot API test server (port P) ── serves the page, its /sandbox/api and the /_sim/ chat
      ▲ polling                       routes the page uses to act as Telegram users
    real bot (aiogram, bot/app.py) ─► database ◄─ outbox worker ─► local SMTP ─► mailbox
                                                  replies typed on the page ─► mail agent

Everything the product does runs as in production (the same dispatcher, outbox worker,
notification delivery and renewal sweep); only the two channels are replaced.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aiogram import Bot
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import deliver_notifications, make_bot, make_dispatcher, set_commands
from bot.handlers.service_auth import set_service_menu
from bot.testserver import DEFAULT_TOKEN, BotAPIServer, BotSimulator
from core.config import Settings
from core.dates import PARIS
from core.models import BotInbox, BotUpdate, Candidat, ServiceUser
from core.services.storage import FileStore
from sandbox.mailbox import MailStore
from sandbox.personas import SecretFile, base_personas, extra_number, seed
from sandbox.smtp import LocalSmtp
from sandbox.texts import st
from sandbox.web import SandboxState, SandboxWeb

log = logging.getLogger("aesh.sandbox")

BOT_USERNAME = "aesh_bac_a_sable_bot"
BOT_NAME = "AESH (bac à sable)"
NOTIFY_EVERY = 2.0  # seconds; a sweep run from the page wakes the loop at once anyway
OUTBOX_EVERY = 1.0


class SandboxError(Exception):
    """The sandbox cannot start; the message is for the person who ran it."""


@dataclass(frozen=True)
class Options:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("data")
    demo_dir: Path | None = None

    @property
    def demo(self) -> Path:
        return self.demo_dir or self.data_dir / "demo"


def ensure_secret_key(settings: Settings, data_dir: Path, say: Callable[[str], None]) -> Settings:
    """AESH_SECRET_KEY if set; else a key made once and kept in `data_dir` (mode 0600)."""
    if settings.secret_key:
        return settings
    path = data_dir / "secret_key"
    key = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
    if not key:
        data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(key + "\n")
        say(st("cli.cle_creee", path=str(path)))
    return settings.model_copy(update={"secret_key": key})


async def load_demo(settings: Settings, folder: Path) -> None:
    """The demo department, when the database has no decision yet (what `aesh demo-load
    --if-empty` does, with its 41 h work-time reference)."""
    from aesh.cli import cmd_demo_load

    args = argparse.Namespace(dir=str(folder), if_empty=True, seed=1)
    if await cmd_demo_load(args, settings) != 0:
        raise SandboxError(st("cli.demo_echec"))


async def ensure_cartouche(sessionmaker: async_sessionmaker[AsyncSession], dep: str) -> None:
    """A letterhead for the demo department, when none was set: without it no PV can be
    made, and a PV is one of the first things a gestionnaire tries."""
    from core.services import parametres

    async with sessionmaker() as session:
        if parametres.missing_cartouche_fields(await parametres.cartouche(session, dep)):
            champs = {f: st(f"cartouche.{f}", departement=dep) for f in parametres.CARTOUCHE_FIELDS}
            await parametres.set_cartouche(session, dep, dict(champs))
            await session.commit()


def _local_url(host: str, port: int) -> str:
    # A wildcard address is where one listens, not where one connects.
    connect = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    if ":" in connect:
        connect = f"[{connect}]"
    return f"http://{connect}:{port}"


async def _notifications(
    bot: Bot, state: SandboxState, stop: asyncio.Event, wake: asyncio.Event
) -> None:
    while not stop.is_set():
        wake.clear()
        try:
            await deliver_notifications(bot, state.sessionmaker, state.settings)
        except Exception:
            log.exception("notification round failed")
        stopping = asyncio.create_task(stop.wait())
        woken = asyncio.create_task(wake.wait())
        await asyncio.wait(
            {stopping, woken}, timeout=NOTIFY_EVERY, return_when=asyncio.FIRST_COMPLETED
        )
        for task in (stopping, woken):
            task.cancel()


async def _reopen_known_chats(
    sessionmaker: async_sessionmaker[AsyncSession], sim: BotSimulator, state: SandboxState
) -> None:
    """Telegram remembers who started a bot; this in-memory server forgets at each restart,
    and would refuse the bot's messages (renewal questions) to people of earlier runs. The
    extra candidates made on the page in those runs come back in the persona list."""
    async with sessionmaker() as session:
        ids = set(
            await session.scalars(
                select(Candidat.telegram_id).where(Candidat.telegram_id.is_not(None))
            )
        )
        ids |= set(
            await session.scalars(
                select(ServiceUser.telegram_id).where(ServiceUser.telegram_id.is_not(None))
            )
        )
    for user_id in sorted(i for i in ids if i is not None):
        number = extra_number(user_id)
        if number is not None:
            state.restore_candidate(number)
        persona = state.persona(user_id)
        if persona is not None:
            sim.user(user_id, persona.first_name, language_code="fr")
        elif user_id not in {u.id for u in sim.users()}:
            sim.user(user_id, st("personnages.inconnu_nom", id=user_id), language_code="fr")
        sim.state.chat(user_id).started = True


async def _forget_update_ids(sessionmaker: async_sessionmaker[AsyncSession], bot_id: int) -> None:
    """The in-memory Bot API server numbers updates from 1 again at each start, and the bot
    drops an update whose id it has recorded (redelivery guard): the records of an earlier
    run of this server would swallow the new run's first updates. Updates the last run
    kept unhandled (bot.inbox) belong to that run's server and chats: dropped too."""
    async with sessionmaker() as session:
        await session.execute(delete(BotUpdate).where(BotUpdate.bot_id == bot_id))
        await session.execute(delete(BotInbox).where(BotInbox.bot_id == bot_id))
        await session.commit()


async def _daily_sweep(state: SandboxState, stop: asyncio.Event) -> None:
    """The production sweep at 06:00, but not at start-up as `aesh run` does: a first visit
    would otherwise open on a mailbox full of the demo candidates' renewal questions. The
    page's "Lancer la relance" runs it on demand."""
    from aesh.commands.run import SWEEP_AT, seconds_until
    from core.services import candidatures

    while not stop.is_set():
        delay = seconds_until(SWEEP_AT, datetime.now(PARIS))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        if stop.is_set():
            return
        try:
            async with state.sessionmaker() as session:
                await candidatures.renewal_sweep(session, state.settings, state.store)
                await session.commit()
        except Exception:
            log.exception("renewal sweep failed")
        state.poke()


async def run_sandbox(
    settings: Settings,
    options: Options,
    stop: asyncio.Event,
    *,
    say: Callable[[str], None] = print,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run until `stop` is set. Raises SandboxError when it cannot start."""
    from aesh.cli import Context
    from mail.outbox import run_worker

    settings = ensure_secret_key(settings, options.data_dir, say)
    await load_demo(settings, options.demo)

    async with contextlib.AsyncExitStack() as stack:
        ctx = await stack.enter_async_context(Context(settings))
        await ensure_cartouche(ctx.sessionmaker, settings.departement)
        mailbox = MailStore(options.data_dir / "sandbox-mail")
        mailbox.load()
        smtp = LocalSmtp(lambda sender, rcpts, raw: mailbox.add("sent", sender, rcpts, raw))
        smtp_port = await smtp.start()
        stack.push_async_callback(smtp.stop)

        personas = base_personas(settings.departement)
        state = SandboxState(
            sessionmaker=ctx.sessionmaker,
            settings=settings,
            store=FileStore(settings.storage_dir),
            mailbox=mailbox,
            personas=personas,
            secrets={},
            bot_username=BOT_USERNAME,
        )
        server = BotAPIServer(options.host, options.port, routes=SandboxWeb(state).routes())
        sim = server.add_bot(DEFAULT_TOKEN, username=BOT_USERNAME, first_name=BOT_NAME)
        try:
            await server.start()
        except OSError as err:
            raise SandboxError(
                st("cli.port_occupe", host=options.host, port=options.port, raison=err.strerror)
            ) from None
        stack.push_async_callback(server.stop)
        url = _local_url(options.host, server.port)

        settings = settings.model_copy(
            update={
                "bot_token": DEFAULT_TOKEN,
                "telegram_api": url,
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp_port,
                "smtp_tls": "none",
                "smtp_user": None,
                "smtp_password": None,
                "imap_host": None,
            }
        )
        state.settings = settings
        secret_file = SecretFile(options.data_dir / "sandbox-personas.json")
        state.secrets = await seed(ctx.sessionmaker, settings, personas, secret_file)
        for persona in personas:
            sim.user(persona.user_id, persona.first_name, language_code="fr")
        await _reopen_known_chats(ctx.sessionmaker, sim, state)
        await _forget_update_ids(ctx.sessionmaker, sim.bot_id)

        bot = make_bot(settings)
        stack.push_async_callback(bot.session.close)
        dp = make_dispatcher(ctx.sessionmaker, settings, bot_username=BOT_USERNAME)
        await set_commands(bot)
        for persona in personas:
            if persona.role is not None:
                await set_service_menu(bot, persona.user_id, persona.role)

        wake = asyncio.Event()
        state.poke = wake.set
        tasks = [
            asyncio.create_task(
                # The session is closed by the stack, after the updates in flight are done.
                dp.start_polling(
                    bot, handle_signals=False, polling_timeout=10, close_bot_session=False
                )
            ),
            asyncio.create_task(_notifications(bot, state, stop, wake)),
            asyncio.create_task(run_worker(ctx.sessionmaker, settings, stop, OUTBOX_EVERY)),
            asyncio.create_task(_daily_sweep(state, stop)),
        ]
        say(st("cli.pret", url=url))
        if on_ready is not None:
            on_ready(url)
        done_task = asyncio.create_task(stop.wait())
        await asyncio.wait([done_task, *tasks], return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        with contextlib.suppress(RuntimeError):  # polling had already ended on its own
            await dp.stop_polling()
        await asyncio.gather(*tasks, done_task, return_exceptions=True)
        await dp.settle()
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("sandbox component stopped", exc_info=task.exception())
