"""Every service command × every kind of chat: who gets data, who gets a refusal, and that no
answer ever names (initials or file id) a student outside the asker's perimeter; no student
name in the logs of the whole run, read at DEBUG.

The target lives in department 062, secteur "Lens 2", PIAL P2: student EL0100 (A. L.),
accompaniment AC0100 by AESH Bernard Hugo at école 0620101D.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from aiogram.fsm.storage.base import StorageKey
from sqlalchemy import select

from core.models import ServiceRole, ServiceSession, ServiceUser
from core.models.base import utcnow
from core.texts import t
from tests.bot import service_fixtures as sf
from tests.bot.conftest import Person, Running

service_world = sf.service_world

COMMANDS: dict[str, str] = {
    "perimetre": "/perimetre",
    "couverture": "/couverture",
    "anomalies": "/anomalies",
    "cas": "/cas",
    "pial": "/pial",
    "indicateurs": "/indicateurs",
    "eleve": "/eleve Lefèvre Anaïs",
    "aesh": f"/aesh {sf.TARGET_AESH_NOM}",
    "etablissement": f"/etablissement {sf.TARGET_ETAB}",
    "pv": f"/pv {sf.TARGET_ACC}",
}

A, S, D = "allow", "scoped", "deny"  # target shown / answered without the target / refused
ALL_DENIED = dict.fromkeys(COMMANDS, D)
SCOPED_LISTS = {
    c: S for c in ("perimetre", "couverture", "anomalies", "cas", "pial", "indicateurs")
}

EXPECTED: dict[str, dict[str, str]] = {
    "non_inscrit": ALL_DENIED,
    "candidat": ALL_DENIED,
    "gestionnaire_autre_departement": {
        **SCOPED_LISTS,
        "eleve": D,
        "aesh": D,
        "etablissement": D,
        "pv": D,
    },
    # Same department: the AESH's file and the établissement are departmental, their students
    # of another secteur are left out.
    "gestionnaire_autre_secteur": {
        **SCOPED_LISTS,
        "eleve": D,
        "aesh": S,
        "etablissement": S,
        "pv": D,
    },
    "coordonnateur_autre_pial": {
        **SCOPED_LISTS,
        "eleve": D,
        "aesh": D,
        "etablissement": D,
        "pv": D,
    },
    "session_expiree": ALL_DENIED,
    "superviseur": dict.fromkeys(COMMANDS, A),
}

# Where an "allow" must show the target itself.
TARGET_SHOWN = {
    "eleve": "A. L. — EL0100",
    "aesh": "A. L. — EL0100",
    "etablissement": "École Louise Michel (0620101D)",
    "pv": "AC0100",
}

DENIALS = (
    t("access.reserve"),
    t("access.session_expiree"),
    t("access.demander_totp"),
    t("service_reports.eleve.aucun", naissance=False),
)


def is_denial(text: str) -> bool:
    return text in DENIALS or "introuvable dans votre périmètre" in text.casefold()


def leaks(text: str) -> list[str]:
    return [x for x in (sf.TARGET_ELEVE, sf.TARGET_INITIALES, "Lefèvre", "Anaïs") if x in text]


async def age_session(running: Running, person: Person) -> None:
    """The session was opened 13 hours ago and not used since (idle > 12 h)."""
    async with running.sessionmaker() as s:
        user = (
            await s.scalars(select(ServiceUser).where(ServiceUser.telegram_id == person.id))
        ).one()
        role = (await s.scalars(select(ServiceRole).where(ServiceRole.user_id == user.id))).one()
        row = await s.get(ServiceSession, user.id)
        assert row is not None
        then = utcnow() - timedelta(hours=13)
        row.authenticated_at, row.last_seen, row.role_id = then, then, role.id
        await s.commit()
    # The guard asked for a new code last time: start from a chat that is not in that step.
    key = StorageKey(bot_id=running.bot.id, chat_id=person.id, user_id=person.id)
    await running.dp.storage.set_state(key, None)


@pytest.mark.slow
async def test_security_matrix(
    service_world: sf.ServiceWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    running = service_world.running
    people: dict[str, Person] = {
        "non_inscrit": Person(running, 6001, "Agent"),
        "candidat": await sf.add_candidate(running, 6002),
        "gestionnaire_autre_departement": service_world["gestionnaire_059"].person,
        "gestionnaire_autre_secteur": service_world["gestionnaire_a"].person,
        "coordonnateur_autre_pial": service_world["coordonnateur_p1"].person,
        "session_expiree": service_world["gestionnaire_b"].person,
        "superviseur": service_world["superviseur"].person,
    }
    failures: list[str] = []
    for who, person in people.items():
        for command, text in COMMANDS.items():
            if who == "session_expiree":
                await age_session(running, person)
            seen = len(running.sim.chat(person.id))
            await person.say(text)
            answers = [m for m in running.sim.chat(person.id)[seen:] if m.from_bot]
            shown = "\n".join(
                "\n".join([m.content or "", *m.button_labels, m.document_name or ""])
                for m in answers
            )
            expected = EXPECTED[who][command]
            cell = f"{who} × {command}"
            denied = len(answers) == 1 and is_denial(answers[0].content or "")
            if not answers:
                failures.append(f"{cell}: no answer")
                continue
            if expected == D and not denied:
                failures.append(f"{cell}: expected a refusal, got {shown[:120]!r}")
            if expected in (A, S) and denied:
                failures.append(f"{cell}: refused ({shown[:120]!r})")
            if expected in (S, D) and leaks(shown):
                failures.append(f"{cell}: target shown {leaks(shown)}")
            if expected in (S, D) and any(
                m.document and sf.TARGET_ACC in (m.document_name or "") for m in answers
            ):
                failures.append(f"{cell}: PV sent")
            if expected == A and command in TARGET_SHOWN and TARGET_SHOWN[command] not in shown:
                failures.append(f"{cell}: target not shown")
            if who == "session_expiree" and answers[0].content != t("access.session_expiree"):
                failures.append(f"{cell}: not told the session expired")
            if who in ("non_inscrit", "candidat") and answers[0].content != t("access.reserve"):
                failures.append(f"{cell}: not the neutral sentence")
    assert not failures, "\n".join(failures)

    # The superviseur's PV is a real PDF naming the AESH.
    pv = next(m for m in running.sim.chat(people["superviseur"].id) if m.document is not None)
    assert (pv.document_bytes or b"").startswith(b"%PDF")

    logged = caplog.text
    assert "service command" in logged  # the run did log, at DEBUG and above
    named = [
        name for nom, prenom in sf.STUDENTS.values() for name in (nom, prenom) if name in logged
    ]
    assert not named, f"student names in the logs: {named}"
