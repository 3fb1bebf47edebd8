"""Service actions in the chat, as agents do them through the Bot API test server: place,
modify, insert and prolong accompaniments, affect missions, import CSV files, set the
department's parameters, review candidatures; and the journal pushed to connected agents."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import date, timedelta

import pyotp
import pytest
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlalchemy import func, select

from bot.handlers import service_actions
from bot.handlers.service_actions import ImportProgress
from bot.journal import push_journal
from bot.testserver.state import ChatMessage
from core.dates import SchoolYear
from core.models import (
    Accompagnement,
    AccompagnementDecision,
    Aesh,
    Affectation,
    BotNotification,
    Candidat,
    Candidature,
    Cartouche,
    Decision,
    Diplome,
    Etablissement,
    JournalEntry,
    ParametreAnnee,
    Piece,
)
from core.models.base import utcnow
from core.perimeter import Perimeter
from core.services import access, chat_retention, journal, parametres
from core.services.reports import coverage_report
from core.services.storage import FileStore
from tests.bot.conftest import Person, Running
from tests.core.builders import World

YEAR = SchoolYear.current()
Y = YEAR.start_year
P1, P2 = "0620001A", "0620100B"
ETAB = "0620002B"  # in P1
ETAB2 = "0620101C"  # in P2
CARTOUCHE = {
    "academie": "Lille",
    "direction": "DSDEN du Pas-de-Calais",
    "service": "Service AESH",
    "adresse": "20 boulevard de la Liberté",
    "code_postal": "62000",
    "commune": "Arras",
    "telephone": "03 21 00 00 00",
    "email": "aesh62@ac-lille.fr",
    "signataire": "Mme la directrice",
    "qualite_signataire": "IA-DASEN",
}
PDF = b"%PDF-1.4\n% test\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def day(month: int, dd: int) -> str:
    """A day of the current school year, as the builders write it."""
    year = Y if month >= 9 else Y + 1
    return f"{dd:02d}/{month:02d}/{year}"


def iso(month: int, dd: int) -> date:
    return date(Y if month >= 9 else Y + 1, month, dd)


async def build_world(r: Running) -> None:
    async with r.sessionmaker() as s:
        w = World(s)
        w.pial(P1)
        w.pial(P2)
        w.etab(P1, pial=P1, nom="Collège Tête Arras", latitude=50.29, longitude=2.78)
        w.etab(ETAB, pial=P1, nom="École Voltaire", latitude=50.291, longitude=2.777)
        w.etab(P2, pial=P2, nom="Collège Tête Lens", latitude=50.43, longitude=2.83)
        w.etab(ETAB2, pial=P2, nom="École Zola", latitude=50.43, longitude=2.83)
        w.secteur("Arras 1")
        w.secteur("Lens 2")
        w.eleve("EL1", secteur="Arras 1")
        w.eleve("EL2", secteur="Arras 1", prenom="Jean-Pierre", nom="Martin")
        w.eleve("EL3", secteur="Lens 2", prenom="Zoé", nom="Leroy")
        w.scol("EL1", ETAB, day(9, 1), None)
        w.scol("EL2", ETAB, day(9, 1), None)
        w.scol("EL3", ETAB2, day(9, 1), None)
        w.decision("D1", "EL1", day(9, 1), day(8, 31), heures=12)
        w.decision("D2", "EL2", day(9, 1), day(4, 30), heures=6)
        w.decision("D3", "EL3", day(9, 1), day(8, 31), heures=10)
        for aid in ("A_NEAR", "A_FAR", "A_UNK", "A_FREE"):
            w.aesh(aid)
        w.mission("M_NEAR", "A_NEAR", "01/09/2020", None, heures=24)
        w.mission("M_FAR", "A_FAR", "01/09/2020", None, heures=24)
        w.mission("M_UNK", "A_UNK", "01/09/2020", None, heures=24)
        w.mission("M_FREE", "A_FREE", "01/09/2020", None, heures=24)
        w.mission("M_REF", "A_NEAR", "01/09/2020", None, heures=10, nature="AHRE")
        for m in ("M_NEAR", "M_FAR", "M_UNK", "M_REF"):
            w.affectation(m, P1, YEAR.label)
        w.acc("A2", "M_NEAR", "D2", ETAB, day(9, 1), day(4, 30), 6)
        await w.flush()
        coords = {"A_NEAR": (50.30, 2.79), "A_FAR": (50.95, 1.85), "A_FREE": (50.292, 2.78)}
        for aid, (lat, lon) in coords.items():
            a = await s.get(Aesh, aid)
            assert a is not None
            a.latitude, a.longitude = lat, lon
        await s.commit()


@pytest.fixture
async def world(running: Running) -> Running:
    await build_world(running)
    return running


async def agent(
    r: Running,
    uid: int,
    role: str = "gestionnaire",
    *,
    pial: str | None = None,
    secteurs: list[str] | None = None,
) -> Person:
    """An enrolled agent with a live session: invitation, redemption, first TOTP code."""
    async with r.sessionmaker() as s:
        code = await access.invite(s, r.settings, role, "062", secteurs, pial)
        enrolment = await access.redeem(s, r.settings, code, uid)
        assert enrolment.otpauth_uri is not None
        secret = pyotp.parse_uri(enrolment.otpauth_uri).secret
        user = await access.user_by_telegram(s, uid)
        assert user is not None
        await access.confirm_totp(s, r.settings, user, pyotp.TOTP(secret).now())
        await s.commit()
    return Person(r, uid, "Agent")


def button(message: ChatMessage, starts: str) -> str:
    """The exact label of the message's button that starts with `starts`."""
    labels = [b["text"] for b in message.inline_buttons if b["text"].startswith(starts)]
    assert len(labels) == 1, (starts, message.button_labels)
    return str(labels[0])


