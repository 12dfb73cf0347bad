"""The treasury over electronic vouchers (`treasury_channel=voucher`): 财政直接支付凭证 out, receipts (回单) back.

Zhida writes SM2-signed MOF files of 5201 vouchers (gateways.vouchers) into `folder/vouchers`; the treasury answers
with signed receipt files in `folder/receipts`: 受理回执, then a 回单 per payment (paid or failed), and a 退票回单
for a return. A receipt file whose signature or schema fails is set aside in `folder/receipts/rejected` and never
trusted. Same interface as the HTTP and ISO 20022 adapters (gateways.treasury.TreasuryGateway); how the folders
travel (前置机, SFTP) is outside this adapter.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from gateways import vouchers
from gateways.signing import SignatureError, Signer, Verifier
from gateways.treasury import TreasuryRejected
from logs import get_logger
from schemas.localtime import local_date
from schemas.treasury import BatchItemResult, InstructionResult, PaymentInstruction
from schemas.vocabulary import PaymentStatus

log = get_logger("zhida.treasury_vouchers")
_RANK = {PaymentStatus.ACCEPTED: 0, PaymentStatus.PAID: 1, PaymentStatus.FAILED: 1, PaymentStatus.RETURNED: 2}


class VoucherTreasuryGateway:
    """Writes signed 5201 voucher files and reads signed receipt files; thread-safe, reads each file once."""

    def __init__(
        self,
        folder: Path,
        *,
        signer: Signer,
        treasury_verifiers: Mapping[str, Verifier],
        pay_acct_bank_name: str = "国家金库",
    ) -> None:
        self.outbox = folder / "vouchers"
        self.inbox = folder / "receipts"
        self._signer = signer
        self._verifiers = dict(treasury_verifiers)
        self._bank_name = pay_acct_bank_name
        self._lock = threading.Lock()
        self._read: dict[str, list[vouchers.Receipt]] = {}
        self._taken: set[str] = set()

    def submit(self, instruction: PaymentInstruction) -> InstructionResult:
        [item] = self.submit_batch([instruction])
        if item.Result is None:  # the voucher cannot be built: resending the same data cannot succeed
            raise TreasuryRejected(422, item.Reason)
        return item.Result

    def submit_batch(self, instructions: Sequence[PaymentInstruction]) -> list[BatchItemResult]:
        """Write the not-yet-answered instructions as one signed file; answered ones return their receipt's result,
        and one whose voucher cannot be built (missing indicator codes, text outside GBK) is refused alone."""
        known = self.query_many([i.VoucherNo for i in instructions])
        now = datetime.now(UTC)
        documents: list[tuple[str, str, str, int, bytes]] = []
        refused: dict[str, str] = {}
        for i in instructions:
            if i.VoucherNo in known:
                continue
            try:
                document = vouchers.build_payment_voucher(
                    i, vou_date=local_date(now), pay_acct_bank_name=self._bank_name
                )
            except vouchers.VoucherError as exc:
                refused[i.VoucherNo] = str(exc)
                continue
            documents.append((vouchers.VT_PAYMENT, i.VoucherNo, i.AdmDivCode, i.StYear, document))
        if documents:
            data = vouchers.build_file(documents, self._signer)
            name = f"ZD{now.strftime('%Y%m%d%H%M%S')}{secrets.token_hex(6).upper()}"
            self.outbox.mkdir(parents=True, exist_ok=True)
            tmp = self.outbox / f".{name}.xml.part"
            tmp.write_bytes(data)
            tmp.replace(self.outbox / f"{name}.xml")  # atomic: the treasury never reads half a file
        out: list[BatchItemResult] = []
        for instruction in instructions:
            voucher = instruction.VoucherNo
            result = known.get(voucher)
            if result is not None:
                out.append(BatchItemResult(VoucherNo=voucher, Outcome="duplicate", Result=result))
            elif voucher in refused:
                out.append(BatchItemResult(VoucherNo=voucher, Outcome="conflict", Reason=refused[voucher]))
            else:
                pending = InstructionResult(VoucherNo=voucher, Status=PaymentStatus.ACCEPTED, PaidAmt=0, AcceptedAt=now)
                out.append(BatchItemResult(VoucherNo=voucher, Outcome="accepted", Result=pending))
        return out

    def query(self, voucher_no: str) -> InstructionResult | None:
        return self.query_many([voucher_no]).get(voucher_no)

    def query_many(self, voucher_nos: Sequence[str]) -> dict[str, InstructionResult]:
        """Results folded from every trusted receipt so far; a voucher with no receipt is left out."""
        wanted = set(voucher_nos)
        found: dict[str, list[vouchers.Receipt]] = {}
        for receipt in self._receipts():
            if receipt.voucher_no in wanted:
                found.setdefault(receipt.voucher_no, []).append(receipt)
        return {voucher: fold(voucher, receipts) for voucher, receipts in found.items()}

    def take_new_results(self) -> list[InstructionResult]:
        """The current results of the vouchers named in receipt files not taken before (by this process): what
        callbacks carry on the HTTP channel. After a restart every file is new again; results are idempotent."""
        self._receipts()
        with self._lock:
            names = [name for name in sorted(self._read) if name not in self._taken]
            self._taken.update(names)
            named = {r.voucher_no for name in names for r in self._read[name]}
        return list(self.query_many(sorted(named)).values()) if named else []

    def _receipts(self) -> list[vouchers.Receipt]:
        if not self.inbox.exists():
            return []
        with self._lock:
            for path in sorted(self.inbox.glob("*.xml")):
                if path.name in self._read:
                    continue
                try:
                    signed = vouchers.open_file(path.read_bytes(), self._verifiers)
                    self._read[path.name] = [vouchers.parse_receipt(s.document) for s in signed]
                except (vouchers.VoucherError, SignatureError, ValueError) as exc:
                    log.warning("receipt_file_refused", file=path.name, error=str(exc)[:300])
                    rejected = self.inbox / "rejected"
                    rejected.mkdir(exist_ok=True)
                    path.replace(rejected / path.name)
            return [r for name in sorted(self._read) for r in self._read[name]]


def fold(voucher_no: str, receipts: list[vouchers.Receipt]) -> InstructionResult:
    """One result from a voucher's receipts, in protocol order: a later receipt never moves it backwards."""
    accepted = next((r for r in receipts if r.status == PaymentStatus.ACCEPTED), None)
    settled = next((r for r in receipts if r.status in (PaymentStatus.PAID, PaymentStatus.FAILED)), None)
    returned = next((r for r in receipts if r.status == PaymentStatus.RETURNED), None)
    final = max(receipts, key=lambda r: _RANK[r.status])
    ref = final.treasury_ref
    accepted_at = (accepted or settled or final).at
    if final.status == PaymentStatus.ACCEPTED:
        return InstructionResult(
            VoucherNo=voucher_no, Status=PaymentStatus.ACCEPTED, PaidAmt=0, TreasuryRef=ref, AcceptedAt=accepted_at
        )
    if returned is not None:
        return InstructionResult(
            VoucherNo=voucher_no,
            Status=PaymentStatus.RETURNED,
            PaidAmt=0,
            Reason=returned.reason,
            TreasuryRef=ref,
            AcceptedAt=accepted_at,
            SettledAt=settled.at if settled else returned.at,
            ReturnType=returned.return_kind,
            ReturnedAmt=returned.returned_fen,
            ReturnedAt=returned.returned_at or returned.at,
        )
    assert settled is not None
    return InstructionResult(
        VoucherNo=voucher_no,
        Status=settled.status,
        PaidAmt=settled.paid_fen if settled.status == PaymentStatus.PAID else 0,
        Reason=settled.reason,
        TreasuryRef=ref,
        AcceptedAt=accepted_at,
        SettledAt=settled.at,
    )
