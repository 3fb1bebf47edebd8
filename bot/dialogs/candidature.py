"""Candidature forms, AESH and M2 alternance (domain 2.2)."""

from __future__ import annotations

from typing import Any

from bot.dialogs.engine import Form, FormRun, Step, Values, register
from core.rules import candidate_fields as f
from core.rules import candidature_options as opt
from core.rules.candidature import M2_TYPES, TYPES
from core.services import candidatures
from core.texts import render, t

ANSWER_KEYS = (
    "rqth",
    "temps",
    "discipline",
    "boursier",
    "bourse_demandee",
    "universite",
    "composante",
    "niveau",
    "formation",
    "ine",
)


def _p(key: str) -> Any:
    return lambda _v: t(key)


def _m2(v: Values) -> bool:
    return v.get("type") in M2_TYPES


def _aesh(v: Values) -> bool:
    return v.get("type") == "AESH"


def _same(values: tuple[str, ...]) -> Any:
    return lambda _v: [(x, x) for x in values]


YES_NO = lambda _v: [("oui", t("bot.candidature.oui")), ("non", t("bot.candidature.non"))]  # noqa: E731


def auto_answers(v: Values) -> dict[str, Any]:
    """Answers with a single possible value are filled in, not asked (fewer taps)."""
    out: dict[str, Any] = {}
    if _aesh(v):
        out.update(choix_1="AESH", choix_2="AESH")
    if _m2(v):
        out["temps"] = "plein"
        if len(opt.disciplines_for(v["type"])) == 1:
            out["discipline"] = opt.disciplines_for(v["type"])[0]
        out["niveau"] = opt.NIVEAUX[0]
        out["formation"] = opt.FORMATIONS[v["type"]][0]
    return out


def _summary(v: Values) -> str:
    return render(
        "bot/candidature_resume.txt.j2",
        v={**v, **auto_answers(v)},
        type_libelle=candidatures.type_label(v["type"]),
    )


async def _done(run: FormRun, v: Values) -> None:
    session, candidat = run.data["session"], await run.candidat()
    assert candidat is not None  # the form is only started for a validated candidate
    answers = {k: v[k] for k in ANSWER_KEYS if k in v} | auto_answers(v)
    if v.get("_edit"):
        cand = await candidatures.owned(session, candidat, int(v["_edit"]))
        await candidatures.update_candidature(session, cand, answers, v["zones"])
        await run.say(t("bot.candidature.modifiee", reference=candidatures.reference(cand.id)))
        return
    cand = await candidatures.create_candidature(session, candidat, v["type"], answers, v["zones"])
    comp = await candidatures.submit(session, cand)
    await run.say(
        t(
            "bot.candidature.deposee",
            reference=candidatures.reference(cand.id),
            type=candidatures.type_label(cand.type),
            valide_jusqu_au=f"{cand.valide_jusqu_au:%d/%m/%Y}" if cand.valide_jusqu_au else "",
            manquantes=[t(f"candidats.piece_{p}") for p in comp.missing_pieces],
        )
    )
    from bot.handlers.pieces import ask_next_piece

    await ask_next_piece(run, cand.id)


def _zones(v: Values) -> list[tuple[str, str]]:
    return [(z, z) for z in opt.zones_for(v.get("_departement"), v.get("type"))]


CANDIDATURE = register(
    Form(
        name="candidature",
        steps=[
            Step(
                "type",
                "choice",
                _p("bot.candidature.type"),
                choices=lambda _v: [(x, candidatures.type_label(x)) for x in TYPES],
                when=lambda v: not v.get("_edit"),
            ),
            Step(
                "discipline",
                "choice",
                _p("bot.candidature.discipline"),
                choices=lambda v: [(d, d) for d in opt.disciplines_for(v["type"])],
                when=lambda v: _m2(v) and len(opt.disciplines_for(v["type"])) > 1,
                label=t("bot.candidature.champ_discipline"),
            ),
            Step(
                "zones",
                "ordered",
                lambda v: (
                    (t("bot.candidature.choix_aesh") + "\n\n" if _aesh(v) else "")
                    + t("bot.candidature.zones")
                ),
                choices=_zones,
                label=t("bot.candidature.champ_zones"),
            ),
            Step(
                "rqth",
                "choice",
                _p("bot.candidature.rqth"),
                choices=lambda _v: [
                    ("oui", t("bot.candidature.oui")),
                    ("non", t("bot.candidature.non")),
                    ("en_cours", t("bot.candidature.en_cours")),
                ],
                when=_aesh,
                label=t("bot.candidature.champ_rqth"),
            ),
            Step(
                "temps",
                "choice",
                _p("bot.candidature.temps"),
                choices=lambda _v: [
                    ("plein", t("bot.candidature.plein")),
                    ("partiel", t("bot.candidature.partiel")),
                ],
                when=_aesh,
                label=t("bot.candidature.champ_temps"),
            ),
            Step(
                "boursier",
                "choice",
                _p("bot.candidature.boursier"),
                choices=YES_NO,
                when=_m2,
                label=t("bot.candidature.champ_boursier"),
            ),
            Step(
                "bourse_demandee",
                "choice",
                _p("bot.candidature.bourse_demandee"),
                choices=YES_NO,
                when=_m2,
                label=t("bot.candidature.champ_bourse_demandee"),
            ),
            Step(
                "universite",
                "choice",
                _p("bot.candidature.universite"),
                choices=_same(opt.UNIVERSITES),
                when=_m2,
                label=t("bot.candidature.champ_universite"),
            ),
            Step(
                "composante",
                "choice",
                _p("bot.candidature.composante"),
                choices=_same(opt.COMPOSANTES),
                when=_m2,
                label=t("bot.candidature.champ_composante"),
            ),
            Step(
                "ine",
                "text",
                _p("bot.candidature.ine"),
                parse=lambda s, _v: f.ine(s),
                when=_m2,
                label=t("bot.candidature.champ_ine"),
            ),
            Step("confirmation", "confirm", _summary),
        ],
        on_done=_done,
    )
)
