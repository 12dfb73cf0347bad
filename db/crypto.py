"""Encryption at rest for personal data (names, phones, ID numbers, bank accounts) and masking for display.

Every stored value names the key it was encrypted with: `k2:<Fernet token>` (a value without a prefix is from
before key ids and belongs to `k0`, the original key). The `key` argument is a keyring: `id|key;id|key…` with the
current key first (settings.fernet_key() builds it from the keys folder), or one bare Fernet key (id `k0`). Values
are encrypted with the current key and decrypted with whichever key they name, so a rotation (`zhida keys rotate`)
can re-encrypt in batches while everything stays readable.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet

LEGACY_ID = "k0"


class UnknownKey(KeyError):
    """A value encrypted under a key id this keyring does not hold."""


@lru_cache(maxsize=32)
def keyring(spec: str) -> tuple[str, dict[str, Fernet]]:
    """(current key id, Fernets by id) of a keyring spec."""
    if "|" not in spec:
        return LEGACY_ID, {LEGACY_ID: Fernet(spec.encode())}
    ring: dict[str, Fernet] = {}
    current = ""
    for part in spec.split(";"):
        key_id, _, key = part.partition("|")
        ring[key_id] = Fernet(key.encode())
        current = current or key_id
    return current, ring


def key_id_of(value: str) -> str:
    head, sep, _ = value[:24].partition(":")
    return head if sep else LEGACY_ID


def encrypt(key: str, plain: str) -> str:
    current, ring = keyring(key)
    return f"{current}:{ring[current].encrypt(plain.encode()).decode()}"


def decrypt(key: str, token: str) -> str:
    key_id = key_id_of(token)
    body = token.split(":", 1)[1] if ":" in token[:24] else token
    ring = keyring(key)[1]
    fernet = ring.get(key_id)
    if fernet is None:
        # A process started before a rotation holds an old keyring: read the keys folder again once.
        from settings import get_settings

        fernet = keyring(get_settings().fernet_key())[1].get(key_id)
        if fernet is None:
            raise UnknownKey(f"no key {key_id!r} in the keyring to decrypt a stored value")
    return fernet.decrypt(body.encode()).decode()


def reencrypt(key: str, token: str) -> str:
    """The value under the keyring's current key (unchanged when it is already)."""
    return token if key_id_of(token) == keyring(key)[0] else encrypt(key, decrypt(key, token))


def mask_phone(phone: str) -> str:
    """138****1234, as pages and logs show it."""
    digits = phone[-11:]
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 7 else "****"


def mask_name(name: str) -> str:
    """张*, 欧阳** : the first character only."""
    return name[:1] + "*" * max(len(name) - 1, 1)


def mask_account(acct: str) -> str:
    """6222 **** **** 1234 style: first four and last four digits only."""
    return f"{acct[:4]}****{acct[-4:]}" if len(acct) > 8 else "****"
