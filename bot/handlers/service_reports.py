"""Service commands (domain §3) — every handler runs behind the service guard.

/perimetre, /couverture (paged, filtered, a decision's detail with its timeline picture),
/anomalies, /cas, /pial, /indicateurs, /eleve, /aesh, /etablissement (and its PDF by mail),
/pv. Every figure is computed from the caller's perimeter at the moment of the request;
buttons carry no right of their own (each press recomputes from the caller's perimeter).

Privacy (domain 1): students appear as initials and file id; full names only in the
decision and student detail views, and only where the department set
`parametres_departement.valeurs["noms_complets"]`. Every message that carries student data
(and the user's own /eleve message, which holds a name) is recorded for deletion after
`settings.chat_retention_hours` (24 h by default); `delete_expired_messages` carries it out.
Nothing here logs a student's name: logs say which command ran, for which service user id.

Callback data stay within Telegram's 64 bytes: list state travels as a short string
(page, type, secteur index, one PIAL or établissement RNE), ids as they are stored.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot, F, methods
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.methods.base import Response
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.handlers.service_auth import guarded
from core.config import Settings
from core.dates import SchoolYear, parse_date, today_paris
from core.errors import DomainError
from core.models import Etablissement, ServiceUser
from core.models.base import utcnow
from core.repositories import agesh
from core.rules.anomalies import TYPES as ANOMALY_TYPES
from core.rules.coverage import INDIVIDUELLE, MUTUALISEE
from core.services import access, charts, chat_retention, documents, lookup, outbox, reports
from core.services.access import Caller
from core.services.storage import FileStore
from core.texts import render, t

router = guarded("service_reports")
log = logging.getLogger("aesh.bot.service")

# aiosqlite logs every statement with its parameters at DEBUG, students' names among them: in
# a process serving these commands it stays at INFO or above, whatever the root level.
_driver_log = logging.getLogger("aiosqlite")
if _driver_log.level < logging.INFO:  # NOTSET included: it would inherit the root's level
    _driver_log.setLevel(logging.INFO)

# aiogram validates every Bot API answer with `Response[T]`. Pydantic keeps parametrised
# models only through weak references, so once an answer is gone the garbage collector frees
# its model class and the next call builds it again: 10 to 25 ms of schema building per
# getUpdates or sendMessage, most of a /couverture answer. Held here, they are built once.
_RESPONSE_MODELS = tuple(
    Response[m.__returning__]
    for m in (
        methods.GetUpdates,
        methods.GetMe,
        methods.SendMessage,
        methods.SendPhoto,
        methods.SendDocument,
        methods.EditMessageText,
        methods.EditMessageReplyMarkup,
        methods.AnswerCallbackQuery,
        methods.DeleteMessage,
        methods.SetMyCommands,
    )
)

PAGE = 10
MENU_PAGE = 8
CALLBACK_LIMIT = 64
ETAB_CC_STATE = "service:etab_cc"
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


# --- plumbing ------------------------------------------------------------------------------


def cb(*parts: object) -> str:
    """Callback data; refused above Telegram's 64 bytes rather than cut by the client."""
    data = ":".join(str(p) for p in parts)
    if len(data.encode()) > CALLBACK_LIMIT:
        raise ValueError(f"callback data over {CALLBACK_LIMIT} bytes ({len(data.encode())})")
    return data


def _button(text: str, *parts: object) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text[:120], callback_data=cb(*parts))


def _rows(buttons: Sequence[InlineKeyboardButton], width: int) -> list[list[InlineKeyboardButton]]:
    return [list(buttons[i : i + width]) for i in range(0, len(buttons), width)]


def _pages(total: int, size: int = PAGE) -> int:
    return max(1, math.ceil(total / size))


def _clamp_page(page: int, total: int, size: int = PAGE) -> int:
    return min(max(0, page), _pages(total, size) - 1)


def _nav(page: int, total: int, make: Any, size: int = PAGE) -> list[InlineKeyboardButton]:
    """◀ n/N ▶, the arrows only where there is somewhere to go; `make(page)` → data parts."""
    pages = _pages(total, size)
    if pages <= 1:
        return []
    row = []
    if page > 0:
        row.append(_button(t("service_reports.precedent"), *make(page - 1)))
    row.append(_button(t("service_reports.page", page=page + 1, pages=pages), *make(page)))
    if page < pages - 1:
        row.append(_button(t("service_reports.suivant"), *make(page + 1)))
    return row


def _year() -> SchoolYear:
    return SchoolYear.current()


def _retention_hours(settings: Settings) -> float | None:
    # `chat_retention_hours` (AESH_CHAT_RETENTION_HOURS) is read when Settings has it.
    value = getattr(settings, "chat_retention_hours", None)
    return float(value) if value is not None else None


def _keep(session: AsyncSession, settings: Settings, message: Message | None) -> None:
    """Schedule the deletion of a message carrying student data (committed with the update)."""
    if message is not None:
        chat_retention.record(
            session, message.chat.id, message.message_id, hours=_retention_hours(settings)
        )


async def _show(
    query: CallbackQuery,
    text: str,
    markup: InlineKeyboardMarkup | None,
    session: AsyncSession,
    settings: Settings,
    *,
    keep: bool,
) -> None:
    """Replace the pressed message's content (lists page in place)."""
    msg = query.message
    if not isinstance(msg, Message):
        return
    try:
        await msg.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as err:
        if "not modified" not in str(err):
            raise
    if keep:
        # Already scheduled when first sent, unless it started without student data.
        _keep(session, settings, msg)


async def _ack(query: CallbackQuery) -> None:
    # A press answered late (the bot was restarted meanwhile) is still carried out.
    with contextlib.suppress(TelegramBadRequest):
        await query.answer()


