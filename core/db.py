"""Engine, sessions and migrations. The same code runs on SQLite (default) and PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core import sqlite_driver

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the bot, the mail agent and the CLI read while one of them writes.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> AsyncEngine:
    # aiosqlite logs every statement with its parameters at DEBUG: students' names included.
    sqlite_log = logging.getLogger("aiosqlite")
    if sqlite_log.getEffectiveLevel() < logging.INFO:
        sqlite_log.setLevel(logging.INFO)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        extra: dict[str, Any] = {}
        if db and db != ":memory:":
            # The bot holds a connection for each update in flight, and a connection opened
            # beyond the pool (a thread and four statements) was closed again on return:
            # under load, about one update in seven paid for one. Room for a busy minute.
            extra.update(pool_size=40, max_overflow=40)
        if parsed.get_driver_name() == "aiosqlite" and sqlite_driver.supported():
            # One trip to the connection's thread per statement (see core.sqlite_driver).
            extra["module"] = sqlite_driver.dbapi()
        engine = create_async_engine(url, connect_args={"timeout": 30}, **extra)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations on the engine's own connection (works for async drivers)."""

    def _run(sync_conn: Any) -> None:
        cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)
