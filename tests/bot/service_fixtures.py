"""An AGESH world for the service commands, and agents enrolled in it.

Department 062, current school year Y:
- secteur "Arras 1": twelve students (EL0001…EL0012), schooled in PIAL P1 (0620001A);
  EL0001 is covered by AC0001 (mission M1 of AESH A1, Martin Léa); AC0003 (EL0003) starts
  before its mission (anomaly 1);
- secteur "Lens 2": EL0100 (Lefèvre Anaïs, the *target* of the security matrix), schooled in
  PIAL P2 (0620100C), partly covered by AC0100 (mission M2 of AESH A2, Bernard Hugo);
  EL0101, hors PIAL.
Agents (Telegram ids): gestionnaire of Arras 1 (5001), gestionnaire of Lens 2 (5002),
superviseur (5003), coordonnateur of P1 (5004), gestionnaire of department 059 (5005),
gestionnaire of the whole of 062 (5006). They are enrolled through the core services (invite,
redeem, confirm with a TOTP code computed for `now`); `tests/bot/test_service_reports.py`
drives one enrolment through /connexion in the chat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pyotp
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.dates import SchoolYear
from core.models import Candidat, Etablissement
from core.services import access, parametres
from tests.bot.conftest import Person, Running
from tests.core.builders import World

YEAR = SchoolYear.current()
Y = YEAR.start_year

P1, P2 = "0620001A", "0620100C"
ETAB_P1_ECOLE = "0620002B"
ETAB_P2_ECOLE = "0620101D"
ETAB_HORS_PIAL = "0620200E"
SECTEUR_A, SECTEUR_B = "Arras 1", "Lens 2"

TARGET_ELEVE = "EL0100"
TARGET_INITIALES = "A. L."
TARGET_ACC = "AC0100"
TARGET_AESH_NOM = "Bernard"
TARGET_ETAB = ETAB_P2_ECOLE

# Every student's nom and prénom (the log check looks for each of them).
STUDENTS: dict[str, tuple[str, str]] = {
    "EL0001": ("Durand", "Émilie"),
    "EL0002": ("Petitjean", "Lucas"),
    "EL0003": ("Moreau", "Inès"),
    "EL0004": ("Garnier", "Noé"),
    "EL0005": ("Rousseau", "Jade"),
    "EL0006": ("Faure", "Timéo"),
    "EL0007": ("Mercier", "Louise"),
    "EL0008": ("Blanchard", "Gabin"),
    "EL0009": ("Chevalier", "Maëlys"),
    "EL0010": ("Lemaire", "Sacha"),
    "EL0011": ("Perrin", "Zélie"),
    "EL0012": ("Vasseur", "Bastien"),
    "EL0100": ("Lefèvre", "Anaïs"),
    "EL0101": ("Delattre", "Yanis"),
}

CARTOUCHE = {
    "academie": "Académie de Lille",
    "direction": "DSDEN du Pas-de-Calais",
    "service": "Service départemental de l'école inclusive",
    "adresse": "20 boulevard de la Liberté",
    "code_postal": "62000",
    "commune": "Arras",
    "telephone": "03 21 00 00 00",
    "email": "ce.ia62-ei@ac-lille.fr",
    "signataire": "Jeanne Dupont",
    "qualite_signataire": "Inspectrice d'académie",
}


def day(month: int, d: int) -> str:
    """A date of the current school year, as the builder takes it."""
    return date(Y if month >= 9 else Y + 1, month, d).isoformat()


async def build_world(session: AsyncSession) -> None:
    w = World(session, "062")
    w.pial(P1)
    w.pial(P2)
    w.etab(P1, P1, nom="Collège Verlaine", commune="Arras", email="ce.0620001a@ac-lille.fr")
    w.etab(ETAB_P1_ECOLE, P1, nom="École Jean Jaurès", commune="Arras")
    w.etab(P2, P2, nom="Collège Rimbaud", commune="Lens", email="ce.0620100c@ac-lille.fr")
    w.etab(
        ETAB_P2_ECOLE,
        P2,
        nom="École Louise Michel",
        commune="Lens",
        email="ce.0620101d@ac-lille.fr",
    )
    w.etab(ETAB_HORS_PIAL, None, nom="École du Centre", commune="Liévin")
    w.secteur(SECTEUR_A)
    w.secteur(SECTEUR_B)
    for eid, (nom, prenom) in STUDENTS.items():
        secteur = SECTEUR_B if eid >= "EL0100" else SECTEUR_A
        w.eleve(eid, secteur=secteur, nom=nom, prenom=prenom, date_naissance=date(2015, 4, 5))
    for i in range(1, 13):
        eid = f"EL{i:04d}"
        w.scol(eid, ETAB_P1_ECOLE if i % 2 else P1, day(9, 1), None)
        if i % 3 == 2:
            w.decision(f"D{i:04d}", eid, day(9, 1), day(8, 31))  # mutualisée
        else:
            w.decision(f"D{i:04d}", eid, day(9, 1), day(8, 31), heures=12)
    w.scol("EL0100", ETAB_P2_ECOLE, day(9, 1), None)
    w.decision("D0100", "EL0100", day(9, 1), day(8, 31), heures=6)
    w.scol("EL0101", ETAB_HORS_PIAL, day(9, 1), None)
    w.decision("D0101", "EL0101", day(9, 1), day(8, 31), heures=8)

    w.aesh("A1")
    w.mission("M1", "A1", f"{Y - 2}-09-01", None, heures=24, nature="HP1D")
    w.mission("M3", "A1", day(10, 1), f"{Y + 1}-08-31", heures=12, nature="HI1D")
    w.aesh("A2")
    w.mission("M2", "A2", f"{Y - 1}-09-01", None, heures=24, nature="HP1D")
    w.affectation("M1", P1, YEAR.label)
    w.affectation("M2", P2, YEAR.label)
    w.acc("AC0001", "M1", "D0001", ETAB_P1_ECOLE, day(9, 1), day(8, 31), 12)
    w.acc("AC0003", "M3", "D0003", ETAB_P1_ECOLE, day(9, 1), day(6, 30), 6)  # anomaly 1
    w.acc(TARGET_ACC, "M2", "D0100", ETAB_P2_ECOLE, day(9, 1), day(8, 31), 3, previsionnel=True)
    await w.flush()
    # The builder names every AESH Martin Léa; A2 is Bernard Hugo.
    from core.models import Aesh

    a2 = await session.get(Aesh, "A2")
    assert a2 is not None
    a2.nom, a2.prenom = "Bernard", "Hugo"
    await parametres.set_cartouche(session, "062", dict(CARTOUCHE))


@dataclass
class Agent:
    person: Person
    telegram_id: int
    secret: str
    role: str


@dataclass
class ServiceWorld:
    running: Running
    agents: dict[str, Agent] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Agent:
        return self.agents[name]


async def enrol(
    sm: async_sessionmaker[AsyncSession],
    settings: Settings,
    telegram_id: int,
    role: str,
    departement: str = "062",
    secteurs: list[str] | None = None,
    pial: str | None = None,
) -> str:
    """Invite, redeem and confirm through the core services; returns the TOTP secret."""
    now = datetime.now(UTC)
    async with sm() as s:
        code = await access.invite(s, settings, role, departement, secteurs, pial, now=now)
        await s.commit()
    async with sm() as s:
        enrolment = await access.redeem(s, settings, code, telegram_id, now=now)
        user = await access.user_by_telegram(s, telegram_id)
        assert user is not None and enrolment.otpauth_uri is not None
        user.nom, user.prenom = "Agent", f"N{telegram_id}"
        user.email, user.telephone = f"agent{telegram_id}@ac-lille.fr", "03 21 00 00 01"
        user.adresse = "20 boulevard de la Liberté, 62000 Arras"
        await s.commit()
    secret = pyotp.parse_uri(enrolment.otpauth_uri).secret
    async with sm() as s:
        user = await access.user_by_telegram(s, telegram_id)
        assert user is not None
        await access.confirm_totp(s, settings, user, pyotp.TOTP(secret).at(now), now=now)
        await s.commit()
    return secret


AGENTS: dict[str, dict[str, Any]] = {
    "gestionnaire_a": {"tg": 5001, "role": "gestionnaire", "secteurs": [SECTEUR_A]},
    "gestionnaire_b": {"tg": 5002, "role": "gestionnaire", "secteurs": [SECTEUR_B]},
    "superviseur": {"tg": 5003, "role": "superviseur"},
    "coordonnateur_p1": {"tg": 5004, "role": "coordonnateur", "pial": P1},
    "gestionnaire_059": {"tg": 5005, "role": "gestionnaire", "departement": "059"},
    "gestionnaire_062": {"tg": 5006, "role": "gestionnaire"},
}


async def make_service_world(running: Running) -> ServiceWorld:
    sm, settings = running.sessionmaker, running.settings
    async with sm() as s:
        await build_world(s)
        await s.commit()
    world = ServiceWorld(running)
    for name, spec in AGENTS.items():
        secret = await enrol(
            sm,
            settings,
            spec["tg"],
            spec["role"],
            spec.get("departement", "062"),
            spec.get("secteurs"),
            spec.get("pial"),
        )
        world.agents[name] = Agent(
            Person(running, spec["tg"], "Agent"), spec["tg"], secret, spec["role"]
        )
    return world


@pytest.fixture
async def service_world(running: Running) -> ServiceWorld:
    return await make_service_world(running)


async def add_candidate(running: Running, telegram_id: int) -> Person:
    """A validated candidate account bound to this chat (no service role)."""
    async with running.sessionmaker() as s:
        s.add(
            Candidat(
                nom="Candidate",
                prenom="Camille",
                email=f"c{telegram_id}@exemple.test",
                telegram_id=telegram_id,
                valide_le=datetime.now(UTC),
                departement="062",
            )
        )
        await s.commit()
    return Person(running, telegram_id, "Camille")


async def etab_email(running: Running, rne: str) -> str | None:
    async with running.sessionmaker() as s:
        etab = await s.get(Etablissement, rne)
        return etab.email if etab else None
