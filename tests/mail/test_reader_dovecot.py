"""The IMAP reader against a real Dovecot: replies to the renewal question, end to end.

Candidatures are built with the core services, the renewal question goes out through the
outbox, replies are APPENDed to the mailbox as a mail client would deliver them, and
`poll_once` (or `aesh mail poll --once` in a subprocess, for the crash test) reads them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.db import make_engine, make_sessionmaker, upgrade
from core.models import (
    Candidat,
    Candidature,
    ImapState,
    JournalEntry,
    OutboxMail,
    ProcessedMail,
)
from core.services import candidatures as svc
from core.services import replies
from core.services.storage import FileStore
from mail import reader
from mail.outbox import flush
from mail.reader import MailboxError, PollReport, poll_once, run_reader
from tests.fixtures.servers import (
    DovecotServer,
    ServerError,
    apt_error,
    ensure_dovecot,
    skip_or_fail,
)
from tests.fixtures.smtp import SmtpServer, make_certificate

ROOT = Path(__file__).resolve().parents[2]
SECRET = "reader-test-secret-key-0123456789"
FROM = "aesh@dsden62.test"
SUBMITTED = date(2026, 1, 10)  # valid until 10/07/2026
ASKED = date(2026, 7, 10)
TODAY = date(2026, 7, 12)
RENEWED = date(2027, 1, 10)
FOLDERS = ("INBOX", "Traitees", "Quarantaine")

QUESTION = (
    "Bonjour,\n\nVotre candidature arrive à échéance.\n"
    "Souhaitez-vous la maintenir ? Répondez « Oui » pour la garder six mois de plus, "
    "« Non » pour la retirer.\n"
)


# --- servers ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    if not ensure_dovecot():
        skip_or_fail(apt_error() or "dovecot-imapd is not installed")
    # Not under pytest's temp root: any other pytest session started meanwhile resets it to
    # 0700, which locks Dovecot's mail processes (another uid when run as root) out of it.
    root = tempfile.mkdtemp(prefix="aesh-imap-test-")
    server = DovecotServer()
    try:
        server.start(root)
    except ServerError as err:
        shutil.rmtree(root, ignore_errors=True)
        skip_or_fail(f"dovecot did not start: {err}")
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


class Box:
    """The test's own IMAP connection: deliver mail, look at folders."""

    def __init__(self, server: DovecotServer) -> None:
        self.server = server
        self.client = IMAPClient(server.host, port=server.port, ssl=False, timeout=30)
        self.client.login(server.user, server.password)

    def clear(self) -> None:
        # The server lives for the whole session: every test starts from empty folders.
        for _flags, _sep, name in self.client.list_folders():
            if name not in FOLDERS:
                self.client.delete_folder(name)
        for name in FOLDERS:
            if not self.client.folder_exists(name):
                self.client.create_folder(name)
            self.client.select_folder(name)
            uids = self.client.search(["ALL"])
            if uids:
                self.client.add_flags(uids, [b"\\Deleted"], silent=True)
                self.client.expunge()
        self.client.unselect_folder()

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        self.client.append(folder, raw)

    def messages(self, folder: str) -> list[bytes]:
        self.client.select_folder(folder, readonly=True)
        uids = self.client.search(["ALL"])
        data = self.client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
        self.client.unselect_folder()
        return [data[u][b"BODY[]"] for u in sorted(data)]

    def flags(self, folder: str) -> list[tuple[bytes, ...]]:
        self.client.select_folder(folder, readonly=True)
        uids = self.client.search(["ALL"])
        data = self.client.get_flags(uids) if uids else {}
        self.client.unselect_folder()
        return [data[u] for u in sorted(data)]

    def count(self, folder: str) -> int:
        return int(self.client.folder_status(folder, ["MESSAGES"])[b"MESSAGES"])

    def uidvalidity(self, folder: str) -> int:
        return int(self.client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.logout()


@pytest.fixture
def box(dovecot: DovecotServer) -> Iterator[Box]:
    b = Box(dovecot)
    b.clear()
    yield b
    b.close()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, dovecot: DovecotServer, smtp: SmtpServer) -> Settings:
    return Settings(
        _env_file=None,
        secret_key=SECRET,
        mail_from=FROM,
        storage_dir=tmp_path / "files",
        imap_host=dovecot.host,
        imap_port=dovecot.port,
        imap_user=dovecot.user,
        imap_password=dovecot.password,
        imap_ssl=False,
        imap_folder="INBOX",
        smtp_host=smtp.host,
        smtp_port=smtp.port,
    )


@pytest.fixture
def store(settings: Settings) -> FileStore:
    return FileStore(settings.storage_dir)


# --- data ---------------------------------------------------------------------------------

SM = async_sessionmaker[AsyncSession]


async def new_candidature(sm: SM, settings: Settings, email: str, nom: str = "Dupré") -> int:
    """A validated candidate with one submitted AESH candidature (valid until ASKED)."""
    reg = svc.Registration(
        "Mme", nom, "Chloé", date(1990, 7, 14), email, "06 12 34 56 78", "Arras", "62000"
    )
    async with sm() as s, s.begin():
        c = await svc.register(s, settings, reg)
        mail = await s.scalar(
            select(OutboxMail).where(OutboxMail.kind == "validation", OutboxMail.to_addr == email)
        )
        assert mail is not None
        code = re.search(r"\b(\d{6})\b", mail.body_text)
        assert code
        await svc.validate_with_code(s, settings, email, code.group(1), None)
        cand = await svc.create_candidature(s, c, "AESH", {"rqth": "non"}, ["Arras"])
        await svc.submit(s, cand, today=SUBMITTED)
        return cand.id


