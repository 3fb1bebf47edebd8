"""IMAP reader: every new message of the mailbox goes through `handle_mail` exactly once.

imapclient is blocking, so each connection lives in its own single-thread executor and is
only ever touched from that thread. Parsing and classification run there too: they are
pure, and doing them beside the socket keeps the event loop (the bot, the outbox) free.

Why nothing is lost or doubled, whatever the moment of a crash:

* fetching uses BODY.PEEK[], so reading changes nothing on the server;
* a message is handled in a transaction that also records its key in `processed_mails`:
  a crash before the commit means it is read and handled again;
* only after that commit is it moved to `Traitees` (MOVE is atomic); a crash between the
  commit and the move leaves it in the folder, and the next poll finds its key already
  recorded and just moves it;
* `imap_state.last_uid` is advanced only after the move, so it is a hint that saves work,
  never the thing that prevents a double application (that is the key). That is also why a
  UIDVALIDITY change can safely restart from UID 0.

Messages are handled one transaction per fetched batch (same order of effects as one by
one, and the same all-or-nothing per message since a batch commits or not as a whole; a
batch that fails is redone one transaction per message, which isolates a bad one), then
moved and acknowledged (`last_uid`) per batch: one IMAP round trip instead of 200.
The log carries counts and UIDs only: no address, subject or body.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import imaplib
import logging
import random
import re
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, TypeVar

from imapclient import IMAPClient  # type: ignore[import-untyped]
from imapclient.exceptions import IMAPClientError  # type: ignore[import-untyped]
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.models import ImapState
from core.rules.tokens import find_tokens
from core.services.replies import IncomingMail, handle_mail, handle_mails
from core.services.storage import FileStore
from mail.automatic import bounce_recipients, is_automatic
from mail.classify import Answer, classify
from mail.parsing import ParsedMail, UnreadableMail, parse_mail

__all__ = [
    "QUARANTAINE",
    "TRAITEES",
    "ImapNotConfigured",
    "MailboxError",
    "PollReport",
    "incoming_mail",
    "poll_once",
    "reply_keys",
    "run_reader",
]

log = logging.getLogger("aesh.mail.reader")

TRAITEES = "Traitees"
QUARANTAINE = "Quarantaine"

IMAP_TIMEOUT = 60.0
# RFC 2177: servers may drop an IDLE after 30 minutes; renewing well before also catches
# middleboxes that silently forget quiet connections.
IDLE_RENEW = 9 * 60.0
# How long one idle_check blocks: the bound on how late `run_reader` notices `stop`.
IDLE_CHECK = 1.0
# Without IDLE, how often the mailbox is polled.
NOOP_INTERVAL = 60.0
MAX_BACKOFF = 300.0
# A batch is cut short above this many bytes, so that a few huge messages (attachments)
# do not all sit in memory at once.
BATCH_BYTES = 32 * 2**20
# processed_mails.key is VARCHAR(300).
MAX_KEY = 300

APPLIED = frozenset({"maintenue", "retiree", "clarification"})
AUTOMATIC = frozenset({"automatique", "rebond"})
ALREADY = frozenset({"deja_traite"})

T = TypeVar("T")


class MailboxError(Exception):
    """The mailbox could not be reached or used; `stage` says where it failed."""

    def __init__(self, stage: str, detail: str) -> None:
        super().__init__(f"IMAP {stage}: {detail}")
        self.stage = stage
        self.detail = detail


class ImapNotConfigured(MailboxError):
    def __init__(self, missing: Sequence[str]) -> None:
        super().__init__("configuration", "missing " + ", ".join(missing))
        self.missing = tuple(missing)


@dataclass(frozen=True)
class PollReport:
    seen: int = 0
    applied: int = 0
    automatic: int = 0
    ignored: int = 0
    quarantined: int = 0
    already: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def missing_settings(settings: Settings) -> list[str]:
    names = {
        "AESH_IMAP_HOST": settings.imap_host,
        "AESH_IMAP_USER": settings.imap_user,
        "AESH_IMAP_PASSWORD": settings.imap_password,
    }
    return [name for name, value in names.items() if not value]


# --- what a message says (pure) ---------------------------------------------------------


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        if item.lower() not in seen:
            seen.add(item.lower())
            out.append(item)
    return out


def reply_keys(parsed: ParsedMail) -> list[str]:
    """Candidate tokens, most telling first: the plus-address the reply was sent to (the
    renewal mail's Reply-To), then the question it answers (`<renewal-TOKEN@…>`)."""
    found: list[str] = []
    for address in parsed.recipients:
        local = address.rsplit("@", 1)[0]
        if "+" in local:
            found.extend(find_tokens(local.split("+", 1)[1]))
    for message_id in (*parsed.in_reply_to, *parsed.references):
        inner = message_id.strip("<>").rsplit("@", 1)[0]
        if inner.lower().startswith("renewal-"):
            found.extend(find_tokens(inner[len("renewal-") :]))
    return _dedupe(found)


def mail_key(parsed: ParsedMail) -> str:
    if not parsed.message_id:
        return f"sha256:{parsed.content_hash}"
    if len(parsed.message_id) > MAX_KEY:
        # Still derived from the Message-ID (not the content), so a re-delivered copy with
        # other trace headers is still recognised.
        return "mid-sha256:" + hashlib.sha256(parsed.message_id.encode()).hexdigest()
    return parsed.message_id


def incoming_mail(parsed: ParsedMail) -> IncomingMail:
    bounced = bounce_recipients(parsed)
    automatic = is_automatic(parsed)
    # A machine's text is never an answer: no need to read it.
    answer = Answer.UNCLEAR if automatic or bounced else classify(parsed.reply_text)
    return IncomingMail(
        key=mail_key(parsed),
        sender=parsed.sender,
        reply_keys=tuple(reply_keys(parsed)),
        automatic=automatic,
        bounced=tuple(bounced),
        answer=answer.value,
    )


def _read(raw: bytes) -> IncomingMail | None:
    """None for a message to quarantine."""
    try:
        return incoming_mail(parse_mail(raw))
    except UnreadableMail:
        return None
    except Exception as err:
        # A bug on one odd message must not stop the mailbox: a human will look at it.
        log.error("message unreadable by the reader itself: %s", type(err).__name__)
        return None


# --- the connection (used from its worker thread only) ------------------------------------


_IMAP_ERRORS: tuple[type[BaseException], ...] = (
    imaplib.IMAP4.error,
    IMAPClientError,
    OSError,  # sockets, TLS, timeouts
    EOFError,
)


class _Mailbox:
    """Blocking IMAP operations. Every method runs in the connection's own thread."""

    def __init__(
        self, settings: Settings, ssl_context: ssl.SSLContext | None, timeout: float
    ) -> None:
        self.settings = settings
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.client: Any = None
        self.folder = settings.imap_folder
        self.traitees = TRAITEES
        self.quarantaine = QUARANTAINE
        self.can_move = self.uidplus = self.can_idle = False
        self.idling = False
        # The server announced new mail (untagged EXISTS) after our last SEARCH.
        self.news = False

    def connect(self) -> None:
        s = self.settings
        context = self.ssl_context
        if s.imap_ssl and context is None:
            context = ssl.create_default_context()
        self.client = IMAPClient(
            s.imap_host, port=s.imap_port, ssl=s.imap_ssl, ssl_context=context, timeout=self.timeout
        )

    def login(self) -> None:
        self.client.login(self.settings.imap_user, self.settings.imap_password)

    def prepare(self) -> None:
        caps = set(self.client.capabilities())
        self.can_move = b"MOVE" in caps
        self.uidplus = b"UIDPLUS" in caps
        self.can_idle = b"IDLE" in caps
        prefix = ""
        if b"NAMESPACE" in caps:
            with contextlib.suppress(*_IMAP_ERRORS):
                personal = self.client.namespace().personal
                if personal:
                    prefix = personal[0][0] or ""
        self.traitees = self._ensure_folder(TRAITEES, prefix)
        self.quarantaine = self._ensure_folder(QUARANTAINE, prefix)

    def _ensure_folder(self, name: str, prefix: str) -> str:
        # Servers with an "INBOX." personal namespace (Courier, Cyrus) refuse top-level names.
        for candidate in _dedupe([name, prefix + name]):
            if self.client.folder_exists(candidate):
                return candidate
        target = prefix + name
        try:
            self.client.create_folder(target)
        except IMAPClientError:
            if self.client.folder_exists(target):  # created meanwhile by another reader
                return target
            raise
        with contextlib.suppress(*_IMAP_ERRORS):
            self.client.subscribe_folder(target)  # so that webmails show it
        return target

    def select(self) -> int:
        info = self.client.select_folder(self.folder)
        return int(info[b"UIDVALIDITY"])

    def new_uids(self, last_uid: int) -> list[int]:
        # UNDELETED: a message we copied and flagged (no MOVE) but did not expunge before a
        # crash is already in Traitees. "n:*" always matches the highest UID, even below n.
        self._take_news()  # whatever was announced before this search, the search sees
        self.news = False
        uids = self.client.search(["UID", f"{last_uid + 1}:*", "UNDELETED"])
        return sorted(uid for uid in uids if uid > last_uid)

    def fetch_read(self, uids: Sequence[int]) -> list[tuple[int, IncomingMail | None]]:
        """(uid, facts or None to quarantine), oldest first; vanished messages are left out."""
        sizes = self.client.fetch(uids, ["RFC822.SIZE"])
        out: list[tuple[int, IncomingMail | None]] = []
        for group in _by_size(uids, sizes):
            data = self.client.fetch(group, ["BODY.PEEK[]"])
            for uid in group:
                raw = data.get(uid, {}).get(b"BODY[]")
                if raw is None:
                    continue  # expunged by someone else meanwhile
                out.append((uid, _read(raw)))
        self.news |= self._take_news()
        return out

    def move(self, uids: Sequence[int], folder: str, check_ids: Sequence[int] = ()) -> None:
        if not uids:
            return
        if self.can_move:
            self.client.move(uids, folder)
        else:
            self._copy_delete(uids, folder, check_ids)
        self.news |= self._take_news()

    def _copy_delete(self, uids: Sequence[int], folder: str, check_ids: Sequence[int]) -> None:
        # Without MOVE a crash between COPY and EXPUNGE would leave a copy on both sides; a
        # message that was handled before (check_ids) may be such a leftover.
        to_copy = [u for u in uids if u not in set(check_ids) or not self._copied(u, folder)]
        if to_copy:
            self.client.copy(to_copy, folder)
        self.client.add_flags(uids, [b"\\Deleted"], silent=True)
        if self.uidplus:
            self.client.uid_expunge(uids)
            return
        # Plain EXPUNGE removes every \Deleted message: only if ours are the only ones.
        flagged = set(self.client.search(["DELETED"]))
        if flagged <= set(uids):
            self.client.expunge()
        else:
            log.warning("no UIDPLUS: %d message(s) left flagged \\Deleted in the folder", len(uids))

    def _copied(self, uid: int, folder: str) -> bool:
        data = self.client.fetch([uid], ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]).get(uid, {})
        raw = next((v for k, v in data.items() if k.startswith(b"BODY[")), b"")
        match = re.search(rb"<[^<>\s]+>", raw if isinstance(raw, bytes) else b"")
        if match is None:
            return False
        self.client.select_folder(folder, readonly=True)
        try:
            return bool(
                self.client.search(
                    ["HEADER", "Message-ID", match.group(0).decode("ascii", "replace")]
                )
            )
        finally:
            self.client.select_folder(self.folder)

    def _take_news(self) -> bool:
        """Whether an EXISTS came with the last responses. A message that arrives during a
        poll is announced there, and not again once IDLE starts."""
        imap = getattr(self.client, "_imap", None)
        if imap is None:
            return False
        # imaplib keeps every untagged response it sees; a connection that lives for months
        # would otherwise grow without bound.
        for name in ("EXPUNGE", "FETCH", "RECENT", "VANISHED"):
            imap.untagged_responses.pop(name, None)
        return bool(imap.untagged_responses.pop("EXISTS", None))

    def idle_start(self) -> None:
        self.client.idle()
        self.idling = True

    def idle_check(self, timeout: float) -> bool:
        """True when the server announced new mail."""
        start = time.monotonic()
        responses = self.client.idle_check(timeout=timeout)
        if not responses and time.monotonic() - start < timeout * 0.8:
            # imapclient swallows EOF here and returns [] as for a timeout; only an early
            # return tells them apart (the socket was readable, yet no response came).
            raise ConnectionResetError("connection closed during IDLE")
        if any(isinstance(r, tuple) and r and r[0] == b"BYE" for r in responses):
            raise ConnectionResetError("server said BYE during IDLE")
        return any(_is_news(r) for r in responses)

    def idle_done(self) -> bool:
        self.idling = False
        _text, responses = self.client.idle_done()
        return any(_is_news(r) for r in responses)

    def logout(self) -> None:
        if self.client is None:
            return
        client, self.client = self.client, None
        try:
            if self.idling:
                self.idling = False
                client.idle_done()
            client.logout()
        except Exception:
            with contextlib.suppress(Exception):
                client.shutdown()

    def abort(self) -> None:
        """Close the socket without a goodbye (the connection is broken or stuck)."""
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.shutdown()


