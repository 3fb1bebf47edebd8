"""Students, scolarisations and decisions (domain 3.3), each change journalled (domain 3.10)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Decision, Eleve, Etablissement, Scolarisation
from core.services import journal
from core.services.imports import bulk
from core.services.imports.referentiel import departement_of_rne, ensure_secteurs
from core.services.imports.upsert import Change, Handler, classify, merge
from core.texts import t


@dataclass(frozen=True)
class Schooling:
    rne: str
    pial_rne: str | None


async def latest_schooling(session: AsyncSession, eleve_ids: Iterable[str]) -> dict[str, Schooling]:
    """Établissement of each student's latest scolarisation (latest start; last stored on ties)."""
    stmt = select(
        Scolarisation.eleve_id,
        Scolarisation.debut,
        Scolarisation.pk,
        Scolarisation.rne,
        Etablissement.pial_rne,
    ).join(Etablissement, Etablissement.rne == Scolarisation.rne)
    best: dict[str, tuple[date, int, str, str | None]] = {}
    for eleve_id, debut, pk, rne, pial in await bulk.select_in(
        session, stmt, Scolarisation.eleve_id, eleve_ids
    ):
        current = best.get(eleve_id)
        if current is None or (debut, pk) > current[:2]:
            best[eleve_id] = (debut, pk, rne, pial)
    return {e: Schooling(rne, pial) for e, (_, _, rne, pial) in best.items()}


def _by_id(record: dict[str, Any]) -> str:
    return str(record["id"])


async def _load_eleves(session: AsyncSession) -> dict[str, dict[str, Any]]:
    stored = await bulk.load(session, Eleve, ("id", "departement", "secteur"), _by_id)
    return {str(k): v for k, v in stored.items()}


# --- eleves -------------------------------------------------------------------------------

ELEVE_FIELDS = ("nom", "prenom", "date_naissance", "secteur", "dossier_etat", "erseh_email")
ELEVE_COLUMNS = {f: f for f in ELEVE_FIELDS}
# departement is derived from scolarisations: an eleves import keeps the stored value.
ELEVE_DEFAULTS: dict[str, Any] = {**dict.fromkeys(ELEVE_FIELDS), "dossier_etat": "actif"}


class ElevesHandler(Handler):
    async def check(self) -> None:
        self.stored = await bulk.load(
            self.session, Eleve, ("id", *ELEVE_FIELDS, "departement"), _by_id
        )

    async def write(self) -> None:
        pairs = []
        for row in self.rows:
            eleve_id = row.values["id"]
            old = self.stored.get(eleve_id)
            new = merge(old, row.values, ELEVE_COLUMNS, {**ELEVE_DEFAULTS, "departement": None})
            new["id"] = eleve_id
            pairs.append((row.row, old, new))
        plan = classify(pairs, ELEVE_FIELDS, journal=True)
        fields = ("id", *ELEVE_FIELDS)
        await self.save(Eleve, plan, (*fields, "departement"), fields)

        schooling = await latest_schooling(self.session, [c.new["id"] for c in plan.updated])
        entries = []
        for change in plan.changes:
            new = change.new
            if change.old is None:
                kind = "eleve.cree"
            elif "dossier_etat" in change.fields:
                kind = "eleve.dossier_modifie"
            else:
                kind = "eleve.modifie"
            place = schooling.get(new["id"])
            entries.append(
                journal.entry(
                    kind,
                    "eleve",
                    new["id"],
                    departement=new["departement"],
                    secteur=new["secteur"],
                    pial_rne=place.pial_rne if place else None,
                    eleve_id=new["id"],
                    changes=change.fields,
                )
            )
        await bulk.record_journal(self.session, entries)
        self.report.journal_entries += len(entries)
        await ensure_secteurs(
            self.session,
            {
                (new["departement"], new["secteur"])
                for _, _, new in pairs
                if new["departement"] and new["secteur"]
            },
        )


# --- scolarisations -----------------------------------------------------------------------

SCOL_FIELDS = ("id", "eleve_id", "rne", "debut", "fin", "classe")
SCOL_COLUMNS = {f: f for f in SCOL_FIELDS}
SCOL_DEFAULTS: dict[str, Any] = dict.fromkeys(SCOL_FIELDS)


def _triple(record: dict[str, Any]) -> tuple[Any, Any, Any]:
    return (record["eleve_id"], record["rne"], record["debut"])


def _by_pk(record: dict[str, Any]) -> int:
    return int(record["pk"])