async def sweep(sm: SM, settings: Settings, store: FileStore) -> list[int]:
    async with sm() as s, s.begin():
        return (await svc.renewal_sweep(s, settings, store, ASKED)).asked


async def question(sm: SM, cand_id: int) -> tuple[str, str]:
    """(Message-ID, Reply-To) of the renewal question queued for `cand_id`."""
    async with sm() as s:
        row = await s.scalar(
            select(OutboxMail).where(
                OutboxMail.kind == "renewal", OutboxMail.candidature_id == cand_id
            )
        )
    assert row is not None and row.reply_to
    return row.message_id, row.reply_to


async def asked(sm: SM, settings: Settings, store: FileStore, email: str) -> tuple[int, str, str]:
    cand_id = await new_candidature(sm, settings, email)
    assert await sweep(sm, settings, store) == [cand_id]
    mid, reply_to = await question(sm, cand_id)
    return cand_id, mid, reply_to


def reply(
    sender: str,
    to: str,
    in_reply_to: str | None,
    body: str,
    *,
    subject: str = "Re: Votre candidature AESH",
    html: str | None = None,
    headers: dict[str, str] | None = None,
    quote: bool = True,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = "Sun, 12 Jul 2026 09:30:00 +0200"
    msg["Message-ID"] = make_msgid(domain="client.test")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    for name, value in (headers or {}).items():
        msg[name] = value
    if quote:
        body += (
            "\n\nLe ven. 10 juil. 2026 à 08:00, Service école inclusive <"
            + FROM
            + "> a écrit :\n"
            + "".join(f"> {line}\n" for line in QUESTION.splitlines())
        )
    if html is not None:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(body)
    return bytes(msg)


def raw_reply(
    sender: str, to: str, in_reply_to: str, body: bytes, content_type: str, extra: str = ""
) -> bytes:
    """A reply as some clients write it, with the body bytes exactly as given."""
    head = (
        f"From: {sender}\r\nTo: {to}\r\nSubject: Re: Votre candidature\r\n"
        f"Date: Sun, 12 Jul 2026 09:30:00 +0200\r\nMessage-ID: {make_msgid(domain='x.test')}\r\n"
        f"In-Reply-To: {in_reply_to}\r\nMIME-Version: 1.0\r\nContent-Type: {content_type}\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n{extra}\r\n"
    )
    return head.encode("ascii") + body


async def cand(sm: SM, cand_id: int) -> Candidature:
    async with sm() as s:
        row = await s.get(Candidature, cand_id)
    assert row is not None
    return row


async def count(sm: SM, model: Any, *where: Any) -> int:
    async with sm() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def outcomes(sm: SM) -> list[str]:
    async with sm() as s:
        return list(await s.scalars(select(ProcessedMail.outcome).order_by(ProcessedMail.id)))


async def poll(sm: SM, settings: Settings, store: FileStore, **kw: Any) -> PollReport:
    return await poll_once(sm, settings, store, today=TODAY, **kw)


# --- the whole loop -----------------------------------------------------------------------


async def test_lifecycle_keep_through_smtp_and_imap(
    sessionmaker: SM, settings: Settings, store: FileStore, box: Box, smtp: SmtpServer
) -> None:
    email = "chloe.dupre@exemple.test"
    cand_id = await new_candidature(sessionmaker, settings, email)
    assert await sweep(sessionmaker, settings, store) == [cand_id]
    await flush(sessionmaker, settings)
    [question_mail] = [
        m
        for m in smtp.messages()
        if email in str(m["To"]) and str(m["Message-ID"]).startswith("<renewal-")
    ]
    mid, reply_to = str(question_mail["Message-ID"]), str(question_mail["Reply-To"])
    assert reply_to.startswith("aesh+r") and reply_to.endswith("@dsden62.test")
    # Queued in bulk by the sweep, rendered by the sender: it must read as a full mail.
    assert str(question_mail["Subject"]) == "Votre candidature AESH : réponse attendue"
    text = question_mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = question_mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    deadline = (ASKED + timedelta(days=settings.renewal_reply_days)).strftime("%d/%m/%Y")
    for body in (text, html):
        assert "Chloé" in body
        assert deadline in body and "{{" not in body

    box.append(reply(email, reply_to, mid, "Oui"))
    report = await poll(sessionmaker, settings, store)

    assert report == PollReport(seen=1, applied=1)
    renewed = await cand(sessionmaker, cand_id)
    assert renewed.valide_jusqu_au == RENEWED and renewed.relance_le is None
    assert (
        await count(
            sessionmaker,
            OutboxMail,
            OutboxMail.kind == "renewal_confirmed",
            OutboxMail.status == "pending",
        )
        == 1
    )
    smtp.clear()
    await flush(sessionmaker, settings)
    [confirmation] = smtp.messages()
    assert email in str(confirmation["To"])
    confirmed = confirmation.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert RENEWED.strftime("%d/%m/%Y") in confirmed and "{{" not in confirmed
    assert box.count("INBOX") == 0 and box.count("Traitees") == 1
    assert [b"\\Seen" in f for f in box.flags("Traitees")] == [False]  # read with PEEK
    async with sessionmaker() as s:
        state = await s.get(ImapState, "INBOX")
    assert state is not None and state.last_uid >= 1
    assert state.uidvalidity == box.uidvalidity("INBOX")


async def test_non_merci_withdraws_and_erases(
    sessionmaker: SM, settings: Settings, store: FileStore, box: Box
) -> None:
    email = "paul.martin@exemple.test"
    cand_id, mid, reply_to = await asked(sessionmaker, settings, store, email)
    box.append(reply(email, reply_to, mid, "Non merci"))
    assert (await poll(sessionmaker, settings, store)).applied == 1
    row = await cand(sessionmaker, cand_id)
    assert row.statut == "retiree" and row.candidat_id is None and row.reponses is None
    async with sessionmaker() as s:
        person = (await s.scalars(select(Candidat))).one()
    assert (person.nom, person.prenom, person.email, person.telephone) == (None,) * 4
    assert await count(sessionmaker, OutboxMail, OutboxMail.kind == "withdrawal_confirmed") == 1
    assert box.count("Traitees") == 1 and box.count("INBOX") == 0


# --- automatic mail ------------------------------------------------------------------------


def dsn(recipient: str, original_mid: str) -> bytes:
    boundary = "==dsn-boundary=="
    return (
        "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.exemple.test (Mail Delivery System)\r\n"
        f"To: {FROM}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {make_msgid(domain='mx.exemple.test')}\r\nMIME-Version: 1.0\r\n"
        "Date: Sun, 12 Jul 2026 09:30:00 +0200\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"'
        f"\r\n\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\n"
        f"Your message could not be delivered to {recipient}: user unknown. Oui\r\n"
        f"\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.exemple.test\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {original_mid}\r\nTo: {recipient}\r\n\r\n--{boundary}--\r\n"
    ).encode()


AUTOMATIC: dict[str, tuple[dict[str, str], str]] = {
    "ooo-fr-headers": ({"X-Autoreply": "yes"}, "Re: Votre candidature AESH"),
    "ooo-en-headers": ({"X-Autorespond": "vacation"}, "Re: Votre candidature AESH"),
    "ooo-fr-subject": ({}, "Réponse automatique : Votre candidature AESH"),
    "ooo-en-subject": ({}, "Automatic reply: Votre candidature AESH"),
    "auto-submitted": ({"Auto-Submitted": "auto-replied"}, "Re: Votre candidature AESH"),
    "precedence-bulk": ({"Precedence": "bulk"}, "Re: Votre candidature AESH"),
    "null-return-path": ({"Return-Path": "<>"}, "Re: Votre candidature AESH"),
}


@pytest.mark.parametrize("kind", [*AUTOMATIC, "dsn"])
async def test_automatic_mail_changes_nothing(
    kind: str, sessionmaker: SM, settings: Settings, store: FileStore, box: Box
) -> None:
    email = "lea.bernard@exemple.test"
    cand_id, mid, reply_to = await asked(sessionmaker, settings, store, email)
    before = await count(sessionmaker, OutboxMail)
    if kind == "dsn":
        box.append(dsn(email, mid))
    else:
        headers, subject = AUTOMATIC[kind]
        # Said "oui" and carries a genuine token: only its automatic nature stops it.
        box.append(
            reply(
                email,
                reply_to,
                mid,
                "Oui, je maintiens.\nJe suis absente jusqu'au 20 juillet.",
                subject=subject,
                headers=headers,
            )
        )
    report = await poll(sessionmaker, settings, store)

    assert report == PollReport(seen=1, automatic=1)
    row = await cand(sessionmaker, cand_id)
    assert row.valide_jusqu_au == ASKED and row.relance_le == ASKED
    assert row.clarification_le is None
    assert await count(sessionmaker, OutboxMail) == before
    async with sessionmaker() as s:
        person = (await s.scalars(select(Candidat))).one()
    assert person.email_bouncing is (kind == "dsn")
    assert await outcomes(sessionmaker) == ["rebond" if kind == "dsn" else "automatique"]
    assert box.count("Traitees") == 1 and box.count("INBOX") == 0


# --- who may answer -------------------------------------------------------------------------


async def test_wrong_sender_is_not_applied(
    sessionmaker: SM, settings: Settings, store: FileStore, box: Box
) -> None:
    cand_id, mid, reply_to = await asked(sessionmaker, settings, store, "vrai@exemple.test")
    box.append(reply("usurpateur@ailleurs.test", reply_to, mid, "Non, je retire ma candidature"))
    assert await poll(sessionmaker, settings, store) == PollReport(seen=1, ignored=1)
    row = await cand(sessionmaker, cand_id)
    assert row.statut == "incomplete" and row.relance_le == ASKED
    async with sessionmaker() as s:
        kinds = list(await s.scalars(select(JournalEntry.kind)))
    assert kinds.count("candidature.reponse_ignoree") == 1
    assert await outcomes(sessionmaker) == ["expediteur_different"]


async def test_forged_or_altered_token_is_ignored(
    sessionmaker: SM, settings: Settings, store: FileStore, box: Box
) -> None:
    email = "ines.roux@exemple.test"
    cand_id, _mid, reply_to = await asked(sessionmaker, settings, store, email)
    token = re.search(r"\+([^@]+)@", reply_to)
    assert token
    good = token.group(1)
    altered = good[:-1] + ("0" if good[-1] != "0" else "1")
    forged = re.sub(r"^r(\d+)x", lambda m: f"r{int(m.group(1)) + 1}x", good)  # another id
    for bad in (altered, forged):
        box.append(
            reply(
                email,
                f"aesh+{bad}@dsden62.test",
                f"<renewal-{bad}@dsden62.test>",
                "Non, je retire ma candidature",
            )
        )
    box.append(reply(email, FROM, None, "Non, je retire ma candidature"))  # no token at all
    assert await poll(sessionmaker, settings, store) == PollReport(seen=3, ignored=3)
    assert await outcomes(sessionmaker) == ["jeton_invalide", "jeton_invalide", "sans_jeton"]
    row = await cand(sessionmaker, cand_id)
    assert row.statut == "incomplete" and row.candidat_id is not None


# --- what the reply says ---------------------------------------------------------------------


async def test_quoted_reply_reads_only_the_top(
    sessionmaker: SM, settings: Settings, store: FileStore, box: Box
) -> None:
    email = "zoe.leroy@exemple.test"
    cand_id, mid, reply_to = await asked(sessionmaker, settings, store, email)
    # The quote says "Non … retirer"; only the new text counts.
    box.append(reply(email, reply_to, mid, "oui\n\nCordialement,\nZoé"))
    assert (await poll(sessionmaker, settings, store)).applied == 1
    assert (await cand(sessionmaker, cand_id)).valide_jusqu_au == RENEWED


async def test_html_only_reply(
    sessionmaker: SM, settings: Settings, store: FileStore, box: Box
) -> None:
    email = "hugo.petit@exemple.test"
    cand_id, mid, reply_to = await asked(sessionmaker, settings, store, email)
    html = (
        "<html><body><div dir='ltr'>Oui, je maintiens ma candidature.</div><br>"
        "<div class='gmail_quote'>Le ven. 10 juil. 2026 à 08:00, Service a écrit :"
        "<blockquote>Souhaitez-vous la maintenir ? Répondez « Non » pour la retirer."
        "</blockquote></div></body></html>"
    )
    box.append(reply(email, reply_to, mid, "", html=html, quote=False))
    assert (await poll(sessionmaker, settings, store)).applied == 1
    assert (await cand(sessionmaker, cand_id)).valide_jusqu_au == RENEWED


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (
            "text/plain; charset=iso-8859-1",
            "Oui, je maintiens ma candidature. Très cordialement, Hélène".encode("latin-1"),
        ),
        (
            "text/plain; charset=x-inconnu-42",
            "Oui, je souhaite la conserver. Merci beaucoup, Hélène Lefèvre".encode(),
        ),
        (
            "text/plain; charset=iso-8859-1",
            "Je ne souhaite pas maintenir ma candidature, j'ai trouvé un poste. Hélène".encode(
                "latin-1"
            ),
        ),
    ],
    ids=["latin-1", "unknown-charset", "latin-1-withdraw"],
)
async def test_charsets(
    content_type: str, body: bytes, sessionmaker: SM, settings: Settings, store: FileStore, box: Box
) -> None:
    email = "helene.lefevre@exemple.test"
    cand_id, mid, reply_to = await asked(sessionmaker, settings, store, email)
    box.append(raw_reply(email, reply_to, mid, body + b"\r\n", content_type))
    assert (await poll(sessionmaker, settings, store)).applied == 1
    row = await cand(sessionmaker, cand_id)
    if b"ne souhaite pas" in body:
        assert row.statut == "retiree"
    else:
        assert row.valide_jusqu_au == RENEWED


