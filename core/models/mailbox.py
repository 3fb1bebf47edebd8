"""State of the mail reader: IMAP position per folder and processed messages (idempotence)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, utcnow


class ImapState(Base):
    __tablename__ = "imap_state"
    folder: Mapped[str] = mapped_column(String(200), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)


class ProcessedMail(Base):
    """One row per message handled; its key makes a re-read (crash, UIDVALIDITY change) a no-op.

    No sender, subject or body is kept: only what the audit needs.
    """

    __tablename__ = "processed_mails"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)  # Message-ID, else content hash
    outcome: Mapped[str] = mapped_column(String(30))
    candidature_id: Mapped[int | None]
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)
