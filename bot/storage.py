"""aiogram FSM storage in the product's database: a dialog survives a restart of the bot.

While an update is being handled (see `bot.middlewares.UnitOfWork`), the dialog row of the
chat is read once, with one plain SELECT, and kept for the rest of the update: the form
engine asks for the state and data several times per step. Changes stay in that update's
scope and are written by the unit of work just before it commits, in the same transaction
as the update id and whatever the step changed: a step and its dialog state commit
together or not at all, and the write lock of SQLite is taken only at the very end, never
across the Bot API calls of the step.

On SQLite these few statements run straight on the session's driver connection (see
`_OnDriver`); elsewhere through SQLAlchemy. Outside an update (tests, tools) each call opens
its own session and commits at once.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, cast

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, StateType, StorageKey
from sqlalchemy import Table, bindparam, exists, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models import BotFsm, BotInbox, BotUpdate
from core.models.base import utcnow
from core.sqlite_driver import execute_and_commit, fetchall

_FSM = cast(Table, BotFsm.__table__)
_UPDATES = cast(Table, BotUpdate.__table__)
_INBOX = cast(Table, BotInbox.__table__)

# Built once: the hot statements of every update (building a statement costs about as much
# as running it on SQLite).
_LOAD = select(_FSM.c.key, _FSM.c.state, _FSM.c.data).where(_FSM.c.key == bindparam("k"))
_UPDATE = (
    update(_FSM)
    .where(_FSM.c.key == bindparam("k"))
    .values(
        state=bindparam("s", type_=_FSM.c.state.type),
        data=bindparam("d", type_=_FSM.c.data.type),
        updated_at=bindparam("t", type_=_FSM.c.updated_at.type),
    )
)
# The first read of an update, in one round trip: was it already applied, and the dialog
# row of its chat if there is one.
_OPEN = (
    select(
        exists()
        .where(_UPDATES.c.update_id == bindparam("u"), _UPDATES.c.bot_id == bindparam("b"))
        .label("seen"),
        _FSM.c.key,
        _FSM.c.state,
        _FSM.c.data,
    )
    .select_from(select(literal_column("1").label("one")).subquery())
    .outerjoin(_FSM, _FSM.c.key == bindparam("k"))
)
_SEEN = select(
    exists()
    .where(_UPDATES.c.update_id == bindparam("u"), _UPDATES.c.bot_id == bindparam("b"))
    .label("seen")
)
# A dialog row seen for the first time: an upsert (a row written meanwhile by a tool outside
# any update is replaced, not a reason to lose the step). SQLite's form, for the driver path.
_SQLITE_UPSERT = (
    sqlite_insert(_FSM)
    .values(
        key=bindparam("k", type_=_FSM.c.key.type),
        state=bindparam("s", type_=_FSM.c.state.type),
        data=bindparam("d", type_=_FSM.c.data.type),
        updated_at=bindparam("t", type_=_FSM.c.updated_at.type),
    )
    .on_conflict_do_update(
        index_elements=[_FSM.c.key],
        set_={
            "state": bindparam("s2", type_=_FSM.c.state.type),
            "data": bindparam("d2", type_=_FSM.c.data.type),
            "updated_at": bindparam("t2", type_=_FSM.c.updated_at.type),
        },
    )
)
_RECORD = _UPDATES.insert().values(
    update_id=bindparam("u", type_=_UPDATES.c.update_id.type),
    bot_id=bindparam("b", type_=_UPDATES.c.bot_id.type),
    processed_at=bindparam("t", type_=_UPDATES.c.processed_at.type),
)

# The update leaves the inbox (bot.inbox) in the transaction that handles it.
_FORGET = _INBOX.delete().where(
    _INBOX.c.update_id == bindparam("u", type_=_INBOX.c.update_id.type),
    _INBOX.c.bot_id == bindparam("b", type_=_INBOX.c.bot_id.type),
)


@dataclass
class DialogRow:
    """One chat's dialog as the current update sees it."""

    state: str | None
    data: dict[str, Any]
    stored: bool  # a row exists in the database
    dirty: bool = False


@dataclass
class UpdateScope:
    """What one update's unit of work holds: its session and the dialog rows it touched."""

    session: AsyncSession
    rows: dict[str, DialogRow] = field(default_factory=dict)
    #: on SQLite, the session's own driver connection, for the hot statements
    driver: Any = None


