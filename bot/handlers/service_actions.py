"""Service commands that change things (domain §2.8, §3) — every handler runs behind the
service guard, and every rule is a core service's: handlers translate.

Commands: /accompagner, /accompagnement, /affecter, /import, /parametres, /candidats.

Callback data (Telegram allows 64 bytes):
- public entry points, usable as buttons by any view: `ac:<decision_id>` (place an
  accompaniment for this decision), `ao:<accompagnement_id>` (show it with its actions),
  `pv:<accompagnement_id>` (its PV d'affectation PDF; answered here unless service_reports,
  which comes first in the dispatcher, gets a handler of its own);
- `am:<accompagnement_id>:<d|i|m>`: modify dates/hours, insert a period, maintien;
- `pa:…`: /parametres views; `cn:…`: /candidats list, filters, file and review;
- `sa:<nonce>:<action>[:<arg>]`: steps of the running dialog. The nonce changes with every
  step drawn, so a button of an older step (a double tap, a message from before a restart)
  is recognised and refused instead of acting twice.

Dialog state: FSM state `sa:<flow>` and the flow's values in the FSM data under `sa`; the
storage is the database, so a dialog survives a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import html
import io
import json
import tempfile
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, Filter
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.handlers.service_auth import guarded
from core.config import Settings
from core.dates import SchoolYear, parse_date
from core.errors import DomainError, InvalidInput
from core.models import Aesh, Mission, ParametreAnnee, ParametreDepartement, ServiceUser
from core.rules import accompaniment as acc_rules
from core.rules.candidature_options import zones_for
from core.rules.files import TELEGRAM_DOWNLOAD_LIMIT
from core.rules.formula import DEFAULT_FORMULA
from core.services import accompagnements, chat_retention, documents, parametres
from core.services import missions_disponibles as dispo
from core.services import revue_candidatures as revue
from core.services.access import Caller
from core.services.candidatures import type_label
from core.services.imports import KINDS, ImportRefused, import_file
from core.services.storage import FileStore
from core.texts import has, render, t

router: Router = guarded("service_actions")

MISSIONS_PAR_PAGE = 8
MISSIONS_GARDEES = 40  # the list is a choice, not a report: the nearest are enough
PIALS_PAR_PAGE = 10
CANDIDATS_PAR_PAGE = 10
IMPORT_MAX_BYTES = 50 * 1024 * 1024
CARTOUCHE_MAX_BYTES = 100 * 1024
PROGRESS_INTERVAL = 1.0  # seconds between two edits of the progress message


# --- small helpers --------------------------------------------------------------------------


def _b(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data)


def _kb(rows: list[list[InlineKeyboardButton]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[r for r in rows if r])


def _eleve(prenom: str | None, nom: str | None, eleve_id: str) -> str:
    """Privacy by default in chat (domain §1): initials and file id only."""
    return f"{documents.initiales(prenom, nom)} — {eleve_id}"


def _heures(text: str) -> float:
    s = text.strip().lower().removesuffix("h").strip().replace(",", ".")
    try:
        value = float(s)
    except ValueError:
        raise InvalidInput("actions.heures_illisibles", valeur=text.strip()) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidInput("actions.heures_illisibles", valeur=text.strip())
    return value


def _date(text: str) -> date:
    try:
        return parse_date(text)
    except ValueError:
        raise InvalidInput("actions.date_illisible", valeur=text.strip()) from None


def _fr(d: date | str | None) -> str:
    if d is None:
        return ""
    value = date.fromisoformat(d) if isinstance(d, str) else d
    return f"{value:%d/%m/%Y}"


def _h(value: float | None) -> str:
    return "" if value is None else f"{value:g}".replace(".", ",") + " h"


async def _answer(event: Message | CallbackQuery, text: str, **kw: Any) -> Message | None:
    if isinstance(event, CallbackQuery):
        with contextlib.suppress(TelegramBadRequest):
            await event.answer()
        if event.message is None:
            return None
        return await event.message.answer(text, **kw)
    return await event.answer(text, **kw)


def _keep(session: AsyncSession, settings: Settings, message: Message | None) -> None:
    """Schedule the deletion of a message that names a student (domain §1: after 24 h by
    default), in the update's transaction — as service_reports does."""
    if message is not None:
        hours = getattr(settings, "chat_retention_hours", None)
        chat_retention.record(
            session,
            message.chat.id,
            message.message_id,
            hours=None if hours is None else float(hours),
        )


def _chat_id(event: Message | CallbackQuery) -> int:
    if isinstance(event, CallbackQuery):
        assert event.message is not None
        return event.message.chat.id
    return event.chat.id


# --- dialog state ---------------------------------------------------------------------------


class InFlow(Filter):
    """The chat is in one of this module's dialogs (`sa:<flow>`), optionally a given one."""

    def __init__(self, *flows: str) -> None:
        self.flows = flows

    async def __call__(self, event: Any, raw_state: str | None = None) -> bool:
        if not raw_state or not raw_state.startswith("sa:"):
            return False
        return not self.flows or raw_state[3:] in self.flows


async def _flow(state: FSMContext) -> dict[str, Any]:
    return dict((await state.get_data()).get("sa") or {})


async def _save(state: FSMContext, flow: dict[str, Any], *, step: bool = True) -> int:
    """Store the flow; a new step gets a new nonce (older buttons then read as expired)."""
    data = await state.get_data()
    nonce = int(data.get("sa_nonce", 0)) + (1 if step else 0)
    await state.set_state(f"sa:{flow['k']}")
    await state.set_data({**data, "sa": flow, "sa_nonce": nonce})
    return nonce


async def _end(state: FSMContext) -> None:
    data = await state.get_data()
    await state.set_state(None)
    await state.set_data({"sa_nonce": data.get("sa_nonce", 0), "nonce": data.get("nonce", 0)})


def _cb(nonce: int, action: str, arg: str | int = "") -> str:
    return f"sa:{nonce}:{action}:{arg}"


def _cancel_row(nonce: int) -> list[InlineKeyboardButton]:
    return [_b(t("actions.bouton_annuler"), _cb(nonce, "x"))]


# --- text input steps (dates, hours, formula …) --------------------------------------------

# name -> (parser, prompt key). A step shows its default with a "keep" button when it has one.
FIELDS: dict[str, tuple[Callable[[str], Any], str]] = {
    "debut": (_date, "actions.saisie_debut"),
    "fin": (_date, "actions.saisie_fin"),
    "heures": (_heures, "actions.saisie_heures"),
    "mission": (lambda s: s.strip(), "actions.saisie_mission"),
    "volume": (_heures, "actions.saisie_volume"),
    "reference": (_heures, "actions.saisie_reference"),
    "formule": (lambda s: s.strip(), "actions.saisie_formule"),
    "champ": (lambda s: " ".join(s.split()), "actions.saisie_champ"),
}