class ScolarisationsHandler(Handler):
    async def check(self) -> None:
        stored = await bulk.load(self.session, Scolarisation, ("pk", *SCOL_FIELDS), _by_pk)
        by_id = {r["id"]: r for r in stored.values() if r["id"] is not None}
        by_triple = {_triple(r): r for r in stored.values()}
        self.eleves = await _load_eleves(self.session)
        result = await self.session.execute(select(Etablissement.rne, Etablissement.pial_rne))
        self.pial_of: dict[str, str | None] = {rne: pial for rne, pial in result}
        # The stored scolarisation each row updates (None: a new one).
        self.targets: dict[int, dict[str, Any] | None] = {}
        claimed: dict[int, int] = {}
        for row in self.rows:
            self.unknown(row, "eleve_id", "imports.unknown_eleve", self.eleves)
            self.unknown(row, "rne", "imports.unknown_etablissement", self.pial_of)
            values = row.values
            given_id = values.get("id")
            target = by_id.get(given_id) if given_id is not None else None
            other = by_triple.get(_triple(values))
            if target is None:
                if other is not None and given_id and other["id"] and other["id"] != given_id:
                    self._conflict(row.row, other)
                    continue
                target = other
            elif other is not None and other["pk"] != target["pk"]:
                self._conflict(row.row, other)
                continue
            if target is not None:
                first = claimed.setdefault(target["pk"], row.row)
                if first != row.row:
                    self.errors.add(row.row, "id", t("imports.same_scolarisation", first=first))
            self.targets[row.row] = target

    def _conflict(self, row: int, other: dict[str, Any]) -> None:
        self.errors.add(row, "debut", t("imports.scolarisation_conflict", other=other["id"]))

    async def write(self) -> None:
        pairs = []
        for row in self.rows:
            old = self.targets[row.row]
            new = merge(old, row.values, SCOL_COLUMNS, SCOL_DEFAULTS)
            if new["id"] is None and old is not None:
                new["id"] = old["id"]  # no id in the file: matched by (eleve, rne, debut)
            pairs.append((row.row, old, new))
        plan = classify(pairs, SCOL_FIELDS, journal=True)
        await self.save(Scolarisation, plan, SCOL_FIELDS, ("pk", *SCOL_FIELDS))

        # Students whose scolarisations changed, including one that lost a scolarisation to
        # another student; the others keep the department derived when theirs were written.
        touched = {c.new["eleve_id"] for c in plan.changes}
        touched |= {c.old["eleve_id"] for c in plan.updated if c.old is not None}
        await self._derive_departements(touched)
        await self._journal(plan.changes)

    async def _derive_departements(self, touched: set[str]) -> None:
        """A student's department is that of the établissement of the latest scolarisation."""
        schooling = await latest_schooling(self.session, touched)
        updates = []
        for eleve_id in sorted(touched):
            place = schooling.get(eleve_id)
            eleve = self.eleves[eleve_id]
            departement = departement_of_rne(place.rne) if place else eleve["departement"]
            if departement != eleve["departement"]:
                eleve["departement"] = departement
                updates.append({"id": eleve_id, "departement": departement})
        await bulk.update_rows(self.session, Eleve, updates)
        await ensure_secteurs(
            self.session,
            {
                (self.eleves[e]["departement"], self.eleves[e]["secteur"])
                for e in touched
                if self.eleves[e]["departement"] and self.eleves[e]["secteur"]
            },
        )

    async def _journal(self, changes: list[Change]) -> None:
        # Rows created without a source id are named by their surrogate key.
        anonymous = {c.new["eleve_id"] for c in changes if c.new["id"] is None}
        pks: dict[tuple[Any, Any, Any], int] = {}
        if anonymous:
            stmt = select(
                Scolarisation.eleve_id, Scolarisation.rne, Scolarisation.debut, Scolarisation.pk
            )
            for eleve_id, rne, debut, pk in await bulk.select_in(
                self.session, stmt, Scolarisation.eleve_id, anonymous
            ):
                pks[(eleve_id, rne, debut)] = pk
        entries = []
        for change in changes:
            new = change.new
            eleve = self.eleves[new["eleve_id"]]
            entity_id = new["id"] if new["id"] is not None else str(pks[_triple(new)])
            entries.append(
                journal.entry(
                    "scolarisation.creee" if change.old is None else "scolarisation.modifiee",
                    "scolarisation",
                    entity_id,
                    departement=eleve["departement"],
                    secteur=eleve["secteur"],
                    pial_rne=self.pial_of.get(new["rne"]),
                    eleve_id=new["eleve_id"],
                    changes=change.fields,
                )
            )
        await bulk.record_journal(self.session, entries)
        self.report.journal_entries += len(entries)


# --- decisions ----------------------------------------------------------------------------

DECISION_FIELDS = ("eleve_id", "type", "heures", "origine", "nature", "debut", "fin")
DECISION_COLUMNS = {f: f for f in DECISION_FIELDS}
DECISION_DEFAULTS: dict[str, Any] = dict.fromkeys(DECISION_FIELDS)


class DecisionsHandler(Handler):
    async def check(self) -> None:
        self.stored = await bulk.load(self.session, Decision, ("id", *DECISION_FIELDS), _by_id)
        self.eleves = await _load_eleves(self.session)
        for row in self.rows:
            self.unknown(row, "eleve_id", "imports.unknown_eleve", self.eleves)

    async def write(self) -> None:
        pairs = []
        for row in self.rows:
            decision_id = row.values["id"]
            old = self.stored.get(decision_id)
            new = merge(old, row.values, DECISION_COLUMNS, DECISION_DEFAULTS)
            new["id"] = decision_id
            pairs.append((row.row, old, new))
        plan = classify(pairs, DECISION_FIELDS, journal=True)
        fields = ("id", *DECISION_FIELDS)
        await self.save(Decision, plan, fields, fields)

        schooling = await latest_schooling(self.session, {c.new["eleve_id"] for c in plan.changes})
        entries = []
        for change in plan.changes:
            new = change.new
            eleve = self.eleves[new["eleve_id"]]
            place = schooling.get(new["eleve_id"])
            entries.append(
                journal.entry(
                    "decision.creee" if change.old is None else "decision.modifiee",
                    "decision",
                    new["id"],
                    departement=eleve["departement"],
                    secteur=eleve["secteur"],
                    pial_rne=place.pial_rne if place else None,
                    eleve_id=new["eleve_id"],
                    changes=change.fields,
                )
            )
        await bulk.record_journal(self.session, entries)
        self.report.journal_entries += len(entries)
