"""Documents of domain 3.10: the PV d'affectation and the per-établissement summary.

Each document is gathered into plain dataclasses first (`pv_data`, `etablissement_data`:
what the perimeter allows, nothing else), then rendered: a jinja template of
`templates/pdf/` writes the French text as markup, `core.documents.pdf` lays it out.
A copy meant for outside the service never holds a student's name or birth date, not even
in its dataclass.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from functools import cache
from typing import Any

from sqlalchemy import Select, and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.dates import SchoolYear, today_paris
from core.documents import pdf
from core.errors import InvalidInput, NotFound
from core.models import (
    Accompagnement,
    AccompagnementDecision,
    Aesh,
    Cartouche,
    Decision,
    Eleve,
    Etablissement,
    Mission,
    Scolarisation,
    ServiceUser,
)
from core.perimeter import Perimeter
from core.rules.coverage import INDIVIDUELLE, MUTUALISEE
from core.rules.natures import BY_CODE
from core.services.parametres import cartouche, missing_cartouche_fields
from core.texts import render, t

# --- records -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Contact:
    nom: str | None
    prenom: str | None
    email: str | None
    telephone: str | None
    adresse: str | None


@dataclasses.dataclass(frozen=True)
class AeshInfo:
    id: str
    nom: str
    prenom: str


@dataclasses.dataclass(frozen=True)
class MissionInfo:
    id: str
    contrat: str
    nature: str
    nature_libelle: str | None
    quotite: float | None
    heures: float
    debut: date
    fin: date | None
    previsionnel: bool


@dataclasses.dataclass(frozen=True)
class EtablissementInfo:
    rne: str
    nom: str
    commune: str | None
    code_postal: str | None
    pial_rne: str | None
    pial_nom: str | None


@dataclasses.dataclass(frozen=True)
class EleveInfo:
    """A student as a document shows them; `nom`, `prenom`, `date_naissance` are None on
    copies sent outside the service."""

    id: str
    initiales: str
    nom: str | None
    prenom: str | None
    date_naissance: date | None
    decision_id: str
    decision_type: str
    decision_heures: float | None
    decision_debut: date
    decision_fin: date


@dataclasses.dataclass(frozen=True)
class PvAffectation:
    accompagnement_id: str
    departement: str
    annee: str
    cartouche: dict[str, str]
    emetteur: Contact | None
    aesh: AeshInfo
    mission: MissionInfo
    etablissement: EtablissementInfo
    employeur: EtablissementInfo | None  # when it is not the établissement of the accompaniment
    eleves: tuple[EleveInfo, ...]
    type: str  # individuelle | mutualisee
    heures: float
    debut: date
    fin: date
    repas: bool
    pause_meridienne: bool
    previsionnel: bool  # the accompaniment or its mission
    maintien: bool
    copie_externe: bool
    date_edition: date


@dataclasses.dataclass(frozen=True)
class EleveRef:
    id: str
    initiales: str


@dataclasses.dataclass(frozen=True)
class AccompagnementLigne:
    id: str
    debut: date
    fin: date
    heures: float
    type: str
    aesh_id: str
    aesh_nom: str
    aesh_prenom: str
    mission_id: str
    eleves: tuple[EleveRef, ...]
    previsionnel: bool
    maintien: bool


@dataclasses.dataclass(frozen=True)
class AeshLigne:
    id: str
    nom: str
    prenom: str
    missions: tuple[str, ...]
    natures: tuple[str, ...]
    nb_accompagnements: int
    nb_eleves: int


@dataclasses.dataclass(frozen=True)
class EtablissementSummary:
    etablissement: EtablissementInfo
    annee: str
    departement: str | None
    secteurs: tuple[str, ...] | None  # the perimeter's narrowing, if any
    cartouche: dict[str, str]
    nb_eleves: int
    nb_individuelles: int
    nb_mutualisees: int
    accompagnements: tuple[AccompagnementLigne, ...]
    aesh: tuple[AeshLigne, ...]
    date_edition: date


# --- helpers -------------------------------------------------------------------------------


def initiales(prenom: str | None, nom: str | None) -> str:
    """`Émilie`, `Durand` → `É. D.`; a compound first name keeps its hyphen (`J.-P. D.`)."""

    def first(word: str) -> str:
        return next((c.upper() for c in word if c.isalpha()), "")

    given = (prenom or "").split()
    parts = [first(p) + "." for p in (given[0].split("-") if given else []) if first(p)]
    last = first(nom or "")
    return " ".join(x for x in ("-".join(parts), last + "." if last else "") if x)


def _contact(user: ServiceUser | None) -> Contact | None:
    if user is None:
        return None
    return Contact(user.nom, user.prenom, user.email, user.telephone, user.adresse)


def _info(etab: Etablissement, pial_nom: str | None) -> EtablissementInfo:
    return EtablissementInfo(
        etab.rne, etab.nom, etab.commune, etab.code_postal, etab.pial_rne, pial_nom
    )


async def _etab_info(session: AsyncSession, etab: Etablissement) -> EtablissementInfo:
    pial_nom = None
    if etab.pial_rne is not None:
        tete = (
            etab if etab.pial_rne == etab.rne else await session.get(Etablissement, etab.pial_rne)
        )
        pial_nom = tete.nom if tete is not None else None
    return EtablissementInfo(
        etab.rne, etab.nom, etab.commune, etab.code_postal, etab.pial_rne, pial_nom
    )


def _visible(perimeter: Perimeter, eleves: Iterable[Eleve], etab: Etablissement) -> bool:
    """An accompaniment is shown only if every student it serves is in the perimeter."""
    students = list(eleves)
    if perimeter.pial_rne is not None and etab.pial_rne != perimeter.pial_rne:
        return False
    if not students:
        # Nothing ties it to a secteur: only a whole-department view may see it.
        return perimeter.secteurs is None and perimeter.contains(etab.departement, None)
    return all(perimeter.contains(e.departement, e.secteur) for e in students)


def _view(value: Any) -> Any:
    """The template's view of a record: every text made markup-neutral (see `pdf.markup_safe`)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _view(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _view(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_view(v) for v in value]
    if isinstance(value, str):
        return pdf.markup_safe(value)
    return value


