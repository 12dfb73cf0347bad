"""Budget indicators (指标) follow the payment ledger: every paid payment draws its 市区分担 parts, a same-year return
gives them back, and the balances equal what the payments paid, on both databases."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Case, Enterprise, PaymentInstruction
from db.repositories import budget, fund_items, indicators
from rules.indicators import split_by_shares
from schemas.fund_items import Budget
from schemas.vocabulary import CaseStatus, FundItemMode, PaymentStatus

BUDGET = Budget.model_validate(
    {
        "year": 2026,
        "total_fen": 1_000_000,
        "sources": [
            {"name": "市级财政", "share_bp": 6000, "indicator_no": "宜财企指〔2026〕12号"},
            {"name": "区级财政", "share_bp": 3333, "indicator_no": "伍财企指〔2026〕3号"},
            {"name": "省级专项", "share_bp": 667},
        ],
    }
)


def test_the_split_rule_on_examples() -> None:
    assert split_by_shares(10_001, [6000, 4000]) == [6001, 4000]  # 6000.6 / 4000.4: the larger fraction gets the fen
    assert split_by_shares(1, [5000, 5000]) == [1, 0]  # a tie goes to the earlier source
    assert split_by_shares(7, [3333, 3333, 3334]) == [2, 2, 3]
    assert split_by_shares(5, [10000, 0]) == [5, 0]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**12), st.lists(st.integers(0, 10000), min_size=1, max_size=6))
def test_the_parts_are_whole_fen_within_one_fen_of_the_share_and_sum_to_the_whole(amount: int, raw: list[int]) -> None:
    if sum(raw) == 0:
        raw = [1, *raw]
    shares = [r * 10000 // sum(raw) for r in raw]
    shares[-1] += 10000 - sum(shares)
    parts = split_by_shares(amount, shares)
    assert sum(parts) == amount
    assert all(abs(p * 10000 - amount * s) < 10000 for p, s in zip(parts, shares, strict=True))


def _world(session: Session, tag: str, n_cases: int) -> tuple[int, list[int]]:
    dept = fund_items.add_department(session=session, code=f"IND{tag}", name="经信局", region_code="420500")
    policy = fund_items.add_policy(
        session=session, doc_number=f"宜经信发〔2026〕IND{tag}号", title="测试政策", level="city",
        department_id=dept.id, published_on=date(2026, 1, 5),
    )  # fmt: skip
    item = fund_items.add_listed(
        session=session, code=f"T-IND-{tag}", policy_id=policy.id, department_id=dept.id, name="市区分担事项",
        mode=FundItemMode.INSTANT, config={},
    )  # fmt: skip
    fund_items.sync_budget_lines(
        session=session, fund_item_id=item.id, budget_year=2026,
        sources=[(s.name, s.amount_fen or 0) for s in BUDGET.sources],
    )  # fmt: skip
    indicators.sync_budget(session=session, fund_item_id=item.id, budget=BUDGET)
    ids = []
    for i in range(n_cases):
        ent = Enterprise(uscc=f"91420500IND{tag[:2]}{i:05d}", name=f"企业{i}", region_code="420502", tags=[])
        session.add(ent)
        session.flush()
        case = Case(fund_item_id=item.id, fund_item_version=1, enterprise_id=ent.id, mode=FundItemMode.INSTANT,
                    status=CaseStatus.PAYING, workflow_id=f"case:IND{tag}:{i}", paid_fen=0)  # fmt: skip
        session.add(case)
        session.flush()
        ids.append(case.id)
    return item.id, ids


def _pay(session: Session, case_id: int, amount: int, status: PaymentStatus = PaymentStatus.PAID) -> None:
    """What the treasury's result leaves in the payment ledger (paid: PaidAmt; returned: 0 and the return)."""
    from db.repositories import payments

    instruction = payments.get_or_create(
        session=session, case_id=case_id, attempt=1, adm_div_code="420500", st_year=2026, pay_acct_no="420500000001",
        payee_acct_no_enc="x", payee_acct_no_masked="****", payee_acct_name="企业", payee_acct_bank_name="银行",
        payee_acct_bank_no="102526000018", pay_amt_fen=amount, pay_summary_code="30307", fund_source="市级财政",
    )  # fmt: skip
    instruction.status = status
    instruction.paid_amt_fen = amount if status == PaymentStatus.PAID else 0
    instruction.returned_amt_fen = amount if status == PaymentStatus.RETURNED else 0
    session.flush()