def _chat_id(query: CallbackQuery) -> int:
    msg = query.message
    return msg.chat.id if msg is not None else query.from_user.id


def _pct(value: float | None) -> str:
    if value is None:
        return "—"
    # Rounded down: 99.6 % must not read as a complete 100 %.
    return str(math.floor(value * 100 + 1e-9))


def _type_label(kind: str, short: bool = False) -> str:
    key = "type_court_" if short else "type_"
    return t(f"service_reports.{key}{'individuelle' if kind == INDIVIDUELLE else 'mutualisee'}")


def _scope(caller: Caller) -> str:
    return access.describe_perimeter(caller)


def _log(command: str, caller: Caller) -> None:
    log.info("service command %s by service user %s (%s)", command, caller.user_id, caller.role)


# --- deletion of expired messages ------------------------------------------------------------


async def delete_expired_messages(
    bot: Bot, sessionmaker: async_sessionmaker[AsyncSession], now: datetime | None = None
) -> int:
    """Delete the chat messages whose retention has run out; returns how many were deleted.

    Meant for the bot's background loop (every minute or so). A message Telegram can no
    longer delete (already gone, older than 48 h) is forgotten; a network failure leaves it
    for the next round.
    """
    now = now or utcnow()
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    deleted = 0
    async with sessionmaker() as session:
        items = await chat_retention.due(session, now)
        done: list[int] = []
        for item in items:
            if item.chat_id == 0:
                done.append(item.row_id)
                continue
            try:
                await bot.delete_message(item.chat_id, item.message_id)
                deleted += 1
                done.append(item.row_id)
            except TelegramBadRequest:
                # Already deleted by the user, or too old: nothing more can be done.
                done.append(item.row_id)
            except TelegramForbiddenError:
                if now - item.sent_at > chat_retention.TELEGRAM_LIMIT:
                    done.append(item.row_id)
            except (TelegramNetworkError, TelegramRetryAfter, TelegramServerError):
                log.warning("message deletion postponed: Telegram unreachable")
                break
        await chat_retention.forget(session, done)
        await session.commit()
    if deleted:
        log.info("deleted %s expired chat message(s)", deleted)
    return deleted


# --- /perimetre --------------------------------------------------------------------------------


def _mask_of(secteurs: Sequence[str], chosen: frozenset[str] | None) -> int:
    return sum(1 << i for i, s in enumerate(secteurs) if chosen and s in chosen)


def _perimetre_view(
    caller: Caller, secteurs: Sequence[str], mask: int, note: str | None = None
) -> tuple[str, InlineKeyboardMarkup | None]:
    consigne = note
    markup = None
    if caller.role == "coordonnateur":
        consigne = consigne or t("access.perimetre_pial")
    elif not secteurs:
        consigne = consigne or t("service_reports.perimetre.aucun_secteur")
    else:
        consigne = (note + "\n" if note else "") + t("service_reports.perimetre.choisir")
        buttons = [
            _button(
                t(
                    "service_reports.perimetre.bouton_secteur",
                    choisi=bool(mask >> i & 1),
                    secteur=s,
                ),
                "pe",
                "t",
                i,
                format(mask, "x"),
            )
            for i, s in enumerate(secteurs)
        ]
        rows = _rows(buttons, 2)
        everything = (
            "service_reports.perimetre.tout"
            if caller.secteurs_accordes is None
            else "service_reports.perimetre.tout_accorde"
        )
        rows.append(
            [
                _button(t("service_reports.perimetre.valider"), "pe", "v", format(mask, "x")),
                _button(t(everything), "pe", "a"),
            ]
        )
        markup = InlineKeyboardMarkup(inline_keyboard=rows)
    text = render(
        "bot/service_perimetre.txt.j2",
        perimetre=_scope(caller),
        accordes=sorted(caller.secteurs_accordes or ()),
        consigne=consigne,
    )
    return text, markup


@router.message(Command("perimetre"))
async def perimetre(message: Message, caller: Caller, session: AsyncSession) -> None:
    _log("perimetre", caller)
    secteurs = await access.secteurs_disponibles(session, caller)
    narrowed = caller.secteurs if caller.secteurs != caller.secteurs_accordes else None
    text, markup = _perimetre_view(caller, secteurs, _mask_of(secteurs, narrowed))
    await message.answer(text, reply_markup=markup)


@router.callback_query(F.data.startswith("pe:"))
async def perimetre_button(
    query: CallbackQuery, caller: Caller, session: AsyncSession, settings: Settings
) -> None:
    await _ack(query)
    parts = (query.data or "").split(":")
    secteurs = await access.secteurs_disponibles(session, caller)
    try:
        if parts[1] == "t":
            index = int(parts[2])
            if not 0 <= index < len(secteurs):
                return  # an old or forged button: a huge shift would cost memory
            mask = int(parts[3], 16) ^ (1 << index)
            text, markup = _perimetre_view(caller, secteurs, mask)
        elif parts[1] in ("v", "a"):
            mask = int(parts[2], 16) if parts[1] == "v" else 0
            chosen = [s for i, s in enumerate(secteurs) if mask >> i & 1]
            caller = await access.narrow(session, caller, chosen or None)
            narrowed = caller.secteurs if caller.secteurs != caller.secteurs_accordes else None
            text, markup = _perimetre_view(
                caller,
                secteurs,
                _mask_of(secteurs, narrowed),
                note=t("service_reports.perimetre.enregistre"),
            )
        else:
            return
    except (IndexError, ValueError):
        return
    except DomainError as err:
        await _show(query, str(err), None, session, settings, keep=False)
        return
    await _show(query, text, markup, session, settings, keep=False)


