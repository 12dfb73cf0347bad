"""Engines and sessions; SQLite gets WAL and a busy timeout so several processes can share the file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for `url`; SQLite files get their folder created and concurrency pragmas set.

    `read_only` engines begin SQLite transactions DEFERRED: in WAL mode readers then never wait for the one writer.
    """
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Personal data lives here: readable by our user only (SQLite gives its -wal and -shm files the same mode).
            Path(path).touch(mode=0o600, exist_ok=True)
        # A pool as large as the threads that use it (API request threads, worker activity threads): with the default
        # 5 + 10 overflow, every connection beyond five was opened (four pragmas) and closed again per unit of work.
        engine = create_engine(url, connect_args={"timeout": 30}, pool_size=40, max_overflow=40)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # Reads through a memory map of the file (pages shared by every connection through the OS cache) and a
            # 32 MB page cache per connection: with the default 2 MB, a cockpit figure over a million cases spent
            # most of its time copying pages in with read().
            cur.execute("PRAGMA mmap_size=1073741824")
            cur.execute("PRAGMA cache_size=-32768")
            cur.close()
            # Writers take the lock at BEGIN, so read-then-write transactions never deadlock.
            dbapi_conn.isolation_level = None

        if read_only:

            @event.listens_for(engine, "begin")
            def _begin_deferred(conn) -> None:
                conn.exec_driver_sql("BEGIN")

            return engine

        # SQLite has one writer at a time and lets the others poll for the lock with growing sleeps (up to
        # 100 ms each): with a dozen worker threads writing, that polling made the tail latency of instant cases.
        # The writers of one process queue on this lock instead, so at most one connection per process polls.
        write_lock = threading.Lock()

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:
            if not write_lock.acquire(timeout=30):
                raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked (writers of this process)"))
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                write_lock.release()
                raise
            conn.info["holds_write_lock"] = True

        # SQLAlchemy fires these events BEFORE it commits or rolls back: releasing the lock there let the next writer
        # of this process BEGIN IMMEDIATE while the database was still locked, and SQLite's busy handler then slept
        # (1, 2, 5, … up to 100 ms per try) instead of queueing on the lock. So the listener ends the transaction
        # itself, then releases; SQLAlchemy's own commit or rollback afterwards finds none open and does nothing.
        @event.listens_for(engine, "commit")
        def _commit(conn) -> None:
            if conn.info.pop("holds_write_lock", False):
                try:
                    conn.connection.dbapi_connection.commit()
                finally:
                    write_lock.release()

        @event.listens_for(engine, "rollback")
        def _rollback(conn) -> None:
            if conn.info.pop("holds_write_lock", False):
                try:
                    conn.connection.dbapi_connection.rollback()
                finally:
                    write_lock.release()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache
def engine_for(url: str) -> Engine:
    return make_engine(url)


@lru_cache
def reader_for(url: str) -> Engine:
    """A second engine on the same database for read-only units of work (see `reading`)."""
    return make_engine(url, read_only=True) if url.startswith("sqlite") else engine_for(url)


@lru_cache
def session_factory(url: str) -> sessionmaker[Session]:
    """One factory per database: building a sessionmaker makes a new Session subclass (and its event dispatch), a
    cost every unit of work paid when it was built per call."""
    return sessionmaker(engine_for(url), expire_on_commit=False)


@contextmanager
def transaction(url: str) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on error (services never commit)."""
    with session_factory(url)() as session, session.begin():
        yield session


@contextmanager
def reading(url: str) -> Iterator[Session]:
    """A read-only unit of work: on SQLite it does not take the write lock, so polls and views never queue behind
    writers (or make writers queue behind them). Writing in it is a programming error; it is rolled back."""
    with Session(reader_for(url)) as session:
        yield session  # closing the session rolls its transaction back
