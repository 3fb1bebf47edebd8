"""Outbox worker: deliver the queued mails (core/services/outbox.py writes them).

Delivery is at least once: a row is marked sent in its own commit right after the server
accepted it, so a crash can at worst resend the last one or two mails, with the same
Message-ID, which mail clients fold into one. Rows are leased before sending so that two
workers (the `aesh run` process and an `aesh outbox flush` typed meanwhile) do not both
take the same row.

A mail the server refuses for good (5xx) fails at once; one it defers (4xx) is retried with
exponential backoff and fails after MAX_ATTEMPTS. When our own server cannot be reached
(connection, TLS, login), nothing was offered: the round stops, its mails keep their
attempts and stay due (with the error, for `aesh outbox list`), and the worker probes the
server again after a growing pause (at most SERVER_PROBE_MAX) — so after an outage of any
length the queue leaves within minutes of the server's return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.models import OutboxMail
from core.services.outbox import decode_context, render_mail
from mail.sender import (
    SMTP_TIMEOUT,
    PermanentError,
    SendError,
    SmtpNotConfigured,
    SmtpSession,
    TemporaryError,
    build_message,
)

log = logging.getLogger("aesh.mail.outbox")

MAX_ATTEMPTS = 8
BASE_DELAY = timedelta(minutes=1)
MAX_DELAY = timedelta(hours=6)
SERVER_PROBE_MAX = timedelta(minutes=10)
JITTER = 0.1
STATUSES = ("pending", "sent", "failed")

# Rows are leased in small groups: one commit per group, and a crashed worker's rows come
# back after LEASE instead of staying stuck. LEASE is far above what CLAIM_BATCH mails take.
CLAIM_BATCH = 50
LEASE = timedelta(minutes=15)

__all__ = [
    "MAX_ATTEMPTS",
    "FlushReport",
    "SmtpNotConfigured",
    "backoff",
    "flush",
    "list_mails",
    "run_worker",
]


@dataclass(frozen=True)
class FlushReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    # The round stopped because our SMTP server could not be reached (its mails wait).
    server_down: bool = False

    @property
    def total(self) -> int:
        return self.sent + self.retried + self.failed


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Delay after the `attempts`-th failure: 1, 2, 4 … minutes, at most 6 hours. The jitter
    spreads a burst of mails that failed together (server down) over the next retry."""
    base = min(BASE_DELAY * (1 << min(max(attempts - 1, 0), 20)), MAX_DELAY)
    factor = 1 + (rng or random).uniform(0, JITTER)
    return min(base * factor, MAX_DELAY)


def _utc(value: datetime) -> datetime:
    # SQLite gives back naive datetimes; everything in the outbox is UTC.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _due(now: datetime) -> Any:
    return (OutboxMail.status == "pending") & (OutboxMail.next_attempt_at <= now)


async def _claim(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime, n: int
) -> list[int]:
    """Lease up to `n` due rows, oldest first. The conditional UPDATE is what makes the lease
    safe: a row another worker has just leased is no longer due and is not taken."""
    async with sessionmaker() as session, session.begin():
        ids = list(
            await session.scalars(
                select(OutboxMail.id)
                .where(_due(now))
                .order_by(OutboxMail.created_at, OutboxMail.id)
                .limit(n)
            )
        )
        if not ids:
            return []
        taken = await session.scalars(
            update(OutboxMail)
            .where(OutboxMail.id.in_(ids), _due(now))
            .values(next_attempt_at=now + LEASE)
            .returning(OutboxMail.id)
            .execution_options(synchronize_session=False)
        )
        claimed = set(taken)
    return [i for i in ids if i in claimed]


def _outcome(
    row: OutboxMail, now: datetime, error: SendError | None, report: dict[str, int]
) -> dict[str, Any]:
    """The columns to write for this attempt (not for an unreachable server: `_wait`)."""
    attempts = row.attempts + 1
    if error is None:
        report["sent"] += 1
        log.debug("outbox mail %s sent", row.id)
        return {"attempts": attempts, "status": "sent", "sent_at": now, "last_error": None}
    values: dict[str, Any] = {"attempts": attempts, "last_error": error.reason}
    if error.permanent or attempts >= MAX_ATTEMPTS:
        values["status"] = "failed"
        report["failed"] += 1
        log.warning("outbox mail %s failed after %d attempt(s)", row.id, attempts)
    else:
        values["next_attempt_at"] = now + backoff(attempts)
        report["retried"] += 1
        log.info("outbox mail %s postponed (attempt %d)", row.id, attempts)
    return values


async def flush(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    now: datetime | None = None,
    limit: int = 500,
    tls_context: ssl.SSLContext | None = None,
    timeout: float = SMTP_TIMEOUT,
) -> FlushReport:
    """Deliver every due mail (at most `limit`), each outcome committed on its own.

    Raises SmtpNotConfigured when AESH_SMTP_HOST is unset (nothing is touched then)."""
    now = _utc(now or datetime.now(UTC))
    counts = {"sent": 0, "retried": 0, "failed": 0}
    handled = 0
    down = False
    async with SmtpSession(settings, tls_context=tls_context, timeout=timeout) as smtp:
        while handled < limit and not down:
            ids = await _claim(sessionmaker, now, min(CLAIM_BATCH, limit - handled))
            if not ids:
                break
            handled += len(ids)
            down = await _deliver(sessionmaker, settings, smtp, ids, now, counts)
    report = FlushReport(**counts, server_down=down)
    if report.total:
        log.info(
            "outbox flush: %d sent, %d retried, %d failed%s",
            report.sent,
            report.retried,
            report.failed,
            " (SMTP server unreachable)" if down else "",
        )
    return report


