"""Accompaniment use cases (domain 3.4): create, insert, modify, maintien.

Every refusal is a `DomainError` with a French message, raised before anything is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.dates import SchoolYear, today_paris
from core.errors import Forbidden, InvalidInput, NotFound
from core.models import (
    Accompagnement,
    AccompagnementDecision,
    Aesh,
    Affectation,
    Decision,
    Eleve,
    Etablissement,
    Mission,
)
from core.perimeter import Perimeter
from core.rules import accompaniment as rules
from core.rules.coverage import INDIVIDUELLE, MUTUALISEE
from core.rules.natures import accompanies
from core.rules.records import DecisionRec
from core.services import journal


@dataclass(frozen=True)
class NewAccompagnement:
    mission_id: str
    decision_ids: Sequence[str]
    rne: str
    debut: date | None = None
    fin: date | None = None
    heures: float | None = None
    repas: bool = False
    pause_meridienne: bool = False
    previsionnel: bool = False


def new_id() -> str:
    return "AC-" + uuid.uuid4().hex[:12].upper()


async def _decisions_in_perimeter(
    session: AsyncSession, perimeter: Perimeter, ids: Sequence[str]
) -> list[tuple[DecisionRec, Eleve]]:
    out = []
    for did in ids:
        dec = await session.get(Decision, did)
        eleve = None if dec is None else await session.get(Eleve, dec.eleve_id)
        if dec is None or eleve is None or not perimeter.contains(eleve.departement, eleve.secteur):
            # Out-of-perimeter decisions read as unknown: their existence is not ours to show.
            raise NotFound("accompagnements.decision_inconnue", decision_id=did)
        rec = DecisionRec(dec.id, dec.eleve_id, dec.type, dec.heures, dec.debut, dec.fin)
        out.append((rec, eleve))
    return out


async def _usable_mission(session: AsyncSession, mission_id: str) -> Mission:
    mission = await session.get(Mission, mission_id)
    if mission is None:
        raise NotFound("accompagnements.mission_inconnue", mission_id=mission_id)
    aesh = await session.get(Aesh, mission.aesh_id)
    if not mission.actif or aesh is None or not aesh.actif:
        raise InvalidInput("accompagnements.mission_inactive", mission_id=mission_id)
    if not accompanies(mission.nature):
        raise InvalidInput(
            "accompagnements.nature_non_accompagnante", mission_id=mission_id, nature=mission.nature
        )
    return mission


async def _check_pial_rule(
    session: AsyncSession,
    perimeter: Perimeter,
    mission: Mission,
    etab: Etablissement,
    period: rules.Period,
) -> None:
    """In a PIAL only missions affected to it that year; hors PIAL any accompanying mission."""
    if perimeter.pial_rne is not None and etab.pial_rne != perimeter.pial_rne:
        raise Forbidden(
            "accompagnements.hors_pial_coordonnateur", rne=etab.rne, pial=perimeter.pial_rne
        )
    if etab.pial_rne is None:
        return
    year = SchoolYear.of(period.debut)
    affected = await session.scalar(
        select(Affectation.id).where(
            Affectation.mission_id == mission.id,
            Affectation.pial_rne == etab.pial_rne,
            Affectation.annee == year.label,
        )
    )
    if affected is None:
        raise InvalidInput(
            "accompagnements.mission_hors_pial",
            mission_id=mission.id,
            pial=etab.pial_rne,
            annee=year.label,
        )


def _check_period(p: rules.Period, mission: Mission) -> None:
    if p.debut > p.fin:
        raise InvalidInput("accompagnements.periode_inversee", debut=p.debut, fin=p.fin)
    if rules.crosses_school_year(p):
        raise InvalidInput(
            "accompagnements.traverse_31_aout",
            debut=p.debut,
            fin=p.fin,
            limite=SchoolYear.of(p.debut).fin,
        )
    if mission.contrat.endswith("CDD") and mission.fin is not None and p.fin > mission.fin:
        raise InvalidInput("accompagnements.apres_fin_cdd", fin=p.fin, mission_fin=mission.fin)


async def create(
    session: AsyncSession,
    perimeter: Perimeter,
    new: NewAccompagnement,
    *,
    today: date | None = None,
    created_by: int | None = None,
) -> Accompagnement:
    today = today or today_paris()
    if not new.decision_ids:
        raise InvalidInput("accompagnements.sans_decision")
    decs = await _decisions_in_perimeter(session, perimeter, list(dict.fromkeys(new.decision_ids)))
    types = {d.type for d, _ in decs}
    if INDIVIDUELLE in types and (len(decs) > 1 or MUTUALISEE in types):
        raise InvalidInput("accompagnements.individuelle_seule")
    mission = await _usable_mission(session, new.mission_id)
    etab = await session.get(Etablissement, new.rne)
    if etab is None:
        raise NotFound("accompagnements.etablissement_inconnu", rne=new.rne)

    records = [d for d, _ in decs]
    individual = INDIVIDUELLE in types
    default = (
        rules.default_individual(records[0], today)
        if individual
        else rules.default_mutualised(records)
    )
    if new.debut is None and new.fin is None:
        default = rules.bound_by_contract(default, mission.contrat, mission.fin)
    period = rules.Period(new.debut or default.debut, new.fin or default.fin)
    if new.debut is not None and new.fin is None:
        period = rules.bound_by_contract(
            rules.Period(period.debut, min(period.fin, SchoolYear.of(period.debut).fin)),
            mission.contrat,
            mission.fin,
        )
    _check_period(period, mission)
    await _check_pial_rule(session, perimeter, mission, etab, period)
    heures = (
        new.heures
        if new.heures is not None
        else (records[0].heures if individual and records[0].heures is not None else mission.heures)
    )
    if heures <= 0:
        raise InvalidInput("accompagnements.heures_invalides", heures=heures)

    acc = Accompagnement(
        id=new_id(),
        mission_id=mission.id,
        rne=etab.rne,
        debut=period.debut,
        fin=period.fin,
        heures=heures,
        repas=new.repas,
        pause_meridienne=new.pause_meridienne,
        maintien=False,
        previsionnel=new.previsionnel or mission.previsionnel,
        created_by=created_by,
    )
    session.add(acc)
    await session.flush()
    await session.execute(
        insert(AccompagnementDecision),
        [{"accompagnement_id": acc.id, "decision_id": d.id} for d in records],
    )
    await _inform_erseh(session, acc, decs, etab, "accompagnement.cree")
    return acc


async def _inform_erseh(
    session: AsyncSession,
    acc: Accompagnement,
    decs: Sequence[tuple[DecisionRec, Eleve]],
    etab: Etablissement,
    kind: str,
) -> None:
    await journal.record_many(
        session,
        [
            journal.entry(
                kind,
                "accompagnement",
                acc.id,
                departement=eleve.departement,
                secteur=eleve.secteur,
                pial_rne=etab.pial_rne,
                eleve_id=eleve.id,
                changes={
                    "decision_id": d.id,
                    "mission_id": acc.mission_id,
                    "debut": acc.debut.isoformat(),
                    "fin": acc.fin.isoformat(),
                    "heures": acc.heures,
                    "erseh_email": eleve.erseh_email,
                },
            )
            for d, eleve in decs
        ],
    )


async def _load(
    session: AsyncSession, perimeter: Perimeter, acc_id: str
) -> tuple[Accompagnement, list[tuple[DecisionRec, Eleve]], Etablissement]:
    acc = await session.get(Accompagnement, acc_id)
    if acc is None:
        raise NotFound("accompagnements.inconnu", accompagnement_id=acc_id)
    ids = (
        await session.scalars(
            select(AccompagnementDecision.decision_id).where(
                AccompagnementDecision.accompagnement_id == acc_id
            )
        )
    ).all()
    try:
        decs = await _decisions_in_perimeter(session, perimeter, list(ids))
    except NotFound:
        raise NotFound("accompagnements.inconnu", accompagnement_id=acc_id) from None
    etab = await session.get(Etablissement, acc.rne)
    assert etab is not None  # foreign key
    if perimeter.pial_rne is not None and etab.pial_rne != perimeter.pial_rne:
        raise NotFound("accompagnements.inconnu", accompagnement_id=acc_id)
    return acc, decs, etab


async def inserer(
    session: AsyncSession,
    perimeter: Perimeter,
    original_id: str,
    debut: date,
    fin: date,
    *,
    mission_id: str | None = None,
    heures: float | None = None,
    created_by: int | None = None,
) -> Accompagnement:
    """A new accompaniment replacing `original_id` on the overlapping days (cut or split)."""
    original, decs, etab = await _load(session, perimeter, original_id)
    mission = await _usable_mission(session, mission_id or original.mission_id)
    period = rules.Period(debut, fin)
    _check_period(period, mission)
    await _check_pial_rule(session, perimeter, mission, etab, period)
    remains = rules.cut_for_insert(rules.Period(original.debut, original.fin), period)
    if remains == [rules.Period(original.debut, original.fin)]:
        raise InvalidInput("accompagnements.insertion_hors_periode", accompagnement_id=original_id)
    decision_ids = [d.id for d, _ in decs]
    if not remains:
        await session.execute(delete(Accompagnement).where(Accompagnement.id == original.id))
    else:
        original.debut, original.fin = remains[0]
        if len(remains) == 2:
            twin = Accompagnement(
                id=new_id(),
                mission_id=original.mission_id,
                rne=original.rne,
                debut=remains[1].debut,
                fin=remains[1].fin,
                heures=original.heures,
                repas=original.repas,
                pause_meridienne=original.pause_meridienne,
                maintien=original.maintien,
                previsionnel=original.previsionnel,
                created_by=original.created_by,
            )
            session.add(twin)
            await session.flush()
            await session.execute(
                insert(AccompagnementDecision),
                [{"accompagnement_id": twin.id, "decision_id": d} for d in decision_ids],
            )
    new = Accompagnement(
        id=new_id(),
        mission_id=mission.id,
        rne=original.rne,
        debut=debut,
        fin=fin,
        heures=heures if heures is not None else original.heures,
        repas=original.repas,
        pause_meridienne=original.pause_meridienne,
        maintien=False,
        previsionnel=mission.previsionnel,
        created_by=created_by,
    )
    session.add(new)
    await session.flush()
    await session.execute(
        insert(AccompagnementDecision),
        [{"accompagnement_id": new.id, "decision_id": d} for d in decision_ids],
    )
    await _inform_erseh(session, new, decs, etab, "accompagnement.cree")
    return new


async def modifier(
    session: AsyncSession,
    perimeter: Perimeter,
    acc_id: str,
    *,
    debut: date | None = None,
    fin: date | None = None,
    heures: float | None = None,
) -> Accompagnement:
    acc, decs, etab = await _load(session, perimeter, acc_id)
    mission = await session.get(Mission, acc.mission_id)
    assert mission is not None
    period = rules.Period(debut or acc.debut, fin or acc.fin)
    _check_period(period, mission)
    if heures is not None and heures <= 0:
        raise InvalidInput("accompagnements.heures_invalides", heures=heures)
    if not acc.maintien and period.fin > min(d.fin for d, _ in decs):
        raise InvalidInput(
            "accompagnements.apres_fin_decision_sans_maintien",
            fin=period.fin,
            decision_fin=min(d.fin for d, _ in decs),
        )
    acc.debut, acc.fin = period
    if heures is not None:
        acc.heures = heures
    await session.flush()
    await _inform_erseh(session, acc, decs, etab, "accompagnement.modifie")
    return acc


async def maintenir(
    session: AsyncSession, perimeter: Perimeter, acc_id: str, fin: date
) -> Accompagnement:
    """Prolong an accompaniment after its decision ends; it is then marked maintien."""
    acc, decs, etab = await _load(session, perimeter, acc_id)
    mission = await session.get(Mission, acc.mission_id)
    assert mission is not None
    decision_fin = max(d.fin for d, _ in decs)
    if fin <= decision_fin:
        raise InvalidInput(
            "accompagnements.maintien_avant_fin_decision", fin=fin, decision_fin=decision_fin
        )
    period = rules.Period(acc.debut, fin)
    _check_period(period, mission)
    acc.fin = fin
    acc.maintien = True
    await session.flush()
    await _inform_erseh(session, acc, decs, etab, "accompagnement.maintien")
    return acc