# --- PV d'affectation ----------------------------------------------------------------------


@cache
def _pv_query() -> Select[Any]:
    """Everything a PV shows in one round trip, built once: PVs are produced in bulk (a whole
    rentrée at a time) and the database and statement building are most of their cost."""
    employer, tete = aliased(Etablissement), aliased(Etablissement)
    return (
        select(Accompagnement, Etablissement, Mission, Aesh, employer, tete.nom, Cartouche)
        .join(Etablissement, Etablissement.rne == Accompagnement.rne)
        .join(Mission, Mission.id == Accompagnement.mission_id)
        .join(Aesh, Aesh.id == Mission.aesh_id)
        .outerjoin(employer, employer.rne == Mission.employeur_rne)
        .outerjoin(tete, tete.rne == Etablissement.pial_rne)
        .outerjoin(Cartouche, Cartouche.departement == Etablissement.departement)
        .add_columns(Decision, Eleve)
        .outerjoin(
            AccompagnementDecision,
            AccompagnementDecision.accompagnement_id == Accompagnement.id,
        )
        .outerjoin(Decision, Decision.id == AccompagnementDecision.decision_id)
        .outerjoin(Eleve, Eleve.id == Decision.eleve_id)
        .where(Accompagnement.id == bindparam("acc_id"))
        .order_by(Eleve.nom, Eleve.prenom, Decision.id)
    )


