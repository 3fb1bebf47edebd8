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

A connection can also be put *inline* for a while (`inline`): its statements then run on the
event loop's own thread, with no trip at all. The bot does this for each update, whose
statements are a few keyed reads and writes taking microseconds: the trips to the driver's
thread, and the handing of the interpreter lock back and forth that each one causes, cost
it about a third of its time per update. An inline statement never waits for a lock (it
would stop the whole loop): SQLite's busy timeout is set to zero while inline, and a
statement that finds the database locked by another process is run again on the driver's
thread, with the usual timeout, exactly as it would have been otherwise.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_


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


# aiosqlite connections now inline, each with the busy timeout (ms) it had before.
_INLINE: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def _busy(error: sqlite3.OperationalError) -> bool:
    """SQLite's SQLITE_BUSY, whatever its extended form: another connection holds a lock."""
    return (getattr(error, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY


def _with_timeout(conn: sqlite3.Connection, ms: int, fn: Callable[..., Any], *args: Any) -> Any:
    """On the driver's thread: `fn` with SQLite allowed to wait `ms` for a lock."""
    conn.execute(f"PRAGMA busy_timeout={int(ms)}")
    try:
        return fn(conn, *args)
    finally:
        conn.execute("PRAGMA busy_timeout=0")


async def call(driver: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(sqlite3_connection, *args)` for an aiosqlite connection: on this thread when the
    connection is inline (on the driver's thread, with the usual busy timeout, if the
    database is locked), else on the driver's thread. `fn` must have had no effect when it
    raises SQLITE_BUSY (SQLite undoes the failed statement), or be written to resume."""
    wait = _INLINE.get(driver)
    if wait is None:
        return await driver._execute(fn, driver._conn, *args)
    try:
        return fn(driver._conn, *args)
    except sqlite3.OperationalError as error:
        if not _busy(error):
            raise
    job = asyncio.ensure_future(driver._execute(_with_timeout, driver._conn, wait, fn, *args))
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            result = await asyncio.shield(job)
        except asyncio.CancelledError as error:
            # The driver's thread goes on with the statement whatever happens here: until
            # it is done nothing else may touch the connection (a rollback, the timeout's
            # restoration), so the cancellation waits for it, then goes on.
            if job.done():
                raise
            cancelled = error
            continue
        if cancelled is not None:
            raise cancelled
        return result


@contextlib.contextmanager
def inline(driver: Any) -> Iterator[None]:
    """Run the statements of this aiosqlite connection on the event loop's thread, with no
    wait for locks (see the module's doc), until the block ends. For a connection checked
    out for short work: nothing else may use it meanwhile."""
    if not supported() or not hasattr(driver, "_execute"):
        yield
        return
    conn = driver._conn
    (wait,) = conn.execute("PRAGMA busy_timeout").fetchone()
    conn.execute("PRAGMA busy_timeout=0")
    _INLINE[driver] = wait
    try:
        yield
    finally:
        del _INLINE[driver]
        if driver._connection is not None:
            conn.execute(f"PRAGMA busy_timeout={int(wait)}")


@contextlib.asynccontextmanager
async def inline_connection(engine: AsyncEngine) -> AsyncIterator[tuple[AsyncConnection, Any]]:
    """A connection checked out for short work, with its aiosqlite connection: on SQLite
    its statements run inline (`inline`); on another database, as usual, with None."""
    async with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            yield conn, None
            return
        driver = (await conn.get_raw_connection()).driver_connection
        with inline(driver):
            yield conn, driver


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
            description, rows, rowcount, lastrowid = await call(
                driver, _run, operation, parameters, many
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
        if self._connection._connection is None or self._idle():
            return
        if self._connection in _INLINE:
            self._inline(_rollback)
        else:
            super().rollback()

    def commit(self) -> None:
        # Likewise nothing to commit (a read-only session, or statements already
        # committed on the driver by `execute_and_commit`).
        if self._connection._connection is None or self._idle():
            return
        if self._connection in _INLINE:
            self._inline(_commit)
        else:
            super().commit()

    def _inline(self, fn: Callable[[sqlite3.Connection], None]) -> None:
        try:
            await_(call(self._connection, fn))
        except Exception as error:
            self._handle_exception(error)


def _commit(conn: sqlite3.Connection) -> None:
    conn.commit()


def _rollback(conn: sqlite3.Connection) -> None:
    conn.rollback()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> Any:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


class _Batch:
    """Statements then a commit, resumable: a run stopped by a locked database (on the
    statement that would have taken the lock; SQLite undid that statement) goes on from
    there when run again."""

    def __init__(self, statements: list[tuple[str, Any]]) -> None:
        self.statements = statements
        self.done = 0

    def __call__(self, conn: sqlite3.Connection) -> None:
        while self.done < len(self.statements):
            sql, parameters = self.statements[self.done]
            conn.execute(sql, parameters)
            self.done += 1
        conn.commit()


async def execute_and_commit(driver: Any, statements: list[tuple[str, Any]]) -> None:
    """Run statements (SQL, parameters) on an aiosqlite connection, inside the transaction
    open on it, then commit, in one trip to its thread (none when inline). On an error
    nothing is committed (the caller rolls back, as after any failed statement)."""
    if hasattr(driver, "_execute"):
        await call(driver, _Batch(statements))
        return
    for sql, parameters in statements:
        await driver.execute_fetchall(sql, parameters)
    await driver.commit()


async def rollback(driver: Any) -> None:
    """Roll back what is open on an aiosqlite connection (inline when it is)."""
    if driver._connection is not None and driver._conn.in_transaction:
        await call(driver, _rollback)


def _fetchall(conn: sqlite3.Connection, sql: str, parameters: Any) -> list[Any]:
    return conn.execute(sql, parameters).fetchall()


async def fetchall(driver: Any, sql: str, parameters: Any) -> list[Any]:
    """One statement's rows on an aiosqlite connection, inline when it is (see `call`)."""
    if hasattr(driver, "_execute"):
        return await call(driver, _fetchall, sql, parameters)  # type: ignore[no-any-return]
    return list(await driver.execute_fetchall(sql, parameters))


def supported() -> bool:
    """The private aiosqlite calls this relies on (the same SQLAlchemy's adapter uses) are
    there; otherwise the engine keeps SQLAlchemy's adapter as it is."""
    conn = getattr(aiosqlite, "Connection", None)
    return conn is not None and hasattr(conn, "_execute")


def dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
