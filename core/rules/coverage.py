"""Coverage of a decision (domain 3.5), by sweeping its change points.

Between two consecutive change points (starts and day-after-ends of the decision, of the
student's scolarisations and of the decision's accompaniments) need and provision are constant,
so a decision costs O(k²) for k intervals instead of one step per day. `assess` sweeps each run
of schooled days (the need is 0 outside them) with the accompaniments' change points only.

`assess` is the form the reports use, on day ordinals (see `records` for the lean rows);
`pieces` / `timeline` keep the records API for one decision's detail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import NamedTuple

from core.rules.records import FAR, AccRec, DecisionRec, ScolRec, Span, merged

INDIVIDUELLE = "individuelle"
MUTUALISEE = "mutualisee"
EPS = 1e-9

AUCUNE = "aucune"
PARTIELLE = "partielle"
COMPLETE = "complete"
DEPASSEMENT = "depassement"
SANS_SCOLARITE = "sans_scolarite"
HORS_PERIODE = "hors_periode"
MAINTIEN = "maintien"

_FAR = FAR


class Coverage(NamedTuple):
    couverture: float
    priorite: float
    depassement: bool


class Piece(NamedTuple):
    """A run of days [debut, fin] (ordinals, inclusive) with constant need and provision."""

    debut: int
    fin: int
    need: float
    provided: float
    previsionnel: bool


class Segment(NamedTuple):
    debut: date
    fin: date
    etat: str
    previsionnel: bool


def _end(d: date | None) -> int:
    return _FAR if d is None else d.toordinal()


def pieces(
    decision: DecisionRec,
    scols: Sequence[ScolRec],
    accs: Sequence[AccRec],
    previsionnel_missions: frozenset[str] = frozenset(),
) -> list[Piece]:
    """Cut the decision's period into pieces; maintien accompaniments never provide (3.5)."""
    lo, hi = decision.debut.toordinal(), decision.fin.toordinal()
    indiv = decision.type == INDIVIDUELLE
    need_h = (decision.heures or 0.0) if indiv else 1.0
    s_iv = [(s.debut.toordinal(), _end(s.fin)) for s in scols]
    a_iv = [
        (
            a.debut.toordinal(),
            a.fin.toordinal(),
            a.heures,
            a.previsionnel or a.mission_id in previsionnel_missions,
        )
        for a in accs
        if not a.maintien
    ]
    points = {lo, hi + 1}
    for s, e in s_iv:
        if s > lo and s <= hi:
            points.add(s)
        if lo <= e < hi:
            points.add(e + 1)
    for s, e, _, _ in a_iv:
        if s > lo and s <= hi:
            points.add(s)
        if lo <= e < hi:
            points.add(e + 1)
    cuts = sorted(points)
    out: list[Piece] = []
    for i in range(len(cuts) - 1):
        start, stop = cuts[i], cuts[i + 1] - 1
        schooled = any(s <= start <= e for s, e in s_iv)
        need = need_h if schooled else 0.0
        provided = 0.0
        prev = False
        for s, e, h, p in a_iv:
            if s <= start <= e:
                provided = provided + h if indiv else 1.0
                prev = prev or p
        out.append(Piece(start, stop, need, provided, prev))
    return out


def coverage_of(ps: Iterable[Piece]) -> Coverage:
    got = total = 0.0
    over = False
    for p in ps:
        days = p.fin - p.debut + 1
        total += p.need * days
        got += min(p.provided, p.need) * days
        if p.need > 0 and p.provided > p.need + EPS:
            over = True
    couverture = got / total if total > 0 else 0.0
    couverture = min(1.0, max(0.0, couverture))
    return Coverage(couverture, 1.0 - couverture, over)


def coverage(decision: DecisionRec, scols: Sequence[ScolRec], accs: Sequence[AccRec]) -> Coverage:
    need = (decision.heures or 0.0) if decision.type == INDIVIDUELLE else 1.0
    couverture, over, _ = assess(
        decision.debut.toordinal(),
        decision.fin.toordinal(),
        need,
        decision.type == INDIVIDUELLE,
        [(s.debut.toordinal(), _end(s.fin)) for s in scols],
        [(a.debut.toordinal(), a.fin.toordinal(), a.heures) for a in accs if not a.maintien],
        0,
    )
    return Coverage(couverture, 1.0 - couverture, over)


def assess(
    lo: int,
    hi: int,
    need: float,
    indiv: bool,
    scols: Sequence[Span],
    accs: Sequence[tuple[int, int, float]],
    day: int,
) -> tuple[float, bool, str]:
    """(couverture, dépassement, state on `day`) of a decision over [lo, hi] (day ordinals).

    `need`: hours per schooled day (notified hours; 1 for a mutualised decision); `scols`:
    the student's scolarisations (debut, fin); `accs`: the decision's accompaniments that
    provide, i.e. not maintien, as (debut, fin, weekly hours).
    """
    # The state on `day` if nothing provides then; corrected below where something does.
    if day < lo or day > hi:
        etat = HORS_PERIODE
    else:
        etat = SANS_SCOLARITE
        if need > 0:
            for s, e in scols:
                if s <= day <= e:
                    etat = AUCUNE
                    break
    if not accs or need <= 0:
        return 0.0, False, etat
    # The need is constant (`need`) on the days the student is schooled and 0 on the
    # others, so only the runs of schooled days count, and within each run only the
    # accompaniments change the provision.
    got = total = 0.0
    over = False
    for s, e in _schooled_runs(lo, hi, scols):
        run_got, run_total, run_over, etat = _run(s, e, need, indiv, accs, day, etat)
        got += run_got
        total += run_total
        over = over or run_over
    if total <= 0:
        return 0.0, False, etat
    return min(1.0, max(0.0, got / total)), over, etat


