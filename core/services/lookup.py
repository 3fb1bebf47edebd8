"""Look-ups behind the service's chat commands: a decision's detail, student search, an AESH's
file, a PIAL's missions (domain 3.3-3.5, 3.10).

Everything here takes the caller's `Perimeter` and answers None (or leaves out) what lies
outside it, so that "unknown" and "not yours" read the same to the caller.

Student search (domain 3.10) and privacy. The search runs over the whole académie with an
exact match on nom and prénom (case and accents as stored) and an optional birth date, but
what it may say depends on where the matches are:
- in the caller's perimeter: shown (initials and file id; full names only in the detail
  view, and only when the department allows it);
- inside what the caller's role *grants* but outside the secteurs they chose with
  /perimetre: only a count, with the hint to widen the choice (they could see these
  students anyway by widening it, so the count tells them nothing new);
- anywhere else (another secteur, PIAL or department): nothing at all. The answer is word
  for word the one for "no such student", so that a search cannot be used to learn that a
  named child has a notification somewhere else (health data of a minor).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, or_, select, tuple_
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
    ParametreDepartement,
    Scolarisation,
)
from core.perimeter import Perimeter
from core.repositories import agesh
from core.rules import coverage as coverage_rules
from core.rules.natures import BY_CODE
from core.rules.records import AccRec, DecisionRec, ScolRec
from core.services.documents import initiales

FULL_NAMES_KEY = "noms_complets"


# --- students ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EleveBrief:
    id: str
    nom: str
    prenom: str
    date_naissance: date | None
    secteur: str | None
    departement: str | None
    dossier_etat: str

    @property
    def initiales(self) -> str:
        return initiales(self.prenom, self.nom)

    def label(self, full_names: bool = False) -> str:
        """`É. D. — EL0042`; with full names (detail views only) `DURAND Émilie — EL0042`."""
        who = f"{self.nom} {self.prenom}" if full_names else self.initiales
        return f"{who} — {self.id}"


def _brief(e: Eleve) -> EleveBrief:
    return EleveBrief(
        e.id, e.nom, e.prenom, e.date_naissance, e.secteur, e.departement, e.dossier_etat
    )


async def eleves(session: AsyncSession, ids: Iterable[str]) -> dict[str, EleveBrief]:
    wanted = sorted(set(ids))
    out: dict[str, EleveBrief] = {}
    for i in range(0, len(wanted), 500):
        for e in await session.scalars(select(Eleve).where(Eleve.id.in_(wanted[i : i + 500]))):
            out[e.id] = _brief(e)
    return out


async def full_names_allowed(session: AsyncSession, departement: str | None) -> bool:
    """`parametres_departement.valeurs["noms_complets"]`, false unless set to true."""
    if departement is None:
        return False
    row = await session.get(ParametreDepartement, departement)
    return bool(row is not None and row.valeurs.get(FULL_NAMES_KEY) is True)


def name_splits(words: Sequence[str]) -> list[tuple[str, str]]:
    """Every (nom, prénom) reading of `NOM Prénom` when either may hold several words."""
    return [(" ".join(words[:i]), " ".join(words[i:])) for i in range(1, len(words))]


async def _visible_eleve_ids(
    session: AsyncSession,
    perimeter: Perimeter,
    candidates: Iterable[tuple[str, str | None, str | None]],
) -> set[str]:
    """Ids among (id, departement, secteur) that the perimeter shows."""
    inside = {i for i, dep, secteur in candidates if perimeter.contains(dep, secteur)}
    if perimeter.pial_rne is None or not inside:
        return inside
    # A PIAL's students are those with a decision while schooled in the PIAL.
    q = select(Decision.eleve_id).where(
        Decision.id.in_(agesh.decision_ids_query(perimeter, None)),
        Decision.eleve_id.in_(sorted(inside)),
    )
    return set(await session.scalars(q))


def _keys(found: Iterable[Eleve]) -> list[tuple[str, str | None, str | None]]:
    return [(e.id, e.departement, e.secteur) for e in found]


@dataclass(frozen=True)
class EleveSearch:
    visibles: list[EleveBrief]
    hors_selection: int  # matches within the grant but outside the chosen secteurs


async def search_eleves(
    session: AsyncSession,
    perimeter: Perimeter,
    grant: Perimeter,
    words: Sequence[str],
    naissance: date | None = None,
) -> EleveSearch:
    pairs = name_splits(words)
    if not pairs:
        return EleveSearch([], 0)
    # `=` compares as stored on SQLite and PostgreSQL alike: case and accents count.
    q = select(Eleve).where(tuple_(Eleve.nom, Eleve.prenom).in_(pairs))
    if naissance is not None:
        q = q.where(Eleve.date_naissance == naissance)
    found = list(await session.scalars(q.order_by(Eleve.id).limit(200)))
    visible = await _visible_eleve_ids(session, perimeter, _keys(found))
    granted = (
        await _visible_eleve_ids(session, grant, _keys(found)) if grant != perimeter else visible
    )
    return EleveSearch([_brief(e) for e in found if e.id in visible], len(granted - visible))


@dataclass(frozen=True)
class ScolLine:
    rne: str
    etablissement: str
    debut: date
    fin: date | None
    classe: str | None


@dataclass(frozen=True)
class DecisionLine:
    id: str
    type: str
    heures: float | None
    debut: date
    fin: date


@dataclass(frozen=True)
class EleveDetail:
    eleve: EleveBrief
    scolarisations: list[ScolLine]
    decisions: list[DecisionLine]


async def _scol_lines(session: AsyncSession, eleve_id: str) -> list[ScolLine]:
    rows = await session.execute(
        select(Scolarisation, Etablissement.nom)
        .join(Etablissement, Etablissement.rne == Scolarisation.rne)
        .where(Scolarisation.eleve_id == eleve_id)
        .order_by(Scolarisation.debut)
    )
    return [ScolLine(s.rne, nom, s.debut, s.fin, s.classe) for s, nom in rows]


async def eleve_detail(
    session: AsyncSession, perimeter: Perimeter, eleve_id: str
) -> EleveDetail | None:
    e = await session.get(Eleve, eleve_id)
    if e is None or e.id not in await _visible_eleve_ids(session, perimeter, _keys([e])):
        return None
    decs = await session.scalars(
        select(Decision)
        .where(
            Decision.eleve_id == eleve_id,
            Decision.id.in_(agesh.decision_ids_query(perimeter, None)),
        )
        .order_by(Decision.debut, Decision.id)
    )
    return EleveDetail(
        _brief(e),
        await _scol_lines(session, eleve_id),
        [DecisionLine(d.id, d.type, d.heures, d.debut, d.fin) for d in decs],
    )


# --- one decision ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AccLine:
    id: str
    mission_id: str
    nature: str
    aesh_id: str
    aesh_nom: str
    aesh_prenom: str
    rne: str
    etablissement: str
    debut: date
    fin: date
    heures: float
    maintien: bool
    previsionnel: bool


@dataclass(frozen=True)
class DecisionDetail:
    id: str
    eleve: EleveBrief
    type: str
    heures: float | None
    origine: str | None
    nature: str | None
    debut: date
    fin: date
    couverture: float
    priorite: float
    depassement: bool
    etat: str  # on `today`
    scolarisations: list[ScolLine]
    accompagnements: list[AccLine]
    segments: list[coverage_rules.Segment]


async def decision_visible(session: AsyncSession, perimeter: Perimeter, decision_id: str) -> bool:
    q = agesh.decision_ids_query(perimeter, None).where(Decision.id == decision_id)
    return (await session.scalar(q)) is not None


async def decision_detail(
    session: AsyncSession, perimeter: Perimeter, decision_id: str, today: date
) -> DecisionDetail | None:
    if not await decision_visible(session, perimeter, decision_id):
        return None
    dec = await session.get(Decision, decision_id)
    eleve = None if dec is None else await session.get(Eleve, dec.eleve_id)
    if dec is None or eleve is None:
        return None
    rec = DecisionRec(dec.id, dec.eleve_id, dec.type, dec.heures, dec.debut, dec.fin)
    scols = [
        ScolRec(s.eleve_id, s.rne, s.debut, s.fin)
        for s in await session.scalars(
            select(Scolarisation).where(Scolarisation.eleve_id == dec.eleve_id)
        )
    ]
    rows = (
        await session.execute(
            select(Accompagnement, Mission, Aesh, Etablissement.nom)
            .join(
                AccompagnementDecision,
                AccompagnementDecision.accompagnement_id == Accompagnement.id,
            )
            .join(Mission, Mission.id == Accompagnement.mission_id)
            .join(Aesh, Aesh.id == Mission.aesh_id)
            .join(Etablissement, Etablissement.rne == Accompagnement.rne)
            .where(AccompagnementDecision.decision_id == decision_id)
            .order_by(Accompagnement.debut, Accompagnement.id)
        )
    ).all()
    accs = [
        AccRec(a.id, a.mission_id, a.rne, a.debut, a.fin, a.heures, a.maintien, a.previsionnel)
        for a, _, _, _ in rows
    ]
    prev_missions = frozenset(m.id for _, m, _, _ in rows if m.previsionnel)
    ps = coverage_rules.pieces(rec, scols, accs, prev_missions)
    cov = coverage_rules.coverage_of(ps)
    return DecisionDetail(
        id=dec.id,
        eleve=_brief(eleve),
        type=dec.type,
        heures=dec.heures,
        origine=dec.origine,
        nature=dec.nature,
        debut=dec.debut,
        fin=dec.fin,
        couverture=round(cov.couverture, 4),
        priorite=round(cov.priorite, 4),
        depassement=cov.depassement,
        etat=coverage_rules.state_on(ps, rec, today),
        scolarisations=await _scol_lines(session, dec.eleve_id),
        accompagnements=[
            AccLine(
                a.id,
                m.id,
                m.nature,
                ae.id,
                ae.nom,
                ae.prenom,
                a.rne,
                etab_nom,
                a.debut,
                a.fin,
                a.heures,
                a.maintien,
                a.previsionnel or m.previsionnel,
            )
            for a, m, ae, etab_nom in rows
        ],
        segments=coverage_rules.timeline(rec, scols, accs, prev_missions),
    )


# --- coverage filters ------------------------------------------------------------------------


async def eleves_schooled_in(session: AsyncSession, rne: str, year: SchoolYear) -> set[str]:
    q = select(Scolarisation.eleve_id).where(
        Scolarisation.rne == rne,
        Scolarisation.debut <= year.fin,
        or_(Scolarisation.fin.is_(None), Scolarisation.fin >= year.debut),
    )
    return set(await session.scalars(q))


async def etablissements_of_decisions(
    session: AsyncSession, perimeter: Perimeter, year: SchoolYear
) -> list[tuple[str, str]]:
    """(rne, nom) where the students of the perimeter's decisions are schooled this year."""
    students = select(Decision.eleve_id).where(
        Decision.id.in_(agesh.decision_ids_query(perimeter, year))
    )
    q = (
        select(Etablissement.rne, Etablissement.nom)
        .where(
            Etablissement.rne.in_(
                select(Scolarisation.rne).where(
                    Scolarisation.eleve_id.in_(students),
                    Scolarisation.debut <= year.fin,
                    or_(Scolarisation.fin.is_(None), Scolarisation.fin >= year.debut),
                )
            )
        )
        .order_by(Etablissement.nom, Etablissement.rne)
    )
    if perimeter.pial_rne is not None:
        q = q.where(Etablissement.pial_rne == perimeter.pial_rne)
    return [(r, n) for r, n in await session.execute(q)]


