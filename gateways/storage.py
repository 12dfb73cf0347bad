"""Where application materials are kept: outside the database, behind one small interface, so a deployment can put
them in an object store (OSS/MinIO) without touching the use cases. The default is a local folder under the data
folder, content-addressed by SHA-256, files readable by the service's user only (0600, folders 0700)."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import Protocol

_KEY = re.compile(r"^[0-9a-f]{64}$")


class MaterialStore(Protocol):
    """Keeps bytes under a key and gives them back; the key is what the database stores."""

    def put(self, content: bytes) -> str: ...

    def get(self, key: str) -> bytes: ...


class MissingMaterial(Exception):
    """The store holds nothing under the key (deleted or moved by hand)."""


class LocalFolderStore:
    """Files in `root`, one per distinct content, at `root/ab/abcdef…` (the key is the content's SHA-256)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise MissingMaterial(key)
        return self.root / key[:2] / key

    def put(self, content: bytes) -> str:
        key = hashlib.sha256(content).hexdigest()
        path = self._path(key)
        if path.exists():
            return key  # the same bytes are kept once
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{key}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)  # atomic: a reader never sees half a file
        finally:
            if tmp.exists():
                tmp.unlink()
        return key

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise MissingMaterial(key) from exc


def store_for(data_dir: Path, materials_dir: Path | None = None) -> LocalFolderStore:
    """The configured store: `materials_dir`, or data_dir/materials."""
    return LocalFolderStore(materials_dir or Path(data_dir) / "materials")
