"""CSV decoding (interfaces §4): UTF-8 with or without BOM, `;` or `,`, free header order."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from core.services.imports.outcome import ImportRefused, RowError
from core.texts import t

_BOM = b"\xef\xbb\xbf"


class Record(NamedTuple):  # a tuple: national files hold hundreds of thousands of them
    row: int  # as a spreadsheet numbers it: the header is row 1
    cells: list[str]


@dataclass(frozen=True)
class Table:
    columns: dict[str, int]  # normalised header name -> cell index
    records: list[Record]


def read_table(kind: str, path: Path) -> Table:
    """Decode the file; refuse it (row named) when it is not UTF-8 or cannot be read."""
    try:
        data = path.read_bytes()
    except OSError:
        error = RowError(None, None, t("imports.unreadable"))
        raise ImportRefused(kind, str(path), [error]) from None
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Spreadsheets save latin-1 ("CSV" rather than "CSV UTF-8"); name the first bad line.
        line = data.count(b"\n", 0, exc.start) + 1
        raise ImportRefused(
            kind, str(path), [RowError(line, None, t("imports.not_utf8"))]
        ) from None
    try:
        return parse_text(text)
    except _BadCsv as exc:
        raise ImportRefused(
            kind, str(path), [RowError(exc.row, None, t("imports.bad_csv"))]
        ) from None


class _BadCsv(Exception):
    def __init__(self, row: int) -> None:
        super().__init__(row)
        self.row = row


def parse_text(text: str) -> Table:
    end = text.find("\n")
    first_line = text if end < 0 else text[:end]
    separator = "," if first_line.count(",") > first_line.count(";") else ";"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    row = 0
    try:
        header_cells = next(reader, None)
        if header_cells is None:
            return Table({}, [])
        row = 1
        header: dict[str, int] = {}
        for index, name in enumerate(header_cells):
            # Excel may leave a BOM inside the first cell when the file was re-saved.
            key = name.strip().lstrip("\ufeff").strip().lower()
            if key and key not in header:
                header[key] = index
        records: list[Record] = []
        for row, cells in enumerate(reader, start=2):
            # Blank lines (often trailing) carry nothing, but still count in the numbering.
            if "".join(cells).strip():
                records.append(Record(row, cells))
    except csv.Error:
        # `row` is the last record read whole; the unreadable one follows it.
        raise _BadCsv(row + 1) from None
    return Table(header, records)
