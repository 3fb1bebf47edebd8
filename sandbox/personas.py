"""The people one can be on the sandbox page: a candidate without an account, and a
gestionnaire and a superviseur of the department, enrolled through the real access service
(invitation → redeem → first TOTP code) and logged in, each on a fixed simulated Telegram
account. Their TOTP secrets are kept beside the database so the page can show live codes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.errors import DomainError
from core.models import ServiceSession
from core.services import access
from sandbox.texts import st

log = logging.getLogger("aesh.sandbox.personas")

# Far from the ids tests and real Telegram users get, and stable across runs: the database
# binds accounts to them.
CANDIDATE_ID = 700_101
GESTIONNAIRE_ID = 700_102
SUPERVISEUR_ID = 700_103
FIRST_EXTRA_ID = 700_200
MAX_EXTRA = 800


@dataclass(frozen=True)
class Persona:
    key: str
    user_id: int
    #: the service role it holds, None for a candidate
    role: str | None
    first_name: str
    label: str
    description: str


def base_personas(departement: str) -> list[Persona]:
    def persona(key: str, user_id: int, role: str | None) -> Persona:
        return Persona(
            key,
            user_id,
            role,
            st(f"personnages.{key}_nom"),
            st(f"personnages.{key}_libelle", departement=departement),
            st(f"personnages.{key}_description", departement=departement),
        )

    return [
        persona("candidat", CANDIDATE_ID, None),
        persona("gestionnaire", GESTIONNAIRE_ID, "gestionnaire"),
        persona("superviseur", SUPERVISEUR_ID, "superviseur"),
    ]


def extra_candidate(number: int) -> Persona:
    return Persona(
        f"candidat-{number}",
        FIRST_EXTRA_ID + number,
        None,
        st("personnages.nouveau_nom", numero=number),
        st("personnages.nouveau_libelle", numero=number),
        st("personnages.nouveau_description"),
    )


def extra_number(user_id: int) -> int | None:
    """The number of an extra candidate from its Telegram id, None for any other id."""
    number = user_id - FIRST_EXTRA_ID
    return number if 0 < number < MAX_EXTRA else None


def totp_now(secret: str, now: float | None = None) -> dict[str, Any]:
    """The code an authenticator app shows now, and how many seconds it stays valid."""
    moment = time.time() if now is None else now
    interval = access.TOTP_INTERVAL
    return {
        "code": pyotp.TOTP(secret, interval=interval).at(moment),
        "remaining": interval - int(moment) % interval,
        "interval": interval,
    }


class SecretFile:
    """persona key → base32 TOTP secret, in a file only its owner may read."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def write(self, secrets: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(secrets, fh)
        os.replace(tmp, self.path)


async def _logged_in(
    session: AsyncSession, settings: Settings, persona: Persona, secret: str | None
) -> bool:
    """Whether the persona is enrolled with `secret` and has a live session (opening one if
    needed). False means it must be enrolled afresh."""
    if secret is None:
        return False
    user = await access.user_by_telegram(session, persona.user_id)
    if user is None or not user.totp_confirmed:
        return False
    held = await access.roles(session, persona.user_id)
    if not any(r.role == persona.role and r.departement == settings.departement for r in held):
        return False
    if (await access.status(session, persona.user_id)).etat == "connecte":
        return True
    now = time.time()
    # The current step may have been spent by a restart a few seconds ago (replay refusal):
    # the next step is accepted too, as from a phone whose clock is a little ahead.
    for ahead in (0, access.TOTP_INTERVAL):
        code = totp_now(secret, now + ahead)["code"]
        try:
            await access.login(session, settings, persona.user_id, code)
        except DomainError:
            continue
        return True
    return False


async def _enrol(session: AsyncSession, settings: Settings, persona: Persona) -> str:
    assert persona.role is not None
    user = await access.user_by_telegram(session, persona.user_id)
    if user is not None:
        # The sandbox owns these accounts: forget the old factor (a secret sealed under a lost
        # key, a lock) so that the invitation below sets up a fresh one.
        user.totp_secret = None
        user.totp_confirmed = False
        user.failed_attempts = 0
        user.locked_until = None
        await session.execute(delete(ServiceSession).where(ServiceSession.user_id == user.id))
        await session.flush()
    code = await access.invite(session, settings, persona.role, settings.departement)
    enrolment = await access.redeem(session, settings, code, persona.user_id)
    assert enrolment.otpauth_uri is not None
    secret = str(pyotp.parse_uri(enrolment.otpauth_uri).secret)
    user = await access.user_by_telegram(session, persona.user_id)
    assert user is not None
    dep = settings.departement
    user.prenom = st(f"personnages.{persona.key}_nom")
    user.nom = st(f"personnages.{persona.key}_nom_famille")
    user.email = st(f"personnages.{persona.key}_email", departement=dep)
    await access.confirm_totp(session, settings, user, totp_now(secret)["code"])
    log.info("sandbox persona %s enrolled", persona.key)
    return secret


async def seed(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    personas: list[Persona],
    secret_file: SecretFile,
) -> dict[str, str]:
    """Make every service persona enrolled and logged in; returns their TOTP secrets."""
    secrets = secret_file.read()
    for persona in personas:
        if persona.role is None:
            continue
        async with sessionmaker() as session:
            if not await _logged_in(session, settings, persona, secrets.get(persona.key)):
                # A failed login above may have counted a wrong code: start from a clean slate.
                await session.rollback()
                secrets[persona.key] = await _enrol(session, settings, persona)
            await session.commit()
    secret_file.write(secrets)
    return secrets
