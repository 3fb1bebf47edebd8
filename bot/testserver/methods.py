"""The Bot API methods the test server answers, one coroutine per method.

Parameters arrive the way aiogram sends them: multipart or urlencoded form fields, every
value a string, nested objects (reply_markup, scope, media…) JSON-encoded, uploads as
``attach://<field>`` pointing at a file part. JSON bodies and query strings (curl, the
browser sandbox) are accepted too. Each handler returns the ``result`` of the reply or
raises ``ApiError``.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.testserver.errors import (
    CANT_EDIT,
    CAPTION_TOO_LONG,
    CHAT_NOT_FOUND,
    CONFLICT,
    FILE_TOO_BIG,
    MESSAGE_EMPTY,
    MESSAGE_TOO_LONG,
    NOT_MODIFIED,
    QUERY_INVALID,
    WRONG_FILE_ID,
    ApiError,
    bad_request,
)
from bot.testserver.files import DOWNLOAD_LIMIT, FileKind, StoredFile
from bot.testserver.markup import markup_kind, normalize_reply_markup, parse_text
from bot.testserver.state import BotState, CallbackAnswer, ChatMessage, ChatState, World

__all__ = ["METHODS", "Call", "Params", "Upload"]

Json = dict[str, Any]

_MAX_TEXT = 4096
_MAX_CAPTION = 1024
_UPLOAD_LIMIT = 50 * 1024 * 1024
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")


@dataclass
class Upload:
    filename: str | None
    content: bytes
    content_type: str | None = None


@dataclass
class Params:
    values: Mapping[str, Any]
    uploads: Mapping[str, Upload] = field(default_factory=dict)

    def raw(self, name: str) -> Any:
        return self.values.get(name)

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        return value if isinstance(value, str) else json.dumps(value)

    def integer(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise bad_request(f"invalid {name} specified") from exc

    def flag(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, str):
            return value.lower() in {"true", "1"}
        return bool(value)

    def decoded(self, name: str, what: str | None = None) -> Any:
        value = self.values.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise bad_request(f"can't parse {what or name} JSON object") from exc
        return value

    def loggable(self) -> Json:
        logged: Json = {}
        for key, value in self.values.items():
            if isinstance(value, str) and value.startswith("attach://"):
                upload = self.uploads.get(value.removeprefix("attach://"))
                logged[key] = f"<{upload.filename}>" if upload else value
            else:
                logged[key] = value
        for key, upload in self.uploads.items():
            if key not in logged and f"attach://{key}" not in self.values.values():
                logged[key] = f"<{upload.filename}>"
        return logged


@dataclass
class Call:
    world: World
    bot: BotState
    params: Params


Handler = Callable[[Call], Awaitable[Any]]
METHODS: dict[str, Handler] = {}


def _method(*names: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for name in names:
            # Telegram matches method names case-insensitively.
            METHODS[name.lower()] = handler
        return handler

    return register


# --------------------------------------------------------------------------- helpers


def _resolve_chat(call: Call, name: str = "chat_id", *, sending: bool = False) -> ChatState:
    raw = call.params.raw(name)
    if raw is None or raw == "":
        raise bad_request(f"{name} is empty")
    text = str(raw)
    if text.startswith("@"):
        user = call.world.find_user(lambda u: (u.username or "").lower() == text[1:].lower())
    else:
        try:
            user = call.world.users.get(int(text))
        except ValueError:
            user = None
    if user is None:
        raise bad_request(CHAT_NOT_FOUND)
    chat = call.bot.chat(user.id)
    if sending:
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if not chat.started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
    return chat


def _formatted(text: str, parse_mode: str | None, *, caption: bool) -> tuple[str, list[Json]]:
    plain, entities = parse_text(text, parse_mode)
    if caption:
        if len(plain) > _MAX_CAPTION:
            raise bad_request(CAPTION_TOO_LONG)
    else:
        if not plain.strip():
            raise bad_request(MESSAGE_EMPTY)
        if len(plain) > _MAX_TEXT:
            raise bad_request(MESSAGE_TOO_LONG)
    return plain, entities


def _caption_fields(caption: str | None, parse_mode: str | None) -> Json:
    if caption is None or caption == "":
        return {"caption": None, "plain_caption": None, "caption_entities": []}
    plain, entities = _formatted(caption, parse_mode, caption=True)
    return {"caption": caption, "plain_caption": plain, "caption_entities": entities}


def _reply_to(call: Call, chat: ChatState) -> int | None:
    parameters = call.params.decoded("reply_parameters")
    allow_missing = call.params.flag("allow_sending_without_reply")
    message_id: int | None
    if isinstance(parameters, dict):
        message_id = parameters.get("message_id")
        allow_missing = allow_missing or bool(parameters.get("allow_sending_without_reply"))
    else:
        message_id = call.params.integer("reply_to_message_id")
    if message_id is None:
        return None
    if chat.get(int(message_id)) is None:
        if allow_missing:
            return None
        raise bad_request("message to be replied not found")
    return int(message_id)


def _store_upload(call: Call, upload: Upload, kind: FileKind) -> StoredFile:
    if not upload.content:
        raise bad_request("file must be non-empty")
    if len(upload.content) > _UPLOAD_LIMIT:
        raise ApiError(413, "Request Entity Too Large")
    if kind == "document":
        content_type = upload.content_type
        if content_type in {None, "application/octet-stream"}:
            content_type = None  # let the file name decide, as Telegram sniffs the type
        return call.world.files.add_document(upload.content, upload.filename, content_type)
    photo = call.world.files.add_photo(upload.content, strict=True)
    if photo is None:
        raise bad_request("IMAGE_PROCESS_FAILED")
    return photo


def _input_file(call: Call, value: Any, field_name: str, kind: FileKind) -> StoredFile:
    """A file given as ``attach://part``, as a file part named like the field, or by id."""
    uploads = call.params.uploads
    if isinstance(value, str) and value.startswith("attach://"):
        upload = uploads.get(value.removeprefix("attach://"))
        if upload is None:
            raise bad_request(f'can\'t find attached file "{value}"')
        return _store_upload(call, upload, kind)
    if value is None and field_name in uploads:
        return _store_upload(call, uploads[field_name], kind)
    if not isinstance(value, str) or not value:
        raise bad_request(f"there is no {field_name} in the request")
    stored = call.world.files.get(value)
    if stored is None:
        if value.startswith(("http://", "https://")):
            raise bad_request("failed to get HTTP URL content")
        raise bad_request(WRONG_FILE_ID)
    if stored.kind != kind:
        raise bad_request(
            f"can't use file of type {stored.kind.capitalize()} as {kind.capitalize()}"
        )
    return stored


