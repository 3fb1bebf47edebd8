"""PIAL needs and means over a school year (domain 3.7), with difference arrays per day."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import accumulate
from typing import NamedTuple

from core.dates import SchoolYear
from core.rules.coverage import INDIVIDUELLE
from core.rules.natures import accompanies
from core.rules.records import AffectationRec, DecisionRec, MissionRec, ScolRec

DEPARTEMENT = "__departement__"


class PialFigures(NamedTuple):
    pial_rne: str | None
    nb_individuelles: int
    nb_mutualisees: int
    besoin_moyen: float
    moyens_moyen: float
    couverture_moyenne: float | None


def _merge(ivs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    ivs.sort()
    out: list[tuple[int, int]] = []
    for s, e in ivs:
        if out and s <= out[-1][1] + 1:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


class _Acc:
    """Daily difference arrays for one PIAL (or the department line)."""

    __slots__ = ("c_i", "c_m", "h_i", "moyens", "n_i", "n_m")

    def __init__(self, n: int) -> None:
        self.c_i = [0] * (n + 1)
        self.h_i = [0.0] * (n + 1)
        self.c_m = [0] * (n + 1)
        self.moyens = [0.0] * (n + 1)
        self.n_i = 0
        self.n_m = 0


def compute(
    year: SchoolYear,
    pials: Sequence[str],
    pial_of_rne: Mapping[str, str],
    decisions: Iterable[DecisionRec],
    scols_by_eleve: Mapping[str, Sequence[ScolRec]],
    affectations: Iterable[AffectationRec],
    missions: Mapping[str, MissionRec],
    formula: Callable[[int], int],
    pial_formula: Mapping[str, Callable[[int], int]] | None = None,
) -> tuple[list[PialFigures], PialFigures]:
    """Figures per PIAL (every PIAL of `pials`, zeros included) and the department line.

    `formula` applies to the department line; `pial_formula` may give a PIAL its own
    department's formula when several departments are reported together.
    """
    y0, y1 = year.debut.toordinal(), year.fin.toordinal()
    n = y1 - y0 + 1
    acc: dict[str, _Acc] = {p: _Acc(n) for p in pials}
    dep = _Acc(n)

    for d in decisions:
        lo, hi = max(d.debut.toordinal(), y0), min(d.fin.toordinal(), y1)
        if lo > hi:
            continue
        per_pial: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for s in scols_by_eleve.get(d.eleve_id, ()):
            p = pial_of_rne.get(s.rne)
            if p is None or p not in acc:
                continue
            s_lo = max(lo, s.debut.toordinal())
            s_hi = hi if s.fin is None else min(hi, s.fin.toordinal())
            if s_lo <= s_hi:
                per_pial[p].append((s_lo - y0, s_hi - y0))
        if not per_pial:
            continue
        indiv = d.type == INDIVIDUELLE
        h = d.heures or 0.0
        everywhere: list[tuple[int, int]] = []
        for p, ivs in per_pial.items():
            merged = _merge(ivs)
            everywhere.extend(merged)
            _add(acc[p], merged, indiv, h)
        _add(dep, _merge(everywhere), indiv, h)

    for af in affectations:
        m = missions.get(af.mission_id)
        if m is None or not m.actif or not accompanies(m.nature) or af.pial_rne not in acc:
            continue
        lo = max(m.debut.toordinal(), y0)
        hi = y1 if m.fin is None else min(m.fin.toordinal(), y1)
        if lo > hi:
            continue
        volume = m.heures if af.heures is None else min(af.heures, m.heures)
        for a in (acc[af.pial_rne], dep):
            a.moyens[lo - y0] += volume
            a.moyens[hi - y0 + 1] -= volume

    memo: dict[int, Callable[[int], int]] = {}

    def memoized(fn: Callable[[int], int]) -> Callable[[int], int]:
        got = memo.get(id(fn))
        if got is None:
            cache: dict[int, int] = {}

            def f(c: int) -> int:
                v = cache.get(c)
                if v is None:
                    v = cache[c] = fn(c)
                return v

            got = memo[id(fn)] = f
        return got

    per = pial_formula or {}
    rows = [_figures(p, acc[p], n, memoized(per.get(p, formula))) for p in pials]
    return rows, _figures(None, dep, n, memoized(formula))


def _add(a: _Acc, ivs: list[tuple[int, int]], indiv: bool, h: float) -> None:
    for s, e in ivs:
        if indiv:
            a.c_i[s] += 1
            a.c_i[e + 1] -= 1
            a.h_i[s] += h
            a.h_i[e + 1] -= h
        else:
            a.c_m[s] += 1
            a.c_m[e + 1] -= 1
    if indiv:
        a.n_i += 1
    else:
        a.n_m += 1


def _figures(rne: str | None, a: _Acc, n: int, f: Callable[[int], int]) -> PialFigures:
    h_i = list(accumulate(a.h_i[:n]))
    c_m = accumulate(a.c_m[:n])
    besoin = sum(h_i) + sum(f(c) for c in c_m)
    moyens = sum(accumulate(a.moyens[:n]))
    besoin_moyen = besoin / n
    moyens_moyen = moyens / n
    couv = None if besoin_moyen <= 0 else round(moyens_moyen / besoin_moyen, 4)
    return PialFigures(rne, a.n_i, a.n_m, round(besoin_moyen, 4), round(moyens_moyen, 4), couv)
