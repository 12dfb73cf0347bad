"""Ed25519 request signing shared by Zhida and the treasury: who sent a body, when, and only once.

Signature base string (UTF-8): ``{X-Timestamp}\\n{X-Nonce}\\n{sha256 hex of the raw body}``.

`Signer` / `Verifier` are the interface every signature algorithm sits behind: Ed25519 here, SM2 with SM3
(国密, gateways/sm2.py) for the voucher channel.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import re
import secrets
import threading
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

HEADER_KEY_ID = "X-Key-Id"
HEADER_TIMESTAMP = "X-Timestamp"
HEADER_NONCE = "X-Nonce"
HEADER_SIGNATURE = "X-Signature"
SIGNED_HEADERS = (HEADER_KEY_ID, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)

_TIMESTAMP_RE = re.compile(r"^\d{1,12}$")
# Bounded so a flood of huge nonces cannot grow the cache's memory per entry.
_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


class SignatureError(Exception):
    """A signed message was refused; `reason` is Chinese for the peer, `code` is stable for code and logs."""

    def __init__(self, reason: str, code: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class Signer(Protocol):
    """Signs bytes with one private key, named by `key_id` so the peer finds the public key."""

    algorithm: str
    key_id: str

    def sign(self, data: bytes) -> bytes: ...


class Verifier(Protocol):
    """Checks signatures of one public key; raises SignatureError when one does not hold."""

    algorithm: str

    def verify(self, signature: bytes, data: bytes) -> None: ...


class Ed25519Signer:
    """`Signer` over an Ed25519 private key (PKCS#8 PEM)."""

    algorithm = "Ed25519"

    def __init__(self, private_pem: str, key_id: str) -> None:
        self.key_id = key_id
        self._key = _private_key(private_pem)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)


class Ed25519Verifier:
    """`Verifier` over an Ed25519 public key (SubjectPublicKeyInfo PEM)."""

    algorithm = "Ed25519"

    def __init__(self, public_pem: str) -> None:
        self._key = _public_key(public_pem)

    def verify(self, signature: bytes, data: bytes) -> None:
        try:
            self._key.verify(signature, data)
        except InvalidSignature as exc:
            raise SignatureError("签名验证失败", "bad_signature") from exc


def new_private_pem() -> str:
    """A fresh Ed25519 private key as PKCS#8 PEM (unencrypted: protect it like any secret)."""
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@lru_cache(maxsize=32)
def _private_key(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


@lru_cache(maxsize=64)
def _public_key(pem: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def public_pem(private_pem: str) -> str:
    """The SubjectPublicKeyInfo PEM that peers need to verify what `private_pem` signs."""
    return (
        _private_key(private_pem)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def signature_base(timestamp: str, nonce: str, body: bytes) -> bytes:
    """The exact bytes that are signed; the body enters only through its SHA-256 so it is hashed once."""
    return f"{timestamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}".encode()


def sign_headers(private_pem: str, key_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """Headers that prove `body` comes from the holder of `private_pem`, at `now`, exactly once."""
    timestamp = str(int(time.time() if now is None else now))
    nonce = secrets.token_hex(16)
    signature = _private_key(private_pem).sign(signature_base(timestamp, nonce, body))
    return {
        HEADER_KEY_ID: key_id,
        HEADER_TIMESTAMP: timestamp,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: base64.b64encode(signature).decode(),
    }


class NonceCache:
    """Nonces seen within the signature window, so a captured request cannot be replayed.

    Thread-safe and bounded: when `max_entries` unexpired nonces are held, the one whose timestamp is
    oldest is dropped and every message no newer than it is refused from then on, so eviction never
    reopens a replay (under such load, slightly old but honest messages are refused and resent).
    """

    def __init__(self, max_entries: int = 200_000) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._expiry: list[tuple[float, int, str]] = []  # heap of (expires_at, timestamp, nonce)
        self._floor = -1  # messages with a timestamp at or below this are refused

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, nonce: str, timestamp: int, *, window_seconds: int, now: float) -> bool:
        """Record `nonce`; False when it was already seen (a replay) or is older than an evicted one."""
        with self._lock:
            while self._expiry and self._expiry[0][0] < now:
                self._seen.discard(heapq.heappop(self._expiry)[2])
            if nonce in self._seen or timestamp <= self._floor:
                return False
            while len(self._seen) >= self._max:
                _, evicted_ts, evicted = heapq.heappop(self._expiry)
                self._seen.discard(evicted)
                self._floor = max(self._floor, evicted_ts)
            if timestamp <= self._floor:
                return False
            self._seen.add(nonce)
            heapq.heappush(self._expiry, (timestamp + window_seconds, timestamp, nonce))
            return True


def verify_headers(
    public_pems: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    window_seconds: int,
    nonces: NonceCache,
    now: float | None = None,
) -> str:
    """Check a signed message and return the key id that signed it; raise SignatureError otherwise.

    `public_pems` maps key id → PEM; several entries allow key rotation. The nonce is recorded only
    after the signature holds, so forged messages cannot fill the cache or burn honest nonces.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    missing = [name for name in SIGNED_HEADERS if not lowered.get(name.lower())]
    if missing:
        raise SignatureError(f"缺少签名请求头: {', '.join(missing)}", "missing_header")
    key_id = lowered[HEADER_KEY_ID.lower()]
    timestamp = lowered[HEADER_TIMESTAMP.lower()]
    nonce = lowered[HEADER_NONCE.lower()]
    signature = lowered[HEADER_SIGNATURE.lower()]

    pem = public_pems.get(key_id)
    if pem is None:
        raise SignatureError(f"未知的签名密钥: {key_id[:64]}", "unknown_key")
    if not _TIMESTAMP_RE.match(timestamp):
        raise SignatureError("时间戳格式错误（应为Unix秒）", "bad_timestamp")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > window_seconds:
        raise SignatureError(f"时间戳超出允许范围（±{window_seconds}秒）", "stale_timestamp")
    if not _NONCE_RE.match(nonce):
        raise SignatureError("随机数格式错误", "bad_nonce")
    try:
        raw = base64.b64decode(signature, validate=True)
        _public_key(pem).verify(raw, signature_base(timestamp, nonce, body))
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise SignatureError("签名验证失败", "bad_signature") from exc
    if not nonces.add(nonce, int(timestamp), window_seconds=window_seconds, now=now):
        raise SignatureError("请求随机数重复（疑似重放）", "replayed_nonce")
    return key_id
