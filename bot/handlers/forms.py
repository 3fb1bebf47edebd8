"""Routing of texts and buttons to the form engine, whatever form is running."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Filter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.dialogs import engine
from core.texts import t

router = Router(name="forms")
# The steps of a running form (a typed answer, a press on one of its buttons): matched right
# after the commands that work in any state, instead of after every service and candidate
# handler. No handler in between could take them: their states (piece:, diplome:, compte:,
# service:) are not a form's, and their buttons carry other prefixes than "f:".
lane = Router(name="forms-lane")


class InForm(Filter):
    async def __call__(self, event: Any, raw_state: str | None = None) -> bool:
        return engine.parse_state(raw_state) is not None


def make_run(bot: Bot, chat_id: int, state: FSMContext, data: dict[str, Any]) -> engine.FormRun:
    return engine.FormRun(bot=bot, chat_id=chat_id, state=state, data=data)


@lane.message(InForm(), F.text & ~F.text.startswith("/"))
async def form_text(message: Message, bot: Bot, state: FSMContext, **data: Any) -> None:
    assert message.text is not None
    await engine.on_text(make_run(bot, message.chat.id, state, data), message.text)


@router.message(InForm())
async def form_other(message: Message) -> None:
    await message.answer(t("bot.indice_texte"))


@lane.callback_query(F.data.startswith("f:"))
async def form_button(query: CallbackQuery, bot: Bot, state: FSMContext, **data: Any) -> None:
    assert query.data is not None and query.message is not None
    run = make_run(bot, query.message.chat.id, state, data)
    toast = await engine.on_button(run, query.data, query.message.message_id)
    await query.answer(toast or None)
