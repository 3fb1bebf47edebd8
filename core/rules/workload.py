"""Weekly hours of a mission (domain 3.2)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from core.dates import SchoolYear


def weekly_hours(heures_rh: float | None, quotite: float | None, reference: float | None) -> float:
    """HR's figure when given; else quotité × the department's reference for 100 %; else 0."""
    if heures_rh is not None:
        return heures_rh
    if quotite is not None and reference is not None:
        return round(quotite / 100.0 * reference, 2)
    return 0.0


def reference_for_mission(
    references: Mapping[int, float], debut: date, fin: date | None, today: date
) -> float | None:
    """The reference a mission's hours follow: that of the school year it is in force now
    (or the nearest year of its period), else the latest earlier one set, else the nearest
    later one. A CDI signed years ago thus follows this year's reference."""
    if not references:
        return None
    anchor = max(debut, min(today, fin or today))
    year = SchoolYear.of(anchor).start_year
    if year in references:
        return references[year]
    earlier = [y for y in references if y < year]
    if earlier:
        return references[max(earlier)]
    return references[min(references)]
