"""Candidate use cases (domain 2): account, candidatures, pieces, diplomas, renewal, erasure.

Both front ends call these: the bot for what candidates type, the mail agent for replies.
Mails and chat messages are queued in the same transaction as the change.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from core.config import Settings
from core.dates import today_paris
from core.errors import Forbidden, InvalidInput, NotFound
from core.models import BotNotification, Candidat, Candidature, Diplome, Piece
from core.models.base import utcnow
from core.rules import candidature as rules
from core.rules import tokens
from core.rules.contacts import contacts_for
from core.rules.files import MAX_PIECE_BYTES, sniff
from core.services import journal
from core.services.outbox import (
    MailDraft,
    encode_context,
    encode_date,
    enqueue,
    enqueue_rows,
    mail_domain,
    new_message_id,
    plus_address,
)
from core.services.storage import FileStore
from core.texts import t

CODE_TTL = timedelta(hours=72)
LOGIN_CODE_TTL = timedelta(minutes=30)
MAX_CODE_ATTEMPTS = 5


def reference(candidature_id: int) -> str:
    return f"C-{candidature_id:06d}"


def type_label(type_: str) -> str:
    return t(f"candidats.type_{type_}")


def _aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


# --- account -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    civilite: str
    nom: str
    prenom: str
    date_naissance: date
    email: str
    telephone: str
    commune: str
    code_postal: str


def _code_hash(settings: Settings, candidat_id: int, purpose: str, code: str) -> str:
    key = settings.require_secret_key().encode()
    return hmac.new(key, f"{candidat_id}:{purpose}:{code}".encode(), hashlib.sha256).hexdigest()


def _issue_code(settings: Settings, c: Candidat, purpose: str, ttl: timedelta) -> str:
    code = f"{secrets.randbelow(10**6):06d}"
    c.code_hash = _code_hash(settings, c.id, purpose, code)
    c.code_purpose = purpose
    c.code_expires_at = utcnow() + ttl
    c.code_attempts = 0
    return code


def _mail_context(
    settings: Settings, departement: str | None, type_: str | None = None
) -> dict[str, Any]:
    return {
        "service_nom": t("mail.service_nom"),
        "contact_email": contacts_for(departement, type_).campagne,
    }


def validation_link(settings: Settings, bot_username: str | None, candidat: Candidat) -> str | None:
    if not bot_username or candidat.code_expires_at is None:
        return None
    expiry = _aware(candidat.code_expires_at)
    assert expiry is not None
    token = tokens.sign(settings.require_secret_key(), "v", candidat.id, expiry.date().toordinal())
    return f"https://t.me/{bot_username}?start={token}"


async def register(
    session: AsyncSession,
    settings: Settings,
    reg: Registration,
    *,
    bot_username: str | None = None,
    telegram_id: int | None = None,
) -> Candidat:
    """Create (or refresh, while unvalidated) an account and mail its validation link/code."""
    email = reg.email.strip().lower()  # addresses are compared lower-cased everywhere
    existing = await session.scalar(select(Candidat).where(Candidat.email == email))
    if existing is not None and existing.valide_le is not None:
        raise InvalidInput("candidats.email_deja_valide")
    c = existing or Candidat()
    c.civilite, c.nom, c.prenom = reg.civilite, reg.nom, reg.prenom
    c.date_naissance, c.email, c.telephone = reg.date_naissance, email, reg.telephone
    c.commune, c.code_postal = reg.commune, reg.code_postal
    from core.rules.candidate_fields import departement_of_postcode

    c.departement = departement_of_postcode(reg.code_postal)
    if existing is None:
        session.add(c)
    await session.flush()
    code = _issue_code(settings, c, "validation", CODE_TTL)
    await session.flush()
    expiry = _aware(c.code_expires_at)
    assert expiry is not None
    await enqueue(
        session,
        settings,
        MailDraft(
            kind="validation",
            to=reg.email,
            context={
                **_mail_context(settings, c.departement),
                "prenom": c.prenom,
                "nom": c.nom,
                "civilite": c.civilite,
                "lien": validation_link(settings, bot_username, c),
                "code": code,
                "expire_le": expiry.date(),
            },
        ),
    )
    return c


async def _bind_telegram(session: AsyncSession, c: Candidat, telegram_id: int | None) -> None:
    if telegram_id is None:
        return
    other = await session.scalar(
        select(Candidat).where(Candidat.telegram_id == telegram_id, Candidat.id != c.id)
    )
    if other is not None:  # one Telegram account speaks for one candidate at a time
        other.telegram_id = None
        await session.flush()
    c.telegram_id = telegram_id


async def validate_with_token(
    session: AsyncSession, settings: Settings, token: str, telegram_id: int | None
) -> Candidat:
    parsed = tokens.verify(settings.require_secret_key(), token)
    if parsed is None or parsed[0] != "v":
        raise InvalidInput("candidats.lien_invalide")
    _, candidat_id, expiry_day = parsed
    c = await session.get(Candidat, candidat_id)
    if c is None or c.email is None:
        raise InvalidInput("candidats.lien_invalide")
    if date.fromordinal(expiry_day) < datetime.now(UTC).date() and c.valide_le is None:
        raise InvalidInput("candidats.lien_expire")
    if c.valide_le is None:
        c.valide_le = utcnow()
        c.code_hash = c.code_purpose = None
    await _bind_telegram(session, c, telegram_id)
    await session.flush()
    return c


async def _check_code(settings: Settings, c: Candidat, purpose: str, code: str) -> None:
    expiry = _aware(c.code_expires_at)
    if c.code_hash is None or c.code_purpose != purpose or expiry is None:
        raise InvalidInput("candidats.code_invalide")
    if c.code_attempts >= MAX_CODE_ATTEMPTS:
        raise InvalidInput("candidats.code_bloque")
    if expiry < utcnow():
        raise InvalidInput("candidats.code_expire")
    if not hmac.compare_digest(c.code_hash, _code_hash(settings, c.id, purpose, code.strip())):
        c.code_attempts += 1
        raise InvalidInput("candidats.code_invalide")


async def validate_with_code(
    session: AsyncSession, settings: Settings, email: str, code: str, telegram_id: int | None
) -> Candidat:
    c = await session.scalar(select(Candidat).where(Candidat.email == email.strip().lower()))
    if c is None:
        raise InvalidInput("candidats.code_invalide")
    if c.valide_le is None:
        await _check_code(settings, c, "validation", code)
        c.valide_le = utcnow()
        c.code_hash = c.code_purpose = None
    await _bind_telegram(session, c, telegram_id)
    await session.flush()
    return c


async def request_login_code(session: AsyncSession, settings: Settings, email: str) -> None:
    """Mail a login code to a validated account; says nothing either way about whether the
    address is known (no account enumeration through the bot)."""
    c = await session.scalar(select(Candidat).where(Candidat.email == email.strip().lower()))
    if c is None or c.valide_le is None:
        return
    code = _issue_code(settings, c, "login", LOGIN_CODE_TTL)
    await session.flush()
    expiry = _aware(c.code_expires_at)
    assert expiry is not None
    await enqueue(
        session,
        settings,
        MailDraft(
            kind="login_code",
            to=c.email or email,
            context={
                **_mail_context(settings, c.departement),
                "prenom": c.prenom,
                "code": code,
                "expire_le": expiry.date(),
            },
        ),
    )


async def login_with_code(
    session: AsyncSession, settings: Settings, email: str, code: str, telegram_id: int
) -> Candidat:
    c = await session.scalar(select(Candidat).where(Candidat.email == email.strip().lower()))
    if c is None or c.valide_le is None:
        raise InvalidInput("candidats.code_invalide")
    await _check_code(settings, c, "login", code)
    c.code_hash = c.code_purpose = None
    await _bind_telegram(session, c, telegram_id)
    await session.flush()
    return c


# Built once: the bot looks the candidate up on most commands and menu buttons, and building
# this statement and its cache key cost about as much as running it (~120 of ~400 us here).
_BY_TELEGRAM = select(Candidat).where(
    Candidat.telegram_id == bindparam("telegram_id"), Candidat.valide_le.is_not(None)
)


async def by_telegram(session: AsyncSession, telegram_id: int) -> Candidat | None:
    return await session.scalar(_BY_TELEGRAM, {"telegram_id": telegram_id})


# --- candidatures -------------------------------------------------------------------------


async def create_candidature(
    session: AsyncSession,
    candidat: Candidat,
    type_: str,
    reponses: dict[str, Any],
    zones: Sequence[str],
) -> Candidature:
    if type_ not in rules.TYPES:
        raise InvalidInput("candidats.type_inconnu", type=type_)
    if not zones:
        raise InvalidInput("candidats.zones_requises")
    cand = Candidature(
        candidat_id=candidat.id,
        type=type_,
        statut=rules.Statut.BROUILLON,
        zones=list(zones),
        reponses=dict(reponses),
        departement=candidat.departement,
    )
    session.add(cand)
    await session.flush()
    return cand


async def owned(session: AsyncSession, candidat: Candidat, candidature_id: int) -> Candidature:
    cand = await session.get(Candidature, candidature_id)
    if cand is None or cand.candidat_id != candidat.id:
        raise NotFound("candidats.candidature_inconnue", reference=reference(candidature_id))
    return cand


async def update_candidature(
    session: AsyncSession,
    cand: Candidature,
    reponses: dict[str, Any] | None = None,
    zones: Sequence[str] | None = None,
) -> Candidature:
    if cand.statut in rules.CLOSED:
        raise Forbidden("candidats.candidature_fermee", reference=reference(cand.id))
    if zones is not None:
        if not zones:
            raise InvalidInput("candidats.zones_requises")
        cand.zones = list(zones)
    if reponses is not None:
        cand.reponses = {**(cand.reponses or {}), **reponses}
    await session.flush()
    return cand


async def _completeness(session: AsyncSession, cand: Candidature) -> rules.Completeness:
    kinds = set(
        (
            await session.scalars(
                select(Piece.kind).where(Piece.candidature_id == cand.id, Piece.current.is_(True))
            )
        ).all()
    )
    licence = False
    if cand.candidat_id is not None:
        licence = bool(
            await session.scalar(
                select(func.count())
                .select_from(Diplome)
                .where(
                    Diplome.candidat_id == cand.candidat_id,
                    Diplome.type == "LICENCE",
                    Diplome.copie_sha256.is_not(None),
                )
            )
        )
    return rules.completeness(cand.type, kinds, licence)


async def submit(
    session: AsyncSession, cand: Candidature, today: date | None = None
) -> rules.Completeness:
    """Submission starts the 6-month validity; then the pieces decide incomplete/complete."""
    today = today or today_paris()
    if cand.statut != rules.Statut.BROUILLON:
        raise InvalidInput("candidats.deja_deposee", reference=reference(cand.id))
    cand.depose_le = today
    cand.valide_jusqu_au = rules.first_validity(today)
    c = await _completeness(session, cand)
    cand.statut = rules.status_after_pieces(cand.statut, c)
    await session.flush()
    return c


async def refresh_status(session: AsyncSession, cand: Candidature) -> rules.Completeness:
    c = await _completeness(session, cand)
    if cand.statut != rules.Statut.BROUILLON:
        cand.statut = rules.status_after_pieces(cand.statut, c)
    await session.flush()
    return c


def check_file(content: bytes) -> str:
    """The MIME type of an acceptable upload, or a French refusal."""
    if len(content) > MAX_PIECE_BYTES:
        raise InvalidInput("candidats.fichier_trop_gros", taille_mo=round(len(content) / 2**20, 1))
    mime = sniff(content[:16])
    if mime is None:
        raise InvalidInput("candidats.fichier_type")
    return mime


async def add_piece(
    session: AsyncSession, store: FileStore, cand: Candidature, kind: str, content: bytes
) -> rules.Completeness:
    """Store a piece; a re-upload replaces the current version (history kept until erasure)."""
    if cand.statut in rules.CLOSED:
        raise Forbidden("candidats.candidature_fermee", reference=reference(cand.id))
    if kind not in rules.required_pieces(cand.type):
        raise InvalidInput("candidats.piece_inconnue", piece=kind)
    mime = check_file(content)
    digest = store.put(content)
    await session.execute(
        update(Piece)
        .where(Piece.candidature_id == cand.id, Piece.kind == kind, Piece.current.is_(True))
        .values(current=False)
    )
    session.add(
        Piece(
            candidature_id=cand.id,
            kind=kind,
            sha256=digest,
            mime=mime,
            size=len(content),
            current=True,
        )
    )
    await session.flush()
    return await refresh_status(session, cand)


@dataclass(frozen=True)
class DiplomeInput:
    type: str
    intitule: str | None = None
    annee: int | None = None
    etablissement: str | None = None


async def save_diplome(
    session: AsyncSession,
    store: FileStore,
    candidat: Candidat,
    data: DiplomeInput,
    copie: bytes | None = None,
    diplome_id: int | None = None,
    today: date | None = None,
) -> Diplome:
    if data.type not in rules.DIPLOME_TYPES:
        raise InvalidInput("candidats.diplome_type", types=", ".join(rules.DIPLOME_TYPES))
    year = (today or today_paris()).year
    if data.annee is not None and not 1950 <= data.annee <= year + 1:
        raise InvalidInput("candidats.diplome_annee", annee=data.annee)
    if diplome_id is None:
        d = Diplome(candidat_id=candidat.id, type=data.type)
        session.add(d)
    else:
        found = await session.get(Diplome, diplome_id)
        if found is None or found.candidat_id != candidat.id:
            raise NotFound("candidats.diplome_inconnu")
        d = found
    d.type, d.intitule, d.annee, d.etablissement = (
        data.type,
        data.intitule,
        data.annee,
        data.etablissement,
    )
    if copie is not None:
        d.copie_mime = check_file(copie)
        d.copie_sha256 = store.put(copie)
    await session.flush()
    for cand in await candidatures_of(session, candidat):
        if cand.statut not in rules.CLOSED:
            await refresh_status(session, cand)
    return d


async def candidatures_of(session: AsyncSession, candidat: Candidat) -> list[Candidature]:
    return list(
        (
            await session.scalars(
                select(Candidature)
                .where(Candidature.candidat_id == candidat.id)
                .order_by(Candidature.id)
            )
        ).all()
    )


@dataclass
class StatusLine:
    id: int
    reference: str
    type: str
    statut: str
    missing_pieces: tuple[str, ...]
    missing_licence: bool
    valide_jusqu_au: date | None
    relance_le: date | None
    zones: list[str] = field(default_factory=list)


async def status_lines(session: AsyncSession, candidat: Candidat) -> list[StatusLine]:
    out = []
    for cand in await candidatures_of(session, candidat):
        c = await _completeness(session, cand)
        out.append(
            StatusLine(
                cand.id,
                reference(cand.id),
                cand.type,
                cand.statut,
                c.missing_pieces,
                c.missing_licence,
                cand.valide_jusqu_au,
                cand.relance_le,
                list(cand.zones or []),
            )
        )
    return out


# --- erasure ------------------------------------------------------------------------------


async def _forget_files_after_commit(
    session: AsyncSession, store: FileStore, digests: set[str]
) -> None:
    """Delete the files no longer referenced by any piece or diploma (content is shared by
    hash) once the transaction commits: a rollback must not leave rows pointing at nothing."""
    unused = []
    for digest in digests:
        pieces = select(func.count()).select_from(Piece).where(Piece.sha256 == digest)
        copies = select(func.count()).select_from(Diplome).where(Diplome.copie_sha256 == digest)
        used = (await session.scalar(pieces) or 0) + (await session.scalar(copies) or 0)
        if not used:
            unused.append(digest)
    if unused:
        store.delete_after_commit(session, unused)


async def erase(
    session: AsyncSession, store: FileStore, cand: Candidature, statut: str, today: date
) -> None:
    """Retire or delete: every personal field and file goes; an anonymous row stays (2.6)."""
    digests = set(
        (await session.scalars(select(Piece.sha256).where(Piece.candidature_id == cand.id))).all()
    )
    for piece in await session.scalars(select(Piece).where(Piece.candidature_id == cand.id)):
        await session.delete(piece)
    candidat = await session.get(Candidat, cand.candidat_id) if cand.candidat_id else None
    cand.statut = statut
    cand.ferme_le = today
    cand.reponses = None
    cand.relance_le = cand.rappel_le = cand.clarification_le = None
    cand.candidat_id = None
    await session.flush()
    if candidat is not None:
        still_open = await session.scalar(
            select(func.count())
            .select_from(Candidature)
            .where(
                Candidature.candidat_id == candidat.id,
                Candidature.statut.not_in([s.value for s in rules.CLOSED]),
            )
        )
        if not still_open:
            for d in await session.scalars(
                select(Diplome).where(Diplome.candidat_id == candidat.id)
            ):
                if d.copie_sha256:
                    digests.add(d.copie_sha256)
                await session.delete(d)
            for attr in (
                "civilite",
                "nom",
                "prenom",
                "date_naissance",
                "email",
                "telephone",
                "commune",
                "code_postal",
                "telegram_id",
                "code_hash",
                "code_purpose",
                "code_expires_at",
                "source_id",
            ):
                setattr(candidat, attr, None)
    await session.flush()
    await _forget_files_after_commit(session, store, digests)


# --- renewal ------------------------------------------------------------------------------


def renewal_token(settings: Settings, cand: Candidature) -> str:
    assert cand.relance_le is not None
    return tokens.sign(settings.require_secret_key(), "r", cand.id, cand.relance_le.toordinal())


def renewal_message_id(settings: Settings, token: str) -> str:
    """The renewal question's Message-ID; the reader finds the token in In-Reply-To."""
    return f"<renewal-{token}@{mail_domain(settings)}>"