def _shown(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name in ("debut", "fin"):
        return _fr(value)
    if name in ("heures", "volume", "reference"):
        return _h(float(value))
    return str(value)


async def _ask(event: Message | CallbackQuery, state: FSMContext, flow: dict[str, Any]) -> None:
    """Prompt for the next field of `flow["ask"]`."""
    name = flow["ask"][0]
    nonce = await _save(state, flow)
    default = flow.get("defaults", {}).get(name)
    rows = []
    if default is not None and default != "":
        label = flow.get("keep_label") if name == "volume" else None
        rows.append(
            [_b(label or t("actions.bouton_garder", valeur=_shown(name, default)), _cb(nonce, "g"))]
        )
    rows.append(_cancel_row(nonce))
    prompt = t(FIELDS[name][1], **flow.get("prompt", {}))
    await _answer(event, prompt, reply_markup=_kb(rows))


async def _take(
    event: Message | CallbackQuery,
    state: FSMContext,
    flow: dict[str, Any],
    value: Any,
    **data: Any,
) -> None:
    name = flow["ask"].pop(0)
    flow.setdefault("values", {})[name] = value.isoformat() if isinstance(value, date) else value
    if flow["ask"]:
        await _ask(event, state, flow)
        return
    await _complete(event, state, flow, **data)


async def _complete(
    event: Message | CallbackQuery, state: FSMContext, flow: dict[str, Any], **data: Any
) -> None:
    finisher = FINISHERS[flow["k"]]
    try:
        await finisher(event, state, flow, **data)
    except DomainError as err:
        # Refused by core (nothing written): ask again. With several fields, what was typed
        # becomes the default (one of them is wrong, the others need not be typed again).
        if len(flow["fields"]) > 1:
            flow["defaults"] = {**flow.get("defaults", {}), **flow.get("values", {})}
        flow["ask"] = list(flow["fields"])
        flow["values"] = {}
        await _answer(event, t("actions.refus", message=str(err)))
        await _ask(event, state, flow)


def _start_input(
    k: str, fields: list[str], defaults: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {"k": k, "fields": fields, "ask": list(fields), "defaults": defaults, **extra}


@router.callback_query(F.data.startswith("sa:"))
async def flow_button(
    query: CallbackQuery, state: FSMContext, caller: Caller, session: AsyncSession, **data: Any
) -> None:
    assert query.data is not None
    parts = query.data.split(":", 3)
    flow = await _flow(state)
    current = int((await state.get_data()).get("sa_nonce", 0))
    if len(parts) < 3 or not parts[1].isdigit() or int(parts[1]) != current or not flow:
        await query.answer(t("actions.bouton_expire"), show_alert=True)
        return
    action, arg = parts[2], (parts[3] if len(parts) > 3 else "")
    if action == "x":
        await _end(state)
        await _answer(query, t("actions.annule"))
        return
    if action == "g" and flow.get("ask"):
        name = flow["ask"][0]
        default = flow.get("defaults", {}).get(name)
        value = date.fromisoformat(default) if name in ("debut", "fin") else default
        await query.answer()
        await _take(query, state, flow, value, caller=caller, session=session, **data)
        return
    handler = BUTTONS.get((flow["k"], action))
    if handler is None:
        await query.answer(t("actions.bouton_expire"), show_alert=True)
        return
    await handler(query, state, flow, arg, caller=caller, session=session, **data)


# --- 1. create an accompaniment from a decision --------------------------------------------


def _may_write(caller: Caller) -> bool:
    return caller.can_write_accompagnements


@router.message(Command("accompagner"))
async def accompagner_cmd(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    caller: Caller,
    session: AsyncSession,
    settings: Settings,
) -> None:
    args = (command.args or "").split()
    if not args:
        await message.answer(t("actions.accompagner_usage"))
        return
    await _start_accompagner(message, state, caller, session, settings, args[0], args[1:2])


@router.callback_query(F.data.startswith("ac:"))
async def accompagner_button(
    query: CallbackQuery,
    state: FSMContext,
    caller: Caller,
    session: AsyncSession,
    settings: Settings,
) -> None:
    assert query.data is not None
    await _start_accompagner(query, state, caller, session, settings, query.data[3:], [])


async def _start_accompagner(
    event: Message | CallbackQuery,
    state: FSMContext,
    caller: Caller,
    session: AsyncSession,
    settings: Settings,
    decision_id: str,
    mission: list[str],
) -> None:
    if not _may_write(caller):
        await _answer(event, t("actions.refus_ecriture"))
        return
    try:
        ctx = await dispo.contexte(session, caller.perimeter, decision_id)
    except DomainError as err:
        await _answer(event, str(err))
        return
    flow: dict[str, Any] = {
        "k": "acc",
        "decision_id": ctx.decision.id,
        "type": ctx.decision.type,
        "dec_heures": ctx.decision.heures,
        "eleve": _eleve(ctx.eleve_prenom, ctx.eleve_nom, ctx.eleve_id),
        "rne": ctx.rne,
        "etab": ctx.etablissement_nom,
        "pial": ctx.pial_rne,
        "periode": [ctx.periode.debut.isoformat(), ctx.periode.fin.isoformat()],
        "page": 0,
    }
    if mission:
        # A mission typed by hand skips the list: core says whether the rules allow it.
        m = await session.get(Mission, mission[0])
        if m is None:
            await _answer(event, t("accompagnements.mission_inconnue", mission_id=mission[0]))
            return
        aesh = await session.get(Aesh, m.aesh_id)
        label = t(
            "actions.libelle_mission",
            m={
                "id": m.id,
                "aesh": f"{aesh.nom} {aesh.prenom}" if aesh is not None else m.aesh_id,
                "nature": m.nature,
                "contrat": m.contrat,
                "prev": m.previsionnel,
            },
        )
        flow["missions"] = []
        _choose_mission(flow, m.id, m.contrat, m.fin, m.heures, label)
        await _show_confirmation(event, state, flow, session, settings)
        return
    found = await dispo.missions_disponibles(session, ctx)
    if not found:
        sent = await _answer(
            event,
            render("bot/action_missions.j2", f=flow, missions=[], page=0, pages=1, debut=0),
        )
        _keep(session, settings, sent)
        return
    flow["missions"] = [
        {
            "id": m.mission_id,
            "aesh": f"{m.aesh_nom} {m.aesh_prenom}",
            "nature": m.nature,
            "contrat": m.contrat,
            "fin": m.fin.isoformat() if m.fin else None,
            "heures": m.heures,
            "libres": round(m.heures_libres, 2),
            "km": None if m.distance_km is None else round(m.distance_km, 1),
            "prev": m.previsionnel,
        }
        for m in found[:MISSIONS_GARDEES]
    ]
    await _show_missions(event, state, flow, session, settings)


async def _show_missions(
    event: Message | CallbackQuery,
    state: FSMContext,
    flow: dict[str, Any],
    session: AsyncSession,
    settings: Settings,
) -> None:
    flow.pop("ask", None)
    nonce = await _save(state, flow)
    missions = flow["missions"]
    pages = max(1, -(-len(missions) // MISSIONS_PAR_PAGE))
    page = min(int(flow.get("page", 0)), pages - 1)
    start = page * MISSIONS_PAR_PAGE
    shown = missions[start : start + MISSIONS_PAR_PAGE]
    rows = [
        [_b(t("actions.bouton_mission", n=start + i + 1, m=m), _cb(nonce, "m", start + i))]
        for i, m in enumerate(shown)
    ]
    nav = []
    if page > 0:
        nav.append(_b(t("actions.bouton_precedent"), _cb(nonce, "p", page - 1)))
    if page < pages - 1:
        nav.append(_b(t("actions.bouton_suivant"), _cb(nonce, "p", page + 1)))
    rows += [nav, _cancel_row(nonce)]
    text = render(
        "bot/action_missions.j2", f=flow, missions=shown, page=page, pages=pages, debut=start
    )
    _keep(session, settings, await _answer(event, text, reply_markup=_kb(rows)))


def _choose_mission(
    flow: dict[str, Any],
    mission_id: str,
    contrat: str,
    fin: date | None,
    heures: float,
    label: str,
) -> None:
    debut, fin_dec = (date.fromisoformat(x) for x in flow["periode"])
    # The displayed defaults are the ones core would apply (domain 3.4: CDD end bound).
    period = acc_rules.bound_by_contract(acc_rules.Period(debut, fin_dec), contrat, fin)
    default_h = flow["dec_heures"] if flow["type"] == "individuelle" else None
    flow.update(
        mission_id=mission_id,
        mission_label=label,
        debut=period.debut.isoformat(),
        fin=period.fin.isoformat(),
        heures=default_h if default_h is not None else heures,
    )


async def _acc_mission(
    query: CallbackQuery,
    state: FSMContext,
    flow: dict[str, Any],
    arg: str,
    *,
    session: AsyncSession,
    settings: Settings,
    **_: Any,
) -> None:
    await query.answer()
    if not arg.isdigit() or int(arg) >= len(flow.get("missions", [])):
        await _answer(query, t("actions.bouton_expire"))
        return
    m = flow["missions"][int(arg)]
    fin = date.fromisoformat(m["fin"]) if m["fin"] else None
    label = t("actions.libelle_mission", m=m)
    _choose_mission(flow, m["id"], m["contrat"], fin, float(m["heures"]), label)
    await _show_confirmation(query, state, flow, session, settings)


async def _acc_page(
    query: CallbackQuery,
    state: FSMContext,
    flow: dict[str, Any],
    arg: str,
    *,
    session: AsyncSession,
    settings: Settings,
    **_: Any,
) -> None:
    await query.answer()
    flow["page"] = int(arg) if arg.isdigit() else 0
    if not flow.get("missions"):
        await _answer(query, t("actions.bouton_expire"))
        return
    await _show_missions(query, state, flow, session, settings)


async def _show_confirmation(
    event: Message | CallbackQuery,
    state: FSMContext,
    flow: dict[str, Any],
    session: AsyncSession,
    settings: Settings,
) -> None:
    flow.pop("ask", None)
    nonce = await _save(state, flow)
    rows = [
        [_b(t("actions.bouton_creer"), _cb(nonce, "ok"))],
        [_b(t("actions.bouton_modifier_periode"), _cb(nonce, "e"))],
    ]
    if flow.get("missions"):
        rows.append([_b(t("actions.bouton_autre_mission"), _cb(nonce, "p", flow.get("page", 0)))])
    rows.append(_cancel_row(nonce))
    text = render(
        "bot/action_confirmation.j2",
        f=flow,
        debut=_fr(flow["debut"]),
        fin=_fr(flow["fin"]),
        heures=_h(flow["heures"]),
    )
    _keep(session, settings, await _answer(event, text, reply_markup=_kb(rows)))


async def _acc_edit(
    query: CallbackQuery, state: FSMContext, flow: dict[str, Any], arg: str, **_: Any
) -> None:
    await query.answer()
    flow.update(
        fields=["debut", "fin", "heures"],
        ask=["debut", "fin", "heures"],
        defaults={"debut": flow["debut"], "fin": flow["fin"], "heures": flow["heures"]},
        values={},
        prompt={},
    )
    await _ask(query, state, flow)


async def _acc_edited(
    event: Message | CallbackQuery,
    state: FSMContext,
    flow: dict[str, Any],
    *,
    session: AsyncSession,
    settings: Settings,
    **_: Any,
) -> None:
    flow.update(flow.pop("values", {}))
    for key in ("fields", "defaults", "prompt"):
        flow.pop(key, None)
    await _show_confirmation(event, state, flow, session, settings)


async def _acc_create(
    query: CallbackQuery,
    state: FSMContext,
    flow: dict[str, Any],
    arg: str,
    *,
    caller: Caller,
    session: AsyncSession,
    settings: Settings,
    **_: Any,
) -> None:
    await query.answer()
    try:
        acc = await accompagnements.create(
            session,
            caller.perimeter,
            accompagnements.NewAccompagnement(
                mission_id=flow["mission_id"],
                decision_ids=[flow["decision_id"]],
                rne=flow["rne"],
                debut=date.fromisoformat(flow["debut"]),
                fin=date.fromisoformat(flow["fin"]),
                heures=float(flow["heures"]),
            ),
            created_by=caller.user_id,
        )
    except DomainError as err:
        # Core's refusal as it is; the choice stays on screen to be corrected.
        await _answer(query, t("actions.refus", message=str(err)))
        await _show_confirmation(query, state, flow, session, settings)
        return
    await _end(state)
    sent = await _answer(
        query,
        render(
            "bot/action_cree.j2",
            id=acc.id,
            f=flow,
            debut=_fr(acc.debut),
            fin=_fr(acc.fin),
            heures=_h(acc.heures),
            previsionnel=acc.previsionnel,
        ),
        reply_markup=_kb(
            [
                [_b(t("actions.bouton_pv"), f"pv:{acc.id}")],
                [_b(t("actions.bouton_voir_accompagnement"), f"ao:{acc.id}")],
            ]
        ),
    )
    _keep(session, settings, sent)


# --- 2. one accompaniment: show, modify, insert, maintien ----------------------------------


async def _show_accompagnement(
    event: Message | CallbackQuery,
    caller: Caller,
    session: AsyncSession,
    settings: Settings,
    acc_id: str,
    intro: str | None = None,
) -> None:
    try:
        vue = await dispo.vue_accompagnement(session, caller.perimeter, acc_id)
    except DomainError as err:
        await _answer(event, str(err))
        return
    text = render(
        "bot/action_accompagnement.j2",
        intro=intro,
        a=vue.acc,
        debut=_fr(vue.acc.debut),
        fin=_fr(vue.acc.fin),
        heures=_h(vue.acc.heures),
        mission=vue.mission,
        aesh=vue.aesh,
        etab=vue.etablissement,
        decisions=[
            {
                "id": d.id,
                "type": d.type,
                "eleve": _eleve(e.prenom, e.nom, e.id),
                "debut": _fr(d.debut),
                "fin": _fr(d.fin),
            }
            for d, e in vue.decisions
        ],
        voisins=[
            {
                "id": v.id,
                "debut": _fr(v.debut),
                "fin": _fr(v.fin),
                "heures": _h(v.heures),
                "mission_id": v.mission_id,
                "maintien": v.maintien,
                "courant": v.id == vue.acc.id,
            }
            for v in vue.voisins
        ],
    )
    rows = []
    if _may_write(caller):
        rows += [
            [_b(t("actions.bouton_modifier_acc"), f"am:{acc_id}:d")],
            [
                _b(t("actions.bouton_inserer"), f"am:{acc_id}:i"),
                _b(t("actions.bouton_maintien"), f"am:{acc_id}:m"),
            ],
        ]
    rows.append([_b(t("actions.bouton_pv"), f"pv:{acc_id}")])
    _keep(session, settings, await _answer(event, text, reply_markup=_kb(rows)))


@router.message(Command("accompagnement"))
async def accompagnement_cmd(
    message: Message,
    command: CommandObject,
    caller: Caller,
    session: AsyncSession,
    settings: Settings,
) -> None:
    args = (command.args or "").split()
    if not args:
        await message.answer(t("actions.accompagnement_usage"))
        return
    await _show_accompagnement(message, caller, session, settings, args[0])


@router.callback_query(F.data.startswith("ao:"))
async def accompagnement_button(
    query: CallbackQuery, caller: Caller, session: AsyncSession, settings: Settings
) -> None:
    assert query.data is not None
    await _show_accompagnement(query, caller, session, settings, query.data[3:])


@router.callback_query(F.data.startswith("am:"))
async def accompagnement_action(
    query: CallbackQuery, state: FSMContext, caller: Caller, session: AsyncSession
) -> None:
    assert query.data is not None
    acc_id, _, action = query.data[3:].rpartition(":")
    if not _may_write(caller):
        await _answer(query, t("actions.refus_ecriture"))
        return
    try:
        vue = await dispo.vue_accompagnement(session, caller.perimeter, acc_id)
    except DomainError as err:
        await _answer(query, str(err))
        return
    a = vue.acc
    prompt = {
        "id": a.id,
        "debut": _fr(a.debut),
        "fin": _fr(a.fin),
        "decision_fin": _fr(max(d.fin for d, _ in vue.decisions)),
    }
    if action == "d":
        flow = _start_input(
            "mod",
            ["debut", "fin", "heures"],
            {"debut": a.debut.isoformat(), "fin": a.fin.isoformat(), "heures": a.heures},
            acc_id=a.id,
            prompt=prompt,
        )
    elif action == "i":
        flow = _start_input(
            "ins",
            ["debut", "fin", "heures", "mission"],
            {"heures": a.heures, "mission": a.mission_id},
            acc_id=a.id,
            prompt=prompt,
        )
    elif action == "m":
        flow = _start_input("mai", ["fin"], {}, acc_id=a.id, prompt=prompt)
    else:
        await _answer(query, t("actions.bouton_expire"))
        return
    await _answer(query, t(f"actions.intro_{flow['k']}", **prompt))
    await _ask(query, state, flow)


async def _mod_done(
    event: Message | CallbackQuery,
    state: FSMContext,
    flow: dict[str, Any],
    *,
    caller: Caller,
    session: AsyncSession,
    settings: Settings,
    **_: Any,
) -> None:
    v = flow["values"]
    await accompagnements.modifier(
        session,
        caller.perimeter,
        flow["acc_id"],
        debut=date.fromisoformat(v["debut"]),
        fin=date.fromisoformat(v["fin"]),
        heures=float(v["heures"]),
    )
    await _end(state)
    await _show_accompagnement(
        event, caller, session, settings, flow["acc_id"], t("actions.modifie")
    )


async def _ins_done(
    event: Message | CallbackQuery,
    state: FSMContext,
    flow: dict[str, Any],
    *,
    caller: Caller,
    session: AsyncSession,
    settings: Settings,
    **_: Any,
) -> None:
    v = flow["values"]
    new = await accompagnements.inserer(
        session,
        caller.perimeter,
        flow["acc_id"],
        date.fromisoformat(v["debut"]),
        date.fromisoformat(v["fin"]),
        mission_id=v["mission"] or None,
        heures=float(v["heures"]),
        created_by=caller.user_id,
    )
    await _end(state)
    await _show_accompagnement(event, caller, session, settings, new.id, t("actions.insere"))


async def _mai_done(
    event: Message | CallbackQuery,
    state: FSMContext,
    flow: dict[str, Any],
    *,
    caller: Caller,
    session: AsyncSession,
    settings: Settings,
    **_: Any,
) -> None:
    await accompagnements.maintenir(
        session, caller.perimeter, flow["acc_id"], date.fromisoformat(flow["values"]["fin"])
    )
    await _end(state)
    await _show_accompagnement(
        event, caller, session, settings, flow["acc_id"], t("actions.maintenu")
    )


@router.callback_query(F.data.startswith("pv:"))
async def pv_button(
    query: CallbackQuery, bot: Bot, caller: Caller, session: AsyncSession, settings: Settings
) -> None:
    """The PV of an accompaniment, as /pv gives it. service_reports comes first in the
    dispatcher: a `pv:` handler of its own, when it has one, takes precedence."""
    assert query.data is not None
    acc_id = query.data[3:]
    await query.answer()
    issuer = await session.get(ServiceUser, caller.user_id)
    try:
        pdf = await documents.pv_affectation(session, caller.perimeter, acc_id, issuer=issuer)
    except DomainError as err:
        await _answer(query, str(err))
        return
    sent = await bot.send_document(
        _chat_id(query),
        BufferedInputFile(pdf, f"PV-affectation-{acc_id}.pdf"),
        caption=t("actions.pv_legende", accompagnement_id=acc_id),
    )
    _keep(session, settings, sent)


# --- 3. affect a mission to a PIAL ---------------------------------------------------------


@router.message(Command("affecter"))
async def affecter_cmd(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    caller: Caller,
    session: AsyncSession,
) -> None:
    if not dispo.peut_affecter(caller):
        await message.answer(t("disponibles.affectation_reservee"))
        return
    args = (command.args or "").split()
    if not args:
        await message.answer(t("actions.affecter_usage"))
        return
    try:
        year = SchoolYear.parse(args[1]) if len(args) > 1 else SchoolYear.current()
    except ValueError:
        await message.answer(t("actions.annee_illisible", valeur=args[1]))
        return
    try:
        mission = await dispo.mission_du_departement(session, caller.departement, args[0])
    except DomainError as err:
        await message.answer(str(err))
        return
    pials = await dispo.pials_du_departement(session, caller.departement)
    if not pials:
        await message.answer(t("actions.aucun_pial"))
        return
    flow = {
        "k": "aff",
        "mission_id": mission.id,
        "mission_heures": mission.heures,
        "nature": mission.nature,
        "annee": year.label,
        "pials": [list(p) for p in pials],
        "page": 0,
    }
    await _show_pials(message, state, flow)


async def _show_pials(
    event: Message | CallbackQuery, state: FSMContext, flow: dict[str, Any]
) -> None:
    nonce = await _save(state, flow)
    pials = flow["pials"]
    pages = max(1, -(-len(pials) // PIALS_PAR_PAGE))
    page = min(int(flow.get("page", 0)), pages - 1)
    start = page * PIALS_PAR_PAGE
    rows = [
        [_b(t("actions.bouton_pial", rne=rne, nom=nom), _cb(nonce, "m", start + i))]
        for i, (rne, nom) in enumerate(pials[start : start + PIALS_PAR_PAGE])
    ]
    nav = []
    if page > 0:
        nav.append(_b(t("actions.bouton_precedent"), _cb(nonce, "p", page - 1)))
    if page < pages - 1:
        nav.append(_b(t("actions.bouton_suivant"), _cb(nonce, "p", page + 1)))
    rows += [nav, _cancel_row(nonce)]
    text = t(
        "actions.affecter_choix_pial",
        mission=flow["mission_id"],
        heures=_h(flow["mission_heures"]),
        annee=flow["annee"],
        page=page + 1,
        pages=pages,
    )
    await _answer(event, text, reply_markup=_kb(rows))


async def _aff_pial(
    query: CallbackQuery, state: FSMContext, flow: dict[str, Any], arg: str, **_: Any
) -> None:
    await query.answer()
    if not arg.isdigit() or int(arg) >= len(flow["pials"]):
        await _answer(query, t("actions.bouton_expire"))
        return
    rne, nom = flow["pials"][int(arg)]
    flow.update(
        pial=rne,
        fields=["volume"],
        ask=["volume"],
        defaults={"volume": flow["mission_heures"]},
        values={},
        keep_label=t("actions.bouton_volume_complet", heures=_h(flow["mission_heures"])),
        prompt={
            "pial": rne,
            "nom": nom,
            "mission": flow["mission_id"],
            "heures": _h(flow["mission_heures"]),
        },
    )
    await _ask(query, state, flow)


async def _aff_page(
    query: CallbackQuery, state: FSMContext, flow: dict[str, Any], arg: str, **_: Any
) -> None:
    await query.answer()
    flow["page"] = int(arg) if arg.isdigit() else 0
    await _show_pials(query, state, flow)


async def _aff_done(
    event: Message | CallbackQuery,
    state: FSMContext,
    flow: dict[str, Any],
    *,
    caller: Caller,
    session: AsyncSession,
    **_: Any,
) -> None:
    volume = float(flow["values"]["volume"])
    # The full weekly hours are stored as "no volume", so that they follow the mission's.
    heures = None if abs(volume - float(flow["mission_heures"])) < 1e-9 else volume
    aff = await dispo.affecter(
        session,
        caller,
        flow["mission_id"],
        flow["pial"],
        SchoolYear.parse(flow["annee"]),
        heures,
    )
    await _end(state)
    await _answer(
        event,
        t(
            "actions.affecte",
            mission=aff.mission_id,
            pial=aff.pial_rne,
            annee=aff.annee,
            heures=_h(aff.heures if aff.heures is not None else flow["mission_heures"]),
        ),
    )


# --- 4. /import ----------------------------------------------------------------------------


def _kind(text: str | None) -> str | None:
    """`décisions`, `Decisions` or `/import decisions` → `decisions`."""
    if not text:
        return None
    words = text.split()
    if words and words[0].startswith("/"):
        words = words[1:]
    if not words:
        return None
    plain = unicodedata.normalize("NFKD", words[0]).encode("ascii", "ignore").decode().lower()
    return plain if plain in KINDS else None


class ImportProgress:
    """`progress(done, total)` for `import_file`, shown by editing one message.

    The import calls it synchronously; a companion task edits the message at most once per
    `interval` (Telegram limits edits, and a bar that moves every second is enough).
    """

    def __init__(self, show: Callable[[int], Awaitable[None]], interval: float) -> None:
        self.show = show
        self.interval = interval
        self.percent = 0
        self.shown = 0

    def __call__(self, done: int, total: int) -> None:
        self.percent = min(100, done * 100 // max(total, 1))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self.percent != self.shown:
                self.shown = self.percent
                with contextlib.suppress(TelegramBadRequest):
                    await self.show(self.percent)

    async def finish(self) -> None:
        if self.shown != 100:
            self.shown = 100
            with contextlib.suppress(TelegramBadRequest):
                await self.show(100)


def _may_import(caller: Caller) -> bool:
    return caller.can_import


def _import_prompt() -> str:
    return t("actions.import_envoyez", kinds=", ".join(KINDS))


@router.message(Command("import"), F.document)
async def import_with_caption(
    message: Message, state: FSMContext, caller: Caller, session: AsyncSession, **data: Any
) -> None:
    await import_document(message, state, caller, session, **data)


@router.message(Command("import"))
async def import_cmd(
    message: Message, command: CommandObject, state: FSMContext, caller: Caller
) -> None:
    if not _may_import(caller):
        await message.answer(t("actions.refus_import"))
        return
    await _save(state, {"k": "imp", "kind": _kind(command.args)})
    await message.answer(_import_prompt())


async def import_document(
    message: Message,
    state: FSMContext,
    caller: Caller,
    session: AsyncSession,
    *,
    bot: Bot,
    sessionmaker: async_sessionmaker[AsyncSession],
    **_: Any,
) -> None:
    assert message.document is not None
    if not _may_import(caller):
        await message.answer(t("actions.refus_import"))
        return
    doc = message.document
    size = doc.file_size or 0
    if size > IMPORT_MAX_BYTES:
        await message.answer(t("actions.import_trop_gros", taille_mo=round(size / 2**20, 1)))
        return
    # A Bot API server of our own (is_local) serves any size; Telegram's stops at 20 MB.
    if size > TELEGRAM_DOWNLOAD_LIMIT and not bot.session.api.is_local:
        await message.answer(t("actions.import_limite_telegram", taille_mo=round(size / 2**20, 1)))
        return
    flow = await _flow(state)
    kind = _kind(message.caption) or (flow.get("kind") if flow.get("k") == "imp" else None)
    if kind is None:
        flow = {"k": "imp", "file_id": doc.file_id, "file_name": doc.file_name or ""}
        nonce = await _save(state, flow)
        rows = [
            [_b(k, _cb(nonce, "k", k)) for k in KINDS[i : i + 3]] for i in range(0, len(KINDS), 3)
        ]
        rows.append(_cancel_row(nonce))
        await message.answer(t("actions.import_choix_type"), reply_markup=_kb(rows))
        return
    await _end(state)
    await _run_import(bot, message.chat.id, session, sessionmaker, kind, doc.file_id)


async def _imp_kind(
    query: CallbackQuery,
    state: FSMContext,
    flow: dict[str, Any],
    arg: str,
    *,
    caller: Caller,
    session: AsyncSession,
    bot: Bot,
    sessionmaker: async_sessionmaker[AsyncSession],
    **_: Any,
) -> None:
    await query.answer()
    if arg not in KINDS or not flow.get("file_id"):
        await _answer(query, t("actions.bouton_expire"))
        return
    if not _may_import(caller):
        await _answer(query, t("actions.refus_import"))
        return
    await _end(state)
    await _run_import(bot, _chat_id(query), session, sessionmaker, arg, flow["file_id"])


async def _run_import(
    bot: Bot,
    chat_id: int,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    kind: str,
    file_id: str,
) -> None:
    """All or nothing, in a unit of work of its own: commit on success, rollback on refusal.

    The update's own session is committed first: on SQLite it holds the write lock (the
    guard touched the agent's session), and the import needs it.
    """
    label = t(f"actions.kind_{kind}")
    with tempfile.TemporaryDirectory(prefix="aesh-import-") as tmp:
        path = Path(tmp) / f"{kind}.csv"
        try:
            await bot.download(file_id, destination=path)
        except TelegramBadRequest:
            await bot.send_message(chat_id, t("actions.import_telechargement_impossible"))
            return
        await session.commit()
        shown = await bot.send_message(chat_id, t("actions.import_progression", kind=label, pct=0))

        async def show(pct: int) -> None:
            await bot.edit_message_text(
                t("actions.import_progression", kind=label, pct=pct),
                chat_id=chat_id,
                message_id=shown.message_id,
            )

        progress = ImportProgress(show, PROGRESS_INTERVAL)
        ticker = asyncio.create_task(progress.run())
        refused: ImportRefused | None = None
        try:
            async with sessionmaker() as work:
                try:
                    report = await import_file(work, kind, path, progress=progress)
                except ImportRefused as err:
                    refused = err
                    await work.rollback()
                except BaseException:
                    await work.rollback()
                    raise
                else:
                    await work.commit()
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
    if refused is not None:
        with contextlib.suppress(TelegramBadRequest):
            await bot.edit_message_text(
                t("actions.import_progression_refus", kind=label),
                chat_id=chat_id,
                message_id=shown.message_id,
            )
        await _refused(bot, chat_id, kind, label, refused)
        return
    await progress.finish()
    await bot.send_message(chat_id, render("bot/action_import.j2", kind=label, r=report))


async def _refused(bot: Bot, chat_id: int, kind: str, label: str, refused: ImportRefused) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";")
    writer.writerow(
        [t("actions.refus_csv_ligne"), t("actions.refus_csv_colonne"), t("actions.refus_csv_motif")]
    )
    for e in refused.errors:
        writer.writerow(["" if e.row is None else e.row, e.column or "", e.message])
    # A BOM, so that a French spreadsheet opens the accents and the `;` right.
    content = ("\ufeff" + buf.getvalue()).encode("utf-8")
    await bot.send_document(
        chat_id,
        BufferedInputFile(content, f"refus-{kind}.csv"),
        caption=t("actions.import_refuse", kind=label, n=len(refused.errors)),
    )


# --- 5. /parametres (superviseur) ----------------------------------------------------------


def _cartouche_label(field: str) -> str:
    return t(f"actions.cartouche_{field}")


async def _parametres_view(
    event: Message | CallbackQuery, caller: Caller, session: AsyncSession, year: SchoolYear
) -> None:
    dep = caller.departement
    reference = await parametres.reference_for(session, dep, year)
    row = await session.get(ParametreAnnee, (dep, year.label))
    champs = await parametres.cartouche(session, dep)
    text = render(
        "bot/action_parametres.j2",
        departement=dep,
        annee=year.label,
        reference=_h(reference) if reference is not None else None,
        formule=row.formule if row is not None and row.formule else None,
        formule_defaut=DEFAULT_FORMULA,
        manquants=[_cartouche_label(f) for f in parametres.missing_cartouche_fields(champs)],
    )
    y = year.start_year
    rows = [
        [_b(t("actions.bouton_reference", annee=year.label), f"pa:r:{y}")],
        [_b(t("actions.bouton_formule", annee=year.label), f"pa:f:{y}")],
        [
            _b(t("actions.bouton_cartouche_champs"), "pa:c"),
            _b(t("actions.bouton_cartouche_json"), "pa:j"),
        ],
        [
            _b(t("actions.bouton_annee", annee=SchoolYear(y - 1).label), f"pa:v:{y - 1}"),
            _b(t("actions.bouton_annee", annee=SchoolYear(y + 1).label), f"pa:v:{y + 1}"),
        ],
    ]
    await _answer(event, text, reply_markup=_kb(rows))


@router.message(Command("parametres"))
async def parametres_cmd(
    message: Message, command: CommandObject, caller: Caller, session: AsyncSession
) -> None:
    if not caller.can_set_parametres:
        await message.answer(t("actions.refus_parametres"))
        return
    try:
        year = SchoolYear.parse(command.args) if command.args else SchoolYear.current()
    except ValueError:
        await message.answer(t("actions.annee_illisible", valeur=command.args))
        return
    await _parametres_view(message, caller, session, year)


@router.callback_query(F.data.startswith("pa:"))
async def parametres_button(
    query: CallbackQuery, state: FSMContext, caller: Caller, session: AsyncSession
) -> None:
    assert query.data is not None
    if not caller.can_set_parametres:
        await _answer(query, t("actions.refus_parametres"))
        return
    parts = query.data.split(":")
    action, arg = parts[1], (parts[2] if len(parts) > 2 else "")
    dep = caller.departement
    if action == "v" and arg.isdigit():
        await _parametres_view(query, caller, session, SchoolYear(int(arg)))
    elif action == "r" and arg.isdigit():
        year = SchoolYear(int(arg))
        current = await parametres.reference_for(session, dep, year)
        flow = _start_input(
            "ref",
            ["reference"],
            {"reference": current},
            annee=year.label,
            prompt={"annee": year.label},
        )
        await _ask(query, state, flow)
    elif action == "f" and arg.isdigit():
        year = SchoolYear(int(arg))
        row = await session.get(ParametreAnnee, (dep, year.label))
        flow = _start_input(
            "for",
            ["formule"],
            {"formule": row.formule if row is not None and row.formule else None},
            annee=year.label,
            prompt={"annee": year.label, "defaut": DEFAULT_FORMULA},
        )
        await _ask(query, state, flow)
    elif action == "c" and not arg:
        await _cartouche_fields(query, state, session, dep)
    elif action == "c" and arg in parametres.CARTOUCHE_FIELDS:
        flow = await _flow(state)
        draft = flow.get("draft", {}) if flow.get("k") == "car" else {}
        champs = {**await parametres.cartouche(session, dep), **draft}
        flow = _start_input(
            "car",
            ["champ"],
            {"champ": champs.get(arg)},
            field=arg,
            draft=draft,
            prompt={"champ": _cartouche_label(arg)},
        )
        await _ask(query, state, flow)
    elif action == "j":
        nonce = await _save(state, {"k": "json"})
        await _answer(
            query,
            t("actions.cartouche_json_envoyez", champs=", ".join(parametres.CARTOUCHE_FIELDS)),
            reply_markup=_kb([_cancel_row(nonce)]),
        )
    else:
        await _answer(query, t("actions.bouton_expire"))


async def _cartouche_fields(
    event: Message | CallbackQuery,
    state: FSMContext,
    session: AsyncSession,
    dep: str,
    draft: dict[str, str] | None = None,
) -> None:
    saved = await parametres.cartouche(session, dep)
    champs = {**saved, **(draft or {})}
    rows = [
        [
            _b(
                t(
                    "actions.bouton_champ",
                    rempli=bool(str(champs.get(f) or "").strip()),
                    libelle=_cartouche_label(f),
                ),
                f"pa:c:{f}",
            )
        ]
        for f in parametres.CARTOUCHE_FIELDS
    ]
    text = render(
        "bot/action_cartouche.j2",
        champs=[(_cartouche_label(f), champs.get(f)) for f in parametres.CARTOUCHE_FIELDS],
        brouillon=bool(draft),
        manquants=[_cartouche_label(f) for f in parametres.missing_cartouche_fields(champs)],
    )
    await _answer(event, text, reply_markup=_kb(rows))


async def _ref_done(
    event: Message | CallbackQuery,
    state: FSMContext,
    flow: dict[str, Any],
    *,
    caller: Caller,
    session: AsyncSession,
    **_: Any,
) -> None:
    heures = float(flow["values"]["reference"])
    n = await parametres.set_reference(
        session, caller.departement, SchoolYear.parse(flow["annee"]), heures
    )
    await _end(state)
    await _answer(
        event,
        t(
            "parametres.reference_enregistree",
            departement=caller.departement,
            annee=flow["annee"],
            heures=heures,
            n=n,
        ),
    )


async def _for_done(
    event: Message | CallbackQuery,
    state: FSMContext,
    flow: dict[str, Any],
    *,
    caller: Caller,
    session: AsyncSession,
    **_: Any,
) -> None:
    source = flow["values"]["formule"]
    try:
        await parametres.set_formula(
            session, caller.departement, SchoolYear.parse(flow["annee"]), source
        )
    except DomainError as err:
        # The caret under the error only lines up in a fixed-width font.
        await _answer(
            event,
            t("actions.formule_refusee", message=html.escape(str(err))),
            parse_mode="HTML",
        )
        flow.update(ask=["formule"], values={}, defaults={})
        await _ask(event, state, flow)
        return
    await _end(state)
    await _answer(
        event,
        t(
            "parametres.formule_enregistree",
            departement=caller.departement,
            annee=flow["annee"],
            formule=source,
        ),
    )


async def _car_done(
    event: Message | CallbackQuery,
    state: FSMContext,
    flow: dict[str, Any],
    *,
    caller: Caller,
    session: AsyncSession,
    **_: Any,
) -> None:
    dep = caller.departement
    draft = {**flow.get("draft", {}), flow["field"]: flow["values"]["champ"]}
    champs = {**await parametres.cartouche(session, dep), **draft}
    if parametres.missing_cartouche_fields(champs):
        # Core keeps only a complete cartouche; the fields typed so far wait in the dialog.
        await _save(state, {"k": "car", "draft": draft})
        await _cartouche_fields(event, state, session, dep, draft)
        return
    await parametres.set_cartouche(session, dep, champs)
    await _end(state)
    await _answer(event, t("parametres.cartouche_enregistree", departement=dep))


async def cartouche_json(
    message: Message,
    state: FSMContext,
    caller: Caller,
    session: AsyncSession,
    *,
    bot: Bot,
    **_: Any,
) -> None:
    assert message.document is not None
    if not caller.can_set_parametres:
        await message.answer(t("actions.refus_parametres"))
        return
    if (message.document.file_size or 0) > CARTOUCHE_MAX_BYTES:
        await message.answer(t("actions.cartouche_json_trop_gros"))
        return
    buf = io.BytesIO()
    await bot.download(message.document.file_id, destination=buf)
    try:
        champs = json.loads(buf.getvalue().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        await message.answer(t("actions.cartouche_json_illisible", erreur=str(err)))
        return
    if not isinstance(champs, dict):
        await message.answer(t("actions.cartouche_json_objet"))
        return
    try:
        await parametres.set_cartouche(session, caller.departement, champs)
    except DomainError as err:
        await message.answer(str(err))
        return
    await _end(state)
    await message.answer(t("parametres.cartouche_enregistree", departement=caller.departement))


# --- 7. /candidats -------------------------------------------------------------------------

_COMPLETUDE = {"c": True, "i": False, "-": None}


def _filters(parts: list[str]) -> tuple[str, str, str, int]:
    """`zone:statut:completude:page`, `-` meaning any."""
    z, s, c, p = ([*parts, "-", "-", "-", "0"])[:4]
    return z, s, c if c in _COMPLETUDE else "-", int(p) if p.isdigit() else 0


def _list_data(z: str, s: str, c: str, p: int) -> str:
    return f"cn:l:{z}:{s}:{c}:{p}"


async def _zones(session: AsyncSession, dep: str) -> list[str]:
    row = await session.get(ParametreDepartement, dep)
    return list(zones_for(dep, None, row.valeurs if row is not None else None))


async def _candidats_list(
    event: Message | CallbackQuery,
    caller: Caller,
    session: AsyncSession,
    z: str,
    s: str,
    c: str,
    page: int,
) -> None:
    if not caller.can_read_candidatures:
        await _answer(event, t("revue.lecture_reservee"))
        return
    lignes = await revue.lister(
        session,
        caller,
        zone=None if z == "-" else z,
        statut=None if s == "-" else s,
        complete=_COMPLETUDE[c],
    )
    pages = max(1, -(-len(lignes) // CANDIDATS_PAR_PAGE))
    page = min(page, pages - 1)
    shown = lignes[page * CANDIDATS_PAR_PAGE : (page + 1) * CANDIDATS_PAR_PAGE]
    text = render(
        "bot/action_candidats.j2",
        lignes=[
            {
                "reference": x.reference,
                "type": type_label(x.type),
                "statut": t(f"candidats.statut_{x.statut}"),
                "complete": x.complete,
                "zones": ", ".join(x.zones),
                "nom": f"{x.nom} {x.prenom}" if x.nom else None,
            }
            for x in shown
        ],
        total=len(lignes),
        zone=None if z == "-" else z,
        statut=None if s == "-" else t(f"candidats.statut_{s}"),
        completude=_COMPLETUDE[c],
        page=page + 1,
        pages=pages,
    )
    rows = [[_b(t("actions.bouton_ouvrir", reference=x.reference), f"cn:o:{x.id}")] for x in shown]
    nav = []
    if page > 0:
        nav.append(_b(t("actions.bouton_precedent"), _list_data(z, s, c, page - 1)))
    if page < pages - 1:
        nav.append(_b(t("actions.bouton_suivant"), _list_data(z, s, c, page + 1)))
    rows.append(nav)
    rows.append(
        [
            _b(t("actions.bouton_filtre_zone"), f"cn:fz:{s}:{c}"),
            _b(t("actions.bouton_filtre_statut"), f"cn:fs:{z}:{c}"),
            _b(t("actions.bouton_filtre_completude"), f"cn:fc:{z}:{s}"),
        ]
    )
    await _answer(event, text, reply_markup=_kb(rows))


@router.message(Command("candidats"))
async def candidats_cmd(message: Message, caller: Caller, session: AsyncSession) -> None:
    await _candidats_list(message, caller, session, "-", "-", "-", 0)


@router.callback_query(F.data.startswith("cn:"))
async def candidats_button(
    query: CallbackQuery, caller: Caller, session: AsyncSession, store: FileStore, bot: Bot
) -> None:
    assert query.data is not None
    parts = query.data.split(":")
    action, rest = parts[1], parts[2:]
    if not caller.can_read_candidatures:
        await _answer(query, t("revue.lecture_reservee"))
        return
    if action == "l":
        await _candidats_list(query, caller, session, *_filters(rest))
        return
    if action in ("fz", "fs", "fc"):
        await _filter_picker(query, caller, session, action, rest)
        return
    if not rest or not rest[0].isdigit():
        await _answer(query, t("actions.bouton_expire"))
        return
    cid = int(rest[0])
    try:
        if action == "o":
            await _candidature_view(query, caller, session, cid)
        elif action == "pj":
            await _send_pieces(query, caller, session, store, bot, cid)
        elif action == "st" and len(rest) > 1:
            cand = await revue.changer_statut(session, caller, cid, rest[1])
            await _candidature_view(
                query,
                caller,
                session,
                cid,
                t("actions.statut_change", statut=t(f"candidats.statut_{cand.statut}")),
            )
        elif action == "ae":
            aesh = await revue.creer_aesh_previsionnel(session, caller, cid)
            await _candidature_view(
                query, caller, session, cid, t("actions.aesh_cree", aesh_id=aesh.id)
            )
        else:
            await _answer(query, t("actions.bouton_expire"))
    except DomainError as err:
        await _answer(query, str(err))


async def _filter_picker(
    query: CallbackQuery, caller: Caller, session: AsyncSession, action: str, rest: list[str]
) -> None:
    a, b = ([*rest, "-", "-"])[:2]
    rows: list[list[InlineKeyboardButton]] = []
    if action == "fz":
        s, c = a, b
        options = [(t("actions.filtre_toutes"), _list_data("-", s, c, 0))] + [
            (zone, _list_data(zone, s, c, 0)) for zone in await _zones(session, caller.departement)
        ]
    elif action == "fs":
        z, c = a, b
        options = [(t("actions.filtre_tous"), _list_data(z, "-", c, 0))] + [
            (t(f"candidats.statut_{st}"), _list_data(z, st, c, 0)) for st in revue.LISTED
        ]
    else:
        z, s = a, b
        options = [
            (t("actions.filtre_toutes"), _list_data(z, s, "-", 0)),
            (t("candidats.statut_complete"), _list_data(z, s, "c", 0)),
            (t("candidats.statut_incomplete"), _list_data(z, s, "i", 0)),
        ]
    # Telegram refuses callback data over 64 bytes: a zone that long cannot be a filter.
    usable = [(label, data) for label, data in options if len(data.encode()) <= 64]
    rows = [
        [_b(label, data) for label, data in usable[i : i + 2]] for i in range(0, len(usable), 2)
    ]
    await _answer(query, t(f"actions.filtre_{action}"), reply_markup=_kb(rows))


def _reponse_label(key: str) -> str:
    name = f"actions.reponse_{key}"
    return t(name) if has(name) else key


def _reponse_value(value: Any) -> str:
    if isinstance(value, bool):
        return t("actions.oui") if value else t("actions.non")
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


async def _candidature_view(
    event: Message | CallbackQuery,
    caller: Caller,
    session: AsyncSession,
    cid: int,
    intro: str | None = None,
) -> None:
    d = await revue.dossier(session, caller, cid)
    c = d.candidat
    text = render(
        "bot/action_candidature.j2",
        intro=intro,
        d=d,
        c=c,
        type=type_label(d.type),
        statut=t(f"candidats.statut_{d.statut}"),
        naissance=_fr(c.date_naissance) if c is not None else "",
        depose_le=_fr(d.depose_le),
        valide_jusqu_au=_fr(d.valide_jusqu_au),
        reponses=[(_reponse_label(k), _reponse_value(v)) for k, v in sorted(d.reponses.items())],
        pieces=[t(f"candidats.piece_{p.kind}") for p in d.pieces],
        manquantes=[t(f"candidats.piece_{k}") for k in d.pieces_manquantes],
        diplomes=d.diplomes,
    )
    rows: list[list[InlineKeyboardButton]] = []
    if not d.ferme and (d.pieces or any(x.copie_sha256 for x in d.diplomes)):
        rows.append([_b(t("actions.bouton_pieces"), f"cn:pj:{d.id}")])
    statuses = [
        _b(t("actions.bouton_statut", statut=t(f"candidats.statut_{s}")), f"cn:st:{d.id}:{s}")
        for s in d.transitions
    ]
    rows += [statuses[i : i + 2] for i in range(0, len(statuses), 2)]
    if caller.can_review_candidatures and d.statut == "retenue" and d.aesh_id is None:
        rows.append([_b(t("actions.bouton_creer_aesh"), f"cn:ae:{d.id}")])
    rows.append([_b(t("actions.bouton_liste"), _list_data("-", "-", "-", 0))])
    await _answer(event, text, reply_markup=_kb(rows))


_EXT = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}


async def _send_pieces(
    query: CallbackQuery,
    caller: Caller,
    session: AsyncSession,
    store: FileStore,
    bot: Bot,
    cid: int,
) -> None:
    d = await revue.dossier(session, caller, cid)
    chat_id = _chat_id(query)
    await query.answer()
    files = [
        (f"{d.reference}-{p.kind}", t(f"candidats.piece_{p.kind}"), p.sha256, p.mime)
        for p in d.pieces
    ] + [
        (
            f"{d.reference}-diplome-{i + 1}",
            t("actions.piece_diplome", type=x.type, annee=x.annee or ""),
            x.copie_sha256,
            x.copie_mime or "application/pdf",
        )
        for i, x in enumerate(d.diplomes)
        if x.copie_sha256
    ]
    for name, caption, sha, mime in files:
        try:
            content = store.read(sha)
        except (OSError, ValueError):
            await bot.send_message(chat_id, t("actions.piece_introuvable", piece=caption))
            continue
        await bot.send_document(
            chat_id,
            BufferedInputFile(content, f"{name}.{_EXT.get(mime, 'bin')}"),
            caption=caption,
        )
    await bot.send_message(
        chat_id, t("actions.pieces_envoyees", n=len(files), reference=d.reference)
    )


# --- dispatch tables ------------------------------------------------------------------------

Finisher = Callable[..., Awaitable[None]]
FINISHERS: dict[str, Finisher] = {
    "acc": _acc_edited,
    "mod": _mod_done,
    "ins": _ins_done,
    "mai": _mai_done,
    "aff": _aff_done,
    "ref": _ref_done,
    "for": _for_done,
    "car": _car_done,
}

ButtonHandler = Callable[..., Awaitable[None]]
BUTTONS: dict[tuple[str, str], ButtonHandler] = {
    ("acc", "m"): _acc_mission,
    ("acc", "p"): _acc_page,
    ("acc", "e"): _acc_edit,
    ("acc", "ok"): _acc_create,
    ("aff", "m"): _aff_pial,
    ("aff", "p"): _aff_page,
    ("imp", "k"): _imp_kind,
}


# --- free input while a dialog runs ---------------------------------------------------------
# Registered last: the commands above must win over a dialog left open.


async def flow_text(
    message: Message, state: FSMContext, caller: Caller, session: AsyncSession, **data: Any
) -> None:
    assert message.text is not None
    flow = await _flow(state)
    if not flow.get("ask"):
        await message.answer(t("actions.indice_boutons"))
        return
    name = flow["ask"][0]
    try:
        value = FIELDS[name][0](message.text)
    except DomainError as err:
        await message.answer(t("actions.refus", message=str(err)))
        await _ask(message, state, flow)
        return
    await _take(message, state, flow, value, caller=caller, session=session, **data)


async def flow_document(
    message: Message, state: FSMContext, caller: Caller, session: AsyncSession, **data: Any
) -> None:
    flow = await _flow(state)
    if flow.get("k") == "json":
        await cartouche_json(message, state, caller, session, **data)
    else:
        await import_document(message, state, caller, session, **data)


async def flow_other(message: Message, state: FSMContext) -> None:
    flow = await _flow(state)
    key = "actions.indice_document" if flow.get("k") in ("imp", "json") else "actions.indice_texte"
    await message.answer(t(key))


router.message.register(flow_text, InFlow(), F.text & ~F.text.startswith("/"))
router.message.register(flow_document, InFlow("imp", "json"), F.document)
# Other routers' commands (and the fallback) still get what is typed with a slash.
router.message.register(flow_other, InFlow(), ~F.text.startswith("/"))