def _is_news(response: Any) -> bool:
    return (
        isinstance(response, tuple) and len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT")
    )


def _by_size(uids: Sequence[int], sizes: dict[int, dict[bytes, Any]]) -> Iterator[list[int]]:
    group: list[int] = []
    total = 0
    for uid in uids:
        size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0) or 0)
        if group and total + size > BATCH_BYTES:
            yield group
            group, total = [], 0
        group.append(uid)
        total += size
    if group:
        yield group


class _Connection:
    """One IMAP connection and the one thread allowed to use it."""

    def __init__(
        self,
        settings: Settings,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = IMAP_TIMEOUT,
    ) -> None:
        self.box = _Mailbox(settings, ssl_context, timeout)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aesh-imap")
        self.broken = False

    async def call(self, stage: str, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args))
        except _IMAP_ERRORS as err:
            self.broken = True
            raise MailboxError(stage, f"{type(err).__name__}: {err}") from err

    async def open(self) -> int:
        """Connect, log in, make sure the folders exist, select; returns UIDVALIDITY."""
        await self.call("connexion", self.box.connect)
        await self.call("authentification", self.box.login)
        await self.call("dossier", self.box.prepare)
        return await self.call("dossier", self.box.select)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            await loop.run_in_executor(
                self._executor, self.box.abort if self.broken else self.box.logout
            )
        self._executor.shutdown(wait=False)

    async def __aenter__(self) -> _Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# --- state --------------------------------------------------------------------------------


