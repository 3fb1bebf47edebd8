"""Files under AESH_STORAGE_DIR, stored by content hash (never by the user's file name)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, content: bytes) -> str:
        """Store `content` atomically (write then rename); return its digest."""
        digest = hashlib.sha256(content).hexdigest()
        target = self.path(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def delete_after_commit(self, session: AsyncSession, digests: list[str]) -> None:
        """Erase files when (and only if) the session's transaction commits."""
        pending: list[str] = session.sync_session.info.setdefault("files_to_delete", [])
        pending.extend(digests)
        if not session.sync_session.info.get("files_hook"):
            session.sync_session.info["files_hook"] = True

            @event.listens_for(session.sync_session, "after_commit")
            def _erase(sync_session: Session) -> None:
                for digest in sync_session.info.pop("files_to_delete", []):
                    self.delete(digest)

            @event.listens_for(session.sync_session, "after_rollback")
            def _keep(sync_session: Session) -> None:
                sync_session.info.pop("files_to_delete", None)
