"""Accompagnements: a mission put to work for one or more decisions (domain 3.4)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, utcnow


class Accompagnement(Base):
    __tablename__ = "accompagnements"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    mission_id: Mapped[str] = mapped_column(ForeignKey("missions.id"), index=True)
    rne: Mapped[str] = mapped_column(ForeignKey("etablissements.rne"), index=True)
    debut: Mapped[date]
    fin: Mapped[date]
    heures: Mapped[float]
    repas: Mapped[bool] = mapped_column(default=False)
    pause_meridienne: Mapped[bool] = mapped_column(default=False)
    maintien: Mapped[bool] = mapped_column(default=False)
    previsionnel: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("service_users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccompagnementDecision(Base):
    __tablename__ = "accompagnement_decisions"
    accompagnement_id: Mapped[str] = mapped_column(
        ForeignKey("accompagnements.id", ondelete="CASCADE"), primary_key=True
    )
    decision_id: Mapped[str] = mapped_column(
        ForeignKey("decisions.id"), primary_key=True, index=True
    )