async def _start_state(
    sessionmaker: async_sessionmaker[AsyncSession], folder: str, uidvalidity: int
) -> int:
    async with sessionmaker() as session, session.begin():
        state = await session.get(ImapState, folder)
        if state is None:
            session.add(ImapState(folder=folder, uidvalidity=uidvalidity, last_uid=0))
            return 0
        if state.uidvalidity != uidvalidity:
            log.warning(
                "UIDVALIDITY of the folder changed (%d -> %d): rereading it all",
                state.uidvalidity,
                uidvalidity,
            )
            state.uidvalidity, state.last_uid = uidvalidity, 0
            return 0
        return int(state.last_uid)


async def _save_last_uid(
    sessionmaker: async_sessionmaker[AsyncSession], folder: str, uidvalidity: int, last_uid: int
) -> None:
    async with sessionmaker() as session, session.begin():
        state = await session.get(ImapState, folder)
        if state is None:
            session.add(ImapState(folder=folder, uidvalidity=uidvalidity, last_uid=last_uid))
        elif state.uidvalidity != uidvalidity:
            state.uidvalidity, state.last_uid = uidvalidity, last_uid
        elif last_uid > state.last_uid:
            state.last_uid = last_uid


# --- polling ------------------------------------------------------------------------------

# Errors that say nothing about the message: the poll stops and the message is read again
# next time. Anything else raised while handling one message is a bug on that message.
_TRANSIENT: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, OSError)


