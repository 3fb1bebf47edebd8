"""Bot state kept in the database: dialog state survives restarts, updates apply once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, utcnow


class BotFsm(Base):
    __tablename__ = "bot_fsm"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BotInbox(Base):
    """Updates received from Telegram and not yet handled. Receiving the next batch confirms
    the previous one to Telegram, which then never sends it again: an update is kept here
    from its receipt until the transaction that handles it, so that one in flight when the
    bot stops or crashes is handled at the next start instead of being lost."""

    __tablename__ = "bot_inbox"
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    bot_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payload: Mapped[str] = mapped_column(Text)  # the update as Telegram sent it (JSON)
    #: starts that found it still here (one that kills the process is not replayed forever)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class BotUpdate(Base):
    """Telegram delivers updates at least once; an update id recorded with its change is
    never applied again."""

    __tablename__ = "bot_updates"
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    bot_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)
