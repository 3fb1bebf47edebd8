"""`import_file`: check a whole CSV file, then write it in the caller's transaction."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from core.services.imports.accompagnements import AccompagnementsHandler
from core.services.imports.candidats import CandidatsHandler
from core.services.imports.eleves import DecisionsHandler, ElevesHandler, ScolarisationsHandler
from core.services.imports.kinds import (
    KINDS,
    SPECS,
    convert,
    duplicate_keys,
    missing_columns,
)
from core.services.imports.outcome import ErrorList, ImportReport
from core.services.imports.progress import Progress, Ticker
from core.services.imports.reader import read_table
from core.services.imports.referentiel import EtablissementsHandler
from core.services.imports.rh import AeshHandler, AffectationsHandler, MissionsHandler
from core.services.imports.upsert import Handler
from core.texts import t

log = logging.getLogger(__name__)

HANDLERS: dict[str, type[Handler]] = {
    "etablissements": EtablissementsHandler,
    "eleves": ElevesHandler,
    "scolarisations": ScolarisationsHandler,
    "decisions": DecisionsHandler,
    "aesh": AeshHandler,
    "missions": MissionsHandler,
    "affectations": AffectationsHandler,
    "accompagnements": AccompagnementsHandler,
    "candidats": CandidatsHandler,
}


async def import_file(
    session: AsyncSession, kind: str, path: Path, *, progress: Progress | None = None
) -> ImportReport:
    """Import one CSV file of `kind` (interfaces §4) into the caller's transaction.

    The whole file is checked before anything is written: a refused file raises
    ImportRefused and leaves the session as it was. Nothing is committed here, so the caller
    gets all or nothing by committing or rolling back. For files over 10,000 rows,
    `progress(done, total)` is called about every 2,000 rows (total = rows; see Ticker).
    """
    if kind not in SPECS:
        raise ValueError(t("imports.unknown_kind", kind=kind, kinds=", ".join(KINDS)))
    with _collector_paused():
        report = await _import(session, kind, path, progress)
    # Counts only: the rows hold personal data, which never goes to logs.
    log.info(
        "import %s: %d rows, %d created, %d updated, %d unchanged, %d deactivated, %d journal",
        kind,
        report.rows,
        report.created,
        report.updated,
        report.unchanged,
        report.deactivated,
        report.journal_entries,
    )
    return report


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cycle collector while millions of small objects are made.

    They hold no cycles, yet each allocation burst triggers full collections that scan them
    all again: reading and checking a national file takes a third of the time without.
    Reference counting still frees everything; the collector resumes when the import ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def _import(
    session: AsyncSession, kind: str, path: Path, progress: Progress | None
) -> ImportReport:
    spec = SPECS[kind]
    table = read_table(kind, path)
    errors = ErrorList()
    missing_columns(spec, table, errors)
    if errors:
        raise errors.refuse(kind, str(path))
    ticker = Ticker(progress, len(table.records))
    rows = convert(spec, table, errors, ticker)
    if not errors.full:
        duplicate_keys(spec, rows, errors)
    report = ImportReport(kind=kind, rows=len(rows))
    handler = HANDLERS[kind](session, rows, errors, report, ticker)
    if not errors.full:
        await handler.check()
    if errors:
        raise errors.refuse(kind, str(path))
    await handler.write()
    ticker.finish()
    return report
