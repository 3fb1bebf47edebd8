"""Outbox → SMTP against a real aiosmtpd server: templates, MIME, retries, TLS, CLI."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.config import Settings
from core.models import OutboxMail
from core.services.outbox import Attachment, MailDraft, enqueue, plus_address, render_mail
from core.texts import TEMPLATES_DIR
from mail import outbox
from mail.outbox import MAX_ATTEMPTS, FlushReport, flush, list_mails, run_worker
from mail.sender import build_message, send
from tests.fixtures.smtp import SmtpServer, make_certificate

# Rows are queued "now" (real clock); flushes happen at T0, a little later.
T0 = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
FROM = "aesh@dsden62.test"

COMMON = {
    "service_nom": "Service école inclusive du Pas-de-Calais",
    "contact_email": "ei62@test.fr",
}
D1, D2 = date(2025, 3, 1), date(2025, 3, 31)

# kind → (context, facts that both the text and the HTML version must state)
SAMPLES: dict[str, tuple[dict[str, Any], list[str]]] = {
    "validation": (
        {"prenom": "Zoé", "nom": "Lefèvre", "civilite": None, "code": "482913",
         "lien": "https://t.me/aesh62_bot?start=tok123", "expire_le": D1},
        ["Zoé", "482913", "https://t.me/aesh62_bot?start=tok123", "01/03/2025"],
    ),
    "login_code": (
        {"prenom": "Zoé", "code": "771204", "expire_le": D1},
        ["Zoé", "771204", "01/03/2025"],
    ),
    "renewal": (
        {"prenom": "Zoé", "type_libelle": "AESH", "reference": "C-000123",
         "valide_jusqu_au": D1, "date_limite": D2},
        ["Zoé", "AESH", "C-000123", "01/03/2025", "31/03/2025", "Oui", "Non", "6 mois",
         "supprimé"],
    ),
    "renewal_reminder": (
        {"prenom": "Zoé", "type_libelle": "M2 alternance MEEF 1er degré Nord",
         "reference": "C-000124", "valide_jusqu_au": D1, "date_limite": D2,
         "jours_restants": 5},
        ["M2 alternance MEEF 1er degré Nord", "C-000124", "31/03/2025", "5 jours", "Oui",
         "Non"],
    ),
    "renewal_confirmed": (
        {"prenom": "Zoé", "type_libelle": "AESH", "reference": "C-000123",
         "valide_jusqu_au": date(2025, 9, 1)},
        ["Zoé", "C-000123", "01/09/2025"],
    ),
    "withdrawal_confirmed": (
        {"prenom": "Zoé", "type_libelle": "AESH", "reference": "C-000123"},
        ["Zoé", "C-000123", "retirée"],
    ),
    "deletion_notice": (
        {"prenom": None, "type_libelle": "AESH", "reference": "C-000123"},
        ["C-000123", "supprimée"],
    ),
    "clarification": (
        {"prenom": "Zoé", "type_libelle": "AESH", "reference": "C-000123",
         "date_limite": D2},
        ["C-000123", "31/03/2025", "Oui", "Non"],
    ),
    "etablissement_summary": (
        {"etablissement_nom": "École Jean Jaurès", "rne": "0620001A", "annee": "2025-2026"},
        ["École Jean Jaurès", "0620001A", "2025-2026", "PDF"],
    ),
}  # fmt: skip


def ctx(kind: str, **over: Any) -> dict[str, Any]:
    return {**COMMON, **SAMPLES[kind][0], **over}


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def settings_for(server: SmtpServer, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,
        smtp_host=server.host,
        smtp_port=server.port,
        smtp_tls=server.tls,
        mail_from=FROM,
        **extra,
    )


async def queue(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    n: int = 1,
    *,
    kind: str = "renewal",
    to: str = "zoe.lefevre@exemple.fr",
    **draft: Any,
) -> list[OutboxMail]:
    rows = []
    async with sessionmaker() as session:
        for i in range(n):
            address = to if n == 1 else to.replace("@", f"{i}@")
            rows.append(
                await enqueue(session, settings, MailDraft(kind, address, ctx(kind), **draft))
            )
        await session.commit()
    return rows


async def rows_by_id(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[int, OutboxMail]:
    async with sessionmaker() as session:
        return {r.id: r for r in await session.scalars(select(OutboxMail))}


def parts(msg: EmailMessage) -> dict[str, str]:
    body = {}
    for ctype in ("plain", "html"):
        part = msg.get_body((ctype,))
        assert part is not None, ctype
        body[ctype] = part.get_content()
    return body


# --- templates ---------------------------------------------------------------------------


def test_every_mail_kind_has_a_sample() -> None:
    kinds = {p.name.split(".")[0] for p in (TEMPLATES_DIR / "mail").glob("[!_]*.j2")}
    assert kinds == set(SAMPLES)
    for kind in kinds:
        for suffix in ("subject", "txt", "html"):
            assert (TEMPLATES_DIR / "mail" / f"{kind}.{suffix}.j2").is_file()


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_template_renders_key_facts(kind: str) -> None:
    subject, text, html = render_mail(kind, ctx(kind))
    assert subject and "\n" not in subject
    for fact in SAMPLES[kind][1]:
        assert fact in text, (kind, fact)
        assert fact in html, (kind, fact)
    for common in COMMON.values():
        assert common in text and common in html
    assert html.lstrip().startswith("<!DOCTYPE html>") and 'lang="fr"' in html
    assert "<style" not in html  # inline styles only


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_html_escapes_user_values(kind: str) -> None:
    evil = "<script>alert(1)</script>"
    field = "etablissement_nom" if kind == "etablissement_summary" else "type_libelle"
    if kind in ("validation", "login_code"):
        field = "prenom"
    _, text, html = render_mail(kind, ctx(kind, **{field: evil}))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert evil in text  # plain text is not HTML: shown as typed


def test_optional_values() -> None:
    _, text, html = render_mail("validation", ctx("validation", lien=None, civilite="Madame"))
    assert "Madame Lefèvre" in text and "t.me" not in text and "t.me" not in html
    _, text, _ = render_mail("deletion_notice", ctx("deletion_notice", prenom="Zoé"))
    assert text.startswith("Bonjour Zoé,")
    _, text, _ = render_mail("renewal_reminder", ctx("renewal_reminder", jours_restants=1))
    assert "1 jour " in text


# --- message -----------------------------------------------------------------------------


async def test_enqueue_then_flush_delivers_full_message(
    smtp: SmtpServer, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    settings = settings_for(smtp)
    pdf = tmp_path / "synthese.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    reply_to = plus_address(settings, "r-c123")
    [row] = await queue(
        sessionmaker,
        settings,
        to="Zoé Lefèvre <zoe.lefevre@exemple.fr>",
        cc=["gestion@dsden62.test"],
        reply_to=reply_to,
        attachments=[Attachment("Synthèse 2025.pdf", "application/pdf", str(pdf))],
        headers={"X-AESH-Kind": "renewal"},
    )

    report = await flush(sessionmaker, settings, now=T0)

    assert report == FlushReport(sent=1, retried=0, failed=0)
    [got] = smtp.received
    msg = got.message
    assert sorted(got.rcpt_tos) == ["gestion@dsden62.test", "zoe.lefevre@exemple.fr"]
    assert got.mail_from == FROM and not got.smtp_utf8
    assert msg["Message-ID"] == row.message_id
    assert msg["Reply-To"] == reply_to
    assert msg["Subject"] == "Votre candidature AESH : réponse attendue"
    assert msg["From"].addresses[0].display_name == "Service école inclusive"
    assert msg["To"].addresses[0].display_name == "Zoé Lefèvre"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-AESH-Kind"] == "renewal"
    assert msg["Date"] is not None
    # Non-ASCII header text travels RFC 2047-encoded: the raw headers are pure ASCII.
    raw_headers = got.raw.split(b"\r\n\r\n", 1)[0]
    raw_headers.decode("ascii")
    assert b"=?utf-8?" in raw_headers.lower()
    body = parts(msg)
    assert "C-000123" in body["plain"] and "31/03/2025" in body["plain"]
    assert "C-000123" in body["html"] and "<p" in body["html"]
    assert msg.get_body(("plain",)).get_content_type() == "text/plain"  # type: ignore[union-attr]
    [att] = list(msg.iter_attachments())
    assert att.get_filename() == "Synthèse 2025.pdf"
    assert att.get_content_type() == "application/pdf"
    assert att.get_content() == pdf.read_bytes()

    stored = (await rows_by_id(sessionmaker))[row.id]
    assert stored.status == "sent" and stored.attempts == 1
    assert stored.sent_at is not None and utc(stored.sent_at) == T0


async def test_missing_attachment_fails_at_once(
    smtp: SmtpServer, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    settings = settings_for(smtp)
    [bad] = await queue(
        sessionmaker,
        settings,
        kind="etablissement_summary",
        attachments=[Attachment("x.pdf", "application/pdf", str(tmp_path / "gone.pdf"))],
    )
    [good] = await queue(sessionmaker, settings, to="autre@exemple.fr")

    report = await flush(sessionmaker, settings, now=T0)

    assert report == FlushReport(sent=1, retried=0, failed=1)
    rows = await rows_by_id(sessionmaker)
    assert rows[bad.id].status == "failed"
    assert "attachment 1" in (rows[bad.id].last_error or "")
    assert "missing" in (rows[bad.id].last_error or "")
    assert smtp.count_by_message_id() == {good.message_id: 1}


async def test_non_ascii_addresses(
    smtp: SmtpServer, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    settings = settings_for(smtp)
    [idn] = await queue(sessionmaker, settings, to="jean@exemplé.fr")
    [utf8] = await queue(sessionmaker, settings, to="zoé@exemple.fr")

    assert await flush(sessionmaker, settings, now=T0) == FlushReport(sent=2)

    by_id = {str(r.message["Message-ID"]): r for r in smtp.received}
    # A non-ASCII domain goes out IDNA-encoded, no SMTPUTF8 needed …
    assert by_id[idn.message_id].rcpt_tos == ["jean@xn--exempl-gva.fr"]
    assert not by_id[idn.message_id].smtp_utf8
    # … a non-ASCII mailbox name needs SMTPUTF8, which this server offers.
    assert by_id[utf8.message_id].rcpt_tos == ["zoé@exemple.fr"]
    assert by_id[utf8.message_id].smtp_utf8


async def test_several_mails_share_one_connection(
    smtp: SmtpServer, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    settings = settings_for(smtp)
    rows = await queue(sessionmaker, settings, 120)
    smtp.ehlo_count = 0

    report = await flush(sessionmaker, settings, now=T0)

    assert report.sent == 120
    assert smtp.ehlo_count == 1
    # Oldest first.
    assert [str(m["Message-ID"]) for m in smtp.messages()] == [r.message_id for r in rows]


async def test_send_alone(smtp: SmtpServer, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    settings = settings_for(smtp)
    [row] = await queue(sessionmaker, settings, kind="login_code")
    await send(build_message(row, settings), settings)
    assert smtp.count_by_message_id() == {row.message_id: 1}


# --- failures and retries ----------------------------------------------------------------


async def test_server_down_then_up_delivers_each_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    server = SmtpServer()  # port chosen, nothing listening yet
    settings = settings_for(server)
    rows = await queue(sessionmaker, settings, 3)

    report = await flush(sessionmaker, settings, now=T0)

    # Nothing was offered: the mails keep their attempts, stay due, and show why they wait.
    assert report == FlushReport(retried=3, server_down=True)
    for r in (await rows_by_id(sessionmaker)).values():
        assert r.status == "pending" and r.attempts == 0
        assert utc(r.next_attempt_at) == T0
        assert r.last_error and str(server.port) in r.last_error
    with server:
        # Back: they leave at the next round, whenever it comes.
        report = await flush(sessionmaker, settings, now=T0 + timedelta(seconds=30))
        assert report == FlushReport(sent=3)
        assert await flush(sessionmaker, settings, now=T0 + timedelta(hours=1)) == FlushReport()
        assert server.count_by_message_id() == {r.message_id: 1 for r in rows}
        # Down again, then up again on the same port.
        server.stop()
        [late] = await queue(sessionmaker, settings, to="tard@exemple.fr")
        assert await flush(sessionmaker, settings, now=T0 + timedelta(hours=2)) == FlushReport(
            retried=1, server_down=True
        )
        server.start()
        assert (await flush(sessionmaker, settings, now=T0 + timedelta(hours=2))).sent == 1
        assert server.count_by_message_id()[late.message_id] == 1
    stored = await rows_by_id(sessionmaker)
    assert all(r.status == "sent" for r in stored.values())
    assert stored[late.id].attempts == 1 and stored[late.id].last_error is None


async def test_a_long_outage_of_our_server_fails_no_mail(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Rounds against a server that is down do not use up a mail's attempts: after a night
    of outage the mails are still pending and due, and each goes once the server is back."""
    server = SmtpServer()  # nothing listening on its port
    settings = settings_for(server)
    rows = await queue(sessionmaker, settings, 2)
    now = T0
    for _ in range(MAX_ATTEMPTS + 3):
        assert await flush(sessionmaker, settings, now=now) == FlushReport(
            retried=2, server_down=True
        )
        stored = await rows_by_id(sessionmaker)
        assert {(r.status, r.attempts) for r in stored.values()} == {("pending", 0)}
        now += timedelta(hours=1.2)
    assert now - T0 > timedelta(hours=12)
    with server:
        assert await flush(sessionmaker, settings, now=now) == FlushReport(sent=2)
        assert server.count_by_message_id() == {r.message_id: 1 for r in rows}


