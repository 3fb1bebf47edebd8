"""Inline keyboards shared by the candidate handlers."""

from __future__ import annotations

from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from core.texts import t


def _b(key: str, data: str, **kw: Any) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=t(key, **kw), callback_data=data)


def main_menu(data: dict[str, Any] | None = None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_b("bot.bouton_candidater", "m:candidature")],
            [_b("bot.bouton_pieces", "m:pieces"), _b("bot.bouton_diplomes", "m:diplomes")],
            [_b("bot.bouton_statut", "m:statut"), _b("bot.bouton_aide", "m:aide")],
        ]
    )


def welcome() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_b("bot.bouton_inscription", "m:inscription")],
            [_b("bot.bouton_connexion", "m:connexion")],
            [_b("bot.bouton_aide", "m:aide")],
        ]
    )


def resume_keyboard(in_form: bool, data: dict[str, Any] | None = None) -> InlineKeyboardMarkup:
    rows = [[_b("bot.bouton_reprendre", "m:reprendre")]] if in_form else []
    rows.append([_b("bot.bouton_menu", "m:menu")])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def renewal(candidature_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_b("bot.bouton_maintenir", f"rn:{candidature_id}:k")],
            [_b("bot.bouton_retirer", f"rn:{candidature_id}:w")],
        ]
    )


def confirm_withdrawal(candidature_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_b("bot.renouvellement.bouton_confirmer_retrait", f"rn:{candidature_id}:W")],
            [_b("bot.bouton_annuler", "m:menu")],
        ]
    )


def rows(buttons: list[InlineKeyboardButton], width: int = 1) -> list[list[InlineKeyboardButton]]:
    return [buttons[i : i + width] for i in range(0, len(buttons), width)]


def cancel_only() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[_b("bot.bouton_annuler", "m:annuler")]])
