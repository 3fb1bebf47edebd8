"""Push of the message journal to agents in the chat (domain 3.10).

Each round: the unnotified import changes (students, scolarisations, decisions), the agents
connected now (a live session under the gestionnaire or coordonnateur role), one grouped
message per agent for the changes their perimeter contains, and at most one message a
minute per agent. The bot sends what `preparer` returns, then `enregistrer_envoi` and
`conclure` record it in the same transaction.

Where the per-agent state lives, without a migration: every push is recorded as a
`BotNotification` row of kind `journal`, already sent (`sent_at` set, so the notification
deliverer never picks it up). Its `sent_at` is the agent's last push (the rate limit) and its
payload `jusqu_a` the highest journal id the agent has been told about (their watermark).
An entry is marked notified once every agent it concerns has been told (an agent waiting for
their minute holds it back); an entry that concerns no connected agent is marked notified at
once: the journal is a live feed, not a mailbox to read at the next login.

Journal ids are taken as monotonic: true on SQLite (one writer at a time); on PostgreSQL an
entry committed after a higher id was already pushed would be skipped for agents past it.
Accompaniment entries (`accompagnement.*`) are left to the ERSEH channel: they are neither
pushed here nor marked notified.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import (
    BotNotification,
    Eleve,
    JournalEntry,
    ServiceRole,
    ServiceSession,
    ServiceUser,
)
from core.perimeter import Perimeter
from core.services import access
from core.services.documents import initiales
from core.texts import has, render, t

KIND = "journal"
PUSHED_ENTITIES: tuple[str, ...] = ("eleve", "scolarisation", "decision")
RATE = timedelta(minutes=1)
ROLES = ("gestionnaire", "coordonnateur")
MAX_LINES = 20  # a longer message is cut with "… and n others"
BATCH = 2000


@dataclass(frozen=True)
class Destinataire:
    telegram_id: int
    perimeter: Perimeter
    jusqu_a: int
    dernier_envoi: datetime | None

    def concerne(self, departement: str | None, secteur: str | None, pial: str | None) -> bool:
        # A coordonnateur's perimeter is their PIAL, not a set of secteurs.
        if self.perimeter.pial_rne is not None and pial != self.perimeter.pial_rne:
            return False
        return self.perimeter.contains(departement, secteur)


@dataclass(frozen=True)
class Envoi:
    telegram_id: int
    entry_ids: tuple[int, ...]
    jusqu_a: int
    text: str


@dataclass
class Tournee:
    envois: list[Envoi] = field(default_factory=list)
    # Entry id -> agents who must still be told before it is marked notified.
    attente: dict[int, set[int]] = field(default_factory=dict)


def _aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return dt if dt is None or dt.tzinfo is not None else dt.replace(tzinfo=UTC)


async def destinataires(session: AsyncSession, now: datetime) -> list[Destinataire]:
    """Agents with a live session under a role the journal concerns, with their state."""
    rows = (
        await session.execute(
            select(ServiceSession, ServiceRole)
            .join(ServiceRole, ServiceRole.id == ServiceSession.role_id)
            .join(ServiceUser, ServiceUser.id == ServiceSession.user_id)
            .where(
                ServiceSession.authenticated_at.is_not(None),
                ServiceUser.telegram_id == ServiceSession.telegram_id,
                ServiceRole.role.in_(ROLES),
            )
        )
    ).all()
    live = []
    for sess, role in rows:
        seen = _aware(sess.last_seen or sess.authenticated_at)
        # Same idleness rule as the guard, read without touching the session.
        if seen is not None and now - seen < access.SESSION_IDLE:
            # The perimeter rule lives in access (secteurs chosen within the grant).
            live.append((sess.telegram_id, access._caller(role).perimeter))
    if not live:
        return []
    ids = sorted({tg for tg, _ in live})
    last = await session.execute(
        select(BotNotification.telegram_id, BotNotification.sent_at, BotNotification.payload).where(
            BotNotification.id.in_(
                select(func.max(BotNotification.id))
                .where(BotNotification.kind == KIND, BotNotification.telegram_id.in_(ids))
                .group_by(BotNotification.telegram_id)
            )
        )
    )
    state = {
        tg: (_aware(sent), int(str((payload or {}).get("jusqu_a", 0))))
        for tg, sent, payload in last
    }
    return [
        Destinataire(tg, perimeter, state.get(tg, (None, 0))[1], state.get(tg, (None, 0))[0])
        for tg, perimeter in live
    ]


def _ligne(entry: JournalEntry, eleves: dict[str, Eleve]) -> dict[str, Any]:
    key = "notifications.libelle_" + entry.kind.replace(".", "_")
    eleve = eleves.get(entry.eleve_id or "")
    return {
        "libelle": t(key if has(key) else "notifications.libelle_autre", id=entry.entity_id),
        "eleve": initiales(eleve.prenom, eleve.nom) if eleve is not None else None,
        "eleve_id": entry.eleve_id,
    }


async def preparer(session: AsyncSession, now: datetime, *, limit: int = BATCH) -> Tournee:
    entries = list(
        await session.scalars(
            select(JournalEntry)
            .where(JournalEntry.notified.is_(False), JournalEntry.entity.in_(PUSHED_ENTITIES))
            .order_by(JournalEntry.id)
            .limit(limit)
        )
    )
    tour = Tournee()
    if not entries:
        return tour
    top = entries[-1].id
    agents = await destinataires(session, now)
    per_agent: dict[int, list[JournalEntry]] = defaultdict(list)
    for e in entries:
        waiting = set()
        for a in agents:
            if e.id > a.jusqu_a and a.concerne(e.departement, e.secteur, e.pial_rne):
                waiting.add(a.telegram_id)
                per_agent[a.telegram_id].append(e)
        tour.attente[e.id] = waiting
    eleve_ids = sorted({e.eleve_id for es in per_agent.values() for e in es if e.eleve_id})
    eleves: dict[str, Eleve] = {}
    for i in range(0, len(eleve_ids), 500):
        for el in await session.scalars(select(Eleve).where(Eleve.id.in_(eleve_ids[i : i + 500]))):
            eleves[el.id] = el
    for a in agents:
        mine = per_agent.get(a.telegram_id)
        if not mine:
            continue
        if a.dernier_envoi is not None and now - a.dernier_envoi < RATE:
            continue  # their entries stay pending until the minute is over
        lignes = [_ligne(e, eleves) for e in mine[:MAX_LINES]]
        text = render(
            "bot/action_journal.j2",
            total=len(mine),
            lignes=lignes,
            autres=max(0, len(mine) - MAX_LINES),
        )
        tour.envois.append(Envoi(a.telegram_id, tuple(e.id for e in mine), top, text))
    return tour


async def enregistrer_envoi(session: AsyncSession, envoi: Envoi, now: datetime) -> None:
    """Record a push: the agent's rate limit and watermark."""
    session.add(
        BotNotification(
            telegram_id=envoi.telegram_id,
            kind=KIND,
            payload={"jusqu_a": envoi.jusqu_a, "entrees": len(envoi.entry_ids)},
            created_at=now,
            sent_at=now,
        )
    )
    await session.flush()


async def conclure(session: AsyncSession, tour: Tournee, servis: set[int]) -> int:
    """Mark notified the entries every concerned agent has now been told; returns how many."""
    done = [eid for eid, waiting in tour.attente.items() if not (waiting - servis)]
    for i in range(0, len(done), 500):
        await session.execute(
            update(JournalEntry)
            .where(JournalEntry.id.in_(done[i : i + 500]))
            .values(notified=True)
            .execution_options(synchronize_session=False)
        )
    await session.flush()
    return len(done)
