"""Bulk campaign SQL on SQLite and PostgreSQL: frozen evidence, the budget boundary, pro rata, the ledger."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import BudgetEntry, BudgetLine, Case, CaseEvent
from db.repositories import campaigns as repo
from db.repositories import cases as cases_repo
from rules.conditions import evaluate
from tests.campaigns.support import AMOUNT_FEN, add_enterprises, add_item, item_config, listing

KEY = "ZnJvemVuLWV2aWRlbmNlLXRlc3Qta2V5LTMyYnl0ZXM="


def _match_all(session: Session, ctx: repo.Context, limit: int = 4) -> list[int]:
    ids: list[int] = []
    after, done = 0, False
    while not done:
        out = repo.match_batch(session=session, ctx=ctx, after_enterprise_id=after, limit=limit)
        ids, after, done = ids + out.case_ids, out.last_enterprise_id, out.done
    return ids


def _reserve_all(session: Session, ctx: repo.Context, limit: int = 3) -> tuple[int, int]:
    reserved = exhausted = 0
    while True:
        r, e, _ = repo.reserve_batch(session=session, ctx=ctx, limit=limit)
        if r + e == 0:
            return reserved, exhausted
        reserved, exhausted = reserved + r, exhausted + e


def _line(session: Session, fund_item_id: int) -> BudgetLine:
    return session.scalars(select(BudgetLine).where(BudgetLine.fund_item_id == fund_item_id)).one()


def test_match_freezes_evidence_and_skips_taken_enterprises(session: Session) -> None:
    item = add_item(session, "T7-MATCH-001", item_config(budget_fen=100 * AMOUNT_FEN))
    people = add_enterprises(session, KEY, 10, seed=1)
    people[3].credit_status = "warning"  # does not match
    session.flush()
    ctx = listing(session, item)
    ids = _match_all(session, ctx)
    assert len(ids) == 9
    session.expire_all()
    case = session.get(Case, ids[0])
    # the budget covers every match: each case is reserved in the same pass (matched → reserved)
    assert case.status == "reserved" and case.amount_fen == AMOUNT_FEN and case.campaign_id == ctx.campaign.id
    assert [e.kind for e in cases_repo.events(session=session, case_id=case.id)] == ["matched", "budget_reserved"]
    assert case.workflow_id.startswith("case:T7-MATCH-001:")
    values = case.evidence["values"]
    assert set(values) == {"credit_status", "employees", "region_code"} and values["employees"] == 20
    assert cases_repo.verify_chain(session=session, case_id=case.id)
    # A later archive edit does not change the decided case: its evidence still explains the decision.
    people[0].employees = 3
    session.flush()
    session.refresh(case)
    assert case.evidence["values"]["employees"] == 20
    assert evaluate(ctx.config.conditions, case.evidence["values"]).eligible
    # Matching again (a retried batch, or a re-evaluation) never creates a second case.
    assert _match_all(session, ctx) == []
    assert session.scalar(select(func.count()).select_from(Case).where(Case.fund_item_id == item.id)) == 9


def test_budget_exactly_enough_for_k_of_n_in_the_stated_order(session: Session) -> None:
    k, n = 4, 7
    item = add_item(session, "T7-STOP-001", item_config(budget_fen=k * AMOUNT_FEN))
    people = add_enterprises(session, KEY, n, seed=2)
    ctx = listing(session, item)
    _match_all(session, ctx)
    reserved, exhausted = _reserve_all(session, ctx)
    assert (reserved, exhausted) == (k, n - k)
    session.expire_all()
    line = _line(session, item.id)
    assert line.reserved_fen == line.total_fen == k * AMOUNT_FEN
    # order_by employees desc: the k largest employers are reserved
    by_enterprise = {c.enterprise_id: c for c in session.scalars(select(Case).where(Case.fund_item_id == item.id))}
    ranked = sorted(people, key=lambda e: -e.employees)
    assert all(by_enterprise[e.id].status == "reserved" for e in ranked[:k])
    assert all(by_enterprise[e.id].status == "budget_exhausted" for e in ranked[k:])
    entries = session.scalars(select(BudgetEntry.amount_fen).where(BudgetEntry.budget_line_id == line.id)).all()
    assert sorted(entries) == [AMOUNT_FEN] * k
    for case in by_enterprise.values():
        assert cases_repo.verify_chain(session=session, case_id=case.id)


def test_one_fen_short_of_k_reserves_k_minus_one(session: Session) -> None:
    item = add_item(session, "T7-STOP-002", item_config(budget_fen=3 * AMOUNT_FEN - 1))
    add_enterprises(session, KEY, 5, seed=3)
    ctx = listing(session, item)
    _match_all(session, ctx)
    assert _reserve_all(session, ctx, limit=10) == (2, 3)
    session.expire_all()
    assert _line(session, item.id).reserved_fen == 2 * AMOUNT_FEN


def test_pro_rata_scales_every_amount_down_without_exceeding_the_budget(session: Session) -> None:
    budget = 5_000_001  # odd on purpose: floors must never sum above it
    config = item_config(
        budget_fen=budget,
        shortfall={"policy": "pro_rata"},
        standard={"kind": "rate", "base": "tax_paid_fen", "rate": "0.1"},
    )
    item = add_item(session, "T7-PRORATA-001", config)
    people = add_enterprises(session, KEY, 7, seed=4)
    for i, e in enumerate(people):
        e.tax_paid_fen = 10_000_000 + 1_234_567 * i  # amounts 1,000,000 + 123,457 i (rounded half up)
    session.flush()
    ctx = listing(session, item)
    _match_all(session, ctx)
    assert _reserve_all(session, ctx) == (0, 0)  # pro rata: reserved while matching, at the fixed ratio
    session.expire_all()  # the batch wrote with Core statements
    full = {
        c.id: c.evidence["amount_full_fen"] for c in session.scalars(select(Case).where(Case.fund_item_id == item.id))
    }
    total = sum(full.values())
    assert total > budget and (ctx.campaign.ratio_num, ctx.campaign.ratio_den) == (budget, total)
    cases = session.scalars(select(Case).where(Case.fund_item_id == item.id)).all()
    for case in cases:
        assert case.status == "reserved" and case.amount_fen == full[case.id] * budget // total
    reserved = sum(c.amount_fen for c in cases)
    assert reserved <= budget and budget - reserved < len(cases)
    assert _line(session, item.id).reserved_fen == reserved


def test_pro_rata_with_enough_budget_pays_in_full(session: Session) -> None:
    item = add_item(
        session, "T7-PRORATA-002", item_config(budget_fen=10 * AMOUNT_FEN, shortfall={"policy": "pro_rata"})
    )
    add_enterprises(session, KEY, 5, seed=5)
    ctx = listing(session, item)
    _match_all(session, ctx)
    assert _reserve_all(session, ctx) == (0, 0)
    amounts = session.scalars(select(Case.amount_fen).where(Case.fund_item_id == item.id)).all()
    assert amounts == [AMOUNT_FEN] * 5
    kinds = session.scalars(
        select(CaseEvent.kind).join(Case, Case.id == CaseEvent.case_id).where(Case.fund_item_id == item.id)
    ).all()
    assert sorted(set(kinds)) == ["budget_reserved", "matched"]


def test_consent_lapse_releases_the_budget_of_those_who_never_answer(session: Session) -> None:
    from datetime import UTC, date, datetime

    consent = {"deadline_working_days": 5, "on_no_answer": "lapse"}
    item = add_item(session, "T7-LAPSE-001", item_config(budget_fen=10 * AMOUNT_FEN, consent=consent))
    add_enterprises(session, KEY, 4, seed=6)
    ctx = listing(session, item)
    _match_all(session, ctx)
    _reserve_all(session, ctx)
    repo.open_consent(
        session=session, ctx=ctx, deadline=date(2026, 12, 4), due_at=datetime(2026, 12, 4, 16, tzinfo=UTC)
    )
    assert repo.consent_notify_batch(session=session, ctx=ctx, limit=10) == 4
    session.expire_all()
    cases = session.scalars(select(Case).where(Case.fund_item_id == item.id).order_by(Case.id)).all()
    assert {c.status for c in cases} == {"consent_pending"} and {c.consent_status for c in cases} == {"pending"}
    repo.record_consent(session=session, case=cases[0], accept=True, actor="enterprise:x")
    assert repo.collect_batch(session=session, ctx=ctx, final=False, limit=10) == (1, 0)
    assert repo.collect_batch(session=session, ctx=ctx, final=True, limit=10) == (0, 3)
    session.expire_all()
    assert [c.status for c in cases] == ["ready", "lapsed", "lapsed", "lapsed"]
    assert [c.consent_status for c in cases] == ["confirmed", "lapsed", "lapsed", "lapsed"]
    line = _line(session, item.id)
    assert line.reserved_fen == AMOUNT_FEN and line.committed_fen == 0
    releases = session.scalars(select(BudgetEntry.case_id).where(BudgetEntry.kind == "release")).all()
    assert sorted(releases) == [c.id for c in cases[1:]]
    for case in cases:
        assert cases_repo.verify_chain(session=session, case_id=case.id)


def test_a_payment_returned_before_it_was_seen_paid_is_settled_paid_and_goes_to_the_return_flow(
    session: Session,
) -> None:
    """A poll that finds an instruction already returned (paid, then 退票 before we asked): the money went out, so the
    case is settled as paid (budget committed, drawn) and handed to the correction loop like any returned payment —
    not closed as payment_failed with a "payment failed" notice and its reservation released as if the treasury had
    refused it, while the treasury's ledger shows it paid and returned."""
    from datetime import UTC, datetime

    from db.models import Notice, PaymentInstruction
    from db.repositories import budget, payments
    from schemas.treasury import InstructionResult

    item = add_item(session, "T7-RET-001", item_config(budget_fen=10 * AMOUNT_FEN))
    add_enterprises(session, KEY, 3, seed=9)
    ctx = listing(session, item)
    ids = sorted(_match_all(session, ctx))
    row = repo.open_tranche(session=session, ctx=ctx, number=1)
    row = repo.record_finance(session=session, row=row, approve=True, actor="system:auto", note="test")
    payer = repo.Payer("420500", "1000", "宜昌市财政局", 2026)
    assert repo.create_instructions(session=session, ctx=ctx, payer=payer, limit=10, approved_tranche=row) == (3, 0)
    vouchers = {cid: payments.voucher_no(case_id=cid, attempt=1) for cid in ids}
    payments.mark_accepted_many(session=session, vouchers=list(vouchers.values()))
    now = datetime.now(UTC)
    paid = [
        InstructionResult(VoucherNo=vouchers[cid], Status="paid", PaidAmt=AMOUNT_FEN, AcceptedAt=now, SettledAt=now)
        for cid in ids[:2]
    ]
    back = InstructionResult(
        VoucherNo=vouchers[ids[2]], Status="returned", PaidAmt=0, Reason="收款人户名不符", AcceptedAt=now,
        SettledAt=now, ReturnType="passive", ReturnedAmt=AMOUNT_FEN, ReturnedAt=now,
    )  # fmt: skip
    payments.record_results_many(session=session, results=[*paid, back])
    settled, failures = repo.settle_batch(session=session, ctx=ctx, limit=10)
    assert sorted(settled) == [(ids[0], AMOUNT_FEN), (ids[1], AMOUNT_FEN)]
    assert failures == [(ids[2], vouchers[ids[2]])]  # the campaign starts its correction workflow
    session.expire_all()
    case = session.get(Case, ids[2])
    assert case.status == "paid" and case.paid_fen == AMOUNT_FEN
    kinds = [e.kind for e in cases_repo.events(session=session, case_id=case.id)]
    assert kinds == ["matched", "budget_reserved", "payment_sent", "paid"]  # the automatic approval: one audit record
    assert cases_repo.verify_chain(session=session, case_id=case.id)
    # committed like any paid attempt: the correction loop restores a same-year quota from there (the return flow)
    assert any(e.kind == "commit" and e.attempt == 1 for e in budget.entries(session=session, case_id=case.id))
    assert session.get(PaymentInstruction, session.scalar(
        select(PaymentInstruction.id).where(PaymentInstruction.voucher_no == vouchers[ids[2]])
    )).status == "returned"  # fmt: skip
    templates = set(session.scalars(select(Notice.template_key).where(Notice.case_id == case.id)))
    assert templates.isdisjoint({"paid", "payment_failed"})  # the correction loop sends the return's notice


