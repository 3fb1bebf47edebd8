"""A progress bar on stderr for long imports (files over 10,000 rows)."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    def __init__(self, label: str, width: int = 30) -> None:
        self.label = label
        self.width = width
        self.shown = False
        self.last = 0.0

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last < 0.2:
            return
        self.last = now
        frac = done / total if total else 1.0
        filled = int(frac * self.width)
        bar = "█" * filled + "·" * (self.width - filled)
        sys.stderr.write(f"\r{self.label} [{bar}] {done}/{total} ({frac:.0%})")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            self.shown = False
