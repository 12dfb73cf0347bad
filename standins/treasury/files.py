"""The file channel: ISO 20022 pain.001 files taken from a drop folder, pain.002 and camt.054 reports written back."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from anyio import to_thread
from pydantic import ValidationError
from sqlalchemy import bindparam, or_, select, update

from gateways import iso20022
from logs import get_logger
from standins.treasury.ledger import Ledger
from standins.treasury.tables import instructions, utc

log = get_logger("zhida.treasury_sim")


def _msg_id(prefix: str) -> str:
    return f"{prefix}{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}{secrets.token_hex(6).upper()}"


class FileExchange:
    """Reads file_dir/pain001 and writes file_dir/reports: the file channel's requests and callbacks."""

    def __init__(self, *, ledger: Ledger, file_dir: Path, accepted: Callable[[], None]) -> None:
        self.ledger = ledger
        self.engine = ledger.engine
        self.file_dir = file_dir
        self._accepted = accepted  # wakes the settler once a file's instructions are stored

    @property
    def inbox(self) -> Path:
        return self.file_dir / "pain001"

    @property
    def outbox(self) -> Path:
        return self.file_dir / "reports"

    def exchange_files(self) -> int:
        """Take in pain.001 files, answer each with a pain.002, and report settlements and returns; files handled."""
        for folder in (self.inbox, self.inbox / "done", self.inbox / "rejected", self.outbox):
            folder.mkdir(parents=True, exist_ok=True)
        handled = 0
        for path in sorted(self.inbox.glob("*.xml")):
            handled += 1
            try:
                msg_id, items = iso20022.parse_pain001(path.read_bytes())
            except (iso20022.Iso20022Error, ValidationError) as exc:
                (self.inbox / "rejected" / f"{path.name}.error.txt").write_text(str(exc), encoding="utf-8")
                path.replace(self.inbox / "rejected" / path.name)
                continue
            outcomes = self.ledger.accept(items, channel="file", file_msg_id=msg_id)
            lines = [
                iso20022.TxStatus(o.VoucherNo, "failed", reason=o.Reason)
                if o.Result is None
                else iso20022.TxStatus(o.VoucherNo, "accepted", treasury_ref=o.Result.TreasuryRef, at=o.Result.AcceptedAt)
                for o in outcomes
            ]
            self._write_report(
                iso20022.build_pain002(
                    lines,
                    msg_id=_msg_id("ACK"),
                    created_at=datetime.now(UTC),
                    original_msg_id=msg_id,
                    original_pmt_inf_id=f"{msg_id[:30]}-1",
                ),
                "pain002",
            )
            path.replace(self.inbox / "done" / path.name)
            self._accepted()
        return handled + self._report_changes()

    def _report_changes(self) -> int:
        """Report file-channel instructions whose status moved since their last report."""
        cols = instructions.c
        stmt = select(instructions).where(
            cols.channel == "file",
            cols.status != "accepted",
            or_(cols.reported_status.is_(None), cols.reported_status != cols.status),
        )
        with self.engine.begin() as conn:
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
            if not rows:
                return 0
            settled: dict[str, list[iso20022.TxStatus]] = {}
            returns: dict[str, list[iso20022.TxStatus]] = {}
            for row in rows:
                if row["reported_status"] in (None, "accepted"):
                    outcome = "failed" if row["status"] == "failed" else "paid"
                    settled.setdefault(row["file_msg_id"], []).append(
                        iso20022.TxStatus(
                            row["voucher_no"], outcome, amount_fen=row["paid_amt"], reason=row["reason"],
                            treasury_ref=row["treasury_ref"], at=utc(row["settled_at"]),
                        )
                    )
                if row["status"] == "returned":
                    returns.setdefault(row["pay_acct_no"], []).append(
                        iso20022.TxStatus(
                            row["voucher_no"], "returned", amount_fen=row["returned_amt"],
                            reason=row["return_reason"] or "", treasury_ref=row["treasury_ref"],
                            at=utc(row["returned_at"]), return_type=row["return_type"],
                        )
                    )
            now = datetime.now(UTC)
            for msg_id, lines in settled.items():
                document = iso20022.build_pain002(
                    lines, msg_id=_msg_id("STS"), created_at=now, original_msg_id=msg_id,
                    original_pmt_inf_id=f"{msg_id[:30]}-1",
                )
                self._write_report(document, "pain002")
            for account, lines in returns.items():
                document = iso20022.build_camt054(lines, msg_id=_msg_id("NTF"), created_at=now, account_no=account)
                self._write_report(document, "camt054")
            conn.execute(
                update(instructions).where(cols.voucher_no == bindparam("v")).values(reported_status=bindparam("s")),
                [{"v": r["voucher_no"], "s": r["status"]} for r in rows],
            )
        return len(rows)

    def _write_report(self, document: bytes, kind: str) -> Path:
        """Write atomically (temporary name, then rename) so a reader never sees half a file."""
        name = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{kind}-{secrets.token_hex(4)}.xml"
        tmp = self.outbox / f".{name}.part"
        tmp.write_bytes(document)
        return tmp.replace(self.outbox / name)


    async def run(self, every_seconds: float = 0.2) -> None:
        """Poll the drop folders: the file channel's equivalent of requests and callbacks."""
        while True:
            try:
                await to_thread.run_sync(self.exchange_files)
            except Exception:
                log.exception("file_exchange_failed")
            await asyncio.sleep(every_seconds)
