"""db/bulk.insert_rows: multi-row INSERTs on SQLite (executemany on PostgreSQL) store what the ORM would store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db import bulk
from db.models import Case, Notice
from tests.reconciliation.support import make_instruction


def test_many_rows_with_json_moments_nulls_and_duplicates_read_back_as_written(session: Session) -> None:
    case_id = make_instruction(session).case_id
    enterprise_id = session.get(Case, case_id).enterprise_id
    start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    n = bulk.SQLITE_ROWS * 2 + 7  # two full statements and a short one
    rows = [
        {
            "dedupe_key": f"bulk-test:{i}",
            "enterprise_id": enterprise_id,
            "case_id": case_id if i % 3 else None,
            "template_key": "paid",
            "params": {"i": i, "名称": "宜昌测试企业", "nested": [i, None]},
            "content": f"第{i}条",
            "phone_enc": None,
            "phone_masked": "139****0001",
            "status": "queued",
            "provider": "outbox",
            "created_at": start + timedelta(seconds=i % 5, microseconds=i),
            "attempts": 0,
            "receipt_polls": 0,
        }
        for i in range(n)
    ]
    rows[5]["params"] = bulk.Encoded('{"already":"encoded"}')
    del rows[7]["phone_masked"]  # a row without a column: NULL
    bulk.insert_rows(session, Notice.__table__, [*rows, rows[0] | {"content": "重复"}], ignore_duplicates=True)
    session.expire_all()
    stored = {
        n.dedupe_key: n for n in session.scalars(select(Notice).where(Notice.dedupe_key.startswith("bulk-test:")))
    }
    assert len(stored) == n
    for i in (0, 1, 5, 7, bulk.SQLITE_ROWS, n - 1):
        row, got = rows[i], stored[f"bulk-test:{i}"]
        assert got.params == ({"already": "encoded"} if i == 5 else row["params"])
        assert got.created_at == row["created_at"] and got.case_id == row["case_id"] and got.content == f"第{i}条"
        assert got.phone_masked == (None if i == 7 else "139****0001")
    count = session.scalar(select(func.count()).select_from(Notice).where(Notice.dedupe_key.startswith("bulk-test:")))
    assert count == n  # the duplicate key was skipped, the first row kept
