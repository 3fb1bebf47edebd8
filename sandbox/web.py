"""The sandbox page and its JSON routes (`/sandbox/api/…`), served by the Bot API test server
beside its `/_sim/` routes, so the page talks to one origin for the chat and the rest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.dates import today_paris
from core.models import Candidat
from core.services import candidatures
from core.services.storage import FileStore
from sandbox.mailbox import MailStore, build_reply, deliver_reply
from sandbox.personas import Persona, extra_candidate, totp_now

STATIC_DIR = Path(__file__).resolve().parent / "static"

# The page loads nothing from elsewhere; the mails' HTML, shown in a frame, may not even run
# scripts or load anything but inline styles and embedded images.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; frame-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'"
)
MAIL_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"
MAX_POLL = 30.0

Json = dict[str, Any]


@dataclass
class Clock:
    """The day the sandbox pretends it is, once a renewal sweep was run for another date;
    replies are then judged on that day too."""

    today: date | None = None

    def now(self) -> date:
        return self.today or today_paris()


@dataclass
class SandboxState:
    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    store: FileStore
    mailbox: MailStore
    personas: list[Persona]
    secrets: dict[str, str]
    bot_username: str
    #: wakes the bot's notification loop (a sweep may have queued renewal questions)
    poke: Callable[[], None] = lambda: None
    clock: Clock = field(default_factory=Clock)
    _extra: int = 0

    def persona(self, user_id: int) -> Persona | None:
        return next((p for p in self.personas if p.user_id == user_id), None)

    def add_candidate(self) -> Persona:
        return self.restore_candidate(self._extra + 1)

    def restore_candidate(self, number: int) -> Persona:
        """The extra candidate `number` (made on the page, in this run or an earlier one)."""
        self._extra = max(self._extra, number)
        persona = extra_candidate(number)
        if self.persona(persona.user_id) is None:
            self.personas.append(persona)
        return persona


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _fail(status: int, description: str) -> web.Response:
    return web.json_response({"ok": False, "description": description}, status=status)


async def _json_body(request: web.Request) -> Json:
    if not request.body_exists:
        return {}
    if request.content_type == "application/json":
        body = await request.json()
        return body if isinstance(body, dict) else {}
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}


def _no_store(response: web.StreamResponse) -> web.StreamResponse:
    response.headers["Cache-Control"] = "no-store"
    return response


class SandboxWeb:
    def __init__(self, state: SandboxState) -> None:
        self.s = state

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/", self.index),
            web.static("/static", STATIC_DIR, append_version=False),
            web.get("/sandbox/api/state", self.state),
            web.post("/sandbox/api/personas", self.new_persona),
            web.get("/sandbox/api/mails", self.mails),
            web.get("/sandbox/api/mails/{id:\\d+}", self.mail),
            web.get("/sandbox/api/mails/{id:\\d+}/html", self.mail_html),
            web.get("/sandbox/api/mails/{id:\\d+}/raw", self.mail_raw),
            web.get("/sandbox/api/mails/{id:\\d+}/attachments/{n:\\d+}", self.attachment),
            web.post("/sandbox/api/mails/{id:\\d+}/reply", self.reply),
            web.post("/sandbox/api/sweep", self.sweep),
        ]

    # ------------------------------------------------------------------ page

    async def index(self, request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(STATIC_DIR / "index.html")
        response.headers["Content-Security-Policy"] = PAGE_CSP
        return _no_store(response)

    def _persona_json(self, persona: Persona) -> Json:
        secret = self.s.secrets.get(persona.key)
        return {
            "key": persona.key,
            "user_id": persona.user_id,
            "role": persona.role,
            "first_name": persona.first_name,
            "label": persona.label,
            "description": persona.description,
            "totp": totp_now(secret) if secret else None,
        }

    async def state(self, request: web.Request) -> web.StreamResponse:
        return _no_store(
            _ok(
                {
                    "bot_username": self.s.bot_username,
                    "departement": self.s.settings.departement,
                    "mail_from": self.s.settings.mail_from,
                    "today": self.s.clock.now().isoformat(),
                    "simulated_day": self.s.clock.today is not None,
                    "personas": [self._persona_json(p) for p in self.s.personas],
                }
            )
        )

    async def new_persona(self, request: web.Request) -> web.Response:
        return _ok(self._persona_json(self.s.add_candidate()))

    # ------------------------------------------------------------------ mailbox

    async def mails(self, request: web.Request) -> web.StreamResponse:
        since = request.query.get("since")
        if since is not None and since.isdigit():
            timeout = min(float(request.query.get("timeout", "25")), MAX_POLL)
            await self.s.mailbox.wait_change(int(since), timeout)
        box = self.s.mailbox
        return _no_store(
            _ok({"version": box.version, "mails": [m.summary() for m in reversed(box.mails)]})
        )

    def _mail(self, request: web.Request) -> Any:
        try:
            return self.s.mailbox.get(int(request.match_info["id"]))
        except KeyError:
            raise web.HTTPNotFound() from None

    async def mail(self, request: web.Request) -> web.StreamResponse:
        return _no_store(_ok(self._mail(request).detail()))

    async def mail_html(self, request: web.Request) -> web.StreamResponse:
        html = self._mail(request).html
        if html is None:
            raise web.HTTPNotFound()
        response = web.Response(text=html, content_type="text/html", charset="utf-8")
        response.headers["Content-Security-Policy"] = MAIL_CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    async def mail_raw(self, request: web.Request) -> web.StreamResponse:
        mail = self._mail(request)
        return web.Response(
            body=mail.raw,
            content_type="message/rfc822",
            headers={"Content-Disposition": f'attachment; filename="courriel-{mail.id}.eml"'},
        )

    async def attachment(self, request: web.Request) -> web.StreamResponse:
        mail = self._mail(request)
        try:
            data, name, mime = mail.attachment(int(request.match_info["n"]))
        except IndexError:
            raise web.HTTPNotFound() from None
        safe = name.replace('"', "'").replace("\r", " ").replace("\n", " ")
        return web.Response(
            body=data,
            content_type=mime,
            headers={"Content-Disposition": f'attachment; filename="{safe}"'},
        )

    async def _sender_for(self, user_id: int | None, fallback: str) -> str:
        """The address of the candidate this persona registered as; else the mailbox the
        mail was delivered to (someone else reading that candidate's mail)."""
        if user_id is not None:
            async with self.s.sessionmaker() as session:
                address = await session.scalar(
                    select(Candidat.email).where(Candidat.telegram_id == user_id)
                )
            if address:
                return str(address)
        return fallback

    async def reply(self, request: web.Request) -> web.Response:
        original = self._mail(request)
        body = await _json_body(request)
        text = str(body.get("text") or "").strip()
        if not text:
            return _fail(400, "text is required")
        raw_user = str(body.get("user_id") or "")
        user_id = int(raw_user) if raw_user.isdigit() else None
        delivered_to = original.addresses("To") or original.envelope_to
        if not delivered_to:
            return _fail(400, "the mail has no recipient to reply from")
        sender = await self._sender_for(user_id, delivered_to[0])
        raw = build_reply(original, text, sender)
        stored = self.s.mailbox.add("reply", sender, original.addresses("Reply-To"), raw)
        outcome = await deliver_reply(
            self.s.sessionmaker, self.s.settings, self.s.store, raw, self.s.clock.today
        )
        self.s.mailbox.set_outcome(stored, outcome)
        return _ok({"outcome": outcome, "mail": stored.summary(), "sender": sender})

    # ------------------------------------------------------------------ renewal sweep

    async def sweep(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            day = date.fromisoformat(str(body.get("date") or today_paris().isoformat()))
        except ValueError:
            return _fail(400, "date must be YYYY-MM-DD")
        async with self.s.sessionmaker() as session:
            report = await candidatures.renewal_sweep(
                session, self.s.settings, self.s.store, today=day
            )
            await session.commit()
        self.s.clock.today = None if day == today_paris() else day
        self.s.poke()
        return _ok(
            {
                "date": day.isoformat(),
                "asked": report.asked,
                "reminded": report.reminded,
                "deleted": report.deleted,
            }
        )
