"""Uploaded files: bytes kept in memory under Telegram-like ids and download paths.

A photo is stored as several sizes (Telegram sends a list of ``PhotoSize``, smallest
first; bots usually take ``photo[-1]``). When Pillow can read the image the smaller sizes
are real downscaled JPEGs; the largest size is always the uploaded bytes, unchanged.
"""

from __future__ import annotations

import io
import itertools
import mimetypes
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["DOWNLOAD_LIMIT", "FileStore", "StoredFile", "image_size"]

FileKind = Literal["document", "photo"]

#: getFile refuses files above this size ("file is too big"), as the cloud Bot API does.
DOWNLOAD_LIMIT = 20 * 1024 * 1024
_THUMBNAIL_SIDES = (90, 320, 800)


@dataclass(eq=False)
class StoredFile:
    file_id: str
    file_unique_id: str
    content: bytes = field(repr=False)
    kind: FileKind
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None
    width: int = 0
    height: int = 0
    #: every size of the same photo, smallest first (just ``[self]`` for documents)
    group: list[StoredFile] = field(default_factory=list, repr=False)

    @property
    def size(self) -> int:
        return len(self.content)

    def document_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
        }
        if self.file_name is not None:
            data["file_name"] = self.file_name
        if self.mime_type is not None:
            data["mime_type"] = self.mime_type
        return data

    def photo_size_api(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
            "width": self.width,
            "height": self.height,
        }

    def photo_api(self) -> list[dict[str, Any]]:
        return [size.photo_size_api() for size in self.group or [self]]

    def file_api(self, with_path: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
        }
        if with_path:
            data["file_path"] = self.file_path
        return data


def image_size(content: bytes) -> tuple[int, int] | None:
    """(width, height) if Pillow can open ``content`` as an image."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with fpdf2
        return None
    try:
        with Image.open(io.BytesIO(content)) as image:
            return image.size
    except Exception:
        return None


def _thumbnail(content: bytes, side: int) -> tuple[bytes, int, int] | None:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(content)) as image:
            image.thumbnail((side, side))
            out = io.BytesIO()
            image.convert("RGB").save(out, format="JPEG", quality=80)
            return out.getvalue(), image.width, image.height
    except Exception:
        return None


class FileStore:
    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._counter = itertools.count(1)

    def _new(
        self,
        content: bytes,
        kind: FileKind,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        width: int = 0,
        height: int = 0,
    ) -> StoredFile:
        number = next(self._counter)
        # Prefixes mimic real ids (documents "BQAC…", photos "AgAC…") so they look familiar
        # in logs; only uniqueness matters.
        prefix = "BQAC" if kind == "document" else "AgAC"
        if kind == "document":
            extension = (file_name or "").rpartition(".")[2] if "." in (file_name or "") else ""
            path = f"documents/file_{number}" + (f".{extension}" if extension else "")
        else:
            path = f"photos/file_{number}.jpg"
        stored = StoredFile(
            file_id=f"{prefix}{secrets.token_urlsafe(24)}",
            file_unique_id=f"AQAD{secrets.token_urlsafe(9)}",
            content=content,
            kind=kind,
            file_path=path,
            file_name=file_name,
            mime_type=mime_type,
            width=width,
            height=height,
        )
        stored.group = [stored]
        self._by_id[stored.file_id] = stored
        self._by_path[path] = stored
        return stored

    def add_document(
        self, content: bytes, file_name: str | None, mime_type: str | None = None
    ) -> StoredFile:
        if mime_type is None and file_name:
            mime_type = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        return self._new(content, "document", file_name=file_name, mime_type=mime_type)

    def add_photo(self, content: bytes, *, strict: bool = False) -> StoredFile | None:
        """Store a photo; returns its largest size (``.group`` holds all sizes).

        With ``strict`` an unreadable image gives None (the caller answers
        IMAGE_PROCESS_FAILED like Telegram); otherwise it is kept as one 0×0 size so that
        tests may send placeholder bytes.
        """
        dimensions = image_size(content)
        if dimensions is None:
            if strict:
                return None
            return self._new(content, "photo")
        width, height = dimensions
        sizes: list[StoredFile] = []
        for side in _THUMBNAIL_SIDES:
            if max(width, height) <= side:
                break
            thumbnail = _thumbnail(content, side)
            if thumbnail is not None:
                data, w, h = thumbnail
                sizes.append(self._new(data, "photo", width=w, height=h))
        largest = self._new(content, "photo", width=width, height=height)
        sizes.append(largest)
        for size in sizes:
            size.group = sizes
        return largest

    def get(self, file_id: str) -> StoredFile | None:
        return self._by_id.get(file_id)

    def by_path(self, path: str) -> StoredFile | None:
        return self._by_path.get(path)
