"""Case activities: each is one database transaction (plus at most one gateway call), safe to retry."""

from __future__ import annotations

import asyncio
import time as _time
from datetime import UTC, date, datetime, timedelta

from pydantic import TypeAdapter
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from db import crypto
from db.models import Case, Enterprise, FundItem
from db.repositories import budget, case_context, cases, notices, payments, reviews
from db.repositories import calendar as calendar_repo
from db.session import reading, transaction
from gateways.treasury import TreasuryGateway, TreasuryRejected, TreasuryUnavailable
from rules.amounts import compute_amount
from rules.calendar import WorkCalendar, stage_deadline
from rules.conditions import evaluate, facts_of
from rules.indicators import details_from_config
from rules.money import format_yuan, to_capitals
from rules.sms_templates import format_date, render
from schemas.cases import (
    CaseRef,
    CorrectionCheck,
    CorrectionInput,
    CorrectionOpened,
    EligibilityResult,
    EventRecord,
    InstantDecision,
    PaymentRequest,
    PaymentState,
    PaymentStep,
    ReserveResult,
    StageNote,
)
from schemas.conditions import Condition
from schemas.localtime import LOCAL_TZ, local_date, to_local
from schemas.standards import Standard
from schemas.treasury import InstructionResult
from schemas.treasury import PaymentInstruction as InstructionMessage
from schemas.vocabulary import (
    ActorKind,
    BudgetEntryKind,
    CaseStatus,
    EventKind,
    FundItemMode,
    PaymentStatus,
    ReturnHandling,
    ReturnKind,
    SystemActor,
    actor,
)
from services import audit

# The enterprise's time to correct its payout account after a failed or returned payment (working days).
CORRECTION_WORKING_DAYS = 5
CALENDAR_TTL_SECONDS = 60.0
_conditions = TypeAdapter(Condition)
_standards = TypeAdapter(Standard)


_parsed_rules: dict[int, tuple[dict, Condition, Standard]] = {}


def _parsed(config: dict) -> tuple[Condition, Standard]:
    """The version's conditions and standard, validated once per frozen config object (see case_context)."""
    hit = _parsed_rules.get(id(config))
    if hit is None or hit[0] is not config:
        if len(_parsed_rules) > 4096:
            _parsed_rules.clear()
        hit = (
            config,
            _conditions.validate_python(config["conditions"]),
            _standards.validate_python(config["standard"]),
        )
        _parsed_rules[id(config)] = hit
    return hit[1], hit[2]


