"""Message journal (domain 3.10): what changed, where, for whom to be told."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import JournalEntry
from core.models.base import utcnow


def entry(
    kind: str,
    entity: str,
    entity_id: str,
    *,
    departement: str | None = None,
    secteur: str | None = None,
    pial_rne: str | None = None,
    eleve_id: str | None = None,
    changes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "at": utcnow(),
        "kind": kind,
        "entity": entity,
        "entity_id": entity_id,
        "departement": departement,
        "secteur": secteur,
        "pial_rne": pial_rne,
        "eleve_id": eleve_id,
        "changes": changes,
        "notified": False,
    }


async def record_many(session: AsyncSession, entries: list[dict[str, Any]]) -> None:
    """Write journal rows in the caller's transaction, so they commit with the change."""
    if entries:
        # Core insert: the ORM bulk path splits the batch whenever NULL patterns differ.
        await session.execute(insert(cast(Table, JournalEntry.__table__)), entries)


async def record(session: AsyncSession, kind: str, entity: str, entity_id: str, **kw: Any) -> None:
    # Added to the unit of work rather than inserted now: a batch of mail replies writes its
    # journal rows in one statement at the flush.
    session.add(JournalEntry(**entry(kind, entity, entity_id, **kw)))
