"""Benchmark of the service commands (issue: service reports in the bot).

1. PV d'affectation PDFs per second, produced one after the other in one session, as
   `/pv` does (core.services.documents.pv_affectation). Target ≥ 100 PV/s.
2. Latency of `/couverture` for a whole-department gestionnaire at department scale, through
   the real bot: aiogram Dispatcher + Bot over HTTP against the project's Bot API test
   server, from the moment the user's message is sent to the moment the bot's answer reaches
   the chat. 50 requests after 3 warm-up ones. Target p95 < 100 ms.
   Every request is a new `/couverture` command (first page, no filter), one after the other
   from the same chat; nothing is cached between them: each computes the coverage report
   afresh, as the product does for every list it shows. The same is then measured for a
   gestionnaire narrowed to the largest secteur. Besides wall time, the process CPU time of
   each request is shown (bot, test server and SQLite threads: they share this process), a
   figure that depends less on what else the shared machine runs; the load average is
   printed before and after.

Data: the seeded department data set (`core.demo_data.generate("departement", …)`) for the
current school year, imported with `core.services.imports.import_file` per kind; cached under
`bench-data/service-departement/` (rebuilt when the school year changes). Each run works on
a copy, so the agent enrolled here never lands in the cache.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyotp  # noqa: E402
from aiogram import Bot  # noqa: E402
from aiogram.client.default import DefaultBotProperties  # noqa: E402
from aiogram.client.session.aiohttp import AiohttpSession  # noqa: E402
from aiogram.client.telegram import TelegramAPIServer  # noqa: E402
from sqlalchemy import select  # noqa: E402

from bot.app import make_dispatcher  # noqa: E402
from bot.testserver import BotAPIServer  # noqa: E402
from core.config import Settings  # noqa: E402
from core.dates import SchoolYear  # noqa: E402
from core.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from core.demo_data import generate  # noqa: E402
from core.models import Accompagnement, Etablissement, ServiceUser  # noqa: E402
from core.perimeter import Perimeter  # noqa: E402
from core.services import access, documents, parametres  # noqa: E402
from core.services.imports import KINDS, import_file  # noqa: E402

SEED = 20261123
DEP = "062"
REFERENCE = 41.0  # hours of a 100 % contract, as `aesh demo-load` sets it
PV_TARGET = 100.0  # PV per second
P95_TARGET = 100.0  # ms
CARTOUCHE = {
    "academie": "Académie de Lille",
    "direction": "DSDEN du Pas-de-Calais",
    "service": "Service départemental de l'école inclusive",
    "adresse": "20 boulevard de la Liberté",
    "code_postal": "62000",
    "commune": "Arras",
    "telephone": "03 21 00 00 00",
    "email": "ce.ia62-ei@ac-lille.fr",
    "signataire": "Jeanne Dupont",
    "qualite_signataire": "Inspectrice d'académie",
}


async def build(folder: Path, year: SchoolYear) -> Path:
    db = folder / "aesh.db"
    done = folder / f".imported-{year.label}"
    if done.exists() and db.exists():
        # Built by an earlier version: brought to the current schema, as `aesh run` does.
        engine = make_engine(f"sqlite+aiosqlite:///{db}")
        await upgrade(engine)
        await engine.dispose()
        return db
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    csv_dir = folder / "csv"
    t0 = time.perf_counter()
    counts = generate("departement", SEED, csv_dir, year.start_year)
    print(f"  generated the department data in {time.perf_counter() - t0:.1f} s: {counts}")
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    await upgrade(engine)
    sm = make_sessionmaker(engine)
    async with sm() as session:
        deps = set(await session.scalars(select(Etablissement.departement).distinct())) | {DEP}
        for dep in sorted(deps):
            await parametres.set_reference(session, dep, year, REFERENCE)
        await session.commit()
    for kind in KINDS:
        path = csv_dir / f"{kind}.csv"
        if not path.exists():
            continue
        async with sm() as session:
            await import_file(session, kind, path)
            await session.commit()
    async with sm() as session:
        await parametres.set_cartouche(session, DEP, dict(CARTOUCHE))
        await session.commit()
    await engine.dispose()
    done.touch()
    return db


async def enrol(
    db: Path, settings: Settings, telegram_id: int, secteurs: list[str] | None = None
) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    sm = make_sessionmaker(engine)
    now = datetime.now(UTC)
    async with sm() as s:
        code = await access.invite(s, settings, "gestionnaire", DEP, secteurs, now=now)
        enrolment = await access.redeem(s, settings, code, telegram_id, now=now)
        user = await access.user_by_telegram(s, telegram_id)
        assert user is not None and enrolment.otpauth_uri is not None
        user.nom, user.prenom, user.email = "Agent", "Bench", "agent.bench@ac-lille.fr"
        secret = pyotp.parse_uri(enrolment.otpauth_uri).secret
        await access.confirm_totp(s, settings, user, pyotp.TOTP(secret).at(now), now=now)
        await s.commit()
    await engine.dispose()


async def pv_rate(db: Path, count: int) -> tuple[float, int]:
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    sm = make_sessionmaker(engine)
    async with sm() as s:
        ids = list(
            await s.scalars(
                select(Accompagnement.id)
                .join(Etablissement, Etablissement.rne == Accompagnement.rne)
                .where(Etablissement.departement == DEP)
                .order_by(Accompagnement.id)
                .limit(count)
            )
        )
        issuer = (await s.scalars(select(ServiceUser).limit(1))).first()
        perimeter = Perimeter(DEP)
        for acc_id in ids[:5]:  # fonts and statements prepared once per process
            await documents.pv_affectation(s, perimeter, acc_id, issuer=issuer)
        t0, c0 = time.perf_counter(), time.process_time()
        size = 0
        for acc_id in ids:
            size += len(await documents.pv_affectation(s, perimeter, acc_id, issuer=issuer))
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    await engine.dispose()
    print(
        f"  {len(ids)} PV in {elapsed:.2f} s ({cpu:.2f} s of CPU, i.e. "
        f"{len(ids) / cpu:.0f} PV per CPU-second), {size / max(1, len(ids)) / 1024:.0f} KiB each"
    )
    return len(ids) / elapsed, len(ids)


class QuickSession(AiohttpSession):
    """No 250 ms pause on close: the test server is plain HTTP."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