async def test_unclear_reply_gets_one_clarification(
    sessionmaker: SM, settings: Settings, store: FileStore, box: Box
) -> None:
    email = "marc.simon@exemple.test"
    cand_id, mid, reply_to = await asked(sessionmaker, settings, store, email)
    box.append(reply(email, reply_to, mid, "Je ne sais pas encore, je vais réfléchir."))
    assert (await poll(sessionmaker, settings, store)).applied == 1
    row = await cand(sessionmaker, cand_id)
    assert row.clarification_le == TODAY and row.valide_jusqu_au == ASKED
    assert await count(sessionmaker, OutboxMail, OutboxMail.kind == "clarification") == 1


async def test_unreadable_message_goes_to_quarantine(
    sessionmaker: SM, settings: Settings, store: FileStore, box: Box
) -> None:
    email = "noe.garnier@exemple.test"
    cand_id, mid, reply_to = await asked(sessionmaker, settings, store, email)
    box.append(b"\xff\xfe garbage without any header line\r\n\r\n\x01\x02 oui\r\n")
    box.append(reply(email, reply_to, mid, "Oui"))
    report = await poll(sessionmaker, settings, store)
    assert report == PollReport(seen=2, applied=1, quarantined=1)
    assert box.count("Quarantaine") == 1 and box.count("Traitees") == 1
    assert box.count("INBOX") == 0
    assert await count(sessionmaker, ProcessedMail) == 1
    assert (await cand(sessionmaker, cand_id)).valide_jusqu_au == RENEWED


