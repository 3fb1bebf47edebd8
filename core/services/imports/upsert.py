"""What every kind shares: laying a row over the stored one, classifying, writing the plan."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from core.services.imports import bulk
from core.services.imports.kinds import Row
from core.services.imports.outcome import ErrorList, ImportReport
from core.services.imports.progress import Ticker
from core.texts import t


def jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return value


@dataclass
class Change:
    row: int
    old: dict[str, Any] | None  # None: created
    new: dict[str, Any]
    fields: dict[str, list[Any]]  # field -> [old, new], JSON-ready, for the journal


@dataclass
class Plan:
    created: list[Change] = field(default_factory=list)
    updated: list[Change] = field(default_factory=list)
    unchanged: int = 0

    @property
    def changes(self) -> list[Change]:
        return self.created + self.updated


def merge(
    old: Mapping[str, Any] | None,
    values: Mapping[str, Any],
    columns: Mapping[str, str],
    defaults: Mapping[str, Any],
) -> dict[str, Any]:
    """The stored record with the file's columns laid over it (`columns`: CSV name -> field).

    A column absent from the file keeps the stored value; on creation it takes its default.
    """
    new = dict(old) if old is not None else dict(defaults)
    for column, name in columns.items():
        if column in values:
            new[name] = values[column]
    return new


def differences(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], fields: Sequence[str]
) -> dict[str, list[Any]]:
    if old is None:
        return {f: [None, jsonable(new[f])] for f in fields if new.get(f) is not None}
    return {f: [jsonable(old[f]), jsonable(new[f])] for f in fields if old[f] != new[f]}


def classify(
    pairs: Sequence[tuple[int, dict[str, Any] | None, dict[str, Any]]],
    fields: Sequence[str],
    *,
    journal: bool = False,
) -> Plan:
    """Sort (row, stored, merged) triples into created, updated and unchanged.

    Created rows list their fields only when `journal` asks for them (national files create
    hundreds of thousands of rows that no journal entry describes).
    """
    plan = Plan()
    for row, old, new in pairs:
        if old is None:
            plan.created.append(
                Change(row, None, new, differences(None, new, fields) if journal else {})
            )
            continue
        diff = differences(old, new, fields)
        if diff:
            plan.updated.append(Change(row, old, new, diff))
        else:
            plan.unchanged += 1
    return plan


def count(report: ImportReport, plan: Plan) -> None:
    report.created += len(plan.created)
    report.updated += len(plan.updated)
    report.unchanged += plan.unchanged


def pick(record: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    return {f: record[f] for f in fields}


class Handler(ABC):
    """One kind's database work: `check` reads and refuses, `write` writes (never both)."""

    def __init__(
        self,
        session: AsyncSession,
        rows: list[Row],
        errors: ErrorList,
        report: ImportReport,
        ticker: Ticker | None = None,
    ) -> None:
        self.session = session
        self.rows = rows
        self.errors = errors
        self.report = report
        self.ticker = ticker or Ticker(None, len(rows))

    async def check(self) -> None:  # noqa: B027 - most kinds refer to nothing to check
        """Load what the rows refer to and refuse unknown references (adds to `errors`)."""

    @abstractmethod
    async def write(self) -> None:
        """Write the checked rows (each kind knows its tables)."""

    async def save(
        self,
        model: type[DeclarativeBase],
        plan: Plan,
        inserted: Sequence[str],
        updated: Sequence[str],
    ) -> None:
        """Write a plan of the kind's own table (`inserted`/`updated`: the fields written) and
        count it in the report."""
        tick = self.ticker.write
        created = [pick(c.new, inserted) for c in plan.created]
        await bulk.insert_rows(self.session, model, created, on_chunk=tick)
        changed = [pick(c.new, updated) for c in plan.updated]
        await bulk.update_rows(self.session, model, changed, on_chunk=tick)
        count(self.report, plan)

    def unknown(self, row: Row, column: str, text_key: str, known: Container[Any]) -> None:
        """Refuse the cell when it names something neither stored nor known otherwise."""
        value = row.values.get(column)
        if value is not None and value not in known:
            self.errors.add(row.row, column, t(text_key, value=value))
