"""Message journal (domain 3.10) and mail outbox (transactional outbox)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, utcnow


class JournalEntry(Base):
    __tablename__ = "journal"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))  # e.g. decision.modifiee, accompagnement.cree
    entity: Mapped[str] = mapped_column(String(30))
    entity_id: Mapped[str] = mapped_column(String(40))
    departement: Mapped[str | None] = mapped_column(String(3))
    secteur: Mapped[str | None] = mapped_column(String(80))
    pial_rne: Mapped[str | None] = mapped_column(String(16))
    eleve_id: Mapped[str | None] = mapped_column(String(32))
    # Field names and old/new values; pushed to users in perimeter, never logged.
    changes: Mapped[dict[str, object] | None] = mapped_column(JSON)
    notified: Mapped[bool] = mapped_column(default=False)


class OutboxMail(Base):
    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    to_addr: Mapped[str] = mapped_column(String(320))
    cc: Mapped[list[str] | None] = mapped_column(JSON)
    reply_to: Mapped[str | None] = mapped_column(String(320))
    # Rendered when queued, or — for mails queued in bulk — left empty with their template
    # `context` and rendered by the sender (core.services.outbox.rendered).
    subject: Mapped[str | None] = mapped_column(String(500))
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attachments: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    candidature_id: Mapped[int | None] = mapped_column(
        ForeignKey("candidatures.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending|sent|failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


Index("ix_outbox_due", OutboxMail.status, OutboxMail.next_attempt_at)
Index("ix_journal_dep", JournalEntry.departement, JournalEntry.notified)


class BotNotification(Base):
    """A message for a candidate's or agent's chat, written with the change that causes it;
    the bot process delivers it (same outbox pattern as mails)."""

    __tablename__ = "bot_notifications"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