async def pv_data(
    session: AsyncSession,
    perimeter: Perimeter,
    accompagnement_id: str,
    *,
    issuer: ServiceUser | None = None,
    external_copy: bool = False,
    today: date | None = None,
) -> PvAffectation:
    rows = (await session.execute(_pv_query(), {"acc_id": accompagnement_id})).all()
    served = [(r[7], r[8]) for r in rows if r[7] is not None and r[8] is not None]
    if not rows or not _visible(perimeter, (e for _, e in served), rows[0][1]):
        # Out of perimeter reads as unknown, as for every accompaniment use case.
        raise NotFound("accompagnements.inconnu", accompagnement_id=accompagnement_id)
    acc, etab, mission, aesh, emp, tete_nom, cart = rows[0][:7]

    champs = dict(cart.champs) if cart is not None else {}
    missing = missing_cartouche_fields(champs)
    if missing:
        raise InvalidInput(
            "documents.cartouche_incomplete",
            departement=etab.departement,
            champs=[(t(f"documents.champs_cartouche.{f}"), f) for f in missing],
        )
    info = _info(etab, tete_nom)
    employeur = None
    if emp is not None and emp.rne != etab.rne:
        employeur = _info(emp, tete_nom if emp.pial_rne == etab.pial_rne else None)
    nature = BY_CODE.get(mission.nature)

    eleves = tuple(
        EleveInfo(
            id=e.id,
            initiales=initiales(e.prenom, e.nom),
            nom=None if external_copy else e.nom,
            prenom=None if external_copy else e.prenom,
            date_naissance=None if external_copy else e.date_naissance,
            decision_id=d.id,
            decision_type=d.type,
            decision_heures=d.heures,
            decision_debut=d.debut,
            decision_fin=d.fin,
        )
        for d, e in served
    )
    types = {e.decision_type for e in eleves}
    return PvAffectation(
        accompagnement_id=acc.id,
        departement=etab.departement,
        annee=SchoolYear.of(acc.debut).label,
        cartouche={f: champs[f].strip() for f in champs},
        emetteur=_contact(issuer),
        aesh=AeshInfo(aesh.id, aesh.nom, aesh.prenom),
        mission=MissionInfo(
            id=mission.id,
            contrat=mission.contrat,
            nature=mission.nature,
            nature_libelle=nature.activite if nature else None,
            quotite=mission.quotite,
            heures=mission.heures,
            debut=mission.debut,
            fin=mission.fin,
            previsionnel=mission.previsionnel,
        ),
        etablissement=info,
        employeur=employeur,
        eleves=eleves,
        type=INDIVIDUELLE if types == {INDIVIDUELLE} else MUTUALISEE,
        heures=acc.heures,
        debut=acc.debut,
        fin=acc.fin,
        repas=acc.repas,
        pause_meridienne=acc.pause_meridienne,
        previsionnel=acc.previsionnel or mission.previsionnel,
        maintien=acc.maintien,
        copie_externe=external_copy,
        date_edition=today or today_paris(),
    )


def render_pv(data: PvAffectation) -> bytes:
    return pdf.render(render("pdf/pv_affectation.j2", pv=_view(data)))


async def pv_affectation(
    session: AsyncSession,
    perimeter: Perimeter,
    accompagnement_id: str,
    *,
    issuer: ServiceUser | None = None,
    external_copy: bool = False,
    today: date | None = None,
) -> bytes:
    """The PV d'affectation PDF (domain 3.4, 3.10); refused while the cartouche is incomplete."""
    data = await pv_data(
        session,
        perimeter,
        accompagnement_id,
        issuer=issuer,
        external_copy=external_copy,
        today=today,
    )
    return render_pv(data)


# --- per-établissement summary -------------------------------------------------------------


def _overlaps(a_debut: date, a_fin: date | None, b_debut: date, b_fin: date | None) -> bool:
    return (b_fin is None or a_debut <= b_fin) and (a_fin is None or b_debut <= a_fin)


