from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import upgrade
from core.models import NatureSupport
from core.db import make_sessionmaker


async def test_migrations_create_schema_and_seed_natures(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as s:
        natures = {n.code: n.accompagne for n in (await s.scalars(select(NatureSupport)))}
    assert natures["HP1D"] is True and natures["AHRE"] is False and len(natures) == 21
    await upgrade(engine)  # applying again is a no-op
    async with engine.connect() as c:
        v = (await c.execute(text("select version_num from alembic_version"))).scalar_one()
    assert v == "0001"
