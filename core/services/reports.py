"""Report use cases (interfaces §2, §5): load scoped data, apply the rules, shape the output."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from operator import itemgetter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.dates import SchoolYear
from core.perimeter import Perimeter
from core.repositories import agesh
from core.rules import anomalies as anomaly_rules
from core.rules import coverage as coverage_rules
from core.rules import indicators as indicator_rules
from core.rules import pial as pial_rules
from core.services import parametres
from core.texts import t


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a report builds its rows.

    A national report allocates millions of small tuples, lists and dicts that all stay
    alive until it returns, and each automatic collection meanwhile walks them all again:
    measured, a third of the report's time. They form no reference cycles (reference
    counting frees them), so nothing is lost by collecting once, after. Two reports that
    overlap in one process leave the collector as the first one found it.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # What the report allocated is young for the collector, which would walk all of it
        # at its next pass, a few allocations after being enabled again: most of it is the
        # report being returned. Freezing then unfreezing moves it, with everything else,
        # to the oldest generation (two list splices), which is walked on the usual, rare
        # schedule of full collections. Measured: 0.7 s of a national coverage report.
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()


_ORDINALS = 10**7  # above any day ordinal (date.max is 3,652,059)


class _IsoDays(dict[int, str]):
    """ISO text of a day ordinal, computed once per distinct day and kept for the next
    reports (bounded)."""

    def __missing__(self, o: int) -> str:
        if len(self) > 100_000:
            self.clear()
        self[o] = iso = date.fromordinal(o).isoformat()
        return iso


_ISO_DAYS = _IsoDays()


async def coverage_report(
    session: AsyncSession, perimeter: Perimeter, year: SchoolYear, day: date
) -> dict[str, Any]:
    """Decisions of the year with their coverage, sorted by priority, start date, id."""
    with _no_cyclic_gc():
        return await _coverage_report(session, perimeter, year, day)


async def _coverage_report(
    session: AsyncSession, perimeter: Perimeter, year: SchoolYear, day: date
) -> dict[str, Any]:
    data = await agesh.coverage_data(session, perimeter, year)
    scols, accs = data.scols_by_eleve, data.accs_by_decision
    day_o = day.toordinal()
    iso = _ISO_DAYS
    assess = coverage_rules.assess
    keys: list[int] = []
    rows: list[dict[str, Any]] = []
    no_scol: list[Any] = []
    no_acc: list[tuple[int, int, float]] = []
    rounded: dict[float, tuple[float, float, int]] = {}
    # By decision id first, so that the stable sort on the key below breaks ties by id
    # (nearly free when the database returns them in id order, as SQLite usually does).
    decisions = sorted(data.decisions, key=itemgetter(0))
    for did, eid, typ, heures, lo, hi in decisions:
        indiv = typ == coverage_rules.INDIVIDUELLE
        got = accs.get(did)
        if got is None:
            ids: list[str] = []
            providing: list[tuple[int, int, float]] = no_acc
        else:
            ids, providing = got
            if len(ids) > 1:
                ids.sort()
        couverture, over, etat = assess(
            lo,
            hi,
            (heures or 0.0) if indiv else 1.0,
            indiv,
            scols.get(eid, no_scol),
            providing,
            day_o,
        )
        if couverture == 0.0:  # nothing provided: spare the rounding
            priorite = 1.0
            key = lo
        else:
            # A few tens of thousands of values recur among the decisions (all covered,
            # half covered…): each is rounded once.
            got_rounded = rounded.get(couverture)
            if got_rounded is None:
                got_rounded = rounded[couverture] = _rounded(couverture)
            couverture, priorite, rank = got_rounded
            key = rank + lo
        keys.append(key)
        rows.append(
            {
                "decision_id": did,
                "eleve_id": eid,
                "type": typ,
                "heures": heures,
                "debut": iso[lo],
                "fin": iso[hi],
                "couverture": couverture,
                "priorite": priorite,
                "depassement": over,
                "etat": etat,
                "accompagnement_ids": ids,
            }
        )
    order = sorted(range(len(rows)), key=keys.__getitem__)  # int keys: the fast sort
    return {"date": day.isoformat(), "annee": year.label, "decisions": [rows[i] for i in order]}


def _rounded(couverture: float) -> tuple[float, float, int]:
    """(couverture, priorite) as reported (to 1/10000), and the rank of the priority in the
    report's order: highest first, then by start day (added to it)."""
    priorite = round(1.0 - couverture, 4)
    # The rounded priority is a whole number of 1/10000: an exact int.
    return round(couverture, 4), priorite, (10000 - int(priorite * 10000 + 0.5)) * _ORDINALS


