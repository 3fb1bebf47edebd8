"""The sandbox's mailbox: what the outbox worker delivered to the local SMTP server, and the
replies typed on the page, which go to the mail agent exactly as a mail read over IMAP would
(parse → incoming mail → `handle_mail`), without an IMAP server.

Every mail is kept in memory and as a `.eml` file (with a `.json` beside it) under the
sandbox's folder, so the panel still shows them after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid, parsedate_to_datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.dates import PARIS
from core.services.replies import handle_mail
from core.services.storage import FileStore
from mail.parsing import UnreadableMail, parse_mail
from mail.reader import incoming_mail
from sandbox.texts import st

log = logging.getLogger("aesh.sandbox.mailbox")

Direction = Literal["sent", "reply"]
Json = dict[str, Any]

# Replies typed on the page get Message-IDs of a domain that cannot exist (RFC 2606).
REPLY_DOMAIN = "bac-a-sable.invalid"


@dataclass
class StoredMail:
    id: int
    #: "sent": the system sent it (outbox → SMTP); "reply": typed on the page, to the agent
    direction: Direction
    received_at: datetime
    envelope_from: str
    envelope_to: list[str]
    raw: bytes = field(repr=False)
    #: for a reply: what the mail agent made of it (`handle_mail`'s outcome code)
    outcome: str | None = None

    @cached_property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def header(self, name: str) -> str:
        value = self.message.get(name)
        return "" if value is None else str(value)

    def addresses(self, name: str) -> list[str]:
        return [addr for _, addr in getaddresses(self.message.get_all(name, [])) if addr]

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return str(part.get_content()) if part is not None else ""

    @property
    def html(self) -> str | None:
        part = self.message.get_body(("html",))
        return str(part.get_content()) if part is not None else None

    def attachments(self) -> list[EmailMessage]:
        return [p for p in self.message.iter_attachments() if isinstance(p, EmailMessage)]

    def attachment(self, index: int) -> tuple[bytes, str, str]:
        """(bytes, file name, MIME type) of the `index`-th attachment (IndexError if none)."""
        part = self.attachments()[index]
        data = part.get_payload(decode=True)
        name = part.get_filename() or f"piece-jointe-{index + 1}"
        return data if isinstance(data, bytes) else b"", name, part.get_content_type()

    def summary(self) -> Json:
        return {
            "id": self.id,
            "direction": self.direction,
            "received_at": self.received_at.isoformat(),
            "subject": self.header("Subject"),
            "from": self.header("From"),
            "to": self.header("To"),
            "attachments": len(self.attachments()),
            "outcome": self.outcome,
        }

    def detail(self) -> Json:
        files = []
        for index, part in enumerate(self.attachments()):
            payload = part.get_payload(decode=True)
            files.append(
                {
                    "index": index,
                    "filename": part.get_filename() or f"piece-jointe-{index + 1}",
                    "mime": part.get_content_type(),
                    "size": len(payload) if isinstance(payload, bytes) else 0,
                    "url": f"/sandbox/api/mails/{self.id}/attachments/{index}",
                }
            )
        return {
            **self.summary(),
            "headers": {
                name: self.header(name)
                for name in ("From", "To", "Cc", "Reply-To", "Date", "Subject", "Message-ID")
                if self.header(name)
            },
            "text": self.text,
            "has_html": self.html is not None,
            "html_url": f"/sandbox/api/mails/{self.id}/html",
            "raw_url": f"/sandbox/api/mails/{self.id}/raw",
            "attachment_files": files,
        }


class MailStore:
    """Mails in arrival order; `wait_change` is the panel's long poll."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.mails: list[StoredMail] = []
        self.version = 0
        self._changed = asyncio.Event()

    def load(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for meta_path in sorted(self.folder.glob("*.json")):
            eml = meta_path.with_suffix(".eml")
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                raw = eml.read_bytes()
                self.mails.append(
                    StoredMail(
                        id=int(meta["id"]),
                        direction=meta["direction"],
                        received_at=datetime.fromisoformat(meta["received_at"]),
                        envelope_from=meta.get("envelope_from", ""),
                        envelope_to=list(meta.get("envelope_to", [])),
                        raw=raw,
                        outcome=meta.get("outcome"),
                    )
                )
            except (OSError, ValueError, KeyError):
                # A half-written pair (the process stopped between the two writes): skip it.
                log.warning("sandbox mail %s unreadable, skipped", meta_path.name)
        self.mails.sort(key=lambda m: m.id)

    def add(
        self,
        direction: Direction,
        envelope_from: str,
        envelope_to: list[str],
        raw: bytes,
        outcome: str | None = None,
    ) -> StoredMail:
        mail = StoredMail(
            id=(self.mails[-1].id + 1) if self.mails else 1,
            direction=direction,
            received_at=datetime.now(UTC),
            envelope_from=envelope_from,
            envelope_to=envelope_to,
            raw=raw,
            outcome=outcome,
        )
        self.mails.append(mail)
        self._save(mail)
        self._bump()
        return mail

    def set_outcome(self, mail: StoredMail, outcome: str) -> None:
        mail.outcome = outcome
        self._save(mail)
        self._bump()

    def get(self, mail_id: int) -> StoredMail:
        for mail in self.mails:
            if mail.id == mail_id:
                return mail
        raise KeyError(mail_id)

    def _save(self, mail: StoredMail) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self.folder / f"{mail.id:06d}"
        stem.with_suffix(".eml").write_bytes(mail.raw)
        meta = {
            "id": mail.id,
            "direction": mail.direction,
            "received_at": mail.received_at.isoformat(),
            "envelope_from": mail.envelope_from,
            "envelope_to": mail.envelope_to,
            "outcome": mail.outcome,
        }
        # The .json is written last and atomically: its presence means the pair is whole.
        tmp = stem.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, stem.with_suffix(".json"))

    def _bump(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self, since: int, timeout: float) -> None:
        if since != self.version:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)


