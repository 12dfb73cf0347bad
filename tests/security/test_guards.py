"""CSRF tokens, the Origin check, body size limits, SMS receipt secrets, the development sign-in, loopback Temporal."""

from __future__ import annotations

import pytest

from api.security import body_limit
from cli.embedded import temporal_command
from settings import Settings
from tests.api.scoping import csrf_headers
from tests.security.conftest import SECRET, World, client_for


def _preference(client, world: World, headers: dict[str, str]):
    return client.post(f"/web/enterprises/{world.uscc}/push-preference", data={"opt_out": "1"}, headers=headers)


def test_page_posts_need_the_csrf_token(client, world: World) -> None:
    token = world.token("enterprise", world.uscc)
    cookie = {"Cookie": f"zhida_token={token}"}
    r = _preference(client, world, cookie)
    assert r.status_code == 403 and "CSRF" in r.json()["error"]["message"]
    # A token for another session is no good either.
    assert (
        _preference(client, world, cookie | csrf_headers(SECRET, world.token("enterprise", world.uscc))).status_code
        == 403
    )
    assert _preference(client, world, cookie | csrf_headers(SECRET, token)).status_code == 303


def test_the_form_carries_the_token_as_a_hidden_field(client, world: World) -> None:
    token = world.token("enterprise", world.uscc)
    page = client.get(f"/web/enterprises/{world.uscc}/notices", headers={"Cookie": f"zhida_token={token}"})
    assert page.status_code == 200
    field = csrf_headers(SECRET, token)["X-CSRF-Token"]
    assert f'name="csrf_token" value="{field}"' in page.text
    r = client.post(f"/web/enterprises/{world.uscc}/push-preference", data={"opt_out": "0", "csrf_token": field},
                    headers={"Cookie": f"zhida_token={token}"})  # fmt: skip
    assert r.status_code == 303


def test_foreign_origins_are_refused_even_with_a_token(client, world: World) -> None:
    token = world.token("enterprise", world.uscc)
    headers = {"Cookie": f"zhida_token={token}"} | csrf_headers(SECRET, token)
    for evil in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {"Referer": "https://evil.example/x"}):
        r = _preference(client, world, headers | evil)
        assert r.status_code == 403 and "Origin" in r.json()["error"]["message"], evil
    assert _preference(client, world, headers | {"Origin": "http://testserver"}).status_code == 303


def test_sign_in_form_needs_the_anonymous_csrf_token(client, world: World) -> None:
    form = {"token": world.token()}
    assert client.post("/web/login", data=form).status_code == 403  # login CSRF: a foreign form cannot sign us in
    login = client.get("/web/login")
    seed = login.cookies.get("zhida_csrf")
    assert seed and 'name="csrf_token"' in login.text
    field = login.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post("/web/login", data=form | {"csrf_token": field})
    assert r.status_code == 303 and "zhida_token=" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]


def test_secure_cookies_behind_https(world: World) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    app = create_app(world.settings.model_copy(update={"cookie_secure": True}))
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    login = client.get("/web/login")
    assert "Secure" in login.headers["set-cookie"]
    field = login.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post("/web/login", data={"token": world.token(), "csrf_token": field})
    assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


def test_receipts_are_refused_without_a_configured_secret(world: World) -> None:
    open_app = client_for(world.settings.model_copy(update={"sms_receipt_token": None}))
    r = open_app.post("/api/v1/sms/receipts/http", json=[])
    assert r.status_code == 401 and "未配置" in r.json()["error"]["message"]
    configured = client_for(world.settings)
    assert configured.post("/api/v1/sms/receipts/http", json=[]).status_code == 401
    assert configured.post("/api/v1/sms/receipts/http?token=wrong", json=[]).status_code == 401
    ok = configured.post("/api/v1/sms/receipts/http", json=[], headers={"X-Zhida-Receipt-Token": "receipt-secret"})
    assert ok.status_code == 200 and ok.json()["ok"] is True
    assert configured.post("/api/v1/sms/receipts/aliyun?token=receipt-secret", json=[]).json()["code"] == 0


def test_oversized_bodies_are_refused_before_any_work(client) -> None:
    limit = body_limit("/api/v1/sms/receipts/http")
    assert limit <= 64 * 1024
    declared = client.post("/api/v1/sms/receipts/http", headers={"Content-Length": str(200 * 1024 * 1024)},
                           content=b"[]")  # fmt: skip
    assert declared.status_code == 413 and "请求体超过上限" in declared.json()["error"]["message"]

    def chunks():  # no Content-Length: streamed, cut off at the limit
        for _ in range(200):
            yield b" " * 4096

    authorised = {"X-Zhida-Receipt-Token": "receipt-secret"}  # past the secret: the body is read, and cut off
    streamed = client.post("/api/v1/sms/receipts/http", content=chunks(), headers=authorised)
    assert streamed.status_code == 413


def test_development_sign_in_picks_from_a_list(world: World) -> None:
    off = client_for(world.settings)
    assert "开发登录" not in off.get("/web/login").text
    client = client_for(world.settings.model_copy(update={"dev_sign_in": True}))
    login = client.get("/web/login")
    assert "开发登录" in login.text and "宜昌市经济和信息化局" in login.text
    field = login.text.split('name="csrf_token" value="')[1].split('"')[0]
    picked = client.post("/web/dev-login", data={"identity": f"enterprise|{world.uscc}", "csrf_token": field})
    assert picked.status_code == 303 and "zhida_token=" in picked.headers["set-cookie"]
    forged = client.post("/web/dev-login", data={"identity": "admin|someone", "csrf_token": field})
    assert forged.status_code == 422  # only what the list offers
    off_login = off.get("/web/login")
    field = off_login.text.split('name="csrf_token" value="')[1].split('"')[0]
    assert off.post("/web/dev-login", data={"identity": "admin|admin", "csrf_token": field}).status_code == 403


@pytest.mark.parametrize("address", ["0.0.0.0:7999", "10.1.2.3:7999", "127.0.0.1:7999"])
def test_embedded_temporal_binds_to_loopback(tmp_path, address: str) -> None:
    argv = temporal_command(Settings(data_dir=tmp_path, temporal_address=address))
    assert argv[argv.index("--ip") + 1] == "127.0.0.1" and argv[argv.index("--ui-ip") + 1] == "127.0.0.1"
    assert argv[argv.index("--port") + 1] == "7999"


def test_zhida_run_prints_no_token() -> None:
    import inspect

    import cli.embedded

    source = inspect.getsource(cli.embedded.run)
    assert "token=" not in source and "mint(" not in inspect.getsource(cli.embedded)