def callback_of(message: ChatMessage, label: str) -> str:
    return next(str(b["callback_data"]) for b in message.inline_buttons if b["text"] == label)


def bot_texts(r: Running, p: Person) -> str:
    return "\n".join(p.texts())


# --- 1. accompaniment from a decision -------------------------------------------------------


async def coverage_of(r: Running, decision_id: str) -> dict[str, object]:
    async with r.sessionmaker() as s:
        report = await coverage_report(s, Perimeter("062"), YEAR, date.today())
    return next(row for row in report["decisions"] if row["decision_id"] == decision_id)


async def test_accompaniment_from_a_decision_turns_its_coverage_green(world: Running) -> None:
    g = await agent(world, 5001)
    assert (await coverage_of(world, "D1"))["couverture"] == 0.0
    listing = await g.say("/accompagner D1")
    text = listing.content or ""
    # Only missions affected to the PIAL, accompanying; nearest first, unknown distance last.
    assert "M_FREE" not in text and "M_REF" not in text
    assert text.index("M_NEAR") < text.index("M_FAR") < text.index("M_UNK")
    assert "É. D. — EL1" in text and "Durand" not in text
    assert "18 h libres" in text  # 24 h minus the 6 h of A2
    confirm = await g.press(button(listing, "1. "))
    assert "M_NEAR" in (confirm.content or "") and "12 h" in (confirm.content or "")
    # Edit the defaults: keep the dates, type the hours again.
    await g.press("Modifier dates et heures")
    await g.press(f"Garder : {day(9, 1)}")
    await g.press(f"Garder : {day(8, 31)}")
    bad = await g.say("douze")
    assert "n'est pas un nombre d'heures" in bot_texts(world, g) and bad.inline_buttons
    confirm = await g.say("12")
    assert "Heures hebdomadaires : 12 h" in (confirm.content or "")
    done = await g.press("Créer l'accompagnement")
    assert "créé" in (done.content or "")
    pv = callback_of(done, "📄 PV d'affectation")
    assert pv.startswith("pv:AC-")
    row = await coverage_of(world, "D1")
    assert row["couverture"] == 1.0 and row["etat"] == "complete"
    async with world.sessionmaker() as s:
        acc = await s.get(Accompagnement, pv[3:])
        assert acc is not None and acc.mission_id == "M_NEAR" and acc.created_by is not None
        kinds = list(await s.scalars(select(JournalEntry.kind)))
        assert "accompagnement.cree" in kinds
    # The button a coverage view shows (ac:<decision>) starts the same dialog.
    again = await g.say("/accompagner D3")
    assert "introuvable" not in (again.content or "")


