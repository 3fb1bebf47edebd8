"""Anomalies (incohérences) of accompaniments (domain 3.8)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import NamedTuple

from core.rules.records import AccRec, DecisionRec, EleveRec, MissionRec, ScolRec

TYPES = (1, 2, 3, 4, 5, 6, 7, 8)
EPS = 1e-9


class Anomaly(NamedTuple):
    type: int
    accompagnement_id: str
    # Data for the French detail text (rendered by the service, not here).
    params: dict[str, object]


def covered_by(debut: date, fin: date, intervals: Sequence[tuple[date, date | None]]) -> bool:
    """True when the union of `intervals` covers every day of [debut, fin]."""
    cursor = debut
    for s, e in sorted(intervals, key=lambda iv: iv[0]):
        if s > cursor:
            return False
        if e is None or e >= fin:
            return True
        if e >= cursor:
            cursor = date.fromordinal(e.toordinal() + 1)
    return cursor > fin


def overloaded(mission: MissionRec, accs: Sequence[AccRec]) -> dict[str, date]:
    """Accompaniments of a mission present on a day where together they exceed its hours.

    Returns each flagged accompaniment with the first such day.
    """
    if len(accs) < 2:
        return {}
    points = sorted({a.debut.toordinal() for a in accs} | {a.fin.toordinal() + 1 for a in accs})
    iv = [(a.debut.toordinal(), a.fin.toordinal(), a.heures, a.id) for a in accs]
    flagged: dict[str, date] = {}
    for p in points[:-1]:
        present = [(h, i) for s, e, h, i in iv if s <= p <= e]
        if len(present) > 1 and sum(h for h, _ in present) > mission.heures + EPS:
            for _, i in present:
                flagged.setdefault(i, date.fromordinal(p))
    return flagged


def check(
    accs: Sequence[AccRec],
    acc_decisions: Mapping[str, Sequence[str]],
    decisions: Mapping[str, DecisionRec],
    missions: Mapping[str, MissionRec],
    scols_by_eleve: Mapping[str, Sequence[ScolRec]],
    eleves: Mapping[str, EleveRec],
    accs_by_mission: Mapping[str, Sequence[AccRec]],
) -> list[Anomaly]:
    """Every anomaly of `accs`; `accs_by_mission` holds all accompaniments of their missions."""
    out: list[Anomaly] = []
    overload_cache: dict[str, dict[str, date]] = {}
    for a in accs:
        m = missions.get(a.mission_id)
        decs = [decisions[d] for d in acc_decisions.get(a.id, ()) if d in decisions]
        if m is not None:
            if a.debut < m.debut:
                out.append(Anomaly(1, a.id, {"debut": a.debut, "mission_debut": m.debut}))
            if m.fin is not None and a.fin > m.fin:
                out.append(Anomaly(2, a.id, {"fin": a.fin, "mission_fin": m.fin}))
        for d in decs:
            if a.debut < d.debut:
                out.append(
                    Anomaly(
                        3, a.id, {"debut": a.debut, "decision_id": d.id, "decision_debut": d.debut}
                    )
                )
                break
        for d in decs:
            ivs = [(s.debut, s.fin) for s in scols_by_eleve.get(d.eleve_id, ()) if s.rne == a.rne]
            if not covered_by(a.debut, a.fin, ivs):
                out.append(Anomaly(4, a.id, {"eleve_id": d.eleve_id, "rne": a.rne}))
                break
        for d in decs:
            e = eleves.get(d.eleve_id)
            if e is not None and e.dossier_etat in ("gele", "cloture"):
                out.append(Anomaly(5, a.id, {"eleve_id": d.eleve_id, "etat": e.dossier_etat}))
                break
        if m is not None:
            if a.heures > m.heures + EPS:
                out.append(
                    Anomaly(6, a.id, {"heures": a.heures, "mission_heures": m.heures, "jour": None})
                )
            else:
                if m.id not in overload_cache:
                    overload_cache[m.id] = overloaded(m, accs_by_mission.get(m.id, ()))
                day = overload_cache[m.id].get(a.id)
                if day is not None:
                    out.append(
                        Anomaly(
                            6, a.id, {"heures": a.heures, "mission_heures": m.heures, "jour": day}
                        )
                    )
            if not m.actif or not m.aesh_actif:
                out.append(
                    Anomaly(
                        7,
                        a.id,
                        {
                            "mission_id": m.id,
                            "mission_inactive": not m.actif,
                            "aesh_inactif": not m.aesh_actif,
                        },
                    )
                )
        if not a.maintien:
            for d in decs:
                if a.fin > d.fin:
                    out.append(
                        Anomaly(8, a.id, {"fin": a.fin, "decision_id": d.id, "decision_fin": d.fin})
                    )
                    break
    out.sort(key=lambda x: (x.type, x.accompagnement_id))
    return out