async def test_a_round_stops_at_an_unreachable_server_and_leaves_the_rest_due(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """One connection attempt per round however long the queue, and the mails not reached
    keep no lease: a round a minute later takes them all."""
    server = SmtpServer()
    settings = settings_for(server)
    rows = await queue(sessionmaker, settings, outbox.CLAIM_BATCH + 10)
    report = await flush(sessionmaker, settings, now=T0)
    assert report == FlushReport(retried=outbox.CLAIM_BATCH, server_down=True)
    stored = await rows_by_id(sessionmaker)
    assert all(utc(r.next_attempt_at) <= T0 and r.attempts == 0 for r in stored.values())
    with server:
        report = await flush(sessionmaker, settings, now=T0 + timedelta(minutes=1))
        assert report == FlushReport(sent=len(rows))


async def test_reconnects_after_server_restart_mid_session(
    smtp: SmtpServer, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A worker keeps no connection across rounds, but a reused one found dead is redialled."""
    from mail.sender import SmtpSession

    settings = settings_for(smtp)
    first, second = await queue(sessionmaker, settings, 2)
    async with SmtpSession(settings) as session:
        await session.send(build_message(first, settings))
        smtp.restart()  # drops the open connection
        await session.send(build_message(second, settings))
        assert session.connections == 2
    assert smtp.count_by_message_id() == {first.message_id: 1, second.message_id: 1}


async def test_5xx_fails_at_once_and_others_still_go(
    smtp: SmtpServer, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    settings = settings_for(smtp)
    [bad] = await queue(sessionmaker, settings, to="inconnu@exemple.fr")
    [good] = await queue(sessionmaker, settings, to="connu@exemple.fr")
    smtp.fail_with("550 5.1.1 <inconnu@exemple.fr>: user unknown", addresses={"inconnu@exemple.fr"})

    report = await flush(sessionmaker, settings, now=T0)

    assert report == FlushReport(sent=1, retried=0, failed=1)
    rows = await rows_by_id(sessionmaker)
    assert rows[bad.id].status == "failed" and rows[bad.id].attempts == 1
    assert "550" in (rows[bad.id].last_error or "")
    assert rows[good.id].status == "sent"
    assert smtp.count_by_message_id() == {good.message_id: 1}
    # Failed is final.
    assert await flush(sessionmaker, settings, now=T0 + timedelta(days=1)) == FlushReport()


async def test_4xx_retried_with_backoff_then_failed(
    smtp: SmtpServer, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    settings = settings_for(smtp)
    [row] = await queue(sessionmaker, settings)
    smtp.fail_with("451 4.3.0 Mailbox busy, try later")
    now = T0
    delays = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        report = await flush(sessionmaker, settings, now=now)
        stored = (await rows_by_id(sessionmaker))[row.id]
        assert stored.attempts == attempt
        assert "451" in (stored.last_error or "")
        if attempt < MAX_ATTEMPTS:
            assert report == FlushReport(retried=1)
            assert stored.status == "pending"
            delays.append(utc(stored.next_attempt_at) - now)
            now = utc(stored.next_attempt_at)
        else:
            assert report == FlushReport(failed=1)
            assert stored.status == "failed"
    for i, delay in enumerate(delays):
        expected = timedelta(minutes=2**i)
        assert expected <= delay <= expected * 1.1
    assert smtp.received == []
    assert outbox.backoff(30) == outbox.MAX_DELAY


async def test_4xx_then_success(
    smtp: SmtpServer, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    settings = settings_for(smtp)
    [row] = await queue(sessionmaker, settings)
    smtp.fail_with("421 4.7.0 Too many connections", times=1)
    assert await flush(sessionmaker, settings, now=T0) == FlushReport(retried=1)
    assert await flush(sessionmaker, settings, now=T0 + timedelta(minutes=5)) == FlushReport(sent=1)
    assert smtp.count_by_message_id() == {row.message_id: 1}


async def test_concurrent_flushes_send_each_mail_once(
    smtp: SmtpServer, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    settings = settings_for(smtp)
    rows = await queue(sessionmaker, settings, 60)
    reports = await asyncio.gather(
        flush(sessionmaker, settings, now=T0), flush(sessionmaker, settings, now=T0)
    )
    assert sum(r.sent for r in reports) == 60
    assert smtp.count_by_message_id() == {r.message_id: 1 for r in rows}


# --- TLS ---------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("mode", ["starttls", "implicit"])
async def test_tls_modes_with_login(
    mode: str, cert: tuple[Path, Path], sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    with SmtpServer(tls=mode, cert=cert, login=("aesh62", "s3cret")) as server:  # type: ignore[arg-type]
        settings = settings_for(server, smtp_user="aesh62", smtp_password="s3cret")
        [row] = await queue(sessionmaker, settings)

        # Production settings check certificates: a self-signed one is refused (the mail
        # waits, as for a server down).
        refused = await flush(sessionmaker, settings, now=T0)
        assert refused == FlushReport(retried=1, server_down=True)
        error = (await rows_by_id(sessionmaker))[row.id].last_error or ""
        assert "CERTIFICATE_VERIFY_FAILED" in error or "certificate" in error.lower()

        # Trusting the test CA (not switching checks off) lets it through.
        report = await flush(
            sessionmaker, settings, now=T0 + timedelta(minutes=5), tls_context=server.client_ctx
        )
        assert report == FlushReport(sent=1)
        assert server.count_by_message_id() == {row.message_id: 1}
        assert server.logins == ["aesh62"]


async def test_wrong_password_is_temporary(
    cert: tuple[Path, Path], sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    with SmtpServer(tls="starttls", cert=cert, login=("aesh62", "s3cret")) as server:
        settings = settings_for(server, smtp_user="aesh62", smtp_password="faux")
        await queue(sessionmaker, settings, 3)
        report = await flush(sessionmaker, settings, now=T0, tls_context=server.client_ctx)
        assert report == FlushReport(retried=3, server_down=True)
        assert all(
            "login refused" in (r.last_error or "")
            for r in (await rows_by_id(sessionmaker)).values()
        )


# --- worker, listing, CLI ----------------------------------------------------------------


async def test_run_worker_delivers_until_stopped(
    smtp: SmtpServer, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    settings = settings_for(smtp)
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(sessionmaker, settings, stop, interval=0.05))
    [row] = await queue(sessionmaker, settings)
    for _ in range(200):
        if smtp.received:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert smtp.count_by_message_id() == {row.message_id: 1}


async def test_run_worker_probes_a_server_that_is_down_and_delivers_on_its_return(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    server = SmtpServer()  # nothing listening yet
    settings = settings_for(server)
    rows = await queue(sessionmaker, settings, 3)
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(sessionmaker, settings, stop, interval=0.05))
    try:
        await asyncio.sleep(0.5)  # a few rounds against the closed port, pauses growing
        stored = await rows_by_id(sessionmaker)
        assert {(r.status, r.attempts) for r in stored.values()} == {("pending", 0)}
        assert all(r.last_error for r in stored.values())
        with server:
            for _ in range(300):
                if len(server.received) == 3:
                    break
                await asyncio.sleep(0.02)
            assert server.count_by_message_id() == {r.message_id: 1 for r in rows}
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_list_mails(smtp: SmtpServer, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    settings = settings_for(smtp)
    await queue(sessionmaker, settings, 2)
    await flush(sessionmaker, settings, now=T0)
    await queue(sessionmaker, settings, to="encore@exemple.fr")
    async with sessionmaker() as session:
        everything = await list_mails(session)
        pending = await list_mails(session, "pending")
    assert [m["status"] for m in everything] == ["sent", "sent", "pending"]
    assert set(everything[0]) == {
        "id", "kind", "to", "subject", "status", "attempts", "next_attempt_at",
        "last_error", "created_at", "sent_at",
    }  # fmt: skip
    assert [m["to"] for m in pending] == ["encore@exemple.fr"]
    assert "body_text" not in everything[0]


async def test_cli_flush_and_list(
    smtp: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from aesh.commands.outbox import register

    url = engine.url.render_as_string(hide_password=False)
    settings = settings_for(smtp, database_url=url)
    parser = argparse.ArgumentParser(prog="aesh")
    register(parser.add_subparsers(dest="command", required=True))
    smtp.fail_with("550 5.1.1 user unknown", addresses={"inconnu@exemple.fr"})
    await queue(sessionmaker, settings, 2)
    await queue(sessionmaker, settings, to="inconnu@exemple.fr")

    args = parser.parse_args(["outbox", "flush"])
    assert await args.func(args, settings) == 0
    assert capsys.readouterr().out.strip() == (
        "Envoi des courriels : 2 envoyé(s), 0 reporté(s), 1 en échec."
    )

    # Our server unreachable: the command says so and fails; the mail waits.
    await queue(sessionmaker, settings, to="plus-tard@exemple.fr")
    down = settings.model_copy(update={"smtp_port": SmtpServer().port})
    args = parser.parse_args(["outbox", "flush"])
    assert await args.func(args, down) == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == "Envoi des courriels : 0 envoyé(s), 1 reporté(s), 0 en échec."
    assert "injoignable" in captured.err

    args = parser.parse_args(["outbox", "list"])
    assert await args.func(args, settings) == 0
    out = capsys.readouterr().out
    assert "Destinataire" in out and "envoyé" in out and "en échec" in out and "550" in out

    args = parser.parse_args(["outbox", "list", "--status", "failed", "--json"])
    assert await args.func(args, settings) == 0
    data = json.loads(capsys.readouterr().out)
    [failed] = data["mails"]
    assert failed["to"] == "inconnu@exemple.fr" and failed["status"] == "failed"
    assert failed["next_attempt_at"] is None and failed["created_at"].endswith("+00:00")

    # The server back, the waiting mail leaves at once.
    args = parser.parse_args(["outbox", "flush", "--json"])
    assert await args.func(args, settings) == 0
    assert json.loads(capsys.readouterr().out) == {"sent": 1, "retried": 0, "failed": 0}
    assert await args.func(args, settings) == 0
    assert json.loads(capsys.readouterr().out) == {"sent": 0, "retried": 0, "failed": 0}

    no_smtp = Settings(_env_file=None, database_url=url)
    args = parser.parse_args(["outbox", "flush"])
    assert await args.func(args, no_smtp) == 1
    assert "AESH_SMTP_HOST" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        parser.parse_args(["outbox", "list", "--status", "bidon"])


async def test_a_thousand_mails_each_delivered_once_over_few_connections(
    smtp: SmtpServer, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    # Throughput itself is measured by benchmarks/bench_mail.py, never by a timed test.
    settings = settings_for(smtp)
    rows = await queue(sessionmaker, settings, 1000)
    while (await flush(sessionmaker, settings, now=T0)).total:
        pass
    assert smtp.count_by_message_id() == {r.message_id: 1 for r in rows}
    assert smtp.ehlo_count <= 1000 // 500 + 1  # one connection per flush round
