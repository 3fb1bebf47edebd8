"""AESH, missions, natures de support and PIAL affectations (domain 3.2, 3.7)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base


class NatureSupport(Base):
    __tablename__ = "natures_support"
    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    base: Mapped[str] = mapped_column(String(8))
    contrat: Mapped[str] = mapped_column(String(16))
    activite: Mapped[str] = mapped_column(String(80))
    accompagne: Mapped[bool]


class Aesh(Base):
    __tablename__ = "aesh"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(8))  # EPP, ASSED or PREV (prévisionnel)
    nom: Mapped[str] = mapped_column(String(120))
    prenom: Mapped[str] = mapped_column(String(120))
    date_naissance: Mapped[date | None]
    commune: Mapped[str | None] = mapped_column(String(120))
    code_postal: Mapped[str | None] = mapped_column(String(10))
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    email: Mapped[str | None] = mapped_column(String(200))
    telephone: Mapped[str | None] = mapped_column(String(40))
    transport: Mapped[str | None] = mapped_column(String(80))
    rqth: Mapped[str | None] = mapped_column(String(20))
    actif: Mapped[bool] = mapped_column(default=True)
    previsionnel: Mapped[bool] = mapped_column(default=False)
    departement: Mapped[str | None] = mapped_column(String(3), index=True)
    candidature_id: Mapped[int | None] = mapped_column(ForeignKey("candidatures.id"))


class Mission(Base):
    __tablename__ = "missions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    aesh_id: Mapped[str] = mapped_column(ForeignKey("aesh.id"), index=True)
    contrat: Mapped[str] = mapped_column(String(8))
    nature: Mapped[str] = mapped_column(String(8))
    debut: Mapped[date]
    fin: Mapped[date | None]  # open-ended CDI
    quotite: Mapped[float | None]
    heures_rh: Mapped[float | None]  # as given by HR
    heures: Mapped[float] = mapped_column(default=0.0)  # effective weekly hours (domain 3.2)
    employeur_rne: Mapped[str | None] = mapped_column(String(16))
    pial_rne: Mapped[str | None] = mapped_column(String(16))
    previsionnel: Mapped[bool] = mapped_column(default=False)
    actif: Mapped[bool] = mapped_column(default=True)
    departement: Mapped[str | None] = mapped_column(String(3), index=True)


class Affectation(Base):
    __tablename__ = "affectations"
    __table_args__ = (UniqueConstraint("mission_id", "pial_rne", "annee"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    mission_id: Mapped[str] = mapped_column(ForeignKey("missions.id"), index=True)
    pial_rne: Mapped[str] = mapped_column(ForeignKey("pials.rne"), index=True)
    annee: Mapped[str] = mapped_column(String(9))
    heures: Mapped[float | None]  # None = the mission's full weekly hours
