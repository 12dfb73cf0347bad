"""The voucher channel: SM2-signed 财政直接支付凭证 files taken from file_dir/vouchers, signed receipts (回单) written
to file_dir/receipts — what the treasury's 前置机 does with the V2.0 layout (gateways.vouchers).

Faults are today's: the ledger settles, fails, returns and reports exactly as for the other channels; a request
fault rule that hits a file's vouchers makes the exchange behave as a busy or timing-out 前置机: `error_5xx`
leaves the file untouched until the next poll, `timeout` takes the vouchers in but sends no 受理回执 (the 回单
follows once they settle). A file whose signature or schema fails is set aside in vouchers/rejected with the reason.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from pydantic import ValidationError
from sqlalchemy import bindparam, or_, select, update

from gateways import vouchers
from gateways.signing import SignatureError, Signer, Verifier
from gateways.sm2 import Sm2Signer, Sm2Verifier
from logs import get_logger
from schemas.treasury import PaymentInstruction
from schemas.vocabulary import PaymentStatus, ReturnKind
from standins.treasury.ledger import Ledger
from standins.treasury.tables import instructions, utc

if TYPE_CHECKING:
    from settings import Settings

log = get_logger("zhida.treasury_sim")
CHANNEL = "voucher"


@dataclass(frozen=True)
class VoucherKeys:
    """The stand-in's SM2 key (it signs receipts) and Zhida's public keys (it verifies vouchers), as hex."""

    private_hex: str
    zhida_public_hexes: Mapping[str, str]
    key_id: str = "treasury-sm2-1"

    @classmethod
    def from_settings(cls, settings: Settings) -> VoucherKeys:
        return cls(
            private_hex=settings.treasury_sm2_private_hex(),
            zhida_public_hexes={settings.sm2_signing_key_id: settings.zhida_sm2_public_hex()},
            key_id=settings.treasury_sm2_signing_key_id,
        )

    def signer(self) -> Signer:
        return Sm2Signer(self.private_hex, self.key_id)

    def verifiers(self) -> dict[str, Verifier]:
        return {key_id: Sm2Verifier(public) for key_id, public in self.zhida_public_hexes.items()}


class VoucherExchange:
    """Reads file_dir/vouchers and writes file_dir/receipts: the voucher channel's requests and answers."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        file_dir: Path,
        signer: Signer,
        zhida_verifiers: Mapping[str, Verifier],
        accepted: Any,
    ) -> None:
        self.ledger = ledger
        self.engine = ledger.engine
        self.inbox = file_dir / "vouchers"
        self.outbox = file_dir / "receipts"
        self._signer = signer
        self._verifiers = dict(zhida_verifiers)
        self._accepted = accepted  # wakes the settler once a file's vouchers are stored

    def exchange(self) -> int:
        """Take in voucher files, acknowledge them, and send receipts for settlements and returns; files handled."""
        for folder in (self.inbox, self.inbox / "done", self.inbox / "rejected", self.outbox):
            folder.mkdir(parents=True, exist_ok=True)
        handled = 0
        for path in sorted(self.inbox.glob("*.xml")):
            try:
                signed = vouchers.open_file(path.read_bytes(), self._verifiers)
                items = [vouchers.parse_payment_voucher(s.document) for s in signed]
            except (vouchers.VoucherError, SignatureError, ValidationError, ValueError) as exc:
                reason = getattr(exc, "reason", None) or str(exc)
                (self.inbox / "rejected" / f"{path.name}.error.txt").write_text(reason, encoding="utf-8")
                path.replace(self.inbox / "rejected" / path.name)
                handled += 1
                continue
            fault = self.ledger.faults.request_fault([i.VoucherNo for i in items])
            if fault is not None and fault.Kind == "error_5xx":
                continue  # the 前置机 is busy: the file waits for the next poll
            handled += 1
            outcomes = self.ledger.accept(items, channel=CHANNEL, file_msg_id=path.stem[:35])
            by_no = {i.VoucherNo: i for i in items}
            acks = [
                vouchers.Receipt(
                    voucher_no=o.VoucherNo,
                    status=PaymentStatus.ACCEPTED,
                    treasury_ref=o.Result.TreasuryRef,
                    adm_div_code=by_no[o.VoucherNo].AdmDivCode,
                    st_year=by_no[o.VoucherNo].StYear,
                    pay_acct_no=by_no[o.VoucherNo].PayAcctNo,
                    pay_amt_fen=by_no[o.VoucherNo].PayAmt,
                    at=o.Result.AcceptedAt,
                )
                for o in outcomes
                if o.Result is not None
            ]
            conflicts = [f"{o.VoucherNo}: {o.Reason}" for o in outcomes if o.Result is None]
            if conflicts:
                note = self.inbox / "rejected" / f"{path.name}.conflicts.txt"
                note.write_text("\n".join(conflicts), encoding="utf-8")
            if acks and (fault is None or fault.Kind != "timeout"):
                self._write(acks)
            path.replace(self.inbox / "done" / path.name)
            self._accepted()
        return handled + self._report_changes()

    def _report_changes(self) -> int:
        """Send receipts for voucher-channel instructions whose status moved since their last receipt."""
        cols = instructions.c
        stmt = select(instructions).where(
            cols.channel == CHANNEL,
            cols.status != PaymentStatus.ACCEPTED,
            or_(cols.reported_status.is_(None), cols.reported_status != cols.status),
        )
        with self.engine.begin() as conn:
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
            if not rows:
                return 0
            receipts: list[vouchers.Receipt] = []
            for row in rows:
                receipts.extend(_receipts_of(row))
            self._write(receipts)
            conn.execute(
                update(instructions).where(cols.voucher_no == bindparam("v")).values(reported_status=bindparam("s")),
                [{"v": r["voucher_no"], "s": r["status"]} for r in rows],
            )
        return len(rows)

    def _write(self, receipts: list[vouchers.Receipt]) -> Path:
        documents = [(r.vt_code, r.receipt_no, r.adm_div_code, r.st_year, vouchers.build_receipt(r)) for r in receipts]
        data = vouchers.build_file(documents, self._signer)
        name = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-receipt-{secrets.token_hex(4)}.xml"
        tmp = self.outbox / f".{name}.part"
        tmp.write_bytes(data)  # atomic: the reader never sees half a file
        return tmp.replace(self.outbox / name)

    async def run(self, every_seconds: float = 0.2) -> None:
        """Poll the exchange folders: the voucher channel's equivalent of requests and callbacks."""
        while True:
            try:
                await to_thread.run_sync(self.exchange)
            except Exception:
                log.exception("voucher_exchange_failed")
            await asyncio.sleep(every_seconds)


