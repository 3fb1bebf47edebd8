"""Candidate services (domain 2): account validation, candidatures, pieces, renewal, erasure."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.config import Settings
from core.db import make_sessionmaker
from core.errors import InvalidInput
from core.models import BotNotification, Candidat, Candidature, OutboxMail, Piece
from core.rules import tokens
from core.rules.candidature import renewed_validity
from core.services import candidatures as svc
from core.services.outbox import rendered
from core.services.storage import FileStore

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
EXE = b"MZ\x90\x00" + b"\x00" * 64


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        secret_key="k" * 32,
        mail_from="aesh@ac-test.fr",
        storage_dir=tmp_path / "files",
        renewal_reply_days=30,
    )


@pytest.fixture
def store(settings: Settings) -> FileStore:
    return FileStore(settings.storage_dir)


REG = svc.Registration(
    "Mme",
    "Dupré",
    "Chloé",
    date(1990, 7, 14),
    "chloe.dupre@exemple.test",
    "06 12 34 56 78",
    "Arras",
    "62000",
)


async def mails(s: AsyncSession, kind: str | None = None) -> list[OutboxMail]:
    q = select(OutboxMail).order_by(OutboxMail.id)
    if kind:
        q = q.where(OutboxMail.kind == kind)
    return list((await s.scalars(q)).all())


def code_in(mail: OutboxMail) -> str:
    m = re.search(r"\b(\d{6})\b", mail.body_text)
    assert m, mail.body_text
    return m.group(1)


async def registered(s: AsyncSession, settings: Settings) -> Candidat:
    await svc.register(s, settings, REG, bot_username="aesh_test_bot")
    [mail] = await mails(s, "validation")
    return await svc.validate_with_code(s, settings, REG.email, code_in(mail), telegram_id=42)


async def test_registration_mails_a_link_and_a_code(
    engine: AsyncEngine, settings: Settings
) -> None:
    async with make_sessionmaker(engine)() as s:
        c = await svc.register(s, settings, REG, bot_username="aesh_test_bot")
        [mail] = await mails(s, "validation")
        link = re.search(r"https://t\.me/aesh_test_bot\?start=([A-Za-z0-9_-]+)", mail.body_text)
        assert link and len(link.group(1)) <= 64 and mail.to_addr == REG.email
        assert c.valide_le is None
        with pytest.raises(InvalidInput):
            await svc.validate_with_token(s, settings, link.group(1)[:-1] + "0", 7)
        ok = await svc.validate_with_token(s, settings, link.group(1), 7)
        assert ok.valide_le is not None and ok.telegram_id == 7


async def test_wrong_codes_then_lock(engine: AsyncEngine, settings: Settings) -> None:
    async with make_sessionmaker(engine)() as s:
        await svc.register(s, settings, REG)
        for _ in range(5):
            with pytest.raises(InvalidInput, match="incorrect"):
                await svc.validate_with_code(s, settings, REG.email, "000000", None)
        [mail] = await mails(s, "validation")
        with pytest.raises(InvalidInput, match="Trop d'essais"):
            await svc.validate_with_code(s, settings, REG.email, code_in(mail), None)


async def test_login_on_a_new_telegram_account(engine: AsyncEngine, settings: Settings) -> None:
    async with make_sessionmaker(engine)() as s:
        await registered(s, settings)
        await svc.request_login_code(s, settings, "inconnu@exemple.test")  # silent
        await svc.request_login_code(s, settings, REG.email)
        [mail] = await mails(s, "login_code")
        c = await svc.login_with_code(s, settings, REG.email, code_in(mail), telegram_id=99)
        assert c.telegram_id == 99
        assert await svc.by_telegram(s, 42) is None


async def test_pieces_make_an_aesh_candidature_complete(
    engine: AsyncEngine, settings: Settings, store: FileStore
) -> None:
    async with make_sessionmaker(engine)() as s:
        c = await registered(s, settings)
        cand = await svc.create_candidature(s, c, "AESH", {"rqth": "non"}, ["Arras", "Lens"])
        comp = await svc.submit(s, cand, today=date(2026, 3, 1))
        assert cand.statut == "incomplete" and cand.valide_jusqu_au == date(2026, 9, 1)
        assert comp.missing_pieces == ("cv", "lettre_motivation", "piece_identite", "diplome")
        with pytest.raises(InvalidInput, match="PDF, JPEG et PNG"):
            await svc.add_piece(s, store, cand, "cv", EXE)
        with pytest.raises(InvalidInput, match="10 Mo"):
            await svc.add_piece(s, store, cand, "cv", PDF + b"0" * (10 * 2**20))
        for kind in ("cv", "lettre_motivation", "piece_identite"):
            await svc.add_piece(s, store, cand, kind, PDF)
        assert cand.statut == "incomplete"
        await svc.add_piece(s, store, cand, "diplome", PNG)
        assert cand.statut == "complete"
        await svc.add_piece(s, store, cand, "cv", PDF + b"v2")  # re-upload replaces
        current = (
            await s.scalars(select(Piece).where(Piece.kind == "cv", Piece.current.is_(True)))
        ).all()
        assert len(current) == 1 and current[0].size == len(PDF) + 2


async def test_m2_needs_a_licence_with_its_copy(
    engine: AsyncEngine, settings: Settings, store: FileStore
) -> None:
    async with make_sessionmaker(engine)() as s:
        c = await registered(s, settings)
        cand = await svc.create_candidature(s, c, "M2_1D_PDC", {"ine": "123456789AB"}, ["Arras"])
        await svc.submit(s, cand)
        for kind in (
            "cv",
            "lettre_motivation",
            "piece_identite",
            "diplome",
            "justificatif_inscription",
        ):
            comp = await svc.add_piece(s, store, cand, kind, PDF)
        assert comp.missing_licence and cand.statut == "incomplete"
        await svc.save_diplome(
            s, store, c, svc.DiplomeInput("LICENCE", "Licence STAPS", 2024), copie=PDF
        )
        assert cand.statut == "complete"


async def submitted(
    s: AsyncSession, settings: Settings, store: FileStore, day: date
) -> Candidature:
    c = await registered(s, settings)
    cand = await svc.create_candidature(s, c, "AESH", {}, ["Arras"])
    await svc.submit(s, cand, today=day)
    await svc.add_piece(s, store, cand, "cv", PDF)
    return cand


async def test_renewal_question_once_then_keep_extends_six_months(
    engine: AsyncEngine, settings: Settings, store: FileStore
) -> None:
    async with make_sessionmaker(engine)() as s:
        cand = await submitted(s, settings, store, date(2026, 2, 28))
        assert cand.valide_jusqu_au == date(2026, 8, 28)
        assert (await svc.renewal_sweep(s, settings, store, date(2026, 8, 27))).asked == []
        rep = await svc.renewal_sweep(s, settings, store, date(2026, 8, 28))
        again = await svc.renewal_sweep(s, settings, store, date(2026, 8, 28))
        assert rep.asked == [cand.id] and again.asked == []
        [q] = await mails(s, "renewal")
        token = svc.renewal_token(settings, cand)
        assert q.reply_to == f"aesh+{token}@ac-test.fr"
        assert q.message_id == f"<renewal-{token}@ac-test.fr>"
        subject, text, html = rendered(q)  # queued in bulk: rendered when sent
        assert "27/09/2026" in text and html and "27/09/2026" in html  # the reply deadline
        assert subject.startswith("Votre candidature AESH")
        assert cand.statut == "incomplete" and cand.relance_le == date(2026, 8, 28)
        notes = (await s.scalars(select(BotNotification))).all()
        assert [n.kind for n in notes] == ["renewal_question"]
        stamp = tokens.verify(settings.require_secret_key(), token)[2]  # type: ignore[index]
        out = await svc.apply_renewal_answer(s, settings, store, cand.id, "keep", stamp=stamp)
        twice = await svc.apply_renewal_answer(s, settings, store, cand.id, "keep", stamp=stamp)
        assert (out, twice) == ("maintenue", "deja_traitee")
        assert cand.valide_jusqu_au == date(2027, 2, 28) and cand.relance_le is None
        assert len(await mails(s, "renewal_confirmed")) == 1


def test_renewal_adds_calendar_months_clamped() -> None:
    assert renewed_validity(date(2026, 8, 31)) == date(2027, 2, 28)
    assert renewed_validity(date(2027, 8, 31)) == date(2028, 2, 29)


async def test_unclear_gets_one_clarification_and_no_answer_deletes(
    engine: AsyncEngine, settings: Settings, store: FileStore
) -> None:
    async with make_sessionmaker(engine)() as s:
        cand = await submitted(s, settings, store, date(2026, 1, 10))
        await svc.renewal_sweep(s, settings, store, date(2026, 7, 10))
        assert await svc.apply_renewal_answer(s, settings, store, cand.id, "unclear") == (
            "clarification"
        )
        assert await svc.apply_renewal_answer(s, settings, store, cand.id, "unclear") == (
            "deja_clarifiee"
        )
        assert len(await mails(s, "clarification")) == 1
        assert (await svc.renewal_sweep(s, settings, store, date(2026, 8, 2))).reminded == [cand.id]
        assert (await svc.renewal_sweep(s, settings, store, date(2026, 8, 9))).deleted == []
        files = list(settings.storage_dir.rglob("*"))
        assert any(f.is_file() for f in files)
        rep = await svc.renewal_sweep(s, settings, store, date(2026, 8, 10))
        assert rep.deleted == [cand.id]
        assert any(f.is_file() for f in settings.storage_dir.rglob("*"))  # until commit
        await s.commit()
        assert cand.statut == "supprimee" and cand.candidat_id is None and cand.reponses is None
        assert [m.kind for m in await mails(s)][-1] == "deletion_notice"
        assert not any(f.is_file() for f in settings.storage_dir.rglob("*"))
        person = (await s.scalars(select(Candidat))).one()
        assert (person.nom, person.email, person.telegram_id) == (None, None, None)
        assert await s.scalar(select(func.count()).select_from(Piece)) == 0
        listed = await svc.list_all(s)
        assert listed == [
            {
                "id": cand.id,
                "email": None,
                "type": "AESH",
                "statut": "supprimee",
                "valide_jusqu_au": "2026-07-10",
                "relance_le": None,
            }
        ]


async def test_withdrawal_is_final(
    engine: AsyncEngine, settings: Settings, store: FileStore
) -> None:
    async with make_sessionmaker(engine)() as s:
        cand = await submitted(s, settings, store, date(2026, 1, 10))
        await svc.renewal_sweep(s, settings, store, date(2026, 7, 10))
        assert await svc.apply_renewal_answer(s, settings, store, cand.id, "withdraw") == "retiree"
        assert await svc.apply_renewal_answer(s, settings, store, cand.id, "keep") == "ferme"
        assert cand.statut == "retiree"
        assert len(await mails(s, "withdrawal_confirmed")) == 1