async def test_truncated_mime_is_still_read(
    sessionmaker: SM, settings: Settings, store: FileStore, box: Box
) -> None:
    email = "eva.morel@exemple.test"
    cand_id, mid, reply_to = await asked(sessionmaker, settings, store, email)
    raw = raw_reply(
        email,
        reply_to,
        mid,
        b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nOui je maintiens\r\n"
        b"--b1\r\nContent-Type: text/html\r\n\r\n<p>Oui je main",
        'multipart/alternative; boundary="b1"',
    )
    box.append(raw)
    assert (await poll(sessionmaker, settings, store)).applied == 1
    assert (await cand(sessionmaker, cand_id)).valide_jusqu_au == RENEWED


# --- idempotence --------------------------------------------------------------------------


async def test_second_poll_and_redelivery_apply_nothing(
    sessionmaker: SM, settings: Settings, store: FileStore, box: Box
) -> None:
    email = "lina.faure@exemple.test"
    cand_id, mid, reply_to = await asked(sessionmaker, settings, store, email)
    raw = reply(email, reply_to, mid, "Oui")
    box.append(raw)
    assert (await poll(sessionmaker, settings, store)).applied == 1
    assert await poll(sessionmaker, settings, store) == PollReport()
    box.append(raw)  # the same message delivered again (same Message-ID)
    assert await poll(sessionmaker, settings, store) == PollReport(seen=1, already=1)
    assert (await cand(sessionmaker, cand_id)).valide_jusqu_au == RENEWED
    assert await count(sessionmaker, OutboxMail, OutboxMail.kind == "renewal_confirmed") == 1
    assert box.count("Traitees") == 2 and box.count("INBOX") == 0


