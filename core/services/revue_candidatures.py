"""Review of candidatures by the service (domain 2.8): list, open, set status, convert.

Who may: gestionnaires and the superviseur read the candidatures of their department; only
gestionnaires act on them (`Caller.can_review_candidatures`). Which transitions: the review
statuses are set by hand once a file is complete, and may be corrected among themselves;
drafts, incomplete files and closed (retired, deleted) candidatures are not reviewed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Forbidden, InvalidInput, NotFound
from core.models import Aesh, Candidat, Candidature, Diplome, Piece
from core.rules import candidature as rules
from core.rules.candidature import Statut
from core.services import rh
from core.services.access import Caller
from core.services.candidatures import reference
from core.texts import t

STATUTS = frozenset(s.value for s in Statut)
# Statuses a list can be filtered on: drafts are not submitted, so not the service's business.
LISTED: tuple[str, ...] = tuple(s.value for s in Statut if s != Statut.BROUILLON)

# What the service may set, from where (domain 2.8): review starts once the file is complete.
TRANSITIONS: dict[str, frozenset[str]] = {
    Statut.COMPLETE: frozenset({Statut.EN_EXAMEN, Statut.RETENUE, Statut.NON_RETENUE}),
    Statut.EN_EXAMEN: frozenset({Statut.RETENUE, Statut.NON_RETENUE}),
    # A decision may be corrected (a retained candidate who declines, a file re-examined).
    Statut.RETENUE: frozenset({Statut.EN_EXAMEN, Statut.NON_RETENUE}),
    Statut.NON_RETENUE: frozenset({Statut.EN_EXAMEN, Statut.RETENUE}),
}


def transitions(statut: str) -> list[str]:
    """Targets in display order (the order of the statuses in domain 2.5)."""
    allowed = TRANSITIONS.get(statut, frozenset())
    return [s.value for s in Statut if s in allowed]


@dataclass(frozen=True)
class Ligne:
    id: int
    reference: str
    type: str
    statut: str
    zones: tuple[str, ...]
    complete: bool
    nom: str | None  # None once erased (domain 2.6)
    prenom: str | None


@dataclass(frozen=True)
class PieceFichier:
    kind: str
    sha256: str
    mime: str


@dataclass(frozen=True)
class DiplomeLigne:
    type: str
    intitule: str | None
    annee: int | None
    etablissement: str | None
    copie_sha256: str | None
    copie_mime: str | None


@dataclass(frozen=True)
class Dossier:
    id: int
    reference: str
    type: str
    statut: str
    zones: tuple[str, ...]
    reponses: dict[str, Any]
    depose_le: date | None
    valide_jusqu_au: date | None
    candidat: Candidat | None
    complete: bool
    pieces_manquantes: tuple[str, ...]
    licence_manquante: bool
    pieces: tuple[PieceFichier, ...]
    diplomes: tuple[DiplomeLigne, ...]
    aesh_id: str | None  # the prévisionnel AESH made from it, if any
    transitions: tuple[str, ...]  # what this caller may set now

    @property
    def ferme(self) -> bool:
        return self.statut in rules.CLOSED


def _may_read(caller: Caller) -> None:
    if not caller.can_read_candidatures:
        raise Forbidden("revue.lecture_reservee")


def _may_act(caller: Caller) -> None:
    if not caller.can_review_candidatures:
        raise Forbidden("revue.action_reservee")


async def _load(session: AsyncSession, caller: Caller, candidature_id: int) -> Candidature:
    _may_read(caller)
    cand = await session.get(Candidature, candidature_id)
    # Another department's candidature reads as unknown: its existence is not ours to show.
    if cand is None or cand.departement != caller.departement or cand.statut == "brouillon":
        raise NotFound("candidats.candidature_inconnue", reference=reference(candidature_id))
    return cand


async def _completeness(
    session: AsyncSession, cands: list[tuple[int, int | None, str]]
) -> dict[int, rules.Completeness]:
    """Completeness of many candidatures in two queries (pieces, LICENCE copies)."""
    ids = [c for c, _, _ in cands]
    kinds: dict[int, set[str]] = defaultdict(set)
    licence: set[int] = set()
    for i in range(0, len(ids), 500):
        for cid, kind in await session.execute(
            select(Piece.candidature_id, Piece.kind).where(
                Piece.candidature_id.in_(ids[i : i + 500]), Piece.current.is_(True)
            )
        ):
            kinds[cid].add(kind)
    candidats = sorted({k for _, k, _ in cands if k is not None})
    for i in range(0, len(candidats), 500):
        licence.update(
            await session.scalars(
                select(Diplome.candidat_id).where(
                    Diplome.candidat_id.in_(candidats[i : i + 500]),
                    Diplome.type == "LICENCE",
                    Diplome.copie_sha256.is_not(None),
                )
            )
        )
    return {cid: rules.completeness(typ, kinds[cid], kid in licence) for cid, kid, typ in cands}


async def lister(
    session: AsyncSession,
    caller: Caller,
    *,
    zone: str | None = None,
    statut: str | None = None,
    complete: bool | None = None,
) -> list[Ligne]:
    """The department's submitted candidatures, oldest first, filtered by zone (any of its
    zones), status and completeness (pieces and, for M2, the LICENCE copy)."""
    _may_read(caller)
    q = (
        select(
            Candidature.id,
            Candidature.candidat_id,
            Candidature.type,
            Candidature.statut,
            Candidature.zones,
            Candidat.nom,
            Candidat.prenom,
        )
        .outerjoin(Candidat, Candidat.id == Candidature.candidat_id)
        .where(
            Candidature.departement == caller.departement,
            Candidature.statut != Statut.BROUILLON,
        )
        .order_by(Candidature.id)
    )
    if statut is not None:
        q = q.where(Candidature.statut == statut)
    rows = [r for r in (await session.execute(q)).all() if zone is None or zone in (r[4] or [])]
    comp = await _completeness(session, [(r[0], r[1], r[2]) for r in rows])
    out = []
    for cid, _kid, typ, st, zones, nom, prenom in rows:
        ok = comp[cid].complete
        if complete is not None and ok != complete:
            continue
        out.append(Ligne(cid, reference(cid), typ, st, tuple(zones or ()), ok, nom, prenom))
    return out


async def dossier(session: AsyncSession, caller: Caller, candidature_id: int) -> Dossier:
    cand = await _load(session, caller, candidature_id)
    candidat = (
        await session.get(Candidat, cand.candidat_id) if cand.candidat_id is not None else None
    )
    comp = (await _completeness(session, [(cand.id, cand.candidat_id, cand.type)]))[cand.id]
    pieces = tuple(
        PieceFichier(p.kind, p.sha256, p.mime)
        for p in await session.scalars(
            select(Piece)
            .where(Piece.candidature_id == cand.id, Piece.current.is_(True))
            .order_by(Piece.id)
        )
    )
    diplomes: tuple[DiplomeLigne, ...] = ()
    if candidat is not None:
        diplomes = tuple(
            DiplomeLigne(d.type, d.intitule, d.annee, d.etablissement, d.copie_sha256, d.copie_mime)
            for d in await session.scalars(
                select(Diplome).where(Diplome.candidat_id == candidat.id).order_by(Diplome.id)
            )
        )
    aesh_id = await session.scalar(select(Aesh.id).where(Aesh.candidature_id == cand.id))
    return Dossier(
        id=cand.id,
        reference=reference(cand.id),
        type=cand.type,
        statut=cand.statut,
        zones=tuple(cand.zones or ()),
        reponses=dict(cand.reponses or {}),
        depose_le=cand.depose_le,
        valide_jusqu_au=cand.valide_jusqu_au,
        candidat=candidat,
        complete=comp.complete,
        pieces_manquantes=comp.missing_pieces,
        licence_manquante=comp.missing_licence,
        pieces=pieces,
        diplomes=diplomes,
        aesh_id=aesh_id,
        transitions=tuple(transitions(cand.statut)) if caller.can_review_candidatures else (),
    )


async def changer_statut(
    session: AsyncSession, caller: Caller, candidature_id: int, statut: str
) -> Candidature:
    _may_act(caller)
    cand = await _load(session, caller, candidature_id)
    if statut == cand.statut:
        return cand
    if statut not in TRANSITIONS.get(cand.statut, frozenset()):
        raise InvalidInput(
            "revue.transition_refusee",
            reference=reference(cand.id),
            de=t(f"candidats.statut_{cand.statut}"),
            vers=t(f"candidats.statut_{statut}") if statut in STATUTS else statut,
        )
    cand.statut = statut
    await session.flush()
    return cand


async def creer_aesh_previsionnel(
    session: AsyncSession, caller: Caller, candidature_id: int
) -> Aesh:
    """A *retenue* candidate becomes a prévisionnel AESH (domain 2.8, 3.2), once."""
    _may_act(caller)
    cand = await _load(session, caller, candidature_id)
    if cand.statut != Statut.RETENUE:
        raise InvalidInput("revue.non_retenue", reference=reference(cand.id))
    existing = await session.scalar(select(Aesh.id).where(Aesh.candidature_id == cand.id))
    if existing is not None:
        raise InvalidInput("revue.deja_convertie", reference=reference(cand.id), aesh_id=existing)
    candidat = (
        await session.get(Candidat, cand.candidat_id) if cand.candidat_id is not None else None
    )
    if candidat is None or not candidat.nom or not candidat.prenom:
        raise InvalidInput("rh.identite_requise")
    return await rh.create_aesh_previsionnel(
        session,
        caller.departement,
        rh.AeshInput(
            nom=candidat.nom,
            prenom=candidat.prenom,
            date_naissance=candidat.date_naissance,
            commune=candidat.commune,
            code_postal=candidat.code_postal,
            email=candidat.email,
            telephone=candidat.telephone,
        ),
        candidature_id=cand.id,
    )
