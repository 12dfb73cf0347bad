"""Policy performance (Yichang rules art. 39) on the known dataset (tests/db/cockpit_dataset.py), worked out by hand,
with what the dataset lacks added in the test's own transaction (rolled back): three rejected cases, SMS notices and
the listing push of item A.

  item A (instant, 经信局): cases c1 c2 c3 paid (10,000,000 + 5,000,000 + 3,000,000), c4 awaiting correction,
    c5 reviewing, + r1 rejected (材料不全) → applied 6, approved 4, paid 3, rejected 1; the listing push matched 9;
    budget 65,000,000 → 27.69%; working days 2, 5, 4 → median 4; overdue: c5's review and c1's timed-out
    completeness → 2; notices: 3 delivered, 1 failed, 1 sent awaiting its receipt, 1 queued → 3 / 5 = 60.00%.
  item B (review, 科技局): c6 c8 paid (800,000 + 500,000), c7 finance review, + r2 r3 rejected (不符合申报条件) →
    applied 5, approved 3, paid 2, rejected 2; no listing push → matched = applied = 5; budget 20,000,000 → 6.50%;
    working days 1 and 0 → median 0.5; overdue: c7's timed-out review → 1; no notices → no rate.
  武汉's item W is never in 宜昌's figures.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from db.models import Case, Notice, PolicyPush
from db.repositories import cases as case_repo
from db.session import engine_for, transaction
from schemas.principal import Principal
from schemas.vocabulary import CaseStatus, NoticeStatus, PushKind, Role
from services import cockpit, cockpit_performance
from services import scope as scopes
from services.errors import Forbidden
from tests.db import cockpit_dataset
from tests.db.cockpit_dataset import NOW, Dataset
from tests.factories import new_enterprise


@pytest.fixture(scope="module")
def data(module_db_url: str) -> Iterator[Dataset]:
    with transaction(module_db_url) as s:
        built = cockpit_dataset.build(s)
    yield built
    engine_for(module_db_url).dispose()


@pytest.fixture
def s(module_db_url: str, data: Dataset) -> Iterator[Session]:
    with transaction(module_db_url) as session:
        _extra(session, data)
        yield session
        session.rollback()


def _extra(s: Session, data: Dataset) -> None:
    for key, item, reason in (("r1", "item_A", "材料不全"), ("r2", "item_B", "不符合申报条件"),
                              ("r3", "item_B", "不符合申报条件")):  # fmt: skip
        ent = new_enterprise(s, region_code="420502")
        row, _ = case_repo.get_or_create(session=s, fund_item_id=data.ids[item], fund_item_version=1,
                                         enterprise_id=ent.id, mode="instant", workflow_id=f"perf:{data.tag}:{key}")  # fmt: skip
        row.status, row.outcome_reason = CaseStatus.REJECTED, reason
    c1 = s.get(Case, data.ids["c1"])
    assert c1 is not None
    statuses = [NoticeStatus.DELIVERED] * 3 + [NoticeStatus.FAILED, NoticeStatus.SENT, NoticeStatus.QUEUED]
    for n, status in enumerate(statuses):
        s.add(Notice(dedupe_key=f"perf:{data.tag}:{n}", enterprise_id=c1.enterprise_id, case_id=c1.id,
                     template_key="paid", params={}, content="您的资金已拨付", status=status))  # fmt: skip
    s.add(PolicyPush(key=f"listed:perf:{data.tag}", kind=PushKind.LISTED, fund_item_id=data.ids["item_A"], matched=9))
    s.flush()


def _view(s: Session, data: Dataset, **filters) -> cockpit_performance.PolicyPerformance:
    scope = scopes.resolve(session=s, principal=Principal(role=Role.FINANCE, subject=data.finance_yc))
    return cockpit_performance.performance(session=s, scope=scope, filters=cockpit.make_filter(**filters), now=NOW)


def _figures(r: cockpit_performance.Performance) -> tuple:
    return (r.matched, r.applied, r.approved, r.paid, r.rejected, r.paid_fen, r.budget_fen, r.rate_bp, r.median_days,
            r.overdue, r.notices_sent, r.notices_delivered, r.delivery_bp)  # fmt: skip


A = (9, 6, 4, 3, 1, 18_000_000, 65_000_000, 2769, 4.0, 2, 5, 3, 6000)
B = (5, 5, 3, 2, 2, 1_300_000, 20_000_000, 650, 0.5, 1, 0, 0, None)


def test_per_fund_item_matched_applied_approved_paid_budget_days_overdue_and_delivery(
    s: Session, data: Dataset
) -> None:
    view = _view(s, data)
    items = {r.name: r for r in view.items}
    assert set(items) == {"工业企业技术改造奖补", "科技创新平台奖励"}  # never 武汉's item
    assert _figures(items["工业企业技术改造奖补"]) == A
    assert _figures(items["科技创新平台奖励"]) == B
    assert items["工业企业技术改造奖补"].top_reason == "材料不全"
    assert items["科技创新平台奖励"].department_name == "宜昌市科学技术局"


def test_per_department_and_in_total(s: Session, data: Dataset) -> None:
    view = _view(s, data)
    departments = {r.name: r for r in view.departments}
    assert _figures(departments["宜昌市经济和信息化局"]) == A
    assert _figures(departments["宜昌市科学技术局"]) == B
    t = view.totals
    # Medians do not add: the total's is the median of all five paid cases' days (0, 1, 2, 4, 5).
    assert (t.matched, t.applied, t.approved, t.paid, t.rejected, t.paid_fen, t.budget_fen, t.median_days) == (
        14, 11, 7, 5, 3, 19_300_000, 85_000_000, 2.0)  # fmt: skip
    assert t.rate_bp == 2270 and t.share_bp(t.paid) == 3571  # 5 of 14 matched enterprises paid


def test_rejection_reasons_ranked_with_their_drill_down(s: Session, data: Dataset) -> None:
    view = _view(s, data)
    assert [(r.reason, r.fund_item_name, r.cases) for r in view.reasons] == [
        ("不符合申报条件", "科技创新平台奖励", 2),
        ("材料不全", "工业企业技术改造奖补", 1),
    ]
    assert cockpit_performance.reason_totals(view) == [("不符合申报条件", 2), ("材料不全", 1)]
    scope = scopes.resolve(session=s, principal=Principal(role=Role.FINANCE, subject=data.finance_yc))
    drill = dict(pair.split("=") for pair in view.reasons[0].drill.split("&"))
    listed = cockpit.cases(session=s, scope=scope, filters=cockpit.make_filter(
        fund_item_id=int(drill["fund_item_id"]), status=drill["status"]), now=NOW)  # fmt: skip
    assert listed.total == 2 and {r.status for r in listed.rows} == {CaseStatus.REJECTED}


def test_the_filters_narrow_to_a_department_and_others_are_refused(s: Session, data: Dataset) -> None:
    view = _view(s, data, department_id=data.ids["dept_b"])
    assert [r.name for r in view.items] == ["科技创新平台奖励"] and _figures(view.totals)[:5] == B[:5]
    department = scopes.resolve(session=s, principal=Principal(role=Role.DEPARTMENT, subject=data.dept_a))
    with pytest.raises(Forbidden):
        cockpit_performance.performance(session=s, scope=department, filters=cockpit.make_filter())
