"""Candidate side: accounts, candidatures, pieces and diplomas (domain 2)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, utcnow


class Candidat(Base):
    __tablename__ = "candidats"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    source_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    civilite: Mapped[str | None] = mapped_column(String(10))
    nom: Mapped[str | None] = mapped_column(String(120))
    prenom: Mapped[str | None] = mapped_column(String(120))
    date_naissance: Mapped[date | None]
    email: Mapped[str | None] = mapped_column(String(200), unique=True)
    telephone: Mapped[str | None] = mapped_column(String(40))
    commune: Mapped[str | None] = mapped_column(String(120))
    code_postal: Mapped[str | None] = mapped_column(String(10))
    departement: Mapped[str | None] = mapped_column(String(3))
    telegram_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    valide_le: Mapped[datetime | None]
    email_bouncing: Mapped[bool] = mapped_column(default=False)
    # One-time code (account validation or login), stored hashed, with its purpose and expiry.
    code_hash: Mapped[str | None] = mapped_column(String(128))
    code_purpose: Mapped[str | None] = mapped_column(String(16))
    code_expires_at: Mapped[datetime | None]
    code_attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Candidature(Base):
    __tablename__ = "candidatures"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    source_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    # Null once erased: the anonymous row stays for statistics (domain 2.6).
    candidat_id: Mapped[int | None] = mapped_column(
        ForeignKey("candidats.id", ondelete="SET NULL"), index=True
    )
    type: Mapped[str] = mapped_column(String(16))
    statut: Mapped[str] = mapped_column(String(16), default="brouillon", index=True)
    zones: Mapped[list[str]] = mapped_column(JSON, default=list)
    reponses: Mapped[dict[str, object] | None] = mapped_column(JSON)
    departement: Mapped[str | None] = mapped_column(String(3))
    depose_le: Mapped[date | None]
    valide_jusqu_au: Mapped[date | None] = mapped_column(index=True)
    relance_le: Mapped[date | None]
    rappel_le: Mapped[date | None]
    clarification_le: Mapped[date | None]
    ferme_le: Mapped[date | None]  # retired or deleted on
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Piece(Base):
    __tablename__ = "pieces"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    candidature_id: Mapped[int] = mapped_column(
        ForeignKey("candidatures.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    mime: Mapped[str] = mapped_column(String(40))
    size: Mapped[int]
    current: Mapped[bool] = mapped_column(default=True)
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Diplome(Base):
    __tablename__ = "diplomes"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    candidat_id: Mapped[int] = mapped_column(
        ForeignKey("candidats.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(32))
    intitule: Mapped[str | None] = mapped_column(String(200))
    annee: Mapped[int | None]
    etablissement: Mapped[str | None] = mapped_column(String(200))
    copie_sha256: Mapped[str | None] = mapped_column(String(64))
    copie_mime: Mapped[str | None] = mapped_column(String(40))
