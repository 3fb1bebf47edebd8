"""Coverage of decisions (domain 3.5), on the manual's worked examples and by property."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from core.dates import SchoolYear
from core.db import make_sessionmaker
from core.perimeter import Perimeter
from core.rules import coverage as cov
from core.rules.records import AccRec, DecisionRec, ScolRec
from core.services.reports import coverage_report
from tests.core.builders import World, d

DEC = DecisionRec("D1", "E1", "individuelle", 24.0, d("01/09/2017"), d("31/08/2019"))
SCOL = [ScolRec("E1", "0620001A", d("01/09/2017"), d("31/08/2019"))]


def acc(
    id: str,
    debut: str,
    fin: str,
    heures: float = 24.0,
    maintien: bool = False,
    previsionnel: bool = False,
    mission: str = "M1",
) -> AccRec:
    return AccRec(id, mission, "0620001A", d(debut), d(fin), heures, maintien, previsionnel)


def test_manual_example_red_then_green() -> None:
    a = acc("A1", "05/04/2019", "31/08/2019")
    segs = cov.timeline(DEC, SCOL, [a])
    assert [(s.debut, s.fin, s.etat) for s in segs] == [
        (d("01/09/2017"), d("04/04/2019"), "aucune"),
        (d("05/04/2019"), d("31/08/2019"), "complete"),
    ]
    c = cov.coverage(DEC, SCOL, [a])
    assert round(c.couverture, 4) == round(149 / 730, 4)
    assert round(c.priorite, 4) == round(1 - 149 / 730, 4)
    assert not c.depassement


def test_no_accompaniment_is_priority_one() -> None:
    c = cov.coverage(DEC, SCOL, [])
    assert (c.couverture, c.priorite, c.depassement) == (0.0, 1.0, False)


def test_missing_scolarisation_is_a_white_segment_without_need() -> None:
    scols = [
        ScolRec("E1", "0620001A", d("01/09/2017"), d("31/08/2018")),
        ScolRec("E1", "0620001A", d("01/10/2018"), None),
    ]
    segs = cov.timeline(DEC, scols, [])
    assert [s.etat for s in segs] == ["aucune", "sans_scolarite", "aucune"]
    assert (segs[1].debut, segs[1].fin) == (d("01/09/2018"), d("30/09/2018"))
    # September 2018 carries no need: covering everything else gives 100 %.
    full = [acc("A1", "01/09/2017", "31/08/2018"), acc("A2", "01/10/2018", "31/08/2019")]
    assert cov.coverage(DEC, scols, full).couverture == 1.0


def test_partial_and_overrun_states() -> None:
    half = acc("A1", "01/09/2018", "31/08/2019", heures=12)
    assert [s.etat for s in cov.timeline(DEC, SCOL, [half])] == ["aucune", "partielle"]
    two = [acc("A1", "01/09/2018", "31/08/2019", 12), acc("A2", "01/01/2019", "31/01/2019", 20)]
    segs = cov.timeline(DEC, SCOL, two)
    assert [s.etat for s in segs] == ["aucune", "partielle", "depassement", "partielle"]
    assert cov.coverage(DEC, SCOL, two).depassement


def test_previsionnel_mark_from_accompaniment_or_mission() -> None:
    a = acc("A1", "05/04/2019", "31/08/2019", previsionnel=True)
    segs = cov.timeline(DEC, SCOL, [a])
    assert [(s.etat, s.previsionnel) for s in segs] == [("aucune", False), ("complete", True)]
    b = acc("A1", "05/04/2019", "31/08/2019", mission="MP")
    segs = cov.timeline(DEC, SCOL, [b], previsionnel_missions=frozenset({"MP"}))
    assert segs[-1].previsionnel


def test_maintien_is_violet_after_the_end_and_never_counts() -> None:
    dec = DecisionRec("D2", "E1", "individuelle", 10.0, d("01/09/2018"), d("31/03/2019"))
    m = acc("A1", "01/04/2019", "30/06/2019", heures=10, maintien=True)
    segs = cov.timeline(dec, SCOL, [m])
    assert [s.etat for s in segs] == ["aucune", "maintien"]
    assert (segs[1].debut, segs[1].fin) == (d("01/04/2019"), d("30/06/2019"))
    assert cov.coverage(dec, SCOL, [m]).couverture == 0.0


def test_mutualised_need_is_one_whatever_the_hours() -> None:
    dec = DecisionRec("D3", "E1", "mutualisee", None, d("01/09/2018"), d("31/08/2019"))
    a = acc("A1", "01/09/2018", "31/08/2019", heures=3)
    c = cov.coverage(dec, SCOL, [a])
    assert (c.couverture, c.depassement) == (1.0, False)


def test_state_on_a_date() -> None:
    a = acc("A1", "05/04/2019", "31/08/2019")
    ps = cov.pieces(DEC, SCOL, [a])
    assert cov.state_on(ps, DEC, d("01/01/2019")) == "aucune"
    assert cov.state_on(ps, DEC, d("05/04/2019")) == "complete"
    assert cov.state_on(ps, DEC, d("01/09/2019")) == "hors_periode"


# --- properties ------------------------------------------------------------------------

BASE = date(2020, 9, 1)
days = st.integers(min_value=0, max_value=800)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[DecisionRec, list[ScolRec], list[AccRec]]:
    s, length = draw(days), draw(st.integers(1, 600))
    kind = draw(st.sampled_from(["individuelle", "mutualisee"]))
    heures = draw(st.sampled_from([6.0, 12.0, 24.0])) if kind == "individuelle" else None
    dec = DecisionRec("D", "E", kind, heures, BASE + timedelta(s), BASE + timedelta(s + length))
    scols = []
    for _ in range(draw(st.integers(0, 3))):
        a, b = sorted((draw(days), draw(days)))
        scols.append(ScolRec("E", "R", BASE + timedelta(a), BASE + timedelta(b)))
    accs = [random_acc(draw, i) for i in range(draw(st.integers(0, 4)))]
    return dec, scols, accs


def random_acc(draw: st.DrawFn, i: int) -> AccRec:
    a, b = sorted((draw(days), draw(days)))
    return AccRec(
        f"A{i}",
        "M",
        "R",
        BASE + timedelta(a),
        BASE + timedelta(b),
        draw(st.sampled_from([2.0, 6.0, 12.0, 30.0])),
        draw(st.booleans()),
        False,
    )


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_couverture_is_a_ratio(sc: tuple[DecisionRec, list[ScolRec], list[AccRec]]) -> None:
    c = cov.coverage(*sc)
    assert 0.0 <= c.couverture <= 1.0
    assert abs(c.couverture + c.priorite - 1.0) < 1e-12


@settings(max_examples=300, deadline=None)
@given(scenario(), st.data())
def test_adding_an_accompaniment_never_lowers_couverture(
    sc: tuple[DecisionRec, list[ScolRec], list[AccRec]], data: st.DataObject
) -> None:
    dec, scols, accs = sc
    extra = random_acc(data.draw, 99)
    assert (
        cov.coverage(dec, scols, [*accs, extra]).couverture
        >= cov.coverage(dec, scols, accs).couverture - 1e-12
    )


@settings(max_examples=200, deadline=None)
@given(scenario())
def test_sweep_matches_day_by_day(sc: tuple[DecisionRec, list[ScolRec], list[AccRec]]) -> None:
    """The sweep is an optimisation: it must agree with the definition read literally."""
    dec, scols, accs = sc
    got = total = 0.0
    day = dec.debut
    while day <= dec.fin:
        schooled = any(s.debut <= day <= (s.fin or date.max) for s in scols)
        need = (dec.heures or 0.0 if dec.type == "individuelle" else 1.0) if schooled else 0.0
        live = [a for a in accs if not a.maintien and a.debut <= day <= a.fin]
        provided = (
            sum(a.heures for a in live) if dec.type == "individuelle" else (1.0 if live else 0.0)
        )
        got += min(need, provided)
        total += need
        day += timedelta(1)
    expected = got / total if total else 0.0
    assert abs(cov.coverage(dec, scols, accs).couverture - expected) < 1e-9


# --- through the database ---------------------------------------------------------------


async def seed_two_secteurs(w: World) -> None:
    w.pial("0620001A")
    w.etab("0620001A", pial="0620001A")
    w.etab("0620002B", pial="0620001A")
    w.etab("0590001C")
    w.eleve("E1", secteur="Arras 1")
    w.eleve("E2", secteur="Lens 2")
    w.eleve("E3", secteur="Lille 1", dep="059")
    w.scol("E1", "0620001A", "01/09/2017", None)
    w.scol("E2", "0620002B", "01/09/2018", None)
    w.scol("E3", "0590001C", "01/09/2018", None)
    w.decision("D1", "E1", "01/09/2017", "31/08/2019", heures=24)
    w.decision("D2", "E2", "01/09/2018", "31/08/2019", heures=12)
    w.decision("D3", "E3", "01/09/2018", "31/08/2019")
    w.aesh("AE1")
    w.mission("M1", "AE1", "01/09/2015", None, heures=41)
    w.acc("A1", "M1", "D1", "0620001A", "05/04/2019", "31/08/2019", 24)
    w.acc("A2", "M1", "D2", "0620002B", "01/09/2018", "31/08/2019", 12)
    await w.flush()


async def test_report_sorted_by_priority_and_scoped(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as s:
        await seed_two_secteurs(World(s))
        await s.commit()
        year = SchoolYear(2018)
        rep = await coverage_report(s, Perimeter("062"), year, d("01/01/2019"))
        ids = [r["decision_id"] for r in rep["decisions"]]
        assert ids == ["D1", "D2"]  # D3 is another department's
        first = rep["decisions"][0]
        assert first["etat"] == "aucune" and first["accompagnement_ids"] == ["A1"]
        assert first["couverture"] == round(149 / 730, 4)
        assert rep["decisions"][1]["couverture"] == 1.0
        lens = await coverage_report(
            s, Perimeter("062", frozenset({"Lens 2"})), year, d("01/01/2019")
        )
        assert [r["decision_id"] for r in lens["decisions"]] == ["D2"]
        pial = await coverage_report(s, Perimeter("062", None, "0620001A"), year, d("01/01/2019"))
        assert [r["decision_id"] for r in pial["decisions"]] == ["D1", "D2"]
        everything = await coverage_report(s, Perimeter(None), year, d("01/01/2019"))
        assert [r["decision_id"] for r in everything["decisions"]] == ["D3", "D1", "D2"]
