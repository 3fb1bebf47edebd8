"""Candidate-side rules (domain 2): types, required pieces, completeness, validity, renewal."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, timedelta
from enum import StrEnum
from typing import NamedTuple

from core.dates import add_months

VALIDITY_MONTHS = 6
REMINDER_DAYS_BEFORE_DELETION = 7


class Statut(StrEnum):
    BROUILLON = "brouillon"
    INCOMPLETE = "incomplete"
    COMPLETE = "complete"
    EN_EXAMEN = "en_examen"
    RETENUE = "retenue"
    NON_RETENUE = "non_retenue"
    RETIREE = "retiree"
    SUPPRIMEE = "supprimee"


CLOSED = frozenset({Statut.RETIREE, Statut.SUPPRIMEE})
# Statuses the service sets by hand once a file is complete.
REVIEW = frozenset({Statut.EN_EXAMEN, Statut.RETENUE, Statut.NON_RETENUE})

TYPES = ("AESH", "M2_1D_NORD", "M2_1D_PDC", "M2_2D_LILLE")
M2_TYPES = frozenset(TYPES[1:])

PIECES_AESH = ("cv", "lettre_motivation", "piece_identite", "diplome")
PIECES_M2 = (*PIECES_AESH, "justificatif_inscription")
DIPLOME_TYPES = ("LICENCE", "MASTER", "BAC", "CAP_AEPE", "DEAES", "BTS", "DUT", "AUTRE")


def required_pieces(type_: str) -> tuple[str, ...]:
    return PIECES_M2 if type_ in M2_TYPES else PIECES_AESH


class Completeness(NamedTuple):
    complete: bool
    missing_pieces: tuple[str, ...]
    missing_licence: bool


def completeness(type_: str, pieces: Collection[str], licence_with_copy: bool) -> Completeness:
    """An M2 candidature also needs a LICENCE diploma entry with its scanned copy (2.3)."""
    missing = tuple(p for p in required_pieces(type_) if p not in pieces)
    needs_licence = type_ in M2_TYPES and not licence_with_copy
    return Completeness(not missing and not needs_licence, missing, needs_licence)


def status_after_pieces(current: str, c: Completeness) -> str:
    """Completeness moves a file between incomplete and complete; review statuses stay."""
    if current in (Statut.INCOMPLETE, Statut.COMPLETE, Statut.BROUILLON):
        return Statut.COMPLETE if c.complete else Statut.INCOMPLETE
    return current


def first_validity(submitted: date) -> date:
    return add_months(submitted, VALIDITY_MONTHS)


def renewed_validity(previous_end: date) -> date:
    """Each renewal adds 6 calendar months to the end of validity (31/08 → 28 or 29/02)."""
    return add_months(previous_end, VALIDITY_MONTHS)


class RenewalAction(StrEnum):
    NONE = "none"
    ASK = "ask"
    REMIND = "remind"
    DELETE = "delete"


def renewal_action(
    statut: str,
    valide_jusqu_au: date | None,
    relance_le: date | None,
    rappel_le: date | None,
    today: date,
    reply_days: int,
) -> RenewalAction:
    """What the daily sweep does with one candidature (domain 2.6)."""
    if statut in CLOSED or statut == Statut.BROUILLON or valide_jusqu_au is None:
        return RenewalAction.NONE
    if relance_le is None:
        return RenewalAction.ASK if valide_jusqu_au <= today else RenewalAction.NONE
    deadline = reply_deadline(relance_le, reply_days)
    if today > deadline:
        return RenewalAction.DELETE
    if rappel_le is None and today >= deadline - timedelta(days=REMINDER_DAYS_BEFORE_DELETION):
        return RenewalAction.REMIND
    return RenewalAction.NONE


def reply_deadline(relance_le: date, reply_days: int) -> date:
    """Last day a reply counts: `reply_days` after the question was sent."""
    return relance_le + timedelta(days=reply_days)
