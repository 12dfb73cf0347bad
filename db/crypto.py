"""Encryption at rest for personal data (names, phones, ID numbers, bank accounts) and masking for display."""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet


@lru_cache
def _fernet(key: str) -> Fernet:
    return Fernet(key.encode())


def encrypt(key: str, plain: str) -> str:
    return _fernet(key).encrypt(plain.encode()).decode()


def decrypt(key: str, token: str) -> str:
    return _fernet(key).decrypt(token.encode()).decode()


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