async def etablissement_names(session: AsyncSession, rnes: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(rnes))
    if not wanted:
        return {}
    rows = await session.execute(
        select(Etablissement.rne, Etablissement.nom).where(Etablissement.rne.in_(wanted))
    )
    return {r: n for r, n in rows}


# --- AESH ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AeshBrief:
    id: str
    nom: str
    prenom: str
    source: str
    actif: bool
    previsionnel: bool


@dataclass(frozen=True)
class MissionLine:
    id: str
    contrat: str
    nature: str
    nature_libelle: str | None
    debut: date
    fin: date | None
    quotite: float | None
    heures: float
    previsionnel: bool
    actif: bool
    utilisees: float | None  # hours of the accompaniments covering today; None: not running
    occupation: str | None  # pleine | partielle | libre (domain 3.2 green / orange / red)


@dataclass(frozen=True)
class AeshAccLine:
    id: str
    mission_id: str
    rne: str
    etablissement: str
    debut: date
    fin: date
    heures: float
    maintien: bool
    previsionnel: bool
    eleves: list[EleveBrief]


@dataclass(frozen=True)
class AeshDetail:
    aesh: AeshBrief
    commune: str | None
    missions: list[MissionLine]
    accompagnements: list[AeshAccLine]  # of the year, whose students are all in perimeter
    hors_perimetre: int  # accompaniments of the year left out
    heures_hebdo: float  # summed weekly hours of the missions running today
    heures_utilisees: float  # summed hours used today