def _renewal_common(settings: Settings, departement: str | None, type_: str) -> dict[str, Any]:
    """The part of a renewal mail's context shared by a department's candidatures of a type."""
    return {**_mail_context(settings, departement, type_), "type_libelle": type_label(type_)}


def _renewal_own(
    prenom: Any, cand_id: int, valide_jusqu_au: Any, date_limite: Any
) -> dict[str, Any]:
    """The part of a renewal mail's context proper to one candidature."""
    return {
        "prenom": prenom,
        "reference": reference(cand_id),
        "valide_jusqu_au": valide_jusqu_au,
        "date_limite": date_limite,
    }


def _renewal_context(settings: Settings, cand: Candidature, candidat: Candidat) -> dict[str, Any]:
    assert cand.relance_le is not None
    deadline = rules.reply_deadline(cand.relance_le, settings.renewal_reply_days)
    return {
        **_renewal_common(settings, cand.departement, cand.type),
        **_renewal_own(candidat.prenom, cand.id, cand.valide_jusqu_au, deadline),
    }


@dataclass
class SweepReport:
    asked: list[int] = field(default_factory=list)
    reminded: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)


async def renewal_sweep(
    session: AsyncSession, settings: Settings, store: FileStore, today: date | None = None
) -> SweepReport:
    """Ask, remind or delete, once per candidature and per step: a second run the same day
    finds nothing left to do.

    Questions and reminders are set-based (one UPDATE and one multi-row INSERT of mails per
    chunk): on the first day of a campaign every candidature of a department falls due at
    once. Deletions, rare and touching files, go one by one."""
    today = today or today_paris()
    report = SweepReport()
    q = (
        select(
            Candidature.id,
            Candidature.statut,
            Candidature.valide_jusqu_au,
            Candidature.relance_le,
            Candidature.rappel_le,
            Candidature.departement,
            Candidature.type,
            Candidat.prenom,
            Candidat.email,
            Candidat.telegram_id,
        )
        .join(Candidat, Candidat.id == Candidature.candidat_id)
        .where(
            Candidature.statut.not_in(
                [rules.Statut.BROUILLON.value, *[s.value for s in rules.CLOSED]]
            ),
            or_(Candidature.relance_le.is_not(None), Candidature.valide_jusqu_au <= today),
        )
        .order_by(Candidature.id)
    )
    asked: list[Any] = []
    reminded: list[Any] = []
    for row in (await session.execute(q)).all():
        action = rules.renewal_action(
            row.statut,
            row.valide_jusqu_au,
            row.relance_le,
            row.rappel_le,
            today,
            settings.renewal_reply_days,
        )
        if action is rules.RenewalAction.ASK:
            asked.append(row)
        elif action is rules.RenewalAction.REMIND:
            reminded.append(row)
        elif action is rules.RenewalAction.DELETE:
            report.deleted.append(row.id)

    report.asked = [r.id for r in asked]
    report.reminded = [r.id for r in reminded]
    await _set_dates(session, report.asked, relance_le=today)
    await _set_dates(session, report.reminded, rappel_le=today)
    sign = tokens.signer(settings.require_secret_key(), "r")
    contexts = _ContextCache(settings)
    ordinal = today.toordinal()

    def mails() -> Iterator[dict[str, Any]]:
        # Rows in the outbox's stored form (enqueue_rows).
        for r in asked:
            if not r.email:
                continue
            token = sign(r.id, ordinal)
            yield {
                "message_id": renewal_message_id(settings, token),
                "kind": "renewal",
                "to_addr": r.email,
                "reply_to": plus_address(settings, token),
                "context": contexts.renewal(r, today),
                "candidature_id": r.id,
            }
        for r in reminded:
            if not r.email:
                continue
            ctx = contexts.renewal(r, r.relance_le)
            deadline = rules.reply_deadline(r.relance_le, settings.renewal_reply_days)
            ctx["jours_restants"] = (deadline - today).days
            # The question owns the renewal Message-ID; a reminder is another message that
            # carries the same reply key.
            token = sign(r.id, r.relance_le.toordinal())
            yield {
                "message_id": new_message_id(settings),
                "kind": "renewal_reminder",
                "to_addr": r.email,
                "reply_to": plus_address(settings, token),
                "context": ctx,
                "candidature_id": r.id,
            }

    await enqueue_rows(session, mails())
    notifications = [
        {
            "telegram_id": r.telegram_id,
            "kind": "renewal_question",
            "payload": {"candidature_id": r.id},
            "created_at": utcnow(),
        }
        for r in asked
        if r.telegram_id is not None
    ]
    for start in range(0, len(notifications), 2000):
        await session.execute(insert(BotNotification), notifications[start : start + 2000])

    for cand_id in report.deleted:
        cand = await session.get(Candidature, cand_id)
        assert cand is not None and cand.candidat_id is not None
        candidat = await session.get(Candidat, cand.candidat_id)
        assert candidat is not None
        if candidat.email:
            await enqueue(
                session,
                settings,
                MailDraft(
                    kind="deletion_notice",
                    to=candidat.email,
                    context=_renewal_context(settings, cand, candidat),
                    candidature_id=cand.id,
                ),
            )
        await erase(session, store, cand, rules.Statut.SUPPRIMEE, today)
    await session.flush()
    return report


