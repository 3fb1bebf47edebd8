"""Service commands in Telegram, through the Bot API test server, as agents would use them."""

from __future__ import annotations

import io
import struct
from datetime import timedelta

import pyotp
import pytest
from pypdf import PdfReader
from sqlalchemy import delete, select

from bot.handlers import service_reports
from bot.handlers.service_reports import CoverageState, cb, delete_expired_messages
from bot.testserver.state import PendingCallback
from core.models import Cartouche, OutboxMail, ParametreDepartement
from core.models.base import utcnow
from core.services import access, chat_retention
from core.services.charts import BARS_SIZE, TIMELINE_SIZE
from core.texts import t
from tests.bot import service_fixtures as sf
from tests.bot.conftest import Person, Running

service_world = sf.service_world

PNG = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes | None) -> tuple[int, int]:
    assert data is not None and data.startswith(PNG), "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def callback_data(running: Running, user_id: int) -> list[str]:
    return [
        str(b["callback_data"])
        for m in running.sim.chat(user_id)
        if m.from_bot
        for b in m.inline_buttons
        if "callback_data" in b
    ]


def assert_callbacks_fit(running: Running, user_id: int) -> None:
    data = callback_data(running, user_id)
    assert data
    too_long = [d for d in data if len(d.encode()) > 64]
    assert not too_long, too_long


# --- enrolment through the chat ----------------------------------------------------------


async def test_connexion_in_the_chat_qr_totp_menu_then_couverture(running: Running) -> None:
    async with running.sessionmaker() as s:
        await sf.build_world(s)
        code = await access.invite(s, running.settings, "gestionnaire", "062", [sf.SECTEUR_A])
        await s.commit()
    agent = Person(running, 5100, "Agent")
    qr = await agent.say(f"/connexion {code}")
    assert qr.photo is not None and png_size(qr.photo.content)[0] > 100
    assert "Scannez ce QR code" in (qr.content or "")
    # The message with the invitation code left the chat.
    assert any(m.deleted and not m.from_bot for m in running.sim.chat(agent.id))

    async with running.sessionmaker() as s:
        user = await access.user_by_telegram(s, agent.id)
        assert user is not None and user.totp_secret is not None
        secret = access._unseal(running.settings, user.totp_secret)
    assert secret is not None
    welcome = await agent.say(pyotp.TOTP(secret).now())
    assert "connecté en tant que gestionnaire" in (welcome.content or "")
    menu = [c["command"] for c in running.sim.commands(agent.id)]
    assert {"couverture", "eleve", "pv", "perimetre"} <= set(menu)

    listing = await agent.say("/couverture")
    assert "12 décisions" in (listing.content or "")
    assert sf.TARGET_ELEVE not in (listing.content or "")


# --- /couverture ---------------------------------------------------------------------------


async def test_couverture_of_a_secteur_is_paged_and_filtered(
    service_world: sf.ServiceWorld,
) -> None:
    running = service_world.running
    g = service_world["gestionnaire_a"].person
    first = await g.say("/couverture")
    text = first.content or ""
    assert "12 décisions" in text and "page 1/2" in text
    assert "secteurs Arras 1" in text
    lines = [line for line in text.splitlines() if " — EL" in line]
    assert len(lines) == 10
    # By priority: nothing in place first, the covered EL0001 on the last page.
    assert lines[0].startswith("🔴")
    assert "É. D. — EL0001" not in text
    assert sf.TARGET_ELEVE not in text
    # No full names in a list.
    for nom, prenom in sf.STUDENTS.values():
        assert nom not in text and prenom not in text

    second = await g.press("▶")
    assert second.id == first.id  # paged in place
    page2 = second.content or ""
    assert "page 2/2" in page2
    assert "🟢 É. D. — EL0001 · indiv. 12 h · 100 %" in page2
    assert len([line for line in page2.splitlines() if " — EL" in line]) == 2

    # Type filter: the mutualised decisions only (EL0002, 5, 8, 11).
    await g.press("Type : Tous")
    mutu = await g.press("mutualisée")
    assert "4 décisions" in (mutu.content or "")
    assert all("mutu." in line for line in (mutu.content or "").splitlines() if " — EL" in line)
    # Établissement filter (École Jean Jaurès: the odd students).
    await g.press("Établissement : Tous")
    only = await g.press("École Jean Jaurès (0620002B)")
    assert "2 décisions" in (only.content or "")  # EL0005, EL0011: odd and mutualised
    cleared = await g.press("Effacer les filtres")
    assert "12 décisions" in (cleared.content or "")
    assert_callbacks_fit(running, g.id)


