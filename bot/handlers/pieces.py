"""Pieces and diplomas: files arrive as documents or photos, one at a time (domain 2.3-2.4)."""

from __future__ import annotations

import io
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot import keyboards
from bot.dialogs import engine
from bot.dialogs.engine import Form, FormRun, Step, Values, register
from bot.handlers.candidate import _require
from bot.handlers.forms import make_run
from core.errors import DomainError, InvalidInput
from core.models import Candidat, Candidature
from core.rules.candidature import CLOSED, DIPLOME_TYPES, required_pieces
from core.rules.files import MAX_PIECE_BYTES, TELEGRAM_DOWNLOAD_LIMIT
from core.services import candidatures
from core.services.storage import FileStore
from core.texts import t

router = Router(name="pieces")


def _label(kind: str) -> str:
    return t(f"candidats.piece_{kind}")


async def _pieces_view(
    session: AsyncSession, cand: Candidature
) -> tuple[str, InlineKeyboardMarkup, list[str]]:
    comp = await candidatures.refresh_status(session, cand)
    items = [
        {"kind": k, "libelle": _label(k), "present": k not in comp.missing_pieces}
        for k in required_pieces(cand.type)
    ]
    text = (
        t(
            "bot.pieces.liste",
            reference=candidatures.reference(cand.id),
            statut=t(f"candidats.statut_{cand.statut}"),
            pieces=items,
            licence=comp.missing_licence,
        )
        + "\n"
        + t("bot.pieces.remplacer")
    )
    rows = [
        [
            InlineKeyboardButton(
                text=t(
                    "bot.bouton_piece", etat="✅" if i["present"] else "⬜", libelle=i["libelle"]
                ),
                callback_data=f"p:{cand.id}:{i['kind']}",
            )
        ]
        for i in items
    ]
    rows.append([InlineKeyboardButton(text=t("bot.bouton_menu"), callback_data="m:menu")])
    return text, InlineKeyboardMarkup(inline_keyboard=rows), list(comp.missing_pieces)


async def ask_next_piece(run: FormRun, candidature_id: int) -> None:
    """After submission, ask for the missing pieces one after the other."""
    session = run.data["session"]
    cand = await session.get(Candidature, candidature_id)
    assert cand is not None
    text, _, missing = await _pieces_view(session, cand)
    if not missing:
        await run.state.set_state(None)
        if cand.statut != "complete":  # only the M2's LICENCE entry is left
            await run.say(text, keyboards.main_menu())
        return
    await run.state.set_state(f"piece:{cand.id}:{missing[0]}")
    await run.say(t("bot.pieces.envoyez", libelle=_label(missing[0])), keyboards.cancel_only())


async def _choose(bot: Bot, chat_id: int, c: Candidat, session: AsyncSession) -> None:
    cands = [x for x in await candidatures.candidatures_of(session, c) if x.statut not in CLOSED]
    if not cands:
        await bot.send_message(
            chat_id, t("bot.pieces.aucune_candidature"), reply_markup=keyboards.main_menu()
        )
        return
    if len(cands) == 1:
        text, markup, _ = await _pieces_view(session, cands[0])
        await bot.send_message(chat_id, text, reply_markup=markup)
        return
    rows = [
        [
            InlineKeyboardButton(
                text=t("bot.bouton_voir", reference=candidatures.reference(x.id))
                + f" — {candidatures.type_label(x.type)}",
                callback_data=f"pc:{x.id}",
            )
        ]
        for x in cands
    ]
    await bot.send_message(
        chat_id,
        t("bot.pieces.choisir_candidature"),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
    )


@router.message(Command("pieces"))
async def pieces_cmd(message: Message, bot: Bot, state: FSMContext, session: AsyncSession) -> None:
    assert message.from_user is not None
    c = await _require(bot, message.chat.id, session, message.from_user.id)
    if c is not None:
        await state.set_state(None)
        await _choose(bot, message.chat.id, c, session)


