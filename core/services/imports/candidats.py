"""Candidatures migrated from another platform (interfaces §4): one row per candidature.

The e-mail identifies the candidate; erased candidatures (retirée, supprimée) keep no
personal data, so their rows create no candidate and link to none (domain 2.6).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.models import Candidat, Candidature
from core.services.imports import bulk
from core.services.imports.kinds import ANONYMOUS_STATUTS
from core.services.imports.upsert import Handler, classify, merge, pick

PERSON_FIELDS = ("email", "nom", "prenom", "telephone")
PERSON_DEFAULTS: dict[str, Any] = dict.fromkeys((*PERSON_FIELDS, "source_id"))
CANDIDATURE_COLUMNS = {c: c for c in ("type", "statut", "zones", "depose_le", "valide_jusqu_au")}
CANDIDATURE_FIELDS = ("candidat_id", *CANDIDATURE_COLUMNS.values())
CANDIDATURE_DEFAULTS: dict[str, Any] = dict.fromkeys(CANDIDATURE_FIELDS)


def _by_source_id(record: dict[str, Any]) -> Any:
    return record["source_id"]


def _by_email(record: dict[str, Any]) -> Any:
    email = record["email"]
    return email.lower() if email else None


def _personal(values: dict[str, Any]) -> bool:
    return values["statut"] not in ANONYMOUS_STATUTS and bool(values.get("email"))


class CandidatsHandler(Handler):
    async def check(self) -> None:
        self.candidatures = await bulk.load(
            self.session, Candidature, ("id", "source_id", *CANDIDATURE_FIELDS), _by_source_id
        )
        self.people = await bulk.load(
            self.session, Candidat, ("id", "source_id", *PERSON_FIELDS), _by_email
        )

    async def write(self) -> None:
        person_ids = await self._write_people()
        pairs = []
        for row in self.rows:
            values = row.values
            old = self.candidatures.get(values["id"])
            new = merge(old, values, CANDIDATURE_COLUMNS, CANDIDATURE_DEFAULTS)
            new["source_id"] = values["id"]
            new["candidat_id"] = person_ids[values["email"]] if _personal(values) else None
            pairs.append((row.row, old, new))
        plan = classify(pairs, CANDIDATURE_FIELDS)
        await self.save(
            Candidature, plan, ("source_id", *CANDIDATURE_FIELDS), ("id", *CANDIDATURE_FIELDS)
        )

    async def _write_people(self) -> dict[str, int]:
        """Create or update one candidate per e-mail; return their ids by (lower-case) e-mail."""
        given: dict[str, dict[str, Any]] = {}
        first_row_id: dict[str, str] = {}
        for row in self.rows:
            values = row.values
            if not _personal(values):
                continue
            email = values["email"]
            first_row_id.setdefault(email, values["id"])
            person = given.setdefault(email, {})
            # Several candidatures of one person: a later row fills in, never blanks out.
            for column in ("nom", "prenom", "telephone"):
                if column in values and (values[column] is not None or column not in person):
                    person[column] = values[column]

        taken = {p["source_id"] for p in self.people.values() if p["source_id"]}
        pairs = []
        for email, person in given.items():
            old = self.people.get(email)
            new = merge(old, person, {c: c for c in person}, PERSON_DEFAULTS)
            new["email"] = email
            if old is None and first_row_id[email] not in taken:
                new["source_id"] = first_row_id[email]
            pairs.append((0, old, new))
        plan = classify(pairs, PERSON_FIELDS)
        created = [pick(c.new, ("source_id", *PERSON_FIELDS)) for c in plan.created]
        await bulk.insert_rows(self.session, Candidat, created)
        await bulk.update_rows(
            self.session, Candidat, [pick(c.new, ("id", *PERSON_FIELDS)) for c in plan.updated]
        )
        ids = {str(email): int(old["id"]) for email, old in self.people.items() if email}
        stmt = select(Candidat.email, Candidat.id)
        new_emails = [c["email"] for c in created]
        for email, candidat_id in await bulk.select_in(
            self.session, stmt, Candidat.email, new_emails
        ):
            ids[email] = candidat_id
        return ids
