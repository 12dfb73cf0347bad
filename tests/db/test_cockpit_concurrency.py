"""Concurrent writers and the cockpit's summaries on PostgreSQL (migration 2026-12-01-1201_cockpit_speed.py).

The summary triggers used to add each write's share to the summary row itself, so a transaction held that row's
lock until it committed: a second payout of the same item, region and status waited for the first transaction to
end, and two transactions writing two keys in opposite orders deadlocked. Now each transaction appends its shares and
folds them at commit in key order. Two open transactions write the same keys in opposite orders with a lock timeout
of two seconds: under the old triggers the third write waited for the other transaction and failed; now none waits,
both commit, and the summaries equal a count of the cases. A reader inside a writing transaction sees its own
writes. (SQLite has one writer at a time: no two transactions can be open for writing together there.)
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from db.repositories import cockpit_summaries as summaries
from db.session import engine_for, transaction
from schemas.vocabulary import CaseStatus, FundItemMode
from tests.factories import new_enterprise, new_listed_item

REVIEWING, REJECTED, PAID = CaseStatus.REVIEWING.value, CaseStatus.REJECTED.value, CaseStatus.PAID.value


@pytest.fixture
def world(module_db_url: str) -> Iterator[tuple[str, int, list[int]]]:
    """(url, fund item, four enterprises of one district), committed: in this module's own database, since the
    session database is shared by tests that count items and enterprises (they met this item before)."""
    db_url = module_db_url
    with transaction(db_url) as s:
        item = new_listed_item(s, mode=FundItemMode.INSTANT, name="并发奖补", policy_title="并发政策")
        enterprises = [new_enterprise(s, region_code="420502").id for _ in range(4)]
        s.flush()
        item_id = item.id
    yield db_url, item_id, enterprises
    engine_for(db_url).dispose()


def _add_case(conn: Connection, item: int, enterprise: int, status: str) -> None:
    conn.execute(
        text(
            'INSERT INTO "case" (fund_item_id, fund_item_version, enterprise_id, mode, status, amount_fen, paid_fen, '
            "workflow_id) VALUES (:i, 1, :e, 'instant', :s, 100000, :p, :w)"
        ),
        {"i": item, "e": enterprise, "s": status, "p": 100000 if status == PAID else 0, "w": f"cc:{uuid.uuid4().hex}"},
    )


def _open(url: str) -> Connection:
    conn = engine_for(url).connect()
    conn.execute(text("SET lock_timeout = '2s'"))  # the old triggers' wait fails the test instead of hanging it
    conn.commit()  # a session setting: it outlives this transaction
    return conn


def _summary_equals_cases(url: str, item: int) -> dict[str, int]:
    with transaction(url) as s:
        counted = dict(s.execute(text('SELECT status, count(*) FROM "case" WHERE fund_item_id = :i GROUP BY status'),
                                 {"i": item}).all())  # fmt: skip
        kept = dict(s.execute(text("SELECT status, sum(cases) FROM cockpit_case_summary WHERE fund_item_id = :i "
                                   "GROUP BY status HAVING sum(cases) <> 0"), {"i": item}).all())  # fmt: skip
    assert {k: int(v) for k, v in kept.items()} == counted
    return counted


@pytest.mark.postgresql_only("two writing transactions at once need PostgreSQL (SQLite admits one writer)")
def test_opposite_orders_neither_wait_nor_deadlock(world: tuple[str, int, list[int]]) -> None:
    url, item, (e1, e2, e3, e4) = world
    a, b = _open(url), _open(url)
    try:
        _add_case(a, item, e1, REVIEWING)  # A: key (item, 420502, reviewing)
        _add_case(b, item, e2, REJECTED)  # B: key (item, 420502, rejected)
        _add_case(a, item, e3, REJECTED)  # A: B's key — the old triggers waited here for B to end
        _add_case(b, item, e4, REVIEWING)  # B: A's key — and here the old triggers deadlocked
        # Both commit at once: their folds take the rows in one order, so one may wait a moment for the other.
        errors: list[BaseException] = []

        def commit(conn: Connection) -> None:
            try:
                conn.commit()
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=commit, args=(c,)) for c in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
    finally:
        a.close(), b.close()
    assert _summary_equals_cases(url, item) == {REVIEWING: 2, REJECTED: 2}


@pytest.mark.postgresql_only("two writing transactions at once need PostgreSQL (SQLite admits one writer)")
def test_a_payout_does_not_wait_for_an_open_transaction_on_its_key(world: tuple[str, int, list[int]]) -> None:
    url, item, (e1, e2, _, _) = world
    a, b = _open(url), _open(url)
    try:
        _add_case(a, item, e1, PAID)  # open, not committed
        with b.begin():
            _add_case(b, item, e2, PAID)  # the same summary row: committed while A is still open
        assert _summary_equals_cases(url, item) == {PAID: 1}  # B's payout counted; A's not yet
        a.commit()
    finally:
        a.close(), b.close()
    assert _summary_equals_cases(url, item) == {PAID: 2}
    with transaction(url) as s:
        assert s.execute(text("SELECT count(*) FROM cockpit_delta_mark")).scalar() == 0  # nothing left to fold
        assert s.execute(text("SELECT count(*) FROM cockpit_case_summary_delta")).scalar() == 0


def test_a_reader_in_the_writing_transaction_sees_its_writes(world: tuple[str, int, list[int]]) -> None:
    url, item, (e1, _, _, _) = world
    with transaction(url) as s:
        _add_case(s.connection(), item, e1, REJECTED)
        assert summaries.usable(session=s, name=summaries.CASES)  # folds this transaction's shares first
        rows = summaries.case_buckets(session=s, by="status", items=text("true"), fund_item_id=item,
                                      department_id=None, region_prefix=None, status=None, source=None)  # fmt: skip
        assert [(k, n) for k, n, _, _ in rows] == [(REJECTED, 1)]
        _add_case(s.connection(), item, new_enterprise(s, region_code="420502").id, REJECTED)
    assert _summary_equals_cases(url, item) == {REJECTED: 2}  # the write after the read folded at commit
