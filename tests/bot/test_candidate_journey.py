"""A candidate's whole journey in Telegram, through the Bot API test server."""

from __future__ import annotations

from sqlalchemy import select

from core.models import Candidat, Candidature, Piece
from tests.bot.conftest import Person, Running, last_mail, link_token

PDF = b"%PDF-1.4\n% test\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200


async def register(p: Person, email: str = "chloe.dupre@exemple.test") -> None:
    await p.say("/start")
    await p.press("Créer mon compte")
    await p.press("Mme")
    for answer in ("Dupré", "Chloé", "14/07/1990", email, "06 12 34 56 78", "Arras", "62000"):
        await p.say(answer)
    reply = await p.press("Confirmer")
    assert "courriel vient d'être envoyé" in (reply.content or "")


async def validated(p: Person, running: Running, email: str = "chloe.dupre@exemple.test") -> None:
    await register(p, email)
    mail = await last_mail(running.sessionmaker, "validation")
    reply = await p.say(f"/start {link_token(mail)}")
    assert "compte est validé" in (reply.content or "")


async def test_full_aesh_application_until_complete(running: Running) -> None:
    p = Person(running, 1001)
    await validated(p, running)
    await p.press("Déposer une candidature")
    await p.press("AESH")
    await p.press("Lens")
    zones = await p.press("Arras")
    assert "1. Lens, 2. Arras" in (zones.content or "")
    await p.press("Terminé")
    await p.press("Non")  # RQTH
    summary = await p.press("Temps plein")
    assert "1. Lens" in (summary.content or "") and "AESH" in (summary.content or "")
    deposited = await p.press("Confirmer")
    assert "Envoyez maintenant : CV" in (deposited.content or "")
    for name in ("cv.pdf", "lettre.pdf", "identite.pdf"):
        await p.upload(PDF, name)
    done = await p.upload(JPEG, "diplome.jpg", "image/jpeg")
    assert "complète" in (done.content or "")
    actions = running.sim.actions(p.id)
    print(f"user actions for a full AESH application: {actions}")
    assert actions <= 25
    async with running.sessionmaker() as s:
        cand = (await s.scalars(select(Candidature))).one()
        assert cand.statut == "complete" and cand.zones == ["Lens", "Arras"]
        assert cand.reponses == {
            "rqth": "non",
            "temps": "plein",
            "choix_1": "AESH",
            "choix_2": "AESH",
        }
        assert len((await s.scalars(select(Piece))).all()) == 4
    status = await p.say("/statut")
    assert "complète" in (status.content or "") and "valable jusqu'au" in (status.content or "")


async def test_m2_application_with_licence(running: Running) -> None:
    p = Person(running, 1002)
    await validated(p, running, "zoe.m2@exemple.test")
    await p.say("/candidature")
    await p.press("M2 alternance MEEF 2nd degré")
    await p.press("Mathématiques")
    await p.press("Lille")  # zone
    await p.press("Terminé")
    await p.press("Oui")  # boursier
    await p.press("Non")  # bourse demandée
    await p.press("Université de Lille")
    await p.press("Villeneuve")
    bad = await p.say("12345")
    assert "INE" in (bad.content or "") and "11 caractères" in (bad.content or "")
    summary = await p.say("123456789AB")
    assert "Master MEEF mention 2nd degré" in (summary.content or "")
    await p.press("Confirmer")
    for name in ("cv.pdf", "lettre.pdf", "id.pdf", "diplome.pdf", "inscription.pdf"):
        last = await p.upload(PDF, name)
    assert "diplôme de type LICENCE" in (last.content or "") or "incomplète" in (last.content or "")
    await p.say("/diplomes")
    await p.press("Ajouter un diplôme")
    await p.press("LICENCE")
    await p.say("Licence de mathématiques")
    await p.say("2024")
    await p.say("Université de Lille")
    await p.upload(PDF, "licence.pdf")
    async with running.sessionmaker() as s:
        cand = (await s.scalars(select(Candidature))).one()
        assert cand.type == "M2_2D_LILLE" and cand.statut == "complete"
        assert cand.reponses["ine"] == "123456789AB"  # type: ignore[index]


