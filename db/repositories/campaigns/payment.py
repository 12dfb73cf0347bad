"""Paying a campaign: attempt-1 instructions for approved cases, and settling them when the treasury answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from db import bulk
from db.models import CampaignTranche
from db.repositories import budget, cases, payments
from db.repositories.campaigns.common import BEFORE_FINANCE, case_t, ent_t, event, instr_t, money, now, selected
from db.repositories.campaigns.notify import queue_notices
from db.repositories.campaigns.registry import Context
from db.repositories.campaigns.tranches import automatic, finance_event
from schemas.vocabulary import CaseStatus, EventKind, FinanceStatus, NoticeStage, PaymentStatus, SystemActor


@dataclass
class Payer:
    """The paying account and year of the instructions (the worker's settings, or the fund item's own payer)."""

    adm_div_code: str
    pay_acct_no: str
    pay_acct_name: str
    st_year: int


def create_instructions(
    *,
    session: Session,
    ctx: Context,
    payer: Payer,
    limit: int,
    case_ids: Sequence[int] | None = None,
    approved_tranche: CampaignTranche | None = None,
    beat: bulk.Beat = bulk.no_beat,
    created_rows: list[dict[str, Any]] | None = None,
) -> tuple[int, int]:
    """Approved cases → paying, each with its attempt-1 instruction (deterministic VoucherNo).

    With `approved_tranche` (a wave finance approved), its cases still before finance get the approval
    event in the same pass. The account is the one the enterprise confirmed, else the one on file; a case
    with neither waits in no_account for its correction. Returns (instructions created, cases without one);
    `created_rows` gets the new instructions' rows (the columns `unsent` reads), so the sender need not read them back.
    """
    wanted = case_t.c.status == CaseStatus.APPROVED
    if approved_tranche is not None and approved_tranche.finance_status == FinanceStatus.APPROVED:
        wanted = or_(wanted, and_(case_t.c.tranche == approved_tranche.number, case_t.c.status.in_(BEFORE_FINANCE)))
    query = (
        select(
            case_t.c.id,
            case_t.c.status,
            case_t.c.amount_fen,
            case_t.c.consent_acct_enc,
            case_t.c.consent_acct_masked,
            case_t.c.consent_acct_name,
            case_t.c.consent_bank_name,
            case_t.c.consent_bank_code,
            ent_t.c.name,
            ent_t.c.bank_account_enc,
            ent_t.c.bank_account_masked,
            ent_t.c.bank_account_name,
            ent_t.c.bank_name,
            ent_t.c.bank_code,
        )
        .join(ent_t, ent_t.c.id == case_t.c.enterprise_id)
        .where(case_t.c.campaign_id == ctx.campaign.id, wanted)
    )
    rows = session.execute(selected(query, case_ids).order_by(case_t.c.id).limit(limit)).all()
    instructions, sent, missing = [], [], []
    config = ctx.config
    created = now()
    auto = approved_tranche is not None and automatic(approved_tranche)
    wave = {"tranche": approved_tranche.number, "finance": "auto"} if auto and approved_tranche else {}
    for r in rows:
        before = CaseStatus.APPROVED
        if r.status != CaseStatus.APPROVED:
            assert approved_tranche is not None
            if auto:  # the wave's one automatic approval is its audit record; the next event names the wave
                before = r.status
            else:
                (sent if (r.consent_acct_enc or r.bank_account_enc) else missing).append(
                    finance_event(approved_tranche, r.id, r.status)
                )
        own = r.consent_acct_enc is not None
        enc = r.consent_acct_enc if own else r.bank_account_enc
        if not enc:
            missing.append(
                event(
                    r.id,
                    before,
                    CaseStatus.NO_ACCOUNT,
                    "no_account",
                    EventKind.NO_ACCOUNT,
                    reason="企业未登记收款账户，待企业补充账户后拨付",
                    data=wave or None,
                )
            )
            continue
        voucher = payments.voucher_no(case_id=r.id, attempt=1)
        instructions.append(
            {
                "voucher_no": voucher,
                "case_id": r.id,
                "attempt": 1,
                "adm_div_code": payer.adm_div_code,
                "st_year": payer.st_year,
                "pay_acct_no": config.payer.acct_no if config.payer else payer.pay_acct_no,
                "payee_acct_no_enc": enc,
                "payee_acct_no_masked": (r.consent_acct_masked if own else r.bank_account_masked) or "****",
                "payee_acct_name": (r.consent_acct_name if own else r.bank_account_name) or r.name,
                "payee_acct_bank_name": (r.consent_bank_name if own else r.bank_name) or "",
                "payee_acct_bank_no": (r.consent_bank_code if own else r.bank_code) or "",
                "pay_amt_fen": r.amount_fen,
                "pay_summary_code": config.pay_summary_code,
                "fund_source": config.fund_source or config.budget.sources[0].name,
                "created_at": created,
            }
        )
        sent.append(
            event(
                r.id,
                before,
                CaseStatus.PAYING,
                "paying:1",
                EventKind.PAYMENT_SENT,
                data={"voucher_no": voucher} | wave,
            )
        )
    payments.create_many(session=session, beat=beat, rows=instructions)
    if created_rows is not None:
        created_rows.extend(instructions)
    cases.record_many(session=session, beat=beat, events=sent)
    cases.record_many(session=session, beat=beat, events=missing)
    return len(instructions), len(missing)


def unsent(
    *, session: Session, campaign_id: int, limit: int, case_ids: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """Instructions of the campaign created but not yet accepted by the treasury (attempt 1)."""
    query = (
        select(instr_t)
        .join(case_t, case_t.c.id == instr_t.c.case_id)
        .where(case_t.c.campaign_id == campaign_id, instr_t.c.attempt == 1, instr_t.c.status == PaymentStatus.CREATED)
    )
    return [dict(r) for r in session.execute(selected(query, case_ids).order_by(instr_t.c.id).limit(limit)).mappings()]


def accepted_vouchers(
    *, session: Session, campaign_id: int, limit: int, case_ids: Sequence[int] | None = None
) -> list[str]:
    """VoucherNos of the campaign's attempt-1 instructions the treasury accepted and has not settled yet."""
    query = (
        select(instr_t.c.voucher_no)
        .join(case_t, case_t.c.id == instr_t.c.case_id)
        .where(case_t.c.campaign_id == campaign_id, instr_t.c.attempt == 1, instr_t.c.status == PaymentStatus.ACCEPTED)
    )
    return list(session.scalars(selected(query, case_ids).order_by(instr_t.c.id).limit(limit)))


