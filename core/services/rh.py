"""Prévisionnel AESH and missions (domain 3.2, 2.8): planned before the HR file exists.

HR-imported AESH and missions are read-only here; only prévisionnel ones may be edited.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.dates import today_paris
from core.errors import InvalidInput, NotFound
from core.models import Aesh, Etablissement, Mission, Pial
from core.rules.natures import BY_CODE
from core.rules.workload import reference_for_mission, weekly_hours
from core.services import parametres

CONTRATS = ("T2-CDD", "T2-CDI", "HT2-CDD")


@dataclass(frozen=True)
class AeshInput:
    nom: str
    prenom: str
    date_naissance: date | None = None
    commune: str | None = None
    code_postal: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    email: str | None = None
    telephone: str | None = None


@dataclass(frozen=True)
class MissionInput:
    aesh_id: str
    contrat: str
    nature: str
    debut: date
    fin: date | None
    quotite: float | None
    heures: float | None = None
    employeur_rne: str | None = None
    pial_rne: str | None = None


async def create_aesh_previsionnel(
    session: AsyncSession, departement: str, data: AeshInput, candidature_id: int | None = None
) -> Aesh:
    if not data.nom.strip() or not data.prenom.strip():
        raise InvalidInput("rh.identite_requise")
    aesh = Aesh(
        id="PREV-" + uuid.uuid4().hex[:10].upper(),
        source="PREV",
        actif=True,
        previsionnel=True,
        departement=departement,
        candidature_id=candidature_id,
        **{f.name: getattr(data, f.name) for f in fields(data)},
    )
    session.add(aesh)
    await session.flush()
    return aesh


async def update_aesh_previsionnel(session: AsyncSession, aesh_id: str, **changes: Any) -> Aesh:
    aesh = await session.get(Aesh, aesh_id)
    if aesh is None:
        raise NotFound("rh.aesh_inconnu", aesh_id=aesh_id)
    if not aesh.previsionnel:
        raise InvalidInput("rh.lecture_seule_aesh", aesh_id=aesh_id)
    allowed = {f.name for f in fields(AeshInput)}
    for key, value in changes.items():
        if key not in allowed:
            raise InvalidInput("rh.champ_inconnu", champ=key)
        setattr(aesh, key, value)
    await session.flush()
    return aesh


async def _validate_mission(session: AsyncSession, data: MissionInput) -> str | None:
    if data.contrat not in CONTRATS:
        raise InvalidInput("rh.contrat_inconnu", contrat=data.contrat, attendus=", ".join(CONTRATS))
    nature = BY_CODE.get(data.nature)
    if nature is None:
        raise InvalidInput("rh.nature_inconnue", nature=data.nature)
    if not data.contrat.startswith(nature.contrat + "-"):
        raise InvalidInput("rh.nature_contrat", nature=data.nature, contrat=data.contrat)
    if data.fin is None and data.contrat.endswith("CDD"):
        raise InvalidInput("rh.cdd_sans_fin")
    if data.fin is not None and data.fin < data.debut:
        raise InvalidInput("rh.periode_inversee", debut=data.debut, fin=data.fin)
    if data.quotite is not None and not 0 < data.quotite <= 100:
        raise InvalidInput("rh.quotite_invalide", quotite=data.quotite)
    if data.heures is not None and not 0 < data.heures <= 60:
        raise InvalidInput("rh.heures_invalides", heures=data.heures)
    dep = None
    if data.employeur_rne:
        etab = await session.get(Etablissement, data.employeur_rne)
        if etab is None:
            raise NotFound("rh.etablissement_inconnu", rne=data.employeur_rne)
        dep = etab.departement
    if data.pial_rne:
        pial = await session.get(Pial, data.pial_rne)
        if pial is None:
            raise NotFound("rh.pial_inconnu", pial=data.pial_rne)
        dep = dep or pial.departement
    return dep


async def _reference(session: AsyncSession, dep: str | None, data: MissionInput) -> float | None:
    if dep is None:
        return None
    refs = await parametres.references(session, dep)
    return reference_for_mission(refs, data.debut, data.fin, today_paris())


async def create_mission_previsionnelle(session: AsyncSession, data: MissionInput) -> Mission:
    aesh = await session.get(Aesh, data.aesh_id)
    if aesh is None:
        raise NotFound("rh.aesh_inconnu", aesh_id=data.aesh_id)
    if not aesh.actif:
        raise InvalidInput("rh.aesh_inactif", aesh_id=data.aesh_id)
    dep = await _validate_mission(session, data) or aesh.departement
    reference = await _reference(session, dep, data)
    mission = Mission(
        id="PREV-M-" + uuid.uuid4().hex[:10].upper(),
        aesh_id=aesh.id,
        contrat=data.contrat,
        nature=data.nature,
        debut=data.debut,
        fin=data.fin,
        quotite=data.quotite,
        heures_rh=data.heures,
        heures=weekly_hours(data.heures, data.quotite, reference),
        employeur_rne=data.employeur_rne,
        pial_rne=data.pial_rne,
        previsionnel=True,
        actif=True,
        departement=dep,
    )
    session.add(mission)
    await session.flush()
    return mission


async def update_mission_previsionnelle(
    session: AsyncSession, mission_id: str, data: MissionInput
) -> Mission:
    mission = await session.get(Mission, mission_id)
    if mission is None:
        raise NotFound("rh.mission_inconnue", mission_id=mission_id)
    if not mission.previsionnel:
        raise InvalidInput("rh.lecture_seule_mission", mission_id=mission_id)
    if data.aesh_id != mission.aesh_id:
        raise InvalidInput("rh.changement_aesh")
    dep = await _validate_mission(session, data) or mission.departement
    reference = await _reference(session, dep, data)
    mission.contrat, mission.nature = data.contrat, data.nature
    mission.debut, mission.fin, mission.quotite = data.debut, data.fin, data.quotite
    mission.heures_rh = data.heures
    mission.heures = weekly_hours(data.heures, data.quotite, reference)
    mission.employeur_rne, mission.pial_rne, mission.departement = (
        data.employeur_rne,
        data.pial_rne,
        dep,
    )
    await session.flush()
    return mission
