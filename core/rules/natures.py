"""The natures-de-support table of domain 3.2: which missions can accompany students."""

from __future__ import annotations

from typing import NamedTuple


class Nature(NamedTuple):
    code: str
    base: str
    contrat: str
    activite: str
    accompagne: bool


NATURES: tuple[Nature, ...] = (
    Nature("HI1D", "EPP", "T2", "individuel 1er degré", True),
    Nature("HI2D", "EPP", "T2", "individuel 2nd degré", True),
    Nature("HM1D", "EPP", "T2", "mutualisé 1er degré", True),
    Nature("HM2D", "EPP", "T2", "mutualisé 2nd degré", True),
    Nature("HP1D", "EPP", "T2", "PIAL 1er degré", True),
    Nature("HP2D", "EPP", "T2", "PIAL 2nd degré", True),
    Nature("HPIN", "EPP", "T2", "PIAL inter-degré", True),
    Nature("AHRE", "EPP", "T2", "AESH référent / coordination", False),
    Nature("HC1D", "EPP", "T2", "collectif (ULIS) 1er degré", False),
    Nature("HC2D", "EPP", "T2", "collectif (ULIS) 2nd degré", False),
    Nature("AE1D", "EPP", "T2", "accompagnement d'adulte 1er degré", False),
    Nature("AE2D", "EPP", "T2", "accompagnement d'adulte 2nd degré", False),
    Nature("EI1D", "ASSED", "HT2", "individuel 1er degré", True),
    Nature("EI2D", "ASSED", "HT2", "individuel 2nd degré", True),
    Nature("AM1D", "ASSED", "HT2", "mutualisé 1er degré", True),
    Nature("AM2D", "ASSED", "HT2", "mutualisé 2nd degré", True),
    Nature("PI1D", "ASSED", "HT2", "PIAL 1er degré", True),
    Nature("PI2D", "ASSED", "HT2", "PIAL 2nd degré", True),
    Nature("PIIN", "ASSED", "HT2", "PIAL inter-degré", True),
    Nature("HC1O", "ASSED", "HT2", "collectif (ULIS) 1er degré", False),
    Nature("HC2O", "ASSED", "HT2", "collectif (ULIS) 2nd degré", False),
)

BY_CODE: dict[str, Nature] = {n.code: n for n in NATURES}
ACCOMPANYING: frozenset[str] = frozenset(n.code for n in NATURES if n.accompagne)


def accompanies(code: str) -> bool:
    return code in ACCOMPANYING