# --- /couverture -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoverageState:
    """Where a coverage list stands; encoded as `page.type.secteur.place` in buttons.

    type: "-" | "i" | "m"; secteur: index into `secteurs_disponibles` or "-"; place: "-",
    "P<rne>" (a PIAL) or "E<rne>" (an établissement) — one of the two only: an établissement
    already fixes its PIAL, and keeping one RNE keeps the data within 64 bytes.
    """

    page: int = 0
    type: str = "-"
    secteur: int | None = None
    pial: str | None = None
    etab: str | None = None

    def encode(self) -> str:
        place = f"P{self.pial}" if self.pial else f"E{self.etab}" if self.etab else "-"
        sec = "-" if self.secteur is None else str(self.secteur)
        return f"{self.page}.{self.type}.{sec}.{place}"

    @classmethod
    def decode(cls, text: str) -> CoverageState:
        page, kind, sec, place = text.split(".", 3)
        return cls(
            page=max(0, int(page)),
            type=kind if kind in ("i", "m") else "-",
            secteur=None if sec == "-" else int(sec),
            pial=place[1:] if place.startswith("P") and len(place) > 1 else None,
            etab=place[1:] if place.startswith("E") and len(place) > 1 else None,
        )

    @property
    def filtered(self) -> bool:
        return self.type != "-" or self.secteur is not None or bool(self.pial or self.etab)


_TYPES = {"i": INDIVIDUELLE, "m": MUTUALISEE}


async def _coverage_rows(
    session: AsyncSession, caller: Caller, st: CoverageState, secteurs: Sequence[str]
) -> list[dict[str, Any]]:
    year = _year()
    p = caller.perimeter
    if st.secteur is not None:
        # An index from an older list may point elsewhere now: never wider than the caller.
        chosen = secteurs[st.secteur] if 0 <= st.secteur < len(secteurs) else "\x00"
        p = p.narrowed(secteurs=frozenset({chosen}))
    if st.pial:
        p = p.narrowed(pial_rne=st.pial)
    rep = await reports.coverage_report(session, p, year, today_paris())
    rows: list[dict[str, Any]] = rep["decisions"]
    if st.type in _TYPES:
        rows = [r for r in rows if r["type"] == _TYPES[st.type]]
    if st.etab:
        schooled = await lookup.eleves_schooled_in(session, st.etab, year)
        rows = [r for r in rows if r["eleve_id"] in schooled]
    return rows


async def _coverage_view(
    session: AsyncSession, caller: Caller, st: CoverageState
) -> tuple[str, InlineKeyboardMarkup]:
    secteurs = await access.secteurs_disponibles(session, caller)
    rows = await _coverage_rows(session, caller, st, secteurs)
    page = _clamp_page(st.page, len(rows))
    st = replace(st, page=page)
    chunk = rows[page * PAGE : (page + 1) * PAGE]
    briefs = await lookup.eleves(session, (r["eleve_id"] for r in chunk))
    lines = []
    for r in chunk:
        b = briefs.get(r["eleve_id"])
        lines.append(
            {
                "emoji": t(f"service_reports.emoji.{r['etat']}"),
                "label": b.label() if b else r["eleve_id"],
                "type": _type_label(r["type"], short=True),
                "heures": r["heures"] if r["type"] == INDIVIDUELLE else None,
                "couverture": _pct(r["couverture"]),
                "decision_id": r["decision_id"],
            }
        )
    filtres = []
    names: dict[str, str] = {}
    if st.pial or st.etab:
        names = await lookup.etablissement_names(session, [x for x in (st.pial, st.etab) if x])
    if st.type in _TYPES:
        filtres.append(_type_label(_TYPES[st.type]))
    if st.secteur is not None and 0 <= st.secteur < len(secteurs):
        filtres.append(secteurs[st.secteur])
    if st.pial:
        filtres.append(
            t("service_reports.couverture.filtre_pial", valeur=names.get(st.pial, st.pial))
        )
    if st.etab:
        filtres.append(names.get(st.etab, st.etab))
    text = render(
        "bot/service_couverture.txt.j2",
        annee=_year().label,
        perimetre=_scope(caller),
        filtres=filtres,
        lignes=lines,
        total=len(rows),
        page=page + 1,
        pages=_pages(len(rows)),
    )
    state = st.encode()
    kb: list[list[InlineKeyboardButton]] = _rows(
        [_button(line["label"], "cd", line["decision_id"]) for line in lines], 2
    )
    nav = _nav(page, len(rows), lambda p: ("cv", "l", replace(st, page=p).encode()))
    if nav:
        kb.append(nav)
    tous = t("service_reports.tous")
    filters = [
        _button(
            t(
                "service_reports.couverture.filtre_type",
                valeur=_type_label(_TYPES[st.type], short=True) if st.type in _TYPES else tous,
            ),
            "cv",
            "Ft0",
            state,
        ),
    ]
    if secteurs and caller.role != "coordonnateur":
        filters.append(
            _button(
                t(
                    "service_reports.couverture.filtre_secteur",
                    valeur=secteurs[st.secteur]
                    if st.secteur is not None and 0 <= st.secteur < len(secteurs)
                    else tous,
                ),
                "cv",
                "Fs0",
                state,
            )
        )
    if caller.role != "coordonnateur":
        filters.append(
            _button(
                t(
                    "service_reports.couverture.filtre_pial",
                    valeur=names.get(st.pial, st.pial) if st.pial else t("service_reports.tous"),
                ),
                "cv",
                "Fp0",
                state,
            )
        )
    filters.append(
        _button(
            t(
                "service_reports.couverture.filtre_etablissement",
                valeur=names.get(st.etab, st.etab) if st.etab else tous,
            ),
            "cv",
            "Fe0",
            state,
        )
    )
    kb += _rows(filters, 2)
    if st.filtered:
        kb.append(
            [
                _button(
                    t("service_reports.couverture.effacer_filtres"),
                    "cv",
                    "l",
                    CoverageState().encode(),
                )
            ]
        )
    return text, InlineKeyboardMarkup(inline_keyboard=kb)


