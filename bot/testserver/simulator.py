"""The user side: what a person does in a Telegram client, turned into bot updates.

``BotSimulator`` is the Python API tests (and the browser sandbox, through
``/_sim/`` routes) use to act as users of one bot and to read their chats. Actions are
synchronous: they queue an update and wake the bot's long poll; ``wait_for_bot`` then
awaits the bot's answer instead of sleeping.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from bot.testserver.errors import default_description
from bot.testserver.markup import command_entity
from bot.testserver.state import (
    ApiCall,
    BotState,
    CallbackAnswer,
    ChatMessage,
    ChatState,
    Failure,
    PendingCallback,
    SimUser,
    World,
)

__all__ = ["AlbumItem", "BotSimulator"]

Json = dict[str, Any]
#: an album item: photo bytes, or ``(bytes, file_name[, mime_type])`` for a document
AlbumItem = bytes | tuple[bytes, str] | tuple[bytes, str, str]
Predicate = Callable[[ChatMessage], bool]

_DEFAULT_PHONE = "+33600000000"


def _find_button(buttons: list[Json], label: str, *, exact_only: bool) -> list[Json]:
    exact = [b for b in buttons if b.get("text") == label or b.get("callback_data") == label]
    if exact or exact_only:
        return exact[:1]
    needle = label.casefold()
    return [b for b in buttons if needle in str(b.get("text", "")).casefold()]


def _summary(message: ChatMessage) -> str:
    who = "bot" if message.from_bot else "user"
    body = message.content or ""
    if message.document:
        body = f"[document {message.document.file_name}] {body}"
    if message.photo:
        body = f"[photo] {body}"
    if message.contact:
        body = f"[contact {message.contact.get('phone_number')}]"
    flags = "".join(
        flag for flag, on in ((" (edited)", message.edited), (" (deleted)", message.deleted)) if on
    )
    buttons = message.button_labels
    keyboard = f" {buttons}" if buttons else ""
    return f"#{message.id} {who}{flags}: {body.strip()!r}{keyboard}"


class BotSimulator:
    """Users talking to the bot whose token is ``token``."""

    def __init__(self, world: World, bot: BotState) -> None:
        self._world = world
        self._bot = bot

    # ------------------------------------------------------------------ identity

    @property
    def token(self) -> str:
        return self._bot.token

    @property
    def bot_id(self) -> int:
        return self._bot.id

    @property
    def username(self) -> str:
        return self._bot.username

    @property
    def state(self) -> BotState:
        """The raw bot state (updates queue, commands…) for unusual assertions."""
        return self._bot

    # ------------------------------------------------------------------ users

    def user(
        self,
        id: int,
        first_name: str,
        username: str | None = None,
        language_code: str | None = "fr",
        *,
        last_name: str | None = None,
        phone_number: str | None = None,
    ) -> SimUser:
        """Create (or redefine) a user; users are shared by every bot of the server."""
        user = self._world.users.get(id)
        if user is None:
            user = self._world.users[id] = SimUser(id=id, first_name=first_name)
        user.first_name = first_name
        user.username = username
        user.language_code = language_code
        user.last_name = last_name
        user.phone_number = phone_number
        return user

    def users(self) -> list[SimUser]:
        return list(self._world.users.values())

    def _chat(self, user_id: int) -> ChatState:
        if user_id not in self._world.users:
            # Tests may skip sim.user(); give the user a recognizable name.
            self.user(user_id, f"User{user_id}")
        return self._bot.chat(user_id)

    def block(self, user_id: int) -> None:
        """The user blocks the bot: sending to them now fails with 403."""
        self._chat(user_id).blocked = True

    # ------------------------------------------------------------------ actions

    def _act(self, chat: ChatState) -> None:
        chat.actions += 1
        chat.action_seq = self._world.tick()
        chat.started = True
        chat.blocked = False

    def _user_message(self, chat: ChatState, **fields: Any) -> ChatMessage:
        message = chat.new_message(from_bot=False, **fields)
        self._bot.push_update("message", chat.api_message(message))
        return message

    def send_text(self, user_id: int, text: str, *, reply_to: int | None = None) -> ChatMessage:
        """Type and send ``text``; ``/command`` gets its bot_command entity.

        Like a client, a message sent right after a bot message with ``force_reply`` is a
        reply to it unless ``reply_to`` says otherwise.
        """
        chat = self._chat(user_id)
        self._act(chat)
        return self._send_text(chat, text, reply_to)

    def _send_text(self, chat: ChatState, text: str, reply_to: int | None) -> ChatMessage:
        if reply_to is None:
            bot_messages = chat.bot_messages()
            if bot_messages and bot_messages[-1].keyboard_kind == "force_reply":
                reply_to = bot_messages[-1].id
        return self._user_message(
            chat,
            text=text,
            plain_text=text,
            entities=command_entity(text),
            reply_to_message_id=reply_to,
        )

    def press(self, user_id: int, button: str, message_id: int | None = None) -> str:
        """Press an inline button, found by label or callback_data; returns the query id.

        The label must match exactly, else be a unique (case-insensitive) substring, in
        the latest bot message carrying such a button (or in ``message_id``).
        """
        chat = self._chat(user_id)
        if message_id is not None:
            message = chat.get(message_id)
            if message is None or not message.from_bot:
                raise LookupError(f"no bot message #{message_id} in the chat with {user_id}")
            candidates = [message]
        else:
            candidates = list(reversed(chat.bot_messages()))
        found: tuple[ChatMessage, Json] | None = None
        for exact_only in (True, False):
            for message in candidates:
                matches = _find_button(message.inline_buttons, button, exact_only=exact_only)
                if len(matches) > 1:
                    labels = [b["text"] for b in matches]
                    raise LookupError(
                        f"{button!r} matches several buttons of #{message.id}: {labels}"
                    )
                if matches:
                    found = (message, matches[0])
                    break
            if found:
                break
        if found is None:
            shown = {m.id: m.button_labels for m in candidates if m.button_labels}
            raise LookupError(f"no inline button {button!r}; buttons shown: {shown}")
        message, chosen = found
        data = chosen.get("callback_data")
        if data is None:
            kinds = sorted(set(chosen) - {"text"})
            raise ValueError(f"button {chosen['text']!r} is not a callback button ({kinds})")
        self._act(chat)
        query_id = str(secrets.randbits(63))
        self._bot.callbacks[query_id] = PendingCallback(query_id, user_id, message.id, data)
        self._bot.push_update(
            "callback_query",
            {
                "id": query_id,
                "from": chat.user.api(),
                "message": chat.api_message(message),
                "chat_instance": chat.chat_instance,
                "data": data,
            },
        )
        return query_id

    def tap_reply_button(self, user_id: int, label: str) -> ChatMessage:
        """Tap a button of the reply keyboard currently shown (sends its label)."""
        chat = self._chat(user_id)
        keyboard_message = chat.shown_reply_keyboard()
        if keyboard_message is None or keyboard_message.reply_markup is None:
            raise LookupError(f"no reply keyboard is shown to {user_id}")
        buttons = [b for row in keyboard_message.reply_markup["keyboard"] for b in row]
        matches = _find_button(buttons, label, exact_only=False)
        labels = [b["text"] for b in buttons]
        if not matches:
            raise LookupError(f"no reply button {label!r}; keyboard: {labels}")
        if len(matches) > 1:
            raise LookupError(f"{label!r} matches several reply buttons: {labels}")
        chosen = matches[0]
        if keyboard_message.reply_markup.get("one_time_keyboard"):
            keyboard_message.keyboard_used = True
        self._act(chat)
        if chosen.get("request_contact"):
            return self._send_contact(chat, None, None, None)
        return self._send_text(chat, chosen["text"], None)

    def send_document(
        self,
        user_id: int,
        content: bytes,
        file_name: str,
        mime_type: str | None = None,
        *,
        caption: str | None = None,
    ) -> ChatMessage:
        chat = self._chat(user_id)
        self._act(chat)
        stored = self._world.files.add_document(content, file_name, mime_type)
        return self._user_message(chat, document=stored, caption=caption, plain_caption=caption)

    def send_photo(
        self, user_id: int, content: bytes, *, caption: str | None = None
    ) -> ChatMessage:
        """Send a picture; readable images get several sizes, like Telegram."""
        chat = self._chat(user_id)
        self._act(chat)
        stored = self._world.files.add_photo(content)
        assert stored is not None  # not strict: unreadable bytes still make a photo
        return self._user_message(chat, photo=stored, caption=caption, plain_caption=caption)

    def send_album(
        self, user_id: int, items: Sequence[AlbumItem], *, caption: str | None = None
    ) -> list[ChatMessage]:
        """Send several photos or documents at once: one message (and update) each,
        sharing a media_group_id; the caption goes on the first. Counts as one action."""
        if not 1 <= len(items) <= 10:
            raise ValueError("an album holds 1 to 10 items")
        kinds = {"photo" if isinstance(item, bytes) else "document" for item in items}
        if len(kinds) > 1:
            raise ValueError("Telegram albums cannot mix photos and documents")
        chat = self._chat(user_id)
        self._act(chat)
        group_id = str(secrets.randbits(60))
        messages: list[ChatMessage] = []
        for index, item in enumerate(items):
            fields: Json = {"media_group_id": group_id}
            if index == 0 and caption is not None:
                fields.update(caption=caption, plain_caption=caption)
            if isinstance(item, bytes):
                fields["photo"] = self._world.files.add_photo(item)
            else:
                mime = item[2] if len(item) > 2 else None
                fields["document"] = self._world.files.add_document(item[0], item[1], mime)
            messages.append(self._user_message(chat, **fields))
        return messages

    def send_contact(
        self,
        user_id: int,
        phone_number: str | None = None,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
    ) -> ChatMessage:
        """Share a contact; without arguments the user shares their own (request_contact)."""
        chat = self._chat(user_id)
        self._act(chat)
        return self._send_contact(chat, phone_number, first_name, last_name)

    def _send_contact(
        self,
        chat: ChatState,
        phone_number: str | None,
        first_name: str | None,
        last_name: str | None,
    ) -> ChatMessage:
        user = chat.user
        own = phone_number is None
        contact: Json = {
            "phone_number": phone_number or user.phone_number or _DEFAULT_PHONE,
            "first_name": first_name or user.first_name,
        }
        if last_name or (own and user.last_name):
            contact["last_name"] = last_name or user.last_name
        if own:
            contact["user_id"] = user.id
        return self._user_message(chat, contact=contact)

    # ------------------------------------------------------------------ reading

    def chat(self, user_id: int) -> list[ChatMessage]:
        """Every message of the chat, both directions, deleted ones flagged."""
        return list(self._chat(user_id).messages)

    def visible(self, user_id: int) -> list[ChatMessage]:
        """The chat as the user sees it (deleted messages left out)."""
        return [m for m in self._chat(user_id).messages if not m.deleted]

    def last_bot_message(self, user_id: int) -> ChatMessage | None:
        messages = self._chat(user_id).bot_messages()
        return messages[-1] if messages else None

    def callback_answers(self, user_id: int) -> list[CallbackAnswer]:
        return list(self._chat(user_id).callback_answers)

    def chat_actions(self, user_id: int) -> list[str]:
        """sendChatAction values received for this chat ("typing", "upload_document"…)."""
        return list(self._chat(user_id).chat_actions)

    def actions(self, user_id: int) -> int:
        """How many things the user did (messages, presses, uploads; an album is one)."""
        return self._chat(user_id).actions

    def reply_keyboard(self, user_id: int) -> list[list[str]] | None:
        message = self._chat(user_id).shown_reply_keyboard()
        if message is None or message.reply_markup is None:
            return None
        return [[b["text"] for b in row] for row in message.reply_markup["keyboard"]]

    def commands(self, user_id: int) -> list[Json]:
        """The command menu this user sees, resolved like Telegram (chat scope first,
        then all private chats, then default; the user's language before no language)."""
        chat = self._chat(user_id)
        language = (chat.user.language_code or "").split("-")[0]
        keys: list[tuple[str, int | None, int | None, str]] = []
        for scope, chat_id in (("chat", user_id), ("all_private_chats", None), ("default", None)):
            keys += [(scope, chat_id, None, language), (scope, chat_id, None, "")]
        for key in keys:
            if key in self._bot.commands:
                return list(self._bot.commands[key])
        return []

    def menu_button(self, user_id: int) -> Json:
        chat = self._chat(user_id)
        return chat.menu_button or self._bot.default_menu_button or {"type": "commands"}

    def calls(self, method: str | None = None) -> list[ApiCall]:
        """Bot API calls received (getUpdates excepted), optionally of one method."""
        if method is None:
            return list(self._bot.calls)
        return [c for c in self._bot.calls if c.method.lower() == method.lower()]

    def pending_updates(self) -> list[Json]:
        return list(self._bot.updates)

    def transcript(self, user_id: int, last: int | None = None) -> str:
        messages = self.chat(user_id)
        if last is not None:
            messages = messages[-last:]
        return "\n".join(_summary(m) for m in messages)

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        method: str,
        status: int = 429,
        description: str | None = None,
        *,
        retry_after: int | None = None,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` calls of ``method`` with this error instead.

        A 429 without ``retry_after`` gets ``retry_after=1``, as Telegram always sends it.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        text = description or default_description(status, retry_after)
        failure = Failure(status, text, retry_after, count)
        self._bot.failures.setdefault(method.lower(), []).append(failure)

    # ------------------------------------------------------------------ waiting

    async def wait_for_bot(
        self,
        user_id: int,
        predicate: Predicate | None = None,
        timeout: float = 5.0,
        *,
        quiet: float = 0.05,
    ) -> ChatMessage:
        """The bot message sent or edited since the user's last action (the latest one
        matching ``predicate``), once the bot has made no API call for ``quiet`` seconds,
        so that a multi-message answer is complete. TimeoutError shows the chat."""
        chat = self._chat(user_id)
        since = chat.action_seq
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            match = self._latest_change(chat, since, predicate)
            remaining = deadline - loop.time()
            if match is not None and (self._bot.is_idle(quiet) or remaining <= 0):
                return match
            if remaining <= 0:
                raise TimeoutError(
                    f"the bot did not answer user {user_id} within {timeout}s; chat:\n"
                    + self.transcript(user_id, last=10)
                )
            if match is None:
                await chat.changed.wait(remaining)
            else:
                await asyncio.sleep(min(remaining, max(quiet / 2, 0.005)))

    @staticmethod
    def _latest_change(
        chat: ChatState, since: int, predicate: Predicate | None
    ) -> ChatMessage | None:
        changed = [
            m
            for m in chat.messages
            if m.from_bot
            and not m.deleted
            and m.seq > since
            and (predicate is None or predicate(m))
        ]
        return max(changed, key=lambda m: m.seq) if changed else None

    async def wait_for_callback_answer(self, user_id: int, timeout: float = 5.0) -> CallbackAnswer:
        """The bot's answerCallbackQuery for the user's last pressed button."""
        chat = self._chat(user_id)
        pressed = [c for c in self._bot.callbacks.values() if c.user_id == user_id]
        if not pressed:
            raise LookupError(f"user {user_id} pressed no button")
        query_id = pressed[-1].id
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for answer in chat.callback_answers:
                if answer.callback_query_id == query_id:
                    return answer
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"callback query {query_id} was not answered in {timeout}s")
            await chat.changed.wait(remaining)

    async def wait_handled(self, timeout: float = 5.0) -> None:
        """Wait until the bot has confirmed (asked past) every update pushed so far. With
        aiogram's `handle_as_tasks=False` that means handled, whatever the handler's pace:
        no guess about how long a quiet spell must be."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        target = self._bot.pushed_up_to
        while self._bot.confirmed_below <= target:
            if loop.time() >= deadline:
                raise TimeoutError(f"update {target} not handled within {timeout}s")
            await asyncio.sleep(0.005)

    async def wait_idle(self, timeout: float = 5.0, *, quiet: float = 0.05) -> None:
        """Wait until the bot fetched every update and stopped calling the API — for
        actions the bot answers without a message (it only deletes, or does nothing)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (self._bot.all_delivered() and self._bot.is_idle(quiet)):
            if loop.time() >= deadline:
                raise TimeoutError(f"the bot was still busy after {timeout}s")
            await asyncio.sleep(max(quiet / 2, 0.005))
