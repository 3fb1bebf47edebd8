"""A report restricted to a secteur is exactly the filter of the department report."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from core.dates import SchoolYear
from core.db import make_engine, make_sessionmaker, upgrade
from core.perimeter import Perimeter
from core.services.reports import coverage_report, indicateurs_report
from tests.core.builders import World

SECTEURS = ["Arras 1", "Lens 2", "Béthune 3"]
YEAR = SchoolYear(2025)
dates = st.sampled_from(["01/09/2025", "15/10/2025", "01/01/2026", "30/04/2026", "31/08/2026"])


@st.composite
def world_spec(draw: st.DrawFn) -> list[tuple[str, str, str, str, float | None, bool]]:
    n = draw(st.integers(1, 12))
    out = []
    for _ in range(n):
        a, b = sorted([draw(dates), draw(dates)], key=lambda s: s.split("/")[::-1])
        heures = draw(st.sampled_from([None, 6.0, 12.0, 24.0]))
        out.append(
            (draw(st.sampled_from(SECTEURS)), a, b, draw(dates), heures, draw(st.booleans()))
        )
    return out


async def check(spec: list[tuple[str, str, str, str, float | None, bool]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'p.db'}")
        await upgrade(engine)
        async with make_sessionmaker(engine)() as s:
            w = World(s)
            w.etab("0620001A")
            w.aesh("AE1")
            w.mission("M1", "AE1", "01/09/2020", None, heures=41)
            for i, (secteur, debut, fin, acc_start, heures, accompanied) in enumerate(spec):
                w.eleve(f"E{i}", secteur=secteur)
                w.scol(f"E{i}", "0620001A", "01/09/2025", None)
                w.decision(f"D{i}", f"E{i}", debut, fin, heures=heures)
                if accompanied:
                    start = max(debut, acc_start, key=lambda s: s.split("/")[::-1])
                    if start.split("/")[::-1] <= fin.split("/")[::-1]:
                        w.acc(f"A{i}", "M1", f"D{i}", "0620001A", start, fin, heures or 6)
            await w.flush()
            day = YEAR.debut
            whole = await coverage_report(s, Perimeter("062"), YEAR, day)
            for sect in SECTEURS:
                part = await coverage_report(s, Perimeter("062", frozenset({sect})), YEAR, day)
                ids = {f"D{i}" for i, row in enumerate(spec) if row[0] == sect}
                assert part["decisions"] == [
                    r for r in whole["decisions"] if r["decision_id"] in ids
                ]
                ind = await indicateurs_report(s, Perimeter("062", frozenset({sect})), YEAR)
                assert ind["total"] == len(part["decisions"])
        await engine.dispose()


@settings(max_examples=15, deadline=None)
@given(world_spec())
def test_secteur_report_is_the_filter_of_the_department_report(
    spec: list[tuple[str, str, str, str, float | None, bool]],
) -> None:
    asyncio.run(check(spec))
