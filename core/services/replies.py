"""What a received mail means for a candidature (domain 2.6), whatever channel parsed it.

The mail agent extracts facts (reply keys found, sender, automatic or not, the answer) and
calls `handle_mail`; the rules about who may answer and what an answer does live here.
Each mail is recorded by its key in the same transaction, so handling it twice is a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.models import Candidat, Candidature, ProcessedMail
from core.rules import tokens
from core.services import candidatures, journal
from core.services.storage import FileStore


@dataclass(frozen=True)
class IncomingMail:
    key: str  # Message-ID, else a content hash
    sender: str | None
    reply_keys: Sequence[str]  # tokens found in recipients, In-Reply-To, References
    automatic: str | None  # reason it is an automatic mail, or None
    bounced: Sequence[str]  # addresses a bounce reports as failed
    answer: str  # keep | withdraw | unclear


async def already_processed(session: AsyncSession, key: str) -> bool:
    return bool(await session.scalar(select(ProcessedMail.id).where(ProcessedMail.key == key)))


async def handle_mail(
    session: AsyncSession,
    settings: Settings,
    store: FileStore,
    mail: IncomingMail,
    today: date | None = None,
) -> str:
    """Apply one mail and record it; returns the outcome code (never raises on bad input)."""
    try:
        [outcome] = await handle_mails(session, settings, store, [mail], today)
    except IntegrityError:  # another reader recorded it first
        await session.rollback()
        return "deja_traite"
    return outcome


async def handle_mails(
    session: AsyncSession,
    settings: Settings,
    store: FileStore,
    mails: Sequence[IncomingMail],
    today: date | None = None,
) -> list[str]:
    """Apply mails in order, in the caller's transaction, and record each; one outcome code
    per mail. A batch reads the processed keys and the candidatures it needs in three
    statements and writes at one flush. IntegrityError means another reader recorded one
    of these mails meanwhile: the caller rolls back and handles them one by one."""
    done = set(
        await session.scalars(
            select(ProcessedMail.key).where(ProcessedMail.key.in_({m.key for m in mails}))
        )
    )
    renewals = [_renewal_token(settings, m) for m in mails]
    # Held for the batch: the session's identity map only keeps weak references.
    loaded = await _preload(session, mails, renewals)
    outcomes: list[str] = []
    for mail, renewal in zip(mails, renewals, strict=True):
        if mail.key in done:  # handled before, or twice in this batch
            outcomes.append("deja_traite")
            continue
        done.add(mail.key)
        outcome, cand_id = await _decide(session, settings, store, mail, renewal, today)
        session.add(ProcessedMail(key=mail.key, outcome=outcome, candidature_id=cand_id))
        outcomes.append(outcome)
    await session.flush()
    del loaded
    return outcomes


def _renewal_token(settings: Settings, mail: IncomingMail) -> tuple[str, int, int] | None:
    """The genuine renewal token the mail answers (purpose, candidature id, stamp), if any."""
    if mail.bounced or mail.automatic:
        return None
    secret = settings.require_secret_key()
    genuine = [p for p in (tokens.verify(secret, k) for k in mail.reply_keys) if p]
    return next((p for p in genuine if p[0] == "r"), None)


async def _preload(
    session: AsyncSession,
    mails: Sequence[IncomingMail],
    renewals: Sequence[tuple[str, int, int] | None],
) -> list[object]:
    """Load the candidatures and candidates the batch answers into the session, so that
    `session.get` finds them without a query each."""
    ids = {found[1] for found in renewals if found is not None}
    if not ids:
        return []
    loaded: list[object] = []
    cands = (await session.scalars(select(Candidature).where(Candidature.id.in_(ids)))).all()
    loaded.extend(cands)
    people = {c.candidat_id for c in cands if c.candidat_id is not None}
    if people:
        loaded.extend(
            (await session.scalars(select(Candidat).where(Candidat.id.in_(people)))).all()
        )
    return loaded


async def _decide(
    session: AsyncSession,
    settings: Settings,
    store: FileStore,
    mail: IncomingMail,
    renewal: tuple[str, int, int] | None,
    today: date | None,
) -> tuple[str, int | None]:
    if mail.bounced:
        await session.execute(
            update(Candidat)
            .where(Candidat.email.in_([a.lower() for a in mail.bounced]))
            .values(email_bouncing=True)
        )
        return "rebond", None
    if mail.automatic:
        return "automatique", None  # never an answer, never answered
    if renewal is None:
        return ("jeton_invalide" if mail.reply_keys else "sans_jeton"), None
    _, cand_id, stamp = renewal
    cand = await session.get(Candidature, cand_id)
    if cand is None:
        return "candidature_inconnue", cand_id
    candidat = await session.get(Candidat, cand.candidat_id) if cand.candidat_id else None
    if candidat is None:
        return "ferme", cand_id
    if not mail.sender or (candidat.email or "").lower() != mail.sender.lower():
        await journal.record(
            session,
            "candidature.reponse_ignoree",
            "candidature",
            str(cand_id),
            departement=cand.departement,
            changes={"raison": "expediteur_different"},
        )
        return "expediteur_different", cand_id
    outcome = await candidatures.apply_renewal_answer(
        session, settings, store, cand_id, mail.answer, today=today, stamp=stamp, source="mail"
    )
    return outcome, cand_id
