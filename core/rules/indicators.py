"""Indicators of a school year (domain 3.6) and cas particuliers (domain 3.9)."""

from __future__ import annotations

import calendar
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date
from typing import NamedTuple

from core.dates import SchoolYear
from core.rules.records import DecisionRec


class Indicators(NamedTuple):
    total: int
    sans_accompagnement: int
    avec_accompagnement: int
    par_mois: dict[str, int]


def indicators(
    year: SchoolYear, decisions: Iterable[DecisionRec], accompanied: Collection[str]
) -> Indicators:
    """`decisions` already intersect the year; `accompanied` are ids with any accompaniment."""
    months = [
        (f"{y:04d}-{m:02d}", date(y, m, 1), date(y, m, calendar.monthrange(y, m)[1]))
        for y, m in year.months()
    ]
    par_mois = {k: 0 for k, _, _ in months}
    total = avec = 0
    for d in decisions:
        total += 1
        if d.id in accompanied:
            avec += 1
        for k, first, last in months:
            if d.debut <= last and first <= d.fin:
                par_mois[k] += 1
    return Indicators(total, total - avec, avec, par_mois)


class CasParticuliers(NamedTuple):
    non_couvertes_apres_accompagnement: list[str]
    echeance_non_renouvelee: list[str]


def cas_particuliers(
    year: SchoolYear,
    in_scope: Iterable[DecisionRec],
    by_eleve: Mapping[str, Sequence[DecisionRec]],
    accompanied: Collection[str],
) -> CasParticuliers:
    """`in_scope`: decisions of the perimeter intersecting the year; `by_eleve`: all decisions
    of those students (any year), needed to find the previous and the later ones."""
    uncovered: list[str] = []
    expiring: list[str] = []
    for d in in_scope:
        others = by_eleve.get(d.eleve_id, ())
        if d.id not in accompanied:
            earlier = [o for o in others if o.debut < d.debut and o.id != d.id]
            if earlier:
                prev = max(earlier, key=lambda o: (o.debut, o.id))
                if prev.id in accompanied:
                    uncovered.append(d.id)
        if year.debut <= d.fin <= year.fin and not any(
            o.fin > d.fin for o in others if o.id != d.id
        ):
            expiring.append(d.id)
    return CasParticuliers(sorted(uncovered), sorted(expiring))
