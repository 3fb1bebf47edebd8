"""Affectation of missions to PIAL for a school year (domain 3.7)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.dates import SchoolYear
from core.errors import InvalidInput, NotFound
from core.models import Affectation, Etablissement, Mission, Pial
from core.perimeter import Perimeter
from core.rules.natures import ACCOMPANYING
from core.texts import t


@dataclass
class AutoAffectation:
    created: list[tuple[str, str]] = field(default_factory=list)  # (mission_id, pial_rne)
    unplaced: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "affectees": [{"mission_id": m, "pial_rne": p} for m, p in self.created],
            "non_placees": self.unplaced,
        }


async def auto_affecter(
    session: AsyncSession, perimeter: Perimeter, year: SchoolYear
) -> AutoAffectation:
    """Affect every active accompanying mission of the year to its PIAL, unless already done.

    The HR tête-de-PIAL field wins; else the employing établissement's PIAL. A mission that
    fits neither is reported, never guessed.
    """
    q = (
        select(Mission.id, Mission.pial_rne, Mission.employeur_rne)
        .where(
            Mission.actif.is_(True),
            Mission.nature.in_(sorted(ACCOMPANYING)),
            Mission.debut <= year.fin,
            (Mission.fin.is_(None)) | (Mission.fin >= year.debut),
            ~Mission.id.in_(select(Affectation.mission_id).where(Affectation.annee == year.label)),
        )
        .order_by(Mission.id)
    )
    if perimeter.departement is not None:
        q = q.where(Mission.departement == perimeter.departement)
    known_pials = set((await session.scalars(select(Pial.rne))).all())
    etab_pial = {
        r[0]: r[1] for r in await session.execute(select(Etablissement.rne, Etablissement.pial_rne))
    }
    result = AutoAffectation()
    rows: list[dict[str, Any]] = []
    for mission_id, pial_rne, employeur in await session.execute(q):
        target = None
        if pial_rne and pial_rne in known_pials:
            target = pial_rne
        elif employeur and etab_pial.get(employeur) in known_pials:
            target = etab_pial[employeur]
        if target is None:
            reason = (
                t("affectations.pial_inconnu", pial=pial_rne)
                if pial_rne
                else t("affectations.sans_pial", employeur=employeur or "—")
            )
            result.unplaced.append({"mission_id": mission_id, "raison": reason})
            continue
        if perimeter.pial_rne is not None and target != perimeter.pial_rne:
            continue
        result.created.append((mission_id, target))
        rows.append(
            {"mission_id": mission_id, "pial_rne": target, "annee": year.label, "heures": None}
        )
    for i in range(0, len(rows), 2000):
        await session.execute(insert(Affectation), rows[i : i + 2000])
    return result


async def affecter(
    session: AsyncSession, mission_id: str, pial_rne: str, year: SchoolYear, heures: float | None
) -> Affectation:
    """Affect (or re-affect) a mission to a PIAL with a volume ≤ its weekly hours."""
    mission = await session.get(Mission, mission_id)
    if mission is None:
        raise NotFound("affectations.mission_inconnue", mission_id=mission_id)
    if await session.get(Pial, pial_rne) is None:
        raise NotFound("affectations.pial_introuvable", pial=pial_rne)
    if mission.nature not in ACCOMPANYING:
        raise InvalidInput(
            "affectations.nature_non_accompagnante", mission_id=mission_id, nature=mission.nature
        )
    if heures is not None and not 0 < heures <= mission.heures:
        raise InvalidInput(
            "affectations.volume_invalide", heures=heures, mission_heures=mission.heures
        )
    existing = await session.scalar(
        select(Affectation).where(
            Affectation.mission_id == mission_id,
            Affectation.pial_rne == pial_rne,
            Affectation.annee == year.label,
        )
    )
    if existing is None:
        existing = Affectation(
            mission_id=mission_id, pial_rne=pial_rne, annee=year.label, heures=heures
        )
        session.add(existing)
    else:
        existing.heures = heures
    await session.flush()
    return existing
