"""`aesh candidatures list` and `aesh renewal sweep` (interfaces §2)."""

from __future__ import annotations

import argparse
import json
import sys

from core.config import Settings
from core.texts import t


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from aesh.cli import parse_date_arg

    cand = sub.add_parser("candidatures", help=t("cli.aide_candidatures")).add_subparsers(
        dest="cand_cmd", required=True
    )
    ls = cand.add_parser("list", help=t("cli.aide_candidatures_list"))
    ls.add_argument("--departement", default=None)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    ren = sub.add_parser("renewal", help=t("cli.aide_renewal")).add_subparsers(
        dest="renewal_cmd", required=True
    )
    sw = ren.add_parser("sweep", help=t("cli.aide_renewal_sweep"))
    sw.add_argument("--today", type=parse_date_arg, default=None)
    sw.add_argument("--json", action="store_true")
    sw.set_defaults(func=cmd_sweep)


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from aesh.cli import Context
    from aesh.tables import format_table
    from core.services import candidatures

    dep = None if args.departement in (None, "all") else args.departement
    async with Context(settings) as ctx, ctx.sessionmaker() as session:
        rows = await candidatures.list_all(session, dep)
    if args.json:
        sys.stdout.write(json.dumps({"candidatures": rows}, ensure_ascii=False, indent=2) + "\n")
        return 0
    table = format_table(
        t("cli.candidatures_headers").split("|"),
        [
            [
                candidatures.reference(r["id"]),
                r["email"] or "—",
                r["type"],
                t(f"candidats.statut_{r['statut']}"),
                r["valide_jusqu_au"] or "",
                r["relance_le"] or "",
            ]
            for r in rows
        ],
    )
    print(table)
    return 0


async def cmd_sweep(args: argparse.Namespace, settings: Settings) -> int:
    from aesh.cli import Context
    from core.services import candidatures
    from core.services.storage import FileStore

    settings.require_secret_key()
    async with Context(settings) as ctx, ctx.sessionmaker() as session:
        report = await candidatures.renewal_sweep(
            session, settings, FileStore(settings.storage_dir), args.today
        )
        await session.commit()
    data = {"relancees": report.asked, "rappelees": report.reminded, "supprimees": report.deleted}
    if args.json:
        sys.stdout.write(json.dumps(data) + "\n")
    else:
        print(
            t(
                "cli.renewal_sweep",
                n_relance=len(report.asked),
                n_rappel=len(report.reminded),
                n_suppr=len(report.deleted),
            )
        )
    return 0