@router.callback_query(F.data == "m:pieces")
async def pieces_button(query: CallbackQuery, bot: Bot, session: AsyncSession) -> None:
    assert query.message is not None
    await query.answer()
    c = await _require(bot, query.message.chat.id, session, query.from_user.id)
    if c is not None:
        await _choose(bot, query.message.chat.id, c, session)


@router.callback_query(F.data.startswith("pc:"))
async def pieces_of(query: CallbackQuery, bot: Bot, session: AsyncSession) -> None:
    assert query.message is not None and query.data is not None
    await query.answer()
    c = await _require(bot, query.message.chat.id, session, query.from_user.id)
    if c is None:
        return
    try:
        cand = await candidatures.owned(session, c, int(query.data[3:]))
    except (DomainError, ValueError):
        await query.message.answer(t("bot.etape_expiree"), reply_markup=keyboards.main_menu())
        return
    text, markup, _ = await _pieces_view(session, cand)
    await query.message.answer(text, reply_markup=markup)


@router.callback_query(F.data.startswith("p:"))
async def piece_chosen(
    query: CallbackQuery, bot: Bot, state: FSMContext, session: AsyncSession
) -> None:
    assert query.message is not None and query.data is not None
    await query.answer()
    c = await _require(bot, query.message.chat.id, session, query.from_user.id)
    parts = query.data.split(":")
    if c is None or len(parts) != 3 or not parts[1].isdigit():
        return
    try:
        cand = await candidatures.owned(session, c, int(parts[1]))
    except DomainError as err:
        await query.message.answer(str(err))
        return
    if parts[2] not in required_pieces(cand.type):
        await query.message.answer(t("bot.etape_expiree"), reply_markup=keyboards.main_menu())
        return
    await state.set_state(f"piece:{cand.id}:{parts[2]}")
    await query.message.answer(
        t("bot.pieces.envoyez", libelle=_label(parts[2])), reply_markup=keyboards.cancel_only()
    )


async def download(bot: Bot, message: Message) -> bytes:
    """The file of a document or photo, refusing what is too big before fetching it."""
    if message.document is not None:
        file_id, size = message.document.file_id, message.document.file_size or 0
    else:
        assert message.photo
        best = message.photo[-1]
        file_id, size = best.file_id, best.file_size or 0
    if size > TELEGRAM_DOWNLOAD_LIMIT:
        raise InvalidInput("bot.fichier_trop_gros_telegram")
    if size > MAX_PIECE_BYTES:
        raise InvalidInput("candidats.fichier_trop_gros", taille_mo=round(size / 2**20, 1))
    buf = io.BytesIO()
    await bot.download(file_id, destination=buf)
    return buf.getvalue()


class PieceState:
    @staticmethod
    def parse(state: str | None) -> tuple[int, str] | None:
        if not state or not state.startswith("piece:"):
            return None
        _, cid, kind = state.split(":", 2)
        return (int(cid), kind) if cid.isdigit() else None


async def _in_piece_state(message: Message, raw_state: str | None = None) -> bool:
    return PieceState.parse(raw_state) is not None


@router.message(_in_piece_state, F.media_group_id)
async def piece_album(message: Message) -> None:
    from bot.handlers.fallback import album

    await album(message)


@router.message(_in_piece_state, F.document | F.photo)
async def piece_file(
    message: Message,
    bot: Bot,
    state: FSMContext,
    session: AsyncSession,
    store: FileStore,
    **data: Any,
) -> None:
    assert message.from_user is not None
    parsed = PieceState.parse(await state.get_state())
    assert parsed is not None
    c = await _require(bot, message.chat.id, session, message.from_user.id)
    if c is None:
        return
    cand_id, kind = parsed
    try:
        cand = await candidatures.owned(session, c, cand_id)
        content = await download(bot, message)
        await candidatures.add_piece(session, store, cand, kind, content)
    except DomainError as err:
        await message.answer(t("bot.correction", message=str(err)))
        return
    await message.answer(t("bot.pieces.recue", libelle=_label(kind)))
    run = make_run(bot, message.chat.id, state, {**data, "session": session})
    if cand.statut == "complete":
        await state.set_state(None)
        text, markup, _ = await _pieces_view(session, cand)
        await message.answer(
            t("bot.pieces.complete", reference=candidatures.reference(cand.id)) + "\n\n" + text,
            reply_markup=markup,
        )
        return
    await ask_next_piece(run, cand.id)


