"""Telegram's error replies, word for word where bots match on them.

aiogram turns ``error_code`` into an exception class (400 → ``TelegramBadRequest``, 401 →
``TelegramUnauthorizedError``…) and a ``parameters.retry_after`` into
``TelegramRetryAfter``; libraries such as aiogram-dialog then look for substrings of
``description`` ("message is not modified", "message to delete not found"), so the texts
below are copied from the real Bot API and must not be reworded.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BUTTON_DATA_INVALID",
    "CANT_EDIT",
    "CHAT_NOT_FOUND",
    "MESSAGE_EMPTY",
    "MESSAGE_TOO_LONG",
    "NOT_MODIFIED",
    "QUERY_INVALID",
    "ApiError",
    "bad_request",
    "default_description",
]

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
BUTTON_DATA_INVALID = "BUTTON_DATA_INVALID"
MESSAGE_EMPTY = "message text is empty"
MESSAGE_TOO_LONG = "message is too long"
CAPTION_TOO_LONG = "message caption is too long"
CHAT_NOT_FOUND = "chat not found"
CANT_EDIT = "message can't be edited"
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
FILE_TOO_BIG = "file is too big"
WRONG_FILE_ID = "wrong file identifier/HTTP URL specified"
CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)

_STATUS_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class ApiError(Exception):
    """An error reply: raised anywhere in a method, turned into Telegram's JSON by the server."""

    def __init__(self, status: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(reason: str) -> ApiError:
    return ApiError(400, f"Bad Request: {reason}")


def default_description(status: int, retry_after: int | None = None) -> str:
    if status == 429:
        return f"Too Many Requests: retry after {retry_after if retry_after is not None else 1}"
    return _STATUS_TEXT.get(status, "Error")
