"""Service users (gestionnaire, superviseur, coordonnateur), roles and invitations (domain 1)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, utcnow


class ServiceUser(Base):
    __tablename__ = "service_users"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    nom: Mapped[str | None] = mapped_column(String(120))
    prenom: Mapped[str | None] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(200))  # functional address for PV
    telephone: Mapped[str | None] = mapped_column(String(40))
    adresse: Mapped[str | None] = mapped_column(String(300))
    telegram_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_confirmed: Mapped[bool] = mapped_column(default=False)
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ServiceRole(Base):
    __tablename__ = "service_roles"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("service_users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))  # gestionnaire | superviseur | coordonnateur
    departement: Mapped[str] = mapped_column(String(3))
    # Secteurs granted by the invitation (None = whole department) and the narrower chosen set.
    secteurs: Mapped[list[str] | None] = mapped_column(JSON)
    secteurs_choisis: Mapped[list[str] | None] = mapped_column(JSON)
    pial_rne: Mapped[str | None] = mapped_column(String(16))


class Invitation(Base):
    __tablename__ = "invitations"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    code_hash: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    departement: Mapped[str] = mapped_column(String(3))
    secteurs: Mapped[list[str] | None] = mapped_column(JSON)
    pial_rne: Mapped[str | None] = mapped_column(String(16))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[int | None] = mapped_column(ForeignKey("service_users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
