"""Deterministic demo data: one CSV file per import kind of interfaces section 4.

``generate(scale, seed, out)`` writes etablissements.csv, eleves.csv,
scolarisations.csv, decisions.csv, aesh.csv, missions.csv, affectations.csv,
accompagnements.csv and candidats.csv into ``out`` and returns the row count
per kind. Everything random comes from one ``random.Random(seed)``; the
current date is only read when ``annee`` is not given, so the same
(scale, seed, annee) always gives byte-identical files.

Departments are generated one after the other and their rows streamed to the
writers; only the current department's records are kept in memory.
"""

from __future__ import annotations

import csv
import random
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import accumulate
from math import cos, floor, radians
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from core.services.imports.kinds import SPECS

from .places import (
    COMMUNE_ROOTS,
    COMMUNE_SAINTS,
    COMMUNE_SUFFIXES,
    DEPARTEMENTS,
    DEPARTEMENTS_BY_CODE,
    REAL_COMMUNES,
    REAL_SECTEUR_CITIES,
    Commune,
    Departement,
)

# The columns of each file, as the importer reads them (interfaces §4), in its order.
HEADERS: dict[str, tuple[str, ...]] = {
    kind: tuple(column.name for column in spec.columns) for kind, spec in SPECS.items()
}
KINDS: tuple[str, ...] = tuple(HEADERS)

SCALES = ("departement", "national")
DEFAULT_DEPARTEMENT = "062"
NATIONAL_DECISIONS = 300_000
NATIONAL_AESH = 140_000
DEPARTEMENT_FRACTION = 0.01
DECISIONS_PER_STUDENT = 1.15
STUDENTS_PER_ETABLISSEMENT = 4.0
HOURS_FULL_TIME = 41.0  # weekly hours of a 100 % mission when HR gives none
ANOMALY_RATE = 0.015  # target share of accompaniments per anomaly type
DEMO_MAIL_DOMAIN = "exemple.test"

PRENOMS: tuple[str, ...] = (
    "Emma",
    "Louise",
    "Jade",
    "Alice",
    "Chloé",
    "Lina",
    "Léa",
    "Rose",
    "Anna",
    "Mila",
    "Inès",
    "Ambre",
    "Julia",
    "Mia",
    "Léna",
    "Manon",
    "Juliette",
    "Zoé",
    "Agathe",
    "Lou",
    "Camille",
    "Sarah",
    "Éva",
    "Romane",
    "Louna",
    "Nina",
    "Jeanne",
    "Iris",
    "Lola",
    "Adèle",
    "Margaux",
    "Clémence",
    "Charlotte",
    "Lucie",
    "Maëlys",
    "Océane",
    "Émilie",
    "Élise",
    "Héloïse",
    "Noémie",
    "Anaïs",
    "Mathilde",
    "Capucine",
    "Apolline",
    "Céleste",
    "Éléonore",
    "Gabrielle",
    "Victoire",
    "Salomé",
    "Maëlle",
    "Clara",
    "Pauline",
    "Justine",
    "Amandine",
    "Aurélie",
    "Sandrine",
    "Nathalie",
    "Isabelle",
    "Sophie",
    "Valérie",
    "Stéphanie",
    "Céline",
    "Virginie",
    "Karine",
    "Laëtitia",
    "Séverine",
    "Hélène",
    "Françoise",
    "Chantal",
    "Sylvie",
    "Élodie",
    "Mélanie",
    "Gaëlle",
    "Bérénice",
    "Anaëlle",
    "Yasmine",
    "Aïcha",
    "Naïs",
    "Thaïs",
    "Cécile",
    "Gabriel",
    "Léo",
    "Raphaël",
    "Louis",
    "Arthur",
    "Jules",
    "Adam",
    "Maël",
    "Lucas",
    "Hugo",
    "Noah",
    "Liam",
    "Gabin",
    "Sacha",
    "Paul",
    "Nathan",
    "Aaron",
    "Mohamed",
    "Ethan",
    "Tom",
    "Éden",
    "Léon",
    "Noé",
    "Timéo",
    "Théo",
    "Nolan",
    "Mathis",
    "Enzo",
    "Axel",
    "Antoine",
    "Baptiste",
    "Clément",
    "Maxime",
    "Alexandre",
    "Thomas",
    "Nicolas",
    "Julien",
    "Sébastien",
    "Jérôme",
    "Stéphane",
    "Frédéric",
    "Cédric",
    "Guillaume",
    "Benoît",
    "François",
    "Rémi",
    "Jérémy",
    "Grégory",
    "Loïc",
    "Anthony",
    "Kévin",
    "Mickaël",
    "Yannick",
    "Hervé",
    "Pascal",
    "Thierry",
    "Éric",
    "Gaël",
    "Joël",
    "Noël",
    "Aurélien",
    "Valentin",
    "Quentin",
    "Corentin",
    "Bastien",
    "Kylian",
    "Amir",
    "Yanis",
    "Rayan",
    "Ilyès",
    "Mathéo",
    "Célestin",
    "Côme",
    "Élie",
    "Étienne",
    "Félix",
    "Gaspard",
    "Isaac",
    "Joseph",
    "Marius",
    "Malo",
    "Martin",
    "Nathanaël",
    "Oscar",
    "Simon",
    "Victor",
    "Youssef",
    "Zacharie",
)

NOMS: tuple[str, ...] = (
    "Martin",
    "Bernard",
    "Thomas",
    "Petit",
    "Robert",
    "Richard",
    "Durand",
    "Dubois",
    "Moreau",
    "Laurent",
    "Simon",
    "Michel",
    "Lefèvre",
    "Leroy",
    "Roux",
    "David",
    "Bertrand",
    "Morel",
    "Fournier",
    "Girard",
    "Bonnet",
    "Dupont",
    "Lambert",
    "Fontaine",
    "Rousseau",
    "Vincent",
    "Muller",
    "Lefebvre",
    "Faure",
    "André",
    "Mercier",
    "Blanc",
    "Guérin",
    "Boyer",
    "Garnier",
    "Chevalier",
    "François",
    "Legrand",
    "Gauthier",
    "Garcia",
    "Perrin",
    "Robin",
    "Clément",
    "Morin",
    "Nicolas",
    "Henry",
    "Roussel",
    "Mathieu",
    "Gautier",
    "Masson",
    "Marchand",
    "Duval",
    "Denis",
    "Dumont",
    "Lemaire",
    "Noël",
    "Meyer",
    "Dufour",
    "Meunier",
    "Brun",
    "Blanchard",
    "Giraud",
    "Joly",
    "Rivière",
    "Lucas",
    "Brunet",
    "Gaillard",
    "Barbier",
    "Arnaud",
    "Martinez",
    "Gérard",
    "Roche",
    "Renard",
    "Schmitt",
    "Roy",
    "Leroux",
    "Colin",
    "Vidal",
    "Caron",
    "Picard",
    "Roger",
    "Fabre",
    "Aubert",
    "Lemoine",
    "Renaud",
    "Dumas",
    "Lacroix",
    "Olivier",
    "Philippe",
    "Bourgeois",
    "Pierre",
    "Benoît",
    "Rey",
    "Leclerc",
    "Payet",
    "Rolland",
    "Leclercq",
    "Guillaume",
    "Lecomte",
    "Lopez",
    "Dupuy",
    "Guillot",
    "Hubert",
    "Berger",
    "Carpentier",
    "Dupré",
    "Vasseur",
    "Delattre",
    "Delcroix",
    "Descamps",
    "Devos",
    "Lemaître",
    "Lebrun",
    "Bouchez",
    "Prévost",
    "Poulain",
    "Bénard",
    "Ménard",
    "Crépin",
    "Thévenin",
    "Lebœuf",
    "Léger",
    "Hébert",
    "Chrétien",
    "Frémont",
    "Régnier",
    "Guéry",
    "Lefrançois",
    "Bocquet",
    "Delmotte",
    "Dujardin",
    "Leleu",
    "Lesage",
    "Boulanger",
    "Cordier",
    "Delhaye",
    "Delplace",
    "Deprez",
    "Duhamel",
    "Flament",
    "Fiévet",
    "Caudron",
    "Vandamme",
    "Verhaeghe",
    "Vermeulen",
    "Benali",
    "Haddad",
    "Diallo",
    "Traoré",
    "Nguyen",
    "Da Silva",
    "Ferreira",
    "Kaya",
    "Mendy",
    "Moreira",
    "Desmarais",
    "Béghin",
    "Wauquier",
)

