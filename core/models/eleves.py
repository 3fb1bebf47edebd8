"""Students, scolarisations and CDAPH decisions (domain 3.3); they arrive by import only."""

from __future__ import annotations

from datetime import date

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base


class Eleve(Base):
    __tablename__ = "eleves"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    nom: Mapped[str] = mapped_column(String(120))
    prenom: Mapped[str] = mapped_column(String(120))
    date_naissance: Mapped[date | None]
    secteur: Mapped[str | None] = mapped_column(String(80))
    dossier_etat: Mapped[str] = mapped_column(String(10), default="actif")
    erseh_email: Mapped[str | None] = mapped_column(String(200))
    # Department of the établissement of the latest scolarisation: the CSV carries none, and
    # perimeters are department + secteur.
    departement: Mapped[str | None] = mapped_column(String(3))


class Scolarisation(Base):
    __tablename__ = "scolarisations"
    __table_args__ = (UniqueConstraint("eleve_id", "rne", "debut"),)
    pk: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str | None] = mapped_column(String(32), unique=True)
    eleve_id: Mapped[str] = mapped_column(ForeignKey("eleves.id"), index=True)
    rne: Mapped[str] = mapped_column(ForeignKey("etablissements.rne"), index=True)
    debut: Mapped[date]
    fin: Mapped[date | None]
    classe: Mapped[str | None] = mapped_column(String(40))


class Decision(Base):
    __tablename__ = "decisions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    eleve_id: Mapped[str] = mapped_column(ForeignKey("eleves.id"), index=True)
    type: Mapped[str] = mapped_column(String(12))
    heures: Mapped[float | None]
    origine: Mapped[str | None] = mapped_column(String(40))
    nature: Mapped[str | None] = mapped_column(String(40))
    debut: Mapped[date]
    fin: Mapped[date]


Index("ix_eleves_dep_secteur", Eleve.departement, Eleve.secteur)
Index("ix_decisions_period", Decision.debut, Decision.fin)
