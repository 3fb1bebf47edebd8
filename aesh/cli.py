"""The `aesh` command line (interfaces §2). Exit codes: 0 done, 1 refused input, 2 usage."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

from core.config import Settings, get_settings
from core.dates import SchoolYear, parse_date, today_paris
from core.db import make_engine, make_sessionmaker, upgrade
from core.errors import DomainError
from core.perimeter import Perimeter
from core.texts import t

DEMO_REFERENCE = 41.0

Handler = Callable[[argparse.Namespace, Settings], Awaitable[int]]


class UsageError(Exception):
    pass


def parse_date_arg(text: str) -> date:
    try:
        return parse_date(text)
    except ValueError:
        raise argparse.ArgumentTypeError(t("cli.bad_date", value=text)) from None


def _annee(text: str) -> SchoolYear:
    try:
        return SchoolYear.parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(t("cli.bad_annee", value=text)) from None


class Context:
    """One engine per command; migrations are applied before anything else runs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.sessionmaker = make_sessionmaker(self.engine)

    async def __aenter__(self) -> Context:
        await upgrade(self.engine)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.engine.dispose()


def _perimeter(args: argparse.Namespace, settings: Settings) -> Perimeter:
    dep = getattr(args, "departement", None) or settings.departement
    p = Perimeter(None if dep == "all" else dep)
    secteurs = getattr(args, "secteur", None)
    pial = getattr(args, "pial", None)
    return p.narrowed(frozenset(secteurs) if secteurs else None, pial)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


# --- commands ----------------------------------------------------------------------------


async def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    async with Context(settings):
        pass
    print(t("cli.db_upgraded", url=_safe_url(settings.database_url)))
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


async def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from aesh.progress import ProgressBar
    from core.services.imports import ImportRefused, import_file

    path = Path(args.file)
    if not path.is_file():
        print(t("cli.fichier_introuvable", path=str(path)), file=sys.stderr)
        return 1
    async with Context(settings) as ctx, ctx.sessionmaker() as session:
        bar = ProgressBar(t("cli.import_progression", kind=args.kind))
        try:
            report = await import_file(session, args.kind, path, progress=bar.update)
        except ImportRefused as refused:
            await session.rollback()
            bar.close()
            print(str(refused), file=sys.stderr)
            return 1
        await session.commit()
        bar.close()
    if args.json:
        _print_json(vars(report))
    else:
        print(t("cli.import_ok", **vars(report), path=str(path)))
    return 0


async def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from aesh import report_views
    from core.services import reports

    perimeter = _perimeter(args, settings)
    day: date = getattr(args, "date", None) or today_paris()
    year: SchoolYear = args.annee or SchoolYear.of(day)
    async with Context(settings) as ctx, ctx.sessionmaker() as session:
        match args.report:
            case "coverage":
                data = await reports.coverage_report(session, perimeter, year, day)
            case "anomalies":
                data = await reports.anomalies_report(session, perimeter, year)
            case "pial":
                data = await reports.pial_report(session, perimeter, year)
            case "indicateurs":
                data = await reports.indicateurs_report(session, perimeter, year)
            case _:
                data = await reports.cas_particuliers_report(session, perimeter, year)
    if args.json:
        _print_json(data)
    else:
        sys.stdout.write(report_views.render_report(args.report, data, perimeter))
    return 0


async def cmd_param(args: argparse.Namespace, settings: Settings) -> int:
    from core.services import parametres

    dep = args.departement or settings.departement
    async with Context(settings) as ctx, ctx.sessionmaker() as session:
        try:
            if args.param == "reference":
                n = await parametres.set_reference(session, dep, args.annee, args.heures)
                msg = t(
                    "parametres.reference_enregistree",
                    departement=dep,
                    annee=args.annee.label,
                    heures=args.heures,
                    n=n,
                )
            elif args.param == "formule":
                await parametres.set_formula(session, dep, args.annee, args.expression)
                msg = t(
                    "parametres.formule_enregistree",
                    departement=dep,
                    annee=args.annee.label,
                    formule=args.expression.strip(),
                )
            else:
                champs = _read_json_object(Path(args.file))
                await parametres.set_cartouche(session, dep, champs)
                msg = t("parametres.cartouche_enregistree", departement=dep)
        except DomainError as err:
            await session.rollback()
            print(str(err), file=sys.stderr)
            return 1
        await session.commit()
    print(msg)
    return 0