PATRONS: tuple[str, ...] = (
    "Jean Jaurès",
    "Jules Ferry",
    "Victor Hugo",
    "Pablo Picasso",
    "Louis Pasteur",
    "Jean Moulin",
    "Marie Curie",
    "Jacques Prévert",
    "Paul Langevin",
    "Albert Camus",
    "Jean Macé",
    "Anatole France",
    "Émile Zola",
    "Condorcet",
    "Voltaire",
    "Jean de La Fontaine",
    "Antoine de Saint-Exupéry",
    "Paul Éluard",
    "Louis Aragon",
    "Georges Brassens",
    "Jules Verne",
    "Marcel Pagnol",
    "Alphonse Daudet",
    "Pierre Mendès France",
    "Simone Veil",
    "Lucie Aubrac",
    "Germaine Tillion",
    "Louise Michel",
    "Jean Rostand",
    "Paul Bert",
    "Ferdinand Buisson",
    "Léon Blum",
    "Aimé Césaire",
    "Olympe de Gouges",
    "George Sand",
    "Colette",
    "Molière",
    "Jean Racine",
    "Montaigne",
    "Diderot",
    "Descartes",
    "Blaise Pascal",
    "Claude Monet",
    "Henri Matisse",
    "Auguste Renoir",
    "Arthur Rimbaud",
    "Paul Verlaine",
    "Guillaume Apollinaire",
    "Charles Péguy",
    "Romain Rolland",
    "Jean Zay",
    "Joliot-Curie",
    "Robespierre",
    "Gambetta",
    "Lamartine",
    "Alfred de Musset",
    "Charles Perrault",
    "Hector Berlioz",
    "Maurice Ravel",
    "Lavoisier",
    "Gustave Eiffel",
    "Louis Blériot",
    "Edmond Rostand",
    "Jean Monnet",
    "Nelson Mandela",
    "Rosa Parks",
    "Anne Frank",
    "Jean-Jacques Rousseau",
    "Camille Claudel",
    "Marguerite Yourcenar",
    "Charles de Gaulle",
    "Irène Joliot-Curie",
    "Jean Giono",
    "Boris Vian",
    "Françoise Dolto",
    "Maria Montessori",
)
PLACE_NAMES: tuple[str, ...] = (
    "Les Tilleuls",
    "Les Glycines",
    "Le Petit Prince",
    "Les Marronniers",
    "Les Hirondelles",
    "du Centre",
    "Les Peupliers",
    "Les Lilas",
    "Les Coquelicots",
    "Les Capucines",
    "Les Érables",
    "du Parc",
    "de la Plaine",
    "des Prés",
    "Les Mésanges",
    "Le Bois Joli",
)

GRADES: tuple[str, ...] = (
    "PS",
    "MS",
    "GS",
    "CP",
    "CE1",
    "CE2",
    "CM1",
    "CM2",
    "6e",
    "5e",
    "4e",
    "3e",
    "2de",
    "1re",
    "Tle",
)
GRADE_WEIGHTS: tuple[int, ...] = (2, 3, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 3, 3, 3)
# kind of établissement -> (first grade, last grade) it schools
CYCLES: dict[str, tuple[int, int]] = {
    "EM": (0, 2),
    "EE": (3, 7),
    "EP": (0, 7),
    "C": (8, 11),
    "L": (12, 14),
}
GROUP_OF_KIND: dict[str, tuple[str, ...]] = {
    "EM": ("mat",),
    "EE": ("elem",),
    "EP": ("mat", "elem"),
    "C": ("col",),
    "L": ("lyc",),
}


def _group_of_grade(g: int) -> str:
    if g <= 2:
        return "mat"
    if g <= 7:
        return "elem"
    if g <= 11:
        return "col"
    return "lyc"


# nature tables (domain 3.2): (EPP natures, ASSED natures) per category
NATURES: dict[str, tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]]] = {
    "P": ((("HP1D", 55), ("HP2D", 35), ("HPIN", 10)), (("PI1D", 55), ("PI2D", 35), ("PIIN", 10))),
    "I": ((("HI1D", 60), ("HI2D", 40)), (("EI1D", 60), ("EI2D", 40))),
    "M": ((("HM1D", 60), ("HM2D", 40)), (("AM1D", 60), ("AM2D", 40))),
    "N": (
        (("AHRE", 20), ("HC1D", 30), ("HC2D", 20), ("AE1D", 15), ("AE2D", 15)),
        (("HC1O", 60), ("HC2O", 40)),
    ),
}

T = TypeVar("T")


class _RowWriter(Protocol):
    def writerow(self, row: Sequence[str], /) -> object: ...


class _Picker(Generic[T]):
    """Weighted choice with precomputed cumulative weights."""

    __slots__ = ("cum", "items", "total")

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        self.items = tuple(items)
        self.cum = list(accumulate(weights))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random) -> T:
        i = bisect_right(self.cum, rng.random() * self.total)
        return self.items[min(i, len(self.items) - 1)]


def _picker(pairs: Sequence[tuple[T, float]]) -> _Picker[T]:
    return _Picker([p[0] for p in pairs], [p[1] for p in pairs])


@dataclass(slots=True)
class _Etab:
    idx: int
    rne: str
    kind: str
    commune: Commune
    secteur: str
    pial: str = ""


