"""`aesh pv ACCOMPAGNEMENT_ID --out FILE.pdf`: the PV d'affectation (interfaces §2, domain 3.10)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.config import Settings
from core.errors import DomainError
from core.perimeter import Perimeter
from core.texts import t


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from aesh.cli import parse_date_arg

    pv = sub.add_parser("pv", help=t("documents.aide_pv"))
    pv.add_argument("accompagnement_id", help=t("documents.aide_accompagnement"))
    pv.add_argument("--out", required=True, help=t("documents.aide_out"))
    pv.add_argument("--externe", action="store_true", help=t("documents.aide_externe"))
    pv.add_argument("--departement", default=None, help=t("documents.aide_departement"))
    pv.add_argument("--date", type=parse_date_arg, default=None, help=t("documents.aide_date"))
    pv.set_defaults(func=cmd_pv)


async def cmd_pv(args: argparse.Namespace, settings: Settings) -> int:
    from aesh.cli import Context
    from core.services import documents

    dep = args.departement or settings.departement
    perimeter = Perimeter(None if dep == "all" else dep)
    async with Context(settings) as ctx, ctx.sessionmaker() as session:
        try:
            pdf = await documents.pv_affectation(
                session,
                perimeter,
                args.accompagnement_id,
                external_copy=args.externe,
                today=args.date,
            )
        except DomainError as err:
            print(str(err), file=sys.stderr)
            return 1
    out = Path(args.out)
    try:
        out.write_bytes(pdf)
    except OSError as err:
        print(
            t("documents.ecriture_impossible", path=str(out), erreur=err.strerror), file=sys.stderr
        )
        return 1
    print(
        t(
            "documents.pv_ecrit",
            accompagnement_id=args.accompagnement_id,
            path=str(out),
            externe=args.externe,
        )
    )
    return 0
