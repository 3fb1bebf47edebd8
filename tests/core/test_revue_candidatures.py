"""Review of candidatures by the service (domain 2.8): who reads, who acts, which statuses."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.db import make_sessionmaker
from core.errors import Forbidden, InvalidInput, NotFound
from core.models import Aesh, Candidat, Candidature, Diplome, Piece
from core.rules.candidature import PIECES_AESH, PIECES_M2
from core.services import revue_candidatures as revue
from core.services.access import Caller

GEST = Caller(1, 1, "gestionnaire", "062", None, None)
SUP = Caller(2, 2, "superviseur", "062", None, None)
COORD = Caller(3, 3, "coordonnateur", "062", None, "0620001A")
OTHER = Caller(4, 4, "gestionnaire", "059", None, None)


async def seeded(engine: AsyncEngine) -> tuple[AsyncSession, dict[str, int]]:
    s = make_sessionmaker(engine)()
    ids: dict[str, int] = {}
    for key, (type_, statut, zones, pieces, licence) in {
        "complete": ("AESH", "complete", ["Arras", "Lens"], PIECES_AESH, False),
        "incomplete": ("AESH", "incomplete", ["Lens"], PIECES_AESH[:2], False),
        "m2_sans_licence": ("M2_1D_PDC", "complete", ["Arras"], PIECES_M2, False),
        "m2": ("M2_1D_PDC", "en_examen", ["Calais"], PIECES_M2, True),
        "brouillon": ("AESH", "brouillon", ["Arras"], (), False),
        "retiree": ("AESH", "retiree", ["Arras"], (), False),
    }.items():
        c = Candidat(nom=f"Nom{key}", prenom="Léa", email=f"{key}@exemple.test", departement="062")
        s.add(c)
        await s.flush()
        cand = Candidature(
            candidat_id=None if key == "retiree" else c.id,
            type=type_,
            statut=statut,
            zones=zones,
            reponses={},
            departement="062",
            depose_le=date(2025, 10, 1),
        )
        s.add(cand)
        await s.flush()
        for kind in pieces:
            s.add(Piece(candidature_id=cand.id, kind=kind, sha256="0" * 64, mime="x", size=1))
        if licence:
            s.add(Diplome(candidat_id=c.id, type="LICENCE", copie_sha256="1" * 64))
        ids[key] = cand.id
    await s.commit()
    return s, ids


def test_transitions_start_from_a_complete_file() -> None:
    assert revue.transitions("complete") == ["en_examen", "retenue", "non_retenue"]
    assert revue.transitions("retenue") == ["en_examen", "non_retenue"]
    for closed in ("brouillon", "incomplete", "retiree", "supprimee"):
        assert revue.transitions(closed) == []


async def test_list_filters_by_zone_status_and_completeness(engine: AsyncEngine) -> None:
    s, ids = await seeded(engine)
    async with s:
        every = [x.id for x in await revue.lister(s, GEST)]
        assert ids["brouillon"] not in every and ids["retiree"] in every
        assert [x.id for x in await revue.lister(s, GEST, zone="Arras")] == [
            ids["complete"],
            ids["m2_sans_licence"],
            ids["retiree"],
        ]
        complete = [x.id for x in await revue.lister(s, SUP, complete=True)]
        # An M2 file without its LICENCE copy is not complete, whatever its pieces.
        assert complete == [ids["complete"], ids["m2"]]
        assert [x.id for x in await revue.lister(s, GEST, statut="en_examen")] == [ids["m2"]]
        erased = next(x for x in await revue.lister(s, GEST) if x.id == ids["retiree"])
        assert erased.nom is None
        assert await revue.lister(s, OTHER) == []
        with pytest.raises(Forbidden):
            await revue.lister(s, COORD)


async def test_status_changes_and_who_may(engine: AsyncEngine) -> None:
    s, ids = await seeded(engine)
    async with s:
        d = await revue.dossier(s, SUP, ids["complete"])
        assert d.transitions == () and d.complete
        assert (await revue.dossier(s, GEST, ids["complete"])).transitions == (
            "en_examen",
            "retenue",
            "non_retenue",
        )
        with pytest.raises(Forbidden):
            await revue.changer_statut(s, SUP, ids["complete"], "retenue")
        with pytest.raises(NotFound):
            await revue.changer_statut(s, OTHER, ids["complete"], "retenue")
        with pytest.raises(NotFound):
            await revue.dossier(s, GEST, ids["brouillon"])
        with pytest.raises(InvalidInput, match="ne peut pas devenir"):
            await revue.changer_statut(s, GEST, ids["incomplete"], "retenue")
        with pytest.raises(InvalidInput):
            await revue.changer_statut(s, GEST, ids["retiree"], "en_examen")
        with pytest.raises(InvalidInput):
            await revue.changer_statut(s, GEST, ids["complete"], "retiree")
        cand = await revue.changer_statut(s, GEST, ids["complete"], "en_examen")
        assert cand.statut == "en_examen"


async def test_only_a_retained_candidate_becomes_a_previsionnel_aesh_once(
    engine: AsyncEngine,
) -> None:
    s, ids = await seeded(engine)
    async with s:
        with pytest.raises(InvalidInput, match="retenue"):
            await revue.creer_aesh_previsionnel(s, GEST, ids["complete"])
        await revue.changer_statut(s, GEST, ids["complete"], "retenue")
        with pytest.raises(Forbidden):
            await revue.creer_aesh_previsionnel(s, SUP, ids["complete"])
        aesh = await revue.creer_aesh_previsionnel(s, GEST, ids["complete"])
        assert aesh.previsionnel and aesh.nom == "Nomcomplete" and aesh.departement == "062"
        assert aesh.email == "complete@exemple.test"
        with pytest.raises(InvalidInput, match="déjà donné"):
            await revue.creer_aesh_previsionnel(s, GEST, ids["complete"])
        assert (await revue.dossier(s, GEST, ids["complete"])).aesh_id == aesh.id
        rows = (await s.scalars(select(Aesh).where(Aesh.candidature_id == ids["complete"]))).all()
        assert len(rows) == 1
