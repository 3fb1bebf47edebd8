"""PIAL needs and means over a school year (domain 3.7).

Only the mutualised need depends on the day in a non-linear way (f(cM(d))): it is summed
from a daily count kept as a difference array. Individual hours and means are linear in
the days, so their sums over the year are hours × days, without any per-day work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import accumulate
from typing import NamedTuple

from core.dates import SchoolYear
from core.rules.coverage import INDIVIDUELLE
from core.rules.natures import accompanies
from core.rules.records import DecisionRow, merged

DEPARTEMENT = "__departement__"


class PialFigures(NamedTuple):
    pial_rne: str | None
    nb_individuelles: int
    nb_mutualisees: int
    besoin_moyen: float
    moyens_moyen: float
    couverture_moyenne: float | None


class _Acc:
    """Running totals of one PIAL (or the department line) over the year's n days."""

    __slots__ = ("c_m", "h_days", "moyens_days", "n", "n_i", "n_m")

    def __init__(self, n: int) -> None:
        self.n = n
        self.h_days = 0.0  # Σ over days of the individual decisions' hours
        self.moyens_days = 0.0  # Σ over days of the means
        self.c_m: list[int] | None = None  # mutualised decisions per day, as differences
        self.n_i = 0
        self.n_m = 0

    def add(self, ivs: Sequence[tuple[int, int]], indiv: bool, h: float) -> None:
        """One decision, present on the days `ivs` (disjoint, relative to the year start)."""
        if indiv:
            self.n_i += 1
            for s, e in ivs:
                self.h_days += h * (e - s + 1)
        else:
            self.n_m += 1
            c_m = self.c_m
            if c_m is None:
                c_m = self.c_m = [0] * (self.n + 1)
            for s, e in ivs:
                c_m[s] += 1
                c_m[e + 1] -= 1


def compute(
    year: SchoolYear,
    pials: Sequence[str],
    decisions: Iterable[DecisionRow],
    pial_spans_by_eleve: Mapping[str, Sequence[tuple[str, int, int]]],
    affectations: Iterable[tuple[str, str, float | None]],
    missions: Mapping[str, tuple[int, int, float, bool, str]],
    formula: Callable[[int], int],
    pial_formula: Mapping[str, Callable[[int], int]] | None = None,
) -> tuple[list[PialFigures], PialFigures]:
    """Figures per PIAL (every PIAL of `pials`, zeros included) and the department line.

    `pial_spans_by_eleve`: (pial, debut, fin) of each student's scolarisations in an
    établissement of a PIAL; `affectations`: (mission_id, pial, heures or None);
    `missions`: (debut, fin, heures, actif, nature) by id; dates are day ordinals.
    `formula` applies to the department line; `pial_formula` may give a PIAL its own
    department's formula when several departments are reported together.
    """
    y0, y1 = year.debut.toordinal(), year.fin.toordinal()
    n = y1 - y0 + 1
    acc: dict[str, _Acc] = {p: _Acc(n) for p in pials}
    dep = _Acc(n)
    no_span: list[tuple[str, int, int]] = []

    for _, eid, typ, heures, debut, fin in decisions:
        spans = pial_spans_by_eleve.get(eid, no_span)
        if not spans:
            continue
        lo = debut if debut > y0 else y0
        hi = fin if fin < y1 else y1
        indiv = typ == INDIVIDUELLE
        h = heures or 0.0
        if len(spans) == 1:  # the usual case: one scolarisation, nothing to merge
            p, s, e = spans[0]
            if s < lo:
                s = lo
            if e > hi:
                e = hi
            if s <= e:
                mine = acc.get(p)
                if mine is not None:
                    run = ((s - y0, e - y0),)
                    mine.add(run, indiv, h)
                    dep.add(run, indiv, h)
            continue
        per_pial: dict[str, list[tuple[int, int]]] = {}
        for p, s, e in spans:
            if s < lo:
                s = lo
            if e > hi:
                e = hi
            if s <= e and p in acc:
                per_pial.setdefault(p, []).append((s - y0, e - y0))
        if not per_pial:
            continue
        if len(per_pial) == 1:
            ((p, ivs),) = per_pial.items()
            runs = merged(ivs) if len(ivs) > 1 else ivs
            acc[p].add(runs, indiv, h)
            dep.add(runs, indiv, h)
            continue
        everywhere: list[tuple[int, int]] = []
        for p, ivs in per_pial.items():
            runs = merged(ivs)
            everywhere.extend(runs)
            acc[p].add(runs, indiv, h)
        dep.add(merged(everywhere), indiv, h)

    for mission_id, pial_rne, af_heures in affectations:
        m = missions.get(mission_id)
        if m is None or pial_rne not in acc:
            continue
        m_debut, m_fin, m_heures, actif, nature = m
        if not actif or not accompanies(nature):
            continue
        lo = m_debut if m_debut > y0 else y0
        hi = m_fin if m_fin < y1 else y1
        if lo > hi:
            continue
        volume = m_heures if af_heures is None else min(af_heures, m_heures)
        acc[pial_rne].moyens_days += volume * (hi - lo + 1)
        dep.moyens_days += volume * (hi - lo + 1)

    memo: dict[int, _Memo] = {}

    def memoized(fn: Callable[[int], int]) -> _Memo:
        got = memo.get(id(fn))
        if got is None:
            got = memo[id(fn)] = _Memo(fn)
        return got

    per = pial_formula or {}
    rows = [_figures(p, acc[p], n, memoized(per.get(p, formula))) for p in pials]
    return rows, _figures(None, dep, n, memoized(formula))


class _Memo(dict[int, int]):
    """f(cM), evaluated once per count that actually occurs on some day."""

    def __init__(self, fn: Callable[[int], int]) -> None:
        super().__init__()
        self.fn = fn

    def __missing__(self, c: int) -> int:
        self[c] = v = self.fn(c)
        return v


def _figures(rne: str | None, a: _Acc, n: int, f: _Memo) -> PialFigures:
    besoin = a.h_days
    if a.c_m is None:
        besoin += f[0] * n
    else:
        besoin += sum(map(f.__getitem__, accumulate(a.c_m[:n])))
    besoin_moyen = besoin / n
    moyens_moyen = a.moyens_days / n
    couv = None if besoin_moyen <= 0 else round(moyens_moyen / besoin_moyen, 4)
    return PialFigures(rne, a.n_i, a.n_m, round(besoin_moyen, 4), round(moyens_moyen, 4), couv)
