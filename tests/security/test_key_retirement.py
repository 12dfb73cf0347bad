"""Retiring a key of personal data at rest (`zhida keys retire KEY_ID`): refused while it is current, while a
rotation is unfinished and while any stored value still uses it (with the counts, in Chinese); once no value does
(after `zhida keys rotate`), its file leaves the keyring, no process loads it again (nor makes a new k0), everything
stays readable, `zhida keys status` shows it retired, and the audit chain records it — or, when the record cannot
be written, the key is not retired. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from typer.testing import CliRunner

from db import crypto
from db.models import AuditRecord, Base, Enterprise
from db.repositories import audit
from db.session import engine_for, transaction
from services import keys
from services.errors import Conflict, NotFound
from settings import Settings
from tests.factories import new_enterprise

ACTOR = "admin:cli（测试）"


@pytest.fixture
def settings(empty_db_url: str, tmp_path) -> Iterator[Settings]:
    Base.metadata.create_all(engine_for(empty_db_url))  # the tables are all it needs (migrating takes seconds)
    yield Settings(data_dir=tmp_path, keys_dir=tmp_path / "keys", database_url=empty_db_url)
    engine_for(empty_db_url).dispose()


def _phones(settings: Settings) -> list[str]:
    key = settings.fernet_key()
    with transaction(settings.db_url) as s:
        return [crypto.decrypt(key, v) for v in s.scalars(select(Enterprise.contact_phone_enc).order_by(Enterprise.id))]


def _retirements(settings: Settings) -> list[tuple[str, dict]]:
    with transaction(settings.db_url) as s:
        rows = s.scalars(select(AuditRecord).where(AuditRecord.kind == "key_retired").order_by(AuditRecord.seq))
        return [(r.subject, r.data) for r in rows]


def _cli(settings: Settings, *args: str):
    from cli.main import app
    from settings import get_settings

    env = {"ZHIDA_DATABASE_URL": settings.db_url, "ZHIDA_DATA_DIR": str(settings.data_dir),
           "ZHIDA_KEYS_DIR": str(settings.keys_path)}  # fmt: skip
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, ["keys", *args], env=env)
    finally:
        get_settings.cache_clear()


def test_a_key_is_retired_only_when_nothing_uses_it(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    key = settings.fernet_key()
    with transaction(settings.db_url) as s:
        for n in range(6):
            new_enterprise(s, contact_phone_enc=crypto.encrypt(key, f"1390000{n:04d}"))
        new_enterprise(s, contact_phone_enc=Fernet(key.encode()).encrypt(b"13900009999").decode())  # no key id: k0
    phones = _phones(settings)
    with pytest.raises(Conflict, match="k0 是当前密钥"):
        keys.retire(settings=settings, key_id="k0", actor=ACTOR)
    with pytest.raises(NotFound, match="没有密钥 k9"):
        keys.retire(settings=settings, key_id="k9", actor=ACTOR)
    keys.start(settings=settings)  # a rotation begun (k1 current) but not finished
    with pytest.raises(Conflict, match="尚未完成"):
        keys.retire(settings=settings, key_id="k0", actor=ACTOR)
    assert keys.rotate(settings=settings, actor=ACTOR).ok

    # A process not restarted since the rotation wrote one more value under k0: refused, with the count.
    with transaction(settings.db_url) as s:
        new_enterprise(s, contact_phone_enc=crypto.encrypt(key, "13900008888"))
    refused = _cli(settings, "retire", "k0", "--operator", "张三")
    assert refused.exit_code == 1 and "仍有 1 个值使用密钥 k0" in refused.output and "enterprise.contact_phone_enc" in (
        refused.output), refused.output  # fmt: skip
    assert "k0" in crypto.keyring(settings.fernet_key())[1] and _retirements(settings) == []
    assert keys.rotate(settings=settings, actor=ACTOR).ok  # k2 current, nothing under k0 or k1

    # The audit record cannot be written: the key is not retired either.
    real = audit.append

    def broken(**_: object) -> None:
        raise RuntimeError("audit chain unavailable")

    monkeypatch.setattr(audit, "append", broken)
    with pytest.raises(RuntimeError):
        keys.retire(settings=settings, key_id="k1", actor=ACTOR)
    monkeypatch.setattr(audit, "append", real)
    assert (settings.keys_path / "fernet" / "k1.key").exists() and settings.retired_fernet_keys() == set()

    done = _cli(settings, "retire", "k0", "--operator", "张三")
    assert done.exit_code == 0 and "密钥 k0 已停用" in done.output and "已写入审计记录" in done.output, done.output
    report = keys.retire(settings=settings, key_id="k1", actor=ACTOR)
    assert report.moved_to and report.checked and not any(report.checked.values())
    _, ring = crypto.keyring(settings.fernet_key())
    assert set(ring) == {"k2"}
    assert not (settings.keys_path / "fernet.key").exists()  # k0 is not made again either
    assert (settings.keys_path / "fernet" / "retired" / "k0.key").stat().st_mode & 0o777 == 0o600
    assert _phones(settings) == [*phones, "13900008888"]
    assert [subject for subject, _ in _retirements(settings)] == ["fernet:k0", "fernet:k1"]
    assert _retirements(settings)[0][1]["current"] == "k2"
    assert keys.retire(settings=settings, key_id="k0", actor=ACTOR).already
    assert settings.new_fernet_key() == "k3"  # a retired id is never handed out again
    status = _cli(settings, "status")
    assert status.exit_code == 0 and "已停用：k0, k1" in status.output and "k2（当前）：8 个值" in status.output, (
        status.output)  # fmt: skip
    with transaction(settings.db_url) as s:
        assert audit.verify_records(session=s) is None
