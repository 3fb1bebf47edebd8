"""Service access (domain 1): invitations, TOTP second factor, sessions, roles and perimeter.

Flow: `aesh admin invite` → `issue_invitation` prints a one-time code (72 h); the agent sends
`/connexion CODE` → `redeem` binds the Telegram account, grants the role and shows a TOTP
enrolment (otpauth URI, `qr_png`); the first correct TOTP code → `confirm_totp` (which also
opens the first session); afterwards `login` with a TOTP code. Every service update then asks
`status`/`current`, which is the only way to obtain a `Caller`, and so a `Perimeter`.

Nothing here commits: the caller's unit of work does. A refused TOTP code still changes the
failure counter and the lock, so a caller that catches the `DomainError` must commit all the
same (the bot's handlers answer refusals instead of re-raising them, and its unit of work then
commits).

Secrets: invitation codes are stored only as HMAC-SHA256 digests; the TOTP secret must be
readable to verify codes, so it is stored sealed with a key derived from AESH_SECRET_KEY
(changing that key means enrolling again). Neither ever reaches a log or a repr.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import logging
import math
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

import pyotp
import segno
from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.errors import Forbidden, InvalidInput, NotFound
from core.models import (
    CoordonnateurPial,
    Invitation,
    Pial,
    Secteur,
    ServiceRole,
    ServiceSession,
    ServiceUser,
)
from core.models.base import utcnow
from core.perimeter import Perimeter
from core.texts import t

log = logging.getLogger("aesh.access")

ROLES: tuple[str, ...] = ("gestionnaire", "superviseur", "coordonnateur")
INVITATION_TTL = timedelta(hours=72)
SESSION_IDLE = timedelta(hours=12)
MAX_FAILURES = 5
LOCK_DURATION = timedelta(minutes=15)
TOTP_ISSUER = "AESH bot"
TOTP_INTERVAL = 30

# No 0/O, 1/I: the code is read on a screen and typed on a phone.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_GROUPS = 4
CODE_GROUP_LEN = 4
CODE_LEN = CODE_GROUPS * CODE_GROUP_LEN  # 16 × 5 bits = 80 bits: guessing is hopeless

_DEPARTEMENT = re.compile(r"[0-9]{2}[0-9AB]")  # 062, 974, 02A
_SEPARATORS = re.compile(r"[\s\-_.]+")


# --- who is calling ------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """An enrolled, authenticated chat acting under one chosen role.

    `secteurs` is the effective set (the narrowing chosen with /perimetre within the grant);
    `secteurs_accordes` the grant itself. None means the whole department.
    """

    user_id: int
    role_id: int
    role: str
    departement: str
    secteurs: frozenset[str] | None
    pial_rne: str | None
    secteurs_accordes: frozenset[str] | None = None

    @property
    def perimeter(self) -> Perimeter:
        return Perimeter(self.departement, self.secteurs, self.pial_rne)

    # Permissions follow domain §1. A coordonnateur's writes are confined to their PIAL by
    # the perimeter, not here.
    @property
    def can_write_accompagnements(self) -> bool:
        return self.role in ("gestionnaire", "coordonnateur")

    @property
    def can_set_parametres(self) -> bool:
        return self.role == "superviseur"

    @property
    def can_review_candidatures(self) -> bool:
        """Set a candidature's status, convert to AESH prévisionnel: gestionnaires only. The
        superviseur reads everything of the department but acts on none of it."""
        return self.role == "gestionnaire"

    @property
    def can_read_candidatures(self) -> bool:
        # A coordonnateur's remit is their PIAL's students and missions, not recruitment.
        return self.role in ("gestionnaire", "superviseur")

    @property
    def can_import(self) -> bool:
        # Imports touch the whole department's reference data: the gestionnaire's job.
        return self.role == "gestionnaire"


@dataclass(frozen=True)
class RoleChoice:
    """One of the roles a user holds, to be offered when they hold several."""

    id: int
    role: str
    departement: str
    secteurs: tuple[str, ...] | None
    pial_rne: str | None

    @property
    def libelle(self) -> str:
        return t(
            "access.libelle_role",
            role=role_label(self.role),
            departement=self.departement,
            secteurs=list(self.secteurs or ()),
            pial_rne=self.pial_rne,
        )


Etat = Literal["inconnu", "a_confirmer", "deconnecte", "expiree", "choix_role", "connecte"]


@dataclass(frozen=True)
class Access:
    """What a chat may do now. `caller` is set only when `etat == "connecte"`.

    inconnu: no enrolled service user for this Telegram account (answer `access.reserve`);
    a_confirmer: invitation redeemed, the first TOTP code is still due (`confirm_totp`);
    deconnecte: enrolled, no session (`login`); expiree: the session has just been ended for
    idleness (say so once; the next call reads `deconnecte`); choix_role: logged in with
    several roles and none chosen yet (`roles`, `choose_role`).
    """

    etat: Etat
    caller: Caller | None = None


@dataclass(frozen=True)
class IssuedInvitation:
    code: str = field(repr=False)
    role: str
    departement: str
    secteurs: tuple[str, ...] | None
    pial_rne: str | None
    expires_at: datetime


@dataclass(frozen=True)
class Enrolment:
    """Result of `redeem`. `otpauth_uri` carries the TOTP secret: it is given only while the
    factor is unconfirmed (once confirmed the secret is never shown again), and kept out of
    the repr so that it cannot end up in a log by accident."""

    user_id: int
    role_id: int
    role: str
    otpauth_uri: str | None = field(repr=False)
    totp_a_confirmer: bool


def role_label(role: str) -> str:
    return t(f"access.role_{role}")


# --- invitations ---------------------------------------------------------------------------


def normalize_code(code: str) -> str:
    """What the agent typed, as stored: dashes, spaces and case do not matter."""
    return _SEPARATORS.sub("", code).upper()


def format_code(code: str) -> str:
    raw = normalize_code(code)
    return "-".join(raw[i : i + CODE_GROUP_LEN] for i in range(0, len(raw), CODE_GROUP_LEN))


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LEN))


def _code_hash(settings: Settings, normalized: str) -> str:
    key = settings.require_secret_key().encode()
    return hmac.new(key, b"invitation:" + normalized.encode(), hashlib.sha256).hexdigest()


def _clean_secteurs(secteurs: Iterable[str] | None) -> list[str] | None:
    if secteurs is None:
        return None
    cleaned = sorted({s.strip() for s in secteurs if s and s.strip()})
    return cleaned or None


async def _check_secteurs_exist(session: AsyncSession, dep: str, wanted: list[str]) -> None:
    known = set(await session.scalars(select(Secteur.code).where(Secteur.departement == dep)))
    # Before the first import of the department there is nothing to check against.
    if known and (missing := sorted(set(wanted) - known)):
        raise NotFound("access.secteur_inconnu", departement=dep, secteurs=missing)


async def _find_pial(session: AsyncSession, dep: str, rne: str) -> Pial | None:
    pial = await session.get(Pial, rne) or await session.get(Pial, rne.upper())
    return pial if pial is not None and pial.departement == dep else None


async def issue_invitation(
    session: AsyncSession,
    settings: Settings,
    role: str,
    departement: str,
    secteurs: Iterable[str] | None = None,
    pial_rne: str | None = None,
    *,
    now: datetime | None = None,
) -> IssuedInvitation:
    now = _now(now)
    role = role.strip().lower()
    if role not in ROLES:
        raise InvalidInput("access.role_inconnu", role=role)
    dep = departement.strip().upper()
    if not _DEPARTEMENT.fullmatch(dep):
        raise InvalidInput("access.departement_invalide", departement=departement)
    wanted = _clean_secteurs(secteurs)
    rne = (pial_rne or "").strip() or None
    if wanted and role != "gestionnaire":
        raise InvalidInput("access.secteurs_reserves_gestionnaire", role=role_label(role))
    if role == "coordonnateur":
        if rne is None:
            raise InvalidInput("access.pial_requise")
        pial = await _find_pial(session, dep, rne)
        if pial is None:
            raise NotFound("access.pial_inconnue", departement=dep, pial_rne=rne)
        rne = pial.rne
    elif rne is not None:
        raise InvalidInput("access.pial_reservee_coordonnateur")
    if wanted:
        await _check_secteurs_exist(session, dep, wanted)
    code = _new_code()
    expires = now + INVITATION_TTL
    session.add(
        Invitation(
            code_hash=_code_hash(settings, code),
            role=role,
            departement=dep,
            secteurs=wanted,
            pial_rne=rne,
            expires_at=expires,
            created_at=now,
        )
    )
    await session.flush()
    return IssuedInvitation(
        format_code(code), role, dep, tuple(wanted) if wanted else None, rne, expires
    )


async def invite(
    session: AsyncSession,
    settings: Settings,
    role: str,
    departement: str,
    secteurs: Iterable[str] | None = None,
    pial_rne: str | None = None,
    *,
    now: datetime | None = None,
) -> str:
    """A one-time enrolment code (`XXXX-XXXX-XXXX-XXXX`), valid 72 h; only its hash is kept."""
    issued = await issue_invitation(
        session, settings, role, departement, secteurs, pial_rne, now=now
    )
    return issued.code


async def redeem(
    session: AsyncSession,
    settings: Settings,
    code: str,
    telegram_id: int,
    *,
    now: datetime | None = None,
) -> Enrolment:
    """Spend an invitation: bind `telegram_id`, grant the role, set up the TOTP factor.

    Unknown, used and expired codes get the same refusal, so the answer tells nothing.
    """
    now = _now(now)
    normalized = normalize_code(code)
    if len(normalized) != CODE_LEN or any(c not in CODE_ALPHABET for c in normalized):
        raise InvalidInput("access.code_invalide")
    inv = await session.scalar(
        select(Invitation).where(Invitation.code_hash == _code_hash(settings, normalized))
    )
    if inv is None or inv.used_at is not None or _aware(inv.expires_at) <= now:
        raise InvalidInput("access.code_invalide")
    # Checked before the code is spent: a refusal here must leave the invitation usable.
    if inv.role == "coordonnateur" and (
        inv.pial_rne is None or await _find_pial(session, inv.departement, inv.pial_rne) is None
    ):
        raise NotFound("access.pial_inconnue", departement=inv.departement, pial_rne=inv.pial_rne)

    # Conditional update: of two chats racing on one code, exactly one wins.
    claimed = cast(
        CursorResult[Any],
        await session.execute(
            update(Invitation)
            .where(Invitation.id == inv.id, Invitation.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        ),
    )
    if claimed.rowcount != 1:
        raise InvalidInput("access.code_invalide")

    user = await user_by_telegram(session, telegram_id)
    if user is None:
        user = ServiceUser(
            telegram_id=telegram_id, totp_confirmed=False, failed_attempts=0, created_at=now
        )
        session.add(user)
        await session.flush()
    role = await _grant(session, user.id, inv)
    inv.used_at = now
    inv.used_by = user.id

    secret = _unseal(settings, user.totp_secret) if user.totp_secret else None
    if secret is None:
        # First enrolment, or a secret sealed under a former AESH_SECRET_KEY: start afresh.
        secret = pyotp.random_base32()
        user.totp_secret = _seal(settings, secret)
        user.totp_confirmed = False
    uri = None
    if not user.totp_confirmed:
        uri = pyotp.TOTP(secret, interval=TOTP_INTERVAL).provisioning_uri(
            name=f"agent-{user.id}", issuer_name=TOTP_ISSUER
        )
    await session.flush()
    return Enrolment(user.id, role.id, role.role, uri, not user.totp_confirmed)


async def _grant(session: AsyncSession, user_id: int, inv: Invitation) -> ServiceRole:
    secteurs = _clean_secteurs(inv.secteurs)
    # The same grant twice (an invitation sent again) must not make two identical roles.
    for existing in await session.scalars(
        select(ServiceRole).where(
            ServiceRole.user_id == user_id,
            ServiceRole.role == inv.role,
            ServiceRole.departement == inv.departement,
        )
    ):
        if _clean_secteurs(existing.secteurs) == secteurs and existing.pial_rne == inv.pial_rne:
            role = existing
            break
    else:
        role = ServiceRole(
            user_id=user_id,
            role=inv.role,
            departement=inv.departement,
            secteurs=secteurs,
            secteurs_choisis=None,
            pial_rne=inv.pial_rne,
        )
        session.add(role)
        await session.flush()
    if (
        inv.role == "coordonnateur"
        and inv.pial_rne is not None
        and await session.get(CoordonnateurPial, (inv.pial_rne, user_id)) is None
    ):
        session.add(CoordonnateurPial(pial_rne=inv.pial_rne, service_user_id=user_id))
        await session.flush()
    return role


def qr_png(uri: str) -> bytes:
    """The otpauth URI as a QR code PNG, to scan with an authenticator app."""
    buf = io.BytesIO()
    segno.make(uri, error="m", micro=False).save(buf, kind="png", scale=8, border=4)
    return buf.getvalue()


# --- TOTP secret at rest -------------------------------------------------------------------

# Sealed form: "v1." + base64url(nonce 8 | ciphertext | tag 16); a 160-bit secret gives 62
# characters, within the 64 of `service_users.totp_secret`. The cipher is HMAC-SHA256 in
# counter mode with encrypt-then-MAC: the standard library has no AEAD, and this needs none.
_SEAL_VERSION = "v1."
_NONCE_LEN = 8
_TAG_LEN = 16


def _subkey(settings: Settings, label: bytes) -> bytes:
    master = settings.require_secret_key().encode()
    return hmac.new(master, b"aesh-totp-seal:" + label, hashlib.sha256).digest()


def _keystream(key: bytes, nonce: bytes, n: int) -> bytes:
    blocks = (
        hmac.new(key, nonce + i.to_bytes(4, "big"), hashlib.sha256).digest()
        for i in range(math.ceil(n / 32))
    )
    return b"".join(blocks)[:n]


def _seal(settings: Settings, secret_b32: str) -> str:
    raw = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    nonce = secrets.token_bytes(_NONCE_LEN)
    stream = _keystream(_subkey(settings, b"enc"), nonce, len(raw))
    ct = bytes(a ^ b for a, b in zip(raw, stream, strict=True))
    tag = hmac.new(_subkey(settings, b"mac"), nonce + ct, hashlib.sha256).digest()[:_TAG_LEN]
    return _SEAL_VERSION + base64.urlsafe_b64encode(nonce + ct + tag).decode().rstrip("=")


def _unseal(settings: Settings, sealed: str) -> str | None:
    """The base32 secret, or None when it was sealed under another key (or tampered with)."""
    if not sealed.startswith(_SEAL_VERSION):
        return None
    body = sealed[len(_SEAL_VERSION) :]
    try:
        blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        return None
    if len(blob) <= _NONCE_LEN + _TAG_LEN:
        return None
    nonce, ct, tag = blob[:_NONCE_LEN], blob[_NONCE_LEN:-_TAG_LEN], blob[-_TAG_LEN:]
    expected = hmac.new(_subkey(settings, b"mac"), nonce + ct, hashlib.sha256).digest()
    if not hmac.compare_digest(expected[:_TAG_LEN], tag):
        return None
    stream = _keystream(_subkey(settings, b"enc"), nonce, len(ct))
    raw = bytes(a ^ b for a, b in zip(ct, stream, strict=True))
    return base64.b32encode(raw).decode().rstrip("=")


# --- second factor and sessions ------------------------------------------------------------


async def user_by_telegram(session: AsyncSession, telegram_id: int) -> ServiceUser | None:
    return await session.scalar(select(ServiceUser).where(ServiceUser.telegram_id == telegram_id))


async def confirm_totp(
    session: AsyncSession,
    settings: Settings,
    user: ServiceUser,
    code: str,
    *,
    now: datetime | None = None,
) -> ServiceSession:
    """The first correct code confirms the factor. It also opens the first session: the
    same code cannot serve twice, so asking for another one at once would only annoy."""
    return await _authenticate(session, settings, user, code, _now(now))


async def login(
    session: AsyncSession,
    settings: Settings,
    telegram_id: int,
    totp_code: str,
    *,
    now: datetime | None = None,
) -> ServiceSession:
    """Open a session with a TOTP code (±1 step of 30 s). Five wrong codes in a row lock the
    account for 15 minutes; a code already accepted, or an older one, is refused (replay)."""
    user = await user_by_telegram(session, telegram_id)
    if user is None or not await _roles_of(session, user.id):
        raise Forbidden("access.reserve")
    return await _authenticate(session, settings, user, totp_code, _now(now))


async def _authenticate(
    session: AsyncSession, settings: Settings, user: ServiceUser, code: str, now: datetime
) -> ServiceSession:
    locked = _aware(user.locked_until) if user.locked_until is not None else None
    if locked is not None and locked > now:
        raise Forbidden("access.verrouille", minutes=_minutes(locked - now))
    secret = _unseal(settings, user.totp_secret) if user.totp_secret else None
    if secret is None:
        if user.totp_secret:
            log.warning("TOTP secret of service user %s unreadable: re-invite them", user.id)
        raise Forbidden("access.reserve")
    row = await session.get(ServiceSession, user.id)
    step = _matching_step(secret, code, now)
    if step is None:
        user.failed_attempts = (user.failed_attempts or 0) + 1
        if user.failed_attempts >= MAX_FAILURES:
            # The lock is the penalty; after it the agent gets a fresh set of attempts.
            user.failed_attempts = 0
            user.locked_until = now + LOCK_DURATION
            await session.flush()
            raise Forbidden("access.verrouille", minutes=_minutes(LOCK_DURATION))
        await session.flush()
        raise InvalidInput("access.totp_invalide", restants=MAX_FAILURES - user.failed_attempts)
    # RFC 6238 §5.2: never accept a step at or before the last accepted one.
    if row is not None and row.last_totp_step is not None and step <= row.last_totp_step:
        raise InvalidInput("access.code_deja_utilise")
    user.failed_attempts = 0
    user.locked_until = None
    user.totp_confirmed = True
    if row is None:
        row = ServiceSession(user_id=user.id, telegram_id=user.telegram_id)
        session.add(row)
    assert user.telegram_id is not None
    row.telegram_id = user.telegram_id
    row.last_totp_step = step
    row.authenticated_at = now
    row.last_seen = now
    roles = await _roles_of(session, user.id)
    # Each session chooses its role afresh: a user with several roles must say which.
    row.role_id = roles[0].id if len(roles) == 1 else None
    await session.flush()
    return row


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    typed = _SEPARATORS.sub("", code)
    if len(typed) != 6 or not typed.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_INTERVAL)
    current_step = int(now.timestamp()) // TOTP_INTERVAL
    # valid_window=1: a phone clock a little off, or a code typed as it rolled over.
    for step in (current_step, current_step - 1, current_step + 1):
        if hmac.compare_digest(totp.generate_otp(step), typed):
            return step
    return None


async def status(session: AsyncSession, telegram_id: int, *, now: datetime | None = None) -> Access:
    """Where this chat stands; a live session is touched (idle time restarts)."""
    now = _now(now)
    user = await user_by_telegram(session, telegram_id)
    if user is None:
        return Access("inconnu")
    roles = await _roles_of(session, user.id)
    # No secret: the factor was reset by an administrator; a new invitation re-enrols.
    if not roles or not user.totp_secret:
        return Access("inconnu")
    if not user.totp_confirmed:
        return Access("a_confirmer")
    row = await session.get(ServiceSession, user.id)
    if row is None or row.authenticated_at is None or row.telegram_id != telegram_id:
        return Access("deconnecte")
    last = _aware(row.last_seen or row.authenticated_at)
    if now - last >= SESSION_IDLE:
        _end(row)
        await session.flush()
        return Access("expiree")
    row.last_seen = now
    await session.flush()
    role = next((r for r in roles if r.id == row.role_id), None)
    if role is None:
        return Access("choix_role")
    return Access("connecte", _caller(role))


async def current(
    session: AsyncSession, telegram_id: int, *, now: datetime | None = None
) -> Caller | None:
    """The caller, or None: not enrolled, not logged in, idle 12 h (the session is then
    ended), or several roles and none chosen yet (see `status` to tell these apart)."""
    return (await status(session, telegram_id, now=now)).caller


async def roles(session: AsyncSession, telegram_id: int) -> list[RoleChoice]:
    user = await user_by_telegram(session, telegram_id)
    if user is None:
        return []
    return [
        RoleChoice(
            r.id,
            r.role,
            r.departement,
            tuple(_clean_secteurs(r.secteurs) or ()) or None,
            r.pial_rne,
        )
        for r in await _roles_of(session, user.id)
    ]


async def choose_role(
    session: AsyncSession, telegram_id: int, role_id: int, *, now: datetime | None = None
) -> Caller:
    access = await status(session, telegram_id, now=now)
    if access.etat == "expiree":
        raise Forbidden("access.session_expiree")
    if access.etat not in ("choix_role", "connecte"):
        raise Forbidden("access.reserve")
    user = await user_by_telegram(session, telegram_id)
    assert user is not None
    role = await session.get(ServiceRole, role_id)
    if role is None or role.user_id != user.id:
        raise Forbidden("access.role_non_disponible")
    row = await session.get(ServiceSession, user.id)
    assert row is not None
    row.role_id = role.id
    await session.flush()
    return _caller(role)


async def logout(session: AsyncSession, telegram_id: int) -> None:
    user = await user_by_telegram(session, telegram_id)
    if user is None:
        return
    row = await session.get(ServiceSession, user.id)
    if row is not None:
        _end(row)
        await session.flush()


def _end(row: ServiceSession) -> None:
    # The row stays: its last_totp_step keeps refusing a replayed code after a logout.
    row.authenticated_at = None
    row.last_seen = None
    row.role_id = None


async def _roles_of(session: AsyncSession, user_id: int) -> list[ServiceRole]:
    return list(
        await session.scalars(
            select(ServiceRole).where(ServiceRole.user_id == user_id).order_by(ServiceRole.id)
        )
    )


# --- administration (aesh admin agents | reset-totp | revoke) -------------------------------


@dataclass(frozen=True)
class AgentSummary:
    """What an administrator sees of an agent: no secret, no Telegram number."""

    id: int
    telegram_lie: bool
    facteur: Literal["actif", "a_confirmer", "aucun"]
    verrouille_jusqu_au: datetime | None
    derniere_activite: datetime | None
    roles: tuple[RoleChoice, ...]


async def list_agents(
    session: AsyncSession, departement: str | None = None, *, now: datetime | None = None
) -> list[AgentSummary]:
    """Service agents, with a role in `departement` when given; revoked ones (no role) too
    when no department is given, so that an administrator can see them."""
    now = _now(now)
    users = list(await session.scalars(select(ServiceUser).order_by(ServiceUser.id)))
    sessions = {row.user_id: row for row in await session.scalars(select(ServiceSession))}
    out = []
    for user in users:
        roles = await _roles_of(session, user.id)
        if departement is not None and not any(r.departement == departement for r in roles):
            continue
        locked = _aware(user.locked_until) if user.locked_until is not None else None
        row = sessions.get(user.id)
        seen = row.last_seen or row.authenticated_at if row is not None else None
        out.append(
            AgentSummary(
                id=user.id,
                telegram_lie=user.telegram_id is not None,
                facteur=(
                    "aucun"
                    if not user.totp_secret
                    else "actif"
                    if user.totp_confirmed
                    else "a_confirmer"
                ),
                verrouille_jusqu_au=locked if locked is not None and locked > now else None,
                derniere_activite=_aware(seen) if seen is not None else None,
                roles=tuple(
                    RoleChoice(
                        r.id,
                        r.role,
                        r.departement,
                        tuple(_clean_secteurs(r.secteurs) or ()) or None,
                        r.pial_rne,
                    )
                    for r in roles
                ),
            )
        )
    return out


async def _agent(session: AsyncSession, user_id: int) -> ServiceUser:
    user = await session.get(ServiceUser, user_id)
    if user is None:
        raise NotFound("access.agent_inconnu", id=user_id)
    return user


async def reset_second_factor(session: AsyncSession, user_id: int) -> None:
    """A lost or replaced authenticator: the secret goes, the session ends, the lock is
    lifted. The agent keeps their roles and enrols a new authenticator with the next
    invitation code they redeem (`/connexion CODE`)."""
    user = await _agent(session, user_id)
    user.totp_secret = None
    user.totp_confirmed = False
    user.failed_attempts = 0
    user.locked_until = None
    row = await session.get(ServiceSession, user.id)
    if row is not None:
        _end(row)
    await session.flush()
    log.info("second factor of service user %s reset by an administrator", user.id)


async def revoke(session: AsyncSession, user_id: int) -> None:
    """An agent who leaves the service: every role, the PIAL attachments, the Telegram
    binding and the second factor go; the account row stays for the journal's sake."""
    user = await _agent(session, user_id)
    for role in await _roles_of(session, user.id):
        await session.delete(role)
    for link in await session.scalars(
        select(CoordonnateurPial).where(CoordonnateurPial.service_user_id == user.id)
    ):
        await session.delete(link)
    row = await session.get(ServiceSession, user.id)
    if row is not None:
        await session.delete(row)
    user.telegram_id = None
    user.totp_secret = None
    user.totp_confirmed = False
    user.failed_attempts = 0
    user.locked_until = None
    await session.flush()
    log.info("service user %s revoked by an administrator", user.id)