async def test_a_mission_not_affected_to_the_pial_is_refused_as_core_says(world: Running) -> None:
    g = await agent(world, 5002)
    confirm = await g.say("/accompagner D1 M_FREE")
    assert "M_FREE" in (confirm.content or "")
    refused = await g.press("Créer l'accompagnement")
    texts = bot_texts(world, g)
    assert f"La mission M_FREE n'est pas affectée au PIAL {P1} pour {YEAR.label}" in texts
    assert "✔ Créer l'accompagnement" in refused.button_labels  # the choice stays on screen
    async with world.sessionmaker() as s:
        n = await s.scalar(
            select(func.count())
            .select_from(AccompagnementDecision)
            .where(AccompagnementDecision.decision_id == "D1")
        )
    assert n == 0


async def test_aide_lists_an_agents_own_commands(world: Running) -> None:
    g = await agent(world, 5031, secteurs=["Arras 1"])
    answer = await g.say("/aide")
    text = answer.content or ""
    assert "gestionnaire" in text and "secteurs Arras 1" in text
    assert "/couverture — " in text and "/accompagner — " in text
    assert "/parametres" not in text  # the superviseur's, not theirs
    c = await agent(world, 5032, "coordonnateur", pial="0620001A")
    text = (await c.say("/aide")).content or ""
    assert "coordonnateur PIAL" in text and "PIAL 0620001A" in text and "/candidats" not in text


async def test_the_coverage_views_button_and_the_pv_button(world: Running) -> None:
    g = await agent(world, 5021)
    await g.say("/aide")
    # What a coverage detail view shows next to an uncovered decision.
    await world.bot.send_message(
        g.id,
        "Décision D1",
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Placer", callback_data="ac:D1")]]
        ),
    )
    listing = await g.press("Placer")
    assert "M_NEAR" in (listing.content or "")
    await g.press(button(listing, "1. "))
    done = await g.press("Créer l'accompagnement")
    refused = await g.press("📄 PV d'affectation")
    assert "cartouche" in (refused.content or "")
    async with world.sessionmaker() as s:
        await parametres.set_cartouche(s, "062", dict(CARTOUCHE))
        await s.commit()
    pv = await g.press_on(done.id, "📄 PV d'affectation")
    assert (pv.document_name or "").endswith(".pdf")
    assert (pv.document_bytes or b"").startswith(b"%PDF")
    # Messages naming a student are scheduled for deletion from the chat.
    async with world.sessionmaker() as s:
        kept = await s.scalar(
            select(func.count())
            .select_from(BotNotification)
            .where(BotNotification.kind == chat_retention.KIND, BotNotification.telegram_id == g.id)
        )
    assert kept is not None and kept >= 3


# --- 2. modify, insert, maintien ------------------------------------------------------------


async def accs_of(r: Running, decision_id: str) -> list[Accompagnement]:
    async with r.sessionmaker() as s:
        return list(
            await s.scalars(
                select(Accompagnement)
                .join(
                    AccompagnementDecision,
                    AccompagnementDecision.accompagnement_id == Accompagnement.id,
                )
                .where(AccompagnementDecision.decision_id == decision_id)
                .order_by(Accompagnement.debut)
            )
        )


async def test_insert_splits_the_original(world: Running) -> None:
    g = await agent(world, 5003)
    view = await g.say("/accompagnement A2")
    assert "J.-P. M. — EL2" in (view.content or "")
    await g.press("Insérer une période")
    await g.say(day(12, 1))
    await g.say(day(12, 31))
    await g.press("Garder : 6 h")
    done = await g.press("Garder : M_NEAR")
    assert "Période insérée" in (done.content or "")
    accs = await accs_of(world, "D2")
    spans = [(a.debut, a.fin) for a in accs]
    assert spans == [
        (iso(9, 1), iso(11, 30)),
        (iso(12, 1), iso(12, 31)),
        (iso(1, 1), iso(4, 30)),
    ]
    assert "A2" in (done.content or "") and (done.content or "").count("•") == 2


