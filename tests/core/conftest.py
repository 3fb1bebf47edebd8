"""The core suite runs on a real SQLite file and, under CI=true or AESH_TEST_POSTGRES=1, on a
real PostgreSQL server too: each test gets a fresh database with the migrations applied."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import make_engine, upgrade
from tests.fixtures.servers import PostgresServer, ensure_postgres, pg_wanted, skip_or_fail

_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer | None]:
    if not pg_wanted():
        yield None
        return
    if not ensure_postgres():
        skip_or_fail("PostgreSQL could not be installed (apt-get install postgresql)")
    server = PostgresServer()
    server.start(tmp_path_factory.mktemp("pg"))
    url = server.create_database("aesh_template")
    import asyncio

    async def migrate() -> None:
        eng = make_engine(url)
        await upgrade(eng)
        await eng.dispose()

    asyncio.run(migrate())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
async def engine(
    request: pytest.FixtureRequest, tmp_path: Path, postgres: PostgresServer | None
) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'aesh.db'}")
        await upgrade(eng)
    else:
        if postgres is None:
            pytest.skip(
                "PostgreSQL run disabled (set AESH_TEST_POSTGRES=1; always on under CI=true)"
            )
        name = f"t{next(_counter)}_{abs(hash(request.node.nodeid)) % 10**8}"
        eng = make_engine(postgres.create_database(name, template="aesh_template"))
        await upgrade(eng)
    yield eng
    await eng.dispose()
