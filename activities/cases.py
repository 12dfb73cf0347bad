"""Case activities: each is one database transaction (plus at most one gateway call), safe to retry."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import TypeAdapter
from temporalio import activity
from temporalio.exceptions import ApplicationError

from db import crypto
from db.models import Case, Enterprise, FundItem
from db.repositories import budget, cases, enterprises, fund_items, notices, payments
from db.session import transaction
from gateways.treasury import TreasuryGateway, TreasuryRejected, TreasuryUnavailable
from rules.amounts import compute_amount
from rules.conditions import evaluate, facts_of
from rules.money import format_yuan, to_capitals
from rules.notice_templates import render
from schemas.cases import (
    CaseRef,
    EligibilityResult,
    PaymentRequest,
    PaymentState,
    ReserveResult,
)
from schemas.conditions import Condition
from schemas.standards import Standard
from schemas.treasury import InstructionResult
from schemas.treasury import PaymentInstruction as InstructionMessage

ACTOR = "system:workflow"
_conditions = TypeAdapter(Condition)
_standards = TypeAdapter(Standard)


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

    # -- helpers -------------------------------------------------------------------------------------------

    def _load(self, session, case_id: int) -> tuple[Case, Enterprise, FundItem, dict]:
        case = cases.get(session=session, case_id=case_id)
        if case is None:
            raise ApplicationError(f"case {case_id} not found", non_retryable=True)
        enterprise = enterprises.get(session=session, enterprise_id=case.enterprise_id)
        item = fund_items.get(session=session, fund_item_id=case.fund_item_id)
        version = fund_items.version(session=session, fund_item_id=case.fund_item_id, number=case.fund_item_version)
        assert enterprise and item and version
        return case, enterprise, item, version.config

    def _notify(
        self,
        session,
        case: Case,
        enterprise: Enterprise,
        item: FundItem,
        stage: str,
        extra: dict[str, str],
        key_suffix: str = "",
    ) -> None:
        params = {"enterprise": enterprise.name, "item": item.name, "case_no": f"ZD{case.id:010d}"} | extra
        notices.enqueue(
            session=session,
            dedupe_key=f"case:{case.id}:{stage}{key_suffix}",
            enterprise_id=enterprise.id,
            case_id=case.id,
            template_key=stage,
            params=params,
            content=render(stage, params),
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
            kind="rejected",
            actor=actor,
            to_status="rejected",
            reason=reason,
            data=data,
        )
        self._notify(session, case, enterprise, item, "rejected", {"reasons": reason, "officer": _officer(config)})

    @staticmethod
    def _money(amount_fen: int) -> dict[str, str]:
        return {"amount_caps": to_capitals(amount_fen), "amount": format_yuan(amount_fen)}

    # -- activities ----------------------------------------------------------------------------------------

    @activity.defn
    def record_received(self, ref: CaseRef) -> None:
        """The 受理 event and notice (the API creates the case; this makes the timeline start)."""
        with transaction(self.db_url) as session:
            case, enterprise, item, _ = self._load(session, ref.case_id)
            _, _new = cases.record(
                session=session,
                case=case,
                key="received",
                kind="received",
                actor=ACTOR,
                reason="申报已受理",
                to_status=None,
            )
            self._notify(session, case, enterprise, item, "received", {})

    @activity.defn
    def check_eligibility(self, ref: CaseRef) -> EligibilityResult:
        """Rules check against the archive; the values used are frozen into the case as evidence."""
        with transaction(self.db_url) as session:
            case, enterprise, item, config = self._load(session, ref.case_id)
            facts = facts_of(enterprise)
            evaluation = evaluate(_conditions.validate_python(config["conditions"]), facts)
            amount = compute_amount(_standards.validate_python(config["standard"]), facts)
            eligible = evaluation.eligible and amount.amount_fen > 0
            unmet = evaluation.unmet_texts() or ([] if amount.amount_fen > 0 else [amount.explanation])
            case.evidence = {
                "checked_at": datetime.now(UTC).isoformat(),
                "conditions": [r.model_dump(mode="json") for r in evaluation.items],
                "amount": amount.explanation,
            }
            if eligible:
                case.amount_fen = amount.amount_fen
                cases.record(
                    session=session,
                    case=case,
                    key="checked",
                    kind="approved",
                    actor="system:rules",
                    to_status="approved",
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
                    actor="system:rules",
                    reason="；".join(unmet),
                    data={"unmet": unmet},
                )
            return EligibilityResult(eligible=eligible, amount_fen=amount.amount_fen, unmet=unmet)

    @activity.defn
    def reserve_budget(self, ref: CaseRef) -> ReserveResult:
        """Reserve the case amount; exhaustion rejects the case with a notice."""
        with transaction(self.db_url) as session:
            case, enterprise, item, config = self._load(session, ref.case_id)
            try:
                budget.reserve(session=session, fund_item_id=item.id, case_id=case.id, amount_fen=case.amount_fen or 0)
            except budget.BudgetExhausted:
                reason = "本资金事项预算额度已用完"
                self._reject(
                    session, case, enterprise, item, config, key="reserve", actor="system:budget", reason=reason
                )
                return ReserveResult(reserved=False, reason=reason)
            cases.record(
                session=session,
                case=case,
                key="reserve",
                kind="budget_reserved",
                actor="system:budget",
                to_status="reserved",
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
            account = crypto.decrypt(self.fernet_key, enterprise.bank_account_enc)
            instruction = payments.get_or_create(
                session=session,
                case_id=case.id,
                attempt=req.attempt,
                adm_div_code=self.adm_div_code,
                st_year=datetime.now(UTC).year,
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
            if req.attempt == 1 or case.status != "paying":
                cases.record(
                    session=session,
                    case=case,
                    key=f"paying:{req.attempt}",
                    kind="payment_sent",
                    actor=ACTOR,
                    to_status="paying",
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
            )
            status = instruction.status
        # The HTTP call happens outside the transaction: the instruction row is committed first.
        if status in payments.FINAL:
            return self._state(req)
        try:
            result = self.treasury.submit(message)
        except TreasuryRejected as exc:
            raise ApplicationError(str(exc), non_retryable=True, type="TreasuryRejected") from exc
        except TreasuryUnavailable as exc:
            raise ApplicationError(str(exc), type="TreasuryUnavailable") from exc
        self._store(result)
        return self._state(req)

    @activity.defn
    def query_payment(self, req: PaymentRequest) -> PaymentState:
        """Polling fallback when no callback arrived in time."""
        voucher = payments.voucher_no(case_id=req.case_id, attempt=req.attempt)
        try:
            result = self.treasury.query(voucher)
        except TreasuryUnavailable as exc:
            raise ApplicationError(str(exc), type="TreasuryUnavailable") from exc
        if result is not None:
            self._store(result)
        return self._state(req)

    @activity.defn
    def payment_state(self, req: PaymentRequest) -> PaymentState:
        return self._state(req)

    @activity.defn
    def settle_case(self, req: PaymentRequest) -> PaymentState:
        """Commit or release the budget for a final result and close the case with its notice."""
        with transaction(self.db_url) as session:
            case, enterprise, item, config = self._load(session, req.case_id)
            voucher = payments.voucher_no(case_id=case.id, attempt=req.attempt)
            instruction = payments.get(session=session, voucher=voucher)
            assert instruction is not None and instruction.status in payments.FINAL
            if instruction.status == "paid":
                budget.commit(session=session, case_id=case.id, attempt=1)
                case.paid_fen = instruction.paid_amt_fen
                cases.record(
                    session=session,
                    case=case,
                    key="paid",
                    kind="paid",
                    actor="system:treasury",
                    to_status="paid",
                    reason="国库支付成功",
                    data={"voucher_no": voucher, "paid_amt_fen": instruction.paid_amt_fen},
                )
                tail = instruction.payee_acct_no_masked[-4:]
                self._notify(
                    session, case, enterprise, item, "paid", self._money(instruction.paid_amt_fen) | {"acct_tail": tail}
                )
            else:
                budget.release(session=session, case_id=case.id, attempt=1)
                case.outcome_reason = instruction.fail_reason
                cases.record(
                    session=session,
                    case=case,
                    key="payment_failed",
                    kind="payment_failed",
                    actor="system:treasury",
                    to_status="payment_failed",
                    reason=instruction.fail_reason,
                    data={"voucher_no": voucher},
                )
                self._notify(
                    session,
                    case,
                    enterprise,
                    item,
                    "payment_failed",
                    {"reason": instruction.fail_reason or "银行退回", "officer": _officer(config)},
                )
            return self._state_of(instruction)

    # -- internals -----------------------------------------------------------------------------------------

    def _store(self, result: InstructionResult) -> None:
        with transaction(self.db_url) as session:
            payments.store_result(session=session, result=result)

    def _state(self, req: PaymentRequest) -> PaymentState:
        with transaction(self.db_url) as session:
            voucher = payments.voucher_no(case_id=req.case_id, attempt=req.attempt)
            instruction = payments.get(session=session, voucher=voucher)
            if instruction is None:
                return PaymentState(voucher_no=voucher, status="created")
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
