"""A Temporal payload codec that encrypts every payload before it leaves the process, so the Temporal server's
histories (and anyone reading its database or frontend) hold no personal data.

AES-256-GCM by default; SM4-GCM (国密, GB/T 32907) when `ZHIDA_CRYPTO=gm`. Each encrypted payload names its cipher
and key id in the metadata, so keys can rotate and the cipher can change: the codec encrypts with the current key
and cipher and decrypts whatever it still holds a key for. The cipher and key id are bound as associated data, so a
payload cannot be passed off under another key id. Payloads that are not ours (no `binary/encrypted` encoding, e.g.
histories recorded before the codec) pass through.

One AES-GCM (or SM4-GCM) operation per payload and nothing else: the codec sits on every workflow task.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

ENCODING = b"binary/encrypted"
NONCE_BYTES = 12
TAG_BYTES = 16
AES = "AES-256-GCM"
SM4 = "SM4-GCM"
CIPHERS = (AES, SM4)


class CodecKeyError(Exception):
    """A payload encrypted under a key (or cipher) this process does not hold."""


class _Sm4Gcm:
    """SM4-GCM with the AESGCM interface (`cryptography` has SM4 as a block cipher, not as an AEAD class)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        enc = Cipher(algorithms.SM4(self._key), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(aad)
        return enc.update(data) + enc.finalize() + enc.tag

    def decrypt(self, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
        body, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
        dec = Cipher(algorithms.SM4(self._key), modes.GCM(nonce, tag)).decryptor()
        dec.authenticate_additional_data(aad)
        return dec.update(body) + dec.finalize()


def _cipher(name: str, key: bytes):
    if name == AES:
        return AESGCM(key)
    if name == SM4:
        # SM4 takes 128-bit keys: a key of its own derived from the stored 256-bit one (never the same bytes).
        return _Sm4Gcm(hmac.new(key, b"zhida-payload-sm4-gcm", hashlib.sha256).digest()[:16])
    raise ValueError(f"cipher must be one of {', '.join(CIPHERS)}")


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Mapping[str, bytes], current: str, cipher: str = AES) -> None:
        if current not in keys:
            raise ValueError(f"current key id {current!r} is not among the keys")
        self._ciphers = {(c, key_id): _cipher(c, key) for key_id, key in keys.items() for c in CIPHERS}
        self._current = (cipher, current)
        self._metadata = {"encoding": ENCODING, "encryption-cipher": cipher.encode(),
                          "encryption-key-id": current.encode()}  # fmt: skip
        self._aad = f"{cipher}|{current}".encode()

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.encode_sync(payloads)

    def encode_sync(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher, aad, metadata = self._ciphers[self._current], self._aad, self._metadata
        out = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), aad)
            out.append(Payload(metadata=metadata, data=nonce + sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.decode_sync(payloads)

    def decode_sync(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                out.append(payload)
                continue
            name = payload.metadata.get("encryption-cipher", AES.encode()).decode()
            key_id = payload.metadata.get("encryption-key-id", b"").decode()
            cipher = self._ciphers.get((name, key_id))
            if cipher is None:
                raise CodecKeyError(f"no key {key_id!r} ({name}) to decrypt a payload")
            nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
            out.append(Payload.FromString(cipher.decrypt(nonce, sealed, f"{name}|{key_id}".encode())))
        return out


def AesGcmCodec(keys: Mapping[str, bytes], current: str) -> EncryptionCodec:  # the name the tests knew it by
    return EncryptionCodec(keys, current, AES)


def encrypted_converter(keys: Mapping[str, bytes], current: str, cipher: str = AES) -> DataConverter:
    """The pydantic data converter with the encryption codec; failure messages and stack traces are encoded too
    (they may quote an enterprise's data)."""
    from temporalio.contrib.pydantic import pydantic_data_converter

    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keys, current, cipher),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
