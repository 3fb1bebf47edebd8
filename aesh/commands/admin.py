"""`aesh admin invite` (interfaces §2): a one-time enrolment code for a service user."""

from __future__ import annotations

import argparse
import json
import sys

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
