"""Department parameters set by the superviseur (domain 3.2, 3.7, 3.10)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, utcnow


class ParametreAnnee(Base):
    """Per department and school year: work-time reference and besoin formula."""

    __tablename__ = "parametres_annee"
    departement: Mapped[str] = mapped_column(String(3), primary_key=True)
    annee: Mapped[str] = mapped_column(String(9), primary_key=True)
    reference_heures: Mapped[float | None]
    formule: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Cartouche(Base):
    """Letterhead of the department, printed on PV d'affectation."""

    __tablename__ = "cartouches"
    departement: Mapped[str] = mapped_column(String(3), primary_key=True)
    champs: Mapped[dict[str, str]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ParametreDepartement(Base):
    """Other department settings (contacts, full names in chat …)."""

    __tablename__ = "parametres_departement"
    departement: Mapped[str] = mapped_column(String(3), primary_key=True)
    valeurs: Mapped[dict[str, object]] = mapped_column(JSON)