async def _filter_menu(
    session: AsyncSession, caller: Caller, st: CoverageState, kind: str, page: int
) -> tuple[str, InlineKeyboardMarkup]:
    state = replace(st, page=0)
    options: list[tuple[str, str]]  # (value, label); value "-" clears the filter
    if kind == "t":
        prompt = "service_reports.couverture.choisir_type"
        options = [
            ("-", t("service_reports.tous")),
            ("i", _type_label(INDIVIDUELLE)),
            ("m", _type_label(MUTUALISEE)),
        ]
    elif kind == "s":
        prompt = "service_reports.couverture.choisir_secteur"
        secteurs = await access.secteurs_disponibles(session, caller)
        options = [("-", t("service_reports.tous")), *((str(i), s) for i, s in enumerate(secteurs))]
    elif kind == "p":
        prompt = "service_reports.couverture.choisir_pial"
        rnes = [rne for rne, _ in await agesh.pials(session, caller.perimeter)]
        names = await lookup.pial_names(session, rnes)
        named = sorted(
            ((rne, f"{names.get(rne, rne)} ({rne})") for rne in rnes), key=lambda o: o[1]
        )
        options = [("-", t("service_reports.tous")), *named]
    else:
        prompt = "service_reports.couverture.choisir_etablissement"
        p = caller.perimeter
        if st.pial:
            p = p.narrowed(pial_rne=st.pial)
        etabs = await lookup.etablissements_of_decisions(session, p, _year())
        options = [
            ("-", t("service_reports.toutes")),
            *((rne, f"{nom} ({rne})") for rne, nom in etabs),
        ]
    page = _clamp_page(page, len(options), MENU_PAGE)
    chunk = options[page * MENU_PAGE : (page + 1) * MENU_PAGE]
    kb = [[_button(label, "cv", f"S{kind}{value}", state.encode())] for value, label in chunk]
    nav = _nav(page, len(options), lambda p: ("cv", f"F{kind}{p}", state.encode()), MENU_PAGE)
    if nav:
        kb.append(nav)
    kb.append([_button(t("service_reports.retour"), "cv", "l", st.encode())])
    text = t(prompt) if len(options) > 1 else t("service_reports.couverture.aucun_choix")
    return text, InlineKeyboardMarkup(inline_keyboard=kb)


def _apply_filter(st: CoverageState, kind: str, value: str) -> CoverageState:
    clear = value == "-"
    st = replace(st, page=0)
    if kind == "t":
        return replace(st, type="-" if clear else value)
    if kind == "s":
        return replace(st, secteur=None if clear else int(value))
    if kind == "p":
        return replace(st, pial=None if clear else value, etab=None)
    return replace(st, etab=None if clear else value, pial=None if not clear else st.pial)


@router.message(Command("couverture"))
async def couverture(
    message: Message, caller: Caller, session: AsyncSession, settings: Settings
) -> None:
    _log("couverture", caller)
    text, markup = await _coverage_view(session, caller, CoverageState())
    _keep(session, settings, await message.answer(text, reply_markup=markup))


@router.callback_query(F.data.startswith("cv:"))
async def couverture_button(
    query: CallbackQuery, caller: Caller, session: AsyncSession, settings: Settings
) -> None:
    await _ack(query)
    try:
        _, action, encoded = (query.data or "").split(":", 2)
        st = CoverageState.decode(encoded)
        if action == "l":
            text, markup = await _coverage_view(session, caller, st)
        elif action.startswith("F") and len(action) >= 3:
            text, markup = await _filter_menu(session, caller, st, action[1], int(action[2:]))
        elif action.startswith("S") and len(action) >= 3:
            st = _apply_filter(st, action[1], action[2:])
            text, markup = await _coverage_view(session, caller, st)
        else:
            return
    except ValueError:
        return
    await _show(query, text, markup, session, settings, keep=True)


# --- a decision's detail -----------------------------------------------------------------------


async def _send_decision(
    bot: Bot, chat_id: int, session: AsyncSession, settings: Settings, caller: Caller, did: str
) -> None:
    today = today_paris()
    d = await lookup.decision_detail(session, caller.perimeter, did, today)
    if d is None:
        await bot.send_message(chat_id, t("accompagnements.decision_inconnue", decision_id=did))
        return
    full = await lookup.full_names_allowed(session, caller.departement)
    text = render(
        "bot/service_decision.txt.j2",
        d=d,
        eleve=d.eleve.label(full),
        naissance=d.eleve.date_naissance if full else None,
        type=_type_label(d.type),
        couverture=_pct(d.couverture),
        priorite=f"{d.priorite:.2f}".replace(".", ","),
        emoji=t(f"service_reports.emoji.{d.etat}"),
        etat=t(f"service_reports.etat.{d.etat}"),
    )
    _keep(session, settings, await bot.send_message(chat_id, text))
    png = charts.timeline_png(
        d.segments,
        d.debut,
        d.fin,
        today,
        t(
            "service_reports.graphique.titre_chronologie",
            decision_id=d.id,
            debut=d.debut,
            fin=d.fin,
        ),
    )
    photo = await bot.send_photo(
        chat_id,
        BufferedInputFile(png, f"chronologie-{d.id}.png"),
        caption=t(
            "service_reports.graphique.legende_chronologie", decision_id=d.id, eleve=d.eleve.label()
        ),
    )
    _keep(session, settings, photo)


@router.callback_query(F.data.startswith("cd:"))
async def decision_button(
    query: CallbackQuery, bot: Bot, caller: Caller, session: AsyncSession, settings: Settings
) -> None:
    await _ack(query)
    _log("decision", caller)
    await _send_decision(bot, _chat_id(query), session, settings, caller, (query.data or "")[3:])


# --- /anomalies --------------------------------------------------------------------------------