def _send(call: Call, chat: ChatState, **fields: Any) -> ChatMessage:
    markup = normalize_reply_markup(call.params.raw("reply_markup"))
    reply_to = _reply_to(call, chat)
    return chat.new_message(
        from_bot=True,
        reply_markup=markup,
        reply_to_message_id=reply_to,
        protect_content=call.params.flag("protect_content"),
        **fields,
    )


def _message_to_edit(call: Call) -> tuple[ChatState, ChatMessage]:
    if call.params.raw("inline_message_id"):
        # Inline mode is out of scope; Telegram answers this for ids it does not know.
        raise bad_request("MESSAGE_ID_INVALID")
    chat = _resolve_chat(call)
    message_id = call.params.integer("message_id")
    if message_id is None:
        raise bad_request("message identifier is not specified")
    message = chat.get(message_id)
    if message is None:
        raise bad_request("message to edit not found")
    if not message.from_bot:
        raise bad_request(CANT_EDIT)
    return chat, message


def _inline_markup(call: Call) -> Json | None:
    markup = normalize_reply_markup(call.params.raw("reply_markup"))
    if markup is not None and markup_kind(markup) != "inline":
        raise bad_request("inline keyboard expected")
    return markup


def _current_inline(message: ChatMessage) -> Json | None:
    return message.reply_markup if message.keyboard_kind == "inline" else None