async def test_decision_detail_with_timeline_picture(service_world: sf.ServiceWorld) -> None:
    running = service_world.running
    g = service_world["gestionnaire_a"].person
    await g.say("/couverture")
    await g.press("▶")
    photo = await g.press("É. D. — EL0001")
    assert photo.photo is not None
    assert png_size(photo.photo.content) == TIMELINE_SIZE
    assert "D0001" in (photo.content or "") and "É. D. — EL0001" in (photo.content or "")
    detail = [m for m in running.sim.chat(g.id) if m.from_bot][-2].content or ""
    assert "Décision D0001 — É. D. — EL0001" in detail
    assert "Couverture : 100 %" in detail
    assert "AC0001 — Martin Léa" in detail
    assert "Durand" not in detail  # full names are off by default

    async with running.sessionmaker() as s:
        s.add(ParametreDepartement(departement="062", valeurs={"noms_complets": True}))
        await s.commit()
    await g.press("É. D. — EL0001")
    detail = [m for m in running.sim.chat(g.id) if m.from_bot][-2].content or ""
    assert "Décision D0001 — Durand Émilie — EL0001" in detail
    assert "Date de naissance : 05/04/2015" in detail
    # The list still shows initials only.
    listing = await g.say("/couverture")
    assert "Durand" not in (listing.content or "")

    # A decision outside the perimeter, asked by a crafted button, is unknown.
    running.sim.state.callbacks["1"] = PendingCallback("1", g.id, listing.id, "cd:D0100")
    running.sim.state.push_update(
        "callback_query",
        {
            "id": "1",
            "from": {"id": g.id, "is_bot": False, "first_name": "Agent"},
            "chat_instance": "x",
            "data": "cd:D0100",
            "message": {
                "message_id": listing.id,
                "date": 0,
                "chat": {"id": g.id, "type": "private"},
                "text": "x",
            },
        },
    )
    refused = await g.answer()
    assert "introuvable dans votre périmètre" in (refused.content or "")
    assert sf.TARGET_INITIALES not in (refused.content or "")


async def test_messages_with_student_data_are_deleted_after_the_delay(
    service_world: sf.ServiceWorld,
) -> None:
    running = service_world.running
    g = service_world["gestionnaire_a"].person
    listing = await g.say("/couverture")
    request = await g.say("/eleve Durand Émilie")
    async with running.sessionmaker() as s:
        pending = await chat_retention.pending_for_chat(s, g.id)
    assert listing.id in pending and request.id in pending
    user_request = next(
        m for m in running.sim.chat(g.id) if not m.from_bot and m.content == "/eleve Durand Émilie"
    )
    assert user_request.id in pending  # the typed name leaves the chat too

    assert await delete_expired_messages(running.bot, running.sessionmaker) == 0
    later = utcnow() + timedelta(hours=24, minutes=1)
    deleted = await delete_expired_messages(running.bot, running.sessionmaker, now=later)
    assert deleted >= 3
    assert listing.deleted and request.deleted and user_request.deleted
    async with running.sessionmaker() as s:
        assert await chat_retention.pending_for_chat(s, g.id) == []
    # /indicateurs carries no student data: it stays.
    kept = await g.say("/indicateurs")
    await delete_expired_messages(
        running.bot, running.sessionmaker, now=utcnow() + timedelta(hours=30)
    )
    assert not kept.deleted


# --- /pv -----------------------------------------------------------------------------------


async def test_pv_as_pdf_document_and_refusals(service_world: sf.ServiceWorld) -> None:
    running = service_world.running
    g = service_world["gestionnaire_a"].person
    doc = await g.say("/pv AC0001")
    assert doc.document is not None and doc.document_name == "PV-affectation-AC0001.pdf"
    assert (doc.document_bytes or b"").startswith(b"%PDF")
    pdf = PdfReader(io.BytesIO(doc.document_bytes or b""))
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert "MARTIN" in text and "Léa" in text  # the AESH
    assert "N5001" in text  # the issuing agent's contact

    out = await g.say(f"/pv {sf.TARGET_ACC}")
    assert out.content == t("accompagnements.inconnu", accompagnement_id=sf.TARGET_ACC)
    unknown = await g.say("/pv AC9999")
    assert "introuvable dans votre périmètre" in (unknown.content or "")
    usage = await g.say("/pv")
    assert usage.content == t("service_reports.pv.usage")

    async with running.sessionmaker() as s:
        await s.execute(delete(Cartouche))
        await s.commit()
    refused = await g.say("/pv AC0001")
    assert "cartouche courrier du département 062 est incomplète" in (refused.content or "")
    assert refused.document is None