async def _anomalies_view(
    session: AsyncSession, caller: Caller, kind: int | None, page: int
) -> tuple[str, InlineKeyboardMarkup | None, bool]:
    """(text, keyboard, carries student data)."""
    year = _year()
    rep = await reports.anomalies_report(session, caller.perimeter, year)
    counts = rep["counts"]
    back = [_button(t("service_reports.retour"), "an", "c", 0)]
    if kind is None:
        comptes = [
            {"type": k, "libelle": t(f"anomalies.libelle_{k}"), "nombre": counts[str(k)]}
            for k in ANOMALY_TYPES
        ]
        buttons = [
            _button(
                t(
                    "service_reports.anomalies.voir",
                    type=c["type"],
                    libelle=c["libelle"],
                    nombre=c["nombre"],
                ),
                "an",
                c["type"],
                0,
            )
            for c in comptes
            if c["nombre"]
        ]
        text = render(
            "bot/service_anomalies.txt.j2",
            annee=year.label,
            perimetre=_scope(caller),
            comptes=comptes,
        )
        return text, InlineKeyboardMarkup(inline_keyboard=_rows(buttons, 1)), False
    items = [i for i in rep["items"] if i["type"] == kind]
    page = _clamp_page(page, len(items))
    chunk = items[page * PAGE : (page + 1) * PAGE]
    students = await lookup.accompaniment_students(session, (i["accompagnement_id"] for i in chunk))
    briefs = await lookup.eleves(session, (e for ids in students.values() for e in ids))
    shown = [
        {
            "accompagnement_id": i["accompagnement_id"],
            "detail": i["detail"],
            "eleves": [
                briefs[e].label()
                for e in sorted(students.get(i["accompagnement_id"], []))
                if e in briefs
            ],
        }
        for i in chunk
    ]
    text = render(
        "bot/service_anomalies_liste.txt.j2",
        type=kind,
        libelle=t(f"anomalies.libelle_{kind}"),
        annee=year.label,
        items=shown,
        total=len(items),
        page=page + 1,
        pages=_pages(len(items)),
    )
    kb = []
    nav = _nav(page, len(items), lambda p: ("an", kind, p))
    if nav:
        kb.append(nav)
    kb.append(back)
    return text, InlineKeyboardMarkup(inline_keyboard=kb), True


@router.message(Command("anomalies"))
async def anomalies(message: Message, caller: Caller, session: AsyncSession) -> None:
    _log("anomalies", caller)
    text, markup, _ = await _anomalies_view(session, caller, None, 0)
    await message.answer(text, reply_markup=markup)


@router.callback_query(F.data.startswith("an:"))
async def anomalies_button(
    query: CallbackQuery, caller: Caller, session: AsyncSession, settings: Settings
) -> None:
    await _ack(query)
    try:
        _, kind, page = (query.data or "").split(":")
        text, markup, personal = await _anomalies_view(
            session, caller, None if kind == "c" else int(kind), int(page)
        )
    except ValueError:
        return
    await _show(query, text, markup, session, settings, keep=personal)


# --- /cas ------------------------------------------------------------------------------------


_CAS = {"n": "non_couvertes_apres_accompagnement", "e": "echeance_non_renouvelee"}
_CAS_TITLES = {
    "n": "service_reports.cas.titre_non_couvertes",
    "e": "service_reports.cas.titre_echeances",
}
_CAS_BUTTONS = {
    "n": "service_reports.cas.voir_non_couvertes",
    "e": "service_reports.cas.voir_echeances",
}


async def _cas_lines(session: AsyncSession, ids: Sequence[str]) -> list[str]:
    decs = await lookup.decision_students(session, ids)
    briefs = await lookup.eleves(session, (v[0] for v in decs.values()))
    out = []
    for did in ids:
        eid, debut, fin = decs.get(did, ("", None, None))
        who = briefs[eid].label() if eid in briefs else eid
        dates = f" — du {debut:%d/%m/%Y} au {fin:%d/%m/%Y}" if debut and fin else ""
        out.append(f"{did} — {who}{dates}")
    return out


async def _cas_view(
    session: AsyncSession, caller: Caller, section: str | None, page: int
) -> tuple[str, InlineKeyboardMarkup]:
    year = _year()
    rep = await reports.cas_particuliers_report(session, caller.perimeter, year)
    kb: list[list[InlineKeyboardButton]] = []
    if section is None:
        sections = []
        for key, field in _CAS.items():
            ids = rep[field]
            sections.append(
                {
                    "titre": t(_CAS_TITLES[key]),
                    "total": len(ids),
                    "lignes": await _cas_lines(session, ids[:PAGE]),
                }
            )
            if ids:
                kb.append([_button(t(_CAS_BUTTONS[key], nombre=len(ids)), "ca", key, 0)])
        text = render(
            "bot/service_cas.txt.j2",
            annee=year.label,
            perimetre=_scope(caller),
            sections=sections,
            page=None,
            pages=None,
        )
        return text, InlineKeyboardMarkup(inline_keyboard=kb)
    ids = rep[_CAS[section]]
    page = _clamp_page(page, len(ids))
    chunk = ids[page * PAGE : (page + 1) * PAGE]
    lines = await _cas_lines(session, chunk)
    text = render(
        "bot/service_cas.txt.j2",
        annee=year.label,
        perimetre=_scope(caller),
        sections=[{"titre": t(_CAS_TITLES[section]), "total": len(chunk), "lignes": lines}],
        page=page + 1,
        pages=_pages(len(ids)),
    )
    kb = _rows([_button(did, "cd", did) for did in chunk], 2)
    nav = _nav(page, len(ids), lambda p: ("ca", section, p))
    if nav:
        kb.append(nav)
    kb.append([_button(t("service_reports.retour"), "ca", "c", 0)])
    return text, InlineKeyboardMarkup(inline_keyboard=kb)


