"""Accompagnements and their decision links (domain 3.4), imported as facts.

Rules of domain 3.4 are not enforced here: a row that breaks one is stored, and the
anomalies report (domain 3.8) shows it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.models import Accompagnement, AccompagnementDecision, Decision, Etablissement, Mission
from core.services.imports import bulk
from core.services.imports.upsert import Handler, classify, merge
from core.texts import t

FIELDS = ("mission_id", "rne", "debut", "fin", "heures", "maintien", "previsionnel")
COLUMNS = {f: f for f in FIELDS}
DEFAULTS: dict[str, Any] = {**dict.fromkeys(FIELDS), "maintien": False, "previsionnel": False}
# Compared as a field, written to accompagnement_decisions rather than to the row.
LINKS = "decision_ids"


def _by_id(record: dict[str, Any]) -> str:
    return str(record["id"])


class AccompagnementsHandler(Handler):
    async def check(self) -> None:
        self.stored = await bulk.load(self.session, Accompagnement, ("id", *FIELDS), _by_id)
        missions = await bulk.column_values(self.session, Mission.id)
        etablissements = await bulk.column_values(self.session, Etablissement.rne)
        decisions = await bulk.column_values(self.session, Decision.id)
        for row in self.rows:
            self.unknown(row, "mission_id", "imports.unknown_mission", missions)
            self.unknown(row, "rne", "imports.unknown_etablissement", etablissements)
            unknown = [d for d in row.values.get(LINKS) or () if d not in decisions]
            if unknown:
                self.errors.add(
                    row.row, LINKS, t("imports.unknown_decisions", values=", ".join(unknown))
                )

    async def write(self) -> None:
        links: dict[str, list[str]] = {}
        result = await self.session.execute(
            select(AccompagnementDecision.accompagnement_id, AccompagnementDecision.decision_id)
        )
        for accompagnement_id, decision_id in result:
            links.setdefault(accompagnement_id, []).append(decision_id)

        pairs = []
        for row in self.rows:
            accompagnement_id = row.values["id"]
            old = self.stored.get(accompagnement_id)
            if old is not None:
                old = {**old, LINKS: sorted(links.get(accompagnement_id, ()))}
            new = merge(old, row.values, COLUMNS, DEFAULTS)
            new["id"] = accompagnement_id
            new[LINKS] = sorted(row.values[LINKS])
            pairs.append((row.row, old, new))
        plan = classify(pairs, (*FIELDS, LINKS))
        fields = ("id", *FIELDS)
        await self.save(Accompagnement, plan, fields, fields)
        # Links of a changed accompaniment are replaced as a whole.
        relinked = [c.new["id"] for c in plan.updated if LINKS in c.fields]
        await bulk.delete_in(
            self.session,
            AccompagnementDecision,
            AccompagnementDecision.accompagnement_id,
            relinked,
        )
        await bulk.insert_rows(
            self.session,
            AccompagnementDecision,
            [
                {"accompagnement_id": c.new["id"], "decision_id": d}
                for c in plan.changes
                if c.old is None or LINKS in c.fields
                for d in c.new[LINKS]
            ],
        )
