"""Transactional outbox: a mail is a row written with the change that causes it.

The sender (mail/) only reads this table; a crash between the change and the delivery can
delay a mail, never lose or invent one. The Message-ID is fixed here, before any attempt,
so a retry is the same message.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from email.utils import make_msgid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.models import OutboxMail
from core.texts import render


@dataclass(frozen=True)
class Attachment:
    filename: str
    mime: str
    path: str  # a file under AESH_STORAGE_DIR, kept until the mail is sent


@dataclass
class MailDraft:
    kind: str  # the template family under templates/mail/, e.g. "renewal"
    to: str
    context: dict[str, Any]
    cc: list[str] = field(default_factory=list)
    reply_to: str | None = None
    message_id: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    candidature_id: int | None = None


def mail_domain(settings: Settings) -> str:
    return settings.mail_from.rsplit("@", 1)[-1] or "localhost"


def new_message_id(settings: Settings, local: str | None = None) -> str:
    if local:
        return f"<{local}@{mail_domain(settings)}>"
    return make_msgid(idstring=uuid.uuid4().hex[:8], domain=mail_domain(settings))


def plus_address(settings: Settings, tag: str) -> str:
    """`aesh@x.fr` + tag → `aesh+tag@x.fr`: replies come back to the same mailbox."""
    local, _, domain = settings.mail_from.partition("@")
    return f"{local}+{tag}@{domain}"


def render_mail(kind: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, text, html) of `templates/mail/{kind}.*.j2`."""
    subject = render(f"mail/{kind}.subject.j2", **context).strip()
    text = render(f"mail/{kind}.txt.j2", **context)
    html = render(f"mail/{kind}.html.j2", **context)
    return subject, text, html


async def enqueue(session: AsyncSession, settings: Settings, draft: MailDraft) -> OutboxMail:
    """Queue a mail in the caller's transaction (nothing is sent until it commits)."""
    subject, text, html = render_mail(draft.kind, draft.context)
    row = OutboxMail(
        message_id=draft.message_id or new_message_id(settings),
        kind=draft.kind,
        to_addr=draft.to,
        cc=draft.cc or None,
        reply_to=draft.reply_to,
        subject=subject,
        body_text=text,
        body_html=html,
        attachments=[a.__dict__ for a in draft.attachments] or None,
        headers=draft.headers or None,
        candidature_id=draft.candidature_id,
    )
    # No flush: a sweep queues thousands of mails; they go in with the caller's next flush
    # or commit, in the same transaction as the change.
    session.add(row)
    return row