def _receipts_of(row: dict[str, Any]) -> list[vouchers.Receipt]:
    """The receipts a row owes: its 回单 when settlement was not yet reported, and a 退票回单 when it came back."""
    instruction = PaymentInstruction.model_validate_json(row["payload"])
    common = {
        "voucher_no": row["voucher_no"],
        "treasury_ref": row["treasury_ref"],
        "adm_div_code": instruction.AdmDivCode,
        "st_year": instruction.StYear,
        "pay_acct_no": row["pay_acct_no"],
        "pay_amt_fen": row["pay_amt"],
    }
    settled_at = utc(row["settled_at"]) or datetime.now(UTC)
    out: list[vouchers.Receipt] = []
    if row["reported_status"] in (None, PaymentStatus.ACCEPTED):
        failed = row["status"] == PaymentStatus.FAILED
        out.append(
            vouchers.Receipt(
                **common,
                status=PaymentStatus.FAILED if failed else PaymentStatus.PAID,
                at=settled_at,
                paid_fen=0 if failed else row["paid_amt"],
                reason=row["reason"] if failed else "",
            )
        )
    if row["status"] == PaymentStatus.RETURNED:
        out.append(
            vouchers.Receipt(
                **common,
                status=PaymentStatus.RETURNED,
                at=settled_at,
                reason=row["return_reason"] or "",
                return_kind=ReturnKind(row["return_type"] or ReturnKind.PASSIVE),
                returned_fen=row["returned_amt"],
                returned_at=utc(row["returned_at"]),
            )
        )
    return out
