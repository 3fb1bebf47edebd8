"""Which missions may accompany a decision, nearest first (domain 3.2, 3.4, 3.7).

The chat offers these to the gestionnaire or coordonnateur who places an accompaniment; the
final word stays with `accompagnements.create`, which checks the same rules again when the
choice comes back (a list shown a minute ago may be stale).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.dates import ONE_DAY, SchoolYear, today_paris
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
    Pial,
    Scolarisation,
)
from core.perimeter import Perimeter
from core.rules import accompaniment as rules
from core.rules.coverage import INDIVIDUELLE
from core.rules.natures import ACCOMPANYING
from core.rules.records import DecisionRec
from core.services import accompagnements, affectations
from core.services.access import Caller

EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True)
class DecisionContexte:
    """A decision with what placing an accompaniment needs: where and when by default."""

    decision: DecisionRec
    eleve_id: str
    eleve_nom: str
    eleve_prenom: str
    rne: str
    etablissement_nom: str
    pial_rne: str | None
    latitude: float | None
    longitude: float | None
    periode: rules.Period

    @property
    def annee(self) -> SchoolYear:
        return SchoolYear.of(self.periode.debut)


@dataclass(frozen=True)
class MissionDisponible:
    mission_id: str
    aesh_id: str
    aesh_nom: str
    aesh_prenom: str
    nature: str
    contrat: str
    debut: date
    fin: date | None
    heures: float
    heures_libres: float
    distance_km: float | None
    previsionnel: bool


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def peak_hours(spans: Iterable[tuple[date, date, float]], period: rules.Period) -> float:
    """Highest sum of weekly hours on any day of `period` (inclusive spans, clipped to it).

    Free hours are what is left on the busiest day: an AESH busy in October is not free for
    a full-year accompaniment just because June is empty.
    """
    events: list[tuple[date, float]] = []
    for debut, fin, heures in spans:
        lo, hi = max(debut, period.debut), min(fin, period.fin)
        if lo <= hi:
            events.append((lo, heures))
            events.append((hi + ONE_DAY, -heures))
    # Ends sort before starts on the same day: the day after an end is free of it.
    events.sort(key=lambda e: (e[0], e[1]))
    peak = current = 0.0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


def _placement(scols: list[Scolarisation], period: rules.Period, today: date) -> str | None:
    """The établissement of the accompaniment: the scolarisation on the first day that
    matters (today, or the period's start if later), else the one sharing most days."""
    day = min(max(today, period.debut), period.fin)
    for s in sorted(scols, key=lambda s: s.debut, reverse=True):
        if s.debut <= day and (s.fin is None or day <= s.fin):
            return s.rne
    best: tuple[int, date, str] | None = None
    for s in scols:
        lo, hi = max(s.debut, period.debut), min(s.fin or period.fin, period.fin)
        if lo <= hi:
            key = ((hi - lo).days, s.debut, s.rne)
            best = key if best is None or key > best else best
    return best[2] if best else None


async def contexte(
    session: AsyncSession, perimeter: Perimeter, decision_id: str, *, today: date | None = None
) -> DecisionContexte:
    """The decision, its student's établissement and the default period (rules 3.4).

    A decision out of the caller's perimeter — for a coordonnateur, a student schooled
    outside their PIAL — reads as unknown, as `accompagnements.create` does.
    """
    today = today or today_paris()
    dec = await session.get(Decision, decision_id)
    eleve = None if dec is None else await session.get(Eleve, dec.eleve_id)
    if dec is None or eleve is None or not perimeter.contains(eleve.departement, eleve.secteur):
        raise NotFound("accompagnements.decision_inconnue", decision_id=decision_id)
    rec = DecisionRec(dec.id, dec.eleve_id, dec.type, dec.heures, dec.debut, dec.fin)
    period = (
        rules.default_individual(rec, today)
        if dec.type == INDIVIDUELLE
        else rules.default_mutualised([rec])
    )
    scols = list(
        await session.scalars(select(Scolarisation).where(Scolarisation.eleve_id == eleve.id))
    )
    rne = _placement(scols, period, today)
    if rne is None:
        raise InvalidInput("disponibles.sans_scolarisation", decision_id=dec.id)
    etab = await session.get(Etablissement, rne)
    assert etab is not None  # foreign key
    if perimeter.pial_rne is not None and etab.pial_rne != perimeter.pial_rne:
        raise NotFound("accompagnements.decision_inconnue", decision_id=decision_id)
    return DecisionContexte(
        rec,
        eleve.id,
        eleve.nom,
        eleve.prenom,
        etab.rne,
        etab.nom,
        etab.pial_rne,
        etab.latitude,
        etab.longitude,
        period,
    )


async def missions_disponibles(
    session: AsyncSession, ctx: DecisionContexte
) -> list[MissionDisponible]:
    """Missions the rules allow for this placement, nearest AESH first (unknown distance
    last), then most free hours over the default period, then id.

    Allowed: active mission of an active AESH, accompanying nature, overlapping the period,
    of the établissement's department; in a PIAL, affected to that PIAL for the year.
    """
    period = ctx.periode
    dep = ctx.rne[:3]
    q = (
        select(Mission, Aesh)
        .join(Aesh, Aesh.id == Mission.aesh_id)
        .where(
            Mission.actif.is_(True),
            Aesh.actif.is_(True),
            Mission.nature.in_(sorted(ACCOMPANYING)),
            Mission.debut <= period.fin,
            Mission.fin.is_(None) | (Mission.fin >= period.debut),
        )
    )
    if ctx.pial_rne is not None:
        q = q.where(
            Mission.id.in_(
                select(Affectation.mission_id).where(
                    Affectation.pial_rne == ctx.pial_rne,
                    Affectation.annee == ctx.annee.label,
                )
            )
        )
    else:
        q = q.where(Mission.departement == dep)
    rows = (await session.execute(q)).all()
    ids = [m.id for m, _ in rows]
    used: dict[str, list[tuple[date, date, float]]] = defaultdict(list)
    for i in range(0, len(ids), 500):
        for mid, debut, fin, heures in await session.execute(
            select(
                Accompagnement.mission_id,
                Accompagnement.debut,
                Accompagnement.fin,
                Accompagnement.heures,
            ).where(
                Accompagnement.mission_id.in_(ids[i : i + 500]),
                Accompagnement.debut <= period.fin,
                Accompagnement.fin >= period.debut,
            )
        ):
            used[mid].append((debut, fin, heures))
    out = []
    for m, a in rows:
        distance = None
        if None not in (ctx.latitude, ctx.longitude, a.latitude, a.longitude):
            assert ctx.latitude is not None and ctx.longitude is not None
            assert a.latitude is not None and a.longitude is not None
            distance = haversine_km(ctx.latitude, ctx.longitude, a.latitude, a.longitude)
        libres = max(0.0, m.heures - peak_hours(used.get(m.id, ()), period))
        out.append(
            MissionDisponible(
                m.id,
                a.id,
                a.nom,
                a.prenom,
                m.nature,
                m.contrat,
                m.debut,
                m.fin,
                m.heures,
                libres,
                distance,
                m.previsionnel or a.previsionnel,
            )
        )
    out.sort(
        key=lambda x: (
            x.distance_km is None,
            x.distance_km or 0.0,
            -x.heures_libres,
            x.mission_id,
        )
    )
    return out


# --- affectation of a mission to a PIAL (domain 3.7) ---------------------------------------


def peut_affecter(caller: Caller) -> bool:
    """Affecting means of the department is the gestionnaires' job; a coordonnateur uses
    what is affected to their PIAL and a superviseur only reads."""
    return caller.role == "gestionnaire" and caller.pial_rne is None


async def mission_du_departement(
    session: AsyncSession, departement: str, mission_id: str
) -> Mission:
    mission = await session.get(Mission, mission_id)
    if mission is None or mission.departement != departement:
        raise NotFound("affectations.mission_inconnue", mission_id=mission_id)
    return mission


async def pials_du_departement(session: AsyncSession, departement: str) -> list[tuple[str, str]]:
    """(rne, name of the tête de PIAL) of the department's PIAL, by name."""
    rows = await session.execute(
        select(Pial.rne, Etablissement.nom)
        .outerjoin(Etablissement, Etablissement.rne == Pial.rne)
        .where(Pial.departement == departement)
    )
    return sorted(((rne, nom or rne) for rne, nom in rows), key=lambda r: (r[1], r[0]))


async def affecter(
    session: AsyncSession,
    caller: Caller,
    mission_id: str,
    pial_rne: str,
    year: SchoolYear,
    heures: float | None,
) -> Affectation:
    """Affect a mission of the caller's department to one of its PIAL with a volume."""
    if not peut_affecter(caller):
        raise Forbidden("disponibles.affectation_reservee")
    await mission_du_departement(session, caller.departement, mission_id)
    pial = await session.get(Pial, pial_rne)
    if pial is None or pial.departement != caller.departement:
        raise NotFound("affectations.pial_introuvable", pial=pial_rne)
    return await affectations.affecter(session, mission_id, pial_rne, year, heures)


# --- an accompaniment as the chat shows it -------------------------------------------------


@dataclass(frozen=True)
class VueAccompagnement:
    acc: Accompagnement
    mission: Mission
    aesh: Aesh | None
    etablissement: Etablissement
    decisions: tuple[tuple[DecisionRec, Eleve], ...]
    voisins: tuple[Accompagnement, ...]  # every accompaniment of the same decisions


async def vue_accompagnement(
    session: AsyncSession, perimeter: Perimeter, acc_id: str
) -> VueAccompagnement:
    """An accompaniment of the caller's perimeter (same rule as its modification)."""
    # The perimeter rule of accompaniments lives in `accompagnements`; reuse it, not a twin.
    acc, decs, etab = await accompagnements._load(session, perimeter, acc_id)
    mission = await session.get(Mission, acc.mission_id)
    assert mission is not None  # foreign key
    aesh = await session.get(Aesh, mission.aesh_id)
    ids = [d.id for d, _ in decs]
    voisins = tuple(
        await session.scalars(
            select(Accompagnement)
            .where(
                Accompagnement.id.in_(
                    select(AccompagnementDecision.accompagnement_id).where(
                        AccompagnementDecision.decision_id.in_(ids)
                    )
                )
            )
            .order_by(Accompagnement.debut, Accompagnement.id)
        )
    )
    return VueAccompagnement(acc, mission, aesh, etab, tuple(decs), voisins)