class _OnDriver:
    """A prebuilt statement compiled once for SQLite and run straight on the aiosqlite
    connection of the update's session, so inside its transaction: one round trip to the
    driver's thread instead of four (cursor, execute, fetch, close), and none of
    SQLAlchemy's per-execution work, which on this path cost more than SQLite itself.
    Values go through the columns' own type processors, so what is stored is exactly what
    SQLAlchemy would store (JSON text, timestamps)."""

    def __init__(self, stmt: Any, dialect: Any) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        names = list(compiled.positiontup or ())
        self.binds = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in names
        ]
        self.results = [
            col.type.dialect_impl(dialect).result_processor(dialect, None)
            for col in getattr(stmt, "selected_columns", ())
        ]

    def params(self, values: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            values[name] if proc is None else proc(values[name]) for name, proc in self.binds
        )

    async def fetch(self, driver: Any, values: dict[str, Any]) -> list[tuple[Any, ...]]:
        rows = await fetchall(driver, self.sql, self.params(values))
        return [
            tuple(v if proc is None else proc(v) for v, proc in zip(row, self.results, strict=True))
            for row in rows
        ]

    async def run(self, driver: Any, values: dict[str, Any]) -> None:
        await fetchall(driver, self.sql, self.params(values))


_ON_DRIVER: weakref.WeakKeyDictionary[Any, dict[str, _OnDriver]] = weakref.WeakKeyDictionary()


def _on_driver(dialect: Any) -> dict[str, _OnDriver]:
    prepared = _ON_DRIVER.get(dialect)
    if prepared is None:
        prepared = _ON_DRIVER[dialect] = {
            "open": _OnDriver(_OPEN, dialect),
            "load": _OnDriver(_LOAD, dialect),
            "update": _OnDriver(_UPDATE, dialect),
            "record": _OnDriver(_RECORD, dialect),
            "forget": _OnDriver(_FORGET, dialect),
            "upsert": _OnDriver(_SQLITE_UPSERT, dialect),
        }
    return prepared


async def _attach_driver(scope: UpdateScope) -> None:
    """On SQLite (aiosqlite), give the scope the session's driver connection; the session's
    transaction is begun, so the statements run on the driver belong to it. (The unit of
    work may have given the scope its connection already: see `bot.middlewares`.)"""
    if scope.driver is not None or scope.session.get_bind().dialect.name != "sqlite":
        return
    conn = await scope.session.connection()
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if hasattr(driver, "execute_fetchall"):
        scope.driver = driver


current_scope: ContextVar[UpdateScope | None] = ContextVar("current_scope", default=None)


def _dialog(found: Any) -> DialogRow:
    if found is None or found.key is None:
        return DialogRow(state=None, data={}, stored=False)
    return DialogRow(state=found.state, data=dict(found.data or {}), stored=True)


async def load_row(scope: UpdateScope, key: str) -> DialogRow:
    if scope.driver is not None:
        found = await _on_driver(scope.session.get_bind().dialect)["load"].fetch(
            scope.driver, {"k": key}
        )
        return _dialog(_Row(*found[0]) if found else None)
    return _dialog((await scope.session.execute(_LOAD, {"k": key})).first())


@dataclass
class _Row:
    key: str | None
    state: str | None
    data: Any
    seen: bool = False


async def open_update(scope: UpdateScope, update_id: int, bot_id: int, fsm_key: str | None) -> bool:
    """Start an update's unit of work: True if the update was already applied; else the
    dialog row of its chat (``fsm_key``) is loaded into the scope, in the same query."""
    await _attach_driver(scope)
    if fsm_key is None:
        return bool(await scope.session.scalar(_SEEN, {"u": update_id, "b": bot_id}))
    values = {"u": update_id, "b": bot_id, "k": fsm_key}
    if scope.driver is not None:
        prepared = _on_driver(scope.session.get_bind().dialect)["open"]
        seen, key, state, data = (await prepared.fetch(scope.driver, values))[0]
        found: Any = _Row(key, state, data, bool(seen))
    else:
        found = (await scope.session.execute(_OPEN, values)).one()
    if found.seen:
        return True
    scope.rows[fsm_key] = _dialog(found)
    return False


