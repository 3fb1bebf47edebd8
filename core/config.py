"""Runtime configuration (interfaces §3), read from the environment or a `.env` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AESH_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite+aiosqlite:///./data/aesh.db"
    departement: str = "062"
    storage_dir: Path = Path("./data/files")
    # Outside tests the key must be set; `require_secret_key()` enforces it where tokens are made.
    secret_key: str | None = None

    bot_token: str | None = None
    telegram_api: str | None = None

    imap_host: str | None = None
    imap_port: int = 143
    imap_user: str | None = None
    imap_password: str | None = None
    imap_ssl: bool = False
    imap_folder: str = "INBOX"

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_tls: Literal["none", "starttls", "implicit"] = "none"

    mail_from: str = "aesh@localhost"
    renewal_reply_days: int = Field(default=30, ge=1)
    # Bot messages carrying student data are deleted after this many hours (Telegram lets a
    # bot delete its messages for 48 h).
    chat_retention_hours: float = Field(default=24, gt=0, le=47)

    def require_secret_key(self) -> str:
        if not self.secret_key:
            raise RuntimeError("AESH_SECRET_KEY must be set (it signs tokens in mails and links)")
        return self.secret_key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
