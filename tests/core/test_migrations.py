from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import make_sessionmaker, upgrade
from core.models import NatureSupport


async def test_migrations_create_schema_and_seed_natures(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as s:
        natures = {n.code: n.accompagne for n in (await s.scalars(select(NatureSupport)))}
    assert natures["HP1D"] is True and natures["AHRE"] is False and len(natures) == 21
    await upgrade(engine)  # applying again is a no-op
    async with engine.connect() as c:
        v = (await c.execute(text("select version_num from alembic_version"))).scalar_one()
    from alembic.script import ScriptDirectory

    from core.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert v == head


async def test_models_and_migrations_do_not_drift(engine: AsyncEngine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from core.models import Base

    async with engine.connect() as c:
        diff = await c.run_sync(
            lambda sc: compare_metadata(MigrationContext.configure(sc), Base.metadata)
        )
    assert diff == []
