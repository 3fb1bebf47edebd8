"""Pure rules for placing an accompaniment (domain 3.4): default period, CDD bound, insert."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import NamedTuple

from core.dates import SchoolYear
from core.rules.records import DecisionRec

ONE = timedelta(days=1)


class Period(NamedTuple):
    debut: date
    fin: date


def default_individual(decision: DecisionRec, today: date) -> Period:
    """The decision's dates cut to one school year: the current one, or the decision's first
    if it starts later."""
    current = SchoolYear.of(today)
    year = SchoolYear.of(decision.debut) if decision.debut > current.fin else current
    if decision.fin < year.debut:  # a decision already over: its own last year
        year = SchoolYear.of(decision.fin)
    return Period(max(decision.debut, year.debut), min(decision.fin, year.fin))


def default_mutualised(decisions: Sequence[DecisionRec]) -> Period:
    """Latest start and earliest end of the chosen decisions, cut at 31 August."""
    debut = max(d.debut for d in decisions)
    fin = min(d.fin for d in decisions)
    return Period(debut, min(fin, SchoolYear.of(debut).fin))


def crosses_school_year(p: Period) -> bool:
    return SchoolYear.of(p.debut) != SchoolYear.of(p.fin)


def bound_by_contract(p: Period, contrat: str, mission_fin: date | None) -> Period:
    """A CDD ends the accompaniment at the contract's end at the latest."""
    if contrat.endswith("CDD") and mission_fin is not None and p.fin > mission_fin:
        return Period(p.debut, mission_fin)
    return p


def cut_for_insert(original: Period, new: Period) -> list[Period]:
    """What remains of `original` once `new` replaces it on the days where both overlap:
    nothing, one piece (cut) or two (split)."""
    if new.fin < original.debut or new.debut > original.fin:
        return [original]
    left = Period(original.debut, new.debut - ONE) if new.debut > original.debut else None
    right = Period(new.fin + ONE, original.fin) if new.fin < original.fin else None
    return [p for p in (left, right) if p is not None]