@router.message(_in_piece_state)
async def piece_expected(message: Message, state: FSMContext) -> None:
    parsed = PieceState.parse(await state.get_state())
    assert parsed is not None
    await message.answer(
        t("bot.pieces.envoyez", libelle=_label(parsed[1])), reply_markup=keyboards.cancel_only()
    )


# --- diplomas -----------------------------------------------------------------------------


def _year(text: str, _v: Values) -> int:
    s = text.strip()
    if not (s.isdigit() and len(s) == 4):
        raise InvalidInput("bot.diplomes.annee_invalide", valeur=s)
    return int(s)


def _free_text(text: str, _v: Values) -> str:
    s = " ".join(text.split())
    if len(s) < 2:
        raise InvalidInput("bot.diplomes.texte_requis")
    return s[:200]


async def _diploma_done(run: FormRun, v: Values) -> None:
    session, store, c = run.data["session"], run.data["store"], await run.candidat()
    assert c is not None  # the form is only started for a validated candidate
    d = await candidatures.save_diplome(
        session,
        store,
        c,
        candidatures.DiplomeInput(
            v["type"], v.get("intitule"), v.get("annee"), v.get("etablissement")
        ),
        diplome_id=v.get("_edit"),
    )
    await run.state.set_state(f"diplome:{d.id}")
    await run.say(
        t("bot.diplomes.enregistre") + "\n" + t("bot.diplomes.copie"),
        InlineKeyboardMarkup(
            inline_keyboard=[
                [InlineKeyboardButton(text=t("bot.bouton_passer"), callback_data="dp:skip")]
            ]
        ),
    )


DIPLOME = register(
    Form(
        name="diplome",
        steps=[
            Step(
                "type",
                "choice",
                lambda _v: t("bot.diplomes.type"),
                choices=lambda _v: [(x, x.replace("_", " ")) for x in DIPLOME_TYPES],
                label=t("bot.diplomes.champ_type"),
            ),
            Step(
                "intitule",
                "text",
                lambda _v: t("bot.diplomes.intitule"),
                parse=_free_text,
                label=t("bot.diplomes.champ_intitule"),
            ),
            Step(
                "annee",
                "text",
                lambda _v: t("bot.diplomes.annee"),
                parse=_year,
                label=t("bot.diplomes.champ_annee"),
            ),
            Step(
                "etablissement",
                "text",
                lambda _v: t("bot.diplomes.etablissement"),
                parse=_free_text,
                label=t("bot.diplomes.champ_etablissement"),
            ),
        ],
        on_done=_diploma_done,
    )
)


async def _diplomas(bot: Bot, chat_id: int, c: Candidat, session: AsyncSession) -> None:
    from sqlalchemy import select

    from core.models import Diplome

    ds = (
        await session.scalars(
            select(Diplome).where(Diplome.candidat_id == c.id).order_by(Diplome.id)
        )
    ).all()
    items = [
        {
            "type": d.type,
            "intitule": d.intitule,
            "annee": d.annee,
            "copie": d.copie_sha256 is not None,
        }
        for d in ds
    ]
    rows = [
        [
            InlineKeyboardButton(
                text=t("bot.diplomes.modifier", type=d.type, annee=d.annee),
                callback_data=f"dm:{d.id}",
            )
        ]
        for d in ds
    ]
    rows.append(
        [InlineKeyboardButton(text=t("bot.bouton_ajouter_diplome"), callback_data="dm:new")]
    )
    rows.append([InlineKeyboardButton(text=t("bot.bouton_menu"), callback_data="m:menu")])
    await bot.send_message(
        chat_id,
        t("bot.diplomes.liste", diplomes=items),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
    )


