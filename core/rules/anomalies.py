"""Anomalies (incohérences) of accompaniments (domain 3.8).

The checks run on the lean rows of `records` (day ordinals, plain tuples): a national run
checks some 400,000 accompaniments.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from datetime import date
from functools import lru_cache
from itertools import accumulate
from typing import NamedTuple

from core.rules.records import AnomalyAccRow, Span

TYPES = (1, 2, 3, 4, 5, 6, 7, 8)
EPS = 1e-9
CLOSED = ("gele", "cloture")  # dossier states of type 5


class Anomaly(NamedTuple):
    type: int
    accompagnement_id: str
    # Data for the French detail text (rendered by the service, not here).
    params: dict[str, object]


@lru_cache(maxsize=8192)
def _day(o: int) -> date:
    return date.fromordinal(o)


def covered_by(debut: int, fin: int, spans: Sequence[Span]) -> bool:
    """True when the union of `spans` covers every day of [debut, fin]."""
    if len(spans) == 1:  # the usual case
        return spans[0][0] <= debut and spans[0][1] >= fin
    cursor = debut
    for s, e in sorted(spans):
        if s > cursor:
            return False
        if e >= fin:
            return True
        if e >= cursor:
            cursor = e + 1
    return cursor > fin


def overloaded(heures: float, accs: Sequence[tuple[str, int, int, float]]) -> dict[str, int]:
    """Accompaniments (id, debut, fin, heures) of a mission present on a day where at least
    two of them together exceed the mission's `heures`; each with the first such day.

    The set of accompaniments present only changes where one starts or one ends, so it is
    enough to look at those days, in order.
    """
    if len(accs) < 2 or sum([a[3] for a in accs]) <= heures + EPS / 2:
        return {}  # even all together they fit
    # Most missions never exceed: a running sum over the starts and ends (ends first on a
    # day) peaks at the most the mission ever carries. Its rounding error is far below EPS.
    changes = sorted([(s, h) for _, s, _, h in accs] + [(e + 1, -h) for _, _, e, h in accs])
    if max(accumulate([h for _, h in changes])) <= heures + EPS / 2:
        return {}
    events: list[tuple[int, int, int]] = []  # (day, 0 = ends the day before | 1 = starts, index)
    for i, (_, s, e, _) in enumerate(accs):
        events.append((s, 1, i))
        events.append((e + 1, 0, i))
    events.sort()
    present: set[int] = set()
    flagged: dict[str, int] = {}
    n = len(events)
    k = 0
    while k < n:
        day = events[k][0]
        while k < n and events[k][0] == day:
            _, starts, i = events[k]
            if starts:
                present.add(i)
            else:
                present.discard(i)
            k += 1
        if len(present) > 1 and sum(accs[i][3] for i in present) > heures + EPS:
            for i in present:
                flagged.setdefault(accs[i][0], day)
    return flagged


def check(
    candidates: Sequence[AnomalyAccRow],
    loads_by_mission: Mapping[str, tuple[float, Sequence[tuple[str, int, int, float]]]],
    year: Span,
    checked: Container[str] | None,
    inactive_aesh: frozenset[str] | set[str],
    closed_dossiers: Mapping[str, str],
) -> list[Anomaly]:
    """Every anomaly of the accompaniments checked, sorted by type then accompaniment.

    `candidates`: the accompaniments checked that may have an anomaly other than an
    overloaded mission (the others have none of types 1–5, 7, 8 nor hours above their
    mission's), each with its mission's (debut, fin, heures, actif, aesh_id) or None;
    `loads_by_mission`: for type 6, the mission's weekly hours and (id, debut, fin, heures)
    of all its accompaniments, whatever their period or perimeter (an AESH is overloaded
    whoever looks); `checked`: the ids of the accompaniments checked, or None for every
    accompaniment whose period intersects `year`; `inactive_aesh`: inactive AESH among the
    missions'; `closed_dossiers`: the students whose dossier is gelé or clôturé, with that
    state. A decision-level type is reported once, for the first decision (by id) that has
    it.
    """
    out: list[Anomaly] = []
    for aid, mid, rne, s, e, h, maintien, m, decs in candidates:
        if m is not None:
            m_debut, m_fin, m_heures, m_actif, aesh_id = m
            if s < m_debut:
                out.append(Anomaly(1, aid, {"debut": _day(s), "mission_debut": _day(m_debut)}))
            if e > m_fin:  # an open-ended mission ends at FAR
                out.append(Anomaly(2, aid, {"fin": _day(e), "mission_fin": _day(m_fin)}))
            if h > m_heures + EPS:
                out.append(Anomaly(6, aid, {"heures": h, "mission_heures": m_heures, "jour": None}))
            aesh_inactif = aesh_id in inactive_aesh
            if not m_actif or aesh_inactif:
                params = {
                    "mission_id": mid,
                    "mission_inactive": not m_actif,
                    "aesh_inactif": aesh_inactif,
                }
                out.append(Anomaly(7, aid, params))
        # Types 3, 4, 5 and 8 concern "its decision" or "its student": each is
        # reported once, for the first decision that has it.
        t3 = t4 = t5 = False
        t8 = maintien  # a maintien may end after its decision
        for did, eid, d_debut, d_fin, schooled in decs:
            if not t3 and s < d_debut:
                params = {"debut": _day(s), "decision_id": did, "decision_debut": _day(d_debut)}
                out.append(Anomaly(3, aid, params))
                t3 = True
            if not t4 and not covered_by(s, e, schooled):  # in this établissement
                out.append(Anomaly(4, aid, {"eleve_id": eid, "rne": rne}))
                t4 = True
            if not t5:
                etat = closed_dossiers.get(eid)
                if etat is not None:
                    out.append(Anomaly(5, aid, {"eleve_id": eid, "etat": etat}))
                    t5 = True
            if not t8 and e > d_fin:
                params = {"fin": _day(e), "decision_id": did, "decision_fin": _day(d_fin)}
                out.append(Anomaly(8, aid, params))
                t8 = True
    # Type 6 on some day: every accompaniment checked that is present on a day where the
    # mission's accompaniments together exceed its hours — unless its own hours already
    # do, which was reported above.
    y0, y1 = year
    for m_heures, accs in loads_by_mission.values():
        flagged = overloaded(m_heures, accs)
        for aid, s, e, h in accs:
            day = flagged.get(aid)
            if day is None or (checked is not None and aid not in checked):
                continue
            if s <= y1 and e >= y0 and not h > m_heures + EPS:
                params = {"heures": h, "mission_heures": m_heures, "jour": _day(day)}
                out.append(Anomaly(6, aid, params))
    out.sort(key=lambda x: (x.type, x.accompagnement_id))
    return out