@router.message(Command("cas"))
async def cas(message: Message, caller: Caller, session: AsyncSession, settings: Settings) -> None:
    _log("cas", caller)
    text, markup = await _cas_view(session, caller, None, 0)
    _keep(session, settings, await message.answer(text, reply_markup=markup))


@router.callback_query(F.data.startswith("ca:"))
async def cas_button(
    query: CallbackQuery, caller: Caller, session: AsyncSession, settings: Settings
) -> None:
    await _ack(query)
    try:
        _, section, page = (query.data or "").split(":")
        text, markup = await _cas_view(
            session, caller, section if section in _CAS else None, int(page)
        )
    except ValueError:
        return
    await _show(query, text, markup, session, settings, keep=True)


# --- /pial -----------------------------------------------------------------------------------


def _hours(value: float | None) -> float:
    return round(value or 0.0, 1)


@router.message(Command("pial"))
async def pial(message: Message, caller: Caller, session: AsyncSession) -> None:
    _log("pial", caller)
    year = _year()
    rep = await reports.pial_report(session, caller.perimeter, year)
    names = await lookup.pial_names(session, (p["pial_rne"] for p in rep["pials"]))
    pials = [
        {
            "rne": p["pial_rne"],
            "nom": names.get(p["pial_rne"], p["pial_rne"]),
            "nb_individuelles": p["nb_individuelles"],
            "nb_mutualisees": p["nb_mutualisees"],
            "besoin": _hours(p["besoin_moyen"]),
            "moyens": _hours(p["moyens_moyen"]),
            "couverture": _pct(p["couverture_moyenne"]) + " %"
            if p["couverture_moyenne"] is not None
            else "—",
        }
        for p in rep["pials"]
    ]
    dep = rep["departement"]
    text = render(
        "bot/service_pial.txt.j2",
        annee=year.label,
        perimetre=_scope(caller),
        pials=pials,
        dep={
            "nb_individuelles": dep["nb_individuelles"],
            "nb_mutualisees": dep["nb_mutualisees"],
            "besoin": _hours(dep["besoin_moyen"]),
            "moyens": _hours(dep["moyens_moyen"]),
            "couverture": _pct(dep["couverture_moyenne"]) + " %"
            if dep["couverture_moyenne"] is not None
            else "—",
        },
    )
    buttons = [
        _button(t("service_reports.pial.bouton_missions", nom=p["nom"]), "pm", p["rne"], 0, "n")
        for p in pials
    ]
    await message.answer(text, reply_markup=InlineKeyboardMarkup(inline_keyboard=_rows(buttons, 1)))


