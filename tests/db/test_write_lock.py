"""SQLite writers of one process queue on the engine's write lock, which is released only once the transaction has
ended: the next writer's BEGIN IMMEDIATE never finds the database still locked (and never falls into SQLite's
sleeping busy handler)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import event, text

from db.session import make_engine

ONE_ENGINE = "the write lock and BEGIN IMMEDIATE are SQLite's (db/session.py)"


def _hammer(tmp_path: Path, *, rollback: bool) -> list[BaseException]:
    engine = make_engine(f"sqlite:///{tmp_path / 'lock.db'}")

    @event.listens_for(engine, "connect")
    def _no_waiting(dbapi_conn, _record) -> None:
        dbapi_conn.execute("PRAGMA busy_timeout=0")  # a locked database fails at once instead of sleeping

    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    errors: list[BaseException] = []

    def writer() -> None:
        for i in range(300):
            try:
                with engine.connect() as conn, conn.begin() as tx:
                    conn.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": i})
                    if rollback and i % 2:
                        tx.rollback()
            except BaseException as exc:  # collected for the assertion
                errors.append(exc)
                return

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM t")).scalar()
    engine.dispose()
    assert count == (4 * 150 if rollback else 4 * 300) or errors
    return errors


@pytest.mark.parametrize("rollback", [False, True], ids=["commit", "rollback"])
def test_the_next_writer_never_finds_the_database_locked(tmp_path: Path, rollback: bool) -> None:
    assert _hammer(tmp_path, rollback=rollback) == []
