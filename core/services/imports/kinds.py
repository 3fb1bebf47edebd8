"""Per-kind column specs (interfaces §4) and the conversion of cells to Python values.

Nothing here touches the database: a row is converted and checked on its own; references to
other rows and tables are checked by the importer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy.orm import DeclarativeBase

from core.dates import SchoolYear, parse_date
from core.models import (
    Accompagnement,
    Aesh,
    Affectation,
    Candidat,
    Candidature,
    Decision,
    Eleve,
    Etablissement,
    Mission,
    Scolarisation,
)
from core.rules.natures import NATURES
from core.services.imports.outcome import ErrorList
from core.services.imports.progress import STEP, Ticker
from core.services.imports.reader import Table
from core.texts import t

DOSSIER_ETATS = ("actif", "gele", "cloture")
DECISION_TYPES = ("individuelle", "mutualisee")
SOURCES = ("EPP", "ASSED")
CONTRATS = ("T2-CDD", "T2-CDI", "HT2-CDD")
CANDIDATURE_TYPES = ("AESH", "M2_1D_NORD", "M2_1D_PDC", "M2_2D_LILLE")
STATUTS = (
    "brouillon",
    "incomplete",
    "complete",
    "en_examen",
    "retenue",
    "non_retenue",
    "retiree",
    "supprimee",
)
# Erased candidatures keep no personal data (domain 2.6): their rows may come without e-mail.
ANONYMOUS_STATUTS = frozenset({"retiree", "supprimee"})


class CellError(ValueError):
    """A cell that cannot be read; the message is French and says why, not where."""


Parser = Callable[[str], Any]


@dataclass(frozen=True)
class Column:
    name: str
    parse: Parser
    required: bool = False  # the column must be there and the cell filled
    in_header: bool = False  # the column must be there, the cell may be empty
    empty: Any = None  # value of an empty cell

    @property
    def mandatory(self) -> bool:
        return self.required or self.in_header


RowCheck = Callable[[dict[str, Any]], list[tuple[str, str]]]


@dataclass(frozen=True)
class Kind:
    name: str
    columns: tuple[Column, ...]
    # Each tuple of columns identifies a row: two rows of one file may not share one.
    keys: tuple[tuple[str, ...], ...]
    checks: tuple[RowCheck, ...] = ()


class Row(NamedTuple):  # a tuple: national files hold hundreds of thousands of them
    row: int
    # Only the columns present in the file: an absent column leaves stored values alone.
    values: dict[str, Any]


# --- cell parsers ---------------------------------------------------------------------------


def _max_length(model: type[DeclarativeBase], column: str) -> int | None:
    length = getattr(model.__table__.c[column].type, "length", None)
    return length if isinstance(length, int) else None


def text(model: type[DeclarativeBase], column: str) -> Parser:
    """Text kept as given (stripped), refused when the database column cannot hold it."""
    limit = _max_length(model, column)

    def parse(raw: str) -> str:
        if limit is not None and len(raw) > limit:
            raise CellError(t("imports.too_long", length=len(raw), limit=limit))
        return raw

    return parse


def parse_day(raw: str) -> date:
    try:
        if len(raw) == 10 and raw[4] == "-" and raw[7] == "-":
            # Fast path for the ISO form national files use; parse_date is the reference.
            return date.fromisoformat(raw)
        return parse_date(raw)
    except ValueError:
        raise CellError(t("imports.bad_date", value=raw)) from None


_DECIMAL = re.compile(r"^[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)$")


def decimal(*, negative: bool = False) -> Parser:
    def parse(raw: str) -> float:
        if not _DECIMAL.match(raw):
            raise CellError(t("imports.bad_number", value=raw))
        value = float(raw.replace(",", "."))
        if value < 0 and not negative:
            raise CellError(t("imports.negative", value=raw))
        return value

    return parse


def _fold(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value.strip().lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def choice(choices: Iterable[str]) -> Parser:
    """One of `choices`, matched without regard to case or accents, stored as spelled there."""
    canonical = {_fold(c): c for c in choices}
    listed = ", ".join(canonical.values())

    exact = {c: c for c in choices}

    def parse(raw: str) -> str:
        if raw in exact:
            return raw
        try:
            return canonical[_fold(raw)]
        except KeyError:
            raise CellError(t("imports.bad_choice", value=raw, choices=listed)) from None

    return parse


def parse_nature(raw: str) -> str:
    code = raw.strip().upper()
    if code not in _NATURE_CODES:
        raise CellError(t("imports.bad_nature", value=raw, choices=", ".join(_NATURE_CODES)))
    return code


_NATURE_CODES = tuple(n.code for n in NATURES)
_TRUE = frozenset({"1", "oui", "vrai", "true"})
_FALSE = frozenset({"0", "non", "faux", "false"})


def parse_flag(raw: str) -> bool:
    if raw == "0" or raw == "1":
        return raw == "1"
    folded = _fold(raw)
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise CellError(t("imports.bad_flag", value=raw))


def id_list(model: type[DeclarativeBase], column: str) -> Parser:
    """`|`-separated ids, in order, without repeats."""
    one = text(model, column)

    def parse(raw: str) -> list[str]:
        items = [one(part.strip()) for part in raw.split("|") if part.strip()]
        if not items:
            raise CellError(t("imports.required"))
        return list(dict.fromkeys(items))

    return parse


def parse_zones(raw: str) -> list[str]:
    return [part.strip() for part in raw.split("|") if part.strip()]


def parse_annee(raw: str) -> str:
    try:
        return SchoolYear.parse(raw).label
    except ValueError:
        raise CellError(t("imports.bad_annee", value=raw)) from None


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def email(model: type[DeclarativeBase], column: str) -> Parser:
    as_text = text(model, column)

    def parse(raw: str) -> str:
        if not _EMAIL.match(raw):
            raise CellError(t("imports.bad_email", value=raw))
        lowered: str = as_text(raw.lower())
        return lowered

    return parse


# --- row checks -----------------------------------------------------------------------------


def period(values: dict[str, Any]) -> list[tuple[str, str]]:
    debut, fin = values.get("debut"), values.get("fin")
    if debut is not None and fin is not None and debut > fin:
        return [("fin", t("imports.fin_before_debut", debut=debut, fin=fin))]
    return []


def individual_hours(values: dict[str, Any]) -> list[tuple[str, str]]:
    if values.get("type") != "individuelle":
        return []
    heures = values.get("heures")
    if heures is None:
        return [("heures", t("imports.heures_individuelle"))]
    if heures <= 0:
        return [("heures", t("imports.heures_positive", value=heures))]
    return []


def contact_unless_erased(values: dict[str, Any]) -> list[tuple[str, str]]:
    if values.get("statut") in ANONYMOUS_STATUTS or values.get("email"):
        return []
    return [("email", t("imports.required"))]


# --- the kinds ------------------------------------------------------------------------------

_DAY = parse_day
_HOURS = decimal()
_COORD = decimal(negative=True)

SPECS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "etablissements",
            (
                Column("rne", text(Etablissement, "rne"), required=True),
                Column("nom", text(Etablissement, "nom"), required=True),
                Column("commune", text(Etablissement, "commune")),
                Column("code_postal", text(Etablissement, "code_postal")),
                Column("latitude", _COORD),
                Column("longitude", _COORD),
                Column("pial_rne", text(Etablissement, "pial_rne")),
                Column("secteur", text(Etablissement, "secteur")),
                Column("email", text(Etablissement, "email")),
            ),
            keys=(("rne",),),
        ),
        Kind(
            "eleves",
            (
                Column("id", text(Eleve, "id"), required=True),
                Column("nom", text(Eleve, "nom"), required=True),
                Column("prenom", text(Eleve, "prenom"), required=True),
                Column("date_naissance", _DAY),
                Column("secteur", text(Eleve, "secteur")),
                Column("dossier_etat", choice(DOSSIER_ETATS), empty="actif"),
                Column("erseh_email", text(Eleve, "erseh_email")),
            ),
            keys=(("id",),),
        ),
        Kind(
            "scolarisations",
            (
                Column("eleve_id", text(Scolarisation, "eleve_id"), required=True),
                Column("rne", text(Scolarisation, "rne"), required=True),
                Column("debut", _DAY, required=True),
                Column("fin", _DAY),
                Column("classe", text(Scolarisation, "classe")),
                Column("id", text(Scolarisation, "id")),
            ),
            keys=(("id",), ("eleve_id", "rne", "debut")),
            checks=(period,),
        ),
        Kind(
            "decisions",
            (
                Column("id", text(Decision, "id"), required=True),
                Column("eleve_id", text(Decision, "eleve_id"), required=True),
                Column("type", choice(DECISION_TYPES), required=True),
                Column("heures", _HOURS),
                Column("origine", text(Decision, "origine")),
                Column("nature", text(Decision, "nature")),
                Column("debut", _DAY, required=True),
                Column("fin", _DAY, required=True),
            ),
            keys=(("id",),),
            checks=(period, individual_hours),
        ),
        Kind(
            "aesh",
            (
                Column("id", text(Aesh, "id"), required=True),
                Column("source", choice(SOURCES), required=True),
                Column("nom", text(Aesh, "nom"), required=True),
                Column("prenom", text(Aesh, "prenom"), required=True),
                Column("date_naissance", _DAY),
                Column("commune", text(Aesh, "commune")),
                Column("code_postal", text(Aesh, "code_postal")),
                Column("latitude", _COORD),
                Column("longitude", _COORD),
                Column("email", text(Aesh, "email")),
                Column("telephone", text(Aesh, "telephone")),
                Column("transport", text(Aesh, "transport")),
                Column("rqth", text(Aesh, "rqth")),
            ),
            keys=(("id",),),
        ),
        Kind(
            "missions",
            (
                Column("id", text(Mission, "id"), required=True),
                Column("aesh_id", text(Mission, "aesh_id"), required=True),
                Column("contrat", choice(CONTRATS), required=True),
                Column("nature", parse_nature, required=True),
                Column("debut", _DAY, required=True),
                Column("fin", _DAY),
                Column("quotite", _HOURS),
                Column("heures", _HOURS),
                Column("employeur_rne", text(Mission, "employeur_rne")),
                Column("pial_rne", text(Mission, "pial_rne")),
            ),
            keys=(("id",),),
            checks=(period,),
        ),
        Kind(
            "affectations",
            (
                Column("mission_id", text(Affectation, "mission_id"), required=True),
                Column("pial_rne", text(Affectation, "pial_rne"), required=True),
                Column("annee", parse_annee, required=True),
                Column("heures", _HOURS),
            ),
            keys=(("mission_id", "pial_rne", "annee"),),
        ),
        Kind(
            "accompagnements",
            (
                Column("id", text(Accompagnement, "id"), required=True),
                Column("mission_id", text(Accompagnement, "mission_id"), required=True),
                Column("decision_ids", id_list(Decision, "id"), required=True),
                Column("rne", text(Accompagnement, "rne"), required=True),
                Column("debut", _DAY, required=True),
                Column("fin", _DAY, required=True),
                Column("heures", _HOURS, required=True),
                Column("maintien", parse_flag, empty=False),
                Column("previsionnel", parse_flag, empty=False),
            ),
            keys=(("id",),),
            checks=(period,),
        ),
        Kind(
            "candidats",
            (
                Column("id", text(Candidature, "source_id"), required=True),
                Column("nom", text(Candidat, "nom")),
                Column("prenom", text(Candidat, "prenom")),
                Column("email", email(Candidat, "email"), in_header=True),
                Column("telephone", text(Candidat, "telephone")),
                Column("type", choice(CANDIDATURE_TYPES), required=True),
                Column("zones", parse_zones, empty=[]),
                Column("statut", choice(STATUTS), required=True),
                Column("depose_le", _DAY),
                Column("valide_jusqu_au", _DAY),
            ),
            keys=(("id",),),
            checks=(contact_unless_erased,),
        ),
    )
}

KINDS: tuple[str, ...] = tuple(SPECS)


def missing_columns(kind: Kind, table: Table, errors: ErrorList) -> None:
    if not table.columns and not table.records:
        return  # an empty file: nothing to import, nothing to refuse
    for column in kind.columns:
        if column.mandatory and column.name not in table.columns:
            errors.add(1, column.name, t("imports.missing_column"))


def convert(kind: Kind, table: Table, errors: ErrorList, ticker: Ticker | None = None) -> list[Row]:
    """Every record as typed values; bad cells and rows go to `errors` (up to the cap)."""
    present = [(c, table.columns[c.name]) for c in kind.columns if c.name in table.columns]
    rows: list[Row] = []
    for done, record in enumerate(table.records, start=1):
        cells = record.cells
        width = len(cells)
        values: dict[str, Any] = {}
        valid = True
        for column, index in present:
            raw = cells[index].strip() if index < width else ""
            if not raw:
                if column.required:
                    errors.add(record.row, column.name, t("imports.required"))
                    valid = False
                empty = column.empty
                values[column.name] = list(empty) if isinstance(empty, list) else empty
                continue
            try:
                values[column.name] = column.parse(raw)
            except CellError as exc:
                errors.add(record.row, column.name, str(exc))
                valid = False
        if valid:
            for check in kind.checks:
                for column_name, message in check(values):
                    errors.add(record.row, column_name, message)
        rows.append(Row(record.row, values))
        if errors.full:
            break
        if ticker is not None and done % STEP == 0:
            ticker.check(done)
    return rows


def duplicate_keys(kind: Kind, rows: list[Row], errors: ErrorList) -> None:
    for key in kind.keys:
        seen: dict[tuple[Any, ...], int] = {}
        for row in rows:
            value = tuple(row.values.get(c) for c in key)
            if any(v is None for v in value):
                continue
            first = seen.setdefault(value, row.row)
            if first != row.row:
                shown = " / ".join(v.isoformat() if isinstance(v, date) else str(v) for v in value)
                message = t("imports.duplicate_key", key=shown, first=first)
                errors.add(row.row, ", ".join(key), message)
