"""HR snapshots (AESH, missions) and PIAL affectations (domain 3.2, 3.7)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.dates import SchoolYear, today_paris
from core.models import Aesh, Affectation, Mission, ParametreAnnee, Pial
from core.rules.workload import reference_for_mission, weekly_hours
from core.services.imports import bulk
from core.services.imports.referentiel import departement_of_rne
from core.services.imports.upsert import Handler, classify, merge


def departement_of_postcode(code: str | None) -> str | None:
    """62000 -> 062, 97400 -> 974 (overseas departments have three digits)."""
    if not code or len(code) != 5 or not code.isdigit():
        return None
    return code[:3] if code.startswith(("97", "98")) else "0" + code[:2]


def first_employers(missions: Iterable[tuple[str, date, str, str | None]]) -> dict[str, str]:
    """Department of the employing établissement of each AESH's first mission that names one.

    `missions` holds (aesh_id, debut, mission_id, employeur_rne).
    """
    first: dict[str, tuple[date, str, str]] = {}
    for aesh_id, debut, mission_id, employeur in missions:
        if not employeur:
            continue
        current = first.get(aesh_id)
        if current is None or (debut, mission_id) < current[:2]:
            first[aesh_id] = (debut, mission_id, employeur)
    return {a: departement_of_rne(employeur) for a, (_, _, employeur) in first.items()}


def _by_id(record: dict[str, Any]) -> str:
    return str(record["id"])


# --- aesh ---------------------------------------------------------------------------------

AESH_COLUMNS = {
    c: c
    for c in (
        "source",
        "nom",
        "prenom",
        "date_naissance",
        "commune",
        "code_postal",
        "latitude",
        "longitude",
        "email",
        "telephone",
        "transport",
        "rqth",
    )
}
AESH_FIELDS = (*AESH_COLUMNS.values(), "actif", "previsionnel", "departement")
AESH_DEFAULTS: dict[str, Any] = dict.fromkeys(AESH_FIELDS)


class AeshHandler(Handler):
    async def check(self) -> None:
        self.stored = await bulk.load(self.session, Aesh, ("id", *AESH_FIELDS), _by_id)

    async def write(self) -> None:
        stmt = select(Mission.aesh_id, Mission.debut, Mission.id, Mission.employeur_rne).where(
            Mission.employeur_rne.is_not(None)
        )
        result = await self.session.execute(stmt)
        employers = first_employers((a, d, m, e) for a, d, m, e in result)
        pairs = []
        for row in self.rows:
            aesh_id = row.values["id"]
            old = self.stored.get(aesh_id)
            new = merge(old, row.values, AESH_COLUMNS, AESH_DEFAULTS)
            new["id"] = aesh_id
            # Present in an HR snapshot: active again if it had left, and no longer prévisionnel.
            new["actif"] = True
            new["previsionnel"] = False
            new["departement"] = (
                employers.get(aesh_id)
                or departement_of_postcode(new["code_postal"])
                or new["departement"]
            )
            pairs.append((row.row, old, new))
        plan = classify(pairs, AESH_FIELDS)
        fields = ("id", *AESH_FIELDS)
        await self.save(Aesh, plan, fields, fields)

        # A snapshot of a source lists all its AESH: the others have left (kept, inactive).
        sources = {new["source"] for _, _, new in pairs}
        in_file = {new["id"] for _, _, new in pairs}
        gone = [
            {"id": aesh_id, "actif": False}
            for aesh_id, old in self.stored.items()
            if old["source"] in sources and old["actif"] and aesh_id not in in_file
        ]
        await bulk.update_rows(self.session, Aesh, gone)
        self.report.deactivated += len(gone)


# --- missions -----------------------------------------------------------------------------

MISSION_COLUMNS = {
    "aesh_id": "aesh_id",
    "contrat": "contrat",
    "nature": "nature",
    "debut": "debut",
    "fin": "fin",
    "quotite": "quotite",
    "heures": "heures_rh",  # HR's figure; `heures` is derived (domain 3.2)
    "employeur_rne": "employeur_rne",
    "pial_rne": "pial_rne",
}
MISSION_FIELDS = (*MISSION_COLUMNS.values(), "heures", "previsionnel", "actif", "departement")
MISSION_DEFAULTS: dict[str, Any] = dict.fromkeys(MISSION_FIELDS)


class MissionsHandler(Handler):
    async def check(self) -> None:
        self.stored = await bulk.load(self.session, Mission, ("id", *MISSION_FIELDS), _by_id)
        self.aesh = await bulk.load(
            self.session, Aesh, ("id", "source", "departement", "code_postal"), _by_id
        )
        for row in self.rows:
            self.unknown(row, "aesh_id", "imports.unknown_aesh", self.aesh)

    async def write(self) -> None:
        merged = []
        for row in self.rows:
            mission_id = row.values["id"]
            old = self.stored.get(mission_id)
            new = merge(old, row.values, MISSION_COLUMNS, MISSION_DEFAULTS)
            new["id"] = mission_id
            new["previsionnel"] = False
            new["actif"] = True
            merged.append((row.row, old, new))

        aesh_updates = self._derive_aesh_departements([new for _, _, new in merged])
        references = await _references(self.session)
        today = today_paris()
        for _, _, new in merged:
            new["departement"] = (
                departement_of_rne(new["employeur_rne"])
                if new["employeur_rne"]
                else departement_of_rne(new["pial_rne"])
                if new["pial_rne"]
                else self.aesh[new["aesh_id"]]["departement"]
            )
            reference = reference_for_mission(
                references.get(new["departement"], {}), new["debut"], new["fin"], today
            )
            new["heures"] = weekly_hours(new["heures_rh"], new["quotite"], reference)

        plan = classify(merged, MISSION_FIELDS)
        fields = ("id", *MISSION_FIELDS)
        await self.save(Mission, plan, fields, fields)

        # A mission's source is its AESH's: a snapshot of a source lists all its missions.
        sources = {self.aesh[new["aesh_id"]]["source"] for _, _, new in merged}
        in_file = {new["id"] for _, _, new in merged}
        gone = [
            {"id": mission_id, "actif": False}
            for mission_id, old in self.stored.items()
            if old["actif"]
            and mission_id not in in_file
            and self.aesh[old["aesh_id"]]["source"] in sources
        ]
        await bulk.update_rows(self.session, Mission, gone)
        self.report.deactivated += len(gone)
        await bulk.update_rows(self.session, Aesh, aesh_updates)

    def _derive_aesh_departements(self, news: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The AESH's department follows its first mission's employer, else its postcode."""
        missions = {m["id"]: m for m in self.stored.values()}
        missions.update({m["id"]: m for m in news})
        named = {m["aesh_id"] for m in news}
        employers = first_employers(
            (m["aesh_id"], m["debut"], m["id"], m["employeur_rne"])
            for m in missions.values()
            if m["aesh_id"] in named
        )
        updates = []
        for aesh_id in sorted(named):
            aesh = self.aesh[aesh_id]
            departement = (
                employers.get(aesh_id)
                or departement_of_postcode(aesh["code_postal"])
                or aesh["departement"]
            )
            if departement != aesh["departement"]:
                aesh["departement"] = departement
                updates.append({"id": aesh_id, "departement": departement})
        return updates


