"""Accompaniment services (domain 3.4) and prévisionnel AESH/missions (3.2)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.dates import SchoolYear
from core.db import make_sessionmaker
from core.errors import DomainError, Forbidden, InvalidInput, NotFound
from core.models import Accompagnement, AccompagnementDecision, JournalEntry, Mission
from core.perimeter import Perimeter
from core.services import accompagnements as svc
from core.services import parametres, rh
from core.services.reports import coverage_report
from tests.core.builders import World, d

DEP = Perimeter("062")
TODAY = d("15/10/2025")


def world(w: World) -> None:
    w.pial("0620001A")
    w.etab("0620001A", pial="0620001A")
    w.etab("0620008H")  # hors PIAL
    w.eleve("E1", erseh_email="erseh@ac-lille.fr")
    w.eleve("E2", secteur="Lens 2")
    w.eleve("E3")
    w.scol("E1", "0620001A", "01/09/2024", None)
    w.scol("E2", "0620001A", "01/09/2024", None)
    w.scol("E3", "0620008H", "01/09/2024", None)
    w.decision("IND", "E1", "01/01/2025", "31/12/2026", heures=18)
    w.decision("MU1", "E2", "01/10/2025", "30/06/2027")
    w.decision("MU2", "E3", "15/09/2025", "31/05/2026")
    w.decision("IN3", "E3", "01/09/2025", "31/08/2026", heures=12)
    w.aesh("AE1")
    w.aesh("AEX", actif=False)
    w.mission("CDI", "AE1", "01/09/2020", None, heures=41)
    w.mission("CDD", "AE1", "01/09/2025", "30/04/2026", heures=24, contrat="T2-CDD")
    w.mission("REF", "AE1", "01/09/2025", None, nature="AHRE")
    w.mission("OFF", "AEX", "01/09/2025", None)
    w.mission("FREE", "AE1", "01/09/2025", None, heures=30)  # not affected to the PIAL
    for m in ("CDI", "CDD", "REF", "OFF"):
        w.affectation(m, "0620001A", "2025-2026")


async def session_with_world(engine: AsyncEngine) -> AsyncSession:
    s = make_sessionmaker(engine)()
    w = World(s)
    world(w)
    await w.flush()
    await s.commit()
    return s


async def test_individual_defaults_to_the_current_school_year(engine: AsyncEngine) -> None:
    async with await session_with_world(engine) as s:
        a = await svc.create(s, DEP, svc.NewAccompagnement("CDI", ["IND"], "0620001A"), today=TODAY)
        assert (a.debut, a.fin, a.heures) == (d("01/09/2025"), d("31/08/2026"), 18)
        journal = (await s.scalars(select(JournalEntry))).all()
        assert [j.kind for j in journal] == ["accompagnement.cree"]
        assert journal[0].changes["erseh_email"] == "erseh@ac-lille.fr"  # the ERSEH is told


async def test_mutualised_defaults_latest_start_earliest_end_cut_at_31_august(
    engine: AsyncEngine,
) -> None:
    async with await session_with_world(engine) as s:
        s.add(
            Mission(
                id="HP",
                aesh_id="AE1",
                contrat="T2-CDI",
                nature="HM1D",
                debut=d("01/09/2020"),
                heures=24,
                departement="062",
            )
        )
        await s.flush()
        a = await svc.create(s, DEP, svc.NewAccompagnement("HP", ["MU2"], "0620008H"), today=TODAY)
        assert (a.debut, a.fin) == (d("15/09/2025"), d("31/05/2026"))
        b = await svc.create(s, DEP, svc.NewAccompagnement("CDI", ["MU1"], "0620001A"), today=TODAY)
        assert (b.debut, b.fin) == (d("01/10/2025"), d("31/08/2026"))
        c = await svc.create(
            s, DEP, svc.NewAccompagnement("HP", ["MU1", "MU2"], "0620008H"), today=TODAY
        )
        assert (c.debut, c.fin) == (d("01/10/2025"), d("31/05/2026"))


async def test_cdd_bounds_the_end(engine: AsyncEngine) -> None:
    async with await session_with_world(engine) as s:
        a = await svc.create(s, DEP, svc.NewAccompagnement("CDD", ["IND"], "0620001A"), today=TODAY)
        assert a.fin == d("30/04/2026")
        with pytest.raises(InvalidInput, match="CDD"):
            await svc.create(
                s,
                DEP,
                svc.NewAccompagnement("CDD", ["IND"], "0620001A", d("01/09/2025"), d("30/06/2026")),
                today=TODAY,
            )


@pytest.mark.parametrize(
    ("new", "error", "words"),
    [
        (svc.NewAccompagnement("FREE", ["IND"], "0620001A"), InvalidInput, "n'est pas affectée"),
        (svc.NewAccompagnement("OFF", ["IND"], "0620001A"), InvalidInput, "inactive"),
        (svc.NewAccompagnement("REF", ["IND"], "0620001A"), InvalidInput, "n'accompagne pas"),
        (svc.NewAccompagnement("CDI", ["IND", "MU1"], "0620001A"), InvalidInput, "seule"),
        (
            svc.NewAccompagnement("CDI", ["IND"], "0620001A", d("01/06/2026"), d("30/09/2026")),
            InvalidInput,
            "31 août",
        ),
        (svc.NewAccompagnement("CDI", ["NOPE"], "0620001A"), NotFound, "introuvable"),
        (svc.NewAccompagnement("CDI", ["IND"], "0000000X"), NotFound, "introuvable"),
        (
            svc.NewAccompagnement("CDI", ["IND"], "0620001A", d("01/03/2026"), d("01/02/2026")),
            InvalidInput,
            "après la fin",
        ),
    ],
)
async def test_refusals_change_nothing(
    engine: AsyncEngine, new: svc.NewAccompagnement, error: type[DomainError], words: str
) -> None:
    async with await session_with_world(engine) as s:
        with pytest.raises(error, match=words):
            await svc.create(s, DEP, new, today=TODAY)
        await s.rollback()
        assert await s.scalar(select(func.count()).select_from(Accompagnement)) == 0


async def test_hors_pial_any_active_accompanying_mission(engine: AsyncEngine) -> None:
    async with await session_with_world(engine) as s:
        a = await svc.create(
            s, DEP, svc.NewAccompagnement("FREE", ["IN3"], "0620008H"), today=TODAY
        )
        assert a.heures == 12


async def test_out_of_perimeter_decision_is_unknown(engine: AsyncEngine) -> None:
    async with await session_with_world(engine) as s:
        arras = Perimeter("062", frozenset({"Arras 1"}))
        with pytest.raises(NotFound):
            await svc.create(
                s, arras, svc.NewAccompagnement("CDI", ["MU1"], "0620001A"), today=TODAY
            )
        coord = Perimeter("062", None, "0620001A")
        with pytest.raises(Forbidden):
            await svc.create(
                s, coord, svc.NewAccompagnement("FREE", ["IN3"], "0620008H"), today=TODAY
            )


async def test_insert_splits_the_original(engine: AsyncEngine) -> None:
    async with await session_with_world(engine) as s:
        a = await svc.create(s, DEP, svc.NewAccompagnement("CDI", ["IND"], "0620001A"), today=TODAY)
        new = await svc.inserer(s, DEP, a.id, d("01/01/2026"), d("31/01/2026"), heures=9)
        rows = (
            await s.execute(
                select(Accompagnement.debut, Accompagnement.fin, Accompagnement.heures).order_by(
                    Accompagnement.debut
                )
            )
        ).all()
        assert [tuple(r) for r in rows] == [
            (d("01/09/2025"), d("31/12/2025"), 18),
            (d("01/01/2026"), d("31/01/2026"), 9),
            (d("01/02/2026"), d("31/08/2026"), 18),
        ]
        links = (await s.scalars(select(AccompagnementDecision.decision_id))).all()
        assert links == ["IND", "IND", "IND"]
        # Coverage follows at once: January is now partial.
        rep = await coverage_report(s, DEP, SchoolYear(2025), d("15/01/2026"))
        ind = next(r for r in rep["decisions"] if r["decision_id"] == "IND")
        assert ind["etat"] == "partielle" and new.id in ind["accompagnement_ids"]


async def test_insert_over_the_end_cuts(engine: AsyncEngine) -> None:
    async with await session_with_world(engine) as s:
        a = await svc.create(s, DEP, svc.NewAccompagnement("CDI", ["IND"], "0620001A"), today=TODAY)
        await svc.inserer(s, DEP, a.id, d("01/06/2026"), d("31/08/2026"))
        assert (a.debut, a.fin) == (d("01/09/2025"), d("31/05/2026"))


async def test_maintien_after_the_decision_end(engine: AsyncEngine) -> None:
    async with await session_with_world(engine) as s:
        s.add(
            Mission(
                id="HP",
                aesh_id="AE1",
                contrat="T2-CDI",
                nature="HM1D",
                debut=d("01/09/2020"),
                heures=24,
                departement="062",
            )
        )
        await s.flush()
        a = await svc.create(s, DEP, svc.NewAccompagnement("HP", ["MU2"], "0620008H"), today=TODAY)
        with pytest.raises(InvalidInput):
            await svc.maintenir(s, DEP, a.id, d("30/04/2026"))
        with pytest.raises(InvalidInput, match="fin de la décision"):
            await svc.modifier(s, DEP, a.id, fin=d("30/06/2026"))
        m = await svc.maintenir(s, DEP, a.id, d("30/06/2026"))
        assert m.maintien and m.fin == d("30/06/2026")


async def test_previsionnel_missions_editable_hr_ones_read_only(engine: AsyncEngine) -> None:
    async with await session_with_world(engine) as s:
        await parametres.set_reference(s, "062", SchoolYear(2025), 41)
        aesh = await rh.create_aesh_previsionnel(s, "062", rh.AeshInput("Lemaire", "Zoé"))
        data = rh.MissionInput(
            aesh.id,
            "T2-CDD",
            "HP1D",
            d("01/09/2025"),
            d("31/08/2026"),
            quotite=50,
            pial_rne="0620001A",
        )
        m = await rh.create_mission_previsionnelle(s, data)
        assert m.previsionnel and m.heures == 20.5 and m.departement == "062"
        with pytest.raises(InvalidInput, match="RH"):
            await rh.update_mission_previsionnelle(s, "CDI", data)
        with pytest.raises(InvalidInput, match="nature"):
            await rh.create_mission_previsionnelle(
                s,
                rh.MissionInput(
                    aesh.id, "HT2-CDD", "HP1D", date(2025, 9, 1), date(2026, 8, 31), 50
                ),
            )
        await parametres.set_reference(s, "062", SchoolYear(2025), 39)
        await s.refresh(m)
        assert m.heures == 19.5  # the reference change recomputes
