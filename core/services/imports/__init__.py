"""CSV imports (interfaces §4): one file of one kind, all or nothing, re-import changes nothing.

`import_file` writes in the caller's session and never commits: the caller commits the report,
or rolls back on ImportRefused (raised before any write, so nothing is lost either way).
"""

from core.services.imports.importer import import_file
from core.services.imports.kinds import KINDS
from core.services.imports.outcome import ImportRefused, ImportReport, RowError

__all__ = ["KINDS", "ImportRefused", "ImportReport", "RowError", "import_file"]
