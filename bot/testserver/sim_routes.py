"""``/_sim/`` JSON routes: the simulator's Python API over HTTP, for a browser chat page.

Every route takes its arguments from the query string, a JSON body or a form (uploads as
multipart ``file`` parts, or base64 in JSON as ``content_base64``), and an optional
``token`` choosing the bot (default: the first one). Replies are
``{"ok": true, "result": …}`` or ``{"ok": false, "description": …}`` with 400 (bad
arguments), 404 (unknown user, message or button) or 504 (waiting timed out).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.testserver.simulator import AlbumItem, BotSimulator
from bot.testserver.state import CallbackAnswer, ChatMessage, World

__all__ = ["SimRoutes"]

Json = dict[str, Any]
SimHandler = Callable[[BotSimulator, "_Args"], Awaitable[Any]]


class _Args:
    def __init__(self, values: Json, files: list[tuple[str, bytes, str | None]]) -> None:
        self.values = values
        #: (file name, bytes, content type) of each multipart ``file`` part, in order
        self.files = files

    def get(self, name: str, default: Any = None) -> Any:
        value = self.values.get(name)
        return default if value is None or value == "" else value

    def text(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise ValueError(f"{name} is required")
        return str(value)

    def integer(self, name: str, default: int | None = None) -> int:
        value = self.get(name, default)
        if value is None:
            raise ValueError(f"{name} is required")
        return int(value)

    def opt_integer(self, name: str) -> int | None:
        value = self.get(name)
        return None if value is None else int(value)

    def number(self, name: str, default: float) -> float:
        return float(self.get(name, default))

    def content(self) -> tuple[bytes, str | None, str | None]:
        """One upload: (bytes, file name, mime type)."""
        if self.files:
            return self.files[0][1], self.files[0][0], self.files[0][2]
        encoded = self.text("content_base64")
        try:
            data = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise ValueError("content_base64 is not valid base64") from exc
        return data, self.get("file_name"), self.get("mime_type")


async def _read_args(request: web.Request) -> _Args:
    values: Json = dict(request.query)
    files: list[tuple[str, bytes, str | None]] = []
    if request.body_exists:
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the JSON body must be an object")
            values.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files.append((value.filename, value.file.read(), value.content_type))
                else:
                    values[key] = value
    return _Args(values, files)


def _answer_json(answer: CallbackAnswer) -> Json:
    return {
        "callback_query_id": answer.callback_query_id,
        "message_id": answer.message_id,
        "data": answer.data,
        "text": answer.text,
        "show_alert": answer.show_alert,
        "url": answer.url,
    }


def _message_json(message: ChatMessage | None) -> Json | None:
    return None if message is None else message.sim_json()


class SimRoutes:
    def __init__(self, world: World, simulator: Callable[[str | None], BotSimulator]) -> None:
        self._world = world
        self._simulator = simulator

    def routes(self) -> list[web.RouteDef]:
        handlers: dict[str, SimHandler] = {
            "users": self._users,
            "send_text": self._send_text,
            "press": self._press,
            "tap_reply_button": self._tap_reply_button,
            "send_document": self._send_document,
            "send_photo": self._send_photo,
            "send_album": self._send_album,
            "send_contact": self._send_contact,
            "chat": self._chat,
            "last_bot_message": self._last_bot_message,
            "callback_answers": self._callback_answers,
            "wait_for_bot": self._wait_for_bot,
            "actions": self._actions,
            "fail_next": self._fail_next,
            "calls": self._calls,
        }
        routes = [web.get("/_sim/bots", self._bots), web.get("/_sim/files/{file_id}", self._file)]
        for name, handler in handlers.items():
            wrapped = self._wrap(handler)
            routes += [web.get(f"/_sim/{name}", wrapped), web.post(f"/_sim/{name}", wrapped)]
        return routes

    def _wrap(self, handler: SimHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def route(request: web.Request) -> web.Response:
            try:
                args = await _read_args(request)
                simulator = self._simulator(args.get("token"))
                result = await handler(simulator, args)
            except TimeoutError as exc:
                return _fail(504, str(exc))
            except KeyError as exc:
                return _fail(404, f"not found: {exc.args[0] if exc.args else ''}")
            except LookupError as exc:
                return _fail(404, str(exc))
            except (ValueError, TypeError) as exc:
                return _fail(400, str(exc))
            return web.json_response({"ok": True, "result": result})

        return route

    async def _bots(self, request: web.Request) -> web.Response:
        bots = [{"token": b.token, "user": b.user_api()} for b in self._world.bots.values()]
        return web.json_response({"ok": True, "result": bots})

    async def _file(self, request: web.Request) -> web.Response:
        stored = self._world.files.get(request.match_info["file_id"])
        if stored is None:
            return _fail(404, "unknown file")
        headers = {}
        if stored.file_name:
            headers["Content-Disposition"] = f'inline; filename="{stored.file_name}"'
        content_type = stored.mime_type or ("image/jpeg" if stored.kind == "photo" else None)
        return web.Response(
            body=stored.content,
            content_type=content_type or "application/octet-stream",
            headers=headers,
        )

    # ------------------------------------------------------------------ handlers

    async def _users(self, sim: BotSimulator, args: _Args) -> Any:
        if args.get("id") is None:
            return [vars(user) for user in sim.users()]
        user = sim.user(
            args.integer("id"),
            args.text("first_name"),
            args.get("username"),
            args.get("language_code", "fr"),
            last_name=args.get("last_name"),
            phone_number=args.get("phone_number"),
        )
        return vars(user)

    async def _send_text(self, sim: BotSimulator, args: _Args) -> Any:
        message = sim.send_text(
            args.integer("user_id"), args.text("text"), reply_to=args.opt_integer("reply_to")
        )
        return message.sim_json()

    async def _press(self, sim: BotSimulator, args: _Args) -> Any:
        query_id = sim.press(
            args.integer("user_id"), args.text("button"), args.opt_integer("message_id")
        )
        return {"callback_query_id": query_id}

    async def _tap_reply_button(self, sim: BotSimulator, args: _Args) -> Any:
        return sim.tap_reply_button(args.integer("user_id"), args.text("label")).sim_json()

    async def _send_document(self, sim: BotSimulator, args: _Args) -> Any:
        content, file_name, mime_type = args.content()
        message = sim.send_document(
            args.integer("user_id"),
            content,
            file_name or "document",
            mime_type,
            caption=args.get("caption"),
        )
        return message.sim_json()

    async def _send_photo(self, sim: BotSimulator, args: _Args) -> Any:
        content, _, _ = args.content()
        return sim.send_photo(
            args.integer("user_id"), content, caption=args.get("caption")
        ).sim_json()

    async def _send_album(self, sim: BotSimulator, args: _Args) -> Any:
        items: list[AlbumItem] = []
        if args.files:
            as_photos = args.get("kind") == "photo" or (
                args.get("kind") is None
                and all((ctype or "").startswith("image/") for _, _, ctype in args.files)
            )
            for name, data, ctype in args.files:
                items.append(data if as_photos else (data, name, ctype or ""))
        else:
            for item in args.get("items") or []:
                data = base64.b64decode(item["content_base64"])
                if item.get("kind", "photo") == "photo":
                    items.append(data)
                else:
                    items.append((data, item.get("file_name") or "document"))
        messages = sim.send_album(args.integer("user_id"), items, caption=args.get("caption"))
        return [m.sim_json() for m in messages]

    async def _send_contact(self, sim: BotSimulator, args: _Args) -> Any:
        message = sim.send_contact(
            args.integer("user_id"),
            args.get("phone_number"),
            first_name=args.get("first_name"),
            last_name=args.get("last_name"),
        )
        return message.sim_json()

    async def _chat(self, sim: BotSimulator, args: _Args) -> Any:
        """The whole chat view; with ``since=<version>`` it long-polls for a change."""
        user_id = args.integer("user_id")
        sim.chat(user_id)  # creates the user on first sight, like the Python API
        changed = sim.state.chat(user_id).changed
        since = args.opt_integer("since")
        if since is not None and since == changed.version:
            await changed.wait(args.number("timeout", 25.0))
        answers = sim.callback_answers(user_id)
        return {
            "version": changed.version,
            "messages": [m.sim_json() for m in sim.chat(user_id)],
            "reply_keyboard": sim.reply_keyboard(user_id),
            "commands": sim.commands(user_id),
            "menu_button": sim.menu_button(user_id),
            "actions": sim.actions(user_id),
            "callback_answers": [_answer_json(a) for a in answers],
            "bot": sim.state.user_api(),
        }

    async def _last_bot_message(self, sim: BotSimulator, args: _Args) -> Any:
        return _message_json(sim.last_bot_message(args.integer("user_id")))

    async def _callback_answers(self, sim: BotSimulator, args: _Args) -> Any:
        return [_answer_json(a) for a in sim.callback_answers(args.integer("user_id"))]

    async def _wait_for_bot(self, sim: BotSimulator, args: _Args) -> Any:
        message = await sim.wait_for_bot(
            args.integer("user_id"), timeout=args.number("timeout", 5.0)
        )
        return message.sim_json()

    async def _actions(self, sim: BotSimulator, args: _Args) -> Any:
        return sim.actions(args.integer("user_id"))

    async def _fail_next(self, sim: BotSimulator, args: _Args) -> Any:
        sim.fail_next(
            args.text("method"),
            args.integer("status", 429),
            args.get("description"),
            retry_after=args.opt_integer("retry_after"),
            count=args.integer("count", 1),
        )
        return True

    async def _calls(self, sim: BotSimulator, args: _Args) -> Any:
        return [vars(call) for call in sim.calls(args.get("method"))]


def _fail(status: int, description: str) -> web.Response:
    return web.json_response({"ok": False, "description": description}, status=status)
