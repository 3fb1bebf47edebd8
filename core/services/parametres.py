"""Department parameters (domain 3.2, 3.7, 3.10): work-time reference, besoin formula, cartouche."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.dates import SchoolYear, today_paris
from core.errors import InvalidInput
from core.models import Cartouche, Mission, ParametreAnnee
from core.rules.formula import DEFAULT_FORMULA, Formula, FormulaError, parse_formula
from core.rules.workload import reference_for_mission, weekly_hours

# Fields the superviseur must fill before any PV d'affectation can be produced (manual 3.2).
CARTOUCHE_FIELDS: tuple[str, ...] = (
    "academie",
    "direction",
    "service",
    "adresse",
    "code_postal",
    "commune",
    "telephone",
    "email",
    "signataire",
    "qualite_signataire",
)


async def _row(session: AsyncSession, dep: str, year: SchoolYear) -> ParametreAnnee | None:
    return await session.get(ParametreAnnee, (dep, year.label))


async def formula_for(session: AsyncSession, dep: str | None, year: SchoolYear) -> Formula:
    """The department's formula for the year, or the national recommendation."""
    if dep is None:
        return parse_formula(DEFAULT_FORMULA)
    return (await formulas_for(session, {dep}, year))[dep]


async def formulas_for(
    session: AsyncSession, deps: set[str], year: SchoolYear
) -> dict[str, Formula]:
    """`formula_for` of each department of `deps`, read in one statement (a national PIAL
    report spans about a hundred departments)."""
    q = select(ParametreAnnee.departement, ParametreAnnee.formule).where(
        ParametreAnnee.annee == year.label, ParametreAnnee.departement.in_(sorted(deps))
    )
    own = {dep: source for dep, source in (await session.execute(q)).all() if source}
    return {dep: parse_formula(own.get(dep) or DEFAULT_FORMULA) for dep in deps}


async def set_formula(session: AsyncSession, dep: str, year: SchoolYear, source: str) -> Formula:
    try:
        formula = parse_formula(source)
    except FormulaError as err:
        raise InvalidInput(
            "parametres.formule_invalide", erreur=str(err), apercu=err.caret()
        ) from err
    row = await _row(session, dep, year)
    if row is None:
        session.add(ParametreAnnee(departement=dep, annee=year.label, formule=source.strip()))
    else:
        row.formule = source.strip()
    await session.flush()
    return formula


async def reference_for(session: AsyncSession, dep: str | None, year: SchoolYear) -> float | None:
    if dep is None:
        return None
    row = await _row(session, dep, year)
    return None if row is None else row.reference_heures


async def set_reference(session: AsyncSession, dep: str, year: SchoolYear, heures: float) -> int:
    """Set the hours of a 100 % contract and recompute the missions it applies to.

    Returns how many missions changed (HR's own figure, when given, always wins; see
    `reference_for_mission` for which year's reference a mission follows).
    """
    if not 0 < heures <= 60:
        raise InvalidInput("parametres.reference_invalide", heures=heures)
    row = await _row(session, dep, year)
    if row is None:
        session.add(ParametreAnnee(departement=dep, annee=year.label, reference_heures=heures))
    else:
        row.reference_heures = heures
    await session.flush()
    return await recompute_mission_hours(session, dep)


async def references(session: AsyncSession, dep: str) -> dict[int, float]:
    rows = await session.execute(
        select(ParametreAnnee.annee, ParametreAnnee.reference_heures).where(
            ParametreAnnee.departement == dep, ParametreAnnee.reference_heures.is_not(None)
        )
    )
    return {SchoolYear.parse(annee).start_year: float(h) for annee, h in rows if h is not None}


async def recompute_mission_hours(
    session: AsyncSession, dep: str, today: date | None = None
) -> int:
    """Recompute the weekly hours of the department's missions that HR gave without hours."""
    refs = await references(session, dep)
    today = today or today_paris()
    rows = await session.execute(
        select(Mission.id, Mission.quotite, Mission.heures, Mission.debut, Mission.fin).where(
            Mission.departement == dep, Mission.heures_rh.is_(None)
        )
    )
    changes = []
    for mid, quotite, current, debut, fin in rows:
        new = weekly_hours(None, quotite, reference_for_mission(refs, debut, fin, today))
        if abs(new - current) > 1e-9:
            changes.append({"id": mid, "heures": new})
    for i in range(0, len(changes), 2000):
        await session.execute(update(Mission), changes[i : i + 2000])
    return len(changes)


async def cartouche(session: AsyncSession, dep: str) -> dict[str, str]:
    row = await session.get(Cartouche, dep)
    return dict(row.champs) if row is not None else {}


def missing_cartouche_fields(champs: dict[str, str]) -> list[str]:
    return [f for f in CARTOUCHE_FIELDS if not str(champs.get(f) or "").strip()]


async def set_cartouche(
    session: AsyncSession, dep: str, champs: dict[str, object]
) -> dict[str, str]:
    unknown = sorted(set(champs) - set(CARTOUCHE_FIELDS))
    if unknown:
        raise InvalidInput(
            "parametres.cartouche_champ_inconnu",
            champs=", ".join(unknown),
            attendus=", ".join(CARTOUCHE_FIELDS),
        )
    clean = {k: str(v).strip() for k, v in champs.items() if v is not None}
    missing = missing_cartouche_fields(clean)
    if missing:
        raise InvalidInput("parametres.cartouche_incomplete", champs=", ".join(missing))
    row = await session.get(Cartouche, dep)
    if row is None:
        session.add(Cartouche(departement=dep, champs=clean))
    else:
        row.champs = clean
    await session.flush()
    return clean