@dataclass(slots=True)
class _Scol:
    etab: _Etab
    debut: date
    fin: date


@dataclass(slots=True)
class _Decision:
    id: str
    indiv: bool
    heures: float
    debut: date
    fin: date
    scols: list[_Scol]
    etat: str
    successor: bool = False


@dataclass(slots=True)
class _Mission:
    id: str
    debut: date
    fin: date  # date.max when open-ended
    cap: float  # weekly hours (given, or estimated from the quotité)
    known: bool  # hours given by HR
    cat: str  # P (PIAL), I (individual), M (mutualised), N (not accompanying)
    pial: str
    rem: list[float] = field(default_factory=list)  # free hours per month of the year


@dataclass(slots=True)
class _MutEntry:
    dec: _Decision
    etab: _Etab
    debut: date
    fin: date
    partial: bool


def _school_year_of(d: date) -> int:
    return d.year if d.month >= 9 else d.year - 1


def _add_months(d: date, months: int) -> date:
    m = d.month - 1 + months
    y = d.year + m // 12
    m = m % 12 + 1
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    last = (nxt - timedelta(days=1)).day
    return date(y, m, min(d.day, last))


def _half(x: float) -> float:
    return round(x * 2) / 2


def _fmt_h(x: float) -> str:
    return str(int(x)) if x == int(x) else f"{x:.1f}"


_ASCII_CACHE: dict[str, str] = {}


def _slug(text: str) -> str:
    """prenom/nom -> lowercase ASCII for mail addresses ("Lebœuf" -> "leboeuf")."""
    s = _ASCII_CACHE.get(text)
    if s is None:
        t = text.lower().replace("œ", "oe").replace("æ", "ae")
        t = unicodedata.normalize("NFKD", t).encode("ascii", "ignore").decode("ascii")
        s = "".join(ch for ch in t if ch.isalnum() or ch == "-")
        _ASCII_CACHE[text] = s
    return s


def _uai(code: str, number: int) -> str:
    digits = f"{code}{number:04d}"
    return digits + "ABCDEFGHJKLMNPRSTUVWXYZ"[int(digits) % 23]


