"""Chat messages carrying student data are deleted after a delay (domain 1: 24 h by default).

No migration: a pending deletion is a `bot_notifications` row of kind `delete_message` with
payload `{chat_id, message_id, delete_after}` (ISO 8601, UTC). The row is written with
`sent_at` already set, the time the message went out: the notification sender only reads
rows whose `sent_at` is empty, so it never takes these for messages to send. The row is
removed once the message is deleted, or once Telegram can no longer delete it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import BotNotification
from core.models.base import utcnow

KIND = "delete_message"
DEFAULT_HOURS = 24.0
# Telegram lets a bot delete its messages for 48 hours; later the message stays for good.
TELEGRAM_LIMIT = timedelta(hours=48)


@dataclass(frozen=True)
class PendingDeletion:
    row_id: int
    chat_id: int
    message_id: int
    delete_after: datetime
    sent_at: datetime


def retention(hours: float | None) -> timedelta:
    """The configured delay, kept under Telegram's limit (a longer one would never delete)."""
    h = DEFAULT_HOURS if hours is None else float(hours)
    return min(timedelta(hours=max(0.0, h)), TELEGRAM_LIMIT - timedelta(hours=1))


def record(
    session: AsyncSession,
    chat_id: int,
    message_id: int,
    *,
    hours: float | None = None,
    now: datetime | None = None,
) -> None:
    """Schedule the deletion, in the caller's transaction."""
    sent = now or utcnow()
    session.add(
        BotNotification(
            telegram_id=chat_id,
            kind=KIND,
            payload={
                "chat_id": chat_id,
                "message_id": message_id,
                "delete_after": (sent + retention(hours)).isoformat(),
            },
            created_at=sent,
            sent_at=sent,
        )
    )


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


async def due(
    session: AsyncSession, now: datetime | None = None, limit: int = 500
) -> list[PendingDeletion]:
    """Deletions whose time has come, oldest first."""
    now = now or utcnow()
    rows = await session.scalars(
        select(BotNotification).where(BotNotification.kind == KIND).order_by(BotNotification.id)
    )
    out: list[PendingDeletion] = []
    for n in rows:
        p = n.payload
        try:
            after = _aware(datetime.fromisoformat(str(p["delete_after"])))
            item = PendingDeletion(
                n.id,
                int(str(p["chat_id"])),
                int(str(p["message_id"])),
                after,
                _aware(n.sent_at or n.created_at),
            )
        except (KeyError, ValueError):
            # A malformed row can never be acted on: treat it as due, so it is dropped.
            item = PendingDeletion(n.id, 0, 0, now, now)
        if item.delete_after <= now:
            out.append(item)
            if len(out) >= limit:
                break
    return out


async def forget(session: AsyncSession, row_ids: list[int]) -> None:
    if row_ids:
        await session.execute(delete(BotNotification).where(BotNotification.id.in_(row_ids)))


async def pending_for_chat(session: AsyncSession, chat_id: int) -> list[int]:
    """Message ids of a chat still waiting for deletion (tests, diagnostics)."""
    rows = await session.scalars(
        select(BotNotification).where(
            BotNotification.kind == KIND, BotNotification.telegram_id == chat_id
        )
    )
    return [int(str(n.payload["message_id"])) for n in rows]
