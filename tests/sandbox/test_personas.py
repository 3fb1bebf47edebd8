"""The sandbox's service personas are enrolled through the real access service, and come
back logged in at every start; the sandbox's secret key is made once and kept private."""

from __future__ import annotations

import stat
from pathlib import Path

import pyotp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.services import access
from sandbox.app import ensure_secret_key
from sandbox.personas import (
    GESTIONNAIRE_ID,
    SUPERVISEUR_ID,
    SecretFile,
    base_personas,
    seed,
    totp_now,
)

SM = async_sessionmaker[AsyncSession]
SETTINGS = Settings(secret_key="s" * 32, departement="062")


async def etat(sm: SM, telegram_id: int) -> access.Access:
    async with sm() as s:
        found = await access.status(s, telegram_id)
        await s.commit()
    return found


async def test_personas_are_enrolled_logged_in_and_kept(sessionmaker: SM, tmp_path: Path) -> None:
    personas = base_personas("062")
    secret_file = SecretFile(tmp_path / "sandbox-personas.json")
    secrets = await seed(sessionmaker, SETTINGS, personas, secret_file)
    assert set(secrets) == {"gestionnaire", "superviseur"}
    assert stat.S_IMODE(secret_file.path.stat().st_mode) == 0o600

    gestionnaire = await etat(sessionmaker, GESTIONNAIRE_ID)
    assert gestionnaire.etat == "connecte" and gestionnaire.caller is not None
    assert gestionnaire.caller.role == "gestionnaire"
    assert gestionnaire.caller.departement == "062" and gestionnaire.caller.secteurs is None
    superviseur = await etat(sessionmaker, SUPERVISEUR_ID)
    assert superviseur.caller is not None and superviseur.caller.role == "superviseur"

    # The code shown on the page is the one the agent's authenticator app would show.
    shown = totp_now(secrets["gestionnaire"])
    assert shown["code"] == pyotp.TOTP(secrets["gestionnaire"], interval=30).now()

    # A restart keeps the enrolment.
    assert await seed(sessionmaker, SETTINGS, personas, secret_file) == secrets

    # Logged out (and its code just used): logged in again at the next start, same secret.
    async with sessionmaker() as s:
        await access.logout(s, GESTIONNAIRE_ID)
        await s.commit()
    assert await seed(sessionmaker, SETTINGS, personas, secret_file) == secrets
    assert (await etat(sessionmaker, GESTIONNAIRE_ID)).etat == "connecte"

    # The secrets lost: enrolled afresh rather than locked out.
    secret_file.path.unlink()
    fresh = await seed(sessionmaker, SETTINGS, personas, secret_file)
    assert fresh["gestionnaire"] != secrets["gestionnaire"]
    assert (await etat(sessionmaker, GESTIONNAIRE_ID)).etat == "connecte"


def test_secret_key_is_made_once_private_and_never_said(tmp_path: Path) -> None:
    said: list[str] = []
    first = ensure_secret_key(Settings(secret_key=None), tmp_path, said.append)
    key = first.secret_key
    assert key and len(key) >= 32
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(said) == 1 and key not in said[0]

    again = ensure_secret_key(Settings(secret_key=None), tmp_path, said.append)
    assert again.secret_key == key and len(said) == 1

    configured = ensure_secret_key(Settings(secret_key="from-env"), tmp_path, said.append)
    assert configured.secret_key == "from-env"


def test_aesh_knows_the_sandbox_command() -> None:
    from aesh.cli import build_parser
    from aesh.commands.sandbox import cmd_sandbox

    args = build_parser().parse_args(["sandbox", "--port", "8099"])
    assert (args.port, args.host, args.func) == (8099, "127.0.0.1", cmd_sandbox)
