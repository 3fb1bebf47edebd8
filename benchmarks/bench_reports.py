"""Benchmark of the AGESH reports (issue: core engine).

National scale (≈300,000 decisions, 400,000 accompaniments) in SQLite: the time of the
coverage + anomalies + PIAL reports for the whole data set, against the time plain `sqlite3`
takes to read the same rows: the reports' own SELECT statements, recorded as they reach the
driver and replayed, every row fetched in Python.
Department scale (1 %): p50/p95 of one coverage report restricted to one secteur.
Targets: ratio ≤ 3, national total < 10 s, department p95 < 100 ms, peak memory < 2 GB.

The data are synthetic, from the project's seeded generator (`aesh demo-data`), and cached
under `bench-data/` so that a second run only measures.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import resource
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.dates import SchoolYear  # noqa: E402
from core.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from core.demo_data import generate  # noqa: E402
from core.perimeter import Perimeter  # noqa: E402
from core.services import parametres, reports  # noqa: E402
from core.services.imports import KINDS, import_file  # noqa: E402

SEED = 20261123
ANNEE = 2025
YEAR = SchoolYear(ANNEE)
# The generator leaves some missions without HR hours, counting on the usual reference of
# 41 h for 100 % (as `aesh demo-load` sets it): without it they weigh 0 h.
REFERENCE = 41.0


class StatementLog:
    """The SELECT statements a report sends, as the driver receives them (SQL text and
    parameters), so that the baseline reads exactly the same rows and columns."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []

    def __call__(
        self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool
    ) -> None:
        if statement.lstrip()[:6].upper() == "SELECT":
            self.statements.append((statement, parameters))


async def build(scale: str, folder: Path) -> Path:
    """Generate and import the data set once; later runs reuse the database."""
    db = folder / "aesh.db"
    done = folder / ".imported"
    if done.exists() and db.exists():
        # Built by an earlier version: brought to the current schema, as `aesh run` does.
        engine = make_engine(f"sqlite+aiosqlite:///{db}")
        await upgrade(engine)
        await engine.dispose()
        return db
    folder.mkdir(parents=True, exist_ok=True)
    csv_dir = folder / "csv"
    t0 = time.perf_counter()
    counts = generate(scale, SEED, csv_dir, ANNEE)
    print(f"  generated {scale} data in {time.perf_counter() - t0:.1f} s: {counts}")
    db.unlink(missing_ok=True)
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    await upgrade(engine)
    sm = make_sessionmaker(engine)
    async with sm() as session:
        for dep in _departements(csv_dir / "etablissements.csv"):
            await parametres.set_reference(session, dep, YEAR, REFERENCE)
        await session.commit()
    for kind in KINDS:
        path = csv_dir / f"{kind}.csv"
        if not path.exists():
            continue
        t0 = time.perf_counter()
        async with sm() as session:
            rep = await import_file(session, kind, path)
            await session.commit()
        print(f"  imported {kind}: {rep.rows} rows in {time.perf_counter() - t0:.1f} s")
    await engine.dispose()
    done.touch()
    return db


def warm(db: Path) -> None:
    """Read the database file once, so that neither side pays for a cold disk cache."""
    with db.open("rb") as f:
        while f.read(1 << 24):
            pass


def _departements(etablissements: Path) -> list[str]:
    """Departments present in the generated référentiel (first three characters of the RNE)."""
    with etablissements.open(encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f, delimiter=";")
        return sorted({row["rne"][:3] for row in rows})


def baseline(db: Path, statements: list[tuple[str, Any]]) -> float:
    """Plain `sqlite3` running the reports' own statements, fetching every row."""
    con = sqlite3.connect(db)
    c0, t0 = time.process_time(), time.perf_counter()
    n = 0
    for sql, params in statements:
        n += len(con.execute(sql, params).fetchall())
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    con.close()
    print(
        f"  plain sqlite3 read of the same rows ({len(statements)} statements): "
        f"{n} rows in {elapsed:.2f} s, cpu {cpu:.2f} s"
    )
    return elapsed


async def national(db: Path, log: StatementLog) -> float:
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    event.listen(engine.sync_engine, "before_cursor_execute", log)
    sm = make_sessionmaker(engine)
    everything = Perimeter(None)
    total = 0.0
    async with sm() as s:
        for name, fn in (
            ("coverage", lambda: reports.coverage_report(s, everything, YEAR, YEAR.debut)),
            ("anomalies", lambda: reports.anomalies_report(s, everything, YEAR)),
            ("pial", lambda: reports.pial_report(s, everything, YEAR)),
        ):
            c0, t0 = time.process_time(), time.perf_counter()
            out = await fn()
            dt = time.perf_counter() - t0
            cpu = time.process_time() - c0
            total += dt
            size = len(out.get("decisions") or out.get("items") or out.get("pials") or [])
            print(f"  report {name}: {dt:.2f} s, cpu {cpu:.2f} s ({size} rows)")
    await engine.dispose()
    return total


async def department(db: Path, runs: int) -> list[float]:
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    sm = make_sessionmaker(engine)
    con = sqlite3.connect(db)
    secteur = con.execute(
        "SELECT secteur FROM eleves GROUP BY secteur ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()[0]
    dep = con.execute("SELECT departement FROM eleves LIMIT 1").fetchone()[0]
    con.close()
    p = Perimeter(dep, frozenset({secteur}))
    times = []
    async with sm() as s:
        for i in range(runs + 3):
            t0 = time.perf_counter()
            out = await reports.coverage_report(s, p, YEAR, YEAR.debut)
            if i >= 3:  # the first runs warm the caches
                times.append(time.perf_counter() - t0)
    print(f"  secteur {secteur!r}: {len(out['decisions'])} decisions per report")
    await engine.dispose()
    return times


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT / "bench-data"))
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--skip-national", action="store_true")
    args = ap.parse_args()
    data = Path(args.data)

    print("Department scale (1 %):")
    dep_db = asyncio.run(build("departement", data / "departement"))
    times = asyncio.run(department(dep_db, args.runs))
    q = statistics.quantiles(times, n=20)
    p50, p95 = statistics.median(times) * 1000, q[18] * 1000
    print(
        f"  coverage of one secteur: p50 {p50:.1f} ms, p95 {p95:.1f} ms "
        f"(target p95 < 100 ms: {'OK' if p95 < 100 else 'MISSED'})"
    )
    ok = p95 < 100
    if not args.skip_national:
        print("National scale:")
        nat_db = asyncio.run(build("national", data / "national"))
        warm(nat_db)
        log = StatementLog()
        total = asyncio.run(national(nat_db, log))
        base = baseline(nat_db, log.statements)
        ratio = total / base
        print(
            f"  coverage + anomalies + PIAL: {total:.2f} s (target < 10 s: "
            f"{'OK' if total < 10 else 'MISSED'})"
        )
        print(
            f"  ratio to plain sqlite3 read: {ratio:.2f} (target ≤ 3: "
            f"{'OK' if ratio <= 3 else 'MISSED'})"
        )
        ok = ok and total < 10 and ratio <= 3
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"Peak memory: {peak:.0f} MB (target < 2048 MB: {'OK' if peak < 2048 else 'MISSED'})")
    return 0 if ok and peak < 2048 else 1


if __name__ == "__main__":
    raise SystemExit(main())
