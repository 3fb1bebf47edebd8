"""Progress of one import, for the CLI's bar: `progress(done, total)` with total = rows."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int], None]

# A bar is worth drawing only for big files; it then moves about every STEP rows.
FROM_ROWS = 10_000
STEP = 2_000
# Writing costs about twice as much as reading and checking (measured on national files).
CHECK_SHARE = 1 / 3


class Ticker:
    """Turns rows checked, then rows written, into one monotonic `done` out of `total`.

    Checking fills the first third of the bar, writing the rest; unchanged rows are never
    written, so the bar completes when the import ends.
    """

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress = progress if progress is not None and total > FROM_ROWS else None
        self.total = total
        self.checked = 0
        self.written = 0
        self.shown = 0

    def check(self, rows: int) -> None:
        self.checked = rows
        self._show()

    def write(self, rows: int) -> None:
        self.written += rows
        self._show()

    def finish(self) -> None:
        if self.progress is not None:
            self.progress(self.total, self.total)

    def _show(self) -> None:
        if self.progress is None:
            return
        share = CHECK_SHARE * self.checked + (1 - CHECK_SHARE) * min(self.written, self.total)
        done = min(int(share), self.total)
        if done > self.shown:
            self.shown = done
            self.progress(done, self.total)
