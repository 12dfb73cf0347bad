"""Key ids and rotation of personal data at rest: every value names its key; `zhida keys rotate` makes a new key
current, re-encrypts in batches with a progress bar, survives being killed halfway (a rerun resumes with the same
key and redoes nothing), keeps old keys readable throughout, and leaves a value under a missing key untouched.
On SQLite and PostgreSQL (a fresh database each, so one test walks the whole story)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from typer.testing import CliRunner

from db import crypto
from db.models import AuditRecord, Base, Enterprise
from db.session import engine_for, transaction
from schemas.vocabulary import AuditKind
from services import keys
from settings import Settings
from tests.factories import new_enterprise

N = 25


@pytest.fixture
def settings(empty_db_url: str, tmp_path) -> Iterator[Settings]:
    Base.metadata.create_all(engine_for(empty_db_url))  # the tables are all it needs (migrating takes seconds)
    settings = Settings(data_dir=tmp_path, keys_dir=tmp_path / "keys", database_url=empty_db_url)
    yield settings
    engine_for(empty_db_url).dispose()


def _plain(n: int) -> tuple[str, str]:
    return f"1390000{n:04d}", f"6222020200{n:08d}"


def _seed(settings: Settings) -> None:
    key = settings.fernet_key()
    with transaction(settings.db_url) as s:
        for n in range(N):
            phone, account = _plain(n)
            new_enterprise(s, contact_phone_enc=crypto.encrypt(key, phone),
                           bank_account_enc=crypto.encrypt(key, account) if n % 2 else None)  # fmt: skip
        # One value from before key ids (no prefix): the original key, k0.
        legacy = Fernet(settings.fernet_key().encode()).encrypt(b"13900009999").decode()
        new_enterprise(s, contact_phone_enc=legacy)


def _values(settings: Settings) -> list[tuple[str | None, str | None]]:
    with transaction(settings.db_url) as s:
        return list(s.execute(select(Enterprise.contact_phone_enc, Enterprise.bank_account_enc)
                              .order_by(Enterprise.id)).tuples())  # fmt: skip


def _decrypted(settings: Settings) -> list[tuple[str | None, str | None]]:
    key = settings.fernet_key()
    return [tuple(crypto.decrypt(key, v) if v else None for v in row) for row in _values(settings)]


def test_rotation_resumes_after_a_crash_and_keeps_everything_readable(settings: Settings) -> None:
    _seed(settings)
    before = _decrypted(settings)
    assert {crypto.key_id_of(p) for p, _ in _values(settings)} == {"k0"}

    class Killed(Exception):
        pass

    batches = []

    def kill_after_two(column: str, rows: int) -> None:
        batches.append((column, rows))
        if len(batches) == 2:
            raise Killed

    with pytest.raises(Killed):
        keys.rotate(settings=settings, actor="admin:cli（测试）", batch=5, on_batch=kill_after_two)
    # Half-way: k1 is current, some values under k1, the rest under k0, all readable.
    assert crypto.keyring(settings.fernet_key())[0] == "k1"
    ids = [crypto.key_id_of(p) for p, _ in _values(settings)]
    assert ids.count("k1") == 10 and ids.count("k0") == N + 1 - 10
    assert _decrypted(settings) == before
    # New writes use the new key at once.
    assert crypto.encrypt(settings.fernet_key(), "x").startswith("k1:")

    totals = []
    report = keys.rotate(settings=settings, actor="admin:cli（测试）", batch=5, on_total=totals.append)
    assert report.resumed and report.key_id == "k1" and report.ok
    assert totals == [N + 1 - 10 + N // 2]  # only what was left: nothing is redone
    assert {crypto.key_id_of(v) for row in _values(settings) for v in row if v} == {"k1"}
    assert _decrypted(settings) == before
    assert set(crypto.keyring(settings.fernet_key())[1]) == {"k0", "k1"}  # the old key stays readable
    with transaction(settings.db_url) as s:
        records = [(r.kind, r.data["phase"]) for r in s.scalars(select(AuditRecord).order_by(AuditRecord.seq))]
    # The killed run left its start (and never got to its finish); the resumed one both.
    assert records == [(AuditKind.KEY_ROTATION, "started"), (AuditKind.KEY_ROTATION, "started"),
                       (AuditKind.KEY_ROTATION, "finished")]  # fmt: skip

    # A second rotation through the command, with its progress bar: k2.
    from cli.main import app
    from settings import get_settings

    env = {"ZHIDA_DATABASE_URL": settings.db_url, "ZHIDA_DATA_DIR": str(settings.data_dir),
           "ZHIDA_KEYS_DIR": str(settings.keys_path)}  # fmt: skip
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["keys", "rotate", "--operator", "张三", "--batch", "7"], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0 and "当前密钥 k2" in result.output, result.output
    assert {crypto.key_id_of(v) for row in _values(settings) for v in row if v} == {"k2"}
    assert _decrypted(settings) == before
    assert (settings.keys_path / "fernet").stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in (settings.keys_path / "fernet").iterdir())

    # A value under a key the keyring lacks is reported and left untouched; the rotation stays unfinished.
    stranger = "k9:" + Fernet(Fernet.generate_key()).encrypt(b"13900000000").decode()
    with transaction(settings.db_url) as s:
        new_enterprise(s, contact_phone_enc=stranger)
    report = keys.rotate(settings=settings, actor="admin:cli（测试）", batch=100)
    assert not report.ok and len(report.unreadable) == 1 and report.key_id == "k3"
    assert stranger in [p for p, _ in _values(settings)]
    assert keys.start(settings=settings) == ("k3", True)  # a rerun resumes
