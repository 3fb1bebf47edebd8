"""Transactional outbox: a mail is a row written with the change that causes it.

The sender (mail/) only reads this table; a crash between the change and the delivery can
delay a mail, never lose or invent one. The Message-ID is fixed here, before any attempt,
so a retry is the same message.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from email.utils import make_msgid
from functools import lru_cache
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import JSON, Table, bindparam, func, insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.models import OutboxMail
from core.texts import render


@dataclass(frozen=True)
class Attachment:
    filename: str
    mime: str
    path: str  # a file under AESH_STORAGE_DIR, kept until the mail is sent


@dataclass
class MailDraft:
    kind: str  # the template family under templates/mail/, e.g. "renewal"
    to: str
    context: dict[str, Any]
    cc: list[str] = field(default_factory=list)
    reply_to: str | None = None
    message_id: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    candidature_id: int | None = None


def mail_domain(settings: Settings) -> str:
    return settings.mail_from.rsplit("@", 1)[-1] or "localhost"


def new_message_id(settings: Settings, local: str | None = None) -> str:
    if local:
        return f"<{local}@{mail_domain(settings)}>"
    return make_msgid(idstring=uuid.uuid4().hex[:8], domain=mail_domain(settings))


def plus_address(settings: Settings, tag: str) -> str:
    """`aesh@x.fr` + tag → `aesh+tag@x.fr`: replies come back to the same mailbox."""
    local, _, domain = settings.mail_from.partition("@")
    return f"{local}+{tag}@{domain}"


def render_mail(kind: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, text, html) of `templates/mail/{kind}.*.j2`."""
    subject = render(f"mail/{kind}.subject.j2", **context).strip()
    text = render(f"mail/{kind}.txt.j2", **context)
    html = render(f"mail/{kind}.html.j2", **context)
    return subject, text, html


def encode_context(context: dict[str, Any]) -> dict[str, Any]:
    """A template context as JSON (dates tagged, so the mail renders the same later)."""
    # type() rather than isinstance: a datetime is a date, and this runs for every mail of a
    # bulk sweep.
    return {k: {"$date": v.isoformat()} if type(v) is date else v for k, v in context.items()}


@lru_cache(maxsize=1024)
def encode_date(value: date) -> dict[str, str]:
    """A date as encode_context stores it (shared: bulk mails mostly carry the same dates)."""
    return {"$date": value.isoformat()}


def decode_context(stored: dict[str, Any]) -> dict[str, Any]:
    return {
        k: date.fromisoformat(v["$date"]) if isinstance(v, dict) and "$date" in v else v
        for k, v in stored.items()
    }


def rendered(row: OutboxMail) -> tuple[str, str, str | None]:
    """(subject, text, html) of a row, rendering now a mail queued in bulk (see enqueue_many)."""
    if row.body_text is not None and row.subject is not None:
        return row.subject, row.body_text, row.body_html
    return render_mail(row.kind, decode_context(row.context or {}))


async def enqueue(
    session: AsyncSession, settings: Settings, draft: MailDraft, *, render_now: bool = True
) -> OutboxMail:
    """Queue a mail in the caller's transaction (nothing is sent until it commits).

    `render_now=False` keeps the template context and lets the sender render it: for the
    mails of a batch (replies to the renewal question), where rendering was most of the
    cost; a mail rendered now shows a template error in the transaction that queues it."""
    subject = text = html = None
    if render_now:
        subject, text, html = render_mail(draft.kind, draft.context)
    row = OutboxMail(
        message_id=draft.message_id or new_message_id(settings),
        kind=draft.kind,
        to_addr=draft.to,
        cc=draft.cc or None,
        reply_to=draft.reply_to,
        subject=subject,
        body_text=text,
        body_html=html,
        context=None if render_now else encode_context(draft.context),
        attachments=[a.__dict__ for a in draft.attachments] or None,
        headers=draft.headers or None,
        candidature_id=draft.candidature_id,
    )
    # No flush: a sweep queues thousands of mails; they go in with the caller's next flush
    # or commit, in the same transaction as the change.
    session.add(row)
    return row