async def test_validation_errors_each_explain_the_fix(running: Running) -> None:
    p = Person(running, 1003)
    await p.say("/start")
    await p.press("Créer mon compte")
    hint = await p.say("Madame")  # a choice step answered with text
    assert "boutons" in (hint.content or "")
    await p.press("Mme")
    assert "Nom" in (await p.say("D4rk V4d0r")).content or ""  # type: ignore[operator]
    await p.say("Dupré")
    await p.say("Chloé")
    for bad, words in (("31/02/1990", "JJ/MM/AAAA"), ("14/07/2020", "entre 16 et 80 ans")):
        assert words in ((await p.say(bad)).content or "")
    await p.say("14/07/1990")
    assert "invalide" in ((await p.say("chloe@@exemple")).content or "")
    await p.say("chloe@exemple.test")
    assert "10 chiffres" in ((await p.say("12 34")).content or "")
    await p.say("0612345678")
    await p.say("Arras")
    assert "5 chiffres" in ((await p.say("6200")).content or "")
    summary = await p.say("62000")
    assert "06 12 34 56 78" in (summary.content or "")
    # Back goes to the previous question; /annuler leaves with nothing stored.
    back = await p.press("Retour")
    assert "code postal" in (back.content or "").lower()
    cancelled = await p.say("/annuler")
    assert "annulé" in (cancelled.content or "")
    async with running.sessionmaker() as s:
        assert (await s.scalars(select(Candidat))).all() == []


async def test_disguised_and_oversized_files_are_refused(running: Running) -> None:
    p = Person(running, 1004)
    await validated(p, running, "marc@exemple.test")
    await p.press("Déposer une candidature")
    await p.press("AESH")
    await p.press("Arras")
    await p.press("Terminé")
    await p.press("Oui")
    await p.press("Temps partiel")
    await p.press("Confirmer")
    refused = await p.upload(b"MZ\x90\x00\x03" + b"\x00" * 500, "CV.pdf")
    assert "PDF, JPEG et PNG" in (refused.content or "")
    big = await p.upload(PDF + b"0" * (11 * 2**20), "cv.pdf")
    assert "10 Mo" in (big.content or "")
    async with running.sessionmaker() as s:
        assert (await s.scalars(select(Piece))).all() == []
    running.sim.send_album(p.id, [(PDF, "a.pdf"), (PDF, "b.pdf")])
    album = await p.answer()
    assert "Un fichier à la fois" in (album.content or "")


async def test_dialog_resumes_after_a_restart(running: Running) -> None:
    p = Person(running, 1005)
    await p.say("/start")
    await p.press("Créer mon compte")
    await p.press("M.")
    await p.say("Martin")
    await running.restart()
    old_prompt = p.last.id
    # Telegram refuses to edit old messages (over 48 h): their buttons then stay visible.
    running.sim.fail_next(
        "editMessageReplyMarkup", 400, "Bad Request: message can't be edited", count=2
    )
    reply = await p.say("Léo")  # the prénom question was asked before the restart
    assert "date de naissance" in (reply.content or "").lower()
    await p.say("14/07/1990")
    # A button of an older step is answered politely, with a way back, and changes nothing.
    expired = await p.press_on(old_prompt, "Retour")
    assert "expiré" in (expired.content or "") and "Reprendre" in str(expired.button_labels)
    resumed = await p.press("Reprendre")
    assert "adresse électronique" in (resumed.content or "")


async def test_returning_user_logs_in_on_a_new_telegram_account(running: Running) -> None:
    first = Person(running, 1006)
    await validated(first, running, "ines@exemple.test")
    other = Person(running, 2006, "Inès")
    await other.say("/start")
    await other.press("J'ai déjà un compte")
    await other.say("ines@exemple.test")
    mail = await last_mail(running.sessionmaker, "login_code")
    import re

    code = re.search(r"\b(\d{6})\b", mail.body_text)
    assert code
    ok = await other.say(code.group(1))
    assert "Bon retour" in (ok.content or "")
    async with running.sessionmaker() as s:
        c = (await s.scalars(select(Candidat))).one()
        assert c.telegram_id == 2006
