"""Checks of the registration and candidature fields, each with a precise French correction.

Every function returns the normalised value or raises `InvalidInput` (nothing is stored).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from core.dates import parse_date
from core.errors import InvalidInput

CIVILITES = {"m": "M.", "m.": "M.", "monsieur": "M.", "mme": "Mme", "madame": "Mme", "mme.": "Mme"}
_NAME = re.compile(r"^[^\W\d_]+(?:[ '’\-][^\W\d_]+)*$")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
_CP = re.compile(r"^(?:0[1-9]|[1-8]\d|9[0-5]|2[AB]|97[1-6])\d{3}$")
_INE = re.compile(r"^(?:\d{9}[A-HJK]{2}|\d{10}[A-HJ-NPR-Z]|[0-9A-Z]{10}\d)$")


def civilite(text: str) -> str:
    value = CIVILITES.get(text.strip().lower())
    if value is None:
        raise InvalidInput("champs.civilite")
    return value


def name(text: str, field: str) -> str:
    value = unicodedata.normalize("NFC", " ".join(text.split()))
    if not value or len(value) > 80 or not _NAME.match(value):
        raise InvalidInput("champs.nom", champ=field)
    return value


def birth_date(text: str, today: date) -> date:
    try:
        value = parse_date(text)
    except ValueError:
        raise InvalidInput("champs.date_format", valeur=text.strip()) from None
    age = today.year - value.year - ((today.month, today.day) < (value.month, value.day))
    if not 16 <= age <= 80:
        raise InvalidInput("champs.date_age", valeur=text.strip())
    return value


def email(text: str) -> str:
    value = text.strip().lower()
    if len(value) > 200 or not _EMAIL.match(value) or ".." in value:
        raise InvalidInput("champs.email", valeur=text.strip())
    return value


def telephone(text: str) -> str:
    digits = re.sub(r"[\s.\-]", "", text.strip())
    if digits.startswith("+33"):
        digits = "0" + digits[3:]
    if not re.fullmatch(r"0[1-9]\d{8}", digits):
        raise InvalidInput("champs.telephone", valeur=text.strip())
    return " ".join(digits[i : i + 2] for i in range(0, 10, 2))


def code_postal(text: str) -> str:
    value = text.strip().upper()
    if not _CP.match(value):
        raise InvalidInput("champs.code_postal", valeur=text.strip())
    return value


def commune(text: str) -> str:
    value = " ".join(text.split())
    if not value or len(value) > 100 or any(ch.isdigit() for ch in value):
        raise InvalidInput("champs.commune")
    return value


def ine(text: str) -> str:
    """INE: 11 characters (INE-RNIE, INE-BEA, INE-Base élève…)."""
    value = re.sub(r"\s", "", text).upper()
    if len(value) != 11 or not _INE.match(value):
        raise InvalidInput("champs.ine", valeur=text.strip())
    return value


def departement_of_postcode(cp: str) -> str:
    """62000 → 062; 97x → 97x; Corsica 2A/2B → 02A/02B."""
    if cp.startswith("97"):
        return cp[:3]
    return "0" + cp[:2]
