"""Typed refusals of the domain; each carries a French message from the text catalogue."""

from __future__ import annotations

from typing import Any

from core.texts import t


class DomainError(Exception):
    """A refused request: nothing was changed. `str(error)` is the French message."""

    def __init__(self, key: str, /, **params: Any) -> None:
        self.key = key
        self.params = params
        super().__init__(t(key, **params))

    @property
    def message(self) -> str:
        return str(self)


class NotFound(DomainError):
    pass


class Forbidden(DomainError):
    pass


class InvalidInput(DomainError):
    pass
