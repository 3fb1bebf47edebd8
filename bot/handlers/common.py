"""/start, /aide, /annuler, the menu, and what to say to anything unexpected."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot import keyboards
from bot.dialogs import engine
from bot.handlers.forms import make_run
from core.config import Settings
from core.errors import DomainError
from core.models import Candidat
from core.rules.contacts import contacts_for
from core.services import access, candidatures
from core.texts import render, t

router = Router(name="common")


async def candidat_of(session: AsyncSession, user_id: int) -> Candidat | None:
    return await candidatures.by_telegram(session, user_id)


@router.message(Command("annuler"))
async def cancel(message: Message, bot: Bot, state: FSMContext, **data: Any) -> None:
    if await state.get_state() is None:
        await message.answer(t("bot.rien_a_annuler"), reply_markup=keyboards.main_menu())
        return
    await engine.cancel(make_run(bot, message.chat.id, state, data))


@router.callback_query(F.data == "m:annuler")
async def cancel_button(query: CallbackQuery, bot: Bot, state: FSMContext, **data: Any) -> None:
    assert query.message is not None
    await query.answer()
    if await state.get_state() is None:
        await bot.send_message(
            query.message.chat.id, t("bot.rien_a_annuler"), reply_markup=keyboards.main_menu()
        )
        return
    await engine.cancel(make_run(bot, query.message.chat.id, state, data))


@router.message(CommandStart())
async def start(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    session: AsyncSession,
    settings: Settings,
    **data: Any,
) -> None:
    assert message.from_user is not None
    payload = (command.args or "").strip()
    if payload:
        try:
            c = await candidatures.validate_with_token(
                session, settings, payload, message.from_user.id
            )
        except DomainError as err:
            await message.answer(str(err), reply_markup=keyboards.welcome())
            return
        await state.set_state(None)
        await message.answer(
            t("bot.inscription.valide", prenom=c.prenom), reply_markup=keyboards.main_menu()
        )
        return
    c = await candidat_of(session, message.from_user.id)
    if c is None:
        await message.answer(render("bot/accueil.txt.j2"), reply_markup=keyboards.welcome())
    else:
        await message.answer(
            render("bot/menu.txt.j2", prenom=c.prenom), reply_markup=keyboards.main_menu()
        )


async def send_help(
    bot: Bot, chat_id: int, session: AsyncSession, user_id: int, settings: Settings
) -> None:
    caller = await access.current(session, user_id)
    if caller is not None:
        # A connected agent gets the commands of their role, not the candidates' help.
        from bot.handlers.service_auth import SERVICE_COMMANDS

        commandes = [(c, t(f"service.commande_{c}")) for c in SERVICE_COMMANDS[caller.role]]
        await bot.send_message(
            chat_id,
            t(
                "service.aide_agent",
                role=access.role_label(caller.role),
                perimetre=access.describe_perimeter(caller),
                commandes=commandes,
            ),
        )
        return
    c = await candidat_of(session, user_id)
    dep = (c.departement if c else None) or settings.departement
    contacts = contacts_for(dep)
    await bot.send_message(
        chat_id,
        render(
            "bot/aide.txt.j2", contacts=contacts, m2_2d=contacts_for(dep, "M2_2D_LILLE").campagne
        ),
    )


@router.message(Command("aide", "help"))
async def help_(message: Message, bot: Bot, session: AsyncSession, settings: Settings) -> None:
    assert message.from_user is not None
    await send_help(bot, message.chat.id, session, message.from_user.id, settings)


@router.callback_query(F.data == "m:aide")
async def help_button(
    query: CallbackQuery, bot: Bot, session: AsyncSession, settings: Settings
) -> None:
    assert query.message is not None
    await query.answer()
    await send_help(bot, query.message.chat.id, session, query.from_user.id, settings)


@router.callback_query(F.data == "m:menu")
async def menu(
    query: CallbackQuery, state: FSMContext, bot: Bot, session: AsyncSession, **data: Any
) -> None:
    assert query.message is not None
    await query.answer()
    if engine.parse_state(await state.get_state()) is not None:
        await engine.cancel(make_run(bot, query.message.chat.id, state, data))
        return
    await state.set_state(None)
    c = await candidat_of(session, query.from_user.id)
    if c is None:
        await bot.send_message(
            query.message.chat.id, render("bot/accueil.txt.j2"), reply_markup=keyboards.welcome()
        )
    else:
        await bot.send_message(
            query.message.chat.id,
            render("bot/menu.txt.j2", prenom=c.prenom),
            reply_markup=keyboards.main_menu(),
        )


@router.callback_query(F.data == "m:reprendre")
async def resume(query: CallbackQuery, state: FSMContext, bot: Bot, **data: Any) -> None:
    assert query.message is not None
    await query.answer()
    if not await engine.resume(make_run(bot, query.message.chat.id, state, data)):
        await bot.send_message(
            query.message.chat.id, t("bot.rien_a_annuler"), reply_markup=keyboards.main_menu()
        )