async def anomalies_report(
    session: AsyncSession, perimeter: Perimeter, year: SchoolYear
) -> dict[str, Any]:
    with _no_cyclic_gc():
        return await _anomalies_report(session, perimeter, year)


async def _anomalies_report(
    session: AsyncSession, perimeter: Perimeter, year: SchoolYear
) -> dict[str, Any]:
    found = anomaly_rules.check(*await agesh.anomaly_data(session, perimeter, year))
    counts = {str(k): 0 for k in anomaly_rules.TYPES}
    items = []
    texts: dict[tuple[object, ...], str] = {}  # many details repeat (same dates, same hours)
    for a in found:
        counts[str(a.type)] += 1
        key = (a.type, *a.params.values())
        detail = texts.get(key)
        if detail is None:
            detail = texts[key] = t(f"anomalies.detail_{a.type}", **a.params)
        items.append({"type": a.type, "accompagnement_id": a.accompagnement_id, "detail": detail})
    return {"annee": year.label, "counts": counts, "items": items}


async def pial_report(
    session: AsyncSession, perimeter: Perimeter, year: SchoolYear
) -> dict[str, Any]:
    with _no_cyclic_gc():
        return await _pial_report(session, perimeter, year)


async def _pial_report(
    session: AsyncSession, perimeter: Perimeter, year: SchoolYear
) -> dict[str, Any]:
    pial_list = await agesh.pials(session, perimeter)
    rnes = [rne for rne, _ in pial_list]
    data = await agesh.pial_data(session, rnes, year, perimeter)
    formulas = await parametres.formulas_for(session, {dep for _, dep in pial_list}, year)
    # The department line: the perimeter's department, or the national recommendation.
    own = perimeter.departement
    dep_formula: Callable[[int], int] = (
        formulas[own] if own in formulas else await parametres.formula_for(session, own, year)
    )
    rows, dep_line = pial_rules.compute(
        year,
        rnes,
        data.decisions,
        data.pial_spans_by_eleve,
        data.affectations,
        data.missions,
        dep_formula,
        pial_formula={rne: formulas[dep] for rne, dep in pial_list},
    )
    dep_row = dep_line._asdict()
    del dep_row["pial_rne"]
    return {"annee": year.label, "pials": [r._asdict() for r in rows], "departement": dep_row}


async def indicateurs_report(
    session: AsyncSession, perimeter: Perimeter, year: SchoolYear
) -> dict[str, Any]:
    decisions = await agesh.decisions(session, perimeter, year)
    accompanied = await agesh.accompanied_decision_ids(session, perimeter)
    ind = indicator_rules.indicators(year, decisions, accompanied)
    return {
        "annee": year.label,
        "total": ind.total,
        "sans_accompagnement": ind.sans_accompagnement,
        "avec_accompagnement": ind.avec_accompagnement,
        "par_mois": ind.par_mois,
    }


async def cas_particuliers_report(
    session: AsyncSession, perimeter: Perimeter, year: SchoolYear
) -> dict[str, Any]:
    decisions = await agesh.decisions(session, perimeter, year)
    by_eleve = await agesh.decisions_of_students(session, perimeter, year)
    accompanied = await agesh.accompanied_decision_ids(session, Perimeter(perimeter.departement))
    cas = indicator_rules.cas_particuliers(year, decisions, by_eleve, accompanied)
    return {"annee": year.label, **cas._asdict()}