@dataclass
class _Pending:
    """Messages whose outcome is committed but that are still in the folder."""

    done: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)
    quarantine: list[int] = field(default_factory=list)
    acked: int = 0  # every UID up to this one is handled (committed or quarantined)


async def _handle(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    store: FileStore,
    mail: IncomingMail,
    today: date | None,
) -> str:
    async with sessionmaker() as session:
        try:
            outcome = await handle_mail(session, settings, store, mail, today)
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
    return outcome


async def _handle_batch(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    store: FileStore,
    mails: Sequence[IncomingMail],
    today: date | None,
) -> list[str]:
    async with sessionmaker() as session:
        try:
            outcomes = await handle_mails(session, settings, store, mails, today)
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
    return outcomes


async def _flush(
    conn: _Connection,
    sessionmaker: async_sessionmaker[AsyncSession],
    folder: str,
    uidvalidity: int,
    pending: _Pending,
    last_uid: int,
) -> int:
    """Move what is handled, then acknowledge it; returns the new last_uid."""
    if pending.done:
        await conn.call(
            "deplacement", conn.box.move, pending.done, conn.box.traitees, pending.already
        )
    if pending.quarantine:
        await conn.call("deplacement", conn.box.move, pending.quarantine, conn.box.quarantaine)
    moved = pending.done + pending.quarantine
    if moved:
        log.debug("moved UIDs %s", ",".join(map(str, moved)))
    pending.done, pending.already, pending.quarantine = [], [], []
    if pending.acked > last_uid:
        await _save_last_uid(sessionmaker, folder, uidvalidity, pending.acked)
        return pending.acked
    return last_uid