async def test_uidvalidity_change_rereads_without_applying_twice(
    sessionmaker: SM, settings: Settings, store: FileStore, box: Box
) -> None:
    settings = settings.model_copy(update={"imap_folder": "Reponses"})
    box.client.create_folder("Reponses")
    people = ["a.un@exemple.test", "b.deux@exemple.test", "c.trois@exemple.test"]
    ids: list[int] = []
    for email in people:
        ids.append(await new_candidature(sessionmaker, settings, email))
    assert sorted(await sweep(sessionmaker, settings, store)) == sorted(ids)
    raws = []
    for email, cand_id in zip(people, ids, strict=True):
        mid, reply_to = await question(sessionmaker, cand_id)
        raws.append(reply(email, reply_to, mid, "Oui"))
    box.append(raws[0], "Reponses")
    box.append(raws[1], "Reponses")
    assert (await poll(sessionmaker, settings, store)).applied == 2
    old = box.uidvalidity("Reponses")

    # The mailbox is recreated (server migration, restore): new UIDVALIDITY, UIDs from 1.
    for _ in range(20):
        box.client.delete_folder("Reponses")
        box.client.create_folder("Reponses")
        if box.uidvalidity("Reponses") != old:
            break
        time.sleep(0.2)
    assert box.uidvalidity("Reponses") != old
    # The new reply comes first: its UID (1) is below the old last_uid.
    for raw in (raws[2], raws[0], raws[1]):
        box.append(raw, "Reponses")
    report = await poll(sessionmaker, settings, store)
    assert report == PollReport(seen=3, applied=1, already=2)
    for cand_id in ids:
        assert (await cand(sessionmaker, cand_id)).valide_jusqu_au == RENEWED
    assert (
        await count(sessionmaker, JournalEntry, JournalEntry.kind == "candidature.maintenue") == 3
    )
    assert box.count("Reponses") == 0

    # Same again, with only the stored value changed.
    async with sessionmaker() as s, s.begin():
        state = await s.get(ImapState, "Reponses")
        assert state is not None
        state.uidvalidity += 1
    box.append(raws[2], "Reponses")
    assert await poll(sessionmaker, settings, store) == PollReport(seen=1, already=1)


