"""Every figure of the finance cockpit on a known dataset (tests/db/cockpit_dataset.py), worked out by hand.

Finance of 宜昌 sees items A and B (cases c1–c8), never 武汉's item W (c9). Amounts in fen:
  c1 A 西陵 paid 10,000,000 (市级; 9-01 → 9-03: 2 working days)   c2 A 伍家岗 paid 5,000,000 (区级; 9-01 → 9-08: 5)
  c3 A 夷陵 paid 3,000,000 (市级; 9-28 → 10-09 over National Day: 4) c4 A 西陵 returned, awaiting correction 2,000,000
  c5 A 江岸 reviewing, no amount, an overdue stage of 经信局          c6 B 西陵 paid 800,000 (9-11 Fri → 9-14 Mon: 1)
  c7 B 伍家岗 finance review 1,200,000 reserved, a timed-out stage of 科技局   c8 B 夷陵 paid 500,000 (10-30 → 11-01: 0),
  paid at 07:00 Beijing on 1 November (31 October in UTC).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from db.session import engine_for, transaction
from schemas.principal import Principal
from schemas.vocabulary import CaseStatus, Role
from services import cockpit
from services import scope as scopes
from services.errors import Forbidden, Invalid
from services.scope import Scope
from tests.db import cockpit_dataset
from tests.db.cockpit_dataset import NOW, Dataset


@dataclass
class Ctx:
    url: str
    data: Dataset


@pytest.fixture(scope="module")
def ctx(module_db_url: str) -> Iterator[Ctx]:
    with transaction(module_db_url) as s:
        data = cockpit_dataset.build(s)
    yield Ctx(module_db_url, data)
    engine_for(module_db_url).dispose()


@pytest.fixture
def s(ctx: Ctx) -> Iterator[Session]:
    with transaction(ctx.url) as session:
        yield session
        session.rollback()


def finance(s: Session, code: str) -> Scope:
    return scopes.resolve(session=s, principal=Principal(role=Role.FINANCE, subject=code))


def figures(s: Session, scope: Scope, by: str, **filters) -> dict:
    rows = cockpit.breakdown(session=s, scope=scope, filters=cockpit.make_filter(**filters), by=by, now=NOW)
    return {r.name: (r.cases, r.amount_fen, r.paid_fen) for r in rows}


def ids(s: Session, scope: Scope, ctx: Ctx, **filters) -> set[str]:
    page = cockpit.cases(session=s, scope=scope, filters=cockpit.make_filter(**filters), size=200, now=NOW)
    by_id = {v: k for k, v in ctx.data.ids.items() if k.startswith("c")}
    assert page.total == len(page.rows)
    return {by_id[r.id] for r in page.rows}


def test_breakdowns_by_item_department_region_source_and_status(s: Session, ctx: Ctx) -> None:
    yc = finance(s, ctx.data.finance_yc)
    assert figures(s, yc, "fund_item") == {
        "工业企业技术改造奖补": (5, 20_000_000, 18_000_000),
        "科技创新平台奖励": (3, 2_500_000, 1_300_000),
    }
    assert figures(s, yc, "department") == {
        "宜昌市经济和信息化局": (5, 20_000_000, 18_000_000),
        "宜昌市科学技术局": (3, 2_500_000, 1_300_000),
    }
    assert figures(s, yc, "region") == {
        "西陵区": (3, 12_800_000, 10_800_000),
        "伍家岗区": (2, 6_200_000, 5_000_000),
        "夷陵区": (2, 3_500_000, 3_500_000),
        "江岸区": (1, 0, 0),  # a 武汉 enterprise on a 宜昌 item is 宜昌's to track
    }
    assert figures(s, yc, "source") == {
        "市级财政": (6, 17_500_000, 14_300_000),
        "区级财政": (1, 5_000_000, 5_000_000),
        "未预留额度": (1, 0, 0),
    }
    assert figures(s, yc, "status") == {
        CaseStatus.PAID.label: (5, 19_300_000, 19_300_000),
        CaseStatus.AWAITING_CORRECTION.label: (1, 2_000_000, 0),
        CaseStatus.FINANCE_REVIEW.label: (1, 1_200_000, 0),
        CaseStatus.REVIEWING.label: (1, 0, 0),
    }
    # 武汉 sees only its own item; neither sees the other's.
    wh = finance(s, ctx.data.finance_wh)
    assert figures(s, wh, "fund_item") == {"武汉市中小企业奖补": (1, 100_000, 100_000)}


def test_filters_narrow_every_breakdown(s: Session, ctx: Ctx) -> None:
    yc = finance(s, ctx.data.finance_yc)
    b = ctx.data.ids["dept_b"]
    assert figures(s, yc, "fund_item", department_id=b) == {"科技创新平台奖励": (3, 2_500_000, 1_300_000)}
    assert figures(s, yc, "fund_item", region="420502") == {
        "工业企业技术改造奖补": (2, 12_000_000, 10_000_000),
        "科技创新平台奖励": (1, 800_000, 800_000),
    }
    assert figures(s, yc, "region", department_id=b, region="420500") == {
        "西陵区": (1, 800_000, 800_000),
        "伍家岗区": (1, 1_200_000, 0),
        "夷陵区": (1, 500_000, 500_000),
    }
    assert figures(s, yc, "status", source="区级财政") == {CaseStatus.PAID.label: (1, 5_000_000, 5_000_000)}


def test_budget_execution_per_line(s: Session, ctx: Ctx) -> None:
    yc = finance(s, ctx.data.finance_yc)
    rows = cockpit.budget(session=s, scope=yc, filters=cockpit.make_filter(), now=NOW)
    got = {
        (r.fund_item_name, r.line.source): (
            r.line.total_fen, r.line.reserved_fen, r.line.committed_fen, r.line.paid_fen, r.line.returned_fen,
            r.available_fen, r.rate_bp, r.line.cases,
        )
        for r in rows
    }  # fmt: skip
    assert got == {
        ("工业企业技术改造奖补", "市级财政"): (15_000_000, 0, 15_000_000, 13_000_000, 2_000_000, 0, 8666, 3),
        ("工业企业技术改造奖补", "区级财政"): (50_000_000, 0, 5_000_000, 5_000_000, 0, 45_000_000, 1000, 1),
        ("科技创新平台奖励", "市级财政"): (20_000_000, 1_200_000, 1_300_000, 1_300_000, 0, 17_500_000, 650, 3),
    }
    lines = ctx.data.lines
    assert ids(s, yc, ctx, budget_line_id=lines["A:市级财政"]) == {"c1", "c3", "c4"}
    assert ids(s, yc, ctx, budget_line_id=lines["W:市级财政"]) == set()  # 武汉's line: out of scope


def test_totals_and_rate(s: Session, ctx: Ctx) -> None:
    yc = finance(s, ctx.data.finance_yc)
    view = cockpit.cockpit(session=s, scope=yc, filters=cockpit.make_filter(), treasury_division="420500", now=NOW)
    assert view.totals == {
        "cases": 8,
        "amount_fen": 22_500_000,
        "paid_fen": 19_300_000,
        "paid_cases": 5,
        "budget_total_fen": 85_000_000,
        "budget_paid_fen": 19_300_000,
        "rate_bp": 2270,  # 19,300,000 ÷ 85,000,000 = 22.705…%, rounded down to 22.70%
        "external_count": 0,
        "external_fen": 0,
    }
    assert view.region_name == "宜昌市"


def test_paid_by_month_in_beijing_time(s: Session, ctx: Ctx) -> None:
    yc = finance(s, ctx.data.finance_yc)
    rows = cockpit.months(session=s, scope=yc, filters=cockpit.make_filter(), now=NOW)
    assert [(m, n, fen) for m, n, fen, _ in rows] == [
        ("2026-09", 3, 15_800_000),  # c1, c2, c6 (c4's payment came back: not paid)
        ("2026-10", 1, 3_000_000),
        ("2026-11", 1, 500_000),  # 31 October in UTC
    ]
    assert ids(s, yc, ctx, paid_month="2026-11") == {"c8"}
    assert ids(s, yc, ctx, paid_month="2026-09") == {"c1", "c2", "c6"}


def test_timeliness_median_and_p90_in_working_days(s: Session, ctx: Ctx) -> None:
    yc = finance(s, ctx.data.finance_yc)
    rows = cockpit.timeliness(session=s, scope=yc, filters=cockpit.make_filter(), now=NOW)
    got = {r.fund_item_name: (r.cases, r.median_days, r.p90_days) for r in rows}
    # A: [2, 5, 4] → median 4, p90 (nearest rank 3 of 3) 5; B: [1, 0] → median 0.5, p90 (rank 2 of 2) 1.
    assert got == {"工业企业技术改造奖补": (3, 4.0, 5), "科技创新平台奖励": (2, 0.5, 1)}


def test_overdue_stages_by_department(s: Session, ctx: Ctx) -> None:
    yc = finance(s, ctx.data.finance_yc)
    rows = cockpit.overdue(session=s, scope=yc, filters=cockpit.make_filter(), now=NOW)
    assert {r.department_name: (r.stages, r.cases) for r in rows} == {
        "宜昌市经济和信息化局": (2, 2),  # c5 open past due, c1 timed out (c5's done stage and c7's joint stage are not)
        "宜昌市科学技术局": (1, 1),
    }
    assert ids(s, yc, ctx, overdue_department=ctx.data.dept_a) == {"c1", "c5"}


def test_returns_waiting_for_correction(s: Session, ctx: Ctx) -> None:
    yc = finance(s, ctx.data.finance_yc)
    rows = cockpit.returns(session=s, scope=yc, filters=cockpit.make_filter(), now=NOW)
    assert [(r.id, r.return_reason, r.voucher_amount_fen) for r in rows] == [
        (ctx.data.ids["c4"], "收款人户名与账号不符", 2_000_000)
    ]
    assert cockpit.returns(session=s, scope=finance(s, ctx.data.finance_wh), filters=cockpit.make_filter()) == []


def test_drill_down_lists_page_and_stay_in_scope(s: Session, ctx: Ctx) -> None:
    yc = finance(s, ctx.data.finance_yc)
    assert ids(s, yc, ctx) == {f"c{i}" for i in range(1, 9)}
    assert ids(s, yc, ctx, region="420502") == {"c1", "c4", "c6"}
    assert ids(s, yc, ctx, status="paid", department_id=ctx.data.ids["dept_a"]) == {"c1", "c2", "c3"}
    first = cockpit.cases(session=s, scope=yc, filters=cockpit.make_filter(), page=1, size=20)
    assert first.total == 8 and first.pages == 1
    admin = scopes.resolve(session=s, principal=Principal(role=Role.ADMIN, subject="ops"))
    assert {"c9"} <= ids(s, admin, ctx)
    assert ids(s, finance(s, ctx.data.finance_wh), ctx) == {"c9"}


def test_refusals(s: Session, ctx: Ctx) -> None:
    department = scopes.resolve(session=s, principal=Principal(role=Role.DEPARTMENT, subject=ctx.data.dept_a))
    with pytest.raises(Forbidden):
        cockpit.breakdown(session=s, scope=department, filters=cockpit.make_filter(), by="status")
    for bad in ({"region": "4205"}, {"status": "nope"}, {"paid_month": "2026-13"}):
        with pytest.raises(Invalid) as caught:
            cockpit.make_filter(**bad)
        assert caught.value.field == next(iter(bad))
    with pytest.raises(Invalid):
        cockpit.cases(session=s, scope=finance(s, ctx.data.finance_yc), filters=cockpit.make_filter(), size=7)


def test_decisions_waiting_for_finance(s: Session, ctx: Ctx) -> None:
    """The finance stage of a review case and a cross-year return's budget decision are listed for the page."""
    from datetime import date

    from db.repositories import payments, reviews
    from schemas.vocabulary import ReturnHandling, ReturnKind

    yc, wh = finance(s, ctx.data.finance_yc), finance(s, ctx.data.finance_wh)
    c7, c4 = ctx.data.ids["c7"], ctx.data.ids["c4"]
    reviews.open_tasks(session=s, case_id=c7, stage_key="finance", stage_name="财政审核", round_=1,
                       departments=[ctx.data.finance_yc], due_at=cockpit_dataset.bj(2026, 9, 25, 17),
                       provisional=False)  # fmt: skip
    voucher = payments.voucher_no(case_id=c4, attempt=1)
    reviews.record_return(session=s, voucher_no=voucher, case_id=c4, attempt=1, kind=ReturnKind.ACTIVE,
                          reason="企业跨年度主动退回", amount_fen=2_000_000, returned_on=date(2027, 1, 6),
                          budget_year=2026, handling=ReturnHandling.BACK_TO_FINANCE)  # fmt: skip
    s.flush()
    empty = cockpit.make_filter()
    stages = cockpit.finance_stages(session=s, scope=yc, filters=empty, now=NOW)
    assert [(p.case_id, p.stage_key, p.amount_fen) for p in stages] == [(c7, "finance", 1_200_000)]
    due = cockpit.budget_decisions_due(session=s, scope=yc, filters=empty, now=NOW)
    assert [(p.case_id, p.amount_fen, p.reason) for p in due] == [(c4, 2_000_000, "企业跨年度主动退回")]
    assert cockpit.finance_stages(session=s, scope=wh, filters=empty) == []
    assert cockpit.budget_decisions_due(session=s, scope=wh, filters=empty) == []


