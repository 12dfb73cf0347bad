"""Bearer tokens (JWT, HS256) carrying a role and a subject (USCC for enterprises, code for departments)."""

from __future__ import annotations

import time

import jwt

from schemas.principal import Principal
from schemas.vocabulary import Role

ROLES: tuple[str, ...] = Role.values()
__all__ = ["ROLES", "Principal", "decode", "mint"]


def mint(secret: str, *, role: str, subject: str, name: str = "", ttl_seconds: int = 8 * 3600) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    now = int(time.time())
    claims = {"role": role, "sub": subject, "name": name, "iat": now, "exp": now + ttl_seconds, "iss": "zhida"}
    return jwt.encode(claims, secret, algorithm="HS256")


def decode(secret: str, token: str) -> Principal:
    """Raises jwt.InvalidTokenError for a bad, expired or foreign token."""
    claims = jwt.decode(token, secret, algorithms=["HS256"], issuer="zhida", options={"require": ["exp", "sub"]})
    return Principal(role=claims["role"], subject=claims["sub"], name=claims.get("name", ""))