async def largest_secteur(db: Path) -> str:
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    async with make_sessionmaker(engine)() as s:
        from sqlalchemy import func

        from core.models import Eleve

        secteur = await s.scalar(
            select(Eleve.secteur)
            .where(Eleve.departement == DEP)
            .group_by(Eleve.secteur)
            .order_by(func.count().desc())
            .limit(1)
        )
    await engine.dispose()
    return str(secteur)


async def report_only(db: Path, perimeter: Perimeter, runs: int) -> tuple[float, float]:
    """p95 of the coverage report alone, in wall and CPU milliseconds (no bot around it)."""
    from core.dates import today_paris
    from core.services import reports

    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    wall, cpu = [], []
    async with make_sessionmaker(engine)() as s:
        for i in range(runs + 3):
            t0, c0 = time.perf_counter(), time.process_time()
            await reports.coverage_report(s, perimeter, SchoolYear.current(), today_paris())
            if i >= 3:
                wall.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
    await engine.dispose()
    return statistics.quantiles(wall, n=20)[18], statistics.quantiles(cpu, n=20)[18]


async def couverture_latency(
    db: Path, settings: Settings, runs: int, users: list[int]
) -> dict[int, list[tuple[float, float]]]:
    """(wall, process CPU) seconds of each request, by user."""
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    sm = make_sessionmaker(engine)
    server = BotAPIServer()
    server.add_bot()
    await server.start()
    session = QuickSession(api=TelegramAPIServer.from_base(server.base_url, is_local=False))
    bot = Bot(server.sim.token, session=session, default=DefaultBotProperties())
    dp = make_dispatcher(sm, settings, bot_username=server.sim.username)
    task = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, polling_timeout=1, handle_as_tasks=False)
    )
    sim = server.sim
    times: dict[int, list[tuple[float, float]]] = {}
    try:
        for user in users:
            sim.user(user, "Agent")
            times[user] = []
            decisions = ""
            for i in range(runs + 3):
                t0, c0 = time.perf_counter(), time.process_time()
                sim.send_text(user, "/couverture")
                answer = await sim.wait_for_bot(user, timeout=30, quiet=0.0)
                elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
                await sim.wait_handled(timeout=30)
                if i >= 3:
                    times[user].append((elapsed, cpu))
                decisions = (answer.content or "").splitlines()[-2]
            print(f"  agent {user}: {decisions}")
    finally:
        await dp.stop_polling()
        await asyncio.gather(task, return_exceptions=True)
        await bot.session.close()
        await server.stop()
        await engine.dispose()
    return times


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT / "bench-data" / "service-departement"))
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--pv", type=int, default=300, help="how many PV to produce")
    ap.add_argument("--part", choices=("all", "pv", "couverture"), default="all")
    args = ap.parse_args()
    year = SchoolYear.current()

    print(f"Department scale ({DEP}, {year.label}):")
    cached = asyncio.run(build(Path(args.data), year))
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "aesh.db"
        shutil.copy(cached, db)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=f"sqlite+aiosqlite:///{db}",
            secret_key="bench-secret-key-" + "x" * 16,
            storage_dir=Path(tmp) / "files",
            departement=DEP,
        )
        secteur = asyncio.run(largest_secteur(db))
        asyncio.run(enrol(db, settings, 7001))
        asyncio.run(enrol(db, settings, 7002, [secteur]))
        print(f"  load average before: {_load()}")

        if args.part in ("all", "pv"):
            rate, n = asyncio.run(pv_rate(db, args.pv))
            print(
                f"  PV d'affectation: {rate:.0f} PV/s over {n} (target ≥ {PV_TARGET:.0f}/s, "
                f"ratio {rate / PV_TARGET:.2f}: {'OK' if rate >= PV_TARGET else 'MISSED'})"
            )
            ok = ok and rate >= PV_TARGET

        if args.part in ("all", "couverture"):
            times = asyncio.run(couverture_latency(db, settings, args.runs, [7001, 7002]))
            for user, label, perimeter in (
                (7001, "whole department", Perimeter(DEP)),
                (7002, f"secteur {secteur!r}", Perimeter(DEP, frozenset({secteur}))),
            ):
                ms = [wall * 1000 for wall, _ in times[user]]
                cpu = [c * 1000 for _, c in times[user]]
                q95, cpu95 = statistics.quantiles(ms, n=20)[18], statistics.quantiles(cpu, n=20)[18]
                alone, alone_cpu = asyncio.run(report_only(db, perimeter, 20))
                print(
                    f"  /couverture, {label}, through the test server: p50 "
                    f"{statistics.median(ms):.1f} ms, p95 {q95:.1f} ms, max {max(ms):.1f} ms over "
                    f"{len(ms)} (target p95 < {P95_TARGET:.0f} ms, ratio {q95 / P95_TARGET:.2f}: "
                    f"{'OK' if q95 < P95_TARGET else 'MISSED'}); process CPU per request p50 "
                    f"{statistics.median(cpu):.1f} ms, p95 {cpu95:.1f} ms; the coverage report "
                    f"alone: p95 {alone:.1f} ms wall, "
                    f"{alone_cpu:.1f} ms CPU"
                )
                if user == 7001:
                    ok = ok and q95 < P95_TARGET
        print(f"  load average after: {_load()}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