def _apply_markup(message: ChatMessage, markup: Json | None) -> None:
    # A reply keyboard belongs to the chat, not to the text; editing never removes it.
    if message.keyboard_kind in {None, "inline"}:
        message.reply_markup = markup


def _mark_edited(chat: ChatState, message: ChatMessage) -> Json:
    message.edited = True
    message.edit_date = int(time.time())
    chat.touch(message)
    return chat.api_message(message)


def _scope_key(call: Call) -> tuple[str, int | None, int | None, str]:
    scope = call.params.decoded("scope", "bot command scope") or {"type": "default"}
    if not isinstance(scope, dict) or "type" not in scope:
        raise bad_request("can't parse bot command scope JSON object")
    kind = str(scope["type"])
    known = {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
    if kind not in known:
        raise bad_request("wrong bot command scope type specified")
    chat_id: int | None = None
    user_id: int | None = None
    if kind in {"chat", "chat_administrators", "chat_member"}:
        raw = scope.get("chat_id")
        try:
            chat_id = int(raw) if raw is not None else None
        except (TypeError, ValueError):
            chat_id = None
        if chat_id is None or chat_id not in call.world.users:
            raise bad_request(CHAT_NOT_FOUND)
    if kind == "chat_member":
        user_id = int(scope.get("user_id") or 0)
    return kind, chat_id, user_id, call.params.text("language_code") or ""


# --------------------------------------------------------------------------- bot & polling


@_method("getMe")
async def get_me(call: Call) -> Json:
    return {
        **call.bot.user_api(),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


@_method("logOut", "close")
async def log_out(call: Call) -> bool:
    return True


@_method("deleteWebhook")
async def delete_webhook(call: Call) -> bool:
    if call.params.flag("drop_pending_updates"):
        call.bot.updates.clear()
    return True


@_method("getWebhookInfo")
async def get_webhook_info(call: Call) -> Json:
    return {
        "url": "",
        "has_custom_certificate": False,
        "pending_update_count": len(call.bot.updates),
    }


@_method("getUpdates")
async def get_updates(call: Call) -> list[Json]:
    bot = call.bot
    params = call.params
    limit = max(1, min(params.integer("limit") or 100, 100))
    timeout = max(0, params.integer("timeout") or 0)
    allowed = params.decoded("allowed_updates", "allowed updates")
    if isinstance(allowed, list):
        # Telegram remembers the last list given; an omitted one keeps the previous.
        bot.allowed_updates = [str(kind) for kind in allowed] or None
    bot.confirm_updates(params.integer("offset"))
    # Only one long poll per bot: a newer getUpdates terminates the older one (409).
    bot.poll_generation += 1
    generation = bot.poll_generation
    bot.updates_changed.notify()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if generation != bot.poll_generation:
            raise ApiError(409, CONFLICT)
        updates = bot.deliverable_updates(limit)
        if updates or call.world.closing:
            if updates:
                bot.delivered_up_to = max(bot.delivered_up_to, updates[-1]["update_id"])
            return updates
        remaining = deadline - loop.time()
        if remaining <= 0:
            return []
        await bot.updates_changed.wait(remaining)


# --------------------------------------------------------------------------- commands & menu


@_method("setMyCommands")
async def set_my_commands(call: Call) -> bool:
    commands = call.params.decoded("commands", "bot commands")
    if not isinstance(commands, list):
        raise bad_request("can't parse bot commands JSON object")
    if len(commands) > 100:
        raise bad_request("too many bot commands specified")
    cleaned: list[Json] = []
    for command in commands:
        if not isinstance(command, dict):
            raise bad_request("can't parse BotCommand JSON object")
        name = str(command.get("command", "")).removeprefix("/")
        description = str(command.get("description", ""))
        if not _COMMAND.match(name):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(description) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        cleaned.append({"command": name, "description": description})
    key = _scope_key(call)
    if cleaned:
        call.bot.commands[key] = cleaned
    else:
        call.bot.commands.pop(key, None)
    return True


@_method("getMyCommands")
async def get_my_commands(call: Call) -> list[Json]:
    return list(call.bot.commands.get(_scope_key(call), []))


@_method("deleteMyCommands")
async def delete_my_commands(call: Call) -> bool:
    call.bot.commands.pop(_scope_key(call), None)
    return True


@_method("setChatMenuButton")
async def set_chat_menu_button(call: Call) -> bool:
    button = call.params.decoded("menu_button", "menu button") or {"type": "default"}
    if not isinstance(button, dict) or button.get("type") not in {"commands", "web_app", "default"}:
        raise bad_request("can't parse menu button JSON object")
    if call.params.raw("chat_id") is None:
        call.bot.default_menu_button = None if button["type"] == "default" else button
    else:
        chat = _resolve_chat(call)
        chat.menu_button = None if button["type"] == "default" else button
    return True


@_method("getChatMenuButton")
async def get_chat_menu_button(call: Call) -> Json:
    if call.params.raw("chat_id") is not None:
        chat = _resolve_chat(call)
        if chat.menu_button is not None:
            return chat.menu_button
    return call.bot.default_menu_button or {"type": "commands"}


def _bot_text_methods(kind: str, field_name: str) -> None:
    async def setter(call: Call) -> bool:
        call.bot.texts[(kind, call.params.text("language_code") or "")] = (
            call.params.text(field_name) or ""
        )
        return True

    async def getter(call: Call) -> Json:
        language = call.params.text("language_code") or ""
        return {field_name: call.bot.texts.get((kind, language), "")}

    pascal = kind[0].upper() + kind[1:]
    _method(f"setMy{pascal}")(setter)
    _method(f"getMy{pascal}")(getter)


_bot_text_methods("description", "description")
_bot_text_methods("shortDescription", "short_description")
_bot_text_methods("name", "name")


# --------------------------------------------------------------------------- chats


@_method("getChat")
async def get_chat(call: Call) -> Json:
    chat = _resolve_chat(call)
    return {
        **chat.user.chat_api(),
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": {
            "unlimited_gifts": True,
            "limited_gifts": True,
            "unique_gifts": True,
            "premium_subscription": True,
            "gifts_from_channels": True,
        },
    }


@_method("getChatMember")
async def get_chat_member(call: Call) -> Json:
    chat = _resolve_chat(call)
    user_id = call.params.integer("user_id")
    if user_id == chat.user.id:
        return {"status": "member", "user": chat.user.api()}
    if user_id == call.bot.id:
        return {"status": "member", "user": call.bot.user_api()}
    raise bad_request("user not found")


@_method("sendChatAction")
async def send_chat_action(call: Call) -> bool:
    chat = _resolve_chat(call, sending=True)
    action = call.params.text("action") or ""
    if action not in _CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    chat.chat_actions.append(action)
    return True


# --------------------------------------------------------------------------- messages


@_method("sendMessage")
async def send_message(call: Call) -> Json:
    chat = _resolve_chat(call, sending=True)
    text = call.params.text("text") or ""
    parse_mode = call.params.text("parse_mode")
    plain, entities = _formatted(text, parse_mode, caption=False)
    message = _send(
        call, chat, text=text, plain_text=plain, entities=entities, parse_mode=parse_mode
    )
    return chat.api_message(message)


@_method("sendDocument")
async def send_document(call: Call) -> Json:
    chat = _resolve_chat(call, sending=True)
    stored = _input_file(call, call.params.raw("document"), "document", "document")
    parse_mode = call.params.text("parse_mode")
    caption = _caption_fields(call.params.text("caption"), parse_mode)
    message = _send(call, chat, document=stored, parse_mode=parse_mode, **caption)
    return chat.api_message(message)


@_method("sendPhoto")
async def send_photo(call: Call) -> Json:
    chat = _resolve_chat(call, sending=True)
    stored = _input_file(call, call.params.raw("photo"), "photo", "photo")
    parse_mode = call.params.text("parse_mode")
    caption = _caption_fields(call.params.text("caption"), parse_mode)
    message = _send(call, chat, photo=stored.group[-1], parse_mode=parse_mode, **caption)
    return chat.api_message(message)


def _media_fields(call: Call, item: Any) -> Json:
    if not isinstance(item, dict) or item.get("type") not in {"photo", "document"}:
        raise bad_request("can't parse InputMedia JSON object")
    kind: FileKind = "photo" if item["type"] == "photo" else "document"
    stored = _input_file(call, item.get("media"), "media", kind)
    parse_mode = item.get("parse_mode") or call.params.text("parse_mode")
    fields: Json = _caption_fields(item.get("caption"), parse_mode)
    fields["parse_mode"] = parse_mode
    fields["document" if kind == "document" else "photo"] = (
        stored if kind == "document" else stored.group[-1]
    )
    return fields


@_method("sendMediaGroup")
async def send_media_group(call: Call) -> list[Json]:
    chat = _resolve_chat(call, sending=True)
    media = call.params.decoded("media", "media")
    if not isinstance(media, list) or not 1 <= len(media) <= 10:
        raise bad_request("wrong number of media in the album")
    prepared = [_media_fields(call, item) for item in media]
    group_id = str(secrets.randbits(60))
    reply_to = _reply_to(call, chat)
    messages = [
        chat.new_message(
            from_bot=True, media_group_id=group_id, reply_to_message_id=reply_to, **fields
        )
        for fields in prepared
    ]
    return [chat.api_message(message) for message in messages]


@_method("editMessageText")
async def edit_message_text(call: Call) -> Json:
    chat, message = _message_to_edit(call)
    if message.text is None:
        raise bad_request("there is no text in the message to edit")
    text = call.params.text("text") or ""
    parse_mode = call.params.text("parse_mode")
    plain, entities = _formatted(text, parse_mode, caption=False)
    markup = _inline_markup(call)
    if (plain, entities, markup) == (
        message.plain_text,
        message.entities,
        _current_inline(message),
    ):
        raise bad_request(NOT_MODIFIED)
    message.text, message.plain_text, message.entities = text, plain, entities
    message.parse_mode = parse_mode
    _apply_markup(message, markup)
    return _mark_edited(chat, message)


@_method("editMessageCaption")
async def edit_message_caption(call: Call) -> Json:
    chat, message = _message_to_edit(call)
    if message.document is None and message.photo is None:
        raise bad_request("there is no caption in the message to edit")
    parse_mode = call.params.text("parse_mode")
    caption = _caption_fields(call.params.text("caption"), parse_mode)
    markup = _inline_markup(call)
    current = (message.plain_caption, message.caption_entities, _current_inline(message))
    if (caption["plain_caption"], caption["caption_entities"], markup) == current:
        raise bad_request(NOT_MODIFIED)
    message.caption = caption["caption"]
    message.plain_caption = caption["plain_caption"]
    message.caption_entities = caption["caption_entities"]
    message.parse_mode = parse_mode
    _apply_markup(message, markup)
    return _mark_edited(chat, message)


@_method("editMessageMedia")
async def edit_message_media(call: Call) -> Json:
    chat, message = _message_to_edit(call)
    fields = _media_fields(call, call.params.decoded("media", "InputMedia"))
    markup = _inline_markup(call)
    new_file = fields.get("document") or fields.get("photo")
    old_file = message.document or message.photo
    unchanged = (
        new_file is old_file
        and fields["plain_caption"] == message.plain_caption
        and markup == _current_inline(message)
    )
    if unchanged:
        raise bad_request(NOT_MODIFIED)
    # A text message may become a media message; its text is then gone.
    message.text, message.plain_text, message.entities = None, None, []
    message.document = fields.get("document")
    message.photo = fields.get("photo")
    message.caption = fields["caption"]
    message.plain_caption = fields["plain_caption"]
    message.caption_entities = fields["caption_entities"]
    message.parse_mode = fields["parse_mode"]
    _apply_markup(message, markup)
    return _mark_edited(chat, message)


@_method("editMessageReplyMarkup")
async def edit_message_reply_markup(call: Call) -> Json:
    chat, message = _message_to_edit(call)
    markup = _inline_markup(call)
    if markup == _current_inline(message):
        raise bad_request(NOT_MODIFIED)
    _apply_markup(message, markup)
    return _mark_edited(chat, message)


@_method("deleteMessage")
async def delete_message(call: Call) -> bool:
    chat = _resolve_chat(call)
    message_id = call.params.integer("message_id")
    message = chat.get(message_id) if message_id is not None else None
    if message is None:
        raise bad_request("message to delete not found")
    message.deleted = True
    chat.touch(message)
    return True


@_method("deleteMessages")
async def delete_messages(call: Call) -> bool:
    chat = _resolve_chat(call)
    ids = call.params.decoded("message_ids", "message identifiers")
    if not isinstance(ids, list) or not ids:
        raise bad_request("message identifiers are not specified")
    for message_id in ids:
        message = chat.get(int(message_id))
        if message is not None:
            message.deleted = True
            chat.touch(message)
    return True


def _source_message(call: Call, verb: str) -> tuple[ChatState, ChatMessage]:
    source_chat = _resolve_chat(call, "from_chat_id")
    message_id = call.params.integer("message_id")
    message = source_chat.get(message_id) if message_id is not None else None
    if message is None:
        raise bad_request(f"message to {verb} not found")
    return source_chat, message


@_method("copyMessage")
async def copy_message(call: Call) -> Json:
    _, source = _source_message(call, "copy")
    chat = _resolve_chat(call, sending=True)
    fields: Json = {
        "text": source.text,
        "plain_text": source.plain_text,
        "entities": source.entities,
        "document": source.document,
        "photo": source.photo,
        "contact": source.contact,
        "parse_mode": source.parse_mode,
        "caption": source.caption,
        "plain_caption": source.plain_caption,
        "caption_entities": source.caption_entities,
    }
    if call.params.raw("caption") is not None:
        fields.update(_caption_fields(call.params.text("caption"), call.params.text("parse_mode")))
    message = _send(call, chat, **fields)
    return {"message_id": message.id}


@_method("forwardMessage")
async def forward_message(call: Call) -> Json:
    source_chat, source = _source_message(call, "forward")
    chat = _resolve_chat(call, sending=True)
    sender = call.bot.user_api() if source.from_bot else source_chat.user.api()
    message = chat.new_message(
        from_bot=True,
        text=source.text,
        plain_text=source.plain_text,
        entities=source.entities,
        caption=source.caption,
        plain_caption=source.plain_caption,
        caption_entities=source.caption_entities,
        document=source.document,
        photo=source.photo,
        contact=source.contact,
        forward_origin={"type": "user", "date": source.date, "sender_user": sender},
        protect_content=call.params.flag("protect_content"),
    )
    return chat.api_message(message)


@_method("answerCallbackQuery")
async def answer_callback_query(call: Call) -> bool:
    query_id = call.params.text("callback_query_id") or ""
    pending = call.bot.callbacks.get(query_id)
    if pending is None or pending.answered:
        raise bad_request(QUERY_INVALID)
    pending.answered = True
    chat = call.bot.chat(pending.user_id)
    chat.callback_answers.append(
        CallbackAnswer(
            callback_query_id=query_id,
            message_id=pending.message_id,
            data=pending.data,
            text=call.params.text("text"),
            show_alert=call.params.flag("show_alert"),
            url=call.params.text("url"),
        )
    )
    chat.changed.notify()
    return True


# --------------------------------------------------------------------------- files


@_method("getFile")
async def get_file(call: Call) -> Json:
    file_id = call.params.text("file_id") or ""
    stored = call.world.files.get(file_id)
    if stored is None:
        raise bad_request("invalid file_id")
    if stored.size > DOWNLOAD_LIMIT:
        raise bad_request(FILE_TOO_BIG)
    return stored.file_api()
