"""Benchmark of the AGESH reports (issue: core engine).

National scale (≈300,000 decisions, 400,000 accompaniments) in SQLite: the time of the
coverage + anomalies + PIAL reports for the whole data set, against the time plain `sqlite3`
takes to read the same rows (a SELECT of the columns used, fetched in Python).
Department scale (1 %): p50/p95 of one coverage report restricted to one secteur.
Targets: ratio ≤ 3, national total < 10 s, department p95 < 100 ms, peak memory < 2 GB.

The data are synthetic, from the project's seeded generator (`aesh demo-data`), and cached
under `bench-data/` so that a second run only measures.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sqlite3
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.dates import SchoolYear  # noqa: E402
from core.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from core.demo_data import generate  # noqa: E402
from core.perimeter import Perimeter  # noqa: E402
from core.services import reports  # noqa: E402
from core.services.imports import KINDS, import_file  # noqa: E402

SEED = 20261123
ANNEE = 2025
YEAR = SchoolYear(ANNEE)

# What the three reports read, column for column (see core/repositories/agesh.py).
BASELINE_QUERIES = [
    # coverage
    "SELECT id, eleve_id, type, heures, debut, fin FROM decisions "
    "WHERE debut <= :fin AND fin >= :debut",
    "SELECT eleve_id, rne, debut, fin FROM scolarisations",
    "SELECT ad.decision_id, a.id, a.mission_id, a.rne, a.debut, a.fin, a.heures, a.maintien, "
    "a.previsionnel FROM accompagnement_decisions ad JOIN accompagnements a "
    "ON a.id = ad.accompagnement_id",
    # anomalies
    "SELECT id, mission_id, rne, debut, fin, heures, maintien, previsionnel FROM accompagnements "
    "WHERE debut <= :fin AND fin >= :debut",
    "SELECT accompagnement_id, decision_id FROM accompagnement_decisions",
    "SELECT id, eleve_id, type, heures, debut, fin FROM decisions",
    "SELECT eleve_id, rne, debut, fin FROM scolarisations",
    "SELECT id, dossier_etat FROM eleves",
    "SELECT m.id, m.aesh_id, m.nature, m.debut, m.fin, m.heures, m.actif, a.actif, "
    "m.previsionnel, m.contrat FROM missions m JOIN aesh a ON a.id = m.aesh_id",
    "SELECT id, mission_id, rne, debut, fin, heures, maintien, previsionnel FROM accompagnements",
    # pial
    "SELECT rne, departement FROM pials",
    "SELECT rne, pial_rne FROM etablissements WHERE pial_rne IS NOT NULL",
    "SELECT id, eleve_id, type, heures, debut, fin FROM decisions "
    "WHERE debut <= :fin AND fin >= :debut",
    "SELECT eleve_id, rne, debut, fin FROM scolarisations",
    "SELECT mission_id, pial_rne, heures FROM affectations WHERE annee = :annee",
    "SELECT m.id, m.aesh_id, m.nature, m.debut, m.fin, m.heures, m.actif, a.actif, "
    "m.previsionnel, m.contrat FROM missions m JOIN aesh a ON a.id = m.aesh_id",
]


async def build(scale: str, folder: Path) -> Path:
    """Generate and import the data set once; later runs reuse the database."""
    db = folder / "aesh.db"
    done = folder / ".imported"
    if done.exists() and db.exists():
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


def baseline(db: Path) -> float:
    params = {"debut": YEAR.debut.isoformat(), "fin": YEAR.fin.isoformat(), "annee": YEAR.label}
    con = sqlite3.connect(db)
    t0 = time.perf_counter()
    n = 0
    for q in BASELINE_QUERIES:
        n += len(con.execute(q, {k: v for k, v in params.items() if f":{k}" in q}).fetchall())
    elapsed = time.perf_counter() - t0
    con.close()
    print(f"  plain sqlite3 read of the same rows: {n} rows in {elapsed:.2f} s")
    return elapsed


async def national(db: Path) -> float:
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    sm = make_sessionmaker(engine)
    everything = Perimeter(None)
    total = 0.0
    async with sm() as s:
        for name, fn in (
            ("coverage", lambda: reports.coverage_report(s, everything, YEAR, YEAR.debut)),
            ("anomalies", lambda: reports.anomalies_report(s, everything, YEAR)),
            ("pial", lambda: reports.pial_report(s, everything, YEAR)),
        ):
            t0 = time.perf_counter()
            out = await fn()
            dt = time.perf_counter() - t0
            total += dt
            size = len(out.get("decisions") or out.get("items") or out.get("pials") or [])
            print(f"  report {name}: {dt:.2f} s ({size} rows)")
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
        base = baseline(nat_db)
        total = asyncio.run(national(nat_db))
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
