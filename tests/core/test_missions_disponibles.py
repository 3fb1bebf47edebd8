"""Missions offered for a decision (domain 3.2, 3.4, 3.7): rules, distance, free hours; and
the affectation of a mission to a PIAL by a gestionnaire."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.dates import SchoolYear
from core.db import make_sessionmaker
from core.errors import Forbidden, InvalidInput, NotFound
from core.models import Aesh, Etablissement
from core.perimeter import Perimeter
from core.rules.accompaniment import Period
from core.services import missions_disponibles as dispo
from core.services.access import Caller
from tests.core.builders import World, d

TODAY = d("15/10/2025")
YEAR = SchoolYear.of(TODAY)
DEP = Perimeter("062")


def caller(role: str = "gestionnaire", pial: str | None = None, dep: str = "062") -> Caller:
    return Caller(1, 1, role, dep, None, pial)


async def seeded(engine: AsyncEngine) -> AsyncSession:
    s = make_sessionmaker(engine)()
    w = World(s)
    w.pial("0620001A")
    w.pial("0590001A")
    w.etab("0620001A", pial="0620001A")
    w.etab("0620002B", pial="0620001A", latitude=50.29, longitude=2.78)
    w.etab("0620500H", latitude=50.29, longitude=2.78)  # hors PIAL
    w.etab("0590001A", pial="0590001A")
    w.eleve("E1")
    w.eleve("E2")
    w.eleve("E3", secteur="Lens 2")
    w.eleve("E4")
    w.scol("E1", "0620002B", "01/09/2024", None)
    w.scol("E2", "0620500H", "01/09/2024", None)
    w.scol("E3", "0620002B", "01/09/2024", None)
    w.decision("D1", "E1", "01/09/2025", "31/08/2026", heures=12)
    w.decision("D2", "E2", "01/09/2025", "31/08/2026", heures=6)
    w.decision("D3", "E3", "01/09/2025", "31/08/2026", heures=6)
    w.decision("D4", "E4", "01/09/2025", "31/08/2026", heures=6)  # never schooled
    for a in ("NEAR", "FAR", "UNK", "OFF", "BUSY"):
        w.aesh(a, actif=a != "OFF")
    w.mission("M_NEAR", "NEAR", "01/09/2020", None, heures=24)
    w.mission("M_FAR", "FAR", "01/09/2020", None, heures=24)
    w.mission("M_UNK", "UNK", "01/09/2020", None, heures=30)
    w.mission("M_UNK2", "UNK", "01/09/2020", None, heures=20)
    w.mission("M_OFF", "OFF", "01/09/2020", None)  # inactive AESH
    w.mission("M_DEAD", "NEAR", "01/09/2020", None, actif=False)
    w.mission("M_OLD", "NEAR", "01/09/2020", "30/06/2025", contrat="T2-CDD")  # ended
    w.mission("M_REF", "NEAR", "01/09/2020", None, nature="AHRE")
    w.mission("M_BUSY", "BUSY", "01/09/2020", None, heures=24)
    for m in ("M_NEAR", "M_FAR", "M_UNK", "M_UNK2", "M_OFF", "M_DEAD", "M_OLD", "M_REF", "M_BUSY"):
        w.affectation(m, "0620001A", YEAR.label)
    w.acc("X1", "M_BUSY", "D3", "0620002B", "01/09/2025", "31/12/2025", 10)
    w.acc("X2", "M_BUSY", "D3", "0620002B", "01/11/2025", "31/01/2026", 8)
    await w.flush()
    for aid, lat, lon in (
        ("NEAR", 50.30, 2.79),
        ("FAR", 50.95, 1.85),
        ("BUSY", 50.30, 2.79),
    ):
        a = await s.get(Aesh, aid)
        assert a is not None
        a.latitude, a.longitude = lat, lon
    await s.commit()
    return s


def test_haversine_paris_lille() -> None:
    km = dispo.haversine_km(48.8566, 2.3522, 50.6292, 3.0573)
    assert 203 < km < 206


def test_peak_hours_is_the_busiest_day_of_the_period() -> None:
    p = Period(date(2025, 9, 1), date(2026, 8, 31))
    spans = [
        (date(2025, 9, 1), date(2025, 12, 31), 10.0),
        (date(2025, 11, 1), date(2026, 1, 31), 8.0),
        (date(2026, 1, 1), date(2026, 1, 31), 3.0),  # starts the day after the first ends
    ]
    assert dispo.peak_hours(spans, p) == 18.0
    assert dispo.peak_hours(spans, Period(date(2026, 2, 1), date(2026, 8, 31))) == 0.0
    assert dispo.peak_hours([], p) == 0.0


async def test_only_allowed_missions_nearest_first_then_free_hours(engine: AsyncEngine) -> None:
    async with await seeded(engine) as s:
        ctx = await dispo.contexte(s, DEP, "D1", today=TODAY)
        assert ctx.rne == "0620002B" and ctx.pial_rne == "0620001A"
        assert ctx.periode == Period(d("01/09/2025"), d("31/08/2026"))
        found = await dispo.missions_disponibles(s, ctx)
    ids = [m.mission_id for m in found]
    # Same distance: the one with most free hours first; unknown coordinates last.
    assert ids == ["M_NEAR", "M_BUSY", "M_FAR", "M_UNK", "M_UNK2"]
    busy = next(m for m in found if m.mission_id == "M_BUSY")
    assert busy.heures_libres == 6.0  # 24 h - (10 + 8) on the busiest days
    assert found[0].distance_km is not None and found[0].distance_km < 2


async def test_a_mission_not_affected_is_not_offered_in_a_pial(engine: AsyncEngine) -> None:
    async with await seeded(engine) as s:
        w = World(s)
        w.aesh("NEW")
        w.mission("M_NEW", "NEW", "01/09/2020", None)
        await w.flush()
        ctx = await dispo.contexte(s, DEP, "D1", today=TODAY)
        assert "M_NEW" not in [m.mission_id for m in await dispo.missions_disponibles(s, ctx)]
        # Hors PIAL, any active accompanying mission of the department.
        ctx = await dispo.contexte(s, DEP, "D2", today=TODAY)
        assert ctx.pial_rne is None
        ids = [m.mission_id for m in await dispo.missions_disponibles(s, ctx)]
        assert "M_NEW" in ids and "M_REF" not in ids and "M_OFF" not in ids


async def test_perimeter_and_placement_refusals(engine: AsyncEngine) -> None:
    async with await seeded(engine) as s:
        with pytest.raises(NotFound):
            await dispo.contexte(s, Perimeter("062", pial_rne="0590001A"), "D1", today=TODAY)
        with pytest.raises(NotFound):
            await dispo.contexte(s, Perimeter("062", frozenset({"Lens 2"})), "D1", today=TODAY)
        with pytest.raises(NotFound):
            await dispo.contexte(s, Perimeter("059"), "D1", today=TODAY)
        with pytest.raises(InvalidInput, match="aucune scolarisation"):
            await dispo.contexte(s, DEP, "D4", today=TODAY)
        ctx = await dispo.contexte(s, Perimeter("062", pial_rne="0620001A"), "D1", today=TODAY)
        assert ctx.rne == "0620002B"


async def test_view_of_an_accompaniment_follows_the_perimeter(engine: AsyncEngine) -> None:
    async with await seeded(engine) as s:
        vue = await dispo.vue_accompagnement(s, DEP, "X1")
        assert [v.id for v in vue.voisins] == ["X1", "X2"]
        with pytest.raises(NotFound):
            await dispo.vue_accompagnement(s, Perimeter("062", pial_rne="0590001A"), "X1")


async def test_affecter_is_the_gestionnaires_within_their_department(
    engine: AsyncEngine,
) -> None:
    async with await seeded(engine) as s:
        w = World(s)
        w.aesh("NEW")
        w.mission("M_NEW", "NEW", "01/09/2020", None, heures=24)
        await w.flush()
        for who in (caller("superviseur"), caller("coordonnateur", "0620001A")):
            with pytest.raises(Forbidden):
                await dispo.affecter(s, who, "M_NEW", "0620001A", YEAR, 12)
        with pytest.raises(NotFound):
            await dispo.affecter(s, caller(), "M_NEW", "0590001A", YEAR, 12)
        with pytest.raises(NotFound):
            await dispo.affecter(s, caller(dep="059"), "M_NEW", "0590001A", YEAR, 12)
        with pytest.raises(InvalidInput):
            await dispo.affecter(s, caller(), "M_NEW", "0620001A", YEAR, 30)
        aff = await dispo.affecter(s, caller(), "M_NEW", "0620001A", YEAR, 12)
        assert aff.heures == 12
        assert await dispo.pials_du_departement(s, "062") == [
            ("0620001A", (await s.get(Etablissement, "0620001A")).nom)  # type: ignore[union-attr]
        ]
