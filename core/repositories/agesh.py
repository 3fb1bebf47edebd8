"""Loading the columns the AGESH rules need, scoped to a perimeter, as plain records.

Hot paths select columns (never ORM objects) and share one filter subquery so that the
database, not Python, narrows the rows to the caller's perimeter.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, TypeAlias

from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.dates import SchoolYear
from core.models import (
    Accompagnement,
    AccompagnementDecision,
    Aesh,
    Affectation,
    Decision,
    Eleve,
    Etablissement,
    Mission,
    Pial,
    Scolarisation,
)
from core.perimeter import Perimeter
from core.rules.records import (
    AccRec,
    AffectationRec,
    DecisionRec,
    EleveRec,
    MissionRec,
    ScolRec,
)

AnySelect: TypeAlias = Select[*tuple[Any, ...]]

DECISION_COLS = (
    Decision.id,
    Decision.eleve_id,
    Decision.type,
    Decision.heures,
    Decision.debut,
    Decision.fin,
)
SCOL_COLS = (Scolarisation.eleve_id, Scolarisation.rne, Scolarisation.debut, Scolarisation.fin)
ACC_COLS = (
    Accompagnement.id,
    Accompagnement.mission_id,
    Accompagnement.rne,
    Accompagnement.debut,
    Accompagnement.fin,
    Accompagnement.heures,
    Accompagnement.maintien,
    Accompagnement.previsionnel,
)
MISSION_COLS = (
    Mission.id,
    Mission.aesh_id,
    Mission.nature,
    Mission.debut,
    Mission.fin,
    Mission.heures,
    Mission.actif,
    Aesh.actif,
    Mission.previsionnel,
    Mission.contrat,
)


async def _fetch(session: AsyncSession, q: AnySelect) -> list[Any]:
    """Rows as plain tuples; typed loosely because each caller builds its own record."""
    return list((await session.execute(q)).all())


def _eleve_filter(p: Perimeter) -> list[Any]:
    cond: list[Any] = []
    if p.departement is not None:
        cond.append(Eleve.departement == p.departement)
    if p.secteurs is not None:
        cond.append(Eleve.secteur.in_(sorted(p.secteurs)))
    return cond


def _pial_filter(p: Perimeter, year: SchoolYear | None) -> Any:
    """Student schooled in an établissement of the PIAL during the decision (∩ year)."""
    etab_in_pial = select(Etablissement.rne).where(Etablissement.pial_rne == p.pial_rne)
    cond = [
        Scolarisation.eleve_id == Decision.eleve_id,
        Scolarisation.rne.in_(etab_in_pial),
        Scolarisation.debut <= Decision.fin,
        or_(Scolarisation.fin.is_(None), Scolarisation.fin >= Decision.debut),
    ]
    if year is not None:
        cond += [
            Scolarisation.debut <= year.fin,
            or_(Scolarisation.fin.is_(None), Scolarisation.fin >= year.debut),
        ]
    return exists().where(and_(*cond))


def decision_ids_query(p: Perimeter, year: SchoolYear | None) -> AnySelect:
    q = select(Decision.id)
    return _scoped(q, p, year)


def _scoped(q: AnySelect, p: Perimeter, year: SchoolYear | None) -> AnySelect:
    cond = _eleve_filter(p)
    if cond:
        q = q.join(Eleve, Eleve.id == Decision.eleve_id).where(*cond)
    if year is not None:
        q = q.where(Decision.debut <= year.fin, Decision.fin >= year.debut)
    if p.pial_rne is not None:
        q = q.where(_pial_filter(p, year))
    return q


async def decisions(
    session: AsyncSession, p: Perimeter, year: SchoolYear | None
) -> list[DecisionRec]:
    rows = await _fetch(session, _scoped(select(*DECISION_COLS), p, year))
    return [DecisionRec(*r) for r in rows]


def _students_query(p: Perimeter, year: SchoolYear | None) -> AnySelect:
    return _scoped(select(Decision.eleve_id), p, year)


async def scolarisations_by_eleve(
    session: AsyncSession, p: Perimeter, year: SchoolYear | None
) -> dict[str, list[ScolRec]]:
    q = select(*SCOL_COLS)
    if p.departement is not None or p.secteurs is not None or p.pial_rne is not None:
        q = q.where(Scolarisation.eleve_id.in_(_students_query(p, year)))
    out: dict[str, list[ScolRec]] = defaultdict(list)
    for r in await _fetch(session, q):
        out[r[0]].append(ScolRec(*r))
    return out


async def decisions_of_students(
    session: AsyncSession, p: Perimeter, year: SchoolYear | None
) -> dict[str, list[DecisionRec]]:
    """Every decision (any year) of the students having a decision in scope."""
    q = select(*DECISION_COLS)
    if p.departement is not None or p.secteurs is not None or p.pial_rne is not None:
        q = q.where(Decision.eleve_id.in_(_students_query(p, year)))
    out: dict[str, list[DecisionRec]] = defaultdict(list)
    for r in await _fetch(session, q):
        out[r[1]].append(DecisionRec(*r))
    return out


async def accompaniments_by_decision(
    session: AsyncSession, p: Perimeter, year: SchoolYear | None
) -> dict[str, list[AccRec]]:
    """Accompaniments (any period) of the decisions in scope, keyed by decision."""
    q = select(AccompagnementDecision.decision_id, *ACC_COLS).join(
        Accompagnement, Accompagnement.id == AccompagnementDecision.accompagnement_id
    )
    if p.departement is not None or p.secteurs is not None or p.pial_rne is not None or year:
        q = q.where(AccompagnementDecision.decision_id.in_(decision_ids_query(p, year)))
    out: dict[str, list[AccRec]] = defaultdict(list)
    for r in await _fetch(session, q):
        out[r[0]].append(AccRec(*r[1:]))
    return out


async def accompanied_decision_ids(session: AsyncSession, p: Perimeter) -> set[str]:
    q = select(AccompagnementDecision.decision_id).distinct()
    if p.departement is not None or p.secteurs is not None or p.pial_rne is not None:
        q = q.where(AccompagnementDecision.decision_id.in_(decision_ids_query(p, None)))
    return set((await session.scalars(q)).all())


async def previsionnel_mission_ids(
    session: AsyncSession, mission_ids: Sequence[str] | None
) -> frozenset[str]:
    q = select(Mission.id).where(Mission.previsionnel.is_(True))
    return frozenset((await session.scalars(q)).all())


# --- anomalies -------------------------------------------------------------------------


def _acc_in_scope(p: Perimeter, year: SchoolYear) -> AnySelect:
    """Accompaniments of the year linked to at least one decision of the perimeter."""
    q = select(*ACC_COLS).where(Accompagnement.debut <= year.fin, Accompagnement.fin >= year.debut)
    if p.departement is not None or p.secteurs is not None:
        linked = (
            select(AccompagnementDecision.accompagnement_id)
            .join(Decision, Decision.id == AccompagnementDecision.decision_id)
            .join(Eleve, Eleve.id == Decision.eleve_id)
            .where(*_eleve_filter(p))
        )
        q = q.where(Accompagnement.id.in_(linked))
    if p.pial_rne is not None:
        q = q.where(
            Accompagnement.rne.in_(
                select(Etablissement.rne).where(Etablissement.pial_rne == p.pial_rne)
            )
        )
    return q


class AnomalyData:
    def __init__(self) -> None:
        self.accs: list[AccRec] = []
        self.acc_decisions: dict[str, list[str]] = defaultdict(list)
        self.decisions: dict[str, DecisionRec] = {}
        self.missions: dict[str, MissionRec] = {}
        self.scols_by_eleve: dict[str, list[ScolRec]] = defaultdict(list)
        self.eleves: dict[str, EleveRec] = {}
        self.accs_by_mission: dict[str, list[AccRec]] = defaultdict(list)


async def anomaly_data(session: AsyncSession, p: Perimeter, year: SchoolYear) -> AnomalyData:
    data = AnomalyData()
    scope = _acc_in_scope(p, year)
    data.accs = [AccRec(*r) for r in await _fetch(session, scope)]
    scoped = p.departement is not None or p.secteurs is not None or p.pial_rne is not None
    acc_ids = scope.with_only_columns(Accompagnement.id)
    mission_ids = scope.with_only_columns(Accompagnement.mission_id)

    q_links = select(AccompagnementDecision.accompagnement_id, AccompagnementDecision.decision_id)
    q_dec = select(*DECISION_COLS)
    dec_ids = select(AccompagnementDecision.decision_id).where(
        AccompagnementDecision.accompagnement_id.in_(acc_ids)
    )
    q_dec = q_dec.where(Decision.id.in_(dec_ids))
    if scoped:
        q_links = q_links.where(AccompagnementDecision.accompagnement_id.in_(acc_ids))
    for a, d in await _fetch(session, q_links):
        data.acc_decisions[a].append(d)
    for r in await _fetch(session, q_dec):
        data.decisions[r[0]] = DecisionRec(*r)

    eleve_ids = select(Decision.eleve_id).where(Decision.id.in_(dec_ids))
    for r in await _fetch(session, select(*SCOL_COLS).where(Scolarisation.eleve_id.in_(eleve_ids))):
        data.scols_by_eleve[r[0]].append(ScolRec(*r))
    for r in await _fetch(session,
        select(Eleve.id, Eleve.dossier_etat).where(Eleve.id.in_(eleve_ids))
    ):
        data.eleves[r[0]] = EleveRec(*r)

    q_m = select(*MISSION_COLS).join(Aesh, Aesh.id == Mission.aesh_id)
    if scoped:
        q_m = q_m.where(Mission.id.in_(mission_ids))
    for r in await _fetch(session, q_m):
        data.missions[r[0]] = MissionRec(*r)
    # Type 6 compares with every accompaniment of the mission, whatever its perimeter.
    q_all = select(*ACC_COLS)
    if scoped:
        q_all = q_all.where(Accompagnement.mission_id.in_(mission_ids))
    for r in await _fetch(session, q_all):
        data.accs_by_mission[r[1]].append(AccRec(*r))
    return data


# --- PIAL --------------------------------------------------------------------------------


async def pials(session: AsyncSession, p: Perimeter) -> list[tuple[str, str]]:
    """(rne, departement) of the PIAL in the perimeter, sorted."""
    q = select(Pial.rne, Pial.departement).order_by(Pial.rne)
    if p.departement is not None:
        q = q.where(Pial.departement == p.departement)
    if p.pial_rne is not None:
        q = q.where(Pial.rne == p.pial_rne)
    return [(r[0], r[1]) for r in await _fetch(session, q)]


async def pial_of_rne(session: AsyncSession, p: Perimeter) -> dict[str, str]:
    q = select(Etablissement.rne, Etablissement.pial_rne).where(Etablissement.pial_rne.is_not(None))
    if p.departement is not None:
        q = q.where(Etablissement.departement == p.departement)
    return {r[0]: r[1] for r in await _fetch(session, q) if r[1] is not None}


async def affectations(
    session: AsyncSession, pial_rnes: Sequence[str], year: SchoolYear, p: Perimeter
) -> tuple[list[AffectationRec], dict[str, MissionRec]]:
    q = select(Affectation.mission_id, Affectation.pial_rne, Affectation.heures).where(
        Affectation.annee == year.label
    )
    if p.departement is not None:
        q = q.where(
            Affectation.pial_rne.in_(select(Pial.rne).where(Pial.departement == p.departement))
        )
    if p.pial_rne is not None:
        q = q.where(Affectation.pial_rne == p.pial_rne)
    wanted = set(pial_rnes)
    affs = [AffectationRec(*r) for r in await _fetch(session, q) if r[1] in wanted]
    qm = (
        select(*MISSION_COLS)
        .join(Aesh, Aesh.id == Mission.aesh_id)
        .where(Mission.id.in_(q.with_only_columns(Affectation.mission_id)))
    )
    missions = {r[0]: MissionRec(*r) for r in await _fetch(session, qm)}
    return affs, missions
