"""Service access (domain 1): invitations, TOTP enrolment and login, lock, replay, idle expiry,
role choice and perimeter narrowing. Time is injected (`now=`) so every TOTP code is known."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.config import Settings
from core.db import make_engine, make_sessionmaker
from core.errors import DomainError, Forbidden, InvalidInput, NotFound
from core.models import (
    CoordonnateurPial,
    Invitation,
    Pial,
    Secteur,
    ServiceRole,
    ServiceSession,
    ServiceUser,
)
from core.perimeter import Perimeter
from core.services import access
from core.texts import t

SETTINGS = Settings(_env_file=None, secret_key="clé-de-test")
T0 = datetime(2026, 1, 12, 8, 0, 0, tzinfo=UTC)  # on a 30-s boundary
TG = 424242
CODE_RE = re.compile(r"^[A-HJ-NP-Z2-9]{4}(-[A-HJ-NP-Z2-9]{4}){3}$")

R = TypeVar("R")


class Uow:
    """One unit of work per call, committed even when refused, as the bot's middleware does
    (a refused TOTP code must still count)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.sm = make_sessionmaker(engine)

    async def __call__(self, fn: Callable[..., Awaitable[R]], *args: Any, **kw: Any) -> R:
        async with self.sm() as s:
            try:
                result = await fn(s, *args, **kw)
            except DomainError:
                await s.commit()
                raise
            await s.commit()
            return result


@pytest.fixture
async def uow(engine: AsyncEngine) -> Uow:
    u = Uow(engine)

    async def seed(s: AsyncSession) -> None:
        s.add_all(
            [Pial(rne="0620001A", departement="062"), Pial(rne="0830001B", departement="083")]
        )
        s.add_all(
            [Secteur(departement="062", code=c) for c in ("NICE-EST", "NICE-OUEST", "MENTON")]
        )
        await s.flush()

    await u(seed)
    return u


async def _confirm(s: AsyncSession, telegram_id: int, code: str, now: datetime) -> Any:
    user = await access.user_by_telegram(s, telegram_id)
    assert user is not None
    return await access.confirm_totp(s, SETTINGS, user, code, now=now)


async def enrol(
    uow: Uow,
    role: str = "gestionnaire",
    *,
    telegram_id: int = TG,
    secteurs: list[str] | None = None,
    pial: str | None = None,
    now: datetime = T0,
    confirm: bool = True,
) -> tuple[access.Enrolment, str]:
    """Invite, redeem and (by default) confirm; returns the enrolment and the TOTP secret."""
    code = await uow(access.invite, SETTINGS, role, "062", secteurs, pial, now=now)
    enrolment = await uow(access.redeem, SETTINGS, code, telegram_id, now=now)
    assert enrolment.otpauth_uri is not None
    secret = pyotp.parse_uri(enrolment.otpauth_uri).secret
    if confirm:
        await uow(_confirm, telegram_id, pyotp.TOTP(secret).at(now), now)
    return enrolment, secret