# --- /anomalies, /cas, /pial, /indicateurs ------------------------------------------------


async def test_anomalies_cas_pial_indicateurs(service_world: sf.ServiceWorld) -> None:
    running = service_world.running
    g = service_world["gestionnaire_a"].person
    counts = await g.say("/anomalies")
    text = counts.content or ""
    assert "🔴 1. Accompagnement commençant avant le début de la mission : 1" in text
    assert "🟢 2." in text
    listing = await g.press("1. Accompagnement commençant avant le début de la mission (1)")
    assert "AC0003" in (listing.content or "") and "I. M. — EL0003" in (listing.content or "")
    back = await g.press("Retour")
    assert "Touchez un type" in (back.content or "")

    cas = await g.say("/cas")
    assert "Décision arrivant à échéance non renouvelée (12)" in (cas.content or "")
    assert sf.TARGET_ELEVE not in (cas.content or "")
    full = await g.press("Échéances non renouvelées (12)")
    assert "page 1/2" in (full.content or "")

    pial = await g.say("/pial")
    ptext = pial.content or ""
    assert "Collège Verlaine (0620001A)" in ptext and "Collège Rimbaud (0620100C)" in ptext
    missions = await g.press("Missions — Collège Verlaine")
    assert "M1 — Martin Léa — HP1D — 24 h" in (missions.content or "")

    ind = await g.say("/indicateurs")
    assert ind.photo is not None and png_size(ind.photo.content) == BARS_SIZE
    itext = [m for m in running.sim.chat(g.id) if m.from_bot][-2].content or ""
    assert "Décisions actives dans l'année : 12" in itext
    assert "sans aucun accompagnement : 10" in itext
    assert f"septembre {sf.Y} : 12" in itext

    c = service_world["coordonnateur_p1"].person
    cpial = await c.say("/pial")
    assert "Collège Rimbaud" not in (cpial.content or "")
    assert_callbacks_fit(running, g.id)


# --- /eleve ----------------------------------------------------------------------------------


async def test_eleve_is_strict_and_says_nothing_outside_the_perimeter(
    service_world: sf.ServiceWorld,
) -> None:
    g = service_world["gestionnaire_a"].person
    found = await g.say("/eleve Durand Émilie")
    assert "Élève É. D. — EL0001" in (found.content or "")
    assert "D0001" in (found.content or "")
    with_birth = await g.say("/eleve Durand Émilie 05/04/2015")
    assert "EL0001" in (with_birth.content or "")
    nothing = t("service_reports.eleve.aucun", naissance=False)
    for wrong in ("Durand Emilie", "durand Émilie", "DURAND Émilie", "Durand Émilie-Rose"):
        reply = await g.say(f"/eleve {wrong}")
        assert reply.content == nothing, wrong
    wrong_birth = await g.say("/eleve Durand Émilie 06/04/2015")
    assert "Aucun élève" in (wrong_birth.content or "")
    # In another secteur: the very answer given for nobody at all.
    elsewhere = await g.say("/eleve Lefèvre Anaïs")
    assert elsewhere.content == nothing
    nobody = await g.say("/eleve Personne Inconnue")
    assert nobody.content == nothing
    usage = await g.say("/eleve Durand")
    assert usage.content == t("service_reports.eleve.usage")

    # A narrowing chosen by the agent is theirs to widen: they are told how many lie beyond.
    whole = service_world["gestionnaire_062"].person
    await whole.say("/perimetre")
    await whole.press("⬜ Arras 1")
    await whole.press("Valider")
    hint = await whole.say("/eleve Lefèvre Anaïs")
    assert (hint.content or "").startswith(nothing)
    assert "1 élève correspond hors des secteurs que vous avez choisis" in (hint.content or "")
    assert sf.TARGET_ELEVE not in (hint.content or "")

    sup = service_world["superviseur"].person
    target = await sup.say("/eleve Lefèvre Anaïs")
    assert "A. L. — EL0100" in (target.content or "")


# --- /perimetre ------------------------------------------------------------------------------


