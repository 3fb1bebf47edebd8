"""`aesh mail poll --once`: read the mailbox once, handle every new message, exit."""

from __future__ import annotations

import argparse
import json
import sys

from core.config import Settings
from core.texts import t


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from aesh.cli import parse_date_arg

    group = sub.add_parser("mail", help=t("mail_reader.aide")).add_subparsers(
        dest="mail_cmd", required=True
    )
    poll = group.add_parser("poll", help=t("mail_reader.aide_poll"))
    poll.add_argument("--once", action="store_true", help=t("mail_reader.aide_once"))
    poll.add_argument(
        "--today", type=parse_date_arg, default=None, help=t("mail_reader.aide_today")
    )
    poll.add_argument("--json", action="store_true", help=t("mail_reader.aide_json"))
    poll.set_defaults(func=cmd_poll)


async def cmd_poll(args: argparse.Namespace, settings: Settings) -> int:
    from aesh.cli import Context
    from core.services.storage import FileStore
    from mail.reader import MailboxError, missing_settings, poll_once

    if not args.once:
        # The long-running reader shares its process with the bot and the outbox worker.
        print(t("mail_reader.once_requis"), file=sys.stderr)
        return 2
    missing = missing_settings(settings)
    if missing:
        print(t("mail_reader.non_configure", manquants=missing), file=sys.stderr)
        return 1
    settings.require_secret_key()
    async with Context(settings) as ctx:
        try:
            report = await poll_once(
                ctx.sessionmaker, settings, FileStore(settings.storage_dir), today=args.today
            )
        except MailboxError as err:
            print(
                t(
                    "mail_reader.injoignable",
                    serveur=f"{settings.imap_host}:{settings.imap_port}",
                    etape=err.stage,
                    detail=err.detail,
                ),
                file=sys.stderr,
            )
            return 1
    if args.json:
        sys.stdout.write(json.dumps(report.as_dict()) + "\n")
    else:
        print(t("mail_reader.resultat", **report.as_dict()))
    return 0