async def _deliver(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    smtp: SmtpSession,
    ids: Sequence[int],
    now: datetime,
    counts: dict[str, int],
) -> bool:
    """Send the leased mails `ids`; True when our server could not be reached, which ends
    the round: that mail and the ones after it wait, still due, for the server's return."""
    async with sessionmaker() as session:
        rows = list(
            await session.scalars(
                select(OutboxMail)
                .where(OutboxMail.id.in_(ids))
                .order_by(OutboxMail.created_at, OutboxMail.id)
            )
        )
    async with sessionmaker() as writer:
        # Each outcome is committed on its own, but while the SMTP server answers mail n+1
        # the database records mail n: the two waits overlap (about 20 % more mails/s here).
        # At most one write is in flight, so they stay in order on the single `writer`.
        writing: asyncio.Task[None] | None = None
        try:
            for k, row in enumerate(rows):
                error: SendError | None = None
                try:
                    await smtp.send(build_message(row, settings))
                except (TemporaryError, PermanentError) as err:
                    if err.server_down:
                        if writing is not None:
                            await writing
                            writing = None
                        await _wait(writer, [r.id for r in rows[k:]], now, err)
                        counts["retried"] += len(rows) - k
                        return True
                    error = err
                values = _outcome(row, now, error, counts)
                if writing is not None:
                    await writing
                writing = asyncio.create_task(_write(writer, row.id, values))
        finally:
            if writing is not None:
                await writing
    return False


async def _wait(
    session: AsyncSession, row_ids: Sequence[int], now: datetime, error: SendError
) -> None:
    """Leave mails that could not be offered due again, attempts untouched, with the error."""
    log.info("outbox: SMTP server unreachable, %d mail(s) wait for it", len(row_ids))
    await session.execute(
        update(OutboxMail)
        .where(OutboxMail.id.in_(row_ids), OutboxMail.status == "pending")
        .values(next_attempt_at=now, last_error=error.reason)
        .execution_options(synchronize_session=False)
    )
    await session.commit()


async def _write(session: AsyncSession, row_id: int, values: dict[str, Any]) -> None:
    # A plain UPDATE: the ORM's unit of work costs about as much again, per mail.
    await session.execute(
        update(OutboxMail)
        .where(OutboxMail.id == row_id)
        .values(values)
        .execution_options(synchronize_session=False)
    )
    await session.commit()


async def run_worker(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    stop: asyncio.Event,
    interval: float = 5.0,
    *,
    tls_context: ssl.SSLContext | None = None,
) -> None:
    """Flush every `interval` seconds until `stop` is set."""
    if not settings.smtp_host:
        log.warning("outbox worker idle: AESH_SMTP_HOST is not set")
        await stop.wait()
        return
    limit = 500
    pause = interval
    while not stop.is_set():
        try:
            report = await flush(sessionmaker, settings, limit=limit, tls_context=tls_context)
        except Exception as err:
            # A locked database or a bug in one round must not end the worker for good.
            # Only the type is logged at error level: SQL errors quote their parameters.
            log.error("outbox flush failed: %s", type(err).__name__)
            log.debug("outbox flush failure", exc_info=True)
            report = FlushReport()
        if report.server_down:
            # Probe a server that is down less and less often, but never less than every
            # SERVER_PROBE_MAX: the mails wait due, and leave at the first probe that works.
            pause = min(pause * 2, SERVER_PROBE_MAX.total_seconds())
        else:
            pause = interval
            if report.total >= limit:
                continue  # more is due: no pause
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=pause)


def _subject(kind: str, context: dict[str, Any] | None) -> str:
    """Subject of a mail queued in bulk (rendered only when sent)."""
    try:
        return render_mail(kind, decode_context(context or {}))[0]
    except Exception:  # listing must not fail on one bad row; delivery will report it
        return f"({kind})"


async def list_mails(
    session: AsyncSession, status: str | None = None, *, limit: int | None = None
) -> list[dict[str, Any]]:
    """Outbox rows for the `aesh outbox list` command, oldest first (no bodies)."""
    q = select(
        OutboxMail.id,
        OutboxMail.kind,
        OutboxMail.to_addr,
        OutboxMail.subject,
        OutboxMail.context,
        OutboxMail.status,
        OutboxMail.attempts,
        OutboxMail.next_attempt_at,
        OutboxMail.last_error,
        OutboxMail.created_at,
        OutboxMail.sent_at,
    ).order_by(OutboxMail.id)
    if status is not None:
        q = q.where(OutboxMail.status == status)
    if limit is not None:
        q = q.order_by(None).order_by(OutboxMail.id.desc()).limit(limit)
    rows = (await session.execute(q)).all()
    if limit is not None:
        rows = rows[::-1]
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "to": r.to_addr,
            "subject": r.subject if r.subject is not None else _subject(r.kind, r.context),
            "status": r.status,
            "attempts": r.attempts,
            "next_attempt_at": _utc(r.next_attempt_at) if r.status == "pending" else None,
            "last_error": r.last_error,
            "created_at": _utc(r.created_at),
            "sent_at": _utc(r.sent_at) if r.sent_at else None,
        }
        for r in rows
    ]