async def _poll(
    conn: _Connection,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    store: FileStore,
    uidvalidity: int,
    today: date | None,
    batch: int,
) -> PollReport:
    folder = settings.imap_folder
    last_uid = await _start_state(sessionmaker, folder, uidvalidity)
    uids = await conn.call("recherche", conn.box.new_uids, last_uid)
    counts = dict.fromkeys(("seen", "applied", "automatic", "ignored", "quarantined", "already"), 0)
    pending = _Pending(acked=last_uid)
    if uids:
        log.info("%d new message(s), UIDs %d-%d", len(uids), uids[0], uids[-1])
    size = max(1, batch)
    chunks = [uids[i : i + size] for i in range(0, len(uids), size)]
    ahead: asyncio.Task[list[tuple[int, IncomingMail | None]]] | None = None
    try:
        for k, chunk in enumerate(chunks):
            if ahead is None:
                items = await conn.call("lecture", conn.box.fetch_read, chunk)
            else:
                items, ahead = await ahead, None
            if k + 1 < len(chunks):
                # The IMAP thread downloads and parses the next batch while this one goes
                # through the database.
                ahead = asyncio.ensure_future(
                    conn.call("lecture", conn.box.fetch_read, chunks[k + 1])
                )
            readable = [(uid, mail) for uid, mail in items if mail is not None]
            batch_outcomes: list[str] | None = None
            if len(readable) > 1:
                try:
                    batch_outcomes = await _handle_batch(
                        sessionmaker, settings, store, [m for _, m in readable], today
                    )
                except _TRANSIENT:
                    raise
                except Exception as err:
                    # One odd message (or a concurrent reader) spoils the batch: nothing of
                    # it is committed; one transaction per message finds which one.
                    log.warning(
                        "batch of %d handled one by one (%s)", len(readable), type(err).__name__
                    )
            outcomes = dict(zip((uid for uid, _ in readable), batch_outcomes or (), strict=False))
            for uid, mail in items:
                counts["seen"] += 1
                if mail is None:
                    counts["quarantined"] += 1
                    pending.quarantine.append(uid)
                    log.warning("UID %d unreadable: quarantined", uid)
                else:
                    try:
                        outcome = outcomes.get(uid) or await _handle(
                            sessionmaker, settings, store, mail, today
                        )
                    except _TRANSIENT:
                        raise
                    except Exception as err:
                        log.error(
                            "UID %d: handling failed (%s): quarantined", uid, type(err).__name__
                        )
                        log.debug("handling failure", exc_info=True)
                        counts["quarantined"] += 1
                        pending.quarantine.append(uid)
                        pending.acked = uid
                        continue
                    kind = (
                        "applied"
                        if outcome in APPLIED
                        else "automatic"
                        if outcome in AUTOMATIC
                        else "already"
                        if outcome in ALREADY
                        else "ignored"
                    )
                    counts[kind] += 1
                    pending.done.append(uid)
                    if kind == "already":
                        pending.already.append(uid)
                    log.debug("UID %d: %s", uid, outcome)
                pending.acked = uid
            # Messages that vanished from this chunk are past too.
            pending.acked = max(pending.acked, chunk[-1])
            last_uid = await _flush(conn, sessionmaker, folder, uidvalidity, pending, last_uid)
    except BaseException:
        if ahead is not None:
            _discard(ahead)
        # What is committed is moved now rather than rediscovered next time.
        if not conn.broken:
            with contextlib.suppress(Exception):
                await _flush(conn, sessionmaker, folder, uidvalidity, pending, last_uid)
        raise
    report = PollReport(**counts)
    if report.seen:
        log.info(
            "poll: %d seen, %d applied, %d automatic, %d ignored, %d quarantined, "
            "%d already handled",
            report.seen,
            report.applied,
            report.automatic,
            report.ignored,
            report.quarantined,
            report.already,
        )
    return report