class CaseActivities:
    """Holds its clients, as the Temporal samples do; registered as bound methods."""

    def __init__(
        self,
        *,
        db_url: str,
        fernet_key: str,
        treasury: TreasuryGateway,
        notify_url: str,
        pay_acct_no: str,
        pay_acct_name: str,
        adm_div_code: str,
    ) -> None:
        self.db_url = db_url
        self.fernet_key = fernet_key
        self.treasury = treasury
        self.notify_url = notify_url
        self.pay_acct_no = pay_acct_no
        self.pay_acct_name = pay_acct_name
        self.adm_div_code = adm_div_code
        self._calendar_cache: tuple[float, WorkCalendar] | None = None

    # -- helpers -------------------------------------------------------------------------------------------

    def _load(self, session, case_id: int) -> tuple[Case, Enterprise, FundItem, dict]:
        """The case, its enterprise, its item (one query) and the item version's frozen config (cached)."""
        loaded = case_context.load(session=session, case_id=case_id)
        if loaded is None:
            raise ApplicationError(f"case {case_id} not found", non_retryable=True)
        case, enterprise, item = loaded
        config = case_context.frozen_config(
            session=session, db_url=self.db_url, fund_item_id=case.fund_item_id, number=case.fund_item_version
        )
        assert config is not None
        return case, enterprise, item, config

    def _notify(
        self,
        session,
        case: Case,
        enterprise: Enterprise,
        item: FundItem,
        stage: str,
        extra: dict[str, str],
        key_suffix: str = "",
        template: str | None = None,
    ) -> None:
        """One notice per case stage (the dedupe key); `template` when the stage's wording differs by mode."""
        params = {"enterprise": enterprise.name, "item": item.name, "case_no": f"ZD{case.id:010d}"} | extra
        template = template or stage
        notices.enqueue(
            session=session,
            dedupe_key=f"case:{case.id}:{stage}{key_suffix}",
            enterprise_id=enterprise.id,
            case_id=case.id,
            template_key=template,
            params=params,
            content=render(template, params),
            phone_enc=enterprise.contact_phone_enc,
            phone_masked=enterprise.contact_phone_masked,
            fund_item_id=item.id,
        )

    def _reject(
        self,
        session,
        case: Case,
        enterprise: Enterprise,
        item: FundItem,
        config: dict,
        *,
        key: str,
        actor: str,
        reason: str,
        data: dict | None = None,
    ) -> None:
        """Close the case as rejected with its reason, and tell the enterprise why (the 不足之处)."""
        case.outcome_reason = reason
        cases.record(
            session=session,
            case=case,
            key=key,
            kind=EventKind.REJECTED,
            actor=actor,
            to_status=CaseStatus.REJECTED,
            reason=reason,
            data=data,
        )
        self._notify(session, case, enterprise, item, "rejected", {"reasons": reason, "officer": _officer(config)})

    def _calendar(self, session) -> WorkCalendar:
        """The DB calendar, cached briefly; the packaged years are seeded once into an empty database."""
        cached = self._calendar_cache
        if cached and _time.monotonic() - cached[0] < CALENDAR_TTL_SECONDS:
            return cached[1]
        if not calendar_repo.loaded_years(session=session):
            calendar_repo.seed_from_chinese_calendar(session=session)
        calendar = calendar_repo.load_calendar(session=session)
        self._calendar_cache = (_time.monotonic(), calendar)
        return calendar

    def _deadline(
        self, session, now: datetime, days: int, remind_days: int = 0
    ) -> tuple[datetime, datetime | None, bool, date]:
        """Due at the end of the n-th working day (local time) after `now`; the reminder at 9:00 of a working
        day `remind_days` before it. Provisional when a year without holiday data was crossed."""
        d = stage_deadline(self._calendar(session), local_date(now), days, remind_days, now=now, tz=LOCAL_TZ)
        remind_at = d.remind_at.astimezone(UTC) if d.remind_at else None
        return d.due_at.astimezone(UTC), remind_at, d.provisional, d.due_day

    @staticmethod
    def _money(amount_fen: int) -> dict[str, str]:
        return {"amount_caps": to_capitals(amount_fen), "amount": format_yuan(amount_fen)}

    # -- activities ----------------------------------------------------------------------------------------

    @activity.defn
    def record_received(self, ref: CaseRef) -> None:
        """The 受理 event and notice (the API creates the case; this makes the timeline start)."""
        with transaction(self.db_url) as session:
            case, enterprise, item, _ = self._load(session, ref.case_id)
            self._received(session, case, enterprise, item)

    @activity.defn
    def accept_instant(self, ref: CaseRef) -> InstantDecision:
        """即时审批: 受理, rules check and budget reservation in one transaction (each still its own event and notice).

        One unit of work instead of three keeps an instant case's database and worker cost low; it is as
        idempotent as the three steps are, by their event keys.
        """
        # No autoflush: the case's status, amount and evidence are written by one UPDATE when the unit of work
        # commits, not once per step (every UPDATE of a case runs the cockpit's summary triggers).
        with transaction(self.db_url) as session, session.no_autoflush:
            case, enterprise, item, config = self._load(session, ref.case_id)
            return self._accept(session, case, enterprise, item, config)

    def _accept(self, session, case: Case, enterprise: Enterprise, item: FundItem, config: dict) -> InstantDecision:
        self._received(session, case, enterprise, item)
        checked = self._check(session, case, enterprise, item, config)
        if not checked.eligible:
            return InstantDecision(eligible=False, amount_fen=checked.amount_fen, unmet=checked.unmet)
        reserved = self._reserve(session, case, enterprise, item, config)
        return InstantDecision(
            eligible=True, amount_fen=checked.amount_fen, reserved=reserved.reserved, reason=reserved.reason
        )

    def _received(self, session, case: Case, enterprise: Enterprise, item: FundItem) -> None:
        cases.record(
            session=session,
            case=case,
            key="received",
            kind=EventKind.RECEIVED,
            actor=SystemActor.WORKFLOW,
            reason="申报已受理",
            to_status=None,
        )
        # Review cases are examined by departments within time limits, not checked automatically.
        template = "received_review" if case.mode == FundItemMode.REVIEW else "received"
        self._notify(session, case, enterprise, item, "received", {}, template=template)

    def _check(self, session, case: Case, enterprise: Enterprise, item: FundItem, config: dict) -> EligibilityResult:
        """Rules check against the archive; the values used are frozen into the case as evidence."""
        facts = facts_of(enterprise)
        conditions, standard = _parsed(config)
        evaluation = evaluate(conditions, facts)
        amount = compute_amount(standard, facts)
        eligible = evaluation.eligible and amount.amount_fen > 0
        unmet = evaluation.unmet_texts() or ([] if amount.amount_fen > 0 else [amount.explanation])
        case.evidence = {
            "checked_at": datetime.now(UTC).isoformat(),
            "conditions": [r.model_dump(mode="json") for r in evaluation.items],
            "amount": amount.explanation,
            "provenance": enterprise.provenance or {},  # each fact's source, source date and import (issue 18)
        }
        if eligible:
            case.amount_fen = amount.amount_fen
            cases.record(
                session=session,
                case=case,
                key="checked",
                kind=EventKind.APPROVED,
                actor=SystemActor.RULES,
                to_status=CaseStatus.APPROVED,
                reason="规则核验通过",
                data={"amount_fen": amount.amount_fen},
            )
            self._notify(session, case, enterprise, item, "approved", self._money(amount.amount_fen))
        else:
            self._reject(
                session,
                case,
                enterprise,
                item,
                config,
                key="checked",
                actor=SystemActor.RULES,
                reason="；".join(unmet),
                data={"unmet": unmet},
            )
        return EligibilityResult(eligible=eligible, amount_fen=amount.amount_fen, unmet=unmet)

    def _reserve(self, session, case: Case, enterprise: Enterprise, item: FundItem, config: dict) -> ReserveResult:
        """Reserve the case amount; exhaustion rejects the case with a notice."""
        try:
            budget.reserve(session=session, fund_item_id=item.id, case_id=case.id, amount_fen=case.amount_fen or 0)
        except budget.BudgetExhausted:
            reason = "本资金事项预算额度已用完"
            self._reject(
                session, case, enterprise, item, config, key="reserve", actor=SystemActor.BUDGET, reason=reason
            )
            return ReserveResult(reserved=False, reason=reason)
        cases.record(
            session=session,
            case=case,
            key="reserve",
            kind=EventKind.BUDGET_RESERVED,
            actor=SystemActor.BUDGET,
            to_status=CaseStatus.RESERVED,
            data={"amount_fen": case.amount_fen},
        )
        return ReserveResult(reserved=True)

    @activity.defn
    def send_payment(self, req: PaymentRequest) -> PaymentState:
        """Create the instruction once, then send it; the treasury deduplicates a resend by VoucherNo."""
        with transaction(self.db_url) as session:
            case, enterprise, item, config = self._load(session, req.case_id)
            if not enterprise.bank_account_enc:
                raise ApplicationError("enterprise has no payout account", non_retryable=True, type="NoAccount")
            message, status = self._prepare_send(session, req, case, enterprise, item, config)
        # The HTTP call happens outside the transaction: the instruction row is committed first.
        return self._submit(req, message, status)

    def _prepare_send(
        self, session, req: PaymentRequest, case: Case, enterprise: Enterprise, item: FundItem, config: dict
    ) -> tuple[InstructionMessage, str]:
        """The attempt's instruction, created once with its payment_sent event; the signed message to send."""
        account = crypto.decrypt(self.fernet_key, enterprise.bank_account_enc)
        instruction = payments.get_or_create(
            session=session,
            case_id=case.id,
            attempt=req.attempt,
            adm_div_code=self.adm_div_code,
            st_year=local_date(datetime.now(UTC)).year,  # the budget year is the local one (StYear)
            pay_acct_no=self.pay_acct_no,
            payee_acct_no_enc=enterprise.bank_account_enc,
            payee_acct_no_masked=enterprise.bank_account_masked,
            payee_acct_name=enterprise.bank_account_name or enterprise.name,
            payee_acct_bank_name=enterprise.bank_name or "",
            payee_acct_bank_no=enterprise.bank_code or "",
            pay_amt_fen=case.amount_fen,
            pay_summary_code=config.get("pay_summary_code", "30307"),
            fund_source=config.get("fund_source", "市级财政"),
        )
        if req.attempt == 1 or case.status != CaseStatus.PAYING:
            cases.record(
                session=session,
                case=case,
                key=f"paying:{req.attempt}",
                kind=EventKind.PAYMENT_SENT,
                actor=SystemActor.WORKFLOW,
                to_status=CaseStatus.PAYING,
                data={"voucher_no": instruction.voucher_no},
            )
        message = InstructionMessage(
            VoucherNo=instruction.voucher_no,
            AdmDivCode=instruction.adm_div_code,
            StYear=instruction.st_year,
            PayAcctNo=instruction.pay_acct_no,
            PayAcctName=self.pay_acct_name,
            PayeeAcctNo=account,
            PayeeAcctName=instruction.payee_acct_name,
            PayeeAcctBankName=instruction.payee_acct_bank_name,
            PayeeAcctBankNo=instruction.payee_acct_bank_no,
            PayAmt=instruction.pay_amt_fen,
            PaySummaryCode=instruction.pay_summary_code,
            PaySummaryName=item.name[:60],
            FundSource=instruction.fund_source,
            NotifyUrl=self.notify_url,
            Details=details_from_config(config, instruction.pay_amt_fen),  # one DetailList line per source
        )
        return message, instruction.status

    def _submit(self, req: PaymentRequest, message: InstructionMessage, status: str) -> PaymentState:
        """Send a committed instruction (unless its result is already final) and store the answer."""
        if PaymentStatus(status).is_final:
            return self._state(req)
        try:
            result = self.treasury.submit(message)
        except TreasuryRejected as exc:
            raise ApplicationError(str(exc), non_retryable=True, type="TreasuryRejected") from exc
        except TreasuryUnavailable as exc:
            raise ApplicationError(str(exc), type="TreasuryUnavailable") from exc
        return self._store(result, req)

    @activity.defn
    def accept_and_send(self, ref: CaseRef) -> InstantDecision:
        """accept_instant and, for a reserved case, the first try of its payment (send_payment) in one local activity:
        受理, rules, reservation, the instruction and its payment_sent event in one transaction, then the send.

        A send that fails does not fail the activity (the acceptance is committed): `send_error` names why
        (NoAccount and TreasuryRejected are refusals), and the workflow sends again with the durable activity,
        which retries an outage with backoff; the treasury deduplicates by VoucherNo."""
        req = PaymentRequest(case_id=ref.case_id, attempt=1)
        with transaction(self.db_url) as session, session.no_autoflush:
            case, enterprise, item, config = self._load(session, ref.case_id)
            decision = self._accept(session, case, enterprise, item, config)
            if not (decision.eligible and decision.reserved):
                return decision
            if not enterprise.bank_account_enc:
                return decision.model_copy(update={"send_error": "NoAccount"})
            message, status = self._prepare_send(session, req, case, enterprise, item, config)
        try:
            sent = self._submit(req, message, status)
        except ApplicationError as exc:
            return decision.model_copy(update={"send_error": exc.type or "TreasuryUnavailable", "send_reason": str(exc)})
        except Exception as exc:  # any other failure of the fast try: the durable activity sends again
            activity.logger.warning("fast send failed: %s", exc)
            return decision.model_copy(update={"send_error": type(exc).__name__, "send_reason": str(exc)[:500]})
        return decision.model_copy(update={"sent": sent})

    @activity.defn
    def query_payment(self, req: PaymentRequest) -> PaymentState:
        """Polling fallback when no callback arrived in time."""
        voucher = payments.voucher_no(case_id=req.case_id, attempt=req.attempt)
        try:
            result = self.treasury.query(voucher)
        except TreasuryUnavailable as exc:
            raise ApplicationError(str(exc), type="TreasuryUnavailable") from exc
        if result is not None:
            return self._store(result, req)
        return self._state(req)

    @activity.defn
    def payment_state(self, req: PaymentRequest) -> PaymentState:
        return self._state(req)

    @activity.defn
    def settle_case(self, req: PaymentRequest) -> PaymentState:
        """Commit the budget of a paid attempt and close the case with its notice."""
        with transaction(self.db_url) as session:
            voucher = payments.voucher_no(case_id=req.case_id, attempt=req.attempt)
            instruction = payments.get(session=session, voucher=voucher)
            assert instruction is not None and instruction.status == PaymentStatus.PAID, voucher
            self._settle(session, req, instruction)
            return self._state_of(instruction)

    @activity.defn
    def settle_if_paid(self, req: PaymentRequest) -> PaymentState:
        """After the result signal: the stored result (payment_state) and, when it is paid, the settlement
        (settle_case) in the same unit of work, so a paid case costs one local activity and one transaction less.
        `settled` tells the workflow that settle_case has nothing left to do."""
        with transaction(self.db_url) as session:
            voucher = payments.voucher_no(case_id=req.case_id, attempt=req.attempt)
            instruction = payments.get(session=session, voucher=voucher)
            if instruction is None:
                return PaymentState(voucher_no=voucher, status=PaymentStatus.CREATED)
            if instruction.status != PaymentStatus.PAID:
                return self._state_of(instruction)
            self._settle(session, req, instruction)
            return self._state_of(instruction).model_copy(update={"settled": True})

    def _settle(self, session, req: PaymentRequest, instruction) -> None:
        with session.no_autoflush:  # the case's paid amount and status in one UPDATE at commit (see accept_instant)
            self._settle_case(session, req, instruction)

    def _settle_case(self, session, req: PaymentRequest, instruction) -> None:
        case, enterprise, item, _config = self._load(session, req.case_id)
        voucher = instruction.voucher_no
        budget.commit(session=session, case_id=case.id, attempt=req.attempt)
        case.paid_fen = instruction.paid_amt_fen
        cases.record(
            session=session,
            case=case,
            key=f"paid:{req.attempt}",
            kind=EventKind.PAID,
            actor=SystemActor.TREASURY,
            to_status=CaseStatus.PAID,
            reason="国库支付成功",
            data={"voucher_no": voucher, "paid_amt_fen": instruction.paid_amt_fen, "attempt": req.attempt},
        )
        tail = instruction.payee_acct_no_masked[-4:]
        self._notify(
            session,
            case,
            enterprise,
            item,
            "paid",
            self._money(instruction.paid_amt_fen) | {"acct_tail": tail},
            key_suffix="" if req.attempt == 1 else f":{req.attempt}",
        )

    @activity.defn
    def reserve_attempt(self, step: PaymentStep) -> ReserveResult:
        """Reserve the case amount again for a new payment attempt (after a correction)."""
        with transaction(self.db_url) as session:
            case, _, item, _ = self._load(session, step.case_id)
            try:
                budget.reserve(
                    session=session,
                    fund_item_id=item.id,
                    case_id=case.id,
                    amount_fen=case.amount_fen or 0,
                    attempt=step.attempt,
                )
            except budget.BudgetExhausted:
                return ReserveResult(reserved=False, reason="本资金事项预算额度已用完")
            cases.record(
                session=session,
                case=case,
                key=f"reserve:{step.attempt}",
                kind=EventKind.BUDGET_RESERVED,
                actor=SystemActor.BUDGET,
                data={"amount_fen": case.amount_fen, "attempt": step.attempt},
            )
            return ReserveResult(reserved=True)

    @activity.defn
    def open_correction(self, step: PaymentStep) -> CorrectionOpened:
        """A failed or returned attempt: settle its budget, record the return, ask for a corrected account.

        Same-year return of a committed payment restores the quota; a cross-year one goes back to finance
        (no restore) and needs a new budget decision; an attempt never committed releases its reservation.
        """
        assert step.now is not None
        with transaction(self.db_url) as session:
            case, enterprise, item, _config = self._load(session, step.case_id)
            voucher = payments.voucher_no(case_id=case.id, attempt=step.attempt)
            instruction = payments.get(session=session, voucher=voucher)
            status = PaymentStatus(instruction.status) if instruction else PaymentStatus.FAILED
            reason = (
                (instruction.return_reason or instruction.fail_reason) if instruction else "企业未登记收款账户"
            ) or ("银行退票" if status == PaymentStatus.RETURNED else "银行拒绝支付")
            cross_year = False
            committed = any(
                e.kind == BudgetEntryKind.COMMIT and e.attempt == step.attempt
                for e in budget.entries(session=session, case_id=case.id)
            )
            if status == PaymentStatus.RETURNED and instruction is not None:
                returned_on = local_date(instruction.returned_at or datetime.now(UTC))
                year = budget.line_year(session=session, case_id=case.id, attempt=step.attempt) or instruction.st_year
                cross_year = returned_on.year > year
                if committed and not cross_year:
                    budget.restore(session=session, case_id=case.id, attempt=step.attempt)
                    handling = ReturnHandling.RESTORED
                elif committed:
                    handling = ReturnHandling.BACK_TO_FINANCE
                else:
                    budget.release(session=session, case_id=case.id, attempt=step.attempt)
                    handling = ReturnHandling.RELEASED
                amount = instruction.returned_amt_fen or instruction.paid_amt_fen or instruction.pay_amt_fen
                reviews.record_return(
                    session=session,
                    voucher_no=voucher,
                    case_id=case.id,
                    attempt=step.attempt,
                    kind=instruction.return_kind or ReturnKind.PASSIVE,
                    reason=reason,
                    amount_fen=amount,
                    returned_on=returned_on,
                    budget_year=year,
                    handling=handling,
                )
                case.paid_fen = max(0, (case.paid_fen or 0) - (amount if committed else 0))
            else:
                budget.release(session=session, case_id=case.id, attempt=step.attempt)
            due_at, remind_at, provisional, due_day = self._deadline(
                session, step.now, CORRECTION_WORKING_DAYS, remind_days=1
            )
            cases.record(
                session=session,
                case=case,
                key=f"correction:{step.attempt}",
                kind=EventKind.CORRECTION_REQUESTED,
                actor=SystemActor.TREASURY,
                to_status=CaseStatus.AWAITING_CORRECTION,
                reason=reason,
                data={
                    "voucher_no": voucher,
                    "status": status,
                    "due_at": due_at.isoformat(),
                    "provisional": provisional,
                    "cross_year": cross_year,
                },
            )
            self._notify(
                session,
                case,
                enterprise,
                item,
                # Without an account no instruction was sent: say so, not that a bank returned the money.
                "payment_returned",
                {"amount_caps": to_capitals(case.amount_fen or 0), "reason": reason, "deadline": format_date(due_day)},
                key_suffix=f":{step.attempt}",
                template=None if instruction else "payment_no_account",
            )
            return CorrectionOpened(
                attempt=step.attempt,
                voucher_no=voucher,
                due_at=due_at,
                remind_at=remind_at,
                cross_year=cross_year,
                status=status,
                reason=reason,
            )

    @activity.defn
    def record_account_corrected(self, step: PaymentStep) -> None:
        """The enterprise corrected its account (stored by the API); the next attempt uses it."""
        with transaction(self.db_url) as session:
            case, enterprise, _, _ = self._load(session, step.case_id)
            cases.record(
                session=session,
                case=case,
                key=f"account_corrected:{step.attempt}",
                kind=EventKind.ACCOUNT_CORRECTED,
                actor=step.actor or actor(ActorKind.ENTERPRISE, enterprise.uscc),
                reason="企业已更正收款账户",
                data={"acct_masked": enterprise.bank_account_masked, "next_attempt": step.attempt + 1},
            )

    @activity.defn
    def record_event(self, rec: EventRecord) -> None:
        """One event the workflow knows whole: no other state changes with it (but its audit record, if any)."""
        with transaction(self.db_url) as session:
            case, _, _, _ = self._load(session, rec.case_id)
            created = cases.record(
                session=session,
                case=case,
                key=rec.key,
                kind=rec.kind,
                actor=rec.actor,
                to_status=rec.to_status,
                reason=rec.reason,
                data=rec.data,
            )
            if created and rec.audit is not None:
                audit.record_note(session=session, note=rec.audit)

    @activity.defn
    def fail_payment(self, step: PaymentStep) -> None:
        """Final failure: release what is still reserved, close the case as payment_failed, tell the enterprise."""
        with transaction(self.db_url) as session:
            case, enterprise, item, config = self._load(session, step.case_id)
            open_attempt = budget.open_reservation(session=session, case_id=case.id)
            if open_attempt is not None:
                budget.release(session=session, case_id=case.id, attempt=open_attempt)
            reason = step.reason or "支付失败"
            case.outcome_reason = reason
            cases.record(
                session=session,
                case=case,
                key="payment_failed",
                kind=EventKind.PAYMENT_FAILED,
                actor=SystemActor.TREASURY,
                to_status=CaseStatus.PAYMENT_FAILED,
                reason=reason,
                data={"attempt": step.attempt},
            )
            self._notify(
                session, case, enterprise, item, "payment_failed", {"reason": reason, "officer": _officer(config)}
            )

    @activity.defn
    def correction_check(self, inp: CorrectionInput) -> CorrectionCheck:
        """A correction applies to the case's latest attempt when it ended failed or returned."""
        with transaction(self.db_url) as session:
            case, _, _, config = self._load(session, inp.case_id)
            instruction = payments.get(session=session, voucher=inp.voucher_no)
            if instruction is None or instruction.case_id != case.id:
                return CorrectionCheck(applicable=False, reason="支付凭证不属于该办件")
            latest = max((p.attempt for p in payments.for_case(session=session, case_id=case.id)), default=0)
            if instruction.attempt != latest:
                return CorrectionCheck(applicable=False, reason="该凭证之后已有新的支付")
            if instruction.status not in (PaymentStatus.FAILED, PaymentStatus.RETURNED):
                return CorrectionCheck(applicable=False, reason=f"支付凭证状态为 {instruction.status}")
            failed = instruction.status == PaymentStatus.FAILED
            kind = PaymentStatus.FAILED if failed else (instruction.return_kind or ReturnKind.PASSIVE)
            finance = (config.get("approval") or {}).get("finance") or {}
            committed = any(
                e.kind == BudgetEntryKind.COMMIT and e.attempt == instruction.attempt
                for e in budget.entries(session=session, case_id=case.id)
            )
            return CorrectionCheck(
                applicable=True,
                attempt=instruction.attempt,
                kind=kind,
                finance_department=finance.get("department", ""),
                committed=committed,
            )

    @activity.defn
    def record_active_return(self, step: PaymentStep) -> None:
        """The payee sent the money back (主动退回): record it, restore a same-year quota, close the case."""
        with transaction(self.db_url) as session:
            case, _, _, _ = self._load(session, step.case_id)
            voucher = payments.voucher_no(case_id=case.id, attempt=step.attempt)
            instruction = payments.get(session=session, voucher=voucher)
            assert instruction is not None
            returned_on = local_date(instruction.returned_at or datetime.now(UTC))
            year = budget.line_year(session=session, case_id=case.id, attempt=step.attempt) or instruction.st_year
            cross_year = returned_on.year > year
            restored = None if cross_year else budget.restore(session=session, case_id=case.id, attempt=step.attempt)
            amount = instruction.returned_amt_fen or instruction.paid_amt_fen
            reviews.record_return(
                session=session,
                voucher_no=voucher,
                case_id=case.id,
                attempt=step.attempt,
                kind=ReturnKind.ACTIVE,
                reason=instruction.return_reason or "收款单位主动退回",
                amount_fen=amount,
                returned_on=returned_on,
                budget_year=year,
                handling=ReturnHandling.BACK_TO_FINANCE
                if cross_year
                else (ReturnHandling.RESTORED if restored else ReturnHandling.RECORDED),
            )
            case.paid_fen = max(0, (case.paid_fen or 0) - amount)
            cases.record(
                session=session,
                case=case,
                key=f"refunded:{step.attempt}",
                kind=EventKind.REFUNDED,
                actor=SystemActor.TREASURY,
                to_status=CaseStatus.REFUNDED,
                reason=instruction.return_reason or "收款单位主动退回资金",
                data={"voucher_no": voucher, "amount_fen": amount, "cross_year": cross_year},
            )

    @activity.defn
    def note_stage(self, note: StageNote) -> None:
        """A reminder or a timeout as a case event; enterprise reminders also send an SMS."""
        with transaction(self.db_url) as session:
            case, enterprise, item, _ = self._load(session, note.case_id)
            reason = {
                "reminder": "办理时限即将届满，已提醒办理部门",
                "enterprise_reminder": f"{note.task}时限即将届满，已短信提醒企业",
                "timeout": f"办理时限已届满，按配置处理：{note.policy}",
            }[note.kind]
            cases.record(
                session=session,
                case=case,
                key=f"{note.kind}:{note.stage_key}:{note.round}" + (":escalated" if note.escalated else ""),
                kind=EventKind(f"stage_{note.kind}"),
                actor=SystemActor.WORKFLOW,
                reason=reason,
                data={
                    "stage_key": note.stage_key,
                    "round": note.round,
                    "pending": note.pending,
                    "policy": note.policy or None,
                    "escalated": note.escalated,
                    "due_at": note.due_at.isoformat() if note.due_at else None,
                },
            )
            if note.kind == "reminder":
                reviews.mark_reminded(session=session, case_id=case.id, stage_key=note.stage_key, round_=note.round)
            if note.kind == "enterprise_reminder" and note.due_at is not None:
                due_day = (to_local(note.due_at) - timedelta(seconds=1)).date()
                self._notify(
                    session,
                    case,
                    enterprise,
                    item,
                    "deadline_reminder",
                    {"task": note.task, "deadline": format_date(due_day)},
                    key_suffix=f":{note.stage_key}:{note.round}",
                )

    # -- internals -----------------------------------------------------------------------------------------

    def _store(self, result: InstructionResult, req: PaymentRequest) -> PaymentState:
        """Store a treasury answer and return the attempt's state from the same unit of work."""
        with transaction(self.db_url) as session:
            payments.store_result(session=session, result=result)
            voucher = payments.voucher_no(case_id=req.case_id, attempt=req.attempt)
            instruction = payments.state(session=session, voucher=voucher)
            if instruction is None:
                return PaymentState(voucher_no=voucher, status=PaymentStatus.CREATED)
            return self._state_of(instruction)

    def _state(self, req: PaymentRequest) -> PaymentState:
        with reading(self.db_url) as session:
            voucher = payments.voucher_no(case_id=req.case_id, attempt=req.attempt)
            instruction = payments.state(session=session, voucher=voucher)
            if instruction is None:
                return PaymentState(voucher_no=voucher, status=PaymentStatus.CREATED)
            return self._state_of(instruction)

    @staticmethod
    def _state_of(instruction) -> PaymentState:
        return PaymentState(
            voucher_no=instruction.voucher_no,
            status=instruction.status,
            paid_amt_fen=instruction.paid_amt_fen,
            reason=instruction.fail_reason,
        )


def _officer(config: dict) -> str:
    return config.get("officer", "主管部门")


class WorkflowProbe:
    """Asks Temporal whether a case's own workflow still runs (it then handles its payments itself)."""

    def __init__(self, *, client: Client, db_url: str) -> None:
        self.client = client
        self.db_url = db_url

    def _workflow_id(self, case_id: int) -> str | None:
        with transaction(self.db_url) as session:
            case = cases.get(session=session, case_id=case_id)
            return case.workflow_id if case else None

    @activity.defn
    async def case_workflow_running(self, ref: CaseRef) -> bool:
        workflow_id = await asyncio.to_thread(self._workflow_id, ref.case_id)
        if not workflow_id:
            return False
        try:
            description = await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return description.status == WorkflowExecutionStatus.RUNNING