def wrong_code(secret: str, now: datetime) -> str:
    totp = pyotp.TOTP(secret)
    valid = {totp.at(now + timedelta(seconds=d)) for d in (-30, 0, 30)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


# --- enrolment ------------------------------------------------------------------------------


async def test_invite_redeem_confirm_login_current(uow: Uow) -> None:
    code = await uow(access.invite, SETTINGS, "gestionnaire", "062", ["NICE-EST"], now=T0)
    assert CODE_RE.match(code), code

    # Typed on a phone: lower case, no dashes, spaces.
    typed = code.replace("-", " ").lower()
    enrolment = await uow(access.redeem, SETTINGS, typed, TG, now=T0 + timedelta(hours=1))
    assert enrolment.totp_a_confirmer and enrolment.role == "gestionnaire"
    uri = enrolment.otpauth_uri
    assert uri is not None and uri.startswith("otpauth://totp/")
    assert "issuer=AESH%20bot" in uri and f"agent-{enrolment.user_id}" in uri
    assert str(TG) not in uri
    secret = pyotp.parse_uri(uri).secret
    assert secret not in repr(enrolment) and "otpauth" not in repr(enrolment)
    assert access.qr_png(uri).startswith(b"\x89PNG\r\n\x1a\n")

    # Not usable before the factor is confirmed.
    assert (await uow(access.status, TG, now=T0)).etat == "a_confirmer"
    assert await uow(access.current, TG, now=T0) is None

    now = T0 + timedelta(hours=1, minutes=2)
    await uow(_confirm, TG, pyotp.TOTP(secret).at(now), now)
    caller = await uow(access.current, TG, now=now + timedelta(minutes=1))
    assert caller is not None
    assert (caller.role, caller.departement, caller.pial_rne) == ("gestionnaire", "062", None)
    assert caller.perimeter == Perimeter("062", frozenset({"NICE-EST"}), None)
    assert caller.can_write_accompagnements and caller.can_review_candidatures
    assert not caller.can_set_parametres

    # Logged out, then back in with a later code.
    await uow(access.logout, TG)
    assert await uow(access.current, TG, now=now + timedelta(minutes=2)) is None
    later = now + timedelta(minutes=5)
    await uow(access.login, SETTINGS, TG, pyotp.TOTP(secret).at(later), now=later)
    assert await uow(access.current, TG, now=later) is not None

    # Nothing in clear at rest: the code only as a digest, the TOTP secret sealed.
    async def stored(s: AsyncSession) -> tuple[list[str], str | None]:
        hashes = list(await s.scalars(select(Invitation.code_hash)))
        user = await s.get(ServiceUser, enrolment.user_id)
        assert user is not None
        return hashes, user.totp_secret

    hashes, sealed = await uow(stored)
    assert all(access.normalize_code(code) not in h for h in hashes)
    assert sealed is not None and secret not in sealed and len(sealed) <= 64


async def test_code_is_single_use(uow: Uow) -> None:
    code = await uow(access.invite, SETTINGS, "superviseur", "062", now=T0)
    await uow(access.redeem, SETTINGS, code, TG, now=T0)
    for telegram_id in (TG, TG + 1):
        with pytest.raises(InvalidInput) as err:
            await uow(access.redeem, SETTINGS, code, telegram_id, now=T0)
        assert str(err.value) == "Code invalide ou expiré."


async def test_code_expires_after_72_hours(uow: Uow) -> None:
    code = await uow(access.invite, SETTINGS, "superviseur", "062", now=T0)
    with pytest.raises(InvalidInput) as err:
        await uow(access.redeem, SETTINGS, code, TG, now=T0 + timedelta(hours=72))
    assert str(err.value) == t("access.code_invalide")
    ok = await uow(access.invite, SETTINGS, "superviseur", "062", now=T0)
    await uow(access.redeem, SETTINGS, ok, TG, now=T0 + timedelta(hours=71, minutes=59))


async def test_unknown_and_malformed_codes_get_the_same_refusal(uow: Uow) -> None:
    for code in ("AAAA-BBBB-CCCC-DDDD", "hello", "", "K7QM-2XRP-0000-1111"):
        with pytest.raises(InvalidInput) as err:
            await uow(access.redeem, SETTINGS, code, TG, now=T0)
        assert str(err.value) == "Code invalide ou expiré."


async def test_invitation_is_validated(uow: Uow) -> None:
    cases: list[tuple[type[DomainError], str, tuple[Any, ...]]] = [
        (InvalidInput, "access.role_inconnu", ("administrateur", "062")),
        (InvalidInput, "access.departement_invalide", ("superviseur", "62")),
        (InvalidInput, "access.secteurs_reserves_gestionnaire", ("superviseur", "062", ["MENTON"])),
        (
            InvalidInput,
            "access.pial_reservee_coordonnateur",
            ("gestionnaire", "062", None, "0620001A"),
        ),
        (InvalidInput, "access.pial_requise", ("coordonnateur", "062")),
        (NotFound, "access.pial_inconnue", ("coordonnateur", "062", None, "0629999X")),
        # A PIAL of another department.
        (NotFound, "access.pial_inconnue", ("coordonnateur", "062", None, "0830001B")),
        (NotFound, "access.secteur_inconnu", ("gestionnaire", "062", ["GRASSE"])),
    ]
    for kind, key, args in cases:
        with pytest.raises(kind) as err:
            await uow(access.invite, SETTINGS, *args, now=T0)
        assert err.value.key == key, (key, err.value.key)
    # A department whose secteurs were never imported takes them as given.
    code = await uow(access.invite, SETTINGS, "gestionnaire", "083", ["TOULON"], now=T0)
    assert CODE_RE.match(code)


# --- TOTP -------------------------------------------------------------------------------------


async def test_five_wrong_codes_lock_for_fifteen_minutes(uow: Uow) -> None:
    _, secret = await enrol(uow)
    totp = pyotp.TOTP(secret)
    now = T0 + timedelta(minutes=10)
    for i in range(1, 5):
        with pytest.raises(InvalidInput) as err:
            await uow(access.login, SETTINGS, TG, wrong_code(secret, now), now=now)
        assert err.value.params == {"restants": 5 - i}
    with pytest.raises(Forbidden) as locked:
        await uow(access.login, SETTINGS, TG, wrong_code(secret, now), now=now)
    assert locked.value.key == "access.verrouille" and locked.value.params == {"minutes": 15}
    assert "15 minutes" in str(locked.value)

    # Even the right code is refused while locked, with the minutes left.
    later = now + timedelta(minutes=10, seconds=30)
    with pytest.raises(Forbidden) as still:
        await uow(access.login, SETTINGS, TG, totp.at(later), now=later)
    assert still.value.params == {"minutes": 5}

    after = now + timedelta(minutes=15)
    await uow(access.login, SETTINGS, TG, totp.at(after), now=after)
    assert await uow(access.current, TG, now=after) is not None


async def test_a_success_resets_the_failure_count(uow: Uow) -> None:
    _, secret = await enrol(uow)
    now = T0 + timedelta(minutes=1)
    for _ in range(2):
        for _ in range(4):
            with pytest.raises(InvalidInput):
                await uow(access.login, SETTINGS, TG, wrong_code(secret, now), now=now)
        now += timedelta(minutes=1)
        await uow(access.login, SETTINGS, TG, pyotp.TOTP(secret).at(now), now=now)


async def test_replayed_code_is_refused(uow: Uow) -> None:
    _, secret = await enrol(uow)
    totp = pyotp.TOTP(secret)
    now = T0 + timedelta(minutes=3)
    code = totp.at(now)
    await uow(access.login, SETTINGS, TG, code, now=now)
    await uow(access.logout, TG)
    # Same code, same window, after a logout; and the previous window's code.
    for replay in (code, totp.at(now - timedelta(seconds=30))):
        with pytest.raises(InvalidInput) as err:
            await uow(access.login, SETTINGS, TG, replay, now=now + timedelta(seconds=10))
        assert err.value.key == "access.code_deja_utilise"
    # The enrolment code itself can't open a second session either.
    with pytest.raises(InvalidInput):
        await uow(access.login, SETTINGS, TG, totp.at(T0), now=T0 + timedelta(seconds=5))
    nxt = now + timedelta(seconds=30)
    await uow(access.login, SETTINGS, TG, totp.at(nxt), now=nxt)


async def test_one_time_step_of_tolerance(uow: Uow) -> None:
    _, secret = await enrol(uow)
    totp = pyotp.TOTP(secret)
    now = T0 + timedelta(minutes=20)
    with pytest.raises(InvalidInput) as err:
        await uow(access.login, SETTINGS, TG, totp.at(now - timedelta(seconds=60)), now=now)
    assert err.value.key == "access.totp_invalide"
    await uow(access.login, SETTINGS, TG, totp.at(now - timedelta(seconds=30)), now=now)
    await uow(access.logout, TG)
    later = now + timedelta(minutes=5)
    await uow(access.login, SETTINGS, TG, totp.at(later + timedelta(seconds=30)), now=later)


async def test_secret_sealed_under_another_key_is_unusable(uow: Uow) -> None:
    _, secret = await enrol(uow)
    other = Settings(_env_file=None, secret_key="une-autre-clé")
    now = T0 + timedelta(minutes=2)
    with pytest.raises(Forbidden):
        await uow(access.login, other, TG, pyotp.TOTP(secret).at(now), now=now)
    sealed = access._seal(SETTINGS, secret)
    assert access._unseal(SETTINGS, sealed) == secret
    assert access._unseal(other, sealed) is None
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert access._unseal(SETTINGS, tampered) is None


# --- sessions -------------------------------------------------------------------------------


async def test_not_enrolled_chat_gets_nothing(uow: Uow) -> None:
    assert await uow(access.current, 777, now=T0) is None
    assert (await uow(access.status, 777, now=T0)).etat == "inconnu"
    with pytest.raises(Forbidden) as err:
        await uow(access.login, SETTINGS, 777, "123456", now=T0)
    assert str(err.value) == t("access.reserve")
    with pytest.raises(Forbidden):
        await uow(access.choose_role, 777, 1, now=T0)


async def test_session_ends_after_twelve_idle_hours(uow: Uow) -> None:
    await enrol(uow)  # confirming opens the first session at T0
    # Activity keeps it alive beyond 12 h in total.
    t1 = T0 + timedelta(hours=11, minutes=59)
    assert await uow(access.current, TG, now=t1) is not None
    t2 = t1 + timedelta(hours=11, minutes=59)
    assert await uow(access.current, TG, now=t2) is not None
    access_ = await uow(access.status, TG, now=t2 + timedelta(hours=12))
    assert access_.etat == "expiree" and access_.caller is None
    assert (await uow(access.status, TG, now=t2 + timedelta(hours=12))).etat == "deconnecte"

    async def row(s: AsyncSession) -> ServiceSession | None:
        return await s.scalar(select(ServiceSession))

    ended = await uow(row)
    assert ended is not None and ended.authenticated_at is None


async def test_several_roles_choose_one(uow: Uow) -> None:
    first, secret = await enrol(uow, "gestionnaire", secteurs=["MENTON"])
    code = await uow(access.invite, SETTINGS, "superviseur", "062", now=T0)
    second = await uow(access.redeem, SETTINGS, code, TG, now=T0)
    # Same account; the confirmed secret is not shown again.
    assert second.user_id == first.user_id
    assert second.otpauth_uri is None and not second.totp_a_confirmer

    now = T0 + timedelta(minutes=1)
    await uow(access.login, SETTINGS, TG, pyotp.TOTP(secret).at(now), now=now)
    assert (await uow(access.status, TG, now=now)).etat == "choix_role"
    assert await uow(access.current, TG, now=now) is None
    choices = await uow(access.roles, TG)
    assert [c.role for c in choices] == ["gestionnaire", "superviseur"]
    assert "MENTON" in choices[0].libelle and "superviseur" in choices[1].libelle

    caller = await uow(access.choose_role, TG, second.role_id, now=now)
    assert caller.role == "superviseur" and caller.can_set_parametres
    assert not caller.can_review_candidatures and caller.can_read_candidatures
    assert caller.perimeter == Perimeter("062")
    current = await uow(access.current, TG, now=now)
    assert current is not None and current.role == "superviseur"

    # Someone else's role can't be chosen.
    await enrol(uow, "superviseur", telegram_id=TG + 1)
    others = await uow(access.roles, TG + 1)
    with pytest.raises(Forbidden):
        await uow(access.choose_role, TG, others[0].id, now=now)

    # A new session asks again.
    await uow(access.logout, TG)
    later = now + timedelta(minutes=1)
    await uow(access.login, SETTINGS, TG, pyotp.TOTP(secret).at(later), now=later)
    assert (await uow(access.status, TG, now=later)).etat == "choix_role"


# --- perimeter ------------------------------------------------------------------------------


async def _current(s: AsyncSession, now: datetime) -> access.Caller:
    caller = await access.current(s, TG, now=now)
    assert caller is not None
    return caller


async def test_gestionnaire_narrows_within_the_grant(uow: Uow) -> None:
    await enrol(uow, "gestionnaire", secteurs=["NICE-EST", "NICE-OUEST"])
    caller = await uow(_current, T0)
    assert caller.secteurs == caller.secteurs_accordes == {"NICE-EST", "NICE-OUEST"}
    assert await uow(access.secteurs_disponibles, caller) == ["NICE-EST", "NICE-OUEST"]

    narrowed = await uow(access.narrow, caller, {"NICE-EST"})
    assert narrowed.perimeter == Perimeter("062", frozenset({"NICE-EST"}))
    # Kept: the next request sees the narrowed perimeter.
    assert (await uow(_current, T0)).secteurs == {"NICE-EST"}
    assert "NICE-EST" in access.describe_perimeter(narrowed)

    with pytest.raises(Forbidden) as err:
        await uow(access.narrow, caller, {"NICE-EST", "MENTON"})
    assert err.value.key == "access.secteur_hors_perimetre" and "MENTON" in str(err.value)
    assert (await uow(_current, T0)).secteurs == {"NICE-EST"}

    for back in (None, set()):
        widened = await uow(access.narrow, caller, back)
        assert widened.secteurs == {"NICE-EST", "NICE-OUEST"}


async def test_superviseur_reads_the_department_and_may_narrow(uow: Uow) -> None:
    await enrol(uow, "superviseur")
    caller = await uow(_current, T0)
    assert caller.perimeter == Perimeter("062") and caller.secteurs_accordes is None
    assert await uow(access.secteurs_disponibles, caller) == ["MENTON", "NICE-EST", "NICE-OUEST"]
    narrowed = await uow(access.narrow, caller, ["MENTON"])
    assert narrowed.perimeter.secteurs == {"MENTON"}
    with pytest.raises(NotFound):
        await uow(access.narrow, caller, ["GRASSE"])
    assert (await uow(access.narrow, caller, None)).perimeter == Perimeter("062")


async def test_coordonnateur_sees_only_their_pial(uow: Uow) -> None:
    enrolment, _ = await enrol(uow, "coordonnateur", pial="0620001A")
    caller = await uow(_current, T0)
    assert caller.perimeter == Perimeter("062", None, "0620001A")
    assert caller.can_write_accompagnements and not caller.can_read_candidatures
    assert not caller.can_set_parametres and not caller.can_import

    async def coordinations(s: AsyncSession) -> list[tuple[str, int]]:
        rows = await s.scalars(select(CoordonnateurPial))
        return [(r.pial_rne, r.service_user_id) for r in rows]

    assert await uow(coordinations) == [("0620001A", enrolment.user_id)]
    with pytest.raises(Forbidden) as err:
        await uow(access.narrow, caller, {"MENTON"})
    assert err.value.key == "access.perimetre_pial"
    assert (await uow(access.narrow, caller, None)).perimeter == caller.perimeter
    assert await uow(access.secteurs_disponibles, caller) == []


async def test_same_invitation_twice_grants_one_role(uow: Uow) -> None:
    await enrol(uow, "superviseur")
    code = await uow(access.invite, SETTINGS, "superviseur", "062", now=T0)
    await uow(access.redeem, SETTINGS, code, TG, now=T0)

    async def count(s: AsyncSession) -> int:
        return len(list(await s.scalars(select(ServiceRole))))

    assert await uow(count) == 1


async def test_lost_authenticator_reset_then_reenrol_with_a_new_code(uow: Uow) -> None:
    enrolment, old_secret = await enrol(uow, "gestionnaire", secteurs=["MENTON"])
    now = T0 + timedelta(minutes=1)
    assert await uow(access.current, TG, now=now) is not None
    [agent] = await uow(access.list_agents, "062", now=now)
    assert (agent.id, agent.telegram_lie, agent.facteur) == (enrolment.user_id, True, "actif")
    assert [r.secteurs for r in agent.roles] == [("MENTON",)]

    await uow(access.reset_second_factor, enrolment.user_id)
    # The session is over and the old authenticator opens nothing; the chat is told to
    # use /connexion, as any chat that is not enrolled.
    later = now + timedelta(minutes=1)
    assert (await uow(access.status, TG, now=later)).etat == "inconnu"
    with pytest.raises(Forbidden):
        await uow(access.login, SETTINGS, TG, pyotp.TOTP(old_secret).at(later), now=later)
    [agent] = await uow(access.list_agents, now=later)
    assert agent.facteur == "aucun" and len(agent.roles) == 1

    # A new invitation enrols a new authenticator; the role is the same one, not a second.
    code = await uow(access.invite, SETTINGS, "gestionnaire", "062", ["MENTON"], now=later)
    again = await uow(access.redeem, SETTINGS, code, TG, now=later)
    assert again.otpauth_uri is not None and again.role_id == enrolment.role_id
    new_secret = pyotp.parse_uri(again.otpauth_uri).secret
    assert new_secret != old_secret
    await uow(_confirm, TG, pyotp.TOTP(new_secret).at(later), later)
    assert await uow(access.current, TG, now=later) is not None


async def test_reset_lifts_a_lock_and_unknown_agent_is_refused(uow: Uow) -> None:
    enrolment, secret = await enrol(uow, "superviseur")
    for _ in range(access.MAX_FAILURES):
        with pytest.raises(DomainError):
            await uow(access.login, SETTINGS, TG, wrong_code(secret, T0), now=T0)
    [agent] = await uow(access.list_agents, now=T0)
    assert agent.verrouille_jusqu_au == T0 + access.LOCK_DURATION
    await uow(access.reset_second_factor, enrolment.user_id)
    [agent] = await uow(access.list_agents, now=T0)
    assert agent.verrouille_jusqu_au is None
    with pytest.raises(NotFound):
        await uow(access.reset_second_factor, 9999)
    with pytest.raises(NotFound):
        await uow(access.revoke, 9999)


async def test_revoked_agent_has_no_access_left(uow: Uow) -> None:
    enrolment, secret = await enrol(uow, "coordonnateur", pial="0620001A")
    await uow(access.revoke, enrolment.user_id)
    now = T0 + timedelta(minutes=1)
    assert (await uow(access.status, TG, now=now)).etat == "inconnu"
    with pytest.raises(Forbidden):
        await uow(access.login, SETTINGS, TG, pyotp.TOTP(secret).at(now), now=now)

    async def left(s: AsyncSession) -> tuple[int, int, int | None]:
        roles = len(list(await s.scalars(select(ServiceRole))))
        links = len(list(await s.scalars(select(CoordonnateurPial))))
        user = await s.get(ServiceUser, enrolment.user_id)
        assert user is not None
        return roles, links, user.telegram_id

    assert await uow(left) == (0, 0, None)
    assert await uow(access.list_agents, "062") == []
    [agent] = await uow(access.list_agents)
    assert agent.roles == () and not agent.telegram_lie and agent.facteur == "aucun"


# --- command line ---------------------------------------------------------------------------


def _aesh(
    tmp: Path, *args: str, secret: str | None = "clé-cli"
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AESH_")}
    env |= {"AESH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'cli.db'}", "AESH_DEPARTEMENT": "062"}
    if secret is not None:
        env["AESH_SECRET_KEY"] = secret
    return subprocess.run(
        [sys.executable, "-m", "aesh", *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_cli_admin_invite(tmp_path: Path) -> None:
    res = _aesh(
        tmp_path, "admin", "invite", "--role", "gestionnaire", "--departement", "062",
        "--secteur", "NICE-EST", "--secteur", "MENTON", "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert set(data) == {"code", "role", "departement", "secteurs", "pial_rne", "expires_at"}
    assert CODE_RE.match(data["code"])
    assert data["secteurs"] == ["MENTON", "NICE-EST"] and data["pial_rne"] is None
    issued_at = datetime.fromisoformat(data["expires_at"]) - timedelta(hours=72)
    assert abs(issued_at - datetime.now(UTC)) < timedelta(minutes=5)

    # The printed code works against the same database with the same key.
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    try:
        settings = Settings(_env_file=None, secret_key="clé-cli")
        async with make_sessionmaker(engine)() as s:
            enrolment = await access.redeem(s, settings, data["code"], TG)
            assert enrolment.role == "gestionnaire"
    finally:
        await engine.dispose()

    text = _aesh(tmp_path, "admin", "invite", "--role", "superviseur", "--departement", "062")
    assert text.returncode == 0, text.stderr
    assert "Code d'invitation" in text.stdout and "heure de Paris" in text.stdout
    assert re.search(r"[A-HJ-NP-Z2-9]{4}(-[A-HJ-NP-Z2-9]{4}){3}", text.stdout)

    refused = _aesh(tmp_path, "admin", "invite", "--role", "coordonnateur", "--departement", "062")
    assert refused.returncode == 1 and refused.stdout == ""
    assert t("access.pial_requise") in refused.stderr

    no_key = _aesh(
        tmp_path, "admin", "invite", "--role", "superviseur", "--departement", "062", secret=None
    )
    assert no_key.returncode == 2 and "AESH_SECRET_KEY" in no_key.stderr


async def test_cli_admin_agents_reset_and_revoke(tmp_path: Path) -> None:
    res = _aesh(tmp_path, "admin", "agents")
    assert res.returncode == 0 and t("access.aucun_agent") in res.stdout, res.stderr
    data = json.loads(_aesh(
        tmp_path, "admin", "invite", "--role", "superviseur", "--departement", "062", "--json",
    ).stdout)  # fmt: skip
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    try:
        settings = Settings(_env_file=None, secret_key="clé-cli")
        async with make_sessionmaker(engine)() as s:
            enrolment = await access.redeem(s, settings, data["code"], TG)
            await s.commit()
    finally:
        await engine.dispose()

    listed = _aesh(tmp_path, "admin", "agents", "--departement", "062", "--json")
    assert listed.returncode == 0, listed.stderr
    [agent] = json.loads(listed.stdout)
    assert agent["id"] == enrolment.user_id and agent["telegram"] is True
    assert agent["second_facteur"] == "a_confirmer"
    assert agent["roles"] == [
        {"role": "superviseur", "departement": "062", "secteurs": None, "pial_rne": None}
    ]
    assert str(TG) not in listed.stdout  # no Telegram number printed
    text = _aesh(tmp_path, "admin", "agents").stdout
    assert "superviseur — département 062" in text and "à confirmer" in text

    reset = _aesh(tmp_path, "admin", "reset-totp", str(enrolment.user_id))
    assert reset.returncode == 0 and "réinitialisé" in reset.stdout, reset.stderr
    revoked = _aesh(tmp_path, "admin", "revoke", str(enrolment.user_id))
    assert revoked.returncode == 0 and "retiré" in revoked.stdout, revoked.stderr
    assert (
        json.loads(_aesh(tmp_path, "admin", "agents", "--departement", "062", "--json").stdout)
        == []
    )
    unknown = _aesh(tmp_path, "admin", "revoke", "999")
    assert unknown.returncode == 1 and "999" in unknown.stderr and unknown.stdout == ""