def test_tax_import_registers_a_reevaluation_for_a_newly_eligible_enterprise(
    empty_db_url: str, tmp_path, monkeypatch
) -> None:
    from typer.testing import CliRunner

    from cli.main import app
    from db.migrate import upgrade
    from db.models import Campaign
    from db.session import transaction
    from settings import get_settings

    db_url = empty_db_url  # committed data: a database of its own
    upgrade(db_url)
    rate = {"kind": "rate", "base": "tax_paid_fen", "rate": "0.1"}
    with transaction(db_url) as session:
        item = add_item(session, "T7-TAX-001", item_config(budget_fen=100 * AMOUNT_FEN, standard=rate, region="420583"))
        people = add_enterprises(session, KEY, 2, seed=8, region="420583")
        people[0].tax_paid_fen = 0  # no tax: no amount, no case
        codes = [e.uscc for e in people]
        item_id = item.id
    csv = tmp_path / "tax.csv"
    csv.write_text(f"uscc,tax_paid_fen\n{codes[0]},5000000\n{codes[1]},10000000\nBAD,1\n", encoding="utf-8")
    monkeypatch.setenv("ZHIDA_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["campaign", "import-tax", str(csv)], env={"COLUMNS": "200"})
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "已更新 1 家" in result.output and "新增 1 个" in result.output and "第 4 行" in result.output
    with transaction(db_url) as session:
        found = session.scalars(select(Campaign).where(Campaign.fund_item_id == item_id)).all()
        assert [(c.kind, c.enterprise_id, c.phase) for c in found] == [("reevaluation", people[0].id, "pending")]
