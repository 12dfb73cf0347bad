"""A Temporal payload codec that encrypts every payload with AES-256-GCM before it leaves the process, so the
Temporal server's histories (and anyone reading its database or frontend) hold no personal data.

Each encrypted payload names its key id in the metadata, so keys can rotate: the codec encrypts with the current
key and decrypts with any key it still holds. The key id is bound as associated data, so a payload cannot be
passed off under another key id. Payloads that are not ours (no `binary/encrypted` encoding) pass through.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
NONCE_BYTES = 12


class CodecKeyError(Exception):
    """A payload encrypted under a key this process does not hold."""


class AesGcmCodec(PayloadCodec):
    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if current not in keys:
            raise ValueError(f"current key id {current!r} is not among the keys")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._current = current

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self._ciphers[self._current]
        out = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), self._current.encode())
            out.append(Payload(metadata={"encoding": ENCODING, "encryption-key-id": self._current.encode()},
                               data=nonce + sealed))  # fmt: skip
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                out.append(payload)
                continue
            key_id = payload.metadata.get("encryption-key-id", b"").decode()
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise CodecKeyError(f"no key {key_id!r} to decrypt a payload")
            nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
            out.append(Payload.FromString(cipher.decrypt(nonce, sealed, key_id.encode())))
        return out
