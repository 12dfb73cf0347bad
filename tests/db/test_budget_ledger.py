"""The budget ledger never overspends, even under concurrent reservations, on both databases."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.migrate import upgrade
from db.models import BudgetLine, Case, Enterprise
from db.repositories import budget, fund_items
from db.session import transaction


def _item_with_cases(session: Session, n_cases: int, total_fen: int) -> tuple[int, list[int]]:
    dept = fund_items.add_department(session=session, code=f"D{n_cases}{total_fen}", name="经信局", region_code="420500")
    policy = fund_items.add_policy(
        session=session, doc_number=f"宜经信发〔2026〕{n_cases}{total_fen}号", title="测试政策", level="city",
        department_id=dept.id, published_on=date(2026, 1, 5),
    )
    item = fund_items.add_listed(
        session=session, code=f"T-{n_cases}-{total_fen}", policy_id=policy.id, department_id=dept.id,
        name="测试事项", mode="instant", config={},
    )
    budget.add_line(session=session, fund_item_id=item.id, source="市级财政", budget_year=2026, total_fen=total_fen)
    case_ids = []
    for i in range(n_cases):
        ent = Enterprise(uscc=f"91420500{total_fen % 997:03d}{i:07d}", name=f"企业{i}", region_code="420502", tags=[])
        session.add(ent)
        session.flush()
        case = Case(fund_item_id=item.id, fund_item_version=1, enterprise_id=ent.id, mode="instant",
                    status="approved", workflow_id=f"case:T-{total_fen}:{i}", paid_fen=0)
        session.add(case)
        session.flush()
        case_ids.append(case.id)
    return item.id, case_ids


def test_reserve_commit_release_and_exhaustion(session: Session) -> None:
    item_id, (a, b, c) = _item_with_cases(session, 3, 250)
    budget.reserve(session=session, fund_item_id=item_id, case_id=a, amount_fen=100)
    budget.reserve(session=session, fund_item_id=item_id, case_id=a, amount_fen=100)  # retry: no second reservation
    budget.reserve(session=session, fund_item_id=item_id, case_id=b, amount_fen=150)
    with pytest.raises(budget.BudgetExhausted):
        budget.reserve(session=session, fund_item_id=item_id, case_id=c, amount_fen=1)
    budget.commit(session=session, case_id=a)
    budget.commit(session=session, case_id=a)  # idempotent
    budget.release(session=session, case_id=b)
    with pytest.raises(ValueError):
        budget.commit(session=session, case_id=b)  # released reservations cannot be paid
    assert budget.totals(session=session, fund_item_id=item_id) == {
        "total_fen": 250, "reserved_fen": 0, "committed_fen": 100, "available_fen": 150,
    }
    budget.reserve(session=session, fund_item_id=item_id, case_id=c, amount_fen=150)  # exactly the rest
    assert budget.totals(session=session, fund_item_id=item_id)["available_fen"] == 0


def test_database_check_refuses_overspending(session: Session) -> None:
    item_id, _ = _item_with_cases(session, 0, 100)
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(update(BudgetLine).where(BudgetLine.fund_item_id == item_id).values(reserved_fen=101))


def test_parallel_reservations_never_exceed_the_budget(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    with transaction(empty_db_url) as session:
        item_id, case_ids = _item_with_cases(session, 24, 1000)

    def reserve(case_id: int) -> bool:
        try:
            with transaction(empty_db_url) as s:
                budget.reserve(session=s, fund_item_id=item_id, case_id=case_id, amount_fen=100)
            return True
        except budget.BudgetExhausted:
            return False

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(reserve, case_ids))
    assert sum(results) == 10
    with transaction(empty_db_url) as session:
        assert budget.totals(session=session, fund_item_id=item_id)["reserved_fen"] == 1000