async def finish_update(scope: UpdateScope, update_id: int, bot_id: int) -> None:
    """End an update's unit of work: write its dialog changes and its id, and commit.

    On SQLite, whatever the handler left pending in the ORM session is flushed first (into
    the same transaction), then the dialog rows, the update id and the commit go to the
    driver in one trip; the session's own commit then finds nothing left to write (no trip)
    but still runs its after-commit hooks (files forgotten by the step)."""
    values = {"u": update_id, "b": bot_id, "t": utcnow()}
    session = scope.session
    if scope.driver is None:
        await write_rows(scope)
        await session.execute(_RECORD, values)
        await session.execute(_FORGET, values)
        await session.commit()
        return
    # Objects only added (Session.add begins nothing) are flushed too; after that, a session
    # with no transaction is one the step never used: nothing to commit (see bot.middlewares).
    if session.new or session.dirty or session.deleted:
        await session.flush()
    used = session.in_transaction()
    prepared = _on_driver(session.get_bind().dialect)
    statements: list[tuple[str, Any]] = []
    dirty = [(key, row) for key, row in scope.rows.items() if row.dirty]
    for key, row in dirty:
        v = {"k": key, "s": row.state, "d": row.data, "t": values["t"]}
        if row.stored:
            stmt = prepared["update"]
        else:
            stmt = prepared["upsert"]
            v.update(s2=row.state, d2=row.data, t2=values["t"])
        statements.append((stmt.sql, stmt.params(v)))
    statements.append((prepared["record"].sql, prepared["record"].params(values)))
    statements.append((prepared["forget"].sql, prepared["forget"].params(values)))
    await execute_and_commit(scope.driver, statements)
    for _key, row in dirty:
        row.stored, row.dirty = True, False
    if used:
        await session.commit()


async def forget_update(scope: UpdateScope, update_id: int, bot_id: int) -> None:
    """Drop an update from the inbox without applying it: one already applied (delivered
    again), or one whose handling failed (its user was told; a replay would fail again)."""
    values = {"u": update_id, "b": bot_id}
    if scope.driver is None:
        await scope.session.execute(_FORGET, values)
        await scope.session.commit()
        return
    forget = _on_driver(scope.session.get_bind().dialect)["forget"]
    await execute_and_commit(scope.driver, [(forget.sql, forget.params(values))])


async def write_rows(scope: UpdateScope) -> None:
    """Write the dialog rows changed during the update (called before its commit)."""
    session = scope.session
    for key, row in scope.rows.items():
        if not row.dirty:
            continue
        now = utcnow()
        if row.stored:
            values = {"k": key, "s": row.state, "d": row.data, "t": now}
            if scope.driver is not None:
                prepared = _on_driver(session.get_bind().dialect)["update"]
                await prepared.run(scope.driver, values)
            else:
                await session.execute(_UPDATE, values)
        else:
            # An upsert: a row written meanwhile by a tool outside any update is replaced,
            # not a reason to lose the step.
            dialect = session.get_bind().dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            stmt = insert(_FSM).values(key=key, state=row.state, data=row.data, updated_at=now)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[_FSM.c.key],
                    set_={"state": row.state, "data": row.data, "updated_at": now},
                )
            )
        row.stored, row.dirty = True, False


class SqlStorage(BaseStorage):
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self.keys = DefaultKeyBuilder(with_destiny=True)

    async def _row(self, scope: UpdateScope, key: StorageKey) -> DialogRow:
        k = self.keys.build(key)
        row = scope.rows.get(k)
        if row is None:
            row = scope.rows[k] = await load_row(scope, k)
        return row

    async def _change(self, key: StorageKey, **values: Any) -> None:
        scope = current_scope.get()
        if scope is not None:
            row = await self._row(scope, key)
            for name, value in values.items():
                setattr(row, name, value)
            row.dirty = True
            return
        async with self.sessionmaker() as session:
            own = UpdateScope(session)
            row = await self._row(own, key)
            for name, value in values.items():
                setattr(row, name, value)
            row.dirty = True
            await write_rows(own)
            await session.commit()

    async def _read(self, key: StorageKey) -> DialogRow:
        scope = current_scope.get()
        if scope is not None:
            return await self._row(scope, key)
        async with self.sessionmaker() as session:
            return await self._row(UpdateScope(session), key)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        await self._change(key, state=state.state if isinstance(state, State) else state)

    async def get_state(self, key: StorageKey) -> str | None:
        return (await self._read(key)).state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._change(key, data=copy.deepcopy(dict(data)))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        # A copy, as a fresh read would give: a handler changing it changes nothing stored.
        return copy.deepcopy((await self._read(key)).data)

    async def close(self) -> None:
        return None
