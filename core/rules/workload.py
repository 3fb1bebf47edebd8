"""Weekly hours of a mission (domain 3.2)."""

from __future__ import annotations


def weekly_hours(heures_rh: float | None, quotite: float | None, reference: float | None) -> float:
    """HR's figure when given; else quotité × the department's reference for 100 %; else 0."""
    if heures_rh is not None:
        return heures_rh
    if quotite is not None and reference is not None:
        return round(quotite / 100.0 * reference, 2)
    return 0.0
