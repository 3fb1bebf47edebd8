"""Plain immutable records the AGESH rules compute on (no database, no I/O).

Dates are `datetime.date`; open-ended periods (a CDI, a current scolarisation) use `None` as end,
except in the lean rows at the end of this module (day ordinals, FAR as open end).
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


# --- lean rows of the whole-perimeter reports ------------------------------------------------
# Coverage, anomalies and PIAL read hundreds of thousands of rows: building a NamedTuple
# costs about ten times a plain tuple, and comparing `date`s costs more than comparing ints.
# These rows are therefore plain tuples, positions as documented, with dates as day ordinals
# (`date.toordinal()`) and an open end as FAR.

FAR = date.max.toordinal()

# (id, eleve_id, type, heures, debut, fin)
DecisionRow = tuple[str, str, str, float | None, int, int]
# (debut, fin) of a scolarisation, or of an accompaniment's period
Span = tuple[int, int]
# (debut, fin, heures, actif, aesh_id) of a mission
MissionSpanRow = tuple[int, int, float, bool, str]
# (id, mission_id, rne, debut, fin, heures, maintien, mission, decisions) of an
# accompaniment checked for anomalies; mission: its MissionSpanRow, or None when missing;
# decisions: (id, eleve_id, debut, fin, scolarisations) of some of its decisions, by id,
# with the spans of their student's scolarisations in the accompaniment's établissement
AnomalyAccRow = tuple[
    str,
    str,
    str,
    int,
    int,
    float,
    bool,
    MissionSpanRow | None,
    list[tuple[str, str, int, int, list[Span]]],
]


def merged(spans: list[Span]) -> list[Span]:
    """The days of `spans` as disjoint runs, in order: spans that overlap or touch are
    joined. Sorts `spans` in place."""
    spans.sort()
    out: list[Span] = []
    for s, e in spans:
        if out and s <= out[-1][1] + 1:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out
