"""What an import tells its caller: the report of a success, or the rows that refused the file."""

from __future__ import annotations

from dataclasses import dataclass

from core.texts import t

# Past this many errors the rest of the file is not checked: the user fixes these first.
MAX_ERRORS = 100


@dataclass(frozen=True)
class RowError:
    """One refused cell or row; `row` is numbered as a spreadsheet shows it (header = row 1)."""

    row: int | None
    column: str | None
    message: str

    def describe(self, path: str) -> str:
        if self.row is None:
            return t("imports.where_file", file=path, message=self.message)
        if self.column is None:
            return t("imports.where_row", file=path, row=self.row, message=self.message)
        return t(
            "imports.where_cell", file=path, row=self.row, column=self.column, message=self.message
        )


class ImportRefused(Exception):
    """The file was refused before anything was written; `str()` is one French line per error."""

    def __init__(self, kind: str, path: str, errors: list[RowError]) -> None:
        self.kind = kind
        self.path = path
        self.errors = errors
        super().__init__(kind, path, errors)

    def __str__(self) -> str:
        lines = [error.describe(self.path) for error in self.errors]
        if len(self.errors) >= MAX_ERRORS:
            lines.append(t("imports.more_errors", count=len(self.errors)))
        return "\n".join(lines)


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    journal_entries: int = 0


class ErrorList:
    """Errors of one file, capped at MAX_ERRORS and reported in row order."""

    def __init__(self) -> None:
        self.items: list[RowError] = []

    def add(self, row: int | None, column: str | None, message: str) -> None:
        if len(self.items) < MAX_ERRORS:
            self.items.append(RowError(row, column, message))

    @property
    def full(self) -> bool:
        return len(self.items) >= MAX_ERRORS

    def __bool__(self) -> bool:
        return bool(self.items)

    def refuse(self, kind: str, path: str) -> ImportRefused:
        ordered = sorted(self.items, key=lambda e: e.row or 0)
        return ImportRefused(kind, path, ordered)