def _read_json_object(path: Path) -> dict[str, object]:
    from core.errors import InvalidInput

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput("cli.fichier_introuvable", path=str(path)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidInput("cli.json_invalide", path=str(path), erreur=str(err)) from None
    if not isinstance(data, dict):
        raise InvalidInput("cli.json_objet_attendu", path=str(path))
    return data


async def cmd_pial_auto(args: argparse.Namespace, settings: Settings) -> int:
    from core.services import affectations

    perimeter = _perimeter(args, settings)
    year: SchoolYear = args.annee or SchoolYear.current()
    async with Context(settings) as ctx, ctx.sessionmaker() as session:
        result = await affectations.auto_affecter(session, perimeter, year)
        await session.commit()
    if args.json:
        _print_json(result.as_json())
    else:
        print(
            t(
                "cli.auto_affecter",
                annee=year.label,
                n=len(result.created),
                non_places=result.unplaced,
            )
        )
    return 0


async def cmd_demo_data(args: argparse.Namespace, settings: Settings) -> int:
    from core.demo_data import generate

    counts = generate(
        args.scale, args.seed, Path(args.out), args.annee.start_year if args.annee else None
    )
    if args.json:
        _print_json(counts)
    else:
        print(t("cli.demo_data", out=args.out, counts=counts))
    return 0


async def cmd_demo_load(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import func, select

    from aesh.progress import ProgressBar
    from core.models import Decision
    from core.services.imports import KINDS, ImportRefused, import_file

    folder = Path(args.dir)
    async with Context(settings) as ctx:
        async with ctx.sessionmaker() as session:
            count = await session.scalar(select(func.count()).select_from(Decision))
        if args.if_empty and count:
            print(t("cli.demo_deja_chargee", n=count))
            return 0
        if not (folder / "decisions.csv").is_file():
            from core.demo_data import generate

            generate("departement", args.seed, folder, None, [settings.departement])
            print(t("cli.demo_generee", out=str(folder)))
        async with ctx.sessionmaker() as session:
            from core.services import parametres

            # HR gives no hours for some demo missions: they follow the usual 41 h reference.
            if not await parametres.references(session, settings.departement):
                await parametres.set_reference(
                    session, settings.departement, SchoolYear.current(), DEMO_REFERENCE
                )
                await session.commit()
        for kind in KINDS:
            path = folder / f"{kind}.csv"
            if not path.is_file():
                continue
            async with ctx.sessionmaker() as session:
                bar = ProgressBar(t("cli.import_progression", kind=kind))
                try:
                    report = await import_file(session, kind, path, progress=bar.update)
                except ImportRefused as refused:
                    await session.rollback()
                    bar.close()
                    print(str(refused), file=sys.stderr)
                    return 1
                await session.commit()
                bar.close()
            print(t("cli.import_ok", **vars(report), path=str(path)))
    return 0


# --- parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aesh", description=t("cli.description"))
    sub = p.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help=t("cli.aide_db")).add_subparsers(dest="db_cmd", required=True)
    db.add_parser("upgrade", help=t("cli.aide_db_upgrade")).set_defaults(func=cmd_db_upgrade)

    from core.services.imports import KINDS

    imp = sub.add_parser("import", help=t("cli.aide_import"))
    imp.add_argument("kind", choices=KINDS)
    imp.add_argument("file")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=cmd_import)

    rep = sub.add_parser("report", help=t("cli.aide_report")).add_subparsers(
        dest="report", required=True
    )
    for name in ("coverage", "anomalies", "pial", "indicateurs", "cas-particuliers"):
        r = rep.add_parser(name)
        r.add_argument("--annee", type=_annee, default=None)
        r.add_argument("--departement", default=None)
        r.add_argument("--json", action="store_true")
        if name == "coverage":
            r.add_argument("--date", type=parse_date_arg, default=None)
            r.add_argument("--pial", default=None)
            r.add_argument("--secteur", action="append", default=None)
        r.set_defaults(func=cmd_report)

    par = sub.add_parser("param", help=t("cli.aide_param")).add_subparsers(
        dest="param", required=True
    )
    ref = par.add_parser("reference")
    ref.add_argument("--annee", type=_annee, required=True)
    ref.add_argument("--heures", type=float, required=True)
    form = par.add_parser("formule")
    form.add_argument("--annee", type=_annee, required=True)
    form.add_argument("expression")
    cart = par.add_parser("cartouche")
    cart.add_argument("--file", required=True)
    for x in (ref, form, cart):
        x.add_argument("--departement", default=None)
        x.set_defaults(func=cmd_param)

    pial = sub.add_parser("pial", help=t("cli.aide_pial")).add_subparsers(
        dest="pial_cmd", required=True
    )
    auto = pial.add_parser("auto-affecter")
    auto.add_argument("--annee", type=_annee, default=None)
    auto.add_argument("--departement", default=None)
    auto.add_argument("--json", action="store_true")
    auto.set_defaults(func=cmd_pial_auto)

    demo = sub.add_parser("demo-data", help=t("cli.aide_demo_data"))
    demo.add_argument("--scale", choices=("departement", "national"), default="departement")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--out", required=True)
    demo.add_argument("--annee", type=_annee, default=None)
    demo.add_argument("--json", action="store_true")
    demo.set_defaults(func=cmd_demo_data)

    load = sub.add_parser("demo-load", help=t("cli.aide_demo_load"))
    load.add_argument("--dir", required=True)
    load.add_argument("--if-empty", action="store_true")
    load.add_argument("--seed", type=int, default=1)
    load.set_defaults(func=cmd_demo_load)

    from aesh.commands import admin, candidatures, documents, mail, outbox, run, sandbox

    for module in (admin, candidatures, documents, mail, outbox, run, sandbox):
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        return asyncio.run(args.func(args, settings))
    except DomainError as err:
        print(str(err), file=sys.stderr)
        return 1
    except RuntimeError as err:
        if "AESH_SECRET_KEY" not in str(err):
            raise
        print(t("cli.secret_requis"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