async def _pial_missions_view(
    session: AsyncSession, caller: Caller, rne: str, page: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    year = _year()
    missions = await lookup.pial_missions(session, caller.perimeter, rne, year)
    if missions is None:
        return t("service_reports.introuvable"), None
    names = await lookup.pial_names(session, [rne])
    page = _clamp_page(page, len(missions), 15)
    text = render(
        "bot/service_pial_missions.txt.j2",
        nom=names.get(rne, rne),
        rne=rne,
        annee=year.label,
        missions=missions[page * 15 : (page + 1) * 15],
        total=len(missions),
        page=page + 1,
        pages=_pages(len(missions), 15),
    )
    nav = _nav(page, len(missions), lambda p: ("pm", rne, p, "e"), 15)
    return text, InlineKeyboardMarkup(inline_keyboard=[nav] if nav else [])


@router.callback_query(F.data.startswith("pm:"))
async def pial_missions_button(
    query: CallbackQuery, bot: Bot, caller: Caller, session: AsyncSession, settings: Settings
) -> None:
    await _ack(query)
    try:
        _, rne, page, where = (query.data or "").split(":")
        text, markup = await _pial_missions_view(session, caller, rne, int(page))
    except ValueError:
        return
    # From the /pial message: a new message (the table stays); from its own arrows: in place.
    if where == "e":
        await _show(query, text, markup, session, settings, keep=False)
    else:
        await bot.send_message(_chat_id(query), text, reply_markup=markup)


# --- /indicateurs ------------------------------------------------------------------------------


@router.message(Command("indicateurs"))
async def indicateurs(message: Message, bot: Bot, caller: Caller, session: AsyncSession) -> None:
    _log("indicateurs", caller)
    year = _year()
    rep = await reports.indicateurs_report(session, caller.perimeter, year)
    mois = [
        {"libelle": f"{_MONTHS[int(k[5:7]) - 1]} {k[:4]}", "nombre": v}
        for k, v in rep["par_mois"].items()
    ]
    text = render(
        "bot/service_indicateurs.txt.j2",
        annee=year.label,
        perimetre=_scope(caller),
        total=rep["total"],
        sans=rep["sans_accompagnement"],
        avec=rep["avec_accompagnement"],
        mois=mois,
    )
    await message.answer(text)
    png = charts.monthly_bars_png(
        rep["par_mois"], t("service_reports.graphique.titre_mensuel", annee=year.label)
    )
    await bot.send_photo(
        message.chat.id,
        BufferedInputFile(png, f"indicateurs-{year.label}.png"),
        caption=t(
            "service_reports.graphique.legende_mensuel", annee=year.label, perimetre=_scope(caller)
        ),
    )


# --- /eleve ----------------------------------------------------------------------------------


_DATE = re.compile(r"^\d{1,2}/\d{1,2}/\d{4}$|^\d{4}-\d{2}-\d{2}$")


async def _send_eleve(
    bot: Bot, chat_id: int, session: AsyncSession, settings: Settings, caller: Caller, eid: str
) -> None:
    detail = await lookup.eleve_detail(session, caller.perimeter, eid)
    if detail is None:
        await bot.send_message(chat_id, t("service_reports.introuvable"))
        return
    full = await lookup.full_names_allowed(session, caller.departement)
    text = render(
        "bot/service_eleve.txt.j2",
        e=detail.eleve,
        eleve=detail.eleve.label(full),
        naissance=detail.eleve.date_naissance if full else None,
        etat_dossier={"gele": "gelé", "cloture": "clôturé"}.get(
            detail.eleve.dossier_etat, detail.eleve.dossier_etat
        ),
        scolarisations=detail.scolarisations,
        decisions=[
            {
                "id": d.id,
                "type": _type_label(d.type),
                "debut": d.debut,
                "fin": d.fin,
                "heures": d.heures if d.type == INDIVIDUELLE else None,
            }
            for d in detail.decisions
        ],
    )
    buttons = [_button(d.id, "cd", d.id) for d in detail.decisions]
    sent = await bot.send_message(
        chat_id, text, reply_markup=InlineKeyboardMarkup(inline_keyboard=_rows(buttons, 2))
    )
    _keep(session, settings, sent)


@router.message(Command("eleve"))
async def eleve(
    message: Message,
    command: CommandObject,
    bot: Bot,
    caller: Caller,
    session: AsyncSession,
    settings: Settings,
) -> None:
    _log("eleve", caller)
    # The request itself holds a student's name: it leaves the chat like the answer.
    _keep(session, settings, message)
    words = (command.args or "").split()
    naissance = None
    if words and _DATE.match(words[-1]):
        raw = words.pop()
        try:
            naissance = parse_date(raw)
        except ValueError:
            await message.answer(t("service_reports.eleve.date_invalide", valeur=raw))
            return
    if len(words) < 2:
        await message.answer(t("service_reports.eleve.usage"))
        return
    grant = replace(caller, secteurs=caller.secteurs_accordes).perimeter
    found = await lookup.search_eleves(session, caller.perimeter, grant, words, naissance)
    if len(found.visibles) == 1:
        await _send_eleve(bot, message.chat.id, session, settings, caller, found.visibles[0].id)
        return
    if found.visibles:
        buttons = [_button(e.label(), "ev", e.id) for e in found.visibles[:20]]
        sent = await message.answer(
            t("service_reports.eleve.plusieurs"),
            reply_markup=InlineKeyboardMarkup(inline_keyboard=_rows(buttons, 1)),
        )
        _keep(session, settings, sent)
        return
    text = t("service_reports.eleve.aucun", naissance=naissance is not None)
    if found.hors_selection:
        text += "\n" + t("service_reports.eleve.hors_selection", nombre=found.hors_selection)
    await message.answer(text)


@router.callback_query(F.data.startswith("ev:"))
async def eleve_button(
    query: CallbackQuery, bot: Bot, caller: Caller, session: AsyncSession, settings: Settings
) -> None:
    await _ack(query)
    await _send_eleve(bot, _chat_id(query), session, settings, caller, (query.data or "")[3:])


# --- /aesh -----------------------------------------------------------------------------------


async def _send_aesh(
    bot: Bot, chat_id: int, session: AsyncSession, settings: Settings, caller: Caller, aid: str
) -> None:
    detail = await lookup.aesh_detail(session, caller.perimeter, aid, _year(), today_paris())
    if detail is None:
        await bot.send_message(chat_id, t("service_reports.aesh.aucun"))
        return
    text = render(
        "bot/service_aesh.txt.j2",
        a=detail.aesh,
        commune=detail.commune,
        missions=detail.missions,
        accompagnements=[
            {**x.__dict__, "eleves": [e.label() for e in x.eleves]} for x in detail.accompagnements
        ],
        hors_perimetre=detail.hors_perimetre,
        hebdo=detail.heures_hebdo,
        utilisees=detail.heures_utilisees,
        occupation={k: t(f"service_reports.aesh.{k}") for k in ("libre", "partielle", "pleine")},
    )
    _keep(session, settings, await bot.send_message(chat_id, text))


@router.message(Command("aesh"))
async def aesh(
    message: Message,
    command: CommandObject,
    bot: Bot,
    caller: Caller,
    session: AsyncSession,
    settings: Settings,
) -> None:
    _log("aesh", caller)
    query = (command.args or "").strip()
    if not query:
        await message.answer(t("service_reports.aesh.usage"))
        return
    found = await lookup.find_aesh(session, caller.perimeter, query, _year())
    if not found:
        await message.answer(t("service_reports.aesh.aucun"))
    elif len(found) == 1:
        await _send_aesh(bot, message.chat.id, session, settings, caller, found[0].id)
    else:
        buttons = [
            _button(f"{a.nom} {a.prenom}{'' if a.actif else ' [I]'} — {a.id}", "ah", a.id)
            for a in found[:30]
        ]
        await message.answer(
            t("service_reports.aesh.plusieurs"),
            reply_markup=InlineKeyboardMarkup(inline_keyboard=_rows(buttons, 1)),
        )


@router.callback_query(F.data.startswith("ah:"))
async def aesh_button(
    query: CallbackQuery, bot: Bot, caller: Caller, session: AsyncSession, settings: Settings
) -> None:
    await _ack(query)
    await _send_aesh(bot, _chat_id(query), session, settings, caller, (query.data or "")[3:])


# --- /etablissement --------------------------------------------------------------------------


@router.message(Command("etablissement"))
async def etablissement(
    message: Message,
    command: CommandObject,
    caller: Caller,
    session: AsyncSession,
    settings: Settings,
) -> None:
    _log("etablissement", caller)
    rne = (command.args or "").strip().upper()
    if not rne or len(rne) > 16:
        await message.answer(t("service_reports.etablissement.usage"))
        return
    try:
        summary = await documents.etablissement_data(session, caller.perimeter, rne, _year())
    except DomainError as err:
        await message.answer(str(err))
        return
    email = await session.scalar(select(Etablissement.email).where(Etablissement.rne == rne))
    text = render("bot/service_etablissement.txt.j2", s=summary, email=email)
    markup = None
    if email:
        markup = InlineKeyboardMarkup(
            inline_keyboard=[
                [_button(t("service_reports.etablissement.bouton_envoyer"), "es", rne)]
            ]
        )
    _keep(session, settings, await message.answer(text, reply_markup=markup))


@router.callback_query(F.data.startswith("es:"))
async def etablissement_send_button(
    query: CallbackQuery, caller: Caller, session: AsyncSession, state: FSMContext
) -> None:
    await _ack(query)
    rne = (query.data or "")[3:]
    etab = await session.get(Etablissement, rne)
    visible = etab is not None and (
        etab.departement == caller.departement
        and (caller.pial_rne is None or etab.pial_rne == caller.pial_rne)
    )
    msg = query.message
    if not isinstance(msg, Message):
        return
    if not visible or etab is None:
        await msg.answer(t("documents.etablissement_inconnu", rne=rne))
        return
    if not etab.email:
        await msg.answer(t("service_reports.etablissement.sans_adresse"))
        return
    await state.set_state(ETAB_CC_STATE)
    await state.update_data(etab_cc=rne)
    await msg.answer(
        t("service_reports.etablissement.demander_copie", email=etab.email),
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[
                [_button(t("service_reports.etablissement.sans_copie"), "ec", "-")],
                [_button(t("service_reports.etablissement.annuler"), "ec", "x")],
            ]
        ),
    )