_CHUNK = 2000


_BULK_COLUMNS = ("message_id", "kind", "to_addr", "reply_to", "context", "candidature_id")


# JSON text for bulk rows: any valid JSON reads back the same; compact and without the
# circularity check, as these contexts are small flat dicts.
_json_text = json.JSONEncoder(check_circular=False, separators=(",", ":")).encode


@dataclass(frozen=True)
class _BulkInsert:
    """The bulk INSERT compiled once for a dialect: its SQL in the driver's parameter style
    and, per parameter, the column type's own conversion, so that rows go to the driver's
    executemany as plain tuples, without SQLAlchemy's per-row work (which cost more than
    the database's own)."""

    sql: str
    names: tuple[str, ...]
    constants: dict[str, Any]  # the columns' own scalar defaults (status, attempts)
    convert: tuple[tuple[int, Any], ...]  # (position, conversion) where one is needed
    positional: bool

    @classmethod
    def compile(cls, dialect: Any) -> _BulkInsert:
        table = cast(Table, OutboxMail.__table__)
        stmt = insert(table).values(
            {
                **{name: bindparam(name, type_=table.c[name].type) for name in _BULK_COLUMNS},
                # The database's clock: one SQL expression, no conversion per row.
                "created_at": func.now(),
                "next_attempt_at": func.now(),
            }
        )
        compiled = stmt.compile(dialect=dialect)
        names = tuple(compiled.positiontup or compiled.binds)
        convert = []
        for i, name in enumerate(names):
            kind = table.c[name].type
            proc: Any = kind.dialect_impl(dialect).bind_processor(dialect)
            if isinstance(kind, JSON) and dialect.name == "sqlite":
                proc = _json_text  # what the SQLite JSON processor does, faster
            if proc is not None:
                convert.append((i, proc))
        constants = {}
        for name in names:
            if name in _BULK_COLUMNS:
                continue
            default = cast(Any, table.c[name].default)
            if default is None or not default.is_scalar:
                raise RuntimeError(f"outbox.{name} has no scalar default for bulk mails")
            constants[name] = default.arg
        return cls(str(compiled), names, constants, tuple(convert), bool(compiled.positiontup))

    def params(self, row: dict[str, Any]) -> Any:
        values = list(itemgetter(*self.names)({**self.constants, **row}))
        for i, proc in self.convert:
            if values[i] is not None:
                values[i] = proc(values[i])
        return tuple(values) if self.positional else dict(zip(self.names, values, strict=True))


_COMPILED: dict[str, _BulkInsert] = {}


async def enqueue_rows(session: AsyncSession, rows: Iterable[dict[str, Any]]) -> int:
    """Queue many plain mails (the renewal sweep asks thousands of candidates on the same
    day): one executemany per chunk, in the caller's transaction, and no rendering now —
    each row keeps its template context (stored form, see encode_context) and the sender
    renders it (same templates, same result). Rendering 100,000 mails up front took longer
    than the whole sweep may. A row: message_id, kind, to_addr, reply_to, context,
    candidature_id.

    While the database inserts one chunk, the next one is built: the INSERT runs in the
    driver's thread (aiosqlite) or on the server, and building rows is Python work."""
    conn = await session.connection()
    dialect = conn.dialect
    key = f"{dialect.name}+{dialect.driver}"
    bulk = _COMPILED.get(key)
    if bulk is None:
        bulk = _COMPILED[key] = _BulkInsert.compile(dialect)
    count = 0
    chunk: list[Any] = []
    writing: asyncio.Future[Any] | None = None
    for row in rows:
        chunk.append(bulk.params(row))
        if len(chunk) >= _CHUNK:
            if writing is not None:
                await writing
            # One statement at a time on the connection: the previous one is finished here.
            writing = asyncio.ensure_future(conn.exec_driver_sql(bulk.sql, chunk))
            await asyncio.sleep(0)  # let it hand its statement over before we go on
            count += len(chunk)
            chunk = []
    if writing is not None:
        await writing
    if chunk:
        await conn.exec_driver_sql(bulk.sql, chunk)
        count += len(chunk)
    return count
