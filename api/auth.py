"""Bearer tokens: our own (JWT, HS256, carrying a role, a subject and a `jti`) and, when configured, the province's
unified identity service (统一身份认证) verified by OIDC discovery and its JWKS (issuer, audience, rotating keys).

Every refusal is an `AuthError` with a Chinese message for the caller; PyJWT's own text never reaches anyone.
Lifetimes have a ceiling: a token whose `exp - iat` exceeds it is refused even when correctly signed, so a leaked
signing key or a generous identity provider cannot hand out week-long tokens.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from dataclasses import dataclass
from functools import lru_cache

import jwt

from schemas.principal import Principal
from schemas.vocabulary import Role

ROLES: tuple[str, ...] = Role.values()
ISSUER = "zhida"
# The longest any token may live, ours or the identity service's (a working day and a half).
MAX_LIFETIME_SECONDS = 12 * 3600
__all__ = ["ISSUER", "MAX_LIFETIME_SECONDS", "ROLES", "AuthError", "Oidc", "Principal", "decode", "mint"]


class AuthError(Exception):
    """A refused token; `message` is the Chinese text the caller sees."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def mint(
    secret: str,
    *,
    role: str,
    subject: str,
    name: str = "",
    ttl_seconds: int = 8 * 3600,
    ceiling: int = MAX_LIFETIME_SECONDS,
) -> str:
    """A signed token with a fresh `jti`; the lifetime is cut to the ceiling."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    now = int(time.time())
    claims = {
        "role": role,
        "sub": subject,
        "name": name,
        "iat": now,
        "exp": now + min(ttl_seconds, ceiling),
        "iss": ISSUER,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def _refusal(exc: jwt.PyJWTError) -> AuthError:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return AuthError("访问令牌无效：已过期，请重新登录")
    if isinstance(exc, jwt.InvalidSignatureError):
        return AuthError("访问令牌无效：签名不符（不是本平台签发的令牌）")
    if isinstance(exc, jwt.InvalidAudienceError):
        return AuthError("访问令牌无效：受众（aud）不是本平台")
    if isinstance(exc, jwt.InvalidIssuerError):
        return AuthError("访问令牌无效：签发方（iss）不受信任")
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return AuthError(f"访问令牌无效：缺少必需的声明 {exc.claim}")
    if isinstance(exc, jwt.PyJWKClientError):
        return AuthError("访问令牌无效：找不到签名密钥（统一身份认证的密钥集中没有该 kid）")
    return AuthError("访问令牌无效：格式错误")


def principal_of(claims: dict, *, ceiling: int, role_claim: str = "role") -> Principal:
    """The caller named by verified claims: a known role, a non-empty subject, a lifetime within the ceiling."""
    role = claims.get(role_claim)
    if role not in ROLES:
        raise AuthError("访问令牌无效：角色不是本平台的角色（企业、主管部门、财政部门、平台管理员）")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise AuthError("访问令牌无效：缺少用户标识（sub）")
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int) or exp - iat > ceiling:
        raise AuthError(f"访问令牌无效：有效期超过上限 {ceiling // 3600} 小时")
    name = claims.get("name", "")
    return Principal(
        role=role,
        subject=subject.strip(),
        name=name if isinstance(name, str) else "",
        token_id=str(claims.get("jti", "")),
        expires_at=exp,
        issued_at=iat,
    )


def decode(secret: str, token: str, *, ceiling: int = MAX_LIFETIME_SECONDS, oidc: Oidc | None = None) -> Principal:
    """The principal of one of our tokens, or (when `oidc` is given and the token names its issuer) of the identity
    service's. Raises AuthError for a bad, expired, foreign, over-long or role-less token."""
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise _refusal(exc) from exc
    if oidc is not None and unverified.get("iss") == oidc.issuer:
        return oidc.verify(token, ceiling=ceiling)
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], issuer=ISSUER, options={"require": ["exp", "iat", "sub", "jti"]}
        )
    except jwt.InvalidTokenError as exc:
        raise _refusal(exc) from exc
    return principal_of(claims, ceiling=ceiling)


@dataclass(frozen=True)
class Oidc:
    """The identity service: its issuer, our audience, and which claim carries the role.

    Keys come from the JWKS named in the issuer's discovery document; PyJWKClient caches them and fetches the set
    again when a token names a `kid` it has not seen, so the service can rotate its keys without us restarting."""

    issuer: str
    audience: str
    role_claim: str = "role"
    jwks_url: str = ""
    # Least seconds between fetches forced by an unknown kid (random kids must not make us hammer the service).
    refresh_cooldown_seconds: float = 30.0

    def verify(self, token: str, *, ceiling: int) -> Principal:
        try:
            jwks = _jwks(self.jwks_url or _discover(self.issuer), self.refresh_cooldown_seconds)
            key = jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256", "ES256", "PS256"],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.PyJWKClientConnectionError as exc:
            raise AuthError("统一身份认证服务暂不可达，请稍后重试") from exc
        except jwt.PyJWTError as exc:
            raise _refusal(exc) from exc
        except (OSError, KeyError, ValueError) as exc:
            raise AuthError("统一身份认证服务暂不可达，请稍后重试") from exc
        return principal_of(claims, ceiling=ceiling, role_claim=self.role_claim)


@lru_cache(maxsize=8)
def _discover(issuer: str) -> str:
    """The JWKS address from the issuer's OpenID discovery document."""
    with urllib.request.urlopen(issuer.rstrip("/") + "/.well-known/openid-configuration", timeout=5) as response:
        return json.loads(response.read())["jwks_uri"]


@lru_cache(maxsize=8)
def _jwks(url: str, cooldown: float) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5, cooldown_duration=cooldown)