async def _mail_summary(
    bot: Bot,
    chat_id: int,
    session: AsyncSession,
    settings: Settings,
    store: FileStore,
    caller: Caller,
    state: FSMContext,
    cc: list[str],
) -> None:
    data = await state.get_data()
    rne = str(data.get("etab_cc") or "")
    await state.set_state(None)
    await state.update_data(etab_cc=None)
    etab = await session.get(Etablissement, rne) if rne else None
    if etab is None or not etab.email:
        await bot.send_message(chat_id, t("bot.etape_expiree"))
        return
    year = _year()
    try:
        pdf = await documents.etablissement_summary(session, caller.perimeter, rne, year)
    except DomainError as err:
        await bot.send_message(chat_id, str(err))
        return
    digest = store.put(pdf)
    path = store.path(digest).relative_to(store.root)
    champs = await _cartouche_email(session, etab.departement)
    await outbox.enqueue(
        session,
        settings,
        outbox.MailDraft(
            kind="etablissement_summary",
            to=etab.email,
            cc=cc,
            context={
                "annee": year.label,
                "etablissement_nom": etab.nom,
                "rne": etab.rne,
                "service_nom": t("mail.service_nom"),
                "contact_email": champs or settings.mail_from,
            },
            attachments=[
                outbox.Attachment(
                    f"synthese-{etab.rne}-{year.label}.pdf", "application/pdf", str(path)
                )
            ],
        ),
    )
    log.info("établissement summary queued by service user %s", caller.user_id)
    await bot.send_message(
        chat_id,
        t(
            "service_reports.etablissement.envoyee",
            annee=year.label,
            nom=etab.nom,
            email=etab.email,
            cc=", ".join(cc),
        ),
    )


async def _cartouche_email(session: AsyncSession, departement: str) -> str | None:
    from core.services.parametres import cartouche

    return (await cartouche(session, departement)).get("email") or None


@router.callback_query(F.data.startswith("ec:"))
async def etablissement_cc_button(
    query: CallbackQuery,
    bot: Bot,
    caller: Caller,
    session: AsyncSession,
    settings: Settings,
    store: FileStore,
    state: FSMContext,
) -> None:
    await _ack(query)
    msg = query.message
    if isinstance(msg, Message):
        with contextlib.suppress(TelegramBadRequest):
            await msg.edit_reply_markup(reply_markup=None)
    if await state.get_state() != ETAB_CC_STATE:
        await bot.send_message(_chat_id(query), t("bot.etape_expiree"))
        return
    if (query.data or "") == "ec:x":
        await state.set_state(None)
        await bot.send_message(_chat_id(query), t("service_reports.etablissement.annule"))
        return
    await _mail_summary(bot, _chat_id(query), session, settings, store, caller, state, [])


@router.message(StateFilter(ETAB_CC_STATE), F.text, ~F.text.startswith("/"))
async def etablissement_cc_typed(
    message: Message,
    bot: Bot,
    caller: Caller,
    session: AsyncSession,
    settings: Settings,
    store: FileStore,
    state: FSMContext,
) -> None:
    address = (message.text or "").strip()
    if not _EMAIL.match(address):
        await message.answer(t("service_reports.etablissement.copie_invalide", valeur=address))
        return
    await _mail_summary(bot, message.chat.id, session, settings, store, caller, state, [address])


# --- /pv ---------------------------------------------------------------------------------------


@router.message(Command("pv"))
async def pv(
    message: Message,
    command: CommandObject,
    bot: Bot,
    caller: Caller,
    session: AsyncSession,
    settings: Settings,
) -> None:
    _log("pv", caller)
    acc_id = (command.args or "").strip()
    if not acc_id or len(acc_id) > 32:
        await message.answer(t("service_reports.pv.usage"))
        return
    issuer = await session.get(ServiceUser, caller.user_id)
    try:
        pdf = await documents.pv_affectation(session, caller.perimeter, acc_id, issuer=issuer)
    except DomainError as err:
        await message.answer(str(err))
        return
    sent = await bot.send_document(
        message.chat.id,
        BufferedInputFile(pdf, f"PV-affectation-{acc_id}.pdf"),
        caption=t("service_reports.pv.legende", accompagnement_id=acc_id),
    )
    _keep(session, settings, sent)
