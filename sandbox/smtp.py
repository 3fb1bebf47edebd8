"""A local SMTP server (aiosmtpd) on the sandbox's own event loop: whatever the outbox
worker delivers lands in the page's mailbox. Loopback only, no TLS, no login: nothing
leaves the machine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["LocalSmtp"]

#: called with (envelope sender, envelope recipients, raw message); its result is ignored
OnMail = Callable[[str, list[str], bytes], Any]


class _Handler:
    def __init__(self, on_mail: OnMail) -> None:
        self._on_mail = on_mail

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(envelope.content, bytes):
            raw = envelope.content
        self._on_mail(envelope.mail_from or "", list(envelope.rcpt_tos), raw)
        return "250 Message accepted for delivery"


class LocalSmtp:
    """`await start()` listens on a free port of 127.0.0.1 (see `port`)."""

    def __init__(self, on_mail: OnMail, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._handler = _Handler(on_mail)
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        # Running the protocol in this loop (not aiosmtpd's Controller thread) lets the
        # handler touch the mail store and wake the page's long polls directly.
        self._server = await loop.create_server(
            lambda: SMTP(
                self._handler,
                hostname="bac-a-sable.localhost",
                enable_SMTPUTF8=True,
                loop=loop,
            ),
            self.host,
            0,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
