"""Who to write to (domain 2.7): the platform address for technical questions, the campaign
address for recruitment questions, per department and candidature type. Departments may
override these defaults in their settings (`parametres_departement.valeurs["contacts"]`)."""

from __future__ import annotations

from typing import NamedTuple


class Contacts(NamedTuple):
    plateforme: str
    campagne: str


PLATEFORME = "assistance-acloe@ac-lille.fr"
DEFAULTS: dict[str, Contacts] = {
    "059": Contacts(PLATEFORME, "ce.ia59-recrutement-aesh@ac-lille.fr"),
    "062": Contacts(PLATEFORME, "ce.ia62-recrutement-aesh@ac-lille.fr"),
}
# The M2 2nd degré campaign is académie-wide.
ACADEMIE_M2_2D = "ce.recrutement-m2-alternance@ac-lille.fr"
BY_TYPE: dict[str, str] = {
    "M2_1D_NORD": "ce.ia59-m2-alternance@ac-lille.fr",
    "M2_1D_PDC": "ce.ia62-m2-alternance@ac-lille.fr",
    "M2_2D_LILLE": ACADEMIE_M2_2D,
}


def contacts_for(
    departement: str | None, type_: str | None = None, overrides: dict[str, object] | None = None
) -> Contacts:
    base = DEFAULTS.get(departement or "", Contacts(PLATEFORME, DEFAULTS["062"].campagne))
    if overrides:
        base = Contacts(
            str(overrides.get("plateforme") or base.plateforme),
            str(overrides.get("campagne") or base.campagne),
        )
    if type_ in BY_TYPE:
        return Contacts(base.plateforme, BY_TYPE[type_])
    return base
