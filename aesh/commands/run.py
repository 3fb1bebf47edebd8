"""`aesh run`: production in one process — bot, mail agent (outbox + IMAP) and the daily
renewal sweep — each part started only when its configuration is present."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from datetime import datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.dates import PARIS
from core.texts import t

log = logging.getLogger("aesh.run")
SWEEP_AT = time(6, 0)  # Europe/Paris: before the service's working day


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = sub.add_parser("run", help=t("cli.aide_run"))
    run.set_defaults(func=cmd_run)


def seconds_until(at: time, now: datetime) -> float:
    target = datetime.combine(now.date(), at, tzinfo=PARIS)
    if target <= now:
        target += timedelta(days=1)
    return (target - now).total_seconds()


async def sweep_daily(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, stop: asyncio.Event
) -> None:
    from core.services import candidatures
    from core.services.storage import FileStore

    store = FileStore(settings.storage_dir)
    while not stop.is_set():
        try:
            async with sessionmaker() as session:
                report = await candidatures.renewal_sweep(session, settings, store)
                await session.commit()
            log.info(
                "renewal sweep: %d asked, %d reminded, %d deleted",
                len(report.asked),
                len(report.reminded),
                len(report.deleted),
            )
        except Exception:
            log.exception("renewal sweep failed; next attempt in one hour")
            delay = 3600.0
        else:
            delay = seconds_until(SWEEP_AT, datetime.now(PARIS))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from aesh.cli import Context

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings.require_secret_key()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Context(settings) as ctx:
        tasks = [asyncio.create_task(sweep_daily(ctx.sessionmaker, settings, stop))]
        if settings.bot_token:
            from bot.app import run_bot

            tasks.append(asyncio.create_task(run_bot(ctx.sessionmaker, settings, stop)))
        else:
            log.warning("AESH_BOT_TOKEN not set: no bot")
        if settings.smtp_host:
            from mail.outbox import run_worker

            tasks.append(asyncio.create_task(run_worker(ctx.sessionmaker, settings, stop)))
        else:
            log.warning("AESH_SMTP_HOST not set: mails stay in the outbox")
        if settings.imap_host:
            from core.services.storage import FileStore
            from mail.reader import run_reader

            tasks.append(
                asyncio.create_task(
                    run_reader(ctx.sessionmaker, settings, FileStore(settings.storage_dir), stop)
                )
            )
        else:
            log.warning("AESH_IMAP_HOST not set: replies are not read")
        print(t("cli.run_demarre"))
        _done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        failed = [
            r
            for r in results
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
        ]
        for r in failed:
            log.error("component stopped with %s", type(r).__name__, exc_info=r)
    return 1 if failed else 0
