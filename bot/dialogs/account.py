"""Registration and login forms (domain 2.1)."""

from __future__ import annotations

from typing import Any

from bot.dialogs.engine import Form, FormRun, Step, Values, register
from core.dates import parse_date, today_paris
from core.rules import candidate_fields as f
from core.services import candidatures
from core.texts import render, t


def _p(key: str) -> Any:
    return lambda _v: t(key)


async def _registered(run: FormRun, v: Values) -> None:
    session, settings = run.data["session"], run.data["settings"]
    reg = candidatures.Registration(
        civilite=v["civilite"],
        nom=v["nom"],
        prenom=v["prenom"],
        date_naissance=parse_date(v["date_naissance"]),
        email=v["email"],
        telephone=v["telephone"],
        commune=v["commune"],
        code_postal=v["code_postal"],
    )
    c = await candidatures.register(
        session, settings, reg, bot_username=run.data.get("bot_username")
    )
    await run.state.set_state("compte:attente_code")
    await run.state.update_data(email=c.email)
    await run.say(t("bot.inscription.envoye", prenom=c.prenom, email=c.email))


def _summary(v: Values) -> str:
    return render("bot/inscription_resume.txt.j2", v=v)


INSCRIPTION = register(
    Form(
        name="inscription",
        steps=[
            Step(
                "civilite",
                "choice",
                _p("bot.inscription.civilite"),
                choices=lambda _v: [("M.", "M."), ("Mme", "Mme")],
                label=t("bot.inscription.champ_civilite"),
            ),
            Step(
                "nom",
                "text",
                _p("bot.inscription.nom"),
                parse=lambda s, _v: f.name(s, "nom"),
                label=t("bot.inscription.champ_nom"),
            ),
            Step(
                "prenom",
                "text",
                _p("bot.inscription.prenom"),
                parse=lambda s, _v: f.name(s, "prénom"),
                label=t("bot.inscription.champ_prenom"),
            ),
            Step(
                "date_naissance",
                "text",
                _p("bot.inscription.date_naissance"),
                parse=lambda s, _v: f.birth_date(s, today_paris()).isoformat(),
                label=t("bot.inscription.champ_date_naissance"),
            ),
            Step(
                "email",
                "text",
                _p("bot.inscription.email"),
                parse=lambda s, _v: f.email(s),
                label=t("bot.inscription.champ_email"),
            ),
            Step(
                "telephone",
                "text",
                _p("bot.inscription.telephone"),
                parse=lambda s, _v: f.telephone(s),
                label=t("bot.inscription.champ_telephone"),
            ),
            Step(
                "commune",
                "text",
                _p("bot.inscription.commune"),
                parse=lambda s, _v: f.commune(s),
                label=t("bot.inscription.champ_commune"),
            ),
            Step(
                "code_postal",
                "text",
                _p("bot.inscription.code_postal"),
                parse=lambda s, _v: f.code_postal(s),
                label=t("bot.inscription.champ_code_postal"),
            ),
            Step("confirmation", "confirm", _summary),
        ],
        on_done=_registered,
    )
)


async def _login_requested(run: FormRun, v: Values) -> None:
    await candidatures.request_login_code(run.data["session"], run.data["settings"], v["email"])
    await run.state.set_state("compte:attente_code_connexion")
    await run.state.update_data(email=v["email"])
    await run.say(t("bot.connexion.code_envoye"))


CONNEXION = register(
    Form(
        name="connexion",
        steps=[Step("email", "text", _p("bot.connexion.email"), parse=lambda s, _v: f.email(s))],
        on_done=_login_requested,
    )
)