def _discard(task: asyncio.Task[Any]) -> None:
    if task.done():
        if not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" at exit
    else:
        task.cancel()


def _require_config(settings: Settings) -> None:
    missing = missing_settings(settings)
    if missing:
        raise ImapNotConfigured(missing)


async def poll_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    store: FileStore,
    *,
    today: date | None = None,
    batch: int = 200,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = IMAP_TIMEOUT,
) -> PollReport:
    """Connect, handle every new message of AESH_IMAP_FOLDER, disconnect.

    Raises ImapNotConfigured, or MailboxError when the server is unreachable or fails
    (what was committed before stays committed and is not applied again next time)."""
    _require_config(settings)
    settings.require_secret_key()
    async with _Connection(settings, ssl_context, timeout) as conn:
        uidvalidity = await conn.open()
        return await _poll(conn, sessionmaker, settings, store, uidvalidity, today, batch)


# --- long-running mode --------------------------------------------------------------------


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def _wait_for_news(
    conn: _Connection, stop: asyncio.Event, renew: float, check: float, noop_interval: float
) -> None:
    """Return when new mail may have arrived, the IDLE is due for renewal, or `stop`."""
    if conn.box.news:
        return
    if not conn.box.can_idle:
        await _sleep(stop, noop_interval)
        return
    await conn.call("idle", conn.box.idle_start)
    deadline = time.monotonic() + renew
    news = False
    try:
        while not stop.is_set() and not news:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            news = await conn.call("idle", conn.box.idle_check, min(check, remaining))
    finally:
        if not conn.broken:
            await conn.call("idle", conn.box.idle_done)


def reconnect_delay(failures: int, rng: random.Random | None = None) -> float:
    """1, 2, 4 … seconds, at most MAX_BACKOFF, with jitter."""
    base = min(MAX_BACKOFF, 2.0 ** min(max(failures - 1, 0), 16))
    return float(min(MAX_BACKOFF, base * (1 + (rng or random).uniform(0, 0.2))))


async def run_reader(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    store: FileStore,
    stop: asyncio.Event,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = IMAP_TIMEOUT,
    idle_renew: float = IDLE_RENEW,
    idle_check: float = IDLE_CHECK,
    noop_interval: float = NOOP_INTERVAL,
) -> None:
    """Poll, wait in IDLE, poll again on news or every `idle_renew` seconds, until `stop`.

    Any socket, IMAP or database error closes the connection and retries with backoff."""
    missing = missing_settings(settings)
    if missing:
        log.warning("mail reader idle: %s not set", ", ".join(missing))
        await stop.wait()
        return
    failures = 0
    while not stop.is_set():
        conn = _Connection(settings, ssl_context, timeout)
        delay = 0.0
        try:
            uidvalidity = await conn.open()
            while not stop.is_set():
                await _poll(conn, sessionmaker, settings, store, uidvalidity, None, 200)
                failures = 0
                await _wait_for_news(conn, stop, idle_renew, idle_check, noop_interval)
                if not stop.is_set():
                    # UIDVALIDITY can change while connected (mailbox recreated).
                    uidvalidity = await conn.call("dossier", conn.box.select)
        except Exception as err:
            failures += 1
            delay = reconnect_delay(failures)
            if isinstance(err, MailboxError):
                log.warning("mail reader: %s; retrying in %.0f s", err, delay)
            else:
                # Only the type: database errors quote their parameters.
                log.error("mail reader: %s; retrying in %.0f s", type(err).__name__, delay)
                log.debug("mail reader failure", exc_info=True)
                # The connection may be mid-command: do not try a polite logout.
                conn.broken = True
        finally:
            await conn.close()
        if delay:
            await _sleep(stop, delay)
