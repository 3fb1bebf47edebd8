"""`aesh admin invite` (interfaces §2): a one-time enrolment code for a service user; and the
agents' accounts: `aesh admin agents`, `reset-totp AGENT` (lost authenticator), `revoke AGENT`."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from core.config import Settings
from core.texts import t


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from core.services.access import ROLES

    group = sub.add_parser("admin", help=t("access.aide_admin")).add_subparsers(
        dest="admin_cmd", required=True
    )
    inv = group.add_parser("invite", help=t("access.aide_invite"))
    inv.add_argument("--role", required=True, choices=ROLES, help=t("access.aide_role"))
    inv.add_argument(
        "--departement", required=True, metavar="DEP", help=t("access.aide_departement")
    )
    inv.add_argument(
        "--secteur", action="append", default=None, metavar="S", help=t("access.aide_secteur")
    )
    inv.add_argument("--pial", default=None, metavar="RNE", help=t("access.aide_pial"))
    inv.add_argument("--json", action="store_true", help=t("access.aide_json"))
    inv.set_defaults(func=cmd_invite)

    agents = group.add_parser("agents", help=t("access.aide_agents"))
    agents.add_argument(
        "--departement", default=None, metavar="DEP", help=t("access.aide_agents_departement")
    )
    agents.add_argument("--json", action="store_true", help=t("access.aide_json"))
    agents.set_defaults(func=cmd_agents)
    for name, helptext, func in (
        ("reset-totp", "access.aide_reset_totp", cmd_reset_totp),
        ("revoke", "access.aide_revoke", cmd_revoke),
    ):
        cmd = group.add_parser(name, help=t(helptext))
        cmd.add_argument("agent_id", type=int, metavar="AGENT", help=t("access.aide_agent_id"))
        cmd.set_defaults(func=func)


async def cmd_invite(args: argparse.Namespace, settings: Settings) -> int:
    from aesh.cli import Context
    from core.dates import PARIS
    from core.errors import DomainError
    from core.services import access

    # Before the database is touched: without the key no code could ever be checked.
    settings.require_secret_key()
    async with Context(settings) as ctx, ctx.sessionmaker() as session:
        try:
            issued = await access.issue_invitation(
                session, settings, args.role, args.departement, args.secteur, args.pial
            )
        except DomainError as err:
            await session.rollback()
            print(str(err), file=sys.stderr)
            return 1
        await session.commit()
    if args.json:
        data = {
            "code": issued.code,
            "role": issued.role,
            "departement": issued.departement,
            "secteurs": list(issued.secteurs) if issued.secteurs else None,
            "pial_rne": issued.pial_rne,
            "expires_at": issued.expires_at.isoformat(),
        }
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return 0
    print(
        t(
            "access.invitation_creee",
            code=issued.code,
            role=access.role_label(issued.role),
            departement=issued.departement,
            secteurs=list(issued.secteurs or ()),
            pial_rne=issued.pial_rne,
            expire=issued.expires_at.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M"),
        )
    )
    return 0


async def cmd_agents(args: argparse.Namespace, settings: Settings) -> int:
    from aesh.cli import Context
    from core.dates import PARIS
    from core.services import access

    async with Context(settings) as ctx, ctx.sessionmaker() as session:
        agents = await access.list_agents(session, args.departement)

    def when(value: datetime | None) -> str | None:
        return value.astimezone(PARIS).strftime("%d/%m/%Y %H:%M") if value else None

    if args.json:
        data = [
            {
                "id": a.id,
                "telegram": a.telegram_lie,
                "second_facteur": a.facteur,
                "verrouille_jusqu_au": a.verrouille_jusqu_au.isoformat()
                if a.verrouille_jusqu_au
                else None,
                "derniere_activite": a.derniere_activite.isoformat()
                if a.derniere_activite
                else None,
                "roles": [
                    {
                        "role": r.role,
                        "departement": r.departement,
                        "secteurs": list(r.secteurs) if r.secteurs else None,
                        "pial_rne": r.pial_rne,
                    }
                    for r in a.roles
                ],
            }
            for a in agents
        ]
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return 0
    if not agents:
        print(t("access.aucun_agent"))
        return 0
    print(t("access.agents_entete"))
    for a in agents:
        roles = "; ".join(
            t(
                "access.libelle_role",
                role=access.role_label(r.role),
                departement=r.departement,
                secteurs=list(r.secteurs or ()),
                pial_rne=r.pial_rne,
            )
            for r in a.roles
        )
        print(
            t(
                "access.agent_ligne",
                id=a.id,
                telegram=a.telegram_lie,
                facteur=t(f"access.facteur_{a.facteur}"),
                activite=when(a.derniere_activite),
                roles=roles,
                verrou=when(a.verrouille_jusqu_au),
            )
        )
    return 0


async def _on_agent(args: argparse.Namespace, settings: Settings, action: str) -> int:
    from aesh.cli import Context
    from core.errors import DomainError
    from core.services import access

    fn = access.reset_second_factor if action == "reset" else access.revoke
    async with Context(settings) as ctx, ctx.sessionmaker() as session:
        try:
            await fn(session, args.agent_id)
        except DomainError as err:
            await session.rollback()
            print(str(err), file=sys.stderr)
            return 1
        await session.commit()
    key = "access.totp_reinitialise" if action == "reset" else "access.acces_retire"
    print(t(key, id=args.agent_id))
    return 0


async def cmd_reset_totp(args: argparse.Namespace, settings: Settings) -> int:
    return await _on_agent(args, settings, "reset")


async def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:
    return await _on_agent(args, settings, "revoke")
