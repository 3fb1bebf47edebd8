"""Who may see what (domain 1, 3.10): department, optional secteurs, optional PIAL."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Perimeter:
    """`departement=None` means every department (national runs of the CLI only)."""

    departement: str | None
    secteurs: frozenset[str] | None = None
    pial_rne: str | None = None

    @classmethod
    def departement_entier(cls, departement: str | None) -> Perimeter:
        return cls(departement=departement)

    def narrowed(
        self, secteurs: frozenset[str] | None = None, pial_rne: str | None = None
    ) -> Perimeter:
        """A narrower view; a narrowing can never widen what the caller already has."""
        s = self.secteurs
        if secteurs is not None:
            s = secteurs if s is None else (s & secteurs)
        p = self.pial_rne
        if pial_rne is not None:
            p = pial_rne if p is None or p == pial_rne else "\x00none"
        return Perimeter(self.departement, s, p)

    def contains(self, departement: str | None, secteur: str | None) -> bool:
        if self.departement is not None and departement != self.departement:
            return False
        return self.secteurs is None or secteur in self.secteurs
