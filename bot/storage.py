"""aiogram FSM storage in the product's database: a dialog survives a restart of the bot.

While an update is being handled, the dialog state is written in that update's own
transaction (see `bot.middlewares`), so a step and what it changed commit together; and
SQLite never sees two writers waiting on each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, StateType, StorageKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models import BotFsm

current_session: ContextVar[AsyncSession | None] = ContextVar("current_session", default=None)


class SqlStorage(BaseStorage):
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self.keys = DefaultKeyBuilder(with_destiny=True)

    async def _row(self, session: AsyncSession, key: StorageKey) -> BotFsm:
        k = self.keys.build(key)
        row = await session.get(BotFsm, k)
        if row is None:
            row = BotFsm(key=k, state=None, data={})
            session.add(row)
        return row

    @asynccontextmanager
    async def _session(self, write: bool) -> AsyncIterator[AsyncSession]:
        shared = current_session.get()
        if shared is not None:
            yield shared
            if write:
                await shared.flush()
            return
        async with self.sessionmaker() as s:
            yield s
            if write:
                await s.commit()

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        async with self._session(write=True) as s:
            row = await self._row(s, key)
            row.state = value

    async def get_state(self, key: StorageKey) -> str | None:
        async with self._session(write=False) as s:
            row = await s.get(BotFsm, self.keys.build(key))
            return None if row is None else row.state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        async with self._session(write=True) as s:
            row = await self._row(s, key)
            row.data = dict(data)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self._session(write=False) as s:
            row = await s.get(BotFsm, self.keys.build(key))
            return {} if row is None else dict(row.data or {})

    async def close(self) -> None:
        return None