def test_indicator_balances_equal_the_payment_ledger(session: Session) -> None:
    item_id, (instant, review, *campaign) = _world(session, "L1", 7)
    amounts = {instant: 10_001, review: 33_333, **{cid: 2_999 + i for i, cid in enumerate(campaign)}}
    for cid, amount in amounts.items():
        budget.reserve(session=session, fund_item_id=item_id, case_id=cid, amount_fen=amount)
    # Instant and review cases settle one at a time (settle_case → budget.commit), a campaign in one batch.
    for cid in (instant, review):
        _pay(session, cid, amounts[cid])
        budget.commit(session=session, case_id=cid)
        budget.commit(session=session, case_id=cid)  # an activity retry draws nothing more
    for cid in campaign:
        _pay(session, cid, amounts[cid])
    budget.commit_many(session=session, case_ids=campaign)
    budget.commit_many(session=session, case_ids=campaign)  # likewise for a batch
    assert indicators.parts(session=session, case_id=instant) == {"市级财政": 6001, "区级财政": 3333, "省级专项": 667}

    def ledger() -> tuple[int, int]:
        drawn = sum(b["drawn_fen"] for b in indicators.balances(session=session, fund_item_id=item_id).values())
        paid = session.scalar(
            select(func.coalesce(func.sum(PaymentInstruction.paid_amt_fen), 0))
            .join(Case, Case.id == PaymentInstruction.case_id)
            .where(Case.fund_item_id == item_id, PaymentInstruction.status == PaymentStatus.PAID)
        )
        return drawn, int(paid or 0)

    drawn, paid = ledger()
    assert drawn == paid == sum(amounts.values())
    # Each source drew exactly its parts of every payment, by the stated rule.
    balances = indicators.balances(session=session, fund_item_id=item_id)
    shares = [s.share_bp for s in BUDGET.sources]
    for index, source in enumerate(BUDGET.sources):
        expected = sum(split_by_shares(a, shares)[index] for a in amounts.values())
        assert balances[source.name] == {
            "total_fen": source.amount_fen, "drawn_fen": expected, "balance_fen": (source.amount_fen or 0) - expected,
        }  # fmt: skip

    # A same-year return (退票) of the review payment gives its parts back, once.
    _pay(session, review, amounts[review], PaymentStatus.RETURNED)
    budget.restore(session=session, case_id=review)
    budget.restore(session=session, case_id=review)
    drawn, paid = ledger()
    assert drawn == paid == sum(amounts.values()) - amounts[review]
    assert budget.totals(session=session, fund_item_id=item_id)["committed_fen"] == paid


def test_a_new_configuration_keeps_what_was_drawn(session: Session) -> None:
    item_id, (case,) = _world(session, "L2", 1)
    budget.reserve(session=session, fund_item_id=item_id, case_id=case, amount_fen=1000)
    budget.commit(session=session, case_id=case)
    changed = Budget.model_validate(
        {"year": 2026, "total_fen": 2_000_000, "sources": [{"name": "市级财政", "share_bp": 10000}]}
    )
    indicators.sync_budget(session=session, fund_item_id=item_id, budget=changed)
    balances = indicators.balances(session=session, fund_item_id=item_id)
    assert balances["市级财政"] == {"total_fen": 2_000_000, "drawn_fen": 600, "balance_fen": 1_999_400}
    assert balances["区级财政"]["drawn_fen"] == 333  # the source left: its line and what it drew stay
    assert [line.share_bp for line in indicators.lines(session=session, fund_item_id=item_id)] == [10000, 0, 0]
