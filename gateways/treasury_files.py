"""The treasury over ISO 20022 files (the bank-file channel many treasuries still use).

Zhida writes pain.001.001.03 credit-transfer batches into `folder/pain001`; the treasury answers with
pain.002.001.03 status reports (accepted, then paid or rejected per line) and camt.054.001.02 credit
notifications for returns into `folder/reports`. How the folders travel (SFTP, a shared disk) is outside
this adapter. Same interface as the HTTP adapter (gateways.treasury.TreasuryGateway).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from gateways import iso20022
from gateways.iso20022 import TxStatus
from schemas.treasury import BatchItemResult, InstructionResult, PaymentInstruction
from schemas.vocabulary import PaymentStatus

_RANK = {PaymentStatus.ACCEPTED: 0, PaymentStatus.PAID: 1, PaymentStatus.FAILED: 1, PaymentStatus.RETURNED: 2}


class FileTreasuryGateway:
    """Writes pain.001 files and reads pain.002 / camt.054 reports; thread-safe, parses each report once."""

    def __init__(self, folder: Path, *, initiating_party: str = "财政国库集中支付") -> None:
        self.outbox = folder / "pain001"
        self.inbox = folder / "reports"
        self.initiating_party = initiating_party
        self._lock = threading.Lock()
        self._parsed: dict[str, list[TxStatus]] = {}

    def submit(self, instruction: PaymentInstruction) -> InstructionResult:
        """Send one instruction (a one-line pain.001); its current result when already reported."""
        [item] = self.submit_batch([instruction])
        assert item.Result is not None
        return item.Result

    def submit_batch(self, instructions: Sequence[PaymentInstruction]) -> list[BatchItemResult]:
        """Write the not-yet-known instructions as one pain.001; known ones answer with their reported result."""
        known = self.query_many([i.VoucherNo for i in instructions])
        fresh = [i for i in instructions if i.VoucherNo not in known]
        now = datetime.now(UTC)
        if fresh:
            msg_id = f"ZD{now.strftime('%Y%m%d%H%M%S')}{secrets.token_hex(6).upper()}"
            document = iso20022.build_pain001(
                [i.model_copy(update={"NotifyUrl": None}) for i in fresh],
                msg_id=msg_id,
                created_at=now,
                initiating_party=self.initiating_party,
            )
            self.outbox.mkdir(parents=True, exist_ok=True)
            tmp = self.outbox / f".{msg_id}.xml.part"
            tmp.write_bytes(document)
            tmp.replace(self.outbox / f"{msg_id}.xml")  # atomic: the treasury never reads half a file
        out: list[BatchItemResult] = []
        for instruction in instructions:
            result = known.get(instruction.VoucherNo)
            if result is not None:
                out.append(BatchItemResult(VoucherNo=instruction.VoucherNo, Outcome="duplicate", Result=result))
            else:
                pending = InstructionResult(VoucherNo=instruction.VoucherNo, Status="accepted", PaidAmt=0, AcceptedAt=now)
                out.append(BatchItemResult(VoucherNo=instruction.VoucherNo, Outcome="accepted", Result=pending))
        return out

    def query(self, voucher_no: str) -> InstructionResult | None:
        return self.query_many([voucher_no]).get(voucher_no)

    def query_many(self, voucher_nos: Sequence[str]) -> dict[str, InstructionResult]:
        """Results folded from every report received so far; a voucher never reported is left out."""
        wanted = set(voucher_nos)
        events: dict[str, list[TxStatus]] = {}
        for line in self._lines():
            if line.voucher_no in wanted:
                events.setdefault(line.voucher_no, []).append(line)
        return {voucher: _fold(voucher, lines) for voucher, lines in events.items()}

    def _lines(self) -> list[TxStatus]:
        if not self.inbox.exists():
            return []
        with self._lock:
            for path in sorted(self.inbox.glob("*.xml")):
                if path.name in self._parsed:
                    continue
                data = path.read_bytes()
                if "-camt054-" in path.name:
                    self._parsed[path.name] = iso20022.parse_camt054(data)
                else:
                    self._parsed[path.name] = iso20022.parse_pain002(data)[1]
            return [line for name in sorted(self._parsed) for line in self._parsed[name]]


def _fold(voucher_no: str, lines: list[TxStatus]) -> InstructionResult:
    """One result from a voucher's reports, in protocol order: a later report never moves it backwards."""
    accepted = next((x for x in lines if x.status == PaymentStatus.ACCEPTED), None)
    settled = next((x for x in lines if x.status in (PaymentStatus.PAID, PaymentStatus.FAILED)), None)
    returned = next((x for x in lines if x.status == PaymentStatus.RETURNED), None)
    final = max(lines, key=lambda x: _RANK[x.status])
    ref = next((x.treasury_ref for x in lines if x.treasury_ref), "")
    accepted_at = (accepted or settled or final).at or datetime.now(UTC)
    if final.status == PaymentStatus.ACCEPTED:
        return InstructionResult(VoucherNo=voucher_no, Status=PaymentStatus.ACCEPTED, PaidAmt=0, TreasuryRef=ref, AcceptedAt=accepted_at)
    if final.status == PaymentStatus.RETURNED:
        assert returned is not None
        return InstructionResult(
            VoucherNo=voucher_no,
            Status=PaymentStatus.RETURNED,
            PaidAmt=0,
            Reason=returned.reason,
            TreasuryRef=ref,
            AcceptedAt=accepted_at,
            SettledAt=(settled.at if settled else None) or returned.at,
            ReturnType=returned.return_type or "passive",
            ReturnedAmt=returned.amount_fen,
            ReturnedAt=returned.at,
        )
    assert settled is not None
    return InstructionResult(
        VoucherNo=voucher_no,
        Status=settled.status,
        PaidAmt=settled.amount_fen if settled.status == PaymentStatus.PAID else 0,
        Reason=settled.reason,
        TreasuryRef=ref,
        AcceptedAt=accepted_at,
        SettledAt=settled.at,
    )