def _aesh_brief(a: Aesh) -> AeshBrief:
    return AeshBrief(a.id, a.nom, a.prenom, a.source, a.actif, a.previsionnel)


async def _aesh_visible(
    session: AsyncSession, perimeter: Perimeter, aesh: Aesh, year: SchoolYear
) -> bool:
    """An AESH's file is departmental: a secteur narrowing filters the students shown, not
    the file. A coordonnateur sees the AESH working for their PIAL this year (affectation,
    or an accompaniment in one of its établissements)."""
    if perimeter.departement is not None and aesh.departement != perimeter.departement:
        return False
    if perimeter.pial_rne is None:
        return True
    missions = select(Mission.id).where(Mission.aesh_id == aesh.id)
    affected = await session.scalar(
        select(Affectation.id)
        .where(
            Affectation.mission_id.in_(missions),
            Affectation.pial_rne == perimeter.pial_rne,
            Affectation.annee == year.label,
        )
        .limit(1)
    )
    if affected is not None:
        return True
    working = await session.scalar(
        select(Accompagnement.id)
        .where(
            Accompagnement.mission_id.in_(missions),
            Accompagnement.rne.in_(
                select(Etablissement.rne).where(Etablissement.pial_rne == perimeter.pial_rne)
            ),
            Accompagnement.debut <= year.fin,
            Accompagnement.fin >= year.debut,
        )
        .limit(1)
    )
    return working is not None