async def test_perimeter_narrowing_changes_couverture(service_world: sf.ServiceWorld) -> None:
    running = service_world.running
    g = service_world["gestionnaire_062"].person
    before = await g.say("/couverture")
    assert "14 décisions" in (before.content or "")
    shown = await g.say("/perimetre")
    assert "tous les secteurs" in (shown.content or "")
    await g.press("⬜ Lens 2")
    saved = await g.press("Valider")
    assert "Périmètre enregistré" in (saved.content or "")
    assert "secteurs Lens 2" in (saved.content or "")
    after = await g.say("/couverture")
    assert "2 décisions" in (after.content or "")
    assert sf.TARGET_ELEVE in (after.content or "")
    assert "EL0001" not in (after.content or "")
    await g.say("/perimetre")
    await g.press("Tout le département")
    again = await g.say("/couverture")
    assert "14 décisions" in (again.content or "")
    assert_callbacks_fit(running, g.id)

    c = service_world["coordonnateur_p1"].person
    coord = await c.say("/perimetre")
    assert "PIAL 0620001A" in (coord.content or "") and not coord.inline_buttons


# --- /aesh, /etablissement -------------------------------------------------------------------


async def test_aesh_file_and_occupation(service_world: sf.ServiceWorld) -> None:
    g = service_world["gestionnaire_a"].person
    a1 = await g.say("/aesh martin")
    text = a1.content or ""
    assert "AESH Martin Léa — A1" in text
    assert "M1 — T2-CDI HP1D" in text and "12 h / 24 h : 🟠 des heures libres" in text
    assert "É. D. — EL0001" in text
    # A2 works in the other secteur: the file is departmental, its students are not shown.
    a2 = await g.say("/aesh Bernard")
    assert "AESH Bernard Hugo — A2" in (a2.content or "")
    assert sf.TARGET_ELEVE not in (a2.content or "")
    assert "1 autre hors de votre périmètre" in (a2.content or "")
    none = await g.say("/aesh Inconnu")
    assert "introuvable dans votre périmètre" in (none.content or "")


async def test_etablissement_summary_mailed_with_copy(service_world: sf.ServiceWorld) -> None:
    running = service_world.running
    sup = service_world["superviseur"].person
    summary = await sup.say(f"/etablissement {sf.P1}")
    assert "Collège Verlaine (0620001A)" in (summary.content or "")
    assert "Élèves ayant une décision : 6" in (summary.content or "")
    assert "Décisions : 4 individuelles, 2 mutualisées" in (summary.content or "")
    school = await sup.say(f"/etablissement {sf.ETAB_P1_ECOLE}")
    assert "• Martin Léa — 2 accompagnements, 2 élèves" in (school.content or "")
    ask = await sup.press("Envoyer la synthèse PDF")
    assert "ce.0620001a@ac-lille.fr" in (ask.content or "")
    bad = await sup.say("pas une adresse")
    assert "n'est pas une adresse électronique valide" in (bad.content or "")
    done = await sup.say("cpe@exemple.test")
    assert "part par courriel à ce.0620001a@ac-lille.fr (copie : cpe@exemple.test)" in (
        done.content or ""
    )
    async with running.sessionmaker() as s:
        mail = (await s.scalars(select(OutboxMail))).one()
    assert mail.kind == "etablissement_summary"
    assert mail.to_addr == "ce.0620001a@ac-lille.fr" and mail.cc == ["cpe@exemple.test"]
    assert mail.attachments and mail.attachments[0]["mime"] == "application/pdf"
    attached = running.settings.storage_dir / mail.attachments[0]["path"]
    assert attached.read_bytes().startswith(b"%PDF")

    # Without a copy, through the button.
    await sup.say(f"/etablissement {sf.P1}")
    await sup.press("Envoyer la synthèse PDF")
    plain = await sup.press("Sans copie")
    assert "part par courriel" in (plain.content or "") and "copie" not in (plain.content or "")
    # No e-mail address known: no button.
    none = await sup.say(f"/etablissement {sf.ETAB_P1_ECOLE}")
    assert not none.inline_buttons
    # Outside the perimeter.
    c = service_world["coordonnateur_p1"].person
    out = await c.say(f"/etablissement {sf.P2}")
    assert out.content == t("documents.etablissement_inconnu", rne=sf.P2)


# --- callback data -------------------------------------------------------------------------


def test_callback_data_never_exceeds_64_bytes() -> None:
    longest = CoverageState(page=999, type="m", secteur=199, etab="X" * 16)
    data = cb("cv", "Se" + "Y" * 16, longest.encode())
    assert len(data.encode()) <= 64
    assert CoverageState.decode(longest.encode()) == longest
    assert cb("cd", "D" * 32)
    with pytest.raises(ValueError):
        cb("x" * 65)
    assert service_reports.CALLBACK_LIMIT == 64


def test_retention_is_kept_under_telegram_limit() -> None:
    assert chat_retention.retention(None) == timedelta(hours=24)
    assert chat_retention.retention(100) < chat_retention.TELEGRAM_LIMIT
