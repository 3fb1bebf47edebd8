"""Plain immutable records the AGESH rules compute on (no database, no I/O).

Dates are `datetime.date`; open-ended periods (a CDI, a current scolarisation) use `None` as end.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple


class DecisionRec(NamedTuple):
    id: str
    eleve_id: str
    type: str  # individuelle | mutualisee
    heures: float | None
    debut: date
    fin: date


class ScolRec(NamedTuple):
    eleve_id: str
    rne: str
    debut: date
    fin: date | None


class AccRec(NamedTuple):
    id: str
    mission_id: str
    rne: str
    debut: date
    fin: date
    heures: float
    maintien: bool
    previsionnel: bool


class MissionRec(NamedTuple):
    id: str
    aesh_id: str
    nature: str
    debut: date
    fin: date | None
    heures: float
    actif: bool
    aesh_actif: bool
    previsionnel: bool
    contrat: str = "T2-CDI"


class EleveRec(NamedTuple):
    id: str
    dossier_etat: str


class AffectationRec(NamedTuple):
    mission_id: str
    pial_rne: str
    heures: float | None
