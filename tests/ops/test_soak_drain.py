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


def test_a_case_whose_account_was_corrected_is_still_moving(module_db_url: str, tmp_path: Path) -> None:
    """Awaiting correction waits on the enterprise until it corrects; after that the workflow reserves and sends the
    next attempt while the case keeps the status (a short soak once ended its drain in that gap)."""
    from db.repositories import cases
    from schemas.vocabulary import EventKind, SystemActor

    soak = Soak(Plan(cases=3), tmp_path)
    soak.settings = Settings(database_url=module_db_url, data_dir=tmp_path)
    before = soak._unsettled()
    with transaction(module_db_url) as s:
        item = new_listed_item(s, mode=FundItemMode.NO_APPLICATION, name="稳岗奖补")
        ent = new_enterprise(s)
        s.flush()
        case, _ = cases.get_or_create(session=s, fund_item_id=item.id, fund_item_version=1, enterprise_id=ent.id,
                                      mode=FundItemMode.NO_APPLICATION, workflow_id=f"sd:{item.code}")  # fmt: skip
        cases.record(session=s, case=case, key="correction:1", kind=EventKind.CORRECTION_REQUESTED,
                     actor=SystemActor.TREASURY, to_status=CaseStatus.AWAITING_CORRECTION, reason="退票")  # fmt: skip
        case_id = case.id
    assert soak._unsettled() == before  # asked, not corrected: it waits on the enterprise
    with transaction(module_db_url) as s:
        case = cases.get(session=s, case_id=case_id)
        cases.record(session=s, case=case, key="account_corrected:1", kind=EventKind.ACCOUNT_CORRECTED,
                     actor=f"enterprise:{ent.uscc}", to_status=None, reason="已更正")  # fmt: skip
    assert soak._unsettled() == before + 1  # corrected: the next attempt is on its way
