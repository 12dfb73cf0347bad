"""The codec server the Temporal Web UI calls (api/routers/codec.py), and the converter every client uses:
an administrator decrypts and encrypts payloads; CORS and cookies only for the Web UI's origin; tampered or
foreign payloads are refused with a Chinese error; SM4-GCM under ZHIDA_CRYPTO=gm, and either cipher still reads
the other's payloads."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from google.protobuf import json_format
from sqlalchemy import select

from api.app import create_app
from api.auth import mint
from db.models import AuditRecord, Base
from db.session import engine_for, transaction
from settings import Settings
from workflows.client import data_converter
from workflows.codec import ENCODING

PERSONAL = {"enterprise_name": "宜昌甲科技有限公司", "uscc": "91420500MA4F0ABC12", "phone": "13900001234"}
UI = "http://127.0.0.1:8233"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    folder = tmp_path_factory.mktemp("codec-server")
    url = f"sqlite:///{folder / 'codec.db'}"
    Base.metadata.create_all(engine_for(url))  # the tables suffice (migrating takes seconds)
    yield Settings(data_dir=folder, database_url=url, jwt_secret="codec-server-secret-" + "x" * 24)
    engine_for(url).dispose()


@pytest.fixture(scope="module")
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))


def _admin(settings: Settings) -> str:
    return mint(settings.jwt_key(), role="admin", subject="ops")


def _sealed(settings: Settings) -> list[dict]:
    converter = data_converter(settings)
    plain = converter.payload_converter.to_payloads([PERSONAL])
    return [json_format.MessageToDict(p) for p in converter.payload_codec.encode_sync(plain)]


def test_an_administrator_reads_payloads_from_the_web_ui(client: TestClient, settings: Settings) -> None:
    sealed = _sealed(settings)
    assert PERSONAL["uscc"] not in str(sealed) and base64.b64decode(sealed[0]["metadata"]["encoding"]) == ENCODING
    bearer = {"Authorization": f"Bearer {_admin(settings)}", "X-Namespace": "default"}
    decoded = client.post("/codec/decode", json={"payloads": sealed}, headers=bearer | {"Origin": UI})
    assert decoded.status_code == 200, decoded.text
    assert decoded.headers["access-control-allow-origin"] == UI
    payload = decoded.json()["payloads"][0]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"
    assert "宜昌甲科技有限公司" in base64.b64decode(payload["data"]).decode()
    # encode → decode is the identity
    again = client.post("/codec/encode", json={"payloads": [payload]}, headers=bearer).json()["payloads"]
    assert base64.b64decode(again[0]["metadata"]["encoding"]) == ENCODING
    assert client.post("/codec/decode", json={"payloads": again}, headers=bearer).json()["payloads"] == [payload]
    # The Web UI's "include credentials": the sign-in cookie is accepted from the UI's origin only.
    cookie = {"Cookie": f"zhida_token={_admin(settings)}"}
    assert client.post("/codec/decode", json={"payloads": sealed}, headers=cookie | {"Origin": UI}).status_code == 200
    assert client.post("/codec/decode", json={"payloads": sealed}, headers=cookie).status_code == 401
    preflight = client.options("/codec/decode", headers={"Origin": UI, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == UI
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()


def test_refusals(client: TestClient, settings: Settings) -> None:
    sealed = _sealed(settings)
    body = {"payloads": sealed}
    assert client.post("/codec/decode", json=body).status_code == 401
    for role, subject in (("department", "YC-JXJ"), ("finance", "YC-CZJ")):
        token = mint(settings.jwt_key(), role=role, subject=subject)
        refused = client.post("/codec/decode", json=body, headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code in (401, 403) and "payloads" not in refused.json()
    bearer = {"Authorization": f"Bearer {_admin(settings)}"}
    evil = client.post("/codec/decode", json=body, headers=bearer | {"Origin": "http://evil.example"})
    assert evil.status_code == 403 and evil.json()["error"]["errors"][0]["rule"] == "origin"
    preflight = client.options("/codec/decode", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in preflight.headers
    tampered = [dict(sealed[0], data=base64.b64encode(base64.b64decode(sealed[0]["data"])[:-1] + b"x").decode())]
    bad = client.post("/codec/decode", json={"payloads": tampered}, headers=bearer)
    assert bad.status_code == 422 and bad.json()["error"]["errors"][0]["rule"] == "tampered"
    foreign = [
        dict(sealed[0], metadata=sealed[0]["metadata"] | {"encryption-key-id": base64.b64encode(b"p9").decode()})
    ]
    bad = client.post("/codec/decode", json={"payloads": foreign}, headers=bearer)
    assert bad.status_code == 422 and bad.json()["error"]["errors"][0]["rule"] == "unknown_key"
    bad = client.post("/codec/decode", json={"payloads": [{"data": "not base64!"}]}, headers=bearer)
    assert bad.status_code == 422 and "base64" in bad.json()["error"]["message"]


def _decode_records(settings: Settings) -> list[AuditRecord]:
    with transaction(settings.db_url) as session:
        rows = session.scalars(select(AuditRecord).where(AuditRecord.kind == "payload_decoded").order_by(AuditRecord.seq))
        return list(rows)


def test_every_decode_is_an_audit_record_without_the_contents(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealed = _sealed(settings)
    before = len(_decode_records(settings))
    page = "http://127.0.0.1:8233/namespaces/default/workflows/case%3AYC-1%3Aab12/0f3c-run/history"
    headers = {"Authorization": f"Bearer {_admin(settings)}", "X-Namespace": "default", "Referer": page}
    plain = [{"metadata": {"encoding": base64.b64encode(b"json/plain").decode()}, "data": base64.b64encode(b"1").decode()}]
    assert client.post("/codec/decode", json={"payloads": sealed + plain}, headers=headers).status_code == 200
    # The UI across origins sends its origin only: the record names the namespace.
    assert client.post("/codec/decode", json={"payloads": sealed}, headers=headers | {"Referer": UI + "/"}).status_code == 200
    first, second = _decode_records(settings)[before:]
    assert (first.actor, first.subject) == ("admin:ops", "workflow:case:YC-1:ab12")
    assert first.data == {"payloads": 2, "decrypted": 1, "key_ids": [sealed_key_id(sealed)], "namespace": "default",
                          "workflow_id": "case:YC-1:ab12"}  # fmt: skip
    assert second.subject == "namespace:default" and second.data["workflow_id"] is None
    for value in PERSONAL.values():
        assert value not in json.dumps(first.data, ensure_ascii=False) + first.subject
    # Refused and failed decodes hand out no plaintext, and are no reads.
    department = mint(settings.jwt_key(), role="department", subject="YC-JXJ")
    assert client.post("/codec/decode", json={"payloads": sealed},
                       headers={"Authorization": f"Bearer {department}"}).status_code in (401, 403)  # fmt: skip
    tampered = [dict(sealed[0], data=base64.b64encode(base64.b64decode(sealed[0]["data"])[:-1] + b"x").decode())]
    assert client.post("/codec/decode", json={"payloads": tampered}, headers=headers).status_code == 422
    assert len(_decode_records(settings)) == before + 2
    # No record, no answer: when the audit record cannot be written, the plaintext does not leave.
    from db.repositories import audit

    def broken(**_: object) -> None:
        raise RuntimeError("audit chain unavailable")

    monkeypatch.setattr(audit, "append", broken)
    failing = TestClient(create_app(settings), raise_server_exceptions=False)
    answer = failing.post("/codec/decode", json={"payloads": sealed}, headers=headers)
    assert answer.status_code == 500 and PERSONAL["uscc"] not in answer.text


def sealed_key_id(sealed: list[dict]) -> str:
    return base64.b64decode(sealed[0]["metadata"]["encryption-key-id"]).decode()


async def test_sm4_gcm_under_gm_and_either_cipher_reads_the_other(tmp_path) -> None:
    standard = Settings(data_dir=tmp_path, keys_dir=tmp_path / "keys")
    gm = standard.model_copy(update={"crypto": "gm"})
    plain = data_converter(gm).payload_converter.to_payloads([PERSONAL])
    sm4 = await data_converter(gm).payload_codec.encode(plain)
    assert sm4[0].metadata["encryption-cipher"] == b"SM4-GCM" and PERSONAL["uscc"].encode() not in sm4[0].data
    aes = await data_converter(standard).payload_codec.encode(plain)
    assert aes[0].metadata["encryption-cipher"] == b"AES-256-GCM"
    assert await data_converter(standard).payload_codec.decode(sm4) == list(plain)
    assert await data_converter(gm).payload_codec.decode(aes) == list(plain)
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in (tmp_path / "keys").rglob("*") if p.is_file())


def test_zhida_run_keeps_data_files_to_its_user(tmp_path) -> None:
    import os

    from cli.embedded import protect_data_dir

    (tmp_path / "keys").mkdir()
    for name in ("zhida.db", "temporal.db", "keys/fernet.key"):
        (tmp_path / name).write_text("x")
        os.chmod(tmp_path / name, 0o644)  # what an older run left
    previous = os.umask(0o022)
    try:
        protect_data_dir(tmp_path)
        (tmp_path / "treasury.db").write_text("new")  # created afterwards (the children inherit the umask)
    finally:
        os.umask(previous)
    assert tmp_path.stat().st_mode & 0o777 == 0o700 and (tmp_path / "keys").stat().st_mode & 0o777 == 0o700
    for name in ("zhida.db", "temporal.db", "keys/fernet.key", "treasury.db"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
