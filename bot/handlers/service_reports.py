"""Service commands (domain §3) — every handler runs behind the service guard."""

from __future__ import annotations

from bot.handlers.service_auth import guarded

router = guarded("service_reports")
