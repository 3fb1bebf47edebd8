"""SQLAlchemy's aiosqlite adapter, with one trip to the driver's thread per statement.

aiosqlite runs each SQLite connection in a thread of its own; every call made on it from the
event loop is a round trip to that thread (a queue put, a wake-up, a callback back into the
loop). SQLAlchemy's adapter makes four of them for a SELECT (open a cursor, execute, fetch
all the rows, close the cursor) and three for any other statement, and one more for the
rollback that resets each connection handed back to the pool, even when no transaction is
open. On a small, hot database those round trips cost more than SQLite itself.

Here a statement runs on the driver's thread in one call (cursor, execute, rows, close), and
the rollback on return is skipped when SQLite says no transaction is open (then there is
nothing to roll back). Everything else is SQLAlchemy's adapter unchanged: the same SQL, the
same parameters, the same rows, errors and transactions. It is given to SQLAlchemy through
``create_async_engine(module=…)``, SQLAlchemy's own hook for supplying the DBAPI module.
Server-side cursors (``stream``) keep SQLAlchemy's own implementation.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT


def _run(conn: sqlite3.Connection, operation: Any, parameters: Any, many: bool) -> Any:
    """On the driver's thread: the whole of one statement."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose statement, rows and all, is one call on the driver's
    thread; the results (description, rows, rowcount, lastrowid) are kept here."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:
        # No driver cursor is opened here (SQLAlchemy's opens one: a round trip).
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        return None

    def close(self) -> None:
        self._rows.clear()

    async def _call(self, operation: Any, parameters: Any, many: bool) -> None:
        driver = self._connection
        async with self._adapt_connection._execute_mutex:
            description, rows, rowcount, lastrowid = await driver._execute(
                _run, driver._conn, operation, parameters, many
            )
        self._description = description
        self._rows = collections.deque(rows or ())
        self._rowcount = rowcount
        self._lastrowid = lastrowid

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._call(operation, parameters, False)
        return None

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        await self._call(operation, seq_of_parameters, True)
        return None

    def nextset(self) -> None:
        return None

    def setinputsizes(self, *inputsizes: Any) -> None:
        return None


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    _cursor_cls = OneTripCursor

    def _idle(self) -> bool:
        """SQLite's own flag: no transaction is open on this connection."""
        driver = self._connection
        return driver._connection is not None and not driver._conn.in_transaction

    def rollback(self) -> None:
        # Handing a connection back to the pool rolls it back: with no transaction open
        # there is nothing to undo and no reason to wake its thread.
        if not self._idle():
            super().rollback()

    def commit(self) -> None:
        # Likewise nothing to commit (a read-only session, or statements already
        # committed on the driver by `execute_and_commit`).
        if not self._idle():
            super().commit()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> Any:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def _execute_and_commit(conn: sqlite3.Connection, statements: list[tuple[str, Any]]) -> None:
    for sql, parameters in statements:
        conn.execute(sql, parameters)
    conn.commit()


async def execute_and_commit(driver: Any, statements: list[tuple[str, Any]]) -> None:
    """Run statements (SQL, parameters) on an aiosqlite connection, inside the transaction
    open on it, then commit, in one trip to its thread. On an error nothing is committed
    (the caller rolls back, as after any failed statement)."""
    if hasattr(driver, "_execute"):
        await driver._execute(_execute_and_commit, driver._conn, statements)
        return
    for sql, parameters in statements:
        await driver.execute_fetchall(sql, parameters)
    await driver.commit()


def supported() -> bool:
    """The private aiosqlite calls this relies on (the same SQLAlchemy's adapter uses) are
    there; otherwise the engine keeps SQLAlchemy's adapter as it is."""
    conn = getattr(aiosqlite, "Connection", None)
    return conn is not None and hasattr(conn, "_execute")


def dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