async def _set_dates(session: AsyncSession, ids: Sequence[int], **values: date) -> None:
    # Candidatures already loaded in this session (a caller's, or a test's) see the new dates:
    # the bulk UPDATE bypasses the identity map.
    wanted = set(ids)
    for obj in list(session.sync_session.identity_map.values()):
        if isinstance(obj, Candidature) and obj.id in wanted:
            for key, value in values.items():
                set_committed_value(obj, key, value)
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        await session.execute(update(Candidature).where(Candidature.id.in_(chunk)).values(**values))


class _ContextCache:
    """Renewal mail contexts, already in their stored form (encode_context): the
    department/type part and the dates are the same for thousands of rows."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.common: dict[tuple[str | None, str], dict[str, Any]] = {}
        self.deadlines: dict[date, dict[str, str]] = {}

    def renewal(self, r: Any, relance_le: date) -> dict[str, Any]:
        key = (r.departement, r.type)
        common = self.common.get(key)
        if common is None:
            common = self.common[key] = encode_context(
                _renewal_common(self.settings, r.departement, r.type)
            )
        deadline = self.deadlines.get(relance_le)
        if deadline is None:
            deadline = self.deadlines[relance_le] = encode_date(
                rules.reply_deadline(relance_le, self.settings.renewal_reply_days)
            )
        return {**common, **_renewal_own(r.prenom, r.id, encode_date(r.valide_jusqu_au), deadline)}


class Answer:
    KEEP = "keep"
    WITHDRAW = "withdraw"
    UNCLEAR = "unclear"


async def apply_renewal_answer(
    session: AsyncSession,
    settings: Settings,
    store: FileStore,
    candidature_id: int,
    answer: str,
    *,
    today: date | None = None,
    stamp: int | None = None,
    source: str = "mail",
) -> str:
    """Apply a keep / withdraw / unclear answer; returns what happened (an outcome code).

    Clear answers apply in the order they arrive; a withdrawal is final; a keep renews only
    the question it answers (`stamp`, the day it was asked), so a repeated "oui" renews once.
    """
    today = today or today_paris()
    cand = await session.get(Candidature, candidature_id)
    if cand is None or cand.statut in rules.CLOSED or cand.candidat_id is None:
        return "ferme"
    candidat = await session.get(Candidat, cand.candidat_id)
    assert candidat is not None
    pending = cand.relance_le is not None and (
        stamp is None or stamp == cand.relance_le.toordinal()
    )
    if answer == Answer.KEEP:
        if not pending or cand.valide_jusqu_au is None:
            return "deja_traitee"
        cand.valide_jusqu_au = rules.renewed_validity(cand.valide_jusqu_au)
        cand.relance_le = cand.rappel_le = cand.clarification_le = None
        if candidat.email:
            await enqueue(
                session,
                settings,
                MailDraft(
                    kind="renewal_confirmed",
                    to=candidat.email,
                    candidature_id=cand.id,
                    context={
                        **_mail_context(settings, cand.departement, cand.type),
                        "prenom": candidat.prenom,
                        "type_libelle": type_label(cand.type),
                        "reference": reference(cand.id),
                        "valide_jusqu_au": cand.valide_jusqu_au,
                    },
                ),
                render_now=False,
            )
        await journal.record(
            session,
            "candidature.maintenue",
            "candidature",
            str(cand.id),
            departement=cand.departement,
            changes={"source": source},
        )
        return "maintenue"
    if answer == Answer.WITHDRAW:
        if candidat.email:
            await enqueue(
                session,
                settings,
                MailDraft(
                    kind="withdrawal_confirmed",
                    to=candidat.email,
                    candidature_id=cand.id,
                    context={
                        **_mail_context(settings, cand.departement, cand.type),
                        "prenom": candidat.prenom,
                        "type_libelle": type_label(cand.type),
                        "reference": reference(cand.id),
                    },
                ),
                render_now=False,
            )
        await erase(session, store, cand, rules.Statut.RETIREE, today)
        await journal.record(
            session,
            "candidature.retiree",
            "candidature",
            str(cand.id),
            departement=cand.departement,
            changes={"source": source},
        )
        return "retiree"
    if not pending or cand.clarification_le is not None or cand.relance_le is None:
        return "deja_clarifiee"
    cand.clarification_le = today
    if candidat.email:
        ctx = _renewal_context(settings, cand, candidat)
        token = renewal_token(settings, cand)
        await enqueue(
            session,
            settings,
            MailDraft(
                kind="clarification",
                to=candidat.email,
                context=ctx,
                reply_to=plus_address(settings, token),
                candidature_id=cand.id,
            ),
            render_now=False,
        )
    return "clarification"


async def withdraw(
    session: AsyncSession,
    settings: Settings,
    store: FileStore,
    candidat: Candidat,
    candidature_id: int,
    today: date | None = None,
) -> str:
    """The candidate withdraws from the bot (same rule as a mail reply)."""
    cand = await owned(session, candidat, candidature_id)
    return await apply_renewal_answer(
        session, settings, store, cand.id, Answer.WITHDRAW, today=today, source="bot"
    )


# --- listing ------------------------------------------------------------------------------


async def list_all(session: AsyncSession, departement: str | None = None) -> list[dict[str, Any]]:
    q = (
        select(
            Candidature.id,
            Candidat.email,
            Candidature.type,
            Candidature.statut,
            Candidature.valide_jusqu_au,
            Candidature.relance_le,
        )
        .outerjoin(Candidat, Candidat.id == Candidature.candidat_id)
        .order_by(Candidature.id)
    )
    if departement is not None:
        q = q.where(Candidature.departement == departement)
    return [
        {
            "id": r[0],
            "email": r[1],
            "type": r[2],
            "statut": r[3],
            "valide_jusqu_au": r[4].isoformat() if r[4] else None,
            "relance_le": r[5].isoformat() if r[5] else None,
        }
        for r in (await session.execute(q)).all()
    ]
