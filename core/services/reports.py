"""Report use cases (interfaces §2, §5): load scoped data, apply the rules, shape the output."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.dates import SchoolYear
from core.perimeter import Perimeter
from core.repositories import agesh
from core.rules import anomalies as anomaly_rules
from core.rules import coverage as coverage_rules
from core.rules import indicators as indicator_rules
from core.rules import pial as pial_rules
from core.rules.formula import Formula
from core.services import parametres
from core.texts import t


def _r4(x: float) -> float:
    return round(x, 4)


async def coverage_report(
    session: AsyncSession, perimeter: Perimeter, year: SchoolYear, day: date
) -> dict[str, Any]:
    """Decisions of the year with their coverage, sorted by priority, start date, id."""
    decisions = await agesh.decisions(session, perimeter, year)
    scols = await agesh.scolarisations_by_eleve(session, perimeter, year)
    accs = await agesh.accompaniments_by_decision(session, perimeter, year)
    rows: list[tuple[float, date, str, dict[str, Any]]] = []
    no_scol: list[Any] = []
    no_acc: list[Any] = []
    for d in decisions:
        a = accs.get(d.id, no_acc)
        ps = coverage_rules.pieces(d, scols.get(d.eleve_id, no_scol), a)
        cov = coverage_rules.coverage_of(ps)
        priorite = _r4(cov.priorite)
        rows.append(
            (
                -priorite,
                d.debut,
                d.id,
                {
                    "decision_id": d.id,
                    "eleve_id": d.eleve_id,
                    "type": d.type,
                    "heures": d.heures,
                    "debut": d.debut.isoformat(),
                    "fin": d.fin.isoformat(),
                    "couverture": _r4(cov.couverture),
                    "priorite": priorite,
                    "depassement": cov.depassement,
                    "etat": coverage_rules.state_on(ps, d, day),
                    "accompagnement_ids": sorted(x.id for x in a),
                },
            )
        )
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return {"date": day.isoformat(), "annee": year.label, "decisions": [r[3] for r in rows]}


async def anomalies_report(
    session: AsyncSession, perimeter: Perimeter, year: SchoolYear
) -> dict[str, Any]:
    data = await agesh.anomaly_data(session, perimeter, year)
    found = anomaly_rules.check(
        data.accs,
        data.acc_decisions,
        data.decisions,
        data.missions,
        data.scols_by_eleve,
        data.eleves,
        data.accs_by_mission,
    )
    counts = {str(k): 0 for k in anomaly_rules.TYPES}
    items = []
    for a in found:
        counts[str(a.type)] += 1
        items.append(
            {
                "type": a.type,
                "accompagnement_id": a.accompagnement_id,
                "detail": t(f"anomalies.detail_{a.type}", **a.params),
            }
        )
    return {"annee": year.label, "counts": counts, "items": items}


async def pial_report(
    session: AsyncSession, perimeter: Perimeter, year: SchoolYear
) -> dict[str, Any]:
    pial_list = await agesh.pials(session, perimeter)
    rnes = [rne for rne, _ in pial_list]
    pial_of = await agesh.pial_of_rne(session, perimeter)
    decisions = await agesh.decisions(session, perimeter, year)
    scols = await agesh.scolarisations_by_eleve(session, perimeter, year)
    affs, missions = await agesh.affectations(session, rnes, year, perimeter)
    formulas: dict[str, Formula] = {}
    for dep in sorted({dep for _, dep in pial_list} | {perimeter.departement or ""}):
        formulas[dep] = await parametres.formula_for(session, dep or None, year)
    dep_formula: Callable[[int], int] = formulas[perimeter.departement or ""]
    rows, dep_line = pial_rules.compute(
        year,
        rnes,
        pial_of,
        decisions,
        scols,
        affs,
        missions,
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
