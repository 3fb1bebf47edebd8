"""Formatting and keyboards as Telegram reads them.

``parse_html`` follows the Bot API's HTML mode (the tdlib parser): it returns the plain text
plus entities with UTF-16 offsets, and rejects what Telegram rejects ("can't parse
entities: …"). Returning plain text + entities, like Telegram, matters: aiogram rebuilds
``message.html_text`` from them and aiogram-dialog compares ``message.text`` to decide
whether to edit.

``normalize_reply_markup`` validates keyboards the way sendMessage does (callback_data of
1-64 bytes, inline buttons need an action) and gives one canonical dict so that "message
is not modified" can be decided by plain equality.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from bot.testserver.errors import BUTTON_DATA_INVALID, ApiError, bad_request

__all__ = [
    "command_entity",
    "inline_buttons",
    "markup_kind",
    "normalize_reply_markup",
    "parse_text",
    "utf16_len",
]

Entity = dict[str, Any]

_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}
_SUPPORTED = {*_SIMPLE_TAGS, "a", "span", "tg-emoji"}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME = re.compile(r"[A-Za-z0-9-]*")
_ATTR = re.compile(r"\s*([A-Za-z-]+)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>\"']+))?")
_INLINE_ACTIONS = (
    "callback_data",
    "url",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "callback_game",
    "pay",
    "web_app",
    "copy_text",
)
_URL = re.compile(r"^(https?|tg)://\S+$", re.IGNORECASE)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _entities_error(reason: str) -> ApiError:
    return bad_request(f"can't parse entities: {reason}")


class _OpenTag:
    def __init__(self, name: str, attrs: dict[str, str | None], start: int) -> None:
        self.name = name
        self.attrs = attrs
        self.start = start


def _entity_for(tag: _OpenTag, end: int, inner_code_language: str | None) -> Entity | None:
    length = end - tag.start
    if length <= 0:
        return None
    entity: Entity = {"offset": tag.start, "length": length}
    name = tag.name
    if name in _SIMPLE_TAGS:
        entity["type"] = _SIMPLE_TAGS[name]
        if name == "pre" and inner_code_language:
            entity["language"] = inner_code_language
        if name == "blockquote" and "expandable" in tag.attrs:
            entity["type"] = "expandable_blockquote"
    elif name == "span":
        entity["type"] = "spoiler"
    elif name == "a":
        href = tag.attrs.get("href") or ""
        match = re.match(r"tg://user\?id=(\d+)$", href)
        if match:
            entity["type"] = "text_mention"
            entity["user"] = {"id": int(match.group(1)), "is_bot": False, "first_name": ""}
        elif href:
            entity["type"] = "text_link"
            entity["url"] = href
        else:
            return None
    elif name == "tg-emoji":
        entity["type"] = "custom_emoji"
        entity["custom_emoji_id"] = tag.attrs.get("emoji-id") or ""
    return entity


def _decode_entity(text: str, i: int) -> tuple[str, int]:
    """Decode ``&…;`` at ``i``; unknown entities stay literal, as Telegram does."""
    end = text.find(";", i + 1, i + 12)
    if end == -1:
        return "&", i + 1
    name = text[i + 1 : end]
    if name in _NAMED_ENTITIES:
        return _NAMED_ENTITIES[name], end + 1
    try:
        if name.startswith(("#x", "#X")):
            return chr(int(name[2:], 16)), end + 1
        if name.startswith("#"):
            return chr(int(name[1:])), end + 1
    except (ValueError, OverflowError):
        pass
    return "&", i + 1


def parse_html(text: str) -> tuple[str, list[Entity]]:
    out: list[str] = []
    position = 0  # UTF-16 offset in the plain text
    stack: list[_OpenTag] = []
    entities: list[Entity] = []
    code_language: dict[int, str] = {}  # pre's stack index -> language of its inner <code>
    i = 0
    while i < len(text):
        char = text[i]
        if char == "&":
            decoded, i = _decode_entity(text, i)
            out.append(decoded)
            position += utf16_len(decoded)
            continue
        if char != "<":
            out.append(char)
            position += utf16_len(char)
            i += 1
            continue
        byte_offset = len(text[:i].encode())
        close = text.find(">", i)
        if close == -1:
            raise _entities_error(f"Unclosed start tag at byte offset {byte_offset}")
        body = text[i + 1 : close]
        i = close + 1
        if body.startswith("/"):
            name = body[1:].strip().lower()
            if not stack:
                raise _entities_error(f"Unexpected end tag at byte offset {byte_offset}")
            top = stack[-1]
            if name and name != top.name:
                raise _entities_error(
                    f'Unmatched end tag at byte offset {byte_offset}, expected "</{top.name}>", '
                    f'found "</{name}>"'
                )
            stack.pop()
            language = code_language.pop(len(stack), None)
            # <pre><code class="language-x"> is one pre entity carrying the language.
            in_pre = top.name == "code" and bool(stack) and stack[-1].name == "pre"
            entity = None if in_pre else _entity_for(top, position, language)
            if entity is not None:
                entities.append(entity)
            continue
        match = _TAG_NAME.match(body)
        name = match.group(0).lower() if match else ""
        if name not in _SUPPORTED:
            raise _entities_error(f'Unsupported start tag "{name}" at byte offset {byte_offset}')
        attrs: dict[str, str | None] = {}
        for attr in _ATTR.finditer(body, len(name)):
            if not attr.group(1):
                continue
            value = attr.group(2)
            if value is not None:
                if value[:1] in "\"'":
                    value = value[1:-1]
                value = html.unescape(value)
            attrs[attr.group(1).lower()] = value
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise _entities_error('Tag "span" must have class "tg-spoiler"')
        if name == "code" and stack and stack[-1].name == "pre":
            language = (attrs.get("class") or "").removeprefix("language-")
            if language:
                code_language[len(stack) - 1] = language
        stack.append(_OpenTag(name, attrs, position))
    if stack:
        raise _entities_error(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def parse_text(text: str, parse_mode: str | None) -> tuple[str, list[Entity]]:
    """Plain text and entities for ``text`` sent with ``parse_mode``.

    Only HTML is interpreted; Markdown modes are kept verbatim (entities empty), which is
    good enough for a bot that formats in HTML.
    """
    if parse_mode and parse_mode.lower() == "html":
        return parse_html(text)
    return text, []


def command_entity(text: str) -> list[Entity]:
    """The bot_command entity a Telegram client attaches to ``/cmd[@bot] …``."""
    if not text.startswith("/"):
        return []
    command = re.match(r"/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?", text)
    if command is None:
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(command.group(0))}]


def _load_json(value: Any, what: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise bad_request(f"can't parse {what} JSON object") from exc
    return value


def _normalize_inline(rows: Any) -> dict[str, Any] | None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request("can't parse inline keyboard button: InlineKeyboardMarkup expected")
    keyboard: list[list[dict[str, Any]]] = []
    for row in rows:
        buttons: list[dict[str, Any]] = []
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad_request(
                    'can\'t parse inline keyboard button: Field "text" must be of type String'
                )
            if not any(key in button for key in _INLINE_ACTIONS):
                raise bad_request(
                    "can't parse inline keyboard button: "
                    "Text buttons are unallowed in the inline keyboard"
                )
            if "callback_data" in button:
                data = button["callback_data"]
                if not isinstance(data, str) or not 1 <= len(data.encode()) <= 64:
                    raise bad_request(BUTTON_DATA_INVALID)
            if "url" in button and not _URL.match(str(button["url"])):
                raise bad_request(
                    f"inline keyboard button URL '{button['url']}' is invalid: Wrong HTTP URL"
                )
            buttons.append({key: value for key, value in button.items() if value is not None})
        if buttons:
            keyboard.append(buttons)
    # An empty inline keyboard is no keyboard at all for Telegram.
    return {"inline_keyboard": keyboard} if keyboard else None


def _normalize_reply_keyboard(markup: dict[str, Any]) -> dict[str, Any]:
    rows = markup.get("keyboard")
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request("can't parse keyboard button: Keyboard expected")
    keyboard: list[list[dict[str, Any]]] = []
    for row in rows:
        buttons: list[dict[str, Any]] = []
        for button in row:
            # The Bot API accepts a bare string as a text button.
            item = {"text": button} if isinstance(button, str) else button
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                raise bad_request(
                    'can\'t parse keyboard button: Field "text" must be of type String'
                )
            buttons.append({key: value for key, value in item.items() if value is not None})
        keyboard.append(buttons)
    normalized = {key: value for key, value in markup.items() if value is not None}
    normalized["keyboard"] = keyboard
    return normalized


def normalize_reply_markup(raw: Any) -> dict[str, Any] | None:
    markup = _load_json(raw, "reply keyboard markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        return _normalize_inline(markup["inline_keyboard"])
    if "keyboard" in markup:
        return _normalize_reply_keyboard(markup)
    if markup.get("remove_keyboard") or markup.get("force_reply"):
        return {key: value for key, value in markup.items() if value is not None}
    raise bad_request("can't parse reply keyboard markup JSON object")


def markup_kind(markup: dict[str, Any] | None) -> str | None:
    """One of ``inline``, ``keyboard``, ``remove``, ``force_reply`` (or None)."""
    if not markup:
        return None
    if "inline_keyboard" in markup:
        return "inline"
    if "keyboard" in markup:
        return "keyboard"
    if markup.get("remove_keyboard"):
        return "remove"
    if markup.get("force_reply"):
        return "force_reply"
    return None


def inline_buttons(markup: dict[str, Any] | None) -> list[dict[str, Any]]:
    if markup_kind(markup) != "inline":
        return []
    assert markup is not None
    return [button for row in markup["inline_keyboard"] for button in row]
