"""Turn an outbox row into a MIME message and hand it to the SMTP server.

Errors are sorted here into *temporary* (try again later) and *permanent* (this mail will
never go through as it is), because only the SMTP layer knows what a reply code means; the
outbox worker then decides when to retry.
"""

from __future__ import annotations

import contextlib
import email.policy
import logging
import ssl
from collections.abc import Iterable
from datetime import UTC, datetime
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from pathlib import Path
from types import TracebackType

import aiosmtplib

from core.config import Settings
from core.models import OutboxMail
from core.services.outbox import rendered
from core.texts import t

log = logging.getLogger("aesh.mail.sender")

SMTP_TIMEOUT = 30.0

# Headers that carry the row's own fields or the MIME structure: a row's extra headers may
# add or replace others (In-Reply-To, References, Auto-Submitted: auto-replied …), never these.
_PROTECTED = frozenset(
    {"from", "to", "cc", "bcc", "message-id", "date", "mime-version", "sender", "reply-to"}
)


class _CachedHeaderRegistry(HeaderRegistry):
    """The stdlib registry builds a new class each time it parses a header, a third of the
    cost of building a message; one class per header name is enough."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls


_POLICY = email.policy.SMTP.clone(header_factory=_CachedHeaderRegistry())


class SendError(Exception):
    """A mail could not be delivered; `reason` is safe to store (no body, no name)."""

    permanent = False

    def __init__(self, reason: str, *, server_down: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        # True when our server could not be reached or refused us (connect, TLS, login):
        # nothing was offered, so it says nothing about the mail being sent.
        self.server_down = server_down


class TemporaryError(SendError):
    permanent = False


class PermanentError(SendError):
    permanent = True


class SmtpNotConfigured(RuntimeError):
    pass


# --- message -----------------------------------------------------------------------------


def _address(name: str, addr: str) -> Address:
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain:
        raise PermanentError(f"invalid address {addr!r}")
    try:
        domain.encode("ascii")
    except UnicodeEncodeError:
        # IDNA: a non-ASCII domain then needs no SMTPUTF8; only a non-ASCII local part does.
        # Left as is when IDNA refuses it: SMTPUTF8 may still carry it.
        with contextlib.suppress(UnicodeError):
            domain = domain.encode("idna").decode("ascii")
    # username/domain rather than addr_spec: the latter refuses a non-ASCII local part,
    # which SMTPUTF8 servers accept.
    return Address(display_name=name, username=local, domain=domain)


def _addresses(values: Iterable[str]) -> list[Address]:
    return [_address(name, addr) for name, addr in getaddresses(list(values))]


def _one_line(value: str) -> str:
    return " ".join(value.split())


def build_message(row: OutboxMail, settings: Settings) -> EmailMessage:
    """The MIME message of `row`. Raises PermanentError when it cannot be built (missing
    attachment, malformed address or header): retrying would not help."""
    msg = EmailMessage(policy=_POLICY)
    try:
        subject, body_text, body_html = rendered(row)
    except Exception as err:  # a template or context that cannot render will never render
        raise PermanentError(f"cannot render {row.kind}: {type(err).__name__}") from None
    try:
        msg["From"] = _address(t("outbox.expediteur_nom"), settings.mail_from)
        msg["To"] = _addresses([row.to_addr])
        if row.cc:
            msg["Cc"] = _addresses(row.cc)
        if row.reply_to:
            msg["Reply-To"] = _addresses([row.reply_to])
        msg["Subject"] = _one_line(subject)
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = row.message_id
        # RFC 3834: well-behaved autoresponders (out of office, vacation) stay silent.
        msg["Auto-Submitted"] = "auto-generated"
        for name, value in (row.headers or {}).items():
            if name.lower() in _PROTECTED or name.lower().startswith("content-"):
                log.warning("outbox mail %s: header %s ignored", row.id, name)
                continue
            del msg[name]
            msg[name] = _one_line(value)
    except PermanentError:
        raise
    except (ValueError, TypeError) as err:
        raise PermanentError(f"invalid header: {err}") from None

    # Both encodings survive a server without 8BITMIME. Quoted-printable keeps the text
    # readable in the raw source; the HTML, read by no one raw, takes base64, which is
    # encoded in C (quoted-printable is pure Python and showed in throughput profiles).
    msg.set_content(body_text, charset="utf-8", cte="quoted-printable")
    if body_html:
        msg.add_alternative(body_html, subtype="html", charset="utf-8", cte="base64")
    for index, att in enumerate(row.attachments or [], start=1):
        # Relative paths are under AESH_STORAGE_DIR; an absolute one replaces it in the join.
        path = Path(settings.storage_dir) / att.get("path", "")
        mime = att.get("mime") or "application/octet-stream"
        try:
            data = path.read_bytes()
        except OSError:
            # The file's name may be personal; its position and type are enough to find it.
            raise PermanentError(f"attachment {index} ({mime}) missing on disk") from None
        maintype, _, subtype = mime.partition("/")
        if not subtype:
            maintype, subtype = "application", "octet-stream"
        msg.add_attachment(
            data, maintype=maintype, subtype=subtype, filename=att.get("filename") or path.name
        )
    return msg


def envelope(message: EmailMessage) -> tuple[str, list[str]]:
    sender = message["From"].addresses[0].addr_spec
    recipients = [
        a.addr_spec
        for header in ("To", "Cc", "Bcc")
        if message[header] is not None
        for a in message[header].addresses
    ]
    return sender, recipients


# --- SMTP --------------------------------------------------------------------------------


def _reply(code: int, text: str) -> str:
    # Servers quote the address at most; cut long replies so the CLI table stays readable.
    return f"{code} {_one_line(text)}"[:300]


def _is_temporary(code: int) -> bool:
    return code < 500


class SmtpSession:
    """One SMTP connection reused for several mails, reopened after it breaks."""

    def __init__(
        self,
        settings: Settings,
        *,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = SMTP_TIMEOUT,
    ) -> None:
        if not settings.smtp_host:
            raise SmtpNotConfigured("AESH_SMTP_HOST is not set")
        self.settings = settings
        self.tls_context = tls_context
        self.timeout = timeout
        self._client: aiosmtplib.SMTP | None = None
        self.connections = 0

    async def __aenter__(self) -> SmtpSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    async def connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        # tls_context=None lets aiosmtplib build a default, certificate-checking context;
        # tests pass one that trusts their throw-away CA instead of disabling checks.
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=self.timeout,
            use_tls=s.smtp_tls == "implicit",
            start_tls=s.smtp_tls == "starttls",
            tls_context=self.tls_context,
        )
        try:
            await client.connect()
            if s.smtp_user:
                await client.login(s.smtp_user, s.smtp_password or "")
        except aiosmtplib.SMTPAuthenticationError as err:
            await self._drop(client)
            raise TemporaryError(
                f"SMTP login refused: {_reply(err.code, err.message)}", server_down=True
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as err:
            await self._drop(client)
            raise TemporaryError(
                f"SMTP connection to {s.smtp_host}:{s.smtp_port} failed: "
                f"{type(err).__name__}: {_one_line(str(err))[:200]}",
                server_down=True,
            ) from None
        self._client = client
        self.connections += 1
        return client

    @staticmethod
    async def _drop(client: aiosmtplib.SMTP) -> None:
        # Closing a broken transport must not hide the error that broke it.
        with contextlib.suppress(Exception):
            client.close()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.is_connected:
                await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            await self._drop(client)

    async def send(self, message: EmailMessage) -> None:
        """Deliver one message. A connection found dead on reuse (server idle timeout) is
        reopened once before giving up."""
        fresh = not self.connected
        client = await self.connect() if fresh else self._client
        assert client is not None
        try:
            await self._send_on(client, message)
        except aiosmtplib.SMTPServerDisconnected:
            await self._forget()
            if fresh:
                raise TemporaryError("SMTP server closed the connection") from None
            client = await self.connect()
            try:
                await self._send_on(client, message)
            except aiosmtplib.SMTPServerDisconnected:
                await self._forget()
                raise TemporaryError("SMTP server closed the connection") from None

    async def _forget(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await self._drop(client)

    async def _send_on(self, client: aiosmtplib.SMTP, message: EmailMessage) -> None:
        sender, recipients = envelope(message)
        try:
            errors, _ = await client.send_message(
                message, sender=sender, recipients=recipients, timeout=self.timeout
            )
        except aiosmtplib.SMTPServerDisconnected:
            raise
        except aiosmtplib.SMTPRecipientsRefused as err:
            parts = [f"{r.recipient}: {_reply(r.code, r.message)}" for r in err.recipients]
            text = "recipient refused: " + "; ".join(parts)
            if any(_is_temporary(r.code) for r in err.recipients):
                raise TemporaryError(text[:500]) from None
            raise PermanentError(text[:500]) from None
        except aiosmtplib.SMTPSenderRefused as err:
            # A refused sender is our configuration, not this mail: retry, do not give up.
            raise TemporaryError(f"sender refused: {_reply(err.code, err.message)}") from None
        except aiosmtplib.SMTPNotSupported as err:
            # A non-ASCII mailbox name and a server without SMTPUTF8: it will never pass.
            raise PermanentError(f"not supported by the server: {err}") from None
        except aiosmtplib.SMTPResponseException as err:
            text = f"SMTP error: {_reply(err.code, err.message)}"
            if _is_temporary(err.code):
                raise TemporaryError(text) from None
            raise PermanentError(text) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as err:
            await self._forget()
            # Mid-transaction (read timeout …): this mail is retried later, the next one
            # gets a new connection.
            raise TemporaryError(
                f"SMTP failure: {type(err).__name__}: {_one_line(str(err))[:200]}"
            ) from None
        if errors:
            # Delivered to at least one recipient: a retry would duplicate it for the others.
            log.warning(
                "mail %s refused by %d of its recipients", message["Message-ID"], len(errors)
            )


async def send(
    message: EmailMessage,
    settings: Settings,
    *,
    tls_context: ssl.SSLContext | None = None,
    timeout: float = SMTP_TIMEOUT,
) -> None:
    """Send one message on its own connection (AESH_SMTP_TLS: none, starttls or implicit)."""
    async with SmtpSession(settings, tls_context=tls_context, timeout=timeout) as session:
        await session.send(message)
