"""Last router: every update nobody else took gets a hint, never silence or a traceback."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot import keyboards
from bot.dialogs import engine
from core.texts import t

router = Router(name="fallback")
_albums_answered: dict[int, str] = {}


@router.message(F.media_group_id)
async def album(message: Message) -> None:
    # One answer per album, not one per photo of it.
    if _albums_answered.get(message.chat.id) != message.media_group_id:
        _albums_answered[message.chat.id] = str(message.media_group_id)
        await message.answer(t("bot.un_fichier_a_la_fois"))


@router.message(F.text.startswith("/"))
async def unknown_command(message: Message) -> None:
    await message.answer(t("bot.commande_inconnue"))


@router.message(F.document | F.photo)
async def unexpected_file(message: Message) -> None:
    await message.answer(t("bot.fichier_inattendu"))


@router.message()
async def anything(message: Message) -> None:
    await message.answer(t("bot.non_compris"), reply_markup=keyboards.main_menu())


@router.callback_query()
async def stale_button(query: CallbackQuery, state: FSMContext) -> None:
    await query.answer()
    assert query.message is not None
    in_form = engine.parse_state(await state.get_state()) is not None
    await query.message.answer(
        t("bot.etape_expiree"), reply_markup=keyboards.resume_keyboard(in_form)
    )
