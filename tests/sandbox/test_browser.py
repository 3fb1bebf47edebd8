"""Journeys done by hand on the sandbox page, in a real browser: what a newcomer does after
`make run`. Each test leaves a screenshot under test-output/sandbox/."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.personas import CANDIDATE_ID, GESTIONNAIRE_ID, SUPERVISEUR_ID
from tests.sandbox.conftest import RunningSandbox

pytestmark = pytest.mark.slow

PDF = b"%PDF-1.4\n% sandbox test\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
STEP = 20_000  # ms: one bot answer, with margin for a loaded CI machine


class Chat:
    """The page as a person uses it: each action waits until the bot has answered it and
    the page shows that answer, so the next action works on what the person would see."""

    def __init__(self, page: Any, sandbox: RunningSandbox, user_id: int) -> None:
        self.page = page
        self.sandbox = sandbox
        self.user_id = user_id

    def _revision(self) -> int:
        return int(
            self.page.evaluate(
                "() => Math.max(0, ...[...document.querySelectorAll('#messages article.msg')]"
                ".map(a => +a.dataset.rev || 0))"
            )
        )

    def _sim(self, route: str, **params: object) -> Any:
        query = urllib.parse.urlencode({"user_id": self.user_id, **params})
        url = f"{self.sandbox.url}/_sim/{route}?{query}"
        with urllib.request.urlopen(url, timeout=STEP / 1000 + 5) as response:
            return json.load(response)["result"]

    def act(self, action: Callable[[], object]) -> None:
        revision = self._revision()
        done_before = self._sim("actions")
        action()
        # The page sends the action on its own time: wait until the server has it.
        deadline = time.monotonic() + STEP / 1000
        while self._sim("actions") <= done_before:
            assert time.monotonic() < deadline, "the page did not send the action"
            time.sleep(0.02)
        # Server side: the bot's last message sent or edited since this action, once the
        # bot has gone quiet (a multi-message answer is complete). Waiting for the first
        # change the page draws instead would let the next click hit a keyboard the bot is
        # about to replace.
        answer = self._sim("wait_for_bot", timeout=STEP / 1000)
        # Page side: that message drawn (or redrawn) after the action.
        self.page.wait_for_function(
            "([id, r]) => { const a = document.querySelector("
            "`#messages article.msg[data-id='${id}']`); return !!a && +a.dataset.rev > r; }",
            arg=[answer["id"], revision],
            timeout=STEP,
        )

    def say(self, text: str) -> None:
        box = self.page.locator("#composer-text")
        box.fill(text)
        self.act(lambda: box.press("Enter"))

    def press(self, label: str) -> None:
        # Labels may start with a symbol ("✔ Confirmer"): the words must match exactly.
        name = re.compile(rf"^\W*{re.escape(label)}$")
        button = self.page.locator("#messages .inline-kb").get_by_role("button", name=name)
        self.act(lambda: button.last.click(timeout=STEP))

    def upload(self, name: str, content: bytes, mime: str = "application/pdf") -> None:
        files = [{"name": name, "mimeType": mime, "buffer": content}]
        self.act(lambda: self.page.locator("#file-document").set_input_files(files=files))

    def expect_bot(self, text: str) -> None:
        self.page.locator("#messages article.msg.bot", has_text=text).last.wait_for(timeout=STEP)


def shoot(page: Any, path: Path) -> None:
    # The bot may still be answering the last action: let the page draw it first.
    page.wait_for_timeout(500)
    page.screenshot(path=str(path))


def save_transcript(sandbox: RunningSandbox, user_id: int, screenshot: Path) -> None:
    """The chat as the Bot API server holds it, beside the screenshot: tells a bot that did
    not answer from a page that did not show the answer."""
    with urllib.request.urlopen(f"{sandbox.url}/_sim/chat?user_id={user_id}", timeout=10) as r:
        chat = json.load(r)["result"]
    lines = [
        f"#{m['id']} {'bot' if m['from_bot'] else 'user'}: "
        f"{m['plain_text'] or m['plain_caption'] or ''!r}"
        for m in chat["messages"]
    ]
    screenshot.with_suffix(".chat.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def open_page(browser: Any, sandbox: RunningSandbox, persona: str) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 860}, locale="fr-FR", accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(STEP)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{sandbox.url}/?persona={persona}")
    page.locator(f"#persona-{persona}:checked").wait_for()
    return context, page, errors


def test_candidate_registers_validates_by_mail_applies_and_uploads(
    browser: Any, sandbox: RunningSandbox, screenshot_path: Path
) -> None:
    context, page, errors = open_page(browser, sandbox, "candidat")
    chat = Chat(page, sandbox, CANDIDATE_ID)
    try:
        chat.say("/start")
        chat.press("Créer mon compte")
        chat.press("Mme")
        email = "chloe.sandbox@exemple.test"
        for answer in ("Dupré", "Chloé", "14/07/1990", email, "06 12 34 56 78", "Arras", "62000"):
            chat.say(answer)
        chat.press("Confirmer")
        chat.expect_bot("courriel vient d'être envoyé")

        # The validation mail arrives in the mailbox panel; its button is a Telegram deep
        # link, which the page turns into "/start TOKEN" in this chat.
        mail = page.locator("#mail-list .mail-item", has_text="Confirmez votre adresse")
        mail.filter(has_text=email).first.click(timeout=STEP)
        page.locator("#mail-headers", has_text=email).wait_for()
        link = page.frame_locator("#mail-frame").get_by_role("link", name="Confirmer mon adresse")
        chat.act(link.click)
        chat.expect_bot("compte est validé")

        chat.press("Déposer une candidature")
        chat.press("AESH")
        chat.press("Lens")
        chat.press("Arras")
        chat.press("Terminé")
        chat.press("Non")  # RQTH
        chat.press("Temps plein")
        chat.press("Confirmer")
        chat.expect_bot("Envoyez maintenant")
        for name in ("cv.pdf", "lettre.pdf", "identite.pdf", "diplome.pdf"):
            chat.upload(name, PDF)
        chat.expect_bot("complète")
        # The uploaded PDF is in the chat as a document one can download again.
        assert page.locator("#messages article.msg.user .doc-name", has_text="cv.pdf").count() == 1
        assert errors == []
    finally:
        shoot(page, screenshot_path)
        save_transcript(sandbox, CANDIDATE_ID, screenshot_path)
        context.close()


def test_gestionnaire_asks_coverage_and_downloads_a_pv(
    browser: Any, sandbox: RunningSandbox, screenshot_path: Path, tmp_path: Path
) -> None:
    context, page, errors = open_page(browser, sandbox, "gestionnaire")
    chat = Chat(page, sandbox, GESTIONNAIRE_ID)
    try:
        # The persona is enrolled and logged in; its live TOTP code is on the page.
        code = page.locator("#totp-code").inner_text().replace(" ", "")
        assert code.isdigit() and len(code) == 6
        # The codes are fetched again every 30 s; the chat must keep following the bot.
        page.evaluate("() => refreshState()")

        chat.say("/couverture")
        chat.expect_bot("Couverture des décisions")

        chat.say(f"/pv {sandbox.accompagnement_id()}")
        document = page.locator("#messages article.msg.bot .doc-download").last
        document.wait_for(timeout=STEP)
        with page.expect_download(timeout=STEP) as download_info:
            document.click()
        saved = tmp_path / "pv.pdf"
        download_info.value.save_as(saved)
        assert saved.read_bytes().startswith(b"%PDF")
        assert errors == []
    finally:
        shoot(page, screenshot_path)
        save_transcript(sandbox, GESTIONNAIRE_ID, screenshot_path)
        context.close()


def test_phone_width_page_has_no_horizontal_scroll(
    browser: Any, sandbox: RunningSandbox, screenshot_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="fr-FR")
    page = context.new_page()
    try:
        page.goto(f"{sandbox.url}/?persona=superviseur")
        page.locator("#persona-superviseur:checked").wait_for(state="attached")
        for tab in ("Personnes", "Courriels", "Discussion"):
            page.get_by_role("button", name=tab, exact=True).click()
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= 360, f"{tab}: the page is {width}px wide"
        Chat(page, sandbox, SUPERVISEUR_ID).say("/aide")
    finally:
        shoot(page, screenshot_path)
        context.close()
