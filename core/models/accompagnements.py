"""Accompagnements: a mission put to work for one or more decisions (domain 3.4)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, utcnow


class Accompagnement(Base):
    __tablename__ = "accompagnements"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    mission_id: Mapped[str] = mapped_column(ForeignKey("missions.id"))
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


# A mission's accompaniments with their periods and hours, read from the index alone: the
# check for overloaded missions (anomaly 6) sums them on each day one starts.
Index(
    "ix_accompagnements_mission_load",
    Accompagnement.mission_id,
    Accompagnement.debut,
    Accompagnement.fin,
    Accompagnement.heures,
)
