"""Tokens: a known role, a `jti`, a lifetime ceiling, revocation on logout, Chinese refusals, bearer-only API."""

from __future__ import annotations

import time

import jwt
import pytest

from api.auth import MAX_LIFETIME_SECONDS, AuthError, decode, mint
from tests.api.scoping import csrf_headers
from tests.security.conftest import DEPT, SECRET, World


def _claims(**over) -> dict:
    now = int(time.time())
    # An hour: the claims are built when the tests are collected, and a slow run reaches them minutes later.
    return {"role": "admin", "sub": "ops", "iat": now, "exp": now + 3600, "iss": "zhida", "jti": "j1"} | over


def test_tokens_carry_a_jti_and_a_capped_lifetime() -> None:
    a, b = (jwt.decode(mint(SECRET, role="admin", subject="ops", ttl_seconds=30 * 86400), SECRET,
                       algorithms=["HS256"], issuer="zhida") for _ in range(2))  # fmt: skip
    assert a["jti"] and a["jti"] != b["jti"]
    assert a["exp"] - a["iat"] == MAX_LIFETIME_SECONDS


@pytest.mark.parametrize(
    ("claims", "text"),
    [
        (_claims(role="superuser"), "角色不是本平台的角色"),
        (_claims(exp=int(time.time()) + 7 * 86400), "有效期超过上限"),
        ({k: v for k, v in _claims().items() if k != "jti"}, "缺少必需的声明 jti"),
        (_claims(sub="  "), "缺少用户标识"),
    ],
)
def test_correctly_signed_but_unacceptable_tokens_are_refused(claims: dict, text: str) -> None:
    with pytest.raises(AuthError, match=text):
        decode(SECRET, jwt.encode(claims, SECRET, algorithm="HS256"))


def test_unknown_role_is_401_in_chinese_not_500(client, world: World) -> None:
    token = jwt.encode(_claims(role="superuser"), SECRET, algorithm="HS256")
    r = client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text
    message = r.json()["error"]["message"]
    assert "角色" in message and not any(word in message for word in ("Signature", "token", "Invalid"))


@pytest.mark.parametrize("token", ["not-a-token", mint("another-secret-of-at-least-32-bytes!", role="admin",
                                                        subject="ops")])  # fmt: skip
def test_refusals_never_repeat_pyjwt_text(client, token: str) -> None:
    r = client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.json()["error"]["message"].isascii() is False
    assert "segments" not in r.text and "Signature verification" not in r.text


def test_the_api_does_not_accept_the_cookie(client, world: World) -> None:
    token = world.token()
    assert client.get("/api/v1/tasks", headers={"Cookie": f"zhida_token={token}"}).status_code == 401
    assert client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_api_logout_revokes_the_token(client, world: World) -> None:
    headers = {"Authorization": f"Bearer {world.token('department', DEPT)}"}
    assert client.get("/api/v1/tasks", headers=headers).status_code == 200
    assert client.post("/api/v1/sessions/logout", headers=headers).status_code == 204
    r = client.get("/api/v1/tasks", headers=headers)
    assert r.status_code == 401 and "已注销" in r.json()["error"]["message"]
    # Other tokens of the same caller are not affected.
    assert client.get("/api/v1/tasks", headers=world.bearer("department", DEPT)).status_code == 200


def test_web_logout_revokes_the_cookie_and_clears_it(client, world: World) -> None:
    token = world.token("enterprise", world.uscc)
    cookie = {"Cookie": f"zhida_token={token}"}
    assert client.get(f"/web/enterprises/{world.uscc}", headers=cookie).status_code == 200
    r = client.post("/web/logout", headers=cookie | csrf_headers(SECRET, token))
    assert r.status_code == 303 and r.headers["location"] == "/web/login"
    assert 'zhida_token=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    client.cookies.clear()
    page = client.get(f"/web/enterprises/{world.uscc}", headers=cookie)
    assert page.status_code == 401 and "已注销" in page.text


def test_a_token_in_the_url_signs_nobody_in(client, world: World) -> None:
    r = client.get(f"/web/login?token={world.token()}")
    assert r.status_code == 200 and "zhida_token" not in r.headers.get("set-cookie", "")