async def find_aesh(
    session: AsyncSession, perimeter: Perimeter, query: str, year: SchoolYear
) -> list[AeshBrief]:
    """By file id, or by nom (whole nom, case-insensitive: an AESH is not a student)."""
    text = query.strip()
    if not text:
        return []
    q = select(Aesh).where(or_(Aesh.id == text, func.upper(Aesh.nom) == text.upper()))
    if perimeter.departement is not None:
        q = q.where(Aesh.departement == perimeter.departement)
    found = list(await session.scalars(q.order_by(Aesh.nom, Aesh.prenom, Aesh.id).limit(60)))
    return [_aesh_brief(a) for a in found if await _aesh_visible(session, perimeter, a, year)]


def _occupation(used: float, weekly: float) -> str:
    if used <= 1e-9:
        return "libre"
    return "pleine" if used >= weekly - 1e-9 else "partielle"


async def aesh_detail(
    session: AsyncSession, perimeter: Perimeter, aesh_id: str, year: SchoolYear, today: date
) -> AeshDetail | None:
    aesh = await session.get(Aesh, aesh_id)
    if aesh is None or not await _aesh_visible(session, perimeter, aesh, year):
        return None
    missions = list(
        await session.scalars(
            select(Mission).where(Mission.aesh_id == aesh_id).order_by(Mission.debut, Mission.id)
        )
    )
    mission_ids = [m.id for m in missions]
    rows = (
        await session.execute(
            select(Accompagnement, Etablissement.nom, Etablissement.pial_rne)
            .join(Etablissement, Etablissement.rne == Accompagnement.rne)
            .where(Accompagnement.mission_id.in_(mission_ids))
            .order_by(Accompagnement.debut, Accompagnement.id)
        )
    ).all()
    used_today: dict[str, float] = {}
    for a, _, _ in rows:
        if a.debut <= today <= a.fin:
            used_today[a.mission_id] = used_today.get(a.mission_id, 0.0) + a.heures
    of_year = [r for r in rows if r[0].debut <= year.fin and r[0].fin >= year.debut]
    links = (
        await session.execute(
            select(AccompagnementDecision.accompagnement_id, Decision.eleve_id)
            .join(Decision, Decision.id == AccompagnementDecision.decision_id)
            .where(AccompagnementDecision.accompagnement_id.in_([a.id for a, _, _ in of_year]))
        )
    ).all()
    students: dict[str, list[str]] = {}
    for acc_id, eleve_id in links:
        students.setdefault(acc_id, []).append(eleve_id)
    briefs = await eleves(session, (e for ids in students.values() for e in ids))
    visible_ids = await _visible_eleve_ids(
        session, perimeter, [(b.id, b.departement, b.secteur) for b in briefs.values()]
    )
    accs: list[AeshAccLine] = []
    hidden = 0
    for a, etab_nom, etab_pial in of_year:
        ids = students.get(a.id, [])
        ok = all(i in visible_ids for i in ids)
        if perimeter.pial_rne is not None and etab_pial != perimeter.pial_rne:
            ok = False
        if not ids and perimeter.secteurs is not None:
            ok = False  # nothing ties it to a secteur: only a whole-department view shows it
        if not ok:
            hidden += 1
            continue
        accs.append(
            AeshAccLine(
                a.id,
                a.mission_id,
                a.rne,
                etab_nom,
                a.debut,
                a.fin,
                a.heures,
                a.maintien,
                a.previsionnel,
                sorted((briefs[i] for i in ids if i in briefs), key=lambda b: b.id),
            )
        )
    lines = []
    hebdo = utilisees = 0.0
    for m in missions:
        running = m.debut <= today and (m.fin is None or today <= m.fin)
        used = used_today.get(m.id, 0.0) if running else None
        if running:
            hebdo += m.heures
            utilisees += used or 0.0
        nature = BY_CODE.get(m.nature)
        lines.append(
            MissionLine(
                m.id,
                m.contrat,
                m.nature,
                nature.activite if nature else None,
                m.debut,
                m.fin,
                m.quotite,
                m.heures,
                m.previsionnel,
                m.actif,
                used,
                _occupation(used, m.heures) if used is not None else None,
            )
        )
    return AeshDetail(_aesh_brief(aesh), aesh.commune, lines, accs, hidden, hebdo, utilisees)


