"""Policy performance (政策执行绩效评估, Yichang rules art. 39), per fund item and per department: matched, applied,
approved and paid; paid against the budget; the median working days to pay; overdue stages; rejection reasons ranked;
the SMS notice delivery rate. Finance bureaus see the fund items of their region, administrators all.

What each figure counts (the page says the same):
- 匹配: 免申即享 items — every case (each was created by matching); application items — the enterprises the listing
  push matched (上架比对, art. 26), at least the cases themselves.
- 申报/确认: application items — every case; 免申即享 — the cases whose enterprise confirmed (or was paid on file),
  i.e. every case past matching and consent.
- 通过: cases approved at some point (审核通过 onward: reserved, publicity, finance review, paying, paid, returned).
- 拨付: paid cases and their fen; 执行率: paid ÷ the item's budget lines.
- 时效: the median of the working days from application or match to paid (the cockpit's timeliness figure).
- 送达率: delivered ÷ notices sent (delivered, failed, or sent and waiting for a receipt); queued ones are not counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from db.repositories import cockpit as cockpit_repo
from db.repositories import cockpit_performance as repo
from rules.stats import median_of_counts
from schemas.cockpit import CockpitFilter
from schemas.vocabulary import CaseStatus, FundItemMode, NoticeStatus
from services import cockpit
from services import scope as scopes
from services.scope import Scope

# 免申即享 cases not yet past matching and consent (or that ended there).
_NOT_CONFIRMED = frozenset({CaseStatus.MATCHED, CaseStatus.CONSENT_PENDING, CaseStatus.NO_ACCOUNT,
                            CaseStatus.DECLINED, CaseStatus.LAPSED})  # fmt: skip
# Cases that were approved at some point (the amount stands): 审核通过 and everything after it.
APPROVED = frozenset({CaseStatus.APPROVED, CaseStatus.RESERVED, CaseStatus.PUBLICITY, CaseStatus.OBJECTION,
                      CaseStatus.OBJECTED, CaseStatus.FINANCE_REVIEW, CaseStatus.PAYING,
                      CaseStatus.AWAITING_CORRECTION, CaseStatus.PAID, CaseStatus.PAYMENT_FAILED,
                      CaseStatus.REFUNDED})  # fmt: skip
_SENT = frozenset({NoticeStatus.SENT, NoticeStatus.DELIVERED, NoticeStatus.FAILED})


@dataclass
class Performance:
    """One fund item's (or one department's) figures."""

    key: int
    name: str
    department_name: str
    mode: str  # a FundItemMode value; '' for a department's row
    matched: int = 0
    applied: int = 0
    approved: int = 0
    paid: int = 0
    rejected: int = 0
    paid_fen: int = 0
    budget_fen: int = 0
    overdue: int = 0
    notices_sent: int = 0
    notices_delivered: int = 0
    days: list[tuple[int, int]] = field(default_factory=list)  # (working days, paid cases)
    reasons: Counter = field(default_factory=Counter)
    drill: str = ""

    @property
    def rate_bp(self) -> int:
        return cockpit.rate_bp(self.paid_fen, self.budget_fen)

    @property
    def delivery_bp(self) -> int | None:
        return cockpit.rate_bp(self.notices_delivered, self.notices_sent) if self.notices_sent else None

    @property
    def median_days(self) -> float | None:
        return median_of_counts(self.days)

    @property
    def top_reason(self) -> str:
        return self.reasons.most_common(1)[0][0] if self.reasons else ""

    def share_bp(self, part: int) -> int:
        return cockpit.rate_bp(part, self.matched)


@dataclass(frozen=True)
class Reason:
    reason: str
    cases: int
    fund_item_id: int
    fund_item_name: str
    drill: str


@dataclass
class PolicyPerformance:
    filters: CockpitFilter
    items: list[Performance]
    departments: list[Performance]
    reasons: list[Reason]
    totals: Performance


def _add(into: Performance, row: Performance) -> None:
    for name in ("matched", "applied", "approved", "paid", "rejected", "paid_fen", "budget_fen", "overdue",
                 "notices_sent", "notices_delivered"):  # fmt: skip
        setattr(into, name, getattr(into, name) + getattr(row, name))
    into.days.extend(row.days)
    into.reasons.update(row.reasons)


def performance(
    *, session: Session, scope: Scope, filters: CockpitFilter, now: datetime | None = None
) -> PolicyPerformance:
    """Policy performance of the fund items in scope, narrowed by the fund item and department filters."""
    cockpit.require_finance(scope)
    now = now or datetime.now(UTC)
    found = repo.items(session=session, item_scope=scopes.item_filter(scope), fund_item_id=filters.fund_item_id,
                       department_id=filters.department_id)  # fmt: skip
    ids = [i for i, *_ in found]
    departments = {d.id: d.name for d in cockpit_repo.departments(session=session, ids=[d for *_, d in found])}
    rows = {
        i: Performance(i, name, departments.get(dept, "—"), mode, drill=filters.query(fund_item_id=i))
        for i, name, mode, dept in found
    }
    for item_id, status, n, paid_fen in repo.status_counts(session=session, item_ids=ids):
        row = rows[item_id]
        no_application = row.mode == FundItemMode.NO_APPLICATION
        if no_application:
            row.matched += n
        if not no_application or status not in _NOT_CONFIRMED:
            row.applied += n
        if status in APPROVED:
            row.approved += n
        if status == CaseStatus.PAID:
            row.paid += n
        if status == CaseStatus.REJECTED:
            row.rejected += n
        row.paid_fen += paid_fen
    for item_id, matched in repo.matched_at_listing(session=session, item_ids=ids).items():
        row = rows[item_id]
        if row.mode != FundItemMode.NO_APPLICATION:
            row.matched = matched
    for row in rows.values():
        if row.mode != FundItemMode.NO_APPLICATION:
            row.matched = max(row.matched, row.applied)  # an enterprise that applied was eligible to be matched
    for item_id, total in repo.budgets(session=session, item_ids=ids).items():
        rows[item_id].budget_fen = total
    for item_id, n in repo.overdue_stages(session=session, item_ids=ids, now=now).items():
        rows[item_id].overdue = n
    for item_id, reason, n in repo.rejection_reasons(session=session, item_ids=ids):
        rows[item_id].reasons[(reason or "").strip() or "未注明原因"] += n
    for item_id, status, n in repo.notice_counts(session=session, item_ids=ids):
        if status in _SENT:
            rows[item_id].notices_sent += n
        if status == NoticeStatus.DELIVERED:
            rows[item_id].notices_delivered += n
    for t in cockpit.timeliness(session=session, scope=scope, filters=filters.with_(region=None, source=None,
                                                                                    status=None), now=now):  # fmt: skip
        if t.fund_item_id in rows:
            rows[t.fund_item_id].days = list(t.counts)
    by_department: dict[int, Performance] = {}
    for (item_id, _, _, dept), row in zip(found, rows.values(), strict=True):
        assert item_id == row.key
        name = departments.get(dept, "—")
        target = by_department.setdefault(
            dept, Performance(dept, name, name, "", drill=filters.query(department_id=dept))
        )
        _add(target, row)
    totals = Performance(0, "合计", "", "")
    for row in rows.values():
        _add(totals, row)
    reasons = sorted(
        (Reason(reason, n, row.key, row.name, filters.query(fund_item_id=row.key, status=CaseStatus.REJECTED))
         for row in rows.values() for reason, n in row.reasons.items()),
        key=lambda r: (-r.cases, r.reason, r.fund_item_id),
    )  # fmt: skip
    return PolicyPerformance(filters, list(rows.values()), list(by_department.values()), reasons, totals)


def reason_totals(view: PolicyPerformance) -> list[tuple[str, int]]:
    """Rejection reasons over every fund item shown, most frequent first."""
    counted: Counter = Counter()
    for r in view.reasons:
        counted[r.reason] += r.cases
    return sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))