def _sent_on(mail: StoredMail) -> str:
    try:
        when = parsedate_to_datetime(mail.header("Date"))
    except (TypeError, ValueError):
        when = mail.received_at
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")


def build_reply(original: StoredMail, body: str, sender: str) -> bytes:
    """An RFC 5322 reply to `original`, as a mail client writes it: to its Reply-To (else its
    From), threaded by In-Reply-To/References, with the original quoted below the answer."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = Address(addr_spec=sender)
    to = original.addresses("Reply-To") or original.addresses("From")
    msg["To"] = ", ".join(to)
    subject = original.header("Subject")
    if not subject.lower().startswith("re:"):
        subject = st("courriel.reponse_objet", objet=subject)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=REPLY_DOMAIN)
    message_id = original.header("Message-ID").strip()
    if message_id:
        msg["In-Reply-To"] = message_id
        msg["References"] = " ".join(
            x for x in (original.header("References").strip(), message_id) if x
        )
    quoted = "\n".join(f"> {line}" if line else ">" for line in original.text.splitlines())
    author = original.header("From")
    citation = st("courriel.citation", date=_sent_on(original), auteur=author)
    msg.set_content(f"{body.rstrip()}\n\n{citation}\n{quoted}\n", charset="utf-8")
    return msg.as_bytes()


async def deliver_reply(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    store: FileStore,
    raw: bytes,
    today: date | None = None,
) -> str:
    """What the mail agent does with one message of its mailbox, minus IMAP; returns the
    outcome code of `handle_mail` ("illisible" when the message cannot be read)."""
    try:
        incoming = incoming_mail(parse_mail(raw))
    except UnreadableMail:
        return "illisible"
    async with sessionmaker() as session:
        outcome = await handle_mail(session, settings, store, incoming, today=today)
        await session.commit()
    return outcome
