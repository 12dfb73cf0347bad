"""Sign-in through the unified identity service: OIDC discovery, its JWKS, issuer, audience and key rotation,
against a local identity service (a FastAPI app on a loopback port)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from api.auth import AuthError, Oidc, decode
from tests.security.conftest import SECRET, World, client_for
from tests.support import ServerThread


class IdentityService:
    """Publishes a discovery document and a JWKS; `rotate()` replaces the signing key with a new kid."""

    def __init__(self) -> None:
        self.keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        self.rotate()
        self.app = FastAPI()
        self.app.get("/.well-known/openid-configuration")(lambda: {"issuer": self.issuer, "jwks_uri": self.jwks_uri})
        self.app.get("/jwks.json")(self.jwks)
        self.server = ServerThread(self.app).start()
        self.issuer = self.server.url
        self.jwks_uri = f"{self.server.url}/jwks.json"

    def rotate(self) -> None:
        self.keys = [(f"kid-{len(self.keys) + 1}-{time.monotonic_ns()}", rsa.generate_private_key(65537, 2048))]

    def jwks(self) -> dict:
        keys = []
        for kid, key in self.keys:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            keys.append(jwk | {"kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def token(self, *, aud: str = "zhida", iss: str | None = None, ttl: int = 3600, **claims) -> str:
        kid, key = self.keys[0]
        now = int(time.time())
        body = {"iss": iss or self.issuer, "aud": aud, "sub": "YC-OIDC", "role": "admin", "iat": now,
                "exp": now + ttl} | claims  # fmt: skip
        return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def idp() -> Iterator[IdentityService]:
    service = IdentityService()
    yield service
    service.server.stop()


def test_identity_service_tokens_are_verified_by_discovery_and_jwks(idp: IdentityService) -> None:
    oidc = Oidc(issuer=idp.issuer, audience="zhida")
    principal = decode(SECRET, idp.token(), oidc=oidc)
    assert (principal.role, principal.subject) == ("admin", "YC-OIDC")
    with pytest.raises(AuthError, match="受众"):
        decode(SECRET, idp.token(aud="someone-else"), oidc=oidc)
    with pytest.raises(AuthError, match="有效期超过上限"):
        decode(SECRET, idp.token(ttl=3 * 86400), oidc=oidc)
    with pytest.raises(AuthError, match="角色"):
        decode(SECRET, idp.token(role="superuser"), oidc=oidc)
    # A token naming another issuer is not checked against this JWKS, nor accepted as ours.
    with pytest.raises(AuthError):
        decode(SECRET, idp.token(iss="https://evil.example"), oidc=oidc)


def test_keys_rotate_without_a_restart(idp: IdentityService) -> None:
    oidc = Oidc(issuer=idp.issuer, audience="zhida", refresh_cooldown_seconds=0)
    decode(SECRET, idp.token(), oidc=oidc)  # the first key is cached
    idp.rotate()
    principal = decode(SECRET, idp.token(sub="after-rotation"), oidc=oidc)  # unknown kid: the JWKS is fetched again
    assert principal.subject == "after-rotation"
    old_kid_forged = jwt.encode({"iss": idp.issuer, "aud": "zhida", "sub": "x", "role": "admin",
                                 "iat": int(time.time()), "exp": int(time.time()) + 60},
                                rsa.generate_private_key(65537, 2048), algorithm="RS256",
                                headers={"kid": idp.keys[0][0]})  # fmt: skip
    with pytest.raises(AuthError, match="签名不符"):
        decode(SECRET, old_kid_forged, oidc=oidc)


def test_signing_in_with_an_identity_service_token_gives_our_own_session(idp: IdentityService, world: World) -> None:
    settings = world.settings.model_copy(update={"oidc_issuer": idp.issuer})
    client = client_for(settings)
    api = client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {idp.token(sub='ops')}"})
    assert api.status_code == 200, api.text
    login = client.get("/web/login")
    field = login.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post("/web/login", data={"token": idp.token(sub="ops"), "csrf_token": field})
    assert r.status_code == 303
    session_token = r.cookies["zhida_token"]
    assert jwt.decode(session_token, SECRET, algorithms=["HS256"], issuer="zhida")["jti"]  # ours: revocable
