"""The soak's drain waits for a case under review that is between two stages: only an open stage task with its
deadline means it waits on a department. (It counted every reviewing case as settled, so a short soak in CI once
ended its drain while two workflows were about to open their next stage, and its check then reported them as
"停在 reviewing，没有截止期限".)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from bench.soak import Plan, Soak
from db.models import CaseTask
from db.session import transaction
from schemas.vocabulary import CaseStatus, FundItemMode, TaskStatus
from settings import Settings
from tests.factories import new_enterprise, new_listed_item


def _reviewing_case(url: str) -> int:
    with transaction(url) as s:
        item = new_listed_item(s, mode=FundItemMode.REVIEW, name="技改奖补")
        ent = new_enterprise(s)
        s.flush()
        case_id = s.execute(
            text('INSERT INTO "case" (fund_item_id, fund_item_version, enterprise_id, mode, status, amount_fen, '
                 "paid_fen, workflow_id) VALUES (:i, 1, :e, 'review', :s, 100000, 0, :w) RETURNING id"),
            {"i": item.id, "e": ent.id, "s": CaseStatus.REVIEWING.value, "w": f"sd:{item.code}"},
        ).scalar_one()  # fmt: skip
        # The first stage is decided: its task is done, the next stage's task is not open yet.
        s.add(CaseTask(case_id=case_id, stage_key="first_review", stage_name="初审", department_code="YC-JXJ",
                       status=TaskStatus.DONE, due_at=datetime.now(UTC) + timedelta(days=7)))  # fmt: skip
    return case_id


def test_a_reviewing_case_between_two_stages_is_still_moving(module_db_url: str, tmp_path: Path) -> None:
    soak = Soak(Plan(cases=3), tmp_path)
    soak.settings = Settings(database_url=module_db_url, data_dir=tmp_path)
    before = soak._unsettled()
    case_id = _reviewing_case(module_db_url)
    assert soak._unsettled() == before + 1
    with transaction(module_db_url) as s:  # the next stage opens with its deadline: now it waits on a department
        s.add(CaseTask(case_id=case_id, stage_key="second_review", stage_name="复审", department_code="YC-CZJ",
                       status=TaskStatus.OPEN, due_at=datetime.now(UTC) + timedelta(days=7)))  # fmt: skip
    assert soak._unsettled() == before
