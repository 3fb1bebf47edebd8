"""Reference lists offered to candidates (domain 2.2): zones per department, M2 options.

These are reference data of the académie (names of places, disciplines, universities), not
sentences; departments may replace the zones in their settings (`valeurs["zones"]`).
"""

from __future__ import annotations

ZONES: dict[str, tuple[str, ...]] = {
    "062": (
        "Arras",
        "Béthune",
        "Boulogne-sur-Mer",
        "Calais",
        "Hénin-Carvin",
        "Lens",
        "Liévin",
        "Montreuil",
        "Saint-Omer",
    ),
    "059": (
        "Lille",
        "Roubaix",
        "Tourcoing",
        "Villeneuve-d'Ascq",
        "Douai",
        "Valenciennes",
        "Cambrai",
        "Dunkerque",
        "Maubeuge",
        "Avesnes-sur-Helpe",
        "Hazebrouck",
    ),
}

RQTH = ("oui", "non", "en_cours")
TEMPS = ("plein", "partiel")

DISCIPLINES_1D = ("Apprentissage",)
DISCIPLINES_2D = (
    "Allemand",
    "Anglais",
    "Arts plastiques",
    "Documentation",
    "Économie et gestion",
    "Éducation musicale",
    "Éducation physique et sportive",
    "Espagnol",
    "Histoire-géographie",
    "Lettres classiques",
    "Lettres modernes",
    "Mathématiques",
    "Philosophie",
    "Physique-chimie",
    "Sciences de la vie et de la Terre",
    "Sciences économiques et sociales",
    "Technologie",
)
UNIVERSITES = (
    "Université de Lille",
    "Université d'Artois",
    "Université du Littoral Côte d'Opale",
    "Université Polytechnique Hauts-de-France",
    "Université catholique de Lille",
)
COMPOSANTES = (
    "INSPE Lille HdF — site de Villeneuve-d'Ascq",
    "INSPE Lille HdF — site de Lille",
    "INSPE Lille HdF — site d'Arras",
    "INSPE Lille HdF — site de Douai",
    "INSPE Lille HdF — site d'Outreau",
    "INSPE Lille HdF — site de Valenciennes",
    "INSPE Lille HdF — site de Gravelines",
)
NIVEAUX = ("M1",)
FORMATIONS = {
    "M2_1D_NORD": ("Master MEEF mention 1er degré",),
    "M2_1D_PDC": ("Master MEEF mention 1er degré",),
    "M2_2D_LILLE": ("Master MEEF mention 2nd degré",),
}


# M2 campaigns recruit for a given department, or for the whole académie (2nd degré).
ZONE_DEPARTEMENTS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "M2_1D_NORD": ("059",),
    "M2_1D_PDC": ("062",),
    "M2_2D_LILLE": ("059", "062"),
}


def zones_for(
    departement: str | None, type_: str | None = None, overrides: dict[str, object] | None = None
) -> tuple[str, ...]:
    """Zones offered: the campaign's departments for M2, else the candidate's department."""
    if type_ in ZONE_DEPARTEMENTS_BY_TYPE:
        return tuple(z for dep in ZONE_DEPARTEMENTS_BY_TYPE[type_] for z in ZONES[dep])
    zones = (overrides or {}).get("zones")
    if isinstance(zones, list) and zones:
        return tuple(str(z) for z in zones)
    return ZONES.get(departement or "", ZONES["062"])


def disciplines_for(type_: str) -> tuple[str, ...]:
    return DISCIPLINES_2D if type_ == "M2_2D_LILLE" else DISCIPLINES_1D
