"""Attachments and other large blobs (raw e-mail), kept outside the database.

A content-addressed store on the filesystem: a blob's key is the SHA-256 of
its bytes, so saving the same file twice (a webhook retried, a mailbox
fetched again) stores it once, and a key can never point at other content.
Blobs live under `<data_dir>/attachments/ab/cd/<key>`; writes go through a
temporary file and an atomic rename, so a crash never leaves half a blob
under a real key.

With several hub machines (MongoDB deployments), `data_dir/attachments` must
be a shared volume, or an agent's request may reach a machine without the
file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from pathlib import Path

from hub.errors import NotFound, PayloadTooLarge

KEY = re.compile(r"^[0-9a-f]{64}$")
# Below this, writing on the event loop is cheaper than a thread hop.
SMALL = 256 * 1024


def blob_key(data: bytes) -> str:
    """The key `data` is stored under."""
    return hashlib.sha256(data).hexdigest()


class AttachmentStore:
    """Blobs by content hash, with a size cap for attachments.

    `max_bytes` is the largest attachment kept; a channel that meets a larger
    one records it as `too_large` on the `Attachment` instead of saving it.
    """

    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def accepts(self, size: int) -> bool:
        """Whether an attachment of `size` bytes is within the cap."""
        return size <= self.max_bytes

    def path(self, key: str) -> Path:
        """Where the blob with `key` lives. Raises NotFound for a key that is not
        one this store makes (so no caller can walk out of the folder)."""
        if not KEY.match(key):
            raise NotFound(f"no attachment {key!r}")
        return self.root / key[:2] / key[2:4] / key

    async def save(self, data: bytes, *, capped: bool = True) -> str:
        """Store `data` (idempotent) and return its key. With `capped`, raises
        PayloadTooLarge beyond `max_bytes`; raw messages are saved uncapped
        (their size is bounded where they are received)."""
        if capped and not self.accepts(len(data)):
            raise PayloadTooLarge(
                f"attachment of {len(data)} bytes is over the {self.max_bytes}-byte limit"
            )
        key = blob_key(data)
        if len(data) <= SMALL:
            self._write(key, data)
        else:
            await asyncio.to_thread(self._write, key, data)
        return key

    def _write(self, key: str, data: bytes) -> None:
        target = self.path(key)
        if target.exists():
            return
        if not target.parent.is_dir():  # cheaper than mkdir's FileExistsError each time
            target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    async def read(self, key: str) -> bytes:
        """The blob's bytes; NotFound if there is none."""
        path = self.path(key)
        try:
            if path.stat().st_size <= SMALL:
                return path.read_bytes()
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise NotFound(f"no attachment {key!r}") from None

    def exists(self, key: str) -> bool:
        try:
            return self.path(key).exists()
        except NotFound:
            return False
