"""Campaign activities: each handles one batch (thousands of cases) in one transaction, plus the treasury calls.

The batch activities heartbeat while they work (the repositories call back between chunks of rows), so a worker that
dies mid-batch is noticed in seconds; the short ones (one row, one decision) declare no heartbeat timeout. A retried
activity finds only what is left to do: batches select cases by status, the treasury deduplicates a
resent instruction by its VoucherNo, and the deadlines it computes are fixed in the database the first time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from pydantic import ValidationError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from db import crypto
from db.repositories import budget, cases, payments
from db.repositories import calendar as calendar_repo
from db.repositories import campaigns as repo
from db.session import transaction
from gateways.treasury import TreasuryGateway, TreasuryRejected, TreasuryUnavailable
from logs import get_logger
from rules.indicators import voucher_detail_fields
from schemas.audit import AuditNote
from schemas.campaigns import (
    BatchIn,
    BatchOut,
    CampaignPlan,
    CampaignProgress,
    CampaignRef,
    CaseVoucher,
    ConsentWindow,
    FinanceRecord,
    ObjectionOutcome,
    ObjectionRuleIn,
    ResultsOut,
    TrancheInfo,
)
from schemas.localtime import LOCAL_TZ, local_date
from schemas.treasury import INSTRUCTION_LIST, MAX_BATCH, InstructionResult
from schemas.treasury import PaymentInstruction as InstructionMessage
from schemas.vocabulary import AuditKind, CampaignPhase, CaseStatus, FinanceStatus, PaymentStatus
from services import audit
from services import campaign_progress as campaign_service

log = get_logger("zhida.campaign")


def working_deadline(session, working_days: int, today: date | None = None) -> tuple[date, datetime, bool]:
    """The n-th working day after today (local time), and the moment it ends (24:00 local time) in UTC."""
    if not calendar_repo.loaded_years(session=session):
        calendar_repo.seed_from_chinese_calendar(session=session)
    calendar = calendar_repo.load_calendar(session=session)
    start = today or datetime.now(LOCAL_TZ).date()
    deadline = calendar.add_working_days(start, working_days)
    due = datetime.combine(deadline.due + timedelta(days=1), time(0), LOCAL_TZ).astimezone(UTC)
    return deadline.due, due, deadline.provisional


class CampaignActivities:
    """Holds its clients, as CaseActivities does; registered as bound methods."""

    def __init__(
        self,
        *,
        db_url: str,
        fernet_key: str,
        treasury: TreasuryGateway,
        pay_acct_no: str,
        pay_acct_name: str,
        adm_div_code: str,
    ) -> None:
        self.db_url = db_url
        self.fernet_key = fernet_key
        self.treasury = treasury
        self.pay_acct_no = pay_acct_no
        self.pay_acct_name = pay_acct_name
        self.adm_div_code = adm_div_code

    @classmethod
    def from_settings(cls, settings, treasury: TreasuryGateway) -> CampaignActivities:
        """The worker's instance, with the treasury gateway the worker built (gateways/factory.py)."""
        return cls(
            db_url=settings.db_url,
            fernet_key=settings.fernet_key(),
            treasury=treasury,
            pay_acct_no=settings.pay_acct_no,
            pay_acct_name=settings.pay_acct_name,
            adm_div_code=settings.adm_div_code,
        )

    def _ctx(self, session, campaign_id: int) -> repo.Context:
        try:
            return repo.context(session=session, campaign_id=campaign_id)
        except LookupError as exc:
            raise ApplicationError(str(exc), non_retryable=True, type="CampaignNotFound") from exc

    # -- setup, match, reserve -----------------------------------------------------------------------------

    @activity.defn
    def campaign_open(self, ref: CampaignRef) -> CampaignPlan:
        """What the workflow needs from the frozen configuration."""
        with transaction(self.db_url) as session:
            ctx = self._ctx(session, ref.campaign_id)
            repo.mark_started(session=session, campaign_id=ref.campaign_id)
            options = ctx.config.no_application
            consent = options.consent if options else None
            return CampaignPlan(
                campaign_id=ref.campaign_id,
                fund_item_code=ctx.item.code,
                fund_item_version=ctx.campaign.fund_item_version,
                kind=ctx.campaign.kind,  # type: ignore[arg-type]
                consent=consent is not None,
                on_no_answer=consent.on_no_answer if consent else None,
                publicity=ctx.config.approval.publicity is not None,
                finance_auto=ctx.config.finance_auto_approval,
            )

    @activity.defn
    def campaign_match(self, batch: BatchIn) -> BatchOut:
        """Bulk match and price the next slice of the archive; cases are created with frozen evidence."""
        with transaction(self.db_url) as session:
            ctx = self._ctx(session, batch.campaign_id)
            out = repo.match_batch(
                session=session,
                ctx=ctx,
                after_enterprise_id=batch.after_enterprise_id,
                limit=batch.limit,
                beat=activity.heartbeat,
            )
            if out.done:
                repo.set_phase(session=session, campaign_id=batch.campaign_id, phase="reserving")
            return BatchOut(
                processed=len(out.case_ids),
                done=out.done,
                after_enterprise_id=out.last_enterprise_id,
                reserved=out.reserved,
                exhausted=out.exhausted,
            )

    @activity.defn
    def campaign_reserve(self, batch: BatchIn) -> BatchOut:
        """Bulk budget reservation of the next cases in the stated order, under the shortfall policy."""
        try:
            with transaction(self.db_url) as session:
                ctx = self._ctx(session, batch.campaign_id)
                reserved, exhausted, amount = repo.reserve_batch(
                    session=session, ctx=ctx, limit=batch.limit, beat=activity.heartbeat
                )
        except budget.BudgetMoved as exc:
            raise ApplicationError(str(exc), type="BudgetMoved") from exc
        return BatchOut(
            processed=reserved + exhausted,
            done=reserved + exhausted == 0,
            amount_fen=amount,
            reserved=reserved,
            exhausted=exhausted,
        )

    # -- consent -------------------------------------------------------------------------------------------

    @activity.defn
    def campaign_consent_open(self, ref: CampaignRef) -> ConsentWindow:
        """The consent deadline in working days (calendar in the database), fixed once."""
        with transaction(self.db_url) as session:
            ctx = self._ctx(session, ref.campaign_id)
            consent = ctx.config.no_application.consent if ctx.config.no_application else None
            assert consent is not None
            deadline, due, provisional = working_deadline(session, consent.deadline_working_days)
            deadline, due = repo.open_consent(session=session, ctx=ctx, deadline=deadline, due_at=due)
            return ConsentWindow(deadline=deadline, due_at=due, provisional=provisional)

    @activity.defn
    def campaign_consent_notify(self, batch: BatchIn) -> BatchOut:
        with transaction(self.db_url) as session:
            ctx = self._ctx(session, batch.campaign_id)
            n = repo.consent_notify_batch(session=session, ctx=ctx, limit=batch.limit, beat=activity.heartbeat)
            return BatchOut(processed=n, done=n == 0)

    @activity.defn
    def campaign_collect(self, batch: BatchIn) -> BatchOut:
        """One wave of consent answers (and, at the deadline, the no-answer policy)."""
        with transaction(self.db_url) as session:
            ctx = self._ctx(session, batch.campaign_id)
            ready, lapsed = repo.collect_batch(
                session=session, ctx=ctx, final=batch.final, limit=batch.limit, beat=activity.heartbeat
            )
            # Collect-now requests: once each (a retry finds the key), with this effect.
            _record_collect_notes(session, batch.audit, final_wave=batch.final, collected=ready, lapsed=lapsed)
            return BatchOut(processed=ready + lapsed, done=ready + lapsed == 0, lapsed=lapsed)

    # -- waves: publicity, finance -------------------------------------------------------------------------

    @activity.defn
    def campaign_tranche_open(self, batch: BatchIn) -> TrancheInfo:
        with transaction(self.db_url) as session:
            ctx = self._ctx(session, batch.campaign_id)
            return campaign_service.tranche_view(repo.open_tranche(session=session, ctx=ctx, number=batch.tranche))

    @activity.defn
    def campaign_publicity_open(self, batch: BatchIn) -> TrancheInfo:
        """The publicity period of a wave in working days (computed here, never in the workflow)."""
        with transaction(self.db_url) as session:
            ctx = self._ctx(session, batch.campaign_id)
            row = repo.tranche(session=session, campaign_id=batch.campaign_id, number=batch.tranche)
            assert row is not None and ctx.config.approval.publicity is not None
            until, due, _ = working_deadline(session, ctx.config.approval.publicity.working_days)
            return campaign_service.tranche_view(repo.set_publicity(session=session, row=row, until=until, due_at=due))

    @activity.defn
    def campaign_publicity_notify(self, batch: BatchIn) -> BatchOut:
        with transaction(self.db_url) as session:
            ctx = self._ctx(session, batch.campaign_id)
            row = repo.tranche(session=session, campaign_id=batch.campaign_id, number=batch.tranche)
            assert row is not None
            n = repo.publicity_batch(session=session, ctx=ctx, row=row, limit=batch.limit, beat=activity.heartbeat)
            return BatchOut(processed=n, done=n == 0)

    @activity.defn
    def campaign_objected(self, batch: BatchIn) -> list[int]:
        with transaction(self.db_url) as session:
            return repo.objected(session=session, campaign_id=batch.campaign_id, number=batch.tranche)

    @activity.defn
    def campaign_finance(self, record: FinanceRecord) -> TrancheInfo:
        """Store the wave's one finance decision (automatic or the finance bureau's update)."""
        with transaction(self.db_url) as session:
            row = repo.tranche(session=session, campaign_id=record.campaign_id, number=record.decision.tranche)
            assert row is not None
            d = record.decision
            first = row.finance_status == FinanceStatus.PENDING
            stored = repo.record_finance(session=session, row=row, approve=d.approve, actor=d.actor, note=d.note)
            if first:  # the decision's audit record commits with it, once (a retry finds the wave decided)
                audit.record_note(session=session, note=AuditNote(kind=AuditKind.DECISION, actor=d.actor,
                                              subject=f"campaign:{record.campaign_id}",
                                              data={"decision": "campaign_tranche", "tranche": d.tranche,
                                                    "approve": d.approve, "note": d.note}))  # fmt: skip
            return campaign_service.tranche_view(stored)

    @activity.defn
    def campaign_approve(self, batch: BatchIn) -> BatchOut:
        """Apply the wave's finance decision to its next batch of cases."""
        with transaction(self.db_url) as session:
            ctx = self._ctx(session, batch.campaign_id)
            row = repo.tranche(session=session, campaign_id=batch.campaign_id, number=batch.tranche)
            assert row is not None and row.finance_status != FinanceStatus.PENDING
            n = repo.finance_batch(
                session=session, ctx=ctx, row=row, limit=batch.limit, case_ids=batch.case_ids, beat=activity.heartbeat
            )
            return BatchOut(processed=n, done=n == 0)

    # -- payment -------------------------------------------------------------------------------------------

    @activity.defn
    def campaign_pay(self, batch: BatchIn) -> BatchOut:
        """Create the next batch of instructions, then send every unsent one in batches of 1,000."""
        with transaction(self.db_url) as session:
            ctx = self._ctx(session, batch.campaign_id)
            payer = repo.Payer(self.adm_div_code, self.pay_acct_no, self.pay_acct_name, local_date(datetime.now(UTC)).year)
            row = repo.tranche(session=session, campaign_id=batch.campaign_id, number=batch.tranche)
            # Instructions a failed send left unsent go first; the new ones are sent from the rows just written,
            # not read back.
            rows = repo.unsent(
                session=session, campaign_id=batch.campaign_id, limit=batch.limit, case_ids=batch.case_ids
            )
            created = missing = 0
            if len(rows) < batch.limit:
                created, missing = repo.create_instructions(
                    session=session,
                    ctx=ctx,
                    payer=payer,
                    limit=batch.limit - len(rows),
                    case_ids=batch.case_ids,
                    approved_tranche=row,
                    beat=activity.heartbeat,
                    created_rows=rows,
                )
            payer_name = ctx.config.payer.acct_name if ctx.config.payer else self.pay_acct_name
            sources = ctx.config.budget.sources
            summary = ctx.item.name[:60]
        messages, invalid = self._messages(rows, payer_name, summary, sources)
        accepted: list[tuple[str, str | None]] = []
        final: list[InstructionResult] = list(invalid)
        for i in range(0, len(messages), MAX_BATCH):
            chunk = messages[i : i + MAX_BATCH]
            activity.heartbeat(i)
            try:
                results = self.treasury.submit_batch(chunk)
            except TreasuryRejected as exc:
                raise ApplicationError(str(exc), non_retryable=True, type="TreasuryRejected") from exc
            except TreasuryUnavailable as exc:
                self._store(accepted, final)  # what got through stays recorded
                raise ApplicationError(str(exc), type="TreasuryUnavailable") from exc
            for item in results:
                if item.Outcome == "conflict":
                    log.error(
                        "voucher_conflict",
                        voucher=item.VoucherNo,
                        reason=item.Reason,
                        campaign_id=batch.campaign_id,
                        workflow_id=activity.info().workflow_id,
                    )
                    continue
                if item.Result is not None:
                    accepted.append((item.VoucherNo, item.Result.TreasuryRef or None))
                    if item.Result.final:
                        final.append(item.Result)
        activity.heartbeat("sent")
        self._store(accepted, final)
        processed = created + missing + len(rows)
        return BatchOut(processed=processed, done=processed == 0, failed=missing)

    def _messages(
        self, rows: list[dict], payer_name: str, summary: str, sources: list
    ) -> tuple[list[InstructionMessage], list[InstructionResult]]:
        """The vouchers of instruction rows, validated as one list; a row that fails (the account on file is
        incomplete) becomes a failed result instead, and its case goes to correction."""
        fields = []
        for row in rows:
            fields.append(
                {
                    "VoucherNo": row["voucher_no"],
                    "AdmDivCode": row["adm_div_code"],
                    "StYear": row["st_year"],
                    "PayAcctNo": row["pay_acct_no"],
                    "PayAcctName": payer_name,
                    "PayeeAcctNo": crypto.decrypt(self.fernet_key, row["payee_acct_no_enc"]),
                    "PayeeAcctName": row["payee_acct_name"],
                    "PayeeAcctBankName": row["payee_acct_bank_name"],
                    "PayeeAcctBankNo": row["payee_acct_bank_no"],
                    "PayAmt": row["pay_amt_fen"],
                    "PaySummaryCode": row["pay_summary_code"],
                    "PaySummaryName": summary,
                    "FundSource": row["fund_source"],
                    "Details": voucher_detail_fields(sources, row["pay_amt_fen"]),  # one DetailList line per source
                }
            )
        bad: dict[int, list[str]] = {}
        try:
            return INSTRUCTION_LIST.validate_python(fields), []
        except ValidationError as exc:
            for error in exc.errors():
                loc = error["loc"]  # (row, field, …); a check of the whole voucher names no field (DetailList sums)
                bad.setdefault(int(loc[0]), []).append(str(loc[1]) if len(loc) > 1 else "Details")
        now = datetime.now(UTC)
        invalid = [
            InstructionResult(
                VoucherNo=rows[i]["voucher_no"],
                Status=PaymentStatus.FAILED,
                PaidAmt=0,
                Reason=f"收款账户信息不完整（{'、'.join(names)}），未发送",
                AcceptedAt=now,
                SettledAt=now,
            )
            for i, names in sorted(bad.items())
        ]
        good = [f for i, f in enumerate(fields) if i not in bad]
        return INSTRUCTION_LIST.validate_python(good), invalid

    def _store(self, accepted: list[tuple[str, str | None]], final: list[InstructionResult]) -> None:
        with transaction(self.db_url) as session:
            payments.mark_accepted_many(session=session, vouchers=[voucher for voucher, _ in accepted])
            payments.record_results_many(session=session, results=final)

    @activity.defn
    def campaign_results(self, batch: BatchIn) -> ResultsOut:
        """Poll the treasury for a batch of accepted instructions and settle every final one in bulk."""
        with transaction(self.db_url) as session:
            vouchers = repo.accepted_vouchers(
                session=session, campaign_id=batch.campaign_id, limit=batch.limit, case_ids=batch.case_ids
            )
        results: list[InstructionResult] = []
        for i in range(0, len(vouchers), MAX_BATCH):
            activity.heartbeat(i)
            try:
                results += self.treasury.query_many(vouchers[i : i + MAX_BATCH]).values()
            except TreasuryUnavailable as exc:
                raise ApplicationError(str(exc), type="TreasuryUnavailable") from exc
        activity.heartbeat("settle")
        with transaction(self.db_url) as session:
            ctx = self._ctx(session, batch.campaign_id)
            payments.record_results_many(session=session, results=results)
            paid, failed = repo.settle_batch(
                session=session, ctx=ctx, limit=batch.limit, case_ids=batch.case_ids, beat=activity.heartbeat
            )
            left = repo.open_payments(session=session, campaign_id=batch.campaign_id, case_ids=batch.case_ids)
        return ResultsOut(
            settled=len(paid) + len(failed),
            paid=len(paid),
            paid_fen=sum(fen for _, fen in paid),
            failed=len(failed),
            open=left,
            failures=[CaseVoucher(case_id=c, voucher_no=v) for c, v in failed],
        )

    # -- objections, end -----------------------------------------------------------------------------------

    @activity.defn
    def campaign_rule_objection(self, ruling: ObjectionRuleIn) -> ObjectionOutcome:
        with transaction(self.db_url) as session:
            ctx = self._ctx(session, ruling.campaign_id)
            case = cases.get(session=session, case_id=ruling.case_id)
            assert case is not None
            r = ruling.ruling
            first = case.status == CaseStatus.OBJECTED
            status = repo.rule_objection(
                session=session, ctx=ctx, case=case, upheld=r.upheld, actor=r.actor, reason=r.reason
            )
            if first:  # the ruling's audit record commits with it, once (a retry finds the case ruled)
                audit.record_note(session=session, note=AuditNote(kind=AuditKind.DECISION, actor=r.actor, subject=f"case:{case.id}",
                                              data={"decision": "campaign_objection_ruling", "upheld": r.upheld,
                                                    "reason": r.reason}))  # fmt: skip
            return ObjectionOutcome(case_id=case.id, status=status, pay=status == CaseStatus.APPROVED)

    @activity.defn
    def campaign_finish(self, ref: CampaignRef) -> CampaignProgress:
        with transaction(self.db_url) as session:
            repo.set_phase(session=session, campaign_id=ref.campaign_id, phase=CampaignPhase.DONE)
            # Collect-now requests no collection followed.
            _record_collect_notes(session, ref.audit, collected=0, note="请求时已无待收集的意愿确认")
            return campaign_service.counted_progress(session=session, campaign_id=ref.campaign_id)


def _record_collect_notes(session: Session, notes: list[AuditNote], **outcome: object) -> None:
    """The audit records of collect-now requests, each with what its collection did (`outcome` joins its data)."""
    for note in notes:
        audit.record_note(session=session, note=note.model_copy(update={"data": {**note.data, **outcome}}))