async def test_committed_but_not_moved_is_only_moved(
    sessionmaker: SM,
    settings: Settings,
    store: FileStore,
    box: Box,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    email = "jade.blanc@exemple.test"
    cand_id, mid, reply_to = await asked(sessionmaker, settings, store, email)
    box.append(reply(email, reply_to, mid, "Oui"))

    def broken_move(self: Any, *args: Any) -> None:
        raise OSError("connection reset while moving")

    monkeypatch.setattr(reader._Mailbox, "move", broken_move)
    with pytest.raises(MailboxError) as err:
        await poll(sessionmaker, settings, store)
    assert err.value.stage == "deplacement"
    assert await outcomes(sessionmaker) == ["maintenue"]
    assert box.count("INBOX") == 1
    monkeypatch.undo()

    assert await poll(sessionmaker, settings, store) == PollReport(seen=1, already=1)
    assert box.count("INBOX") == 0 and box.count("Traitees") == 1
    assert await count(sessionmaker, OutboxMail, OutboxMail.kind == "renewal_confirmed") == 1
    assert (await cand(sessionmaker, cand_id)).valide_jusqu_au == RENEWED


@pytest.mark.parametrize("uidplus", [True, False])
async def test_without_move_copy_then_expunge_only_ours(
    uidplus: bool,
    sessionmaker: SM,
    settings: Settings,
    store: FileStore,
    box: Box,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prepare = reader._Mailbox.prepare

    def old_server(self: Any) -> None:
        prepare(self)
        self.can_move, self.uidplus = False, uidplus

    monkeypatch.setattr(reader._Mailbox, "prepare", old_server)
    email = "remi.henry@exemple.test"
    cand_id, mid, reply_to = await asked(sessionmaker, settings, store, email)
    raw = reply(email, reply_to, mid, "Oui")
    # A crash after COPY left a copy in Traitees; the key was committed.
    box.append(raw)
    box.append(raw, "Traitees")
    box.append(reply("autre@exemple.test", FROM, None, "sans rapport"))
    async with sessionmaker() as s, s.begin():
        key = re.search(rb"Message-ID: (<[^>]+>)", raw)
        assert key
        s.add(ProcessedMail(key=key.group(1).decode(), outcome="maintenue", candidature_id=cand_id))
    report = await poll(sessionmaker, settings, store)
    assert report == PollReport(seen=2, ignored=1, already=1)
    assert box.count("INBOX") == 0 and box.count("Traitees") == 2  # no second copy


async def test_unreachable_or_refused_server(
    sessionmaker: SM, settings: Settings, store: FileStore, dovecot: DovecotServer
) -> None:
    from tests.fixtures.servers import free_port

    with pytest.raises(MailboxError) as err:
        await poll_once(
            sessionmaker, settings.model_copy(update={"imap_port": free_port()}), store, timeout=5
        )
    assert err.value.stage == "connexion"
    with pytest.raises(MailboxError) as err:
        await poll_once(
            sessionmaker, settings.model_copy(update={"imap_password": "faux"}), store, timeout=5
        )
    assert err.value.stage == "authentification"
    with pytest.raises(reader.ImapNotConfigured):
        await poll_once(sessionmaker, settings.model_copy(update={"imap_host": None}), store)


# --- long-running mode ----------------------------------------------------------------------


class Proxy:
    """TCP relay to Dovecot whose connections the test can cut (a network failure)."""

    def __init__(self, port: int, tls: ssl.SSLContext | None = None) -> None:
        self.target = port
        self.tls = tls
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self.writers += [writer, up_w]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader_, up_w), pipe(up_r, writer))

    def cut(self) -> None:
        for w in self.writers:
            with contextlib.suppress(Exception):
                w.transport.abort()
        self.writers.clear()

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()