async def _references(session: AsyncSession) -> dict[str, dict[int, float]]:
    """Work-time reference (hours for 100 %) by department and school year, where set."""
    stmt = select(
        ParametreAnnee.departement, ParametreAnnee.annee, ParametreAnnee.reference_heures
    ).where(ParametreAnnee.reference_heures.is_not(None))
    out: dict[str, dict[int, float]] = {}
    for d, a, r in await session.execute(stmt):
        if r is not None:
            out.setdefault(d, {})[SchoolYear.parse(a).start_year] = float(r)
    return out


# --- affectations -------------------------------------------------------------------------

AFFECTATION_FIELDS = ("mission_id", "pial_rne", "annee", "heures")
AFFECTATION_COLUMNS = {f: f for f in AFFECTATION_FIELDS}
AFFECTATION_DEFAULTS: dict[str, Any] = dict.fromkeys(AFFECTATION_FIELDS)


def _affectation_key(record: dict[str, Any]) -> tuple[Any, Any, Any]:
    return (record["mission_id"], record["pial_rne"], record["annee"])


class AffectationsHandler(Handler):
    async def check(self) -> None:
        self.stored = await bulk.load(
            self.session, Affectation, ("id", *AFFECTATION_FIELDS), _affectation_key
        )
        missions = await bulk.column_values(self.session, Mission.id)
        pials = await bulk.column_values(self.session, Pial.rne)
        for row in self.rows:
            self.unknown(row, "mission_id", "imports.unknown_mission", missions)
            self.unknown(row, "pial_rne", "imports.unknown_pial", pials)

    async def write(self) -> None:
        pairs = []
        for row in self.rows:
            old = self.stored.get(_affectation_key(row.values))
            pairs.append(
                (row.row, old, merge(old, row.values, AFFECTATION_COLUMNS, AFFECTATION_DEFAULTS))
            )
        plan = classify(pairs, AFFECTATION_FIELDS)
        await self.save(Affectation, plan, AFFECTATION_FIELDS, ("id", *AFFECTATION_FIELDS))
