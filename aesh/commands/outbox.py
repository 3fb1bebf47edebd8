"""`aesh outbox flush` and `aesh outbox list`: the mail queue from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from core.config import Settings
from core.dates import PARIS
from core.texts import t


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from mail.outbox import STATUSES

    group = sub.add_parser("outbox", help=t("outbox.aide")).add_subparsers(
        dest="outbox_cmd", required=True
    )
    fl = group.add_parser("flush", help=t("outbox.aide_flush"))
    fl.add_argument("--json", action="store_true", help=t("outbox.aide_json"))
    fl.set_defaults(func=cmd_flush)

    ls = group.add_parser("list", help=t("outbox.aide_list"))
    ls.add_argument("--status", choices=STATUSES, default=None, help=t("outbox.aide_status"))
    ls.add_argument("--json", action="store_true", help=t("outbox.aide_json"))
    ls.set_defaults(func=cmd_list)


async def cmd_flush(args: argparse.Namespace, settings: Settings) -> int:
    from aesh.cli import Context
    from mail.outbox import FlushReport, flush

    if not settings.smtp_host:
        print(t("outbox.smtp_non_configure"), file=sys.stderr)
        return 1
    limit = 500
    total = FlushReport()
    async with Context(settings) as ctx:
        # `flush` takes a bounded round; the command empties everything that is due.
        while True:
            report = await flush(ctx.sessionmaker, settings, limit=limit)
            total = FlushReport(
                total.sent + report.sent,
                total.retried + report.retried,
                total.failed + report.failed,
                report.server_down,
            )
            if report.total < limit or report.server_down:
                break
    if args.json:
        _json({"sent": total.sent, "retried": total.retried, "failed": total.failed})
    else:
        print(
            t("outbox.flush_resultat", sent=total.sent, retried=total.retried, failed=total.failed)
        )
    if total.server_down:
        # The mails wait, due, for the worker's next probe; the operator learns why.
        print(t("outbox.serveur_injoignable"), file=sys.stderr)
        return 1
    return 0


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from aesh.cli import Context
    from mail.outbox import list_mails

    async with Context(settings) as ctx, ctx.sessionmaker() as session:
        mails = await list_mails(session, args.status)
    if args.json:
        _json({"mails": [_json_row(m) for m in mails]})
        return 0
    if not mails:
        label = t(f"outbox.statut_{args.status}") if args.status else None
        print(t("outbox.aucun_courriel", statut=label))
        return 0
    from aesh.tables import format_table

    rows = [
        [
            m["id"],
            m["kind"],
            m["to"],
            _cut(m["subject"], 50),
            t(f"outbox.statut_{m['status']}"),
            m["attempts"],
            _local(m["next_attempt_at"]),
            _cut(m["last_error"], 60),
            _local(m["created_at"]),
            _local(m["sent_at"]),
        ]
        for m in mails
    ]
    print(format_table(t("outbox.list_headers").split("|"), rows, right={0, 5}))
    print(t("outbox.list_total", n=len(mails)))
    return 0


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _json_row(m: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in m.items()}


def _local(value: datetime | None) -> str:
    # Stored in UTC; the service reads French local time.
    return value.astimezone(PARIS).strftime("%d/%m/%Y %H:%M") if value else ""


def _cut(text: str | None, width: int) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
