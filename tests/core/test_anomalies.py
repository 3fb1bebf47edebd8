"""Anomalies 1–8 (domain 3.8): each alone, and none on clean data."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core.dates import SchoolYear
from core.db import make_engine, make_sessionmaker, upgrade
from core.perimeter import Perimeter
from core.services.reports import anomalies_report
from tests.core.builders import World

YEAR = SchoolYear(2025)


def clean(w: World, **over: object) -> None:
    """A clean world: one student schooled all year, a 24 h decision, a 41 h mission."""
    w.pial("0620001A")
    w.etab("0620001A", pial="0620001A")
    w.etab("0620002B", pial="0620001A")
    w.eleve("E1", etat=str(over.get("etat", "actif")))
    w.scol("E1", "0620001A", str(over.get("scol_debut", "01/09/2025")), "31/08/2026")
    w.decision(
        "D1",
        "E1",
        str(over.get("dec_debut", "01/09/2025")),
        str(over.get("dec_fin", "31/08/2026")),
        heures=24,
    )
    w.aesh("AE1", actif=bool(over.get("aesh_actif", True)))
    w.mission(
        "M1",
        "AE1",
        str(over.get("m_debut", "01/09/2025")),
        str(over.get("m_fin", "31/08/2026")),
        heures=float(over.get("m_heures", 41)),
    )  # type: ignore[arg-type]
    w.affectation("M1", "0620001A", "2025-2026")
    w.acc(
        "A1",
        "M1",
        "D1",
        str(over.get("rne", "0620001A")),
        str(over.get("a_debut", "01/09/2025")),
        str(over.get("a_fin", "31/08/2026")),
        float(over.get("a_heures", 24)),  # type: ignore[arg-type]
        maintien=bool(over.get("maintien", False)),
    )


async def run(engine: AsyncEngine, build: Callable[[World], None]) -> dict[str, object]:
    async with make_sessionmaker(engine)() as s:
        w = World(s)
        build(w)
        await w.flush()
        await s.commit()
        return await anomalies_report(s, Perimeter("062"), YEAR)


async def test_clean_data_has_all_zero_counts(engine: AsyncEngine) -> None:
    rep = await run(engine, clean)
    assert rep["counts"] == {str(k): 0 for k in range(1, 9)}
    assert rep["items"] == []


CASES = {
    1: {"m_debut": "01/10/2025", "a_debut": "01/09/2025"},
    2: {"m_fin": "30/06/2026"},
    3: {"dec_debut": "01/10/2025", "a_debut": "01/09/2025"},
    4: {"scol_debut": "01/11/2025"},
    5: {"etat": "gele"},
    6: {"m_heures": 20, "a_heures": 24},
    7: {"aesh_actif": False},
    8: {"dec_fin": "30/06/2026"},
}


@pytest.mark.parametrize("kind", sorted(CASES))
async def test_each_anomaly_alone(engine: AsyncEngine, kind: int) -> None:
    rep = await run(engine, lambda w: clean(w, **CASES[kind]))
    expected = {str(k): 0 for k in range(1, 9)}
    expected[str(kind)] = 1
    assert rep["counts"] == expected, rep["items"]
    item = rep["items"][0]  # type: ignore[index]
    assert item["accompagnement_id"] == "A1" and item["detail"]


async def test_maintien_is_not_anomaly_8(engine: AsyncEngine) -> None:
    rep = await run(engine, lambda w: clean(w, dec_fin="30/06/2026", maintien=True))
    assert rep["counts"]["8"] == 0  # type: ignore[index]


async def test_mission_overloaded_on_some_days_flags_each_accompaniment(
    engine: AsyncEngine,
) -> None:
    def build(w: World) -> None:
        clean(w, a_heures=24)
        w.eleve("E2")
        w.scol("E2", "0620001A", "01/09/2025", "31/08/2026")
        w.decision("D2", "E2", "01/09/2025", "31/08/2026", heures=20)
        w.acc("A2", "M1", "D2", "0620001A", "01/01/2026", "31/01/2026", 20)
        w.acc("A3", "M1", "D2", "0620001A", "01/03/2026", "31/03/2026", 10)

    rep = await run(engine, build)
    flagged = sorted(i["accompagnement_id"] for i in rep["items"] if i["type"] == 6)  # type: ignore[attr-defined, index]
    assert flagged == ["A1", "A2"]  # 24 + 20 > 41 in January; 24 + 10 fits in March


async def test_scolarisation_elsewhere_does_not_hide_type_4_nor_raise_it(
    engine: AsyncEngine,
) -> None:
    def build(w: World) -> None:
        clean(w, scol_debut="01/09/2025")
        w.scol("E1", "0620002B", "01/09/2025", "31/08/2026")  # elsewhere: does not help

    rep = await run(engine, build)
    assert rep["counts"]["4"] == 0  # type: ignore[index]


async def test_type_4_uses_the_union_of_scolarisations(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as s:
        w = World(s)
        w.pial("0620001A")
        w.etab("0620001A", pial="0620001A")
        w.eleve("E1")
        w.scol("E1", "0620001A", "01/09/2025", "31/12/2025")
        w.scol("E1", "0620001A", "01/01/2026", "31/08/2026")
        w.decision("D1", "E1", "01/09/2025", "31/08/2026", heures=24)
        w.aesh("AE1")
        w.mission("M1", "AE1", "01/09/2025", "31/08/2026", heures=41)
        w.acc("A1", "M1", "D1", "0620001A", "01/09/2025", "31/08/2026", 24)
        await w.flush()
        await s.commit()
        rep = await anomalies_report(s, Perimeter("062"), YEAR)
    assert rep["counts"]["4"] == 0


def _two_secteurs(w: World) -> None:
    """M1 (41 h) carries A1 (24 h, E1 in Arras 1) all year and, in January, A2 (20 h, E2 in
    Lens 2); it also carried A0 (30 h) the year before, which the checks never report."""
    clean(w)
    w.eleve("E2", secteur="Lens 2")
    w.scol("E2", "0620002B", "01/09/2025", "31/08/2026")
    w.decision("D2", "E2", "01/09/2025", "31/08/2026", heures=20)
    w.acc("A2", "M1", "D2", "0620002B", "01/01/2026", "31/01/2026", 20)
    w.decision("D0", "E1", "01/09/2024", "31/08/2025", heures=30)
    w.mission("M0", "AE1", "01/09/2024", "31/08/2026", heures=41)
    w.acc("A0", "M0", "D0", "0620001A", "01/09/2024", "31/08/2025", 30)
    w.acc("A9", "M0", "D1", "0620001A", "01/06/2025", "30/09/2025", 30)


async def test_overload_counts_every_accompaniment_of_the_mission_whoever_looks(
    engine: AsyncEngine,
) -> None:
    async with make_sessionmaker(engine)() as s:
        w = World(s)
        _two_secteurs(w)
        await w.flush()
        await s.commit()
        reports = {
            name: await anomalies_report(s, p, YEAR)
            for name, p in (
                ("national", Perimeter(None)),
                ("departement", Perimeter("062")),
                ("arras", Perimeter("062", frozenset({"Arras 1"}))),
                ("lens", Perimeter("062", frozenset({"Lens 2"}))),
            )
        }

    def type_6(rep: dict[str, object]) -> list[tuple[str, str]]:
        return [(i["accompagnement_id"], i["detail"]) for i in rep["items"] if i["type"] == 6]  # type: ignore[attr-defined, index]

    # 24 + 20 > 41 in January: both flagged, with that first day; A9 (in the year from
    # September 2025) overlaps A0 of the year before in June 2025 only: 30 + 30 > 41 then,
    # but that day is outside the year: A9 is flagged on 01/06/2025, A0 never (other year).
    whole = type_6(reports["departement"])
    assert [a for a, _ in whole] == ["A1", "A2", "A9"]
    assert "01/01/2026" in whole[0][1] and "01/01/2026" in whole[1][1]
    assert "01/06/2025" in whole[2][1]
    assert type_6(reports["national"]) == whole
    # A secteur sees its own accompaniments flagged, though the other one is out of sight,
    # and its report is the department's restricted to its accompaniments.
    assert [a for a, _ in type_6(reports["arras"])] == ["A1", "A9"]
    assert [a for a, _ in type_6(reports["lens"])] == ["A2"]
    for name, mine in (("arras", {"A1", "A9"}), ("lens", {"A2"})):
        whole_items = reports["departement"]["items"]
        expected = [i for i in whole_items if i["accompagnement_id"] in mine]  # type: ignore[attr-defined, index]
        assert reports[name]["items"] == expected


async def test_report_sees_what_its_own_session_has_not_committed_yet(
    engine: AsyncEngine,
) -> None:
    # The long search of the report may run on a connection of its own; it must not then
    # miss what the caller's session has just written.
    async with make_sessionmaker(engine)() as s:
        w = World(s)
        clean(w)
        await w.flush()
        await s.commit()
        w.aesh("AE2", actif=False)
        w.mission("M2", "AE2", "01/09/2025", "31/08/2026", heures=41)
        w.acc("A2", "M2", "D1", "0620001A", "01/09/2025", "31/08/2026", 12)
        await w.flush()  # not committed
        rep = await anomalies_report(s, Perimeter("062"), YEAR)
        await s.rollback()
        after = await anomalies_report(s, Perimeter("062"), YEAR)
    assert [(i["type"], i["accompagnement_id"]) for i in rep["items"]] == [(7, "A2")]  # type: ignore[attr-defined, index]
    assert after["items"] == []


def _inactive_aesh_case(w: World) -> None:
    clean(w, aesh_actif=False)


async def test_report_with_a_single_connection_pool_does_not_wait_for_a_second_one(
    engine: AsyncEngine,
) -> None:
    # With every connection of the pool held (here, the only one, by the report's own
    # session), the search runs on the session instead of waiting for the pool's timeout.
    await run(engine, _inactive_aesh_case)
    narrow = create_async_engine(
        engine.url, pool_size=1, max_overflow=0, pool_timeout=2, **_sqlite_args(engine)
    )
    try:
        async with make_sessionmaker(narrow)() as s:
            rep = await anomalies_report(s, Perimeter("062"), YEAR)
    finally:
        await narrow.dispose()
    assert rep["counts"]["7"] == 1


async def test_report_reads_every_row_when_the_engine_streams_results(tmp_path: Path) -> None:
    # A streamed result buffers its first row: the report's reads must not lose it. (SQLite
    # only: on PostgreSQL, SQLAlchemy's async execute() refuses a streaming engine outright.)
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'aesh.db'}")
    try:
        await upgrade(engine)
        expected = await run(engine, _inactive_aesh_case)
        async with make_sessionmaker(engine.execution_options(stream_results=True))() as s:
            streamed = await anomalies_report(s, Perimeter("062"), YEAR)
    finally:
        await engine.dispose()
    assert streamed == expected and expected["counts"]["7"] == 1  # type: ignore[index]


def _several_anomalies(w: World) -> None:
    """Accompaniments A1…A9 with anomalies on both sides of the median id, one of them
    linked to two decisions."""
    clean(w)
    w.aesh("AE2", actif=False)
    w.mission("M2", "AE2", "01/09/2025", "31/08/2026", heures=41)
    w.eleve("E2", etat="gele")
    w.scol("E2", "0620001A", "01/09/2025", "31/08/2026")
    w.decision("D2", "E2", "01/10/2025", "30/06/2026", heures=12)
    for i, (mission, decisions, debut, fin) in enumerate(
        [
            ("M1", "D1", "01/09/2025", "31/12/2025"),
            ("M2", "D2", "01/10/2025", "30/06/2026"),
            ("M1", ["D1", "D2"], "01/09/2025", "31/08/2026"),
            ("M1", "D1", "01/01/2026", "31/08/2026"),
            ("M2", "D1", "01/09/2025", "31/08/2026"),
            ("M1", "D2", "01/09/2025", "31/07/2026"),
            ("M1", "D1", "01/09/2025", "31/08/2026"),
            ("M2", ["D2", "D1"], "01/11/2025", "30/11/2025"),
        ],
        start=2,
    ):
        w.acc(f"A{i}", mission, decisions, "0620001A", debut, fin, 3)


async def test_national_search_in_two_halves_finds_the_same_anomalies_in_the_same_order(
    engine: AsyncEngine,
) -> None:
    # Nationally the long search runs in two halves, split at the median id of the year's
    # accompaniments: at once when two connections are at hand besides the session's; one
    # after the other beside the session with one; with none, in one piece on the session.
    # Same report each time.
    await run(engine, _several_anomalies)
    halves: list[str] = []

    def record(_c: object, _cur: object, statement: str, *_rest: object) -> None:
        if "accompagnements.id <" in statement or "accompagnements.id >=" in statement:
            halves.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with make_sessionmaker(engine)() as s:
            split = await anomalies_report(s, Perimeter(None), YEAR)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert len(halves) == 2
    reports = [split]
    for size in (2, 1):
        narrow = create_async_engine(
            engine.url, pool_size=size, max_overflow=0, pool_timeout=2, **_sqlite_args(engine)
        )
        try:
            async with make_sessionmaker(narrow)() as s:
                reports.append(await anomalies_report(s, Perimeter(None), YEAR))
        finally:
            await narrow.dispose()
    assert reports[1] == reports[2] == split
    found = [i["accompagnement_id"] for i in split["items"]]  # type: ignore[attr-defined, index]
    assert sorted(set(found)) == ["A3", "A4", "A6", "A7", "A9"]  # A1, A2, A5, A8: clean


async def test_national_reports_at_once_never_wait_for_the_pool(engine: AsyncEngine) -> None:
    # Four national reports at once, each session holding its connection, with two more in
    # the pool: the searches aside take what is at hand when they start and never wait for
    # the pool (its timeout here is zero: a wait would fail the report).
    await run(engine, _several_anomalies)
    async with make_sessionmaker(engine)() as s:
        expected = await anomalies_report(s, Perimeter(None), YEAR)
    tight = create_async_engine(
        engine.url, pool_size=6, max_overflow=0, pool_timeout=0, **_sqlite_args(engine)
    )
    try:
        sessions = [make_sessionmaker(tight)() for _ in range(4)]
        for s in sessions:
            await s.connection()
        for _ in range(5):
            got = await asyncio.gather(
                *(anomalies_report(s, Perimeter(None), YEAR) for s in sessions)
            )
            assert got == [expected] * 4
        for s in sessions:
            await s.close()
    finally:
        await tight.dispose()


async def test_cancelled_national_report_leaves_no_search_running(engine: AsyncEngine) -> None:
    # Cancelled at any point (before, during or after its searches aside), the report stops
    # them and waits for their connections: nothing runs on, nothing stays checked out.
    await run(engine, _several_anomalies)
    pool = engine.sync_engine.pool
    async with make_sessionmaker(engine)() as s:
        start = time.perf_counter()
        await anomalies_report(s, Perimeter(None), YEAR)
        duration = time.perf_counter() - start
    stopped_early = 0
    for step in range(20):
        async with make_sessionmaker(engine)() as s:
            task = asyncio.ensure_future(anomalies_report(s, Perimeter(None), YEAR))
            await asyncio.sleep(duration * step / 20)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                stopped_early += 1
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
    assert stopped_early > 1


def _sqlite_args(engine: AsyncEngine) -> dict[str, object]:
    return {"connect_args": {"timeout": 30}} if engine.dialect.name == "sqlite" else {}
