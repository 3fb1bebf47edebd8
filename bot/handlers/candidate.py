"""Candidate commands: account, candidatures, status, renewal answers (domain 2)."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

import bot.dialogs.account
import bot.dialogs.candidature  # noqa: F401
from bot import keyboards
from bot.dialogs import engine
from bot.handlers.common import candidat_of
from bot.handlers.forms import make_run
from core.config import Settings
from core.errors import DomainError
from core.models import Candidat
from core.services import candidatures
from core.services.storage import FileStore
from core.texts import t

router = Router(name="candidate")


async def _require(bot: Bot, chat_id: int, session: AsyncSession, user_id: int) -> Candidat | None:
    c = await candidat_of(session, user_id)
    if c is None:
        await bot.send_message(chat_id, t("bot.compte_requis"), reply_markup=keyboards.welcome())
    return c


# --- account ------------------------------------------------------------------------------


@router.callback_query(F.data == "m:inscription")
async def sign_up(query: CallbackQuery, bot: Bot, state: FSMContext, **data: Any) -> None:
    assert query.message is not None
    await query.answer()
    await engine.start(make_run(bot, query.message.chat.id, state, data), "inscription")


@router.callback_query(F.data == "m:connexion")
async def log_in(query: CallbackQuery, bot: Bot, state: FSMContext, **data: Any) -> None:
    assert query.message is not None
    await query.answer()
    await engine.start(make_run(bot, query.message.chat.id, state, data), "connexion")


@router.message(StateFilter("compte:attente_code", "compte:attente_code_connexion"), F.text)
async def code_typed(
    message: Message, state: FSMContext, session: AsyncSession, settings: Settings
) -> None:
    assert message.text is not None and message.from_user is not None
    if message.text.startswith("/"):
        await message.answer(t("bot.commande_inconnue"))
        return
    email = str((await state.get_data()).get("email") or "")
    login = await state.get_state() == "compte:attente_code_connexion"
    try:
        if login:
            c = await candidatures.login_with_code(
                session, settings, email, message.text, message.from_user.id
            )
        else:
            c = await candidatures.validate_with_code(
                session, settings, email, message.text, message.from_user.id
            )
    except DomainError as err:
        await message.answer(t("bot.correction", message=str(err)))
        return
    await state.set_state(None)
    key = "bot.connexion.reussie" if login else "bot.inscription.valide"
    await message.answer(t(key, prenom=c.prenom), reply_markup=keyboards.main_menu())


@router.message(StateFilter("compte:attente_code", "compte:attente_code_connexion"))
async def code_expected(message: Message) -> None:
    await message.answer(t("bot.inscription.attente_code"))


# --- candidatures -------------------------------------------------------------------------


async def _candidature_menu(
    bot: Bot,
    chat_id: int,
    state: FSMContext,
    c: Candidat,
    session: AsyncSession,
    data: dict[str, Any],
) -> None:
    lines = await candidatures.status_lines(session, c)
    open_ = [x for x in lines if x.statut not in ("retiree", "supprimee")]
    if not open_:
        await engine.start(
            make_run(bot, chat_id, state, {**data, "candidat": c}),
            "candidature",
            {"_departement": c.departement},
        )
        return
    buttons = [
        [
            InlineKeyboardButton(
                text=t("bot.bouton_modifier_candidature", reference=x.reference),
                callback_data=f"cd:edit:{x.id}",
            )
        ]
        for x in open_
    ]
    buttons.append(
        [InlineKeyboardButton(text=t("bot.bouton_nouvelle_candidature"), callback_data="cd:new")]
    )
    await bot.send_message(
        chat_id,
        t("bot.candidature.liste") + "\n" + "\n".join(_status_text(x) for x in open_),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=buttons),
    )


@router.message(Command("candidature"))
async def candidature_cmd(
    message: Message, bot: Bot, state: FSMContext, session: AsyncSession, **data: Any
) -> None:
    assert message.from_user is not None
    c = await _require(bot, message.chat.id, session, message.from_user.id)
    if c is not None:
        await state.set_state(None)
        await _candidature_menu(
            bot, message.chat.id, state, c, session, {**data, "session": session}
        )


@router.callback_query(F.data == "m:candidature")
async def candidature_button(
    query: CallbackQuery, bot: Bot, state: FSMContext, session: AsyncSession, **data: Any
) -> None:
    assert query.message is not None
    await query.answer()
    c = await _require(bot, query.message.chat.id, session, query.from_user.id)
    if c is not None:
        await _candidature_menu(
            bot, query.message.chat.id, state, c, session, {**data, "session": session}
        )


@router.callback_query(F.data.startswith("cd:"))
async def candidature_choice(
    query: CallbackQuery, bot: Bot, state: FSMContext, session: AsyncSession, **data: Any
) -> None:
    assert query.message is not None and query.data is not None
    await query.answer()
    c = await _require(bot, query.message.chat.id, session, query.from_user.id)
    if c is None:
        return
    run = make_run(bot, query.message.chat.id, state, {**data, "session": session, "candidat": c})
    parts = query.data.split(":")
    if parts[1] == "new":
        await engine.start(run, "candidature", {"_departement": c.departement})
        return
    try:
        cand = await candidatures.owned(session, c, int(parts[2]))
    except (DomainError, ValueError, IndexError):
        await query.message.answer(t("bot.etape_expiree"), reply_markup=keyboards.main_menu())
        return
    values = {
        "_edit": cand.id,
        "_departement": c.departement,
        "type": cand.type,
        "zones": list(cand.zones or []),
        **(cand.reponses or {}),
    }
    await engine.start(run, "candidature", values)


def _status_text(x: candidatures.StatusLine) -> str:
    return t(
        "bot.statut.ligne",
        reference=x.reference,
        type=candidatures.type_label(x.type),
        statut=t(f"candidats.statut_{x.statut}"),
        valide_jusqu_au=f"{x.valide_jusqu_au:%d/%m/%Y}" if x.valide_jusqu_au else "",
        relance=x.relance_le is not None,
        manquantes=[t(f"candidats.piece_{p}") for p in x.missing_pieces]
        + ([t("bot.pieces.licence")] if x.missing_licence else []),
    )


async def _send_status(bot: Bot, chat_id: int, c: Candidat, session: AsyncSession) -> None:
    lines = await candidatures.status_lines(session, c)
    if not lines:
        await bot.send_message(
            chat_id, t("bot.candidature.aucune"), reply_markup=keyboards.main_menu()
        )
        return
    rows = [
        [
            InlineKeyboardButton(text=t("bot.bouton_maintenir"), callback_data=f"rn:{x.id}:k"),
            InlineKeyboardButton(text=t("bot.bouton_retirer"), callback_data=f"rn:{x.id}:w"),
        ]
        for x in lines
        if x.relance_le is not None
    ]
    rows.append([InlineKeyboardButton(text=t("bot.bouton_menu"), callback_data="m:menu")])
    await bot.send_message(
        chat_id,
        "\n".join(_status_text(x) for x in lines),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
    )


@router.message(Command("statut"))
async def status_cmd(message: Message, bot: Bot, session: AsyncSession) -> None:
    assert message.from_user is not None
    c = await _require(bot, message.chat.id, session, message.from_user.id)
    if c is not None:
        await _send_status(bot, message.chat.id, c, session)


@router.callback_query(F.data == "m:statut")
async def status_button(query: CallbackQuery, bot: Bot, session: AsyncSession) -> None:
    assert query.message is not None
    await query.answer()
    c = await _require(bot, query.message.chat.id, session, query.from_user.id)
    if c is not None:
        await _send_status(bot, query.message.chat.id, c, session)


# --- renewal answers ----------------------------------------------------------------------


@router.callback_query(F.data.startswith("rn:"))
async def renewal_answer(
    query: CallbackQuery, session: AsyncSession, settings: Settings, store: FileStore
) -> None:
    assert query.message is not None and query.data is not None
    parts = query.data.split(":")
    c = await candidat_of(session, query.from_user.id)
    if c is None or len(parts) != 3 or not parts[1].isdigit():
        await query.answer(t("bot.renouvellement.deja"))
        return
    try:
        cand = await candidatures.owned(session, c, int(parts[1]))
    except DomainError:
        await query.answer(t("bot.renouvellement.deja"))
        return
    ref = candidatures.reference(cand.id)
    if parts[2] == "w":  # a withdrawal erases everything: ask once more
        await query.answer()
        await query.message.answer(
            t("bot.renouvellement.confirmer_retrait", reference=ref),
            reply_markup=keyboards.confirm_withdrawal(cand.id),
        )
        return
    answer = {"k": candidatures.Answer.KEEP, "W": candidatures.Answer.WITHDRAW}.get(parts[2])
    if answer is None:
        await query.answer(t("bot.renouvellement.deja"))
        return
    outcome = await candidatures.apply_renewal_answer(
        session, settings, store, cand.id, answer, source="bot"
    )
    await query.answer()
    if outcome == "maintenue":
        await query.message.answer(
            t(
                "bot.renouvellement.maintenue",
                reference=ref,
                valide_jusqu_au=f"{cand.valide_jusqu_au:%d/%m/%Y}",
            ),
            reply_markup=keyboards.main_menu(),
        )
    elif outcome == "retiree":
        await query.message.answer(t("bot.renouvellement.retiree", reference=ref))
    else:
        await query.message.answer(t("bot.renouvellement.deja"))