# --- PIAL ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PialMission:
    mission_id: str
    aesh_id: str
    aesh_nom: str
    aesh_prenom: str
    nature: str
    heures_mission: float
    heures_affectees: float
    actif: bool


async def pial_names(session: AsyncSession, rnes: Iterable[str]) -> dict[str, str]:
    return await etablissement_names(session, rnes)


async def pial_missions(
    session: AsyncSession, perimeter: Perimeter, pial_rne: str, year: SchoolYear
) -> list[PialMission] | None:
    """Missions affected to the PIAL for the year; None when the PIAL is not the caller's."""
    if pial_rne not in {rne for rne, _ in await agesh.pials(session, perimeter)}:
        return None
    rows = await session.execute(
        select(Affectation.heures, Mission, Aesh)
        .join(Mission, Mission.id == Affectation.mission_id)
        .join(Aesh, Aesh.id == Mission.aesh_id)
        .where(Affectation.pial_rne == pial_rne, Affectation.annee == year.label)
    )
    out = [
        PialMission(
            m.id,
            a.id,
            a.nom,
            a.prenom,
            m.nature,
            m.heures,
            heures if heures is not None else m.heures,
            m.actif and a.actif,
        )
        for heures, m, a in rows
    ]
    out.sort(key=lambda p: (p.aesh_nom, p.aesh_prenom, p.mission_id))
    return out


# --- small helpers for lists -----------------------------------------------------------------


async def decision_students(
    session: AsyncSession, decision_ids: Iterable[str]
) -> dict[str, tuple[str, date, date]]:
    """decision id → (eleve id, debut, fin)."""
    wanted = sorted(set(decision_ids))
    out: dict[str, tuple[str, date, date]] = {}
    for i in range(0, len(wanted), 500):
        rows = await session.execute(
            select(Decision.id, Decision.eleve_id, Decision.debut, Decision.fin).where(
                Decision.id.in_(wanted[i : i + 500])
            )
        )
        for did, eid, debut, fin in rows:
            out[did] = (eid, debut, fin)
    return out


async def accompaniment_students(
    session: AsyncSession, accompagnement_ids: Iterable[str]
) -> dict[str, list[str]]:
    wanted = sorted(set(accompagnement_ids))
    out: dict[str, list[str]] = {}
    for i in range(0, len(wanted), 500):
        rows = await session.execute(
            select(AccompagnementDecision.accompagnement_id, Decision.eleve_id)
            .join(Decision, Decision.id == AccompagnementDecision.decision_id)
            .where(AccompagnementDecision.accompagnement_id.in_(wanted[i : i + 500]))
        )
        for acc_id, eid in rows:
            out.setdefault(acc_id, []).append(eid)
    return out
