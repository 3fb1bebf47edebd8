"""Set-based reads and writes that run the same on SQLite and PostgreSQL.

Every statement works on a chunk of rows: one executemany per chunk for writes, one IN list
per chunk for reads, small enough for PostgreSQL's bind-parameter limit.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Select,
    SQLColumnExpression,
    Table,
    and_,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from core.models import JournalEntry

CHUNK = 2_000

T = TypeVar("T")


def chunked(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def load(
    session: AsyncSession,
    model: type[DeclarativeBase],
    fields: Sequence[str],
    key: Callable[[dict[str, Any]], Hashable],
) -> dict[Hashable, dict[str, Any]]:
    """Every row of the table as a dict of `fields`, by key: one SELECT, compared in Python."""
    table = model.__table__
    result = await session.execute(select(*[table.c[f] for f in fields]))
    rows: dict[Hashable, dict[str, Any]] = {}
    for values in result:
        record = dict(zip(fields, values, strict=True))
        rows[key(record)] = record
    return rows


async def column_values(session: AsyncSession, column: SQLColumnExpression[Any]) -> set[Any]:
    return set((await session.execute(select(column))).scalars())


async def select_in(
    session: AsyncSession,
    stmt: Select[*tuple[Any, ...]],
    column: SQLColumnExpression[Any],
    values: Iterable[Any],
) -> list[Any]:
    """Rows of `stmt` whose `column` is among `values`, one IN list per chunk."""
    out: list[Any] = []
    for chunk in chunked(sorted(set(values))):
        out.extend(tuple(row) for row in await session.execute(stmt.where(column.in_(chunk))))
    return out


async def insert_rows(
    session: AsyncSession,
    model: type[DeclarativeBase],
    rows: Sequence[dict[str, Any]],
    on_chunk: Callable[[int], None] | None = None,
) -> None:
    """INSERT through the Core table, one executemany per chunk.

    The ORM's bulk insert (`insert(Model)`) starts a new statement whenever the set of None
    values changes from one row to the next, which with real data means one statement per row;
    the table insert binds NULL and keeps the whole chunk in one executemany.
    """
    table = cast(Table, model.__table__)
    for chunk in chunked(rows):
        await session.execute(insert(table), list(chunk))
        if on_chunk is not None:
            on_chunk(len(chunk))


async def update_rows(
    session: AsyncSession,
    model: type[DeclarativeBase],
    rows: Sequence[dict[str, Any]],
    on_chunk: Callable[[int], None] | None = None,
) -> None:
    """UPDATE by primary key, one executemany per chunk.

    Every dict holds the same keys: the primary key and the columns to set. A Core statement
    with its own bind names runs a third faster than the ORM's bulk UPDATE on big files.
    """
    if not rows:
        return
    table = cast(Table, model.__table__)
    keys = [c.name for c in table.primary_key.columns]
    fields = [f for f in rows[0] if f not in keys]
    stmt = (
        update(table)
        .where(and_(*[table.c[k] == bindparam(f"k_{k}") for k in keys]))
        .values({f: bindparam(f"v_{f}") for f in fields})
    )
    for chunk in chunked(rows):
        params = [
            {**{f"k_{k}": row[k] for k in keys}, **{f"v_{f}": row[f] for f in fields}}
            for row in chunk
        ]
        await session.execute(stmt, params)
        if on_chunk is not None:
            on_chunk(len(chunk))


async def delete_in(
    session: AsyncSession,
    model: type[DeclarativeBase],
    column: SQLColumnExpression[Any],
    values: Sequence[Any],
) -> None:
    for chunk in chunked(values):
        await session.execute(delete(model).where(column.in_(chunk)))


async def record_journal(session: AsyncSession, entries: Sequence[dict[str, Any]]) -> None:
    """Journal rows built by `journal.entry`, written like `insert_rows` (same transaction)."""
    await insert_rows(session, JournalEntry, entries)