def settle_batch(
    *, session: Session, ctx: Context, limit: int, case_ids: Sequence[int] | None = None, beat: bulk.Beat = bulk.no_beat
) -> tuple[list[tuple[int, int]], list[tuple[int, str]]]:
    """Paying cases whose instruction is final: paid (budget committed, paid notice) or payment_failed
    (notice; the reservation stays for the correction loop). An instruction already returned when we first see its
    result (paid, then 退票 before the poll) went out: its case is settled as paid (committed, without the paid
    notice) and handed to the correction loop with the failures, which treats it as the return of a paid case
    (restores a same-year quota, records the return, asks for a corrected account).
    Returns ([(case, paid fen)] of the paid ones, [(case, voucher)] of those the correction loop takes)."""
    query = (
        select(
            case_t.c.id,
            case_t.c.enterprise_id,
            instr_t.c.voucher_no,
            instr_t.c.status,
            instr_t.c.paid_amt_fen,
            instr_t.c.fail_reason,
            instr_t.c.payee_acct_no_masked,
        )
        .join(instr_t, and_(instr_t.c.case_id == case_t.c.id, instr_t.c.attempt == 1))
        .where(
            case_t.c.campaign_id == ctx.campaign.id,
            case_t.c.status == CaseStatus.PAYING,
            instr_t.c.status.in_(payments.FINAL),
        )
    )
    rows = session.execute(selected(query, case_ids).order_by(case_t.c.id).limit(limit)).all()
    went_out = [r for r in rows if r.status in (PaymentStatus.PAID, PaymentStatus.RETURNED)]
    paid = [r for r in went_out if r.status == PaymentStatus.PAID]
    returned = [r for r in went_out if r.status == PaymentStatus.RETURNED]
    failed = [r for r in rows if r.status not in (PaymentStatus.PAID, PaymentStatus.RETURNED)]
    budget.commit_many(session=session, beat=beat, case_ids=[r.id for r in went_out])

    def attempt_1(column: Any) -> Any:
        return select(column).where(instr_t.c.case_id == case_t.c.id, instr_t.c.attempt == 1).scalar_subquery()

    # The paid amount and the failure reason ride on the status UPDATE (a correlated subquery), so each case row is
    # written once here (a second UPDATE doubled the summary triggers' work per case).
    cases.record_many(
        session=session,
        beat=beat,
        extra={"paid_fen": attempt_1(instr_t.c.paid_amt_fen)},
        events=[
            event(
                r.id,
                CaseStatus.PAYING,
                CaseStatus.PAID,
                "paid",
                EventKind.PAID,
                reason="国库支付成功",
                actor=SystemActor.TREASURY,
                data={"voucher_no": r.voucher_no, "paid_amt_fen": r.paid_amt_fen},
            )
            for r in went_out
        ],
    )
    cases.record_many(
        session=session,
        beat=beat,
        extra={"outcome_reason": func.coalesce(func.nullif(attempt_1(instr_t.c.fail_reason), ""), "银行退回")},
        events=[
            event(
                r.id,
                CaseStatus.PAYING,
                CaseStatus.PAYMENT_FAILED,
                "payment_failed",
                EventKind.PAYMENT_FAILED,
                reason=r.fail_reason,
                actor=SystemActor.TREASURY,
                data={"voucher_no": r.voucher_no},
            )
            for r in failed
        ],
    )
    queue_notices(
        session=session,
        beat=beat,
        ctx=ctx,
        stage=NoticeStage.PAID,
        template="paid",
        rows=[
            (r.id, r.enterprise_id, money(r.paid_amt_fen) | {"acct_tail": r.payee_acct_no_masked[-4:]}) for r in paid
        ],
    )
    queue_notices(
        session=session,
        beat=beat,
        ctx=ctx,
        stage=NoticeStage.PAYMENT_FAILED,
        template="payment_failed",
        rows=[(r.id, r.enterprise_id, {"reason": r.fail_reason or "银行退回", "officer": ctx.officer}) for r in failed],
    )
    return [(r.id, r.paid_amt_fen) for r in paid], [(r.id, r.voucher_no) for r in failed + returned]


def open_payments(*, session: Session, campaign_id: int, case_ids: Sequence[int] | None = None) -> int:
    """How many cases of the campaign are approved or paying, i.e. still waiting for money."""
    query = (
        select(func.count())
        .select_from(case_t)
        .where(case_t.c.campaign_id == campaign_id, case_t.c.status.in_((CaseStatus.APPROVED, CaseStatus.PAYING)))
    )
    return int(session.scalar(selected(query, case_ids)) or 0)
