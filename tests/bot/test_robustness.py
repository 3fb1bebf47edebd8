"""Robustness of the candidate bot: flood control, double taps, redelivered updates, a walk
over every dialog state, renewal buttons."""

from __future__ import annotations

import random
from datetime import date

from sqlalchemy import func, select

from bot.dialogs import engine
from core.models import BotUpdate, Candidat, Candidature
from core.services import candidatures
from core.services.storage import FileStore
from tests.bot.conftest import Person, Running
from tests.bot.test_candidate_journey import validated


async def test_429_is_waited_out_then_succeeds(running: Running) -> None:
    p = Person(running, 3001)
    running.sim.fail_next("sendMessage", 429, retry_after=1)
    reply = await p.say("/start")
    assert "Bonjour" in (reply.content or "")
    assert len(running.sim.calls("sendMessage")) >= 2  # the refused call, then the retry


async def test_double_tap_acts_once(running: Running) -> None:
    p = Person(running, 3002)
    await p.say("/start")
    await p.press("Créer mon compte")
    prompt = p.last
    running.sim.press(p.id, "Mme", message_id=prompt.id)
    running.sim.press(p.id, "Mme", message_id=prompt.id)
    await running.sim.wait_handled()
    asked = [
        m for m in running.sim.chat(p.id) if m.from_bot and "nom de famille" in (m.content or "")
    ]
    assert len(asked) == 1


async def test_a_redelivered_update_changes_nothing_twice(running: Running) -> None:
    p = Person(running, 3003)
    await p.say("/start")
    async with running.sessionmaker() as s:
        seen = (await s.scalars(select(BotUpdate.update_id))).all()
    assert seen  # each handled update is recorded with its changes
    from aiogram.types import Update

    from bot.middlewares import UnitOfWork

    handled: list[int] = []

    async def handler(event: object, data: dict[str, object]) -> None:
        handled.append(1)

    update = Update(update_id=seen[0])
    await UnitOfWork(running.sessionmaker)(handler, update, {"bot": running.bot})
    assert handled == []


async def test_every_dialog_state_offers_a_way_out_and_survives_random_text(
    running: Running,
) -> None:
    """Walk every step of every form: a random text gets an answer, never a traceback, and
    the step shows Cancel (and Back after the first step)."""
    p = Person(running, 3004)
    await validated(p, running, "walk@exemple.test")
    rng = random.Random(7)
    junk = ["", "???", "x" * 300, "/", "🙂", "DROP TABLE candidats;", "31/31/3131", "0"]
    for form in engine.FORMS.values():
        for step in form.steps:
            base = {
                "type": "M2_2D_LILLE",
                "_departement": "062",
                "zones": ["Lille"],
                "nom": "A",
                "prenom": "B",
                "date_naissance": "1990-01-01",
                "email": "a@b.fr",
                "telephone": "06 00 00 00 00",
                "commune": "Arras",
                "code_postal": "62000",
                "civilite": "M.",
            }
            if not step.when(base):
                base["type"] = "AESH"
            if not step.when(base):
                continue
            await p.say("/annuler")
            from aiogram.fsm.storage.base import StorageKey

            key = StorageKey(bot_id=running.bot.id, chat_id=p.id, user_id=p.id)
            state = running.dp.fsm.get_context(running.bot, p.id, p.id)
            assert state.key == key
            await state.set_state(engine.state_of(form.name, step.name))
            await state.set_data({"form": form.name, "values": base, "nonce": 1})
            run = engine.FormRun(running.bot, p.id, state, {})
            await engine.render(run, form, step, base)
            drawn = running.sim.last_bot_message(p.id)
            assert drawn is not None and "Annuler" in str(drawn.button_labels), (
                form.name,
                step.name,
            )
            reply = await p.say(rng.choice([j for j in junk if j]) or "?")
            assert reply.content and "erreur" not in reply.content.lower(), (form.name, step.name)


async def test_renewal_question_with_buttons_keeps_the_candidature(running: Running) -> None:
    from bot.app import deliver_notifications

    p = Person(running, 3005)
    await validated(p, running, "renouvelle@exemple.test")
    store = FileStore(running.settings.storage_dir)
    async with running.sessionmaker() as s:
        c = (await s.scalars(select(Candidat))).one()
        cand = await candidatures.create_candidature(s, c, "AESH", {}, ["Arras"])
        await candidatures.submit(s, cand, today=date(2025, 1, 10))
        await candidatures.renewal_sweep(s, running.settings, store, date(2025, 7, 10))
        await s.commit()
    assert await deliver_notifications(running.bot, running.sessionmaker, running.settings) == 1
    question = await running.sim.wait_for_bot(p.id)
    assert "maintenir" in (question.content or "").lower()
    kept = await p.press("Maintenir")
    assert "maintenue jusqu'au 10/01/2026" in (kept.content or "")
    again = await p.press("Maintenir")  # the old button again: nothing more happens
    assert "déjà reçu une réponse" in (again.content or "")
    async with running.sessionmaker() as s:
        assert (await s.scalars(select(Candidature))).one().valide_jusqu_au == date(2026, 1, 10)
        assert await s.scalar(select(func.count()).select_from(Candidature)) == 1
