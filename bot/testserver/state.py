"""In-memory state of the simulated Telegram: users, bots, private chats, updates.

Everything lives in one ``World`` owned by the server. Users are global (a person exists
once); each bot sees its own private chat with each user, its own update queue and
its own commands. A global event counter (``World.tick``) orders user actions and bot
changes, which is how ``wait_for_bot`` knows that the bot answered *after* the last
action.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.testserver.errors import ApiError
from bot.testserver.files import FileStore, StoredFile
from bot.testserver.markup import inline_buttons, markup_kind

__all__ = [
    "ApiCall",
    "BotState",
    "CallbackAnswer",
    "ChatMessage",
    "ChatState",
    "Notifier",
    "SimUser",
    "World",
]

Json = dict[str, Any]

# Telegram's default when allowed_updates is empty: everything except these.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


class Notifier:
    """A "something changed" signal many coroutines can wait on, with a version number."""

    def __init__(self) -> None:
        self.version = 0
        self._event: asyncio.Event | None = None

    def notify(self) -> None:
        self.version += 1
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self, timeout: float) -> bool:
        """Wait for the next ``notify``; False on timeout."""
        if timeout <= 0:
            return False
        if self._event is None:
            self._event = asyncio.Event()
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True


@dataclass
class SimUser:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "fr"
    phone_number: str | None = None

    def api(self) -> Json:
        data: Json = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data

    def chat_api(self) -> Json:
        data: Json = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        return data


@dataclass(eq=False, repr=False)
class ChatMessage:
    """One message of a private chat, in either direction.

    For bot messages ``text``/``caption`` are exactly what the bot sent (HTML tags kept);
    ``plain_text``/``plain_caption`` are what the user reads. The object is live: edits
    and deletions by the bot update it in place (``edited``, ``deleted``).
    """

    id: int
    from_bot: bool
    date: int
    text: str | None = None
    plain_text: str | None = None
    entities: list[Json] = field(default_factory=list)
    caption: str | None = None
    plain_caption: str | None = None
    caption_entities: list[Json] = field(default_factory=list)
    parse_mode: str | None = None
    reply_markup: Json | None = None
    document: StoredFile | None = None
    photo: StoredFile | None = None  # largest size; ``photo.group`` has them all
    media_group_id: str | None = None
    contact: Json | None = None
    reply_to_message_id: int | None = None
    forward_origin: Json | None = None
    protect_content: bool = False
    edited: bool = False
    edit_date: int | None = None
    deleted: bool = False
    #: World.tick() of the last change (creation, edit, deletion)
    seq: int = 0
    #: a one-time reply keyboard is hidden once the user tapped one of its buttons
    keyboard_used: bool = False

    def __repr__(self) -> str:
        # Short on purpose: pytest prints it in assertion failures.
        who = "bot" if self.from_bot else "user"
        flags = "".join(f" {name}" for name in ("edited", "deleted") if getattr(self, name))
        extra = ""
        if self.document is not None:
            extra += f" document={self.document.file_name!r}"
        if self.photo is not None:
            extra += " photo"
        if self.button_labels:
            extra += f" buttons={self.button_labels}"
        return f"<ChatMessage #{self.id} {who}{flags} {self.content!r}{extra}>"

    @property
    def content(self) -> str | None:
        """What the user reads: plain text, else plain caption."""
        return self.plain_text if self.plain_text is not None else self.plain_caption

    @property
    def document_name(self) -> str | None:
        return self.document.file_name if self.document else None

    @property
    def document_bytes(self) -> bytes | None:
        return self.document.content if self.document else None

    @property
    def photo_bytes(self) -> bytes | None:
        return self.photo.content if self.photo else None

    @property
    def inline_buttons(self) -> list[Json]:
        return inline_buttons(self.reply_markup)

    @property
    def button_labels(self) -> list[str]:
        return [button["text"] for button in self.inline_buttons]

    @property
    def keyboard_kind(self) -> str | None:
        return markup_kind(self.reply_markup)

    def sim_json(self) -> Json:
        """The browser-side view: everything a chat page needs to draw the message."""
        data: Json = {
            "id": self.id,
            "from_bot": self.from_bot,
            "date": self.date,
            "text": self.text,
            "plain_text": self.plain_text,
            "entities": self.entities,
            "caption": self.caption,
            "plain_caption": self.plain_caption,
            "caption_entities": self.caption_entities,
            "parse_mode": self.parse_mode,
            "reply_markup": self.reply_markup,
            "media_group_id": self.media_group_id,
            "contact": self.contact,
            "reply_to_message_id": self.reply_to_message_id,
            "forward_origin": self.forward_origin,
            "edited": self.edited,
            "deleted": self.deleted,
            "document": None,
            "photo": None,
        }
        if self.document:
            data["document"] = {
                **self.document.document_api(),
                "url": f"/_sim/files/{self.document.file_id}",
            }
        if self.photo:
            data["photo"] = {
                **self.photo.photo_size_api(),
                "url": f"/_sim/files/{self.photo.file_id}",
            }
        return data


@dataclass
class CallbackAnswer:
    callback_query_id: str
    message_id: int | None
    data: str | None
    text: str | None = None
    show_alert: bool = False
    url: str | None = None


@dataclass
class PendingCallback:
    id: str
    user_id: int
    message_id: int
    data: str
    answered: bool = False


@dataclass
class Failure:
    status: int
    description: str
    retry_after: int | None
    remaining: int


@dataclass
class ApiCall:
    """One Bot API call as the server saw it (uploads shown as ``<file name>``)."""

    method: str
    params: Json
    ok: bool = True
    error: str | None = None


class ChatState:
    def __init__(self, bot: BotState, user: SimUser) -> None:
        self.bot = bot
        self.user = user
        self.messages: list[ChatMessage] = []
        self._by_id: dict[int, ChatMessage] = {}
        self._next_message_id = itertools.count(1)
        self.chat_instance = str(secrets.randbits(62))
        #: the user has written to the bot at least once (bots cannot start a conversation)
        self.started = False
        self.blocked = False
        self.menu_button: Json | None = None
        self.callback_answers: list[CallbackAnswer] = []
        self.chat_actions: list[str] = []
        self.actions = 0
        self.action_seq = 0
        self.changed = Notifier()

    def new_message(self, *, from_bot: bool, **fields: Any) -> ChatMessage:
        message = ChatMessage(
            id=next(self._next_message_id),
            from_bot=from_bot,
            date=int(time.time()),
            seq=self.bot.world.tick(),
            **fields,
        )
        self.messages.append(message)
        self._by_id[message.id] = message
        self.changed.notify()
        return message

    def get(self, message_id: int) -> ChatMessage | None:
        message = self._by_id.get(message_id)
        return None if message is None or message.deleted else message

    def touch(self, message: ChatMessage) -> None:
        message.seq = self.bot.world.tick()
        self.changed.notify()

    def bot_messages(self) -> list[ChatMessage]:
        return [m for m in self.messages if m.from_bot and not m.deleted]

    def shown_reply_keyboard(self) -> ChatMessage | None:
        """The bot message whose reply keyboard the user currently sees, if any.

        The last keyboard or keyboard removal sent wins; deleting that message hides the
        keyboard, as in Telegram clients.
        """
        for message in reversed(self.bot_messages()):
            kind = message.keyboard_kind
            if kind == "remove":
                return None
            if kind == "keyboard":
                return None if message.keyboard_used else message
        return None

    def api_message(self, message: ChatMessage, *, with_reply: bool = True) -> Json:
        """``message`` as the Bot API ``Message`` object."""
        sender = self.bot.user_api() if message.from_bot else self.user.api()
        data: Json = {
            "message_id": message.id,
            "from": sender,
            "chat": self.user.chat_api(),
            "date": message.date,
        }
        if message.edit_date is not None:
            data["edit_date"] = message.edit_date
        if message.text is not None:
            data["text"] = message.plain_text if message.plain_text is not None else message.text
            if message.entities:
                data["entities"] = message.entities
        if message.caption is not None:
            data["caption"] = (
                message.plain_caption if message.plain_caption is not None else message.caption
            )
            if message.caption_entities:
                data["caption_entities"] = message.caption_entities
        if message.document is not None:
            data["document"] = message.document.document_api()
        if message.photo is not None:
            data["photo"] = message.photo.photo_api()
        if message.media_group_id is not None:
            data["media_group_id"] = message.media_group_id
        if message.contact is not None:
            data["contact"] = message.contact
        if message.forward_origin is not None:
            data["forward_origin"] = message.forward_origin
        if message.protect_content:
            data["has_protected_content"] = True
        # Telegram only echoes inline keyboards in Message.reply_markup.
        if message.keyboard_kind == "inline":
            data["reply_markup"] = message.reply_markup
        if with_reply and message.reply_to_message_id is not None:
            replied = self._by_id.get(message.reply_to_message_id)
            if replied is not None and not replied.deleted:
                data["reply_to_message"] = self.api_message(replied, with_reply=False)
        return data


class BotState:
    def __init__(self, world: World, token: str, username: str, first_name: str) -> None:
        self.world = world
        self.token = token
        prefix = token.partition(":")[0]
        self.id = int(prefix) if prefix.isdigit() else world.new_id()
        self.username = username
        self.first_name = first_name
        self.chats: dict[int, ChatState] = {}
        self.updates: list[Json] = []
        self._next_update_id = itertools.count(1)
        self.updates_changed = Notifier()
        self.allowed_updates: list[str] | None = None
        self.poll_generation = 0
        #: highest update_id handed out by getUpdates
        self.delivered_up_to = 0
        # Highest update id pushed, and the offset the bot has confirmed: a bot that handles
        # updates one at a time (aiogram's handle_as_tasks=False) confirms only handled ones.
        self.pushed_up_to = 0
        self.confirmed_below = 0
        self.commands: dict[tuple[str, int | None, int | None, str], list[Json]] = {}
        self.default_menu_button: Json | None = None
        self.texts: dict[tuple[str, str], str] = {}  # (kind, language) -> description/name
        self.failures: dict[str, list[Failure]] = {}
        self.callbacks: dict[str, PendingCallback] = {}
        self.calls: list[ApiCall] = []
        #: API calls (other than getUpdates) being served, and when the last one ended
        self.inflight = 0
        self.last_call_end = 0.0

    def user_api(self) -> Json:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    def chat(self, user_id: int) -> ChatState:
        """The private chat with a registered user (KeyError for unknown users)."""
        chat = self.chats.get(user_id)
        if chat is None:
            chat = self.chats[user_id] = ChatState(self, self.world.users[user_id])
        return chat

    def push_update(self, kind: str, payload: Json) -> Json:
        update = {"update_id": next(self._next_update_id), kind: payload}
        self.pushed_up_to = update["update_id"]
        self.updates.append(update)
        self.updates_changed.notify()
        return update

    def confirm_updates(self, offset: int | None) -> None:
        if offset is None:
            return
        if offset > 0:
            self.confirmed_below = max(self.confirmed_below, offset)
        if offset < 0:
            # A negative offset keeps only the last -offset updates, forgetting the rest.
            self.updates = self.updates[offset:]
        else:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]

    def deliverable_updates(self, limit: int) -> list[Json]:
        # Updates of a type the bot did not subscribe to are never delivered; Telegram does
        # not even queue them, so they are dropped here.
        self.updates = [u for u in self.updates if self._allowed(u)]
        return self.updates[:limit]

    def all_delivered(self) -> bool:
        return all(u["update_id"] <= self.delivered_up_to for u in self.updates)

    def _allowed(self, update: Json) -> bool:
        kind = next(key for key in update if key != "update_id")
        if self.allowed_updates:
            return kind in self.allowed_updates
        return kind not in _OPT_IN_UPDATES

    def take_failure(self, method: str) -> ApiError | None:
        queue = self.failures.get(method.lower())
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return ApiError(failure.status, failure.description, retry_after=failure.retry_after)

    def is_idle(self, quiet: float) -> bool:
        loop_time = asyncio.get_running_loop().time()
        return self.inflight == 0 and loop_time - self.last_call_end >= quiet


class World:
    def __init__(self) -> None:
        self.users: dict[int, SimUser] = {}
        self.bots: dict[str, BotState] = {}
        self.files = FileStore()
        self.closing = False
        self._seq = itertools.count(1)
        self._ids = itertools.count(7_000_000_001)

    def tick(self) -> int:
        return next(self._seq)

    def new_id(self) -> int:
        return next(self._ids)

    def find_user(self, predicate: Callable[[SimUser], bool]) -> SimUser | None:
        return next((user for user in self.users.values() if predicate(user)), None)
