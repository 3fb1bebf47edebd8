"""A small declarative form engine on aiogram's FSM, for the candidate's multi-step dialogs.

Why not aiogram-dialog: our dialogs are linear forms (a question, a validated answer, the
next question) with the same three ways out at every step (back, cancel, /annuler); a
declarative list of steps gives that for free, keeps every state in one place that a test
can walk automatically, and stores nothing but plain JSON in the database (aiogram-dialog
keeps widget stacks that break on restart when a dialog's definition changes).

State is `form:<form>:<step>`; data holds the answers and a nonce that every rendering
increments. A button carries the nonce it was drawn with, so a button from an older
rendering (a double tap, a message from before a restart) is recognised and answered
politely instead of acting twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from aiogram import Bot
from aiogram.fsm.context import FSMContext
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from core.errors import DomainError
from core.models import Candidat
from core.services import candidatures
from core.texts import t

Values = dict[str, Any]
StepKind = Literal["text", "choice", "ordered", "confirm"]


@dataclass(frozen=True)
class Step:
    name: str
    kind: StepKind
    prompt: Callable[[Values], str]
    parse: Callable[[str, Values], Any] | None = None  # text steps: value or DomainError
    choices: Callable[[Values], list[tuple[str, str]]] | None = None  # (value, label)
    when: Callable[[Values], bool] = lambda _v: True
    label: str = ""  # name of the field in the summary's "modify" buttons


@dataclass
class Form:
    name: str
    steps: list[Step]
    on_done: Callable[[FormRun, Values], Awaitable[None]]
    title: str = ""
    hint_choice: str = field(default="bot.indice_boutons")

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def applicable(self, values: Values) -> list[Step]:
        return [s for s in self.steps if s.when(values)]


FORMS: dict[str, Form] = {}


def register(form: Form) -> Form:
    FORMS[form.name] = form
    return form


def state_of(form: str, step: str) -> str:
    return f"form:{form}:{step}"


def parse_state(state: str | None) -> tuple[str, str] | None:
    if not state or not state.startswith("form:"):
        return None
    _, form, step = state.split(":", 2)
    return (form, step) if form in FORMS else None


@dataclass
class FormRun:
    """What a form's completion handler gets: where to answer and what to call."""

    bot: Bot
    chat_id: int
    state: FSMContext
    data: dict[str, Any]  # the handler's data (session, settings, candidat …)

    async def say(self, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        await self.bot.send_message(self.chat_id, text, reply_markup=markup)

    async def candidat(self) -> Candidat | None:
        """The validated candidate talking: the one the handler gave, else looked up now
        (most steps never need it, so it is not looked up for every update)."""
        given = self.data.get("candidat")
        if given is not None:
            return cast(Candidat, given)
        user = self.data.get("event_from_user")
        if user is None:
            return None
        return await candidatures.by_telegram(self.data["session"], user.id)


def nav_row(nonce: int, back: bool = True) -> list[InlineKeyboardButton]:
    row = []
    if back:
        row.append(InlineKeyboardButton(text=t("bot.bouton_retour"), callback_data=f"f:{nonce}:b"))
    row.append(InlineKeyboardButton(text=t("bot.bouton_annuler"), callback_data=f"f:{nonce}:x"))
    return row


def keyboard(
    form: Form, step: Step, values: Values, nonce: int, first: bool
) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    if step.kind in ("choice", "ordered") and step.choices is not None:
        chosen = values.get(step.name) or [] if step.kind == "ordered" else []
        for i, (value, label) in enumerate(step.choices(values)):
            if step.kind == "ordered" and value in chosen:
                continue
            rows.append([InlineKeyboardButton(text=label, callback_data=f"f:{nonce}:c:{i}")])
        if step.kind == "ordered" and chosen:
            rows.append(
                [
                    InlineKeyboardButton(
                        text=t("bot.bouton_retirer_derniere"), callback_data=f"f:{nonce}:u"
                    ),
                    InlineKeyboardButton(
                        text=t("bot.bouton_termine"), callback_data=f"f:{nonce}:d"
                    ),
                ]
            )
    if step.kind == "confirm":
        rows.append(
            [InlineKeyboardButton(text=t("bot.bouton_confirmer"), callback_data=f"f:{nonce}:k")]
        )
        editable = [s for s in form.applicable(values) if s.kind != "confirm" and s.label]
        for i in range(0, len(editable), 2):
            rows.append(
                [
                    InlineKeyboardButton(
                        text=t("bot.bouton_modifier", champ=s.label),
                        callback_data=f"f:{nonce}:e:{s.name}",
                    )
                    for s in editable[i : i + 2]
                ]
            )
    rows.append(nav_row(nonce, back=not first))
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def render(
    run: FormRun, form: Form, step: Step, values: Values, *, edit_message: int | None = None
) -> None:
    data = await run.state.get_data()
    nonce = int(data.get("nonce", 0)) + 1
    first = form.applicable(values)[0].name == step.name
    text = step.prompt(values)
    if step.kind == "ordered":
        text = text + "\n\n" + t("bot.ordre_actuel", choix=values.get(step.name) or [])
    markup = keyboard(form, step, values, nonce, first)
    old = data.get("msg")
    if edit_message is not None:
        await run.bot.edit_message_text(
            text=text, chat_id=run.chat_id, message_id=edit_message, reply_markup=markup
        )
        msg_id = edit_message
    else:
        if old:
            await _drop_buttons(run, int(old))
        sent = await run.bot.send_message(run.chat_id, text, reply_markup=markup)
        msg_id = sent.message_id
    await run.state.set_state(state_of(form.name, step.name))
    await run.state.set_data(
        {**data, "form": form.name, "values": values, "nonce": nonce, "msg": msg_id}
    )


async def _drop_buttons(run: FormRun, message_id: int) -> None:
    """Old prompts lose their buttons so they cannot be pressed again; failures don't matter
    (Telegram refuses edits of messages over 48 h old)."""
    from aiogram.exceptions import TelegramBadRequest

    with contextlib.suppress(TelegramBadRequest):
        await run.bot.edit_message_reply_markup(
            chat_id=run.chat_id, message_id=message_id, reply_markup=None
        )


async def start(run: FormRun, form_name: str, values: Values | None = None) -> None:
    form = FORMS[form_name]
    values = dict(values or {})
    await run.state.set_data({"nonce": (await run.state.get_data()).get("nonce", 0)})
    await render(run, form, form.applicable(values)[0], values)


def _next(form: Form, current: str, values: Values) -> Step | None:
    steps = form.applicable(values)
    names = [s.name for s in steps]
    i = names.index(current) if current in names else -1
    return steps[i + 1] if i + 1 < len(steps) else None


def _previous(form: Form, current: str, values: Values) -> Step | None:
    steps = form.applicable(values)
    names = [s.name for s in steps]
    i = names.index(current) if current in names else len(steps)
    return steps[i - 1] if i > 0 else None


async def advance(run: FormRun, form: Form, step: Step, values: Values) -> None:
    data = await run.state.get_data()
    if data.get("returning"):
        # After "modify" from the summary, go straight back to it.
        confirm = next((s for s in form.applicable(values) if s.kind == "confirm"), None)
        if confirm is not None and step.kind != "confirm":
            await run.state.update_data(returning=False)
            await render(run, form, confirm, values)
            return
    nxt = _next(form, step.name, values)
    if nxt is None:
        await finish(run, form, values)
    else:
        await render(run, form, nxt, values)


async def finish(run: FormRun, form: Form, values: Values) -> None:
    data = await run.state.get_data()
    if data.get("msg"):
        await _drop_buttons(run, int(data["msg"]))
    await run.state.set_state(None)
    await run.state.set_data({"nonce": data.get("nonce", 0)})
    await form.on_done(run, values)


async def on_text(run: FormRun, text: str) -> None:
    data = await run.state.get_data()
    parsed = parse_state(await run.state.get_state())
    assert parsed is not None
    form, step = FORMS[parsed[0]], FORMS[parsed[0]].step(parsed[1])
    values: Values = dict(data.get("values") or {})
    if step.kind != "text" or step.parse is None:
        await run.say(t(form.hint_choice))
        return
    try:
        value = step.parse(text, values)
    except DomainError as err:
        await run.say(t("bot.correction", message=str(err)))
        return
    values[step.name] = value
    await advance(run, form, step, values)


async def on_button(run: FormRun, payload: str, message_id: int) -> str | None:
    """Handle `f:<nonce>:<action>[:arg]`; returns a short toast for the button press."""
    data = await run.state.get_data()
    parsed = parse_state(await run.state.get_state())
    parts = payload.split(":", 3)
    nonce = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
    if parsed is None or nonce != data.get("nonce"):
        if parsed is not None and nonce == int(data.get("nonce", 0)) - 1:
            return t("bot.deja_pris_en_compte")
        await expired(run, parsed is not None)
        return None
    form, step = FORMS[parsed[0]], FORMS[parsed[0]].step(parsed[1])
    values: Values = dict(data.get("values") or {})
    action = parts[2] if len(parts) > 2 else ""
    arg = parts[3] if len(parts) > 3 else ""
    if action == "x":
        await cancel(run)
    elif action == "b":
        prev = _previous(form, step.name, values)
        if prev is None:
            return t("bot.premiere_etape")
        await render(run, form, prev, values)
    elif action == "c" and step.choices is not None and arg.isdigit():
        options = step.choices(values)
        if int(arg) >= len(options):
            return t("bot.deja_pris_en_compte")
        value = options[int(arg)][0]
        if step.kind == "ordered":
            chosen = list(values.get(step.name) or [])
            if value not in chosen:
                chosen.append(value)
            values[step.name] = chosen
            await render(run, form, step, values, edit_message=message_id)
        else:
            values[step.name] = value
            await advance(run, form, step, values)
    elif action == "u" and step.kind == "ordered":
        values[step.name] = list(values.get(step.name) or [])[:-1]
        await render(run, form, step, values, edit_message=message_id)
    elif action == "d" and step.kind == "ordered":
        if not values.get(step.name):
            return t("bot.choisir_au_moins_un")
        await advance(run, form, step, values)
    elif action == "k" and step.kind == "confirm":
        await finish(run, form, values)
    elif action == "e" and step.kind == "confirm":
        target = next((s for s in form.applicable(values) if s.name == arg), None)
        if target is None:
            return t("bot.deja_pris_en_compte")
        await run.state.update_data(returning=True)
        await render(run, form, target, values)
    else:
        return t("bot.deja_pris_en_compte")
    return None


async def cancel(run: FormRun) -> None:
    data = await run.state.get_data()
    if data.get("msg"):
        await _drop_buttons(run, int(data["msg"]))
    await run.state.set_state(None)
    await run.state.set_data({"nonce": data.get("nonce", 0)})
    from bot.keyboards import main_menu

    await run.say(t("bot.annule"), main_menu(run.data))


async def expired(run: FormRun, in_form: bool) -> None:
    from bot.keyboards import resume_keyboard

    await run.say(t("bot.etape_expiree"), resume_keyboard(in_form, run.data))


async def resume(run: FormRun) -> bool:
    """Draw the current step again (after a restart, or from an expired button)."""
    parsed = parse_state(await run.state.get_state())
    if parsed is None:
        return False
    data = await run.state.get_data()
    form = FORMS[parsed[0]]
    await render(run, form, form.step(parsed[1]), dict(data.get("values") or {}))
    return True