# --- perimeter -----------------------------------------------------------------------------


def _caller(role: ServiceRole) -> Caller:
    granted = _frozen(role.secteurs)
    chosen = _frozen(role.secteurs_choisis)
    if role.role == "coordonnateur":
        effective = None
    elif chosen is None:
        effective = granted
    elif granted is None:
        effective = chosen
    else:
        # A choice that no longer meets the grant (grant changed) falls back to the grant.
        effective = (chosen & granted) or granted
    return Caller(
        user_id=role.user_id,
        role_id=role.id,
        role=role.role,
        departement=role.departement,
        secteurs=effective,
        pial_rne=role.pial_rne if role.role == "coordonnateur" else None,
        secteurs_accordes=granted,
    )


def _frozen(values: list[str] | None) -> frozenset[str] | None:
    cleaned = _clean_secteurs(values)
    return frozenset(cleaned) if cleaned else None


async def narrow(session: AsyncSession, caller: Caller, secteurs: Iterable[str] | None) -> Caller:
    """/perimetre: restrict the view to some secteurs within the grant; None or empty goes
    back to everything granted. The choice is kept with the role, for the next sessions too.

    A superviseur may narrow their reading too (any secteur of the department); a
    coordonnateur's perimeter is their PIAL and does not narrow by secteur.
    """
    role = await session.get(ServiceRole, caller.role_id)
    if role is None or role.user_id != caller.user_id:
        raise Forbidden("access.reserve")
    wanted = _clean_secteurs(secteurs)
    if role.role == "coordonnateur":
        if wanted:
            raise Forbidden("access.perimetre_pial")
        return _caller(role)
    granted = _frozen(role.secteurs)
    if wanted:
        if granted is not None:
            outside = sorted(set(wanted) - granted)
            if outside:
                raise Forbidden("access.secteur_hors_perimetre", secteurs=outside)
        else:
            await _check_secteurs_exist(session, role.departement, wanted)
    role.secteurs_choisis = wanted if wanted and frozenset(wanted) != granted else None
    await session.flush()
    return _caller(role)


async def secteurs_disponibles(session: AsyncSession, caller: Caller) -> list[str]:
    """The secteurs /perimetre may offer: the grant, or every secteur of the department."""
    if caller.role == "coordonnateur":
        return []
    if caller.secteurs_accordes is not None:
        return sorted(caller.secteurs_accordes)
    return list(
        await session.scalars(
            select(Secteur.code)
            .where(Secteur.departement == caller.departement)
            .order_by(Secteur.code)
        )
    )


def describe_perimeter(caller: Caller) -> str:
    return t(
        "access.perimetre",
        departement=caller.departement,
        secteurs=sorted(caller.secteurs or ()),
        pial_rne=caller.pial_rne,
    )


# --- time ----------------------------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _aware(dt: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _minutes(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds() / 60))
