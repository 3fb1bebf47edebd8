"""Service users in the chat: /connexion with an invitation code, TOTP second factor, role
choice, /deconnexion; and the guard every service command goes through (domain §1)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot, F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
)
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.errors import DomainError
from core.services import access
from core.texts import t

router = Router(name="service_auth")

# Menu of commands per role (interfaces §6), set for the chat once a session opens.
SERVICE_COMMANDS: dict[str, tuple[str, ...]] = {
    "gestionnaire": (
        "couverture",
        "accompagner",
        "accompagnement",
        "affecter",
        "anomalies",
        "cas",
        "pial",
        "indicateurs",
        "eleve",
        "aesh",
        "etablissement",
        "pv",
        "candidats",
        "import",
        "perimetre",
        "deconnexion",
        "aide",
    ),
    "superviseur": (
        "couverture",
        "accompagnement",
        "anomalies",
        "cas",
        "pial",
        "indicateurs",
        "eleve",
        "aesh",
        "etablissement",
        "pv",
        "candidats",
        "parametres",
        "perimetre",
        "deconnexion",
        "aide",
    ),
    "coordonnateur": (
        "couverture",
        "accompagner",
        "accompagnement",
        "anomalies",
        "cas",
        "pial",
        "indicateurs",
        "eleve",
        "aesh",
        "etablissement",
        "pv",
        "perimetre",
        "deconnexion",
        "aide",
    ),
}


async def set_service_menu(bot: Bot, chat_id: int, role: str) -> None:
    await bot.set_my_commands(
        [
            BotCommand(command=c, description=t(f"service.commande_{c}"))
            for c in SERVICE_COMMANDS[role]
        ],
        scope=BotCommandScopeChat(chat_id=chat_id),
    )


async def _after_login(message: Message, bot: Bot, session: AsyncSession) -> None:
    assert message.from_user is not None
    choices = await access.roles(session, message.from_user.id)
    if len(choices) > 1:
        rows = [[InlineKeyboardButton(text=c.libelle, callback_data=f"sr:{c.id}")] for c in choices]
        await message.answer(
            t("access.choisir_role"), reply_markup=InlineKeyboardMarkup(inline_keyboard=rows)
        )
        return
    caller = await access.current(session, message.from_user.id)
    if caller is not None:
        await set_service_menu(bot, message.chat.id, caller.role)
        await message.answer(
            t("access.connecte", role=access.role_label(caller.role))
            + "\n"
            + t("service.bienvenue")
        )


@router.message(Command("connexion"))
async def connexion(
    message: Message,
    command: CommandObject,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    settings: Settings,
) -> None:
    assert message.from_user is not None
    code = (command.args or "").strip()
    if code:
        try:
            enrolment = await access.redeem(session, settings, code, message.from_user.id)
        except DomainError as err:
            await message.answer(str(err))
            return
        # The message with the code is removed from the chat: it was a secret.
        with contextlib.suppress(Exception):
            await message.delete()
        if enrolment.totp_a_confirmer and enrolment.otpauth_uri:
            await bot.send_photo(
                message.chat.id,
                BufferedInputFile(access.qr_png(enrolment.otpauth_uri), "totp.png"),
                caption=t("access.enrolement", role=access.role_label(enrolment.role)),
            )
            await state.set_state("service:totp")
            return
        await message.answer(t("access.role_ajoute", role=access.role_label(enrolment.role)))
    st = await access.status(session, message.from_user.id)
    if st.etat == "inconnu":
        await message.answer(t("service.connexion_usage"))
        return
    if st.etat == "connecte":
        await _after_login(message, bot, session)
        return
    await state.set_state("service:totp")
    await message.answer(t("access.demander_totp"))


@router.message(StateFilter("service:totp"), F.text)
async def totp_typed(
    message: Message, bot: Bot, state: FSMContext, session: AsyncSession, settings: Settings
) -> None:
    assert message.from_user is not None and message.text is not None
    if message.text.startswith("/"):
        await state.set_state(None)
        await message.answer(t("access.demander_totp"))
        return
    user = await access.user_by_telegram(session, message.from_user.id)
    try:
        if user is not None and not user.totp_confirmed:
            await access.confirm_totp(session, settings, user, message.text)
        else:
            await access.login(session, settings, message.from_user.id, message.text)
    except DomainError as err:
        # Not re-raised: a wrong code counts towards the lock and that must be committed.
        await message.answer(str(err))
        return
    await state.set_state(None)
    await _after_login(message, bot, session)


@router.callback_query(F.data.startswith("sr:"))
async def role_chosen(query: CallbackQuery, bot: Bot, session: AsyncSession) -> None:
    assert query.message is not None and query.data is not None
    await query.answer()
    try:
        caller = await access.choose_role(session, query.from_user.id, int(query.data[3:]))
    except (DomainError, ValueError) as err:
        await query.message.answer(
            str(err) if isinstance(err, DomainError) else t("bot.etape_expiree")
        )
        return
    await set_service_menu(bot, query.message.chat.id, caller.role)
    await query.message.answer(
        t("access.connecte", role=access.role_label(caller.role)) + "\n" + t("service.bienvenue")
    )


@router.message(Command("deconnexion"))
async def deconnexion(message: Message, session: AsyncSession) -> None:
    assert message.from_user is not None
    await access.logout(session, message.from_user.id)
    await message.answer(t("access.deconnecte"))


class ServiceGuard(BaseMiddleware):
    """Inner middleware of the service routers: nothing runs for a chat that is not enrolled
    and authenticated — it gets one neutral sentence and no data. Injects `caller`."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user = data.get("event_from_user")
        session: AsyncSession = data["session"]
        st = await access.status(session, user.id) if user is not None else None
        if st is None or st.caller is None:
            key = {
                "expiree": "access.session_expiree",
                "choix_role": "access.choisir_role",
                "deconnecte": "access.demander_totp",
                "a_confirmer": "access.demander_totp",
            }
            text = t(key.get(st.etat if st else "", "access.reserve"))
            if st is not None and st.etat in ("expiree", "deconnecte", "a_confirmer"):
                state: FSMContext = data["state"]
                await state.set_state("service:totp")
            if isinstance(event, CallbackQuery):
                await event.answer(text, show_alert=True)
            elif isinstance(event, Message):
                await event.answer(text)
            return None
        data["caller"] = st.caller
        return await handler(event, data)


def guarded(name: str) -> Router:
    """A router whose every message and button handler requires a service session."""
    r = Router(name=name)
    r.message.middleware(ServiceGuard())
    r.callback_query.middleware(ServiceGuard())
    return r