class _Generator:
    def __init__(self, rng: random.Random, annee: int, writers: dict[str, _RowWriter]) -> None:
        self.rng = rng
        self.y = annee
        self.start = date(annee, 9, 1)
        self.end = date(annee + 1, 8, 31)
        self.as_of = date(annee, 11, 15)  # reference "today" for candidatures
        self.annee_label = f"{annee}-{annee + 1}"
        self.writers = writers
        self.counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.seq: dict[str, int] = {}
        self.mail_seen: dict[str, int] = {}
        self.grade_picker = _Picker(range(len(GRADES)), GRADE_WEIGHTS)
        self.kind_picker = _picker([("EM", 15), ("EE", 20), ("EP", 40), ("C", 18), ("L", 7)])
        self.quotite_picker = _picker(
            [
                (62, 30),
                (75, 10),
                (80, 10),
                (100, 8),
                (50, 8),
                (55, 4),
                (60, 5),
                (65, 4),
                (70, 5),
                (85, 4),
                (90, 6),
                (95, 2),
            ]
        )
        self.transport_picker = _picker([("voiture", 60), ("transports en commun", 22), ("", 18)])
        self.statut_picker = _picker(
            [
                ("incomplete", 30),
                ("complete", 27),
                ("en_examen", 20),
                ("retenue", 8),
                ("non_retenue", 6),
                ("retiree", 5),
                ("supprimee", 4),
            ]
        )
        self.nature_pickers = {
            (cat, epp): _picker(NATURES[cat][0 if epp else 1])
            for cat in NATURES
            for epp in (True, False)
        }
        self.n_pieces = _picker([(1, 50), (2, 37), (3, 13)])
        self.n_pieces_mutual = _picker([(1, 70), (2, 25), (3, 5)])
        self.group_size = _picker([(1, 15), (2, 35), (3, 30), (4, 20)])

    # ---- low-level helpers -------------------------------------------------
    def _id(self, prefix: str) -> str:
        n = self.seq.get(prefix, 0) + 1
        self.seq[prefix] = n
        return f"{prefix}{n:07d}"

    def _write(self, kind: str, row: Sequence[str]) -> None:
        self.writers[kind].writerow(row)
        self.counts[kind] += 1

    def _name(self) -> tuple[str, str]:
        rng = self.rng
        return NOMS[rng.randrange(len(NOMS))], PRENOMS[rng.randrange(len(PRENOMS))]

    def _demo_mail(self, prenom: str, nom: str) -> str:
        base = f"{_slug(prenom)}.{_slug(nom)}"
        n = self.mail_seen.get(base, 0) + 1
        self.mail_seen[base] = n
        return f"{base}@{DEMO_MAIL_DOMAIN}" if n == 1 else f"{base}{n}@{DEMO_MAIL_DOMAIN}"

    def _phone(self) -> str:
        r = self.rng.randrange(100_000_000)
        return f"06 {r // 1_000_000:02d} {r // 10_000 % 100:02d} {r // 100 % 100:02d} {r % 100:02d}"

    def _month(self, d: date) -> int:
        return (d.year - self.y) * 12 + d.month - 9

    # ---- geography ---------------------------------------------------------
    def _communes(self, dep: Departement) -> tuple[list[Commune], list[Commune], list[float]]:
        """(communes, secteur cities, weights for placing établissements)."""
        rng = self.rng
        real = REAL_COMMUNES.get(dep.code)
        if real is not None:
            communes = list(real)
            cities = communes[: REAL_SECTEUR_CITIES.get(dep.code, 10)]
            return communes, cities, [1.0 / (1.0 + 0.08 * i) for i in range(len(communes))]
        pref = dep.prefecture
        if dep.code == "075":
            communes = [
                Commune(
                    "Paris",
                    f"750{i:02d}",
                    round(pref.latitude + rng.uniform(-dep.rayon, dep.rayon), 4),
                    round(pref.longitude + rng.uniform(-1.5 * dep.rayon, 1.5 * dep.rayon), 4),
                )
                for i in range(1, 21)
            ]
            return communes, [pref], [1.0] * len(communes)
        communes = [pref]
        names = {pref.nom}
        kx = 1.0 / max(0.3, cos(radians(dep.centre_lat)))
        while len(communes) < 11:
            if rng.random() < 0.35:
                nom = COMMUNE_SAINTS[rng.randrange(len(COMMUNE_SAINTS))]
            else:
                nom = COMMUNE_ROOTS[rng.randrange(len(COMMUNE_ROOTS))]
            nom += COMMUNE_SUFFIXES[rng.randrange(len(COMMUNE_SUFFIXES))]
            if nom in names:
                continue
            names.add(nom)
            if dep.code.startswith("97"):
                cp = f"{dep.code}{rng.randrange(1, 10)}0"
            else:
                cp = f"{dep.code[1:]}{rng.randrange(1, 100):02d}0"
            lat = dep.centre_lat + rng.uniform(-dep.rayon, dep.rayon)
            lon = dep.centre_lon + rng.uniform(-dep.rayon, dep.rayon) * kx
            communes.append(Commune(nom, cp, round(lat, 4), round(lon, 4)))
        return communes, communes[:8], [4.0] + [1.0] * (len(communes) - 1)

    # ---- one department ----------------------------------------------------
    def department(self, dep: Departement, n_decisions: float, n_aesh: float) -> None:
        rng = self.rng
        domain = f"ac-{dep.academie}.fr"
        communes, cities, cweights = self._communes(dep)
        commune_picker = _Picker(communes, cweights)

        n_students = max(8, round(n_decisions / DECISIONS_PER_STUDENT))
        n_etab = min(9999, max(12, round(n_students / STUDENTS_PER_ETABLISSEMENT)))

        # secteurs: "<city> <n>", each commune attached to its nearest city
        n_sect = rng.randint(8, 15)
        n_sect = max(1, min(n_sect, n_etab // 4))
        city_secteurs: list[list[str]] = [[] for _ in cities]
        secteurs: list[str] = []
        for i in range(n_sect):
            name = f"{cities[i % len(cities)].nom} {i // len(cities) + 1}"
            city_secteurs[i % len(cities)].append(name)
            secteurs.append(name)
        used_cities = [i for i, s in enumerate(city_secteurs) if s]
        nearest: dict[str, list[str]] = {}
        for c in communes:
            key = f"{c.nom}|{c.code_postal}"
            best = min(
                used_cities,
                key=lambda i: (
                    (cities[i].latitude - c.latitude) ** 2
                    + (cities[i].longitude - c.longitude) ** 2
                ),
            )
            nearest[key] = city_secteurs[best]
        referents: dict[str, str] = {}
        seen_ref: set[str] = set()
        for s in secteurs:
            nom, prenom = self._name()
            mail = f"{_slug(prenom)}.{_slug(nom)}"
            while mail in seen_ref:
                mail += "2"
            seen_ref.add(mail)
            referents[s] = f"{mail}@{domain}"

        # établissements
        numbers = sorted(rng.sample(range(1, 10000), n_etab))
        etabs: list[_Etab] = []
        names: list[str] = []
        for i, num in enumerate(numbers):
            kind = self.kind_picker.pick(rng)
            com = commune_picker.pick(rng)
            sect_choices = nearest[f"{com.nom}|{com.code_postal}"]
            sect = sect_choices[rng.randrange(len(sect_choices))]
            etabs.append(_Etab(i, _uai(dep.code, num), kind, com, sect))
            names.append(self._etab_name(kind))
        # PIAL: groups of 10-40 établissements of a secteur area, ~10 % hors PIAL
        in_pial = [e for e in etabs if rng.random() >= 0.10]
        in_pial.sort(key=lambda e: (e.secteur, e.commune.nom, e.rne))
        groups: list[list[_Etab]] = []
        i = 0
        while i < len(in_pial):
            size = rng.randint(10, 40)
            chunk = in_pial[i : i + size]
            i += size
            if len(chunk) < 10 and groups:  # too small: merge, or share with the previous
                merged = groups.pop() + chunk
                if len(merged) <= 40:
                    groups.append(merged)
                else:
                    half = len(merged) // 2
                    groups.extend((merged[:half], merged[half:]))
            else:
                groups.append(chunk)
        pial_members: dict[str, list[_Etab]] = {}
        pial_tete: dict[str, _Etab] = {}
        pials: list[str] = []
        for grp in groups:
            colleges = [e for e in grp if e.kind == "C"]
            tete = colleges[rng.randrange(len(colleges))] if colleges else grp[0]
            for e in grp:
                e.pial = tete.rne
            pial_members[tete.rne] = grp
            pial_tete[tete.rne] = tete
            pials.append(tete.rne)
        hors = [e for e in etabs if not e.pial]
        for e, nom in zip(etabs, names, strict=True):
            lat = e.commune.latitude + rng.uniform(-0.008, 0.008)
            lon = e.commune.longitude + rng.uniform(-0.012, 0.012)
            self._write(
                "etablissements",
                (
                    e.rne,
                    f"{nom}",
                    e.commune.nom,
                    e.commune.code_postal,
                    f"{lat:.5f}",
                    f"{lon:.5f}",
                    e.pial,
                    e.secteur,
                    f"ce.{e.rne.lower()}@{domain}",
                ),
            )

        # some établissements (ULIS, large schools) gather many accompanied students
        weight = [rng.lognormvariate(0.0, 0.75) for _ in etabs]
        ulis_rate = {"EM": 0.0, "EE": 0.1, "EP": 0.1, "C": 0.25, "L": 0.2}
        ulis_etabs = [e for e in etabs if rng.random() < ulis_rate[e.kind]]
        by_group: dict[str, list[_Etab]] = {"mat": [], "elem": [], "col": [], "lyc": []}
        by_sg: dict[tuple[str, str], list[_Etab]] = {}
        for e in etabs:
            for grp_name in GROUP_OF_KIND[e.kind]:
                by_group[grp_name].append(e)
                by_sg.setdefault((e.secteur, grp_name), []).append(e)
        all_picker = _Picker(etabs, weight)
        group_pickers = {
            k: _Picker(v, [weight[e.idx] for e in v]) for k, v in by_group.items() if v
        }
        sg_pickers = {k: _Picker(v, [weight[e.idx] for e in v]) for k, v in by_sg.items()}
        ulis_pickers: dict[str, _Picker[_Etab]] = {}
        for gname in by_group:
            lst = [e for e in ulis_etabs if gname in GROUP_OF_KIND[e.kind]]
            if lst:
                ulis_pickers[gname] = _Picker(lst, [1.0] * len(lst))

        def pick_ulis(g: int) -> _Etab | None:
            p = ulis_pickers.get(_group_of_grade(g))
            return p.pick(rng) if p is not None else None

        def pick_etab(g: int, secteur: str, exclude: _Etab | None = None) -> _Etab:
            gname = _group_of_grade(g)
            p: _Picker[_Etab] | None = None
            if secteur and rng.random() < 0.85:
                p = sg_pickers.get((secteur, gname))
            if p is None or (exclude is not None and len(p.items) < 2):
                p = group_pickers.get(gname, all_picker)
            e = p.pick(rng)
            tries = 0
            while exclude is not None and e is exclude and tries < 6 and len(p.items) > 1:
                e = p.pick(rng)
                tries += 1
            return e

        # students, scolarisations, decisions
        decisions: list[_Decision] = []
        pial_need: dict[str, float] = dict.fromkeys(pials, 0.0)
        for _ in range(n_students):
            decisions.extend(self._student(pick_etab, pick_ulis, referents, pial_need))

        # AESH, missions, affectations
        missions = self._staff(
            n_aesh, pials, pial_need, pial_members, pial_tete, hors, etabs, commune_picker
        )
        pools: dict[str, list[_Mission]] = {}
        hors_i: list[_Mission] = []
        hors_m: list[_Mission] = []
        all_acc: list[_Mission] = []
        for m, affected in missions:
            if m.cat == "N":
                continue
            if m.cat == "P":
                if affected:
                    pools.setdefault(m.pial, []).append(m)
                    all_acc.append(m)
            else:
                (hors_i if m.cat == "I" else hors_m).append(m)
                all_acc.append(m)

        # accompagnements
        acc = _Accompagnements(self, pools, hors_i, hors_m, all_acc, pial_members, hors)
        acc.run(decisions, len(etabs))

        # candidats
        self._candidats(dep, decisions, cities, used_cities)

    def _etab_name(self, kind: str) -> str:
        rng = self.rng
        patron = PATRONS[rng.randrange(len(PATRONS))]
        if kind == "EM":
            if rng.random() < 0.4:
                patron = PLACE_NAMES[rng.randrange(len(PLACE_NAMES))]
            return f"École maternelle {patron}"
        if kind == "EE":
            return f"École élémentaire {patron}"
        if kind == "EP":
            if rng.random() < 0.15:
                patron = PLACE_NAMES[rng.randrange(len(PLACE_NAMES))]
            return f"École primaire {patron}"
        if kind == "C":
            return f"Collège {patron}"
        r = rng.random()
        prefix = "Lycée" if r < 0.5 else "Lycée professionnel" if r < 0.8 else "Lycée polyvalent"
        return f"{prefix} {patron}"

    # ---- students -----------------------------------------------------------
    def _decision_start(self, back_max: int) -> tuple[date, int]:
        """(start date, school year of the start) of a decision, <= 2 years back."""
        rng = self.rng
        r = rng.random()
        j = 0 if r < 0.4 else 1 if r < 0.75 else 2
        j = min(j, back_max)
        sy = self.y - j
        if rng.random() < 0.7:
            return date(sy, 9, 1), sy
        return date(sy, 9, 1) + timedelta(days=rng.randrange(0, 300)), sy

    def _decision_end(self, k: int) -> date:
        """End of a decision ending in school year Y+k (k >= 0), at or after 31 Aug Y+1."""
        rng = self.rng
        if k == 0 or rng.random() < 0.8:
            return date(self.y + k + 1, 8, 31)
        return date(self.y + k, 9, 1) + timedelta(days=rng.randrange(0, 365))

    def _hours(self) -> float:
        rng = self.rng
        if rng.random() < 0.75:
            return float(rng.randint(6, 24))
        return rng.randint(12, 47) / 2

    def _student(
        self,
        pick_etab: _PickEtab,
        pick_ulis: Callable[[int], _Etab | None],
        referents: dict[str, str],
        pial_need: dict[str, float],
    ) -> list[_Decision]:
        rng = self.rng
        y, start, end = self.y, self.start, self.end
        g = self.grade_picker.pick(rng)
        # ULIS pupils gather in the few établissements that have a ULIS
        ulis = g >= 3 and rng.random() < 0.12
        found = pick_ulis(g) if ulis else None
        if found is None:
            ulis = False
            found = pick_etab(g, "")
        e = found
        lo, hi = CYCLES[e.kind]
        g = min(max(g, lo), hi)
        segpa = not ulis and e.kind == "C" and rng.random() < 0.06

        def classe(grade: int) -> str:
            if ulis:
                return "ULIS"
            if segpa and 8 <= grade <= 11:
                return f"{GRADES[grade]} SEGPA"
            return GRADES[grade]

        sid = self._id("EL")
        nom, prenom = self._name()
        by = y - (g + 3) - (1 if rng.random() < 0.1 else 0) - (rng.randint(0, 2) if ulis else 0)
        by = min(max(by, y - 20), y - 3)
        birth = date(by, 1, 1) + timedelta(days=rng.randrange(365))
        r = rng.random()
        etat = "gele" if r < 0.02 else "cloture" if r < 0.03 else "actif"
        self._write(
            "eleves",
            (sid, nom, prenom, birth.isoformat(), e.secteur, etat, referents[e.secteur]),
        )

        # decisions: (indiv, heures, debut, fin, origine)
        back_max = min(2, g)
        specs: list[tuple[bool, float, date, date, str]] = []
        indiv = rng.random() < (0.25 if ulis else 0.64)
        origine = "premiere_demande" if rng.random() < 0.35 else "reexamen"
        u = rng.random()
        if u < 0.15:  # two successive decisions, the first ending inside the year
            x = start + timedelta(days=rng.randrange(30, 330))
            d1, _ = self._decision_start(back_max)
            if d1 > x - timedelta(days=14):
                d1 = start
            specs.append((indiv, self._hours(), d1, x, origine))
            indiv2 = indiv if rng.random() < 0.75 else not indiv
            k = rng.choice((0, 0, 1, 1, 2))
            specs.append(
                (indiv2, self._hours(), x + timedelta(days=1), self._decision_end(k), "reexamen")
            )
        elif u < 0.208:  # ends inside the current year, no successor
            x = start + timedelta(days=rng.randrange(30, 340))
            d1, _ = self._decision_start(back_max)
            if d1 > x - timedelta(days=14):
                d1 = start
            specs.append((indiv, self._hours(), d1, x, origine))
        else:
            d1, sy = self._decision_start(back_max)
            j = y - sy
            kr = rng.random()
            k = min(0 if kr < 0.4 else 1 if kr < 0.8 else 2, 2 - j)
            specs.append((indiv, self._hours(), d1, self._decision_end(k), origine))

        min_sy = min(_school_year_of(s[2]) for s in specs)
        max_sy = max(_school_year_of(s[3]) for s in specs)

        # scolarisations (1 or 2, consecutive, covering the current school year)
        start_sy = max(min_sy - (1 if rng.random() < 0.3 else 0), y - (g - lo))
        extra = 1 if rng.random() < 0.2 else 0
        end_sy = min(max_sy + extra, y + (hi - g))
        scols: list[tuple[_Etab, date, date, str]] = []
        r = rng.random()
        shape = "single"
        if r < 0.03:
            shape = "gap"
        elif g == lo and g > 0 and min_sy < y and rng.random() < 0.6:
            shape = "prev"
        elif g == hi and g < 14 and max_sy > y and rng.random() < 0.5:
            shape = "next"
        else:
            r2 = rng.random()
            if r2 < 0.07:
                shape = "mid"
            elif r2 < 0.13 and g > 0:
                shape = "prev"
            elif r2 < 0.17 and g < 14 and max_sy > y:
                shape = "next"
        if shape == "single":
            scols.append((e, date(start_sy, 9, 1), date(end_sy + 1, 8, 31), classe(g)))
        elif shape == "prev":
            p = pick_etab(g - 1, e.secteur, e)
            plo = CYCLES[p.kind][0]
            psy = min(y - 1, max(min_sy - (1 if rng.random() < 0.3 else 0), y - 1 - (g - 1 - plo)))
            scols.append((p, date(psy, 9, 1), date(y, 8, 31), classe(g - 1)))
            scols.append((e, start, date(end_sy + 1, 8, 31), classe(g)))
        elif shape == "next":
            n = pick_etab(g + 1, e.secteur, e)
            nhi = CYCLES[n.kind][1]
            nsy = max(y + 1, min(max_sy + extra, y + 1 + (nhi - g - 1)))
            scols.append((e, date(start_sy, 9, 1), end, classe(g)))
            scols.append((n, date(y + 1, 9, 1), date(nsy + 1, 8, 31), classe(g + 1)))
        else:  # mid-year move, possibly with a gap of some weeks
            t = start + timedelta(days=rng.randrange(40, 260 if shape == "gap" else 300))
            e2 = e if shape == "gap" and rng.random() < 0.5 else pick_etab(g, e.secteur, e)
            hi2 = CYCLES[e2.kind][1]
            sy2 = max(y, min(max_sy + extra, y + (hi2 - g)))
            gap = timedelta(days=7 * rng.randint(2, 8)) if shape == "gap" else timedelta(0)
            scols.append((e, date(start_sy, 9, 1), t - timedelta(days=1), classe(g)))
            scols.append((e2, t + gap, date(sy2 + 1, 8, 31), classe(g)))
        scol_objs: list[_Scol] = []
        for et, a, b, cl in scols:
            self._write(
                "scolarisations",
                (sid, et.rne, a.isoformat(), b.isoformat(), cl, self._id("SC")),
            )
            scol_objs.append(_Scol(et, a, b))

        out: list[_Decision] = []
        for ind, h, a, b, orig in specs:
            did = self._id("DE")
            nature = "projet_cible" if rng.random() < 0.9 else "alternatif"
            self._write(
                "decisions",
                (
                    did,
                    sid,
                    "individuelle" if ind else "mutualisee",
                    _fmt_h(h) if ind else "",
                    orig,
                    nature,
                    a.isoformat(),
                    b.isoformat(),
                ),
            )
            out.append(_Decision(did, ind, h if ind else 0.0, a, b, scol_objs, etat))
            if e.pial:
                pial_need[e.pial] += h if ind else 5.0
        if len(out) == 2:
            out[0].successor = True
        return out

    # ---- AESH and missions ------------------------------------------------
    def _staff(
        self,
        n_aesh: float,
        pials: list[str],
        pial_need: dict[str, float],
        pial_members: dict[str, list[_Etab]],
        pial_tete: dict[str, _Etab],
        hors: list[_Etab],
        etabs: list[_Etab],
        commune_picker: _Picker[Commune],
    ) -> list[tuple[_Mission, bool]]:
        rng = self.rng
        y, start, end = self.y, self.start, self.end
        pial_picker = _Picker(pials, [pial_need[p] + 1.0 for p in pials]) if pials else None
        missions: list[tuple[_Mission, bool]] = []

        def one_mission(
            aid: str, epp: bool, contrat: str, debut: date, fin: date | None, quotite: int
        ) -> None:
            r = rng.random()
            cat = "P" if r < 0.80 else ("I" if rng.random() < 0.6 else "M") if r < 0.95 else "N"
            if pial_picker is None and cat == "P":
                cat = "I"
            nature = self.nature_pickers[(cat, epp)].pick(rng)
            pial = ""
            if pial_picker is not None and (cat == "P" or (cat == "N" and rng.random() < 0.4)):
                pial = pial_picker.pick(rng)
            if pial:
                members = pial_members[pial]
                employeur = (
                    pial_tete[pial] if rng.random() < 0.7 else members[rng.randrange(len(members))]
                )
            else:
                pool = hors or etabs
                employeur = pool[rng.randrange(len(pool))]
            est = floor(quotite * HOURS_FULL_TIME / 100 * 2) / 2
            known = rng.random() < 0.7
            heures = _half(quotite * HOURS_FULL_TIME / 100) if known else est
            mid = self._id("MI")
            self._write(
                "missions",
                (
                    mid,
                    aid,
                    contrat,
                    nature,
                    debut.isoformat(),
                    fin.isoformat() if fin else "",
                    str(quotite),
                    _fmt_h(heures) if known else "",
                    employeur.rne,
                    pial,
                ),
            )
            m = _Mission(mid, debut, fin or date.max, heures, known, cat, pial, [heures] * 12)
            affected = False
            if cat == "P" and pial and rng.random() < 0.85:
                affected = True
                vol = _fmt_h(heures) if known and rng.random() < 0.7 else ""
                self._write("affectations", (mid, pial, self.annee_label, vol))
            missions.append((m, affected))

        n = max(1, round(n_aesh))
        for _ in range(n):
            aid = self._id("AE")
            epp = rng.random() < 0.8
            nom, prenom = self._name()
            by = y - rng.randint(20, 62)
            birth = date(by, 1, 1) + timedelta(days=rng.randrange(365))
            if pials and rng.random() < 0.6:
                members = pial_members[pials[rng.randrange(len(pials))]]
                com = members[rng.randrange(len(members))].commune
            else:
                com = commune_picker.pick(rng)
            lat = com.latitude + rng.uniform(-0.01, 0.01)
            lon = com.longitude + rng.uniform(-0.015, 0.015)
            self._write(
                "aesh",
                (
                    aid,
                    "EPP" if epp else "ASSED",
                    nom,
                    prenom,
                    birth.isoformat(),
                    com.nom,
                    com.code_postal,
                    f"{lat:.5f}",
                    f"{lon:.5f}",
                    self._demo_mail(prenom, nom),
                    self._phone(),
                    self.transport_picker.pick(rng),
                    "oui" if rng.random() < 0.07 else "non",
                ),
            )
            cdi = epp and rng.random() < 0.35
            contrat = "T2-CDI" if cdi else "T2-CDD" if epp else "HT2-CDD"
            fin: date | None
            if cdi:
                debut = date(y - rng.randint(1, 12), 9, 1)
                if rng.random() < 0.3:
                    debut += timedelta(days=rng.randrange(0, 200))
                fin = None
            else:
                debut = start
                if rng.random() < 0.2:
                    debut = start + timedelta(days=rng.randrange(1, 210))
                fin = end
                if rng.random() < 0.15:
                    fin = end - timedelta(days=rng.randrange(30, 200))
                if fin < debut + timedelta(days=45):
                    fin = min(end, debut + timedelta(days=120))
            quotite = self.quotite_picker.pick(rng)
            if rng.random() < 0.08:  # a second mission follows the first (avenant)
                lo = max(debut, start) + timedelta(days=30)
                hi = (fin or end) - timedelta(days=30)
                if hi > lo:
                    t = lo + timedelta(days=rng.randrange((hi - lo).days))
                    one_mission(aid, epp, contrat, debut, t, quotite)
                    q2 = quotite if rng.random() < 0.6 else self.quotite_picker.pick(rng)
                    one_mission(aid, epp, contrat, t + timedelta(days=1), fin, q2)
                    continue
            one_mission(aid, epp, contrat, debut, fin, quotite)
        return missions

    # ---- candidatures -----------------------------------------------------
    def _candidats(
        self,
        dep: Departement,
        decisions: list[_Decision],
        cities: list[Commune],
        used_cities: list[int],
    ) -> None:
        rng = self.rng
        zones = [cities[i].nom for i in used_cities]
        n = round(len(decisions) * 0.02)
        m2: list[tuple[str, float]] = []
        if dep.academie == "lille":
            m2 = [("M2_1D_NORD" if dep.code == "059" else "M2_1D_PDC", 9.0), ("M2_2D_LILLE", 5.0)]
        type_picker = _picker([("AESH", 86.0), *m2])
        for _ in range(n):
            cid = self._id("CA")
            statut = self.statut_picker.pick(rng)
            typ = type_picker.pick(rng)
            k = min(len(zones), 1 + (rng.random() < 0.45) + (rng.random() < 0.35))
            zs = "|".join(rng.sample(zones, k))
            depose = self.as_of - timedelta(days=rng.randrange(0, 365))
            valide = _add_months(depose, 6)
            if statut in ("retiree", "supprimee"):
                nom = prenom = mail = tel = ""
            else:
                nom, prenom = self._name()
                mail = self._demo_mail(prenom, nom)
                tel = self._phone()
            self._write(
                "candidats",
                (
                    cid,
                    nom,
                    prenom,
                    mail,
                    tel,
                    typ,
                    zs,
                    statut,
                    depose.isoformat(),
                    valide.isoformat(),
                ),
            )


class _PickEtab(Protocol):
    def __call__(self, g: int, secteur: str, exclude: _Etab | None = None) -> _Etab: ...


class _Accompagnements:
    """Builds the accompaniments of one department from its decisions and missions."""

    def __init__(
        self,
        gen: _Generator,
        pools: dict[str, list[_Mission]],
        hors_i: list[_Mission],
        hors_m: list[_Mission],
        all_acc: list[_Mission],
        pial_members: dict[str, list[_Etab]],
        hors: list[_Etab],
    ) -> None:
        self.gen = gen
        self.rng = gen.rng
        self.start = gen.start
        self.end = gen.end
        self.pools = pools
        self.hors_i = hors_i
        self.hors_m = hors_m
        self.all_acc = all_acc
        self.pial_members = pial_members
        self.hors = hors
        self.n = 0
        self.anomalies = dict.fromkeys((1, 2, 3, 4, 6, 8), 0)

    def _pool(self, etab: _Etab, mutual: bool) -> list[_Mission]:
        if etab.pial:
            return self.pools.get(etab.pial, [])
        first = self.hors_m if mutual else self.hors_i
        return (
            first
            if first and self.rng.random() < 0.8
            else (self.hors_i + self.hors_m or self.all_acc)
        )

    def _split(self, a: date, b: date, mutual: bool = False) -> list[tuple[date, date]]:
        """Cut a period into 1-3 consecutive pieces (change of AESH during the year)."""
        days = (b - a).days + 1
        k = (self.gen.n_pieces_mutual if mutual else self.gen.n_pieces).pick(self.rng)
        if days < 60:
            k = 1
        elif days < 120:
            k = min(k, 2)
        if k == 1:
            return [(a, b)]
        rng = self.rng
        cuts = sorted(rng.sample(range(20, days - 20), k - 1))
        if k == 3 and cuts[1] - cuts[0] < 20:
            cuts = [cuts[0]]
        out: list[tuple[date, date]] = []
        prev = a
        for c in cuts:
            cd = a + timedelta(days=c)
            out.append((prev, cd - timedelta(days=1)))
            prev = cd
        out.append((prev, b))
        return out

    def _shares(self, total: float, p: float) -> list[float]:
        rng = self.rng
        if total >= 4 and rng.random() < p:
            h1 = min(max(1.0, _half(total * rng.uniform(0.3, 0.7))), total - 1)
            return [h1, total - h1]
        return [total]

    def _want(self, t: int) -> bool:
        return self.anomalies[t] < ANOMALY_RATE * (self.n + 1)

    def place(
        self,
        pool: list[_Mission],
        decs: list[_Decision],
        etab: _Etab,
        a: date,
        b: date,
        hours: float,
        scol: _Scol | None,
        maintien: bool = False,
        mission: _Mission | None = None,
    ) -> _Mission | None:
        """Create one accompaniment on a mission of ``pool`` (or ``mission``)."""
        rng = self.rng
        gen = self.gen
        chosen: tuple[_Mission, date, date, float] | None = None
        best = -1.0
        candidates = (
            [mission]
            if mission is not None
            else [pool[rng.randrange(len(pool))] for _ in range(min(len(pool), 16))]
        )
        for m in candidates:
            ca = a if a > m.debut else m.debut
            cb = b if b < m.fin else m.fin
            if (cb - ca).days < 6:
                continue
            free = min(m.rem[gen._month(ca) : gen._month(cb) + 1])
            if free < 1:
                continue
            h = hours if free >= hours else floor(free * 2) / 2
            # prefer the mission that covers the whole period with all the hours
            score = h * ((cb - ca).days + 1)
            if score > best:
                chosen, best = (m, ca, cb, h), score
                if h == hours and ca == a and cb == b:
                    break
        if chosen is None:
            return None
        m, ca, cb, h = chosen
        rne = etab.rne
        dec = decs[0]
        mca, mcb = gen._month(ca), gen._month(cb)
        if not maintien:
            for t in (1, 2, 3, 8, 4, 6):
                if not self._want(t):
                    continue
                k = timedelta(days=rng.randint(5, 40))
                if t == 1 and ca > a:
                    ca = max(a, m.debut - k)
                elif t == 2 and cb < b:
                    cb = min(b, m.fin + k)
                elif (
                    t == 3
                    and dec.indiv
                    and scol is not None
                    and ca == dec.debut
                    and scol.debut < dec.debut
                    and m.debut < dec.debut
                ):
                    ca = max(self.start, scol.debut, m.debut, dec.debut - k)
                elif (
                    t == 8
                    and dec.indiv
                    and scol is not None
                    and cb == dec.fin
                    and dec.fin < self.end
                    and scol.fin > dec.fin
                    and m.fin > dec.fin
                ):
                    cb = min(self.end, scol.fin, m.fin, dec.fin + k)
                elif t == 4:
                    others = self.pial_members[etab.pial] if etab.pial else self.hors
                    if len(others) < 2:
                        continue
                    o = others[rng.randrange(len(others))]
                    if o is etab:
                        continue
                    rne = o.rne
                elif t == 6 and m.known and min(m.rem[mca : mcb + 1]) >= m.cap:
                    # alone on its mission: only this accompaniment exceeds the hours
                    h = m.cap + rng.choice((0.5, 1.0, 2.0, 3.0))
                else:
                    continue
                self.anomalies[t] += 1
                break
        for i in range(gen._month(ca), gen._month(cb) + 1):
            m.rem[i] -= h
        self.n += 1
        gen._write(
            "accompagnements",
            (
                gen._id("AC"),
                m.id,
                "|".join(sorted(d.id for d in decs)),
                rne,
                ca.isoformat(),
                cb.isoformat(),
                _fmt_h(h),
                "1" if maintien else "0",
                "1" if rng.random() < 0.03 else "0",
            ),
        )
        return m

    def run(self, decisions: list[_Decision], n_etab: int) -> None:
        rng = self.rng
        start, end = self.start, self.end
        week = timedelta(days=7)
        mutual: list[list[_MutEntry]] = [[] for _ in range(n_etab)]
        for d in decisions:
            r = rng.random()
            if d.etat != "actif" and rng.random() < (0.7 if d.etat == "cloture" else 0.5):
                r = 0.0
            if r < 0.28:
                continue  # coverage gap
            partial = r < 0.48
            wa = d.debut if d.debut > start else start
            wb = d.fin if d.fin < end else end
            for s in d.scols:
                a = s.debut if s.debut > wa else wa
                b = s.fin if s.fin < wb else wb
                if b - a < week:
                    continue
                if not d.indiv:
                    mutual[s.etab.idx].append(_MutEntry(d, s.etab, a, b, partial))
                    continue
                pool = self._pool(s.etab, False)
                if not pool:
                    continue
                late = partial and rng.random() < 0.5
                if late:
                    a += timedelta(days=rng.randrange(14, max(15, (b - a).days // 2)))
                total = d.heures
                if partial and not late:
                    total = max(1.0, _half(d.heures * rng.uniform(0.3, 0.8)))
                elif not partial and rng.random() < 0.012:
                    total = d.heures + rng.choice((1.0, 2.0, 3.0))  # dépassement
                last: _Mission | None = None
                last_h = total
                for pa, pb in self._split(a, b):
                    for h in self._shares(total, 0.35):
                        placed = self.place(pool, [d], s.etab, pa, pb, h, s)
                        if placed is not None:
                            last, last_h = placed, h
                if (
                    last is not None
                    and not partial
                    and not d.successor
                    and d.fin < end
                    and b == d.fin
                    and s.fin > d.fin
                    and rng.random() < 0.35
                ):
                    mb = min(end, s.fin)
                    self.place(
                        pool,
                        [d],
                        s.etab,
                        d.fin + timedelta(days=1),
                        mb,
                        last_h,
                        s,
                        maintien=True,
                        mission=last,
                    )
        for entries in mutual:
            if entries:
                self._mutual(entries)

    def _mutual(self, entries: list[_MutEntry]) -> None:
        """Group the mutualised decisions of one établissement (1-4 per accompaniment).

        A group runs over the common period of its decisions; a member whose own
        period is longer gets single-decision accompaniments for the rest.
        """
        rng = self.rng
        rng.shuffle(entries)
        entries.sort(key=lambda x: (x.debut, x.fin))  # similar periods side by side
        month = timedelta(days=30)
        i, n = 0, len(entries)
        while i < n:
            size = self.gen.group_size.pick(rng)
            grp = [entries[i]]
            a, b = entries[i].debut, entries[i].fin
            i += 1
            while len(grp) < size and i < n:
                e = entries[i]
                na = a if a > e.debut else e.debut
                nb = b if b < e.fin else e.fin
                if nb - na < month or (nb - na).days < 0.5 * (e.fin - e.debut).days:
                    break
                grp.append(e)
                a, b = na, nb
                i += 1
            etab = grp[0].etab
            pool = self._pool(etab, True)
            if not pool:
                continue
            late = any(g.partial for g in grp) and rng.random() < 0.6
            if late:
                a += timedelta(days=rng.randrange(14, max(15, (b - a).days // 2)))
            decs = [g.dec for g in grp]
            hours = float(rng.choice((3, 4, 5, 6, 6, 8, 8, 9, 10, 12, 12, 15)))
            for pa, pb in self._split(a, b, mutual=True):
                for h in self._shares(hours, 0.2):
                    self.place(pool, decs, etab, pa, pb, h, None)
            if len(grp) == 1:
                continue
            one_day = timedelta(days=1)
            for g in grp:
                if not late and g.debut < a - one_day * 6:
                    self.place(pool, [g.dec], etab, g.debut, a - one_day, hours, None)
                if g.fin > b + one_day * 6:
                    self.place(pool, [g.dec], etab, b + one_day, g.fin, hours, None)


def _current_school_year(today: date) -> int:
    return today.year if today.month >= 9 else today.year - 1


def _normalize_code(code: str) -> str:
    c = code.strip()
    if len(c) == 2 and c.isdigit():
        c = "0" + c
    return c


def generate(
    scale: str,
    seed: int,
    out: Path,
    annee: int | None = None,
    departements: list[str] | None = None,
    *,
    volume: float = 1.0,
) -> dict[str, int]:
    """Write the demo CSV files into ``out`` and return the row count per kind.

    ``scale``: "departement" (1 % of the national volumes in each department of
    ``departements``, default ["062"]) or "national" (about 300,000 decisions,
    140,000 AESH, 400,000 accompaniments spread by population over every
    department, or over ``departements`` with their national share only).
    ``annee``: start year Y of the current school year Y-Y+1 (default: the
    school year containing today). ``volume`` multiplies every volume (tests).
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, not {scale!r}")
    if volume <= 0:
        raise ValueError("volume must be positive")
    y = annee if annee is not None else _current_school_year(date.today())
    if departements:
        codes: list[str] = []
        for raw in departements:
            c = _normalize_code(raw)
            if c not in DEPARTEMENTS_BY_CODE:
                raise ValueError(f"unknown department code {raw!r}")
            if c not in codes:
                codes.append(c)
    elif scale == "departement":
        codes = [DEFAULT_DEPARTEMENT]
    else:
        codes = [d.code for d in DEPARTEMENTS]
    total_pop = sum(d.population for d in DEPARTEMENTS)

    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with ExitStack() as stack:
        writers: dict[str, _RowWriter] = {}
        for kind in KINDS:
            f = stack.enter_context((out / f"{kind}.csv").open("w", encoding="utf-8", newline=""))
            w = csv.writer(f, delimiter=";", lineterminator="\n")
            w.writerow(HEADERS[kind])
            writers[kind] = w
        gen = _Generator(rng, y, writers)
        for code in codes:
            dep = DEPARTEMENTS_BY_CODE[code]
            share = DEPARTEMENT_FRACTION if scale == "departement" else dep.population / total_pop
            gen.department(dep, NATIONAL_DECISIONS * share * volume, NATIONAL_AESH * share * volume)
    return dict(gen.counts)