async def test_modify_then_maintien(world: Running) -> None:
    g = await agent(world, 5004)
    await g.say("/accompagnement A2")
    await g.press("Modifier dates / heures")
    await g.press(f"Garder : {day(9, 1)}")
    await g.press(f"Garder : {day(4, 30)}")
    done = await g.say("8")
    assert "Accompagnement modifié" in (done.content or "") and "8 h" in (done.content or "")
    await g.press("Maintien")
    early = await g.say(day(3, 31))
    assert "Maintien refusé" in bot_texts(world, g) and early.inline_buttons
    done = await g.say(day(6, 30))
    assert "Maintien enregistré" in (done.content or "") and "maintien" in (done.content or "")
    (a2,) = await accs_of(world, "D2")
    assert a2.maintien and a2.fin == iso(6, 30) and a2.heures == 8


# --- 3. affectation -------------------------------------------------------------------------


async def test_affect_a_mission_to_a_pial_with_a_volume(world: Running) -> None:
    g = await agent(world, 5005)
    choose = await g.say("/affecter M_FREE")
    assert "M_FREE" in (choose.content or "") and YEAR.label in (choose.content or "")
    ask = await g.press(f"Collège Tête Arras ({P1})")
    assert "Volume complet (24 h)" in ask.button_labels
    bad = await g.say("30")
    assert "Volume refusé" in bot_texts(world, g)
    assert "Volume complet (24 h)" in bad.button_labels
    done = await g.say("12")
    assert "affectée au PIAL" in (done.content or "")
    async with world.sessionmaker() as s:
        aff = await s.scalar(select(Affectation).where(Affectation.mission_id == "M_FREE"))
    assert aff is not None and aff.pial_rne == P1 and aff.heures == 12
    listing = await g.say("/accompagner D1")
    assert "M_FREE" in (listing.content or "")


# --- 4. imports -----------------------------------------------------------------------------

GOOD_ETABS = (
    "rne;nom;commune;code_postal;latitude;longitude;pial_rne;secteur;email\n"
    "0620900A;École Neuve;Arras;62000;50,28;2,77;0620001A;Arras 1;ecole@ac-lille.fr\n"
    "0620901B;Collège Neuf;Lens;62300;;;;Lens 2;\n"
)
BAD_DECISIONS = (
    "id;eleve_id;type;heures;origine;nature;debut;fin\n"
    "D9;EL1;individuelle;12;;;2025-09-01;2026-06-30\n"
    "D10;INCONNU;individuelle;12;;;2025-09-01;2026-06-30\n"
    "D11;EL1;individuelle;12;;;31/02/2026;2026-06-30\n"
)


async def test_import_a_good_file_then_a_refused_one(world: Running) -> None:
    g = await agent(world, 5006)
    prompt = await g.say("/import")
    assert "decisions" in (prompt.content or "")
    choose = await g.upload(GOOD_ETABS.encode(), "etabs.csv", "text/csv")
    assert "Quel type" in (choose.content or "")
    result = await g.press("etablissements")
    assert "Import établissements terminé" in (result.content or "")
    assert "Créées : 2" in (result.content or "")
    progress = [m for m in world.sim.chat(g.id) if "Import établissements :" in (m.content or "")]
    assert len(progress) == 1 and progress[0].content == "Import établissements : 100 %"
    async with world.sessionmaker() as s:
        assert await s.get(Etablissement, "0620900A") is not None
        before = await s.scalar(select(func.count()).select_from(Decision))

    # A refused file: the rows come back as a CSV document, and nothing changed.
    world.sim.send_document(
        g.id, BAD_DECISIONS.encode(), "decisions.csv", "text/csv", caption="/import décisions"
    )
    refused = await g.answer()
    assert refused.document_name == "refus-decisions.csv"
    assert "rien n'a été enregistré" in (refused.content or "")
    raw = refused.document_bytes
    assert raw is not None and raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["ligne", "colonne", "motif"]
    assert {(r[0], r[1]) for r in rows[1:]} == {("3", "eleve_id"), ("4", "debut")}
    progress = [m for m in world.sim.chat(g.id) if "Import décisions :" in (m.content or "")]
    assert [m.content for m in progress] == ["Import décisions : refusé"]
    async with world.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Decision)) == before
        assert await s.get(Decision, "D9") is None