async def wait_until(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


@pytest.fixture
async def proxy(dovecot: DovecotServer) -> AsyncIterator[Proxy]:
    p = Proxy(dovecot.port)
    await p.start()
    yield p
    await p.stop()


async def test_run_reader_idles_reconnects_and_stops(
    sessionmaker: SM, settings: Settings, store: FileStore, box: Box, proxy: Proxy
) -> None:
    settings = settings.model_copy(update={"imap_port": proxy.port})
    people = ["idle.un@exemple.test", "idle.deux@exemple.test"]
    ids = [await new_candidature(sessionmaker, settings, e) for e in people]
    await sweep(sessionmaker, settings, store)
    stop = asyncio.Event()
    task = asyncio.create_task(run_reader(sessionmaker, settings, store, stop, idle_check=0.2))
    try:
        await asyncio.sleep(0.5)  # connected and idling on an empty mailbox
        mid, reply_to = await question(sessionmaker, ids[0])
        box.append(reply(people[0], reply_to, mid, "Oui"))
        await wait_until(lambda: count(sessionmaker, ProcessedMail))  # woken by IDLE

        proxy.cut()  # the network drops the idling connection
        await asyncio.sleep(0.3)
        mid, reply_to = await question(sessionmaker, ids[1])
        box.append(reply(people[1], reply_to, mid, "Oui"))

        async def two() -> bool:
            return await count(sessionmaker, ProcessedMail) == 2

        await wait_until(two)  # reconnected after backoff
        assert not task.done()
    finally:
        stop.set()
        t0 = time.monotonic()
        await asyncio.wait_for(task, timeout=10)
    assert time.monotonic() - t0 < 3
    for cand_id in ids:
        assert (await cand(sessionmaker, cand_id)).valide_jusqu_au == RENEWED
    assert box.count("INBOX") == 0 and box.count("Traitees") == 2


async def test_mail_arriving_during_a_poll_is_not_left_until_the_idle_renewal(
    sessionmaker: SM,
    settings: Settings,
    store: FileStore,
    box: Box,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    people = ["race.un@exemple.test", "race.deux@exemple.test"]
    ids = [await new_candidature(sessionmaker, settings, e) for e in people]
    await sweep(sessionmaker, settings, store)
    raws = []
    for email, cand_id in zip(people, ids, strict=True):
        mid, reply_to = await question(sessionmaker, cand_id)
        raws.append(reply(email, reply_to, mid, "Oui"))
    handle = reader.handle_mail

    async def deliver_meanwhile(*args: Any, **kwargs: Any) -> str:
        if len(raws) == 1:
            box.append(raws.pop())  # after the SEARCH, before the move and the IDLE
        return await handle(*args, **kwargs)

    monkeypatch.setattr(reader, "handle_mail", deliver_meanwhile)
    box.append(raws.pop(0))
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_reader(sessionmaker, settings, store, stop, idle_renew=600, idle_check=0.2)
    )
    try:

        async def two() -> bool:
            return await count(sessionmaker, ProcessedMail) == 2

        await wait_until(two, timeout=10)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    assert box.count("INBOX") == 0 and box.count("Traitees") == 2


async def test_implicit_tls(
    sessionmaker: SM,
    settings: Settings,
    store: FileStore,
    box: Box,
    dovecot: DovecotServer,
    tmp_path: Path,
) -> None:
    cert, key = make_certificate(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(str(cert), str(key))
    tls = Proxy(dovecot.port, server_ctx)  # TLS in front of the plain test server
    await tls.start()
    try:
        settings = settings.model_copy(update={"imap_port": tls.port, "imap_ssl": True})
        email = "tls.user@exemple.test"
        cand_id, mid, reply_to = await asked(sessionmaker, settings, store, email)
        box.append(reply(email, reply_to, mid, "Oui"))
        with pytest.raises(MailboxError) as err:  # the certificate is checked by default
            await poll(sessionmaker, settings, store)
        assert err.value.stage == "connexion" and "CERTIFICATE" in err.value.detail.upper()
        trusted = ssl.create_default_context(cafile=str(cert))
        report = await poll(sessionmaker, settings, store, ssl_context=trusted)
        assert report == PollReport(seen=1, applied=1)
        assert (await cand(sessionmaker, cand_id)).valide_jusqu_au == RENEWED
    finally:
        await tls.stop()


async def test_a_bug_on_one_message_quarantines_it_only(
    sessionmaker: SM,
    settings: Settings,
    store: FileStore,
    box: Box,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    people = ["bug.un@exemple.test", "bug.deux@exemple.test"]
    ids = [await new_candidature(sessionmaker, settings, e) for e in people]
    await sweep(sessionmaker, settings, store)
    for email, cand_id in zip(people, ids, strict=True):
        mid, reply_to = await question(sessionmaker, cand_id)
        box.append(reply(email, reply_to, mid, "Oui"))
    decide = replies._decide

    async def buggy(
        session: AsyncSession, settings_: Settings, store_: FileStore, mail: Any, *rest: Any
    ) -> Any:
        if mail.sender == people[0]:
            raise KeyError("bug in core")
        return await decide(session, settings_, store_, mail, *rest)

    # The batch of both fails as a whole; one transaction each then isolates the bad one.
    monkeypatch.setattr(replies, "_decide", buggy)
    assert await poll(sessionmaker, settings, store) == PollReport(seen=2, applied=1, quarantined=1)
    assert box.count("Quarantaine") == 1 and box.count("Traitees") == 1
    assert (await cand(sessionmaker, ids[0])).valide_jusqu_au == ASKED
    assert (await cand(sessionmaker, ids[1])).valide_jusqu_au == RENEWED

    async def locked(*args: Any, **kwargs: Any) -> str:
        from sqlalchemy.exc import OperationalError

        raise OperationalError("UPDATE", {}, Exception("database is locked"))

    monkeypatch.setattr(reader, "handle_mail", locked)
    box.append(reply(people[1], FROM, None, "Oui"))
    with pytest.raises(Exception, match="database is locked"):
        await poll(sessionmaker, settings, store)
    assert box.count("INBOX") == 1  # a passing failure: left for the next poll
    monkeypatch.undo()
    assert await poll(sessionmaker, settings, store) == PollReport(seen=1, ignored=1)


# --- command line and crash -----------------------------------------------------------------

LAUNCHER = textwrap.dedent(
    """
    import argparse, asyncio, os, sys
    from aesh import cli
    from aesh.commands import mail

    _build = cli.build_parser

    def build_parser():
        # Works whether or not `aesh mail` is wired into aesh/cli.py yet.
        parser = _build()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "mail" not in sub.choices:
            mail.register(sub)
        return parser

    cli.build_parser = build_parser
    delay = float(os.environ.get("AESH_TEST_REPLY_DELAY") or 0)
    if delay:
        # Slows the child down so that SIGKILL lands in the middle of a poll.
        from core.services import replies
        _decide = replies._decide

        async def slow(*args, **kwargs):
            await asyncio.sleep(delay)
            return await _decide(*args, **kwargs)

        replies._decide = slow
    batch = int(os.environ.get("AESH_TEST_BATCH") or 0)
    if batch:
        # Small transactions, so that a kill can land between two of them, or between a
        # commit and its MOVE.
        import functools
        from mail import reader
        reader.poll_once = functools.partial(reader.poll_once, batch=batch)
    raise SystemExit(cli.main(sys.argv[1:]))
    """
)


def cli_env(tmp_path: Path, db: Path, dovecot: DovecotServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AESH_")}
    env.update(
        PYTHONPATH=str(ROOT),
        AESH_DATABASE_URL=f"sqlite+aiosqlite:///{db}",
        AESH_SECRET_KEY=SECRET,
        AESH_MAIL_FROM=FROM,
        AESH_STORAGE_DIR=str(tmp_path / "files"),
        AESH_IMAP_HOST=dovecot.host,
        AESH_IMAP_PORT=str(dovecot.port),
        AESH_IMAP_USER=dovecot.user,
        AESH_IMAP_PASSWORD=dovecot.password,
        AESH_IMAP_SSL="false",
        AESH_IMAP_FOLDER="INBOX",
    )
    env.update(extra)
    return env


def aesh(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_poll_once_json_text_and_errors(
    tmp_path: Path, dovecot: DovecotServer, box: Box
) -> None:
    db = tmp_path / "cli.db"
    env = cli_env(tmp_path, db, dovecot)
    box.append(reply("x@exemple.test", FROM, None, "bonjour"))
    out, err = aesh(["mail", "poll", "--once", "--json"], env, tmp_path).communicate(timeout=60)
    assert err == "" or "Traceback" not in err, err
    import json

    assert json.loads(out) == {
        "seen": 1,
        "applied": 0,
        "automatic": 0,
        "ignored": 1,
        "quarantined": 0,
        "already": 0,
    }
    proc = aesh(["mail", "poll", "--once", "--today", "2026-07-12"], env, tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.startswith("Lecture de la boîte : 0 message(s) lu(s)")

    proc = aesh(["mail", "poll"], env, tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "aesh run" in err and out == ""

    env_off = {k: v for k, v in env.items() if k != "AESH_IMAP_HOST"}
    proc = aesh(["mail", "poll", "--once"], env_off, tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "AESH_IMAP_HOST" in err and "non configurée" in err

    from tests.fixtures.servers import free_port

    env_down = {**env, "AESH_IMAP_PORT": str(free_port())}
    proc = aesh(["mail", "poll", "--once"], env_down, tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "inaccessible (connexion)" in err, err


@pytest.mark.slow
async def test_sigkill_mid_batch_loses_and_doubles_nothing(
    tmp_path: Path, dovecot: DovecotServer, box: Box
) -> None:
    n = 40
    db = tmp_path / "crash.db"
    settings = Settings(
        _env_file=None, secret_key=SECRET, mail_from=FROM, storage_dir=tmp_path / "files"
    )
    store = FileStore(settings.storage_dir)
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    await upgrade(engine)
    sm = make_sessionmaker(engine)
    emails = [f"candidat.{i:02d}@exemple.test" for i in range(n)]
    ids = [await new_candidature(sm, settings, e, nom=f"Nom{i}") for i, e in enumerate(emails)]
    assert len(await sweep(sm, settings, store)) == n
    reply_ids: set[str] = set()
    for email, cand_id in zip(emails, ids, strict=True):
        mid, reply_to = await question(sm, cand_id)
        raw = reply(email, reply_to, mid, "Oui, je maintiens")
        found = re.search(rb"Message-ID: (<[^>]+>)", raw)
        assert found
        reply_ids.add(found.group(1).decode())
        box.append(raw)
    await engine.dispose()

    env = cli_env(tmp_path, db, dovecot, AESH_TEST_REPLY_DELAY="0.05", AESH_TEST_BATCH="5")
    args = ["mail", "poll", "--once", "--today", TODAY.isoformat()]

    def processed() -> int:
        with contextlib.closing(sqlite3.connect(db, timeout=10)) as con:
            return int(con.execute("SELECT count(*) FROM processed_mails").fetchone()[0])

    kills = []
    for threshold in (3, 20):
        proc = aesh(args, env, tmp_path)
        deadline = time.monotonic() + 60
        while processed() < threshold and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        kills.append(processed())
    assert 3 <= kills[0] < n and kills[0] <= kills[1] < n, kills  # really killed mid-batch

    proc = aesh(args, {**env, "AESH_TEST_REPLY_DELAY": "0"}, tmp_path)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err

    with contextlib.closing(sqlite3.connect(db)) as con:
        rows = con.execute("SELECT key, outcome FROM processed_mails").fetchall()
        maintenues = con.execute(
            "SELECT entity_id, count(*) FROM journal WHERE kind = 'candidature.maintenue' "
            "GROUP BY entity_id"
        ).fetchall()
        confirmations = con.execute(
            "SELECT count(*) FROM outbox WHERE kind = 'renewal_confirmed'"
        ).fetchone()[0]
        validity = con.execute("SELECT DISTINCT valide_jusqu_au FROM candidatures").fetchall()
    assert sorted(k for k, _ in rows) == sorted(reply_ids)
    assert {o for _, o in rows} == {"maintenue"}
    assert sorted(int(e) for e, _ in maintenues) == sorted(ids)
    assert {c for _, c in maintenues} == {1}
    assert confirmations == n
    assert validity == [(RENEWED.isoformat(),)]
    moved = box.messages("Traitees")
    moved_ids = [
        re.search(rb"Message-ID: (<[^>]+>)", m).group(1).decode()  # type: ignore[union-attr]
        for m in moved
    ]
    assert sorted(moved_ids) == sorted(reply_ids)  # each exactly once
    assert box.count("INBOX") == 0


def test_launcher_registers_mail_command() -> None:
    """`aesh mail` exists in the parser once wired (the launcher adds it otherwise)."""
    from aesh import cli
    from aesh.commands import mail

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "mail" not in sub.choices:
        mail.register(sub)
    args = parser.parse_args(["mail", "poll", "--once", "--today", "2026-07-12", "--json"])
    assert args.once and args.json and args.today == date(2026, 7, 12)
