"""Établissements, PIAL and ERSEH secteurs (domain 3.3)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base


class Pial(Base):
    """A PIAL, named by its tête de PIAL (an établissement's RNE)."""

    __tablename__ = "pials"
    rne: Mapped[str] = mapped_column(String(16), primary_key=True)
    departement: Mapped[str] = mapped_column(String(3), index=True)


class Etablissement(Base):
    __tablename__ = "etablissements"
    rne: Mapped[str] = mapped_column(String(16), primary_key=True)
    nom: Mapped[str] = mapped_column(String(200))
    commune: Mapped[str | None] = mapped_column(String(120))
    code_postal: Mapped[str | None] = mapped_column(String(10))
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    pial_rne: Mapped[str | None] = mapped_column(String(16), index=True)
    secteur: Mapped[str | None] = mapped_column(String(80))
    email: Mapped[str | None] = mapped_column(String(200))
    departement: Mapped[str] = mapped_column(String(3), index=True)


class Secteur(Base):
    """ERSEH secteur of a department; the student's secteur defines perimeters."""

    __tablename__ = "secteurs"
    departement: Mapped[str] = mapped_column(String(3), primary_key=True)
    code: Mapped[str] = mapped_column(String(80), primary_key=True)


class CoordonnateurPial(Base):
    __tablename__ = "coordonnateurs_pial"
    pial_rne: Mapped[str] = mapped_column(ForeignKey("pials.rne"), primary_key=True)
    service_user_id: Mapped[int] = mapped_column(
        ForeignKey("service_users.id", ondelete="CASCADE"), primary_key=True
    )


Index("ix_etablissements_dep_pial", Etablissement.departement, Etablissement.pial_rne)