async def test_a_big_import_shows_its_progress_in_one_message(
    world: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A short interval, so that this small "big" file gets edits before its end.
    monkeypatch.setattr(service_actions, "PROGRESS_INTERVAL", 0.01)
    g = await agent(world, 5023)
    lines = [GOOD_ETABS.splitlines()[0]] + [
        f"06{i:05d}X;École {i};Arras;62000;;;;Arras 1;" for i in range(10_500)
    ]
    await g.say("/import")
    world.sim.send_document(
        g.id, "\n".join(lines).encode(), "etabs.csv", "text/csv", caption="Établissements"
    )
    await world.sim.wait_handled(timeout=120)
    texts = [m.content or "" for m in world.sim.chat(g.id) if m.from_bot]
    assert any("Créées : 10500" in x for x in texts), texts
    progress = [x for x in texts if x.startswith("Import établissements :")]
    assert progress == ["Import établissements : 100 %"]
    edits = world.sim.calls("editMessageText")
    shown = [str(c.params.get("text")) for c in edits]
    assert len(shown) > 1 and shown[-1] == "Import établissements : 100 %"
    percents = [int(x.split(": ")[1].rstrip(" %")) for x in shown]
    assert percents == sorted(percents)
    assert len({c.params.get("message_id") for c in edits}) == 1


async def test_import_size_limits(world: Running) -> None:
    g = await agent(world, 5022)
    world.sim.send_document(
        g.id, b"a" * (21 * 2**20), "gros.csv", "text/csv", caption="/import decisions"
    )
    refused = await g.answer()
    assert "20 Mo" in (refused.content or "")
    assert not world.sim.calls("getFile")


async def test_import_progress_edits_one_message_at_most_every_interval() -> None:
    shown: list[int] = []

    async def show(pct: int) -> None:
        shown.append(pct)

    progress = ImportProgress(show, interval=0.05)
    task = asyncio.create_task(progress.run())
    for done in range(0, 101, 5):
        progress(done * 100, 10_000)
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await progress.finish()
    assert shown[-1] == 100
    assert shown == sorted(shown)
    assert len(shown) <= 21 * 0.01 / 0.05 + 3  # throttled, not one edit per call


# --- 5. parameters --------------------------------------------------------------------------


async def test_parameters_formula_refusal_shows_the_position(world: Running) -> None:
    g = await agent(world, 5007)
    refused = await g.say("/parametres")
    assert "réservés au superviseur" in (refused.content or "")
    s_ = await agent(world, 5008, "superviseur")
    view = await s_.say("/parametres")
    assert "recommandation nationale" in (view.content or "")
    await s_.press(f"Formule de besoin {YEAR.label}")
    await s_.say("intdiv(cM, 5) * 32 + * 2")
    texts = bot_texts(world, s_)
    assert "Formule refusée" in texts and "position 22" in texts and "^" in texts
    done = await s_.say("intdiv(cM, 5) * 30")
    assert "enregistrée" in (done.content or "")
    await s_.say("/parametres")
    await s_.press(f"Référence horaire {YEAR.label}")
    done = await s_.say("24")
    assert "24 h pour un temps plein" in (done.content or "")

    # Cartouche: one field at a time waits as a draft until complete; or all at once.
    await s_.say("/parametres")
    fields = await s_.press("Cartouche : champ par champ")
    await s_.press(button(fields, "⬜ Académie"))
    draft = await s_.say("Lille")
    assert "brouillon" in (draft.content or "") and "✅ Académie" in str(draft.button_labels)
    await s_.say("/parametres")
    await s_.press("Cartouche : fichier JSON")
    done = await s_.upload(json.dumps(CARTOUCHE).encode(), "cartouche.json", "application/json")
    assert "Cartouche courrier du département 062 enregistrée" in (done.content or "")
    async with world.sessionmaker() as s:
        row = await s.get(ParametreAnnee, ("062", YEAR.label))
        assert row is not None and row.formule == "intdiv(cM, 5) * 30"
        assert row.reference_heures == 24
        c = await s.get(Cartouche, "062")
        assert c is not None and c.champs["commune"] == "Arras"


# --- 6. journal push ------------------------------------------------------------------------


async def add_entries(r: Running, *specs: tuple[str, str, str | None, str]) -> None:
    async with r.sessionmaker() as s:
        await journal.record_many(
            s,
            [
                journal.entry(
                    "decision.modifiee",
                    "decision",
                    did,
                    departement="062",
                    secteur=secteur,
                    pial_rne=pial,
                    eleve_id=eleve,
                )
                for did, secteur, pial, eleve in specs
            ],
        )
        await s.commit()


async def test_journal_is_pushed_grouped_and_at_most_once_a_minute(world: Running) -> None:
    g = await agent(world, 5009, secteurs=["Arras 1"])
    c = await agent(world, 5010, "coordonnateur", pial=P2)
    sup = await agent(world, 5011, "superviseur")  # not an addressee of the journal
    for p in (g, c, sup):
        await p.say("/aide")  # a bot may only write to chats that have written to it
    await add_entries(
        world,
        ("D1", "Arras 1", P1, "EL1"),
        ("D2", "Arras 1", P1, "EL2"),
        ("D3", "Lens 2", P2, "EL3"),
    )
    now = utcnow()
    assert await push_journal(world.bot, world.sessionmaker, now) == 2
    mine = g.last.content or ""
    assert "2 changement(s)" in mine and "Décision D1 modifiée" in mine
    assert "É. D. — EL1" in mine and "J.-P. M. — EL2" in mine and "D3" not in mine
    assert "Durand" not in mine
    theirs = c.last.content or ""
    assert "1 changement(s)" in theirs and "Z. L. — EL3" in theirs and "D1" not in theirs
    assert not [m for m in world.sim.chat(sup.id) if "Journal" in (m.content or "")]
    async with world.sessionmaker() as s:
        assert await s.scalar(select(func.count()).where(JournalEntry.notified.is_(False))) == 0

    # Within the minute nothing more is sent; the entry waits, then goes.
    await add_entries(world, ("D1", "Arras 1", P1, "EL1"))
    assert await push_journal(world.bot, world.sessionmaker, now + timedelta(seconds=10)) == 0
    async with world.sessionmaker() as s:
        assert await s.scalar(select(func.count()).where(JournalEntry.notified.is_(False))) == 1
    assert await push_journal(world.bot, world.sessionmaker, now + timedelta(seconds=61)) == 1
    assert "1 changement(s)" in (g.last.content or "")
    assert len([m for m in world.sim.chat(g.id) if "Journal" in (m.content or "")]) == 2
    async with world.sessionmaker() as s:
        assert await s.scalar(select(func.count()).where(JournalEntry.notified.is_(False))) == 0
    assert await push_journal(world.bot, world.sessionmaker, now + timedelta(seconds=200)) == 0


# --- 7. candidatures ------------------------------------------------------------------------


async def candidature(r: Running) -> int:
    store = FileStore(r.settings.storage_dir)
    async with r.sessionmaker() as s:
        cand = Candidat(
            civilite="Mme",
            nom="Dupré",
            prenom="Chloé",
            email="chloe@exemple.test",
            telephone="06 12 34 56 78",
            commune="Arras",
            code_postal="62000",
            departement="062",
            date_naissance=date(1990, 7, 14),
        )
        s.add(cand)
        await s.flush()
        c = Candidature(
            candidat_id=cand.id,
            type="AESH",
            statut="complete",
            zones=["Arras", "Lens"],
            reponses={"rqth": "non", "temps": "plein", "choix_1": "AESH", "choix_2": "AESH"},
            departement="062",
            depose_le=date.today(),
            valide_jusqu_au=date.today() + timedelta(days=180),
        )
        s.add(c)
        await s.flush()
        for kind in ("cv", "lettre_motivation", "piece_identite", "diplome"):
            sha = store.put(PDF + kind.encode())
            s.add(
                Piece(candidature_id=c.id, kind=kind, sha256=sha, mime="application/pdf", size=80)
            )
        s.add(Diplome(candidat_id=cand.id, type="BAC", annee=2008))
        await s.commit()
        return c.id


async def test_review_a_candidature_and_make_it_a_previsionnel_aesh(world: Running) -> None:
    cid = await candidature(world)
    ref = f"C-{cid:06d}"
    g = await agent(world, 5012)
    listing = await g.say("/candidats")
    assert ref in (listing.content or "") and "Dupré Chloé" in (listing.content or "")
    await g.press("Statut")
    none = await g.press("en cours d'examen")
    assert "Aucune candidature" in (none.content or "")
    await g.press("Statut")
    await g.press("Tous")
    await g.press("Zone")
    listing = await g.press("Arras")
    assert ref in (listing.content or "") and "zone Arras" in (listing.content or "")
    await g.press("Zone")
    none = await g.press("Calais")
    assert "Aucune candidature" in (none.content or "")
    view = await g.press(f"Ouvrir {ref}")
    assert "Dupré" in (view.content or "") and "RQTH : non" in (view.content or "")
    await g.press("Recevoir les pièces")
    docs = [m for m in world.sim.chat(g.id) if m.from_bot and m.document is not None]
    assert len(docs) == 4 and docs[0].document_name == f"{ref}-cv.pdf"
    assert docs[0].document_bytes == PDF + b"cv"
    retained = await g.press("→ retenue")
    assert "Statut : retenue" in (retained.content or "")
    made = await g.press("Créer un AESH prévisionnel")
    assert "AESH prévisionnel PREV-" in (made.content or "")
    assert "Créer un AESH prévisionnel" not in str(made.button_labels)
    async with world.sessionmaker() as s:
        aesh = await s.scalar(select(Aesh).where(Aesh.candidature_id == cid))
        assert aesh is not None and aesh.nom == "Dupré" and aesh.previsionnel
        assert (await s.get(Candidature, cid)).statut == "retenue"  # type: ignore[union-attr]

    # The superviseur reads, without acting; a coordonnateur does not see recruitment.
    sup = await agent(world, 5013, "superviseur")
    await sup.say("/candidats")
    view = await sup.press(f"Ouvrir {ref}")
    assert "Dupré" in (view.content or "")
    assert not any(label.startswith("→") for label in view.button_labels)
    assert "Créer un AESH" not in str(view.button_labels)
    coord = await agent(world, 5014, "coordonnateur", pial=P1)
    refused = await coord.say("/candidats")
    assert "consultables par les gestionnaires" in (refused.content or "")


# --- 8. roles -------------------------------------------------------------------------------


async def test_roles_are_enforced(world: Running) -> None:
    sup = await agent(world, 5015, "superviseur")
    refused = await sup.say("/accompagner D1")
    assert "ne permet pas de créer ou modifier" in (refused.content or "")
    refused = await sup.say("/import")
    assert "réservés aux gestionnaires" in (refused.content or "")
    refused = await sup.say("/affecter M_FREE")
    assert "réservée aux gestionnaires" in (refused.content or "")
    view = await sup.say("/accompagnement A2")
    assert "A2" in (view.content or "") and "Insérer" not in str(view.button_labels)

    outside = await agent(world, 5016, "coordonnateur", pial=P2)
    refused = await outside.say("/accompagner D1")
    assert "introuvable dans votre périmètre" in (refused.content or "")
    refused = await outside.say("/accompagnement A2")
    assert "introuvable dans votre périmètre" in (refused.content or "")
    refused = await outside.say("/accompagner D1 M_NEAR")
    assert "introuvable dans votre périmètre" in (refused.content or "")

    inside = await agent(world, 5017, "coordonnateur", pial=P1)
    listing = await inside.say("/accompagner D1")
    assert "M_NEAR" in (listing.content or "")
    await inside.press(button(listing, "1. "))
    done = await inside.press("Créer l'accompagnement")
    assert "créé" in (done.content or "")

    narrow = await agent(world, 5018, secteurs=["Lens 2"])
    refused = await narrow.say("/accompagner D1")
    assert "introuvable dans votre périmètre" in (refused.content or "")

    stranger = Person(world, 5019)
    refused = await stranger.say("/accompagner D1")
    assert "M_NEAR" not in (refused.content or "")


async def test_stale_step_buttons_do_nothing(world: Running) -> None:
    g = await agent(world, 5020)
    listing = await g.say("/accompagner D1")
    await g.press(button(listing, "1. "))
    world.sim.press(g.id, button(listing, "2. "), message_id=listing.id)
    await world.sim.wait_handled()
    answer = await world.sim.wait_for_callback_answer(g.id)
    assert "expiré" in (answer.text or "")
    done = await g.press("Créer l'accompagnement")
    assert "M_NEAR" in (done.content or "")
