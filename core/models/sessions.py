"""Service sessions (domain 1): a TOTP-authenticated chat acting under one chosen role."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base


class ServiceSession(Base):
    """One row per service user, kept after logout.

    The row outlives the session itself because `last_totp_step` must: a TOTP code seen once
    stays refused even across a logout and a new login within the same 30-second window.
    """

    __tablename__ = "service_sessions"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("service_users.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    # The chat the session was opened from; a session never follows a re-bound account.
    telegram_id: Mapped[int] = mapped_column(BigInteger)
    # None until a user holding several roles has chosen one.
    role_id: Mapped[int | None] = mapped_column(ForeignKey("service_roles.id", ondelete="SET NULL"))
    # None = logged out (or never logged in).
    authenticated_at: Mapped[datetime | None]
    last_seen: Mapped[datetime | None]
    last_totp_step: Mapped[int | None] = mapped_column(BigInteger)
