"""Inline SQLite (core.sqlite_driver.inline): a statement that meets a lock held by another
process waits on the driver's thread, and a cancellation during that wait neither stops the
event loop nor leaves the connection half-used."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core import sqlite_driver
from core.db import make_engine


async def test_cancelled_while_waiting_for_a_lock(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    eng = make_engine(f"sqlite+aiosqlite:///{db}")
    async with eng.begin() as c:
        await c.execute(text("CREATE TABLE t (x TEXT)"))
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process writing
    release = threading.Timer(0.8, lambda: other.execute("COMMIT"))
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async def update() -> None:  # the shape of the bot's unit of work
        async with eng.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            with sqlite_driver.inline(driver):
                session = AsyncSession(bind=conn)
                try:
                    await session.execute(text("SELECT 1"))
                    statements = [
                        ("INSERT INTO t VALUES ('a')", ()),
                        ("INSERT INTO t VALUES ('b')", ()),
                    ]
                    await sqlite_driver.execute_and_commit(driver, statements)
                except BaseException:
                    if session.in_transaction():
                        await session.rollback()
                    raise

    tick = asyncio.create_task(ticker())
    try:
        release.start()
        task = asyncio.create_task(update())
        await asyncio.sleep(0.3)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("the cancellation was lost")
    finally:
        tick.cancel()
        release.join()
    assert max(gaps) < 0.5  # the loop kept running during the wait
    # The batch the driver's thread had started was applied whole, and committed.
    assert sorted(other.execute("SELECT x FROM t").fetchall()) == [("a",), ("b",)]
    async with eng.connect() as conn:  # the pooled connection waits for locks again
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 10000
    other.close()
    await eng.dispose()
