"""Établissements, with the PIAL and secteur rows they imply (domain 3.3)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Etablissement, Pial, Secteur
from core.services.imports import bulk
from core.services.imports.upsert import Handler, classify, merge


def departement_of_rne(rne: str) -> str:
    return rne[:3]


async def ensure_secteurs(session: AsyncSession, pairs: set[tuple[str, str]]) -> None:
    """Insert the (departement, secteur) pairs not stored yet: perimeters are chosen from them."""
    if not pairs:
        return
    result = await session.execute(select(Secteur.departement, Secteur.code))
    stored = {(departement, code) for departement, code in result}
    missing = sorted(pairs - stored)
    await bulk.insert_rows(session, Secteur, [{"departement": d, "code": c} for d, c in missing])


COLUMNS = {
    c: c
    for c in (
        "nom",
        "commune",
        "code_postal",
        "latitude",
        "longitude",
        "pial_rne",
        "secteur",
        "email",
    )
}
FIELDS = (*COLUMNS.values(), "departement")
DEFAULTS: dict[str, Any] = dict.fromkeys(FIELDS)


class EtablissementsHandler(Handler):
    async def check(self) -> None:
        self.stored = await bulk.load(self.session, Etablissement, ("rne", *FIELDS), _rne)
        in_file = {row.values["rne"] for row in self.rows}
        # The tête may come later in the same file, or be stored already; it names itself.
        known = in_file | set(self.stored)
        for row in self.rows:
            self.unknown(row, "pial_rne", "imports.unknown_tete", known)

    async def write(self) -> None:
        pairs = []
        for row in self.rows:
            rne = row.values["rne"]
            old = self.stored.get(rne)
            new = merge(old, row.values, COLUMNS, DEFAULTS)
            new["rne"] = rne
            new["departement"] = departement_of_rne(rne)
            pairs.append((row.row, old, new))
        plan = classify(pairs, FIELDS)
        await self.save(Etablissement, plan, ("rne", *FIELDS), ("rne", *FIELDS))

        merged = [new for _, _, new in pairs]
        tetes = {e["pial_rne"] for e in merged if e["pial_rne"]}
        stored_pials = await bulk.column_values(self.session, Pial.rne)
        new_pials = sorted(tetes - stored_pials)
        await bulk.insert_rows(
            self.session,
            Pial,
            [{"rne": r, "departement": departement_of_rne(r)} for r in new_pials],
        )
        await ensure_secteurs(
            self.session, {(e["departement"], e["secteur"]) for e in merged if e["secteur"]}
        )


def _rne(record: dict[str, Any]) -> str:
    return str(record["rne"])
