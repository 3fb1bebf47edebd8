"""What an uploaded file really is, from its first bytes (never from its name)."""

from __future__ import annotations

MAX_PIECE_BYTES = 10 * 1024 * 1024
# Telegram's Bot API refuses getFile above 20 MB: such files cannot even be fetched.
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024

ACCEPTED = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}


def sniff(head: bytes) -> str | None:
    """MIME type of an accepted kind (PDF, JPEG, PNG), or None for anything else."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None
