"""The sandbox's mail loop without a browser: the outbox worker delivers to the in-process
SMTP server, and a reply built as the page builds it reaches the mail agent's rules."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.models import Candidature, OutboxMail
from core.services import candidatures as svc
from core.services.storage import FileStore
from mail.outbox import flush
from sandbox.mailbox import MailStore, StoredMail, build_reply, deliver_reply
from sandbox.smtp import LocalSmtp

SM = async_sessionmaker[AsyncSession]
SUBMITTED = date(2026, 1, 10)  # valid until 10/07/2026
ASKED = date(2026, 7, 10)
EMAIL = "chloe.dupre@exemple.test"


@pytest.fixture
async def smtp(tmp_path: Path) -> AsyncIterator[tuple[LocalSmtp, MailStore]]:
    mailbox = MailStore(tmp_path / "sandbox-mail")
    server = LocalSmtp(lambda sender, rcpts, raw: mailbox.add("sent", sender, rcpts, raw))
    await server.start()
    yield server, mailbox
    await server.stop()


@pytest.fixture
def settings(tmp_path: Path, smtp: tuple[LocalSmtp, MailStore]) -> Settings:
    return Settings(
        secret_key="s" * 32,
        mail_from="aesh@ac-test.fr",
        storage_dir=tmp_path / "files",
        departement="062",
        smtp_host="127.0.0.1",
        smtp_port=smtp[0].port,
    )


async def submitted_candidature(sm: SM, settings: Settings) -> int:
    reg = svc.Registration(
        "Mme", "Dupré", "Chloé", date(1990, 7, 14), EMAIL, "06 12 34 56 78", "Arras", "62000"
    )
    async with sm() as s, s.begin():
        c = await svc.register(s, settings, reg)
        mail = await s.scalar(select(OutboxMail).where(OutboxMail.kind == "validation"))
        assert mail is not None
        code = re.search(r"\b(\d{6})\b", mail.body_text)
        assert code
        await svc.validate_with_code(s, settings, EMAIL, code.group(1), None)
        cand = await svc.create_candidature(s, c, "AESH", {"rqth": "non"}, ["Arras"])
        await svc.submit(s, cand, today=SUBMITTED)
        return cand.id


async def renewal_mail(sm: SM, settings: Settings, mailbox: MailStore) -> StoredMail:
    store = FileStore(settings.storage_dir)
    async with sm() as s, s.begin():
        assert (await svc.renewal_sweep(s, settings, store, ASKED)).asked
    report = await flush(sm, settings)
    assert report.failed == 0 and report.retried == 0
    found = [m for m in mailbox.mails if "réponse attendue" in m.header("Subject")]
    assert len(found) == 1, [m.header("Subject") for m in mailbox.mails]
    return found[0]


async def test_a_reply_typed_on_the_page_renews_the_candidature(
    sessionmaker: SM, settings: Settings, smtp: tuple[LocalSmtp, MailStore], tmp_path: Path
) -> None:
    _, mailbox = smtp
    cand_id = await submitted_candidature(sessionmaker, settings)
    question = await renewal_mail(sessionmaker, settings, mailbox)
    assert question.envelope_to == [EMAIL]
    assert question.html is not None and "Oui" in question.text

    raw = build_reply(question, "Oui, je la maintiens.", EMAIL)
    reply = email.message_from_bytes(raw, policy=email.policy.default)
    assert reply["To"] == question.header("Reply-To")
    assert reply["In-Reply-To"] == question.header("Message-ID")
    assert question.header("Message-ID") in reply["References"]
    assert reply["Subject"].startswith("Re: ")
    assert "> " in reply.get_body(("plain",)).get_content()  # the question is quoted

    store = FileStore(settings.storage_dir)
    assert await deliver_reply(sessionmaker, settings, store, raw, ASKED) == "maintenue"
    # The same message read twice (a mailbox seen again) changes nothing.
    assert await deliver_reply(sessionmaker, settings, store, raw, ASKED) == "deja_traite"
    async with sessionmaker() as s:
        cand = await s.get(Candidature, cand_id)
        assert cand is not None and cand.relance_le is None
    await flush(sessionmaker, settings)
    assert any("prolongée" in m.header("Subject") for m in mailbox.mails)

    # The panel finds every mail again after a restart.
    again = MailStore(tmp_path / "sandbox-mail")
    again.load()
    assert [m.header("Message-ID") for m in again.mails] == [
        m.header("Message-ID") for m in mailbox.mails
    ]


async def test_a_reply_from_another_address_is_ignored(
    sessionmaker: SM, settings: Settings, smtp: tuple[LocalSmtp, MailStore]
) -> None:
    _, mailbox = smtp
    await submitted_candidature(sessionmaker, settings)
    question = await renewal_mail(sessionmaker, settings, mailbox)
    raw = build_reply(question, "Non, je retire ma candidature.", "quelquun@exemple.test")
    store = FileStore(settings.storage_dir)
    assert await deliver_reply(sessionmaker, settings, store, raw, ASKED) == "expediteur_different"


async def test_attachments_are_listed_and_served(tmp_path: Path) -> None:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = "aesh@ac-test.fr"
    msg["To"] = EMAIL
    msg["Subject"] = "Synthèse"
    msg.set_content("Voir la pièce jointe.")
    msg.add_attachment(b"%PDF-1.4 x", maintype="application", subtype="pdf", filename="pv.pdf")
    mailbox = MailStore(tmp_path / "box")
    stored = mailbox.add("sent", "aesh@ac-test.fr", [EMAIL], msg.as_bytes())
    detail = stored.detail()
    assert detail["attachment_files"][0]["filename"] == "pv.pdf"
    assert stored.attachment(0) == (b"%PDF-1.4 x", "pv.pdf", "application/pdf")
    assert detail["text"].strip() == "Voir la pièce jointe."
