"""Journal push planning (domain 3.10): who is told what, grouping, one message a minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.db import make_sessionmaker
from core.models import JournalEntry, ServiceRole, ServiceSession, ServiceUser
from core.services import journal, notifications
from tests.core.builders import World

NOW = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)


async def agent(
    s: AsyncSession,
    tg: int,
    role: str,
    *,
    secteurs: list[str] | None = None,
    pial: str | None = None,
    seen: datetime = NOW,
) -> None:
    user = ServiceUser(telegram_id=tg, totp_confirmed=True)
    s.add(user)
    await s.flush()
    r = ServiceRole(user_id=user.id, role=role, departement="062", secteurs=secteurs, pial_rne=pial)
    s.add(r)
    await s.flush()
    s.add(
        ServiceSession(
            user_id=user.id, telegram_id=tg, role_id=r.id, authenticated_at=seen, last_seen=seen
        )
    )
    await s.flush()


async def entries(
    s: AsyncSession, *specs: tuple[str, str, str | None, str | None], start: int = 0
) -> None:
    await journal.record_many(
        s,
        [
            journal.entry(
                kind,
                kind.split(".")[0],
                f"X{start + i}",
                departement="062",
                secteur=secteur,
                pial_rne=pial,
                eleve_id="E1",
            )
            for i, (kind, secteur, pial, _) in enumerate(specs)
        ],
    )


async def pending(s: AsyncSession) -> list[str]:
    return list(
        await s.scalars(
            select(JournalEntry.entity_id)
            .where(JournalEntry.notified.is_(False))
            .order_by(JournalEntry.id)
        )
    )


async def run(s: AsyncSession, now: datetime) -> dict[int, str]:
    """A round as the bot does it, every send succeeding."""
    tour = await notifications.preparer(s, now)
    for e in tour.envois:
        await notifications.enregistrer_envoi(s, e, now)
    await notifications.conclure(s, tour, {e.telegram_id for e in tour.envois})
    await s.commit()
    return {e.telegram_id: e.text for e in tour.envois}


async def test_perimeters_grouping_and_rate_limit(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as s:
        w = World(s)
        w.eleve("E1", prenom="Émilie", nom="Durand")
        await w.flush()
        await agent(s, 1, "gestionnaire", secteurs=["Arras 1"])
        await agent(s, 2, "gestionnaire")
        await agent(s, 3, "coordonnateur", pial="0620001A")
        await agent(s, 4, "superviseur")
        await agent(s, 5, "gestionnaire", seen=NOW - timedelta(hours=13))  # idle: gone
        await entries(
            s,
            ("decision.modifiee", "Arras 1", "0620001A", None),
            ("scolarisation.creee", "Lens 2", None, None),
            ("accompagnement.cree", "Arras 1", "0620001A", None),  # the ERSEH's, not ours
        )
        await s.commit()
        sent = await run(s, NOW)
        assert set(sent) == {1, 2, 3}
        assert "1 changement(s)" in sent[1] and "É. D. — E1" in sent[1]
        assert "2 changement(s)" in sent[2] and "Durand" not in sent[2]
        assert "Décision X0 modifiée" in sent[3] and "X1" not in sent[3]
        assert await pending(s) == ["X2"]  # accompaniment entries are left alone

        await entries(s, ("decision.creee", "Lens 2", None, None), start=3)
        await s.commit()
        assert await run(s, NOW + timedelta(seconds=30)) == {}
        assert await pending(s) == ["X2", "X3"]  # held back for agent 2's minute
        sent = await run(s, NOW + timedelta(seconds=60))
        assert set(sent) == {2} and "Nouvelle décision X3" in sent[2]
        assert await pending(s) == ["X2"]


async def test_an_entry_nobody_connected_concerns_is_settled(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as s:
        await agent(s, 1, "gestionnaire", secteurs=["Arras 1"])
        await entries(s, ("eleve.dossier_modifie", "Lens 2", None, None))
        await s.commit()
        assert await run(s, NOW) == {}
        assert await pending(s) == []


async def test_an_agent_not_served_keeps_the_entry_pending(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as s:
        await agent(s, 1, "gestionnaire")
        await agent(s, 2, "gestionnaire")
        await entries(s, ("decision.modifiee", "Arras 1", None, None))
        await s.commit()
        tour = await notifications.preparer(s, NOW)
        assert len(tour.envois) == 2
        first = tour.envois[0]
        await notifications.enregistrer_envoi(s, first, NOW)
        await notifications.conclure(s, tour, {first.telegram_id})
        await s.commit()
        assert await pending(s) == ["X0"]
        # Next round: only the agent who missed it is told, and the entry settles.
        tour = await notifications.preparer(s, NOW + timedelta(seconds=5))
        assert [e.telegram_id for e in tour.envois] == [tour.envois[0].telegram_id]
        assert tour.envois[0].telegram_id != first.telegram_id
        await notifications.conclure(s, tour, {tour.envois[0].telegram_id})
        await s.commit()
        assert await pending(s) == []
