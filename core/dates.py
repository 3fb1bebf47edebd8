"""Calendar rules (domain 3.1, 2.5): school years, Paris today, calendar-month arithmetic."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
ONE_DAY = timedelta(days=1)

_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_FR = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_ANNEE = re.compile(r"^(\d{4})-(\d{4})$")


def today_paris() -> date:
    return datetime.now(PARIS).date()


def parse_date(text: str) -> date:
    """Parse `YYYY-MM-DD` or `DD/MM/YYYY`; raise ValueError otherwise (including 31/02)."""
    s = text.strip()
    m = _ISO.match(s)
    if m:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    m = _FR.match(s)
    if m:
        return date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    raise ValueError(text)


def add_months(d: date, months: int) -> date:
    """Same day number `months` later, clamped to the month's last day (31/08 + 6 → 28/02)."""
    index = d.month - 1 + months
    year, month = d.year + index // 12, index % 12 + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return date(year, month, day)


@dataclass(frozen=True, order=True)
class SchoolYear:
    """School year Y-Y+1: 1 September Y to 31 August Y+1, inclusive."""

    start_year: int

    @property
    def debut(self) -> date:
        return date(self.start_year, 9, 1)

    @property
    def fin(self) -> date:
        return date(self.start_year + 1, 8, 31)

    @property
    def label(self) -> str:
        return f"{self.start_year}-{self.start_year + 1}"

    def __str__(self) -> str:
        return self.label

    def contains(self, d: date) -> bool:
        return self.debut <= d <= self.fin

    def months(self) -> list[tuple[int, int]]:
        return [(self.start_year + (m < 9), m) for m in (9, 10, 11, 12, 1, 2, 3, 4, 5, 6, 7, 8)]

    @classmethod
    def of(cls, d: date) -> SchoolYear:
        return cls(d.year if d.month >= 9 else d.year - 1)

    @classmethod
    def parse(cls, text: str) -> SchoolYear:
        """Accept `2025-2026` (the canonical name) or `2025`."""
        s = text.strip()
        m = _ANNEE.match(s)
        if m:
            start, end = int(m.group(1)), int(m.group(2))
            if end != start + 1:
                raise ValueError(text)
            return cls(start)
        if s.isdigit() and len(s) == 4:
            return cls(int(s))
        raise ValueError(text)

    @classmethod
    def current(cls) -> SchoolYear:
        return cls.of(today_paris())


def overlaps(a_start: date, a_end: date, b_start: date, b_end: date) -> bool:
    return a_start <= b_end and b_start <= a_end