def test_real_name_ledger_per_recipient_item_source_and_month(s: Session, ctx: Ctx) -> None:
    yc = finance(s, ctx.data.finance_yc)
    rows = cockpit.ledger(session=s, scope=yc, filters=cockpit.make_filter(), now=NOW)
    assert {(item, source, month, n, fen) for _, _, item, source, month, n, fen in rows} == {
        ("工业企业技术改造奖补", "市级财政", "2026-09", 1, 10_000_000),  # c1 (c4's payment came back)
        ("工业企业技术改造奖补", "区级财政", "2026-09", 1, 5_000_000),  # c2
        ("科技创新平台奖励", "市级财政", "2026-09", 1, 800_000),  # c6
        ("工业企业技术改造奖补", "市级财政", "2026-10", 1, 3_000_000),  # c3
        ("科技创新平台奖励", "市级财政", "2026-11", 1, 500_000),  # c8
    }
    assert [r[4] for r in rows] == sorted(r[4] for r in rows) and len(rows) == 5
    one_month = cockpit.ledger(session=s, scope=yc, filters=cockpit.make_filter(paid_month="2026-11"), now=NOW)
    assert [(r[2], r[6]) for r in one_month] == [("科技创新平台奖励", 500_000)]
    assert sum(r[6] for r in rows) == 19_300_000


def test_drill_down_keys_narrow_the_figures_that_join_the_same_tables(s: Session, ctx: Ctx) -> None:
    """The month filter on the paid-by-month figure, the overdue filter on the overdue figure."""
    yc = finance(s, ctx.data.finance_yc)
    months = cockpit.months(session=s, scope=yc, filters=cockpit.make_filter(paid_month="2026-10"), now=NOW)
    assert [(m, n, fen) for m, n, fen, _ in months] == [("2026-10", 1, 3_000_000)]
    only_a = cockpit.make_filter(overdue_department=ctx.data.dept_a)
    overdue = cockpit.overdue(session=s, scope=yc, filters=only_a, now=NOW)
    # The cases with an overdue stage of 经信局 (c1, c5) hold no overdue stage of 科技局.
    assert {r.department_name: (r.stages, r.cases) for r in overdue} == {"宜昌市经济和信息化局": (2, 2)}