async def etablissement_data(
    session: AsyncSession,
    perimeter: Perimeter,
    rne: str,
    year: SchoolYear,
    *,
    today: date | None = None,
) -> EtablissementSummary:
    etab = await session.get(Etablissement, rne)
    if (
        etab is None
        or not (perimeter.departement is None or etab.departement == perimeter.departement)
        or (perimeter.pial_rne is not None and etab.pial_rne != perimeter.pial_rne)
    ):
        raise NotFound("documents.etablissement_inconnu", rne=rne)

    # Decisions of the students schooled here during the year, while they were schooled here.
    scol_rows = (
        await session.execute(
            select(Scolarisation.eleve_id, Scolarisation.debut, Scolarisation.fin, Eleve)
            .join(Eleve, Eleve.id == Scolarisation.eleve_id)
            .where(
                Scolarisation.rne == rne,
                Scolarisation.debut <= year.fin,
                or_(Scolarisation.fin.is_(None), Scolarisation.fin >= year.debut),
            )
        )
    ).all()
    periods: dict[str, list[tuple[date, date | None]]] = defaultdict(list)
    for eleve_id, debut, fin, eleve in scol_rows:
        if perimeter.contains(eleve.departement, eleve.secteur):
            periods[eleve_id].append((max(debut, year.debut), min(fin or year.fin, year.fin)))
    counted: dict[str, set[str]] = {INDIVIDUELLE: set(), MUTUALISEE: set()}
    students: set[str] = set()
    if periods:
        dec_rows = (
            await session.execute(
                select(
                    Decision.id, Decision.eleve_id, Decision.type, Decision.debut, Decision.fin
                ).where(
                    Decision.eleve_id.in_(sorted(periods)),
                    Decision.debut <= year.fin,
                    Decision.fin >= year.debut,
                )
            )
        ).all()
        for did, eleve_id, kind, debut, fin in dec_rows:
            if any(_overlaps(debut, fin, s, e) for s, e in periods[eleve_id]):
                counted.setdefault(kind, set()).add(did)
                students.add(eleve_id)

    acc_rows = (
        await session.execute(
            select(Accompagnement, Mission, Aesh)
            .join(Mission, Mission.id == Accompagnement.mission_id)
            .join(Aesh, Aesh.id == Mission.aesh_id)
            .where(
                Accompagnement.rne == rne,
                and_(Accompagnement.debut <= year.fin, Accompagnement.fin >= year.debut),
            )
            .order_by(Accompagnement.debut, Accompagnement.id)
        )
    ).all()
    links: dict[str, list[tuple[Decision, Eleve]]] = defaultdict(list)
    if acc_rows:
        link_rows = (
            await session.execute(
                select(AccompagnementDecision.accompagnement_id, Decision, Eleve)
                .join(Decision, Decision.id == AccompagnementDecision.decision_id)
                .join(Eleve, Eleve.id == Decision.eleve_id)
                .where(AccompagnementDecision.accompagnement_id.in_([a.id for a, _, _ in acc_rows]))
                .order_by(Eleve.nom, Eleve.prenom, Eleve.id)
            )
        ).all()
        for acc_id, dec, eleve in link_rows:
            links[acc_id].append((dec, eleve))

    lines: list[AccompagnementLigne] = []
    per_aesh: dict[str, dict[str, Any]] = {}
    for acc, mission, aesh in acc_rows:
        served = links.get(acc.id, [])
        if not _visible(perimeter, (e for _, e in served), etab):
            continue
        kinds = {d.type for d, _ in served}
        lines.append(
            AccompagnementLigne(
                id=acc.id,
                debut=acc.debut,
                fin=acc.fin,
                heures=acc.heures,
                type=INDIVIDUELLE if kinds == {INDIVIDUELLE} else MUTUALISEE,
                aesh_id=aesh.id,
                aesh_nom=aesh.nom,
                aesh_prenom=aesh.prenom,
                mission_id=mission.id,
                eleves=tuple(EleveRef(e.id, initiales(e.prenom, e.nom)) for _, e in served),
                previsionnel=acc.previsionnel or mission.previsionnel,
                maintien=acc.maintien,
            )
        )
        entry = per_aesh.setdefault(
            aesh.id,
            {"aesh": aesh, "missions": {}, "accs": 0, "eleves": set()},
        )
        entry["missions"][mission.id] = mission.nature
        entry["accs"] += 1
        entry["eleves"].update(e.id for _, e in served)

    aesh_lines = tuple(
        AeshLigne(
            id=v["aesh"].id,
            nom=v["aesh"].nom,
            prenom=v["aesh"].prenom,
            missions=tuple(sorted(v["missions"])),
            natures=tuple(sorted(set(v["missions"].values()))),
            nb_accompagnements=v["accs"],
            nb_eleves=len(v["eleves"]),
        )
        for v in sorted(
            per_aesh.values(), key=lambda v: (v["aesh"].nom, v["aesh"].prenom, v["aesh"].id)
        )
    )
    return EtablissementSummary(
        etablissement=await _etab_info(session, etab),
        annee=year.label,
        departement=perimeter.departement,
        secteurs=tuple(sorted(perimeter.secteurs)) if perimeter.secteurs is not None else None,
        cartouche=await cartouche(session, etab.departement),
        nb_eleves=len(students),
        nb_individuelles=len(counted[INDIVIDUELLE]),
        nb_mutualisees=len(counted[MUTUALISEE]),
        accompagnements=tuple(lines),
        aesh=aesh_lines,
        date_edition=today or today_paris(),
    )


def render_etablissement(data: EtablissementSummary) -> bytes:
    return pdf.render(render("pdf/etablissement.j2", s=_view(data)))


async def etablissement_summary(
    session: AsyncSession,
    perimeter: Perimeter,
    rne: str,
    year: SchoolYear,
    *,
    today: date | None = None,
) -> bytes:
    """The per-établissement summary PDF (domain 3.10), students by initials and file id."""
    return render_etablissement(
        await etablissement_data(session, perimeter, rne, year, today=today)
    )
