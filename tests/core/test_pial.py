"""PIAL needs and means (domain 3.7), indicators (3.6) and cas particuliers (3.9)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.dates import SchoolYear
from core.db import make_sessionmaker
from core.errors import InvalidInput
from core.perimeter import Perimeter
from core.services import parametres
from core.services.affectations import auto_affecter
from core.services.reports import cas_particuliers_report, indicateurs_report, pial_report
from tests.core.builders import World

YEAR = SchoolYear(2025)


def pial_world(w: World) -> None:
    for p, etabs in (
        ("0620001A", ["0620001A", "0620002B"]),
        ("0620003C", ["0620003C"]),
        ("0620009Z", ["0620009Z"]),
    ):
        w.pial(p)
        for e in etabs:
            w.etab(e, pial=p)
    w.eleve("E1")
    w.scol("E1", "0620001A", "01/09/2025", "31/08/2026")
    w.decision("I1", "E1", "01/09/2025", "31/08/2026", heures=24)
    for i in range(6):
        w.eleve(f"M{i}")
        w.scol(f"M{i}", "0620002B", "01/09/2025", None)
        w.decision(f"DM{i}", f"M{i}", "01/09/2025", "31/08/2026")
    for i in range(3):
        w.eleve(f"N{i}")
        w.scol(f"N{i}", "0620003C", "01/09/2025", None)
        w.decision(f"DN{i}", f"N{i}", "01/09/2025", "31/08/2026")
    w.aesh("AE1")
    w.aesh("AE2", actif=True)
    w.mission("MI1", "AE1", "01/09/2025", "31/08/2026", heures=41)
    w.mission("MI2", "AE1", "01/09/2025", "31/08/2026", heures=20, nature="AHRE")
    w.mission("MI3", "AE2", "01/09/2025", "31/08/2026", heures=30, actif=False)
    w.mission("MI4", "AE2", "01/09/2025", "28/02/2026", heures=24)
    w.affectation("MI1", "0620001A", "2025-2026")
    w.affectation("MI2", "0620001A", "2025-2026")
    w.affectation("MI3", "0620001A", "2025-2026")
    w.affectation("MI4", "0620001A", "2025-2026", heures=10)


async def test_pial_needs_means_and_department_line(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as s:
        w = World(s)
        pial_world(w)
        await w.flush()
        rep = await pial_report(s, Perimeter("062"), YEAR)
    rows = {r["pial_rne"]: r for r in rep["pials"]}
    assert list(rows) == ["0620001A", "0620003C", "0620009Z"]  # zeros included
    p1 = rows["0620001A"]
    assert (p1["nb_individuelles"], p1["nb_mutualisees"]) == (1, 6)
    assert p1["besoin_moyen"] == 80.0  # 24 h + f(6) = 24 + 56
    moyens = 41 + 10 * 181 / 365  # MI4 gives 10 h until 28 February only
    assert p1["moyens_moyen"] == round(moyens, 4)
    assert p1["couverture_moyenne"] == round(moyens / 80, 4)
    assert rows["0620003C"]["besoin_moyen"] == 24.0  # f(3)
    assert rows["0620009Z"] == {
        "pial_rne": "0620009Z",
        "nb_individuelles": 0,
        "nb_mutualisees": 0,
        "besoin_moyen": 0.0,
        "moyens_moyen": 0.0,
        "couverture_moyenne": None,
    }
    dep = rep["departement"]
    # f applied to the department's 9 mutualised decisions (56), not f(6) + f(3) (80).
    assert dep["besoin_moyen"] == 24 + 56
    assert (dep["nb_individuelles"], dep["nb_mutualisees"]) == (1, 9)
    assert "pial_rne" not in dep


async def test_department_formula_changes_the_need(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as s:
        w = World(s)
        pial_world(w)
        await w.flush()
        await parametres.set_formula(s, "062", YEAR, "cM * 6")
        rep = await pial_report(s, Perimeter("062"), YEAR)
        with pytest.raises(InvalidInput) as err:
            await parametres.set_formula(s, "062", YEAR, "cM * (")
        assert "position" in str(err.value)
    assert rep["pials"][0]["besoin_moyen"] == 24 + 36


async def test_indicators_count_decisions_per_month(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as s:
        w = World(s)
        pial_world(w)
        w.eleve("E9")
        w.scol("E9", "0620001A", "01/09/2025", None)
        w.decision("LATE", "E9", "15/01/2026", "15/03/2026", heures=6)
        w.acc("A1", "MI1", "I1", "0620001A", "01/09/2025", "31/08/2026", 24)
        await w.flush()
        rep = await indicateurs_report(s, Perimeter("062"), YEAR)
    assert (rep["total"], rep["avec_accompagnement"], rep["sans_accompagnement"]) == (11, 1, 10)
    assert len(rep["par_mois"]) == 12
    assert rep["par_mois"]["2025-09"] == 10 and rep["par_mois"]["2026-01"] == 11
    assert rep["par_mois"]["2026-03"] == 11 and rep["par_mois"]["2026-04"] == 10


async def test_cas_particuliers(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as s:
        w = World(s)
        w.etab("0620001A")
        w.eleve("E1")
        w.eleve("E2")
        w.scol("E1", "0620001A", "01/09/2024", None)
        w.scol("E2", "0620001A", "01/09/2024", None)
        w.decision("OLD", "E1", "01/09/2024", "31/08/2025", heures=12)
        w.decision("NEW", "E1", "01/09/2025", "31/08/2027", heures=12)  # not accompanied
        w.decision("ENDS", "E2", "01/09/2024", "31/03/2026", heures=6)  # no successor
        w.aesh("AE1")
        w.mission("M1", "AE1", "01/09/2020", None)
        w.acc("A1", "M1", "OLD", "0620001A", "01/09/2024", "31/08/2025", 12)
        await w.flush()
        rep = await cas_particuliers_report(s, Perimeter("062"), YEAR)
    assert rep["non_couvertes_apres_accompagnement"] == ["NEW"]
    assert rep["echeance_non_renouvelee"] == ["ENDS"]


async def test_auto_affectation_places_and_reports(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as s:
        w = World(s)
        w.pial("0620001A")
        w.etab("0620001A", pial="0620001A")
        w.etab("0620005E", pial="0620001A")
        w.etab("0620007G")  # hors PIAL
        w.aesh("AE1")
        w.mission("HR", "AE1", "01/09/2025", None, pial_rne="0620001A")
        w.mission("EMP", "AE1", "01/09/2025", None, employeur_rne="0620005E")
        w.mission("NONE", "AE1", "01/09/2025", None, employeur_rne="0620007G")
        w.mission("REF", "AE1", "01/09/2025", None, nature="AHRE", pial_rne="0620001A")
        w.mission("DONE", "AE1", "01/09/2025", None, pial_rne="0620001A")
        w.affectation("DONE", "0620001A", "2025-2026", 12)
        await w.flush()
        res = await auto_affecter(s, Perimeter("062"), YEAR)
        again = await auto_affecter(s, Perimeter("062"), YEAR)
    assert res.created == [("EMP", "0620001A"), ("HR", "0620001A")]
    assert [u["mission_id"] for u in res.unplaced] == ["NONE"]
    assert again.created == []
