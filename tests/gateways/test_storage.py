"""The local material store: content-addressed, files 0600 in folders 0700, atomic, keys checked."""

import hashlib
import os
import stat
from pathlib import Path

import pytest

from gateways.storage import LocalFolderStore, MissingMaterial, store_for


def test_put_and_get(tmp_path: Path) -> None:
    store = store_for(tmp_path)
    key = store.put(b"%PDF-1.4 hello")
    assert key == hashlib.sha256(b"%PDF-1.4 hello").hexdigest()
    path = tmp_path / "materials" / key[:2] / key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert store.put(b"%PDF-1.4 hello") == key and store.get(key) == b"%PDF-1.4 hello"
    assert [p.name for p in path.parent.iterdir()] == [key]  # no temporary file left behind


def test_unknown_or_crafted_keys_are_missing(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path)
    for key in ("0" * 64, "../../etc/passwd", "A" * 64, ""):
        with pytest.raises(MissingMaterial):
            store.get(key)