def _schooled_runs(lo: int, hi: int, scols: Sequence[Span]) -> list[Span]:
    """The days of [lo, hi] on which some scolarisation holds, as disjoint runs in order."""
    runs: list[Span] = []
    for s, e in scols:
        if s < lo:
            s = lo
        if e > hi:
            e = hi
        if s <= e:
            runs.append((s, e))
    return merged(runs) if len(runs) > 1 else runs


def _run(
    lo: int,
    hi: int,
    need: float,
    indiv: bool,
    accs: Sequence[tuple[int, int, float]],
    day: int,
    etat: str,
) -> tuple[float, float, bool, str]:
    """(hours provided within the need, hours needed, dépassement, state on `day`) over a
    run [lo, hi] of days on which the need is `need` (> 0) on each day. `etat` is the state
    on `day` if the run does not change it.

    Need and provision are constant between consecutive change points: the run's ends and
    the accompaniments' starts and day-after-ends within it."""
    if len(accs) == 1:  # a third of the accompanied decisions: in closed form
        a, b, h = accs[0]
        if a < lo:
            a = lo
        if b > hi:
            b = hi
        if a > b:
            return 0.0, need * (hi - lo + 1), False, etat
        prov = h if indiv else 1.0
        # Summed piece by piece, left to right, as the sweep below does: the same float.
        total = need * (a - lo) if a > lo else 0.0
        total += need * (b - a + 1)
        if b < hi:
            total += need * (hi - b)
        if a <= day <= b:
            etat = _etat(need, prov)
        got = (prov if prov < need else need) * (b - a + 1)
        return got, total, prov > need + EPS, etat
    cuts = {lo, hi + 1}
    for s, e, _ in accs:
        if lo < s <= hi:
            cuts.add(s)
        if lo <= e < hi:
            cuts.add(e + 1)
    points = sorted(cuts)
    got = total = 0.0
    over = False
    start = lo
    for stop in points[1:]:  # the piece [start, stop - 1]
        prov = 0.0
        for s, e, h in accs:
            if s <= start <= e:
                if not indiv:
                    prov = 1.0
                    break
                prov += h
        total += need * (stop - start)
        got += (prov if prov < need else need) * (stop - start)
        if prov > need + EPS:
            over = True
        if start <= day < stop:
            etat = _etat(need, prov)
        start = stop
    return got, total, over, etat


def _etat(need: float, provided: float) -> str:
    if need <= 0:
        return SANS_SCOLARITE
    if provided <= EPS:
        return AUCUNE
    if provided > need + EPS:
        return DEPASSEMENT
    if provided >= need - EPS:
        return COMPLETE
    return PARTIELLE


def state_on(ps: Sequence[Piece], decision: DecisionRec, day: date) -> str:
    """The state of the decision on `day` (interfaces §5 `etat`)."""
    o = day.toordinal()
    if o < decision.debut.toordinal() or o > decision.fin.toordinal():
        return HORS_PERIODE
    for p in ps:
        if p.debut <= o <= p.fin:
            return _etat(p.need, p.provided)
    return HORS_PERIODE


def timeline(
    decision: DecisionRec,
    scols: Sequence[ScolRec],
    accs: Sequence[AccRec],
    previsionnel_missions: frozenset[str] = frozenset(),
) -> list[Segment]:
    """Coloured segments of the decision, then violet `maintien` ones after its end."""
    raw: list[tuple[int, int, str, bool]] = [
        (p.debut, p.fin, _etat(p.need, p.provided), p.previsionnel)
        for p in pieces(decision, scols, accs, previsionnel_missions)
    ]
    after = decision.fin.toordinal() + 1
    extra = sorted(
        (
            max(a.debut.toordinal(), after),
            a.fin.toordinal(),
            a.previsionnel or a.mission_id in previsionnel_missions,
        )
        for a in accs
        if a.maintien and a.fin.toordinal() >= after
    )
    # Union of the maintien periods, split where the prévisionnel mark changes.
    for s, e, p in extra:
        if raw and raw[-1][2] == MAINTIEN and s <= raw[-1][1] + 1:
            ls, le, _, lp = raw[-1]
            if lp == p or e <= le:
                raw[-1] = (ls, max(le, e), MAINTIEN, lp)
                continue
            s = le + 1
        raw.append((s, e, MAINTIEN, p))
    joined: list[tuple[int, int, str, bool]] = []
    for seg in raw:
        if joined and joined[-1][2:] == seg[2:] and joined[-1][1] + 1 == seg[0]:
            joined[-1] = (joined[-1][0], seg[1], seg[2], seg[3])
        else:
            joined.append(seg)
    return [
        Segment(date.fromordinal(s), date.fromordinal(e), etat, prev) for s, e, etat, prev in joined
    ]