@router.message(Command("diplomes"))
async def diplomas_cmd(
    message: Message, bot: Bot, state: FSMContext, session: AsyncSession
) -> None:
    assert message.from_user is not None
    c = await _require(bot, message.chat.id, session, message.from_user.id)
    if c is not None:
        await state.set_state(None)
        await _diplomas(bot, message.chat.id, c, session)


@router.callback_query(F.data == "m:diplomes")
async def diplomas_button(query: CallbackQuery, bot: Bot, session: AsyncSession) -> None:
    assert query.message is not None
    await query.answer()
    c = await _require(bot, query.message.chat.id, session, query.from_user.id)
    if c is not None:
        await _diplomas(bot, query.message.chat.id, c, session)


@router.callback_query(F.data.startswith("dm:"))
async def diploma_edit(
    query: CallbackQuery, bot: Bot, state: FSMContext, session: AsyncSession, **data: Any
) -> None:
    from core.models import Diplome

    assert query.message is not None and query.data is not None
    await query.answer()
    c = await _require(bot, query.message.chat.id, session, query.from_user.id)
    if c is None:
        return
    run = make_run(bot, query.message.chat.id, state, {**data, "session": session, "candidat": c})
    arg = query.data[3:]
    if arg == "new":
        await engine.start(run, "diplome")
        return
    d = await session.get(Diplome, int(arg)) if arg.isdigit() else None
    if d is None or d.candidat_id != c.id:
        await query.message.answer(t("bot.etape_expiree"), reply_markup=keyboards.main_menu())
        return
    await engine.start(
        run,
        "diplome",
        {
            "_edit": d.id,
            "type": d.type,
            "intitule": d.intitule,
            "annee": d.annee,
            "etablissement": d.etablissement,
        },
    )


async def _in_diploma_state(message: Any, raw_state: str | None = None) -> bool:
    return bool(raw_state and raw_state.startswith("diplome:"))


@router.callback_query(_in_diploma_state, F.data == "dp:skip")
async def diploma_skip(query: CallbackQuery, state: FSMContext) -> None:
    assert query.message is not None
    await query.answer()
    await state.set_state(None)
    await query.message.answer(t("bot.diplomes.enregistre"), reply_markup=keyboards.main_menu())


@router.message(_in_diploma_state, F.document | F.photo)
async def diploma_copy(
    message: Message, bot: Bot, state: FSMContext, session: AsyncSession, store: FileStore
) -> None:
    from core.models import Diplome

    assert message.from_user is not None
    c = await _require(bot, message.chat.id, session, message.from_user.id)
    raw = await state.get_state() or ""
    d = await session.get(Diplome, int(raw.split(":")[1]))
    if c is None or d is None or d.candidat_id != c.id:
        await state.set_state(None)
        return
    try:
        content = await download(bot, message)
        await candidatures.save_diplome(
            session,
            store,
            c,
            candidatures.DiplomeInput(d.type, d.intitule, d.annee, d.etablissement),
            copie=content,
            diplome_id=d.id,
        )
    except DomainError as err:
        await message.answer(t("bot.correction", message=str(err)))
        return
    await state.set_state(None)
    await message.answer(t("bot.diplomes.copie_recue"), reply_markup=keyboards.main_menu())


@router.message(_in_diploma_state)
async def diploma_copy_expected(message: Message) -> None:
    await message.answer(
        t("bot.diplomes.copie"),
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[
                [InlineKeyboardButton(text=t("bot.bouton_passer"), callback_data="dp:skip")]
            ]
        ),
    )
