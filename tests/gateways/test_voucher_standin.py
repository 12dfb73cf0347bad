"""The treasury stand-in speaks the voucher channel with today's faults: a busy 前置机 (5xx) holds a file, a timeout
sends no 受理回执, a failed line gets a failed 回单, a passive return a 退票回单, a forged file is set aside."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from gateways import sm2, vouchers
from gateways.treasury_vouchers import VoucherTreasuryGateway
from schemas.vocabulary import PaymentStatus
from standins.treasury import FaultRule, FaultSettings, TreasuryStandIn
from standins.treasury.vouchers import VoucherKeys
from tests.gateways.test_vouchers import instruction

ZHIDA = sm2.new_private_hex()
TREASURY = sm2.new_private_hex()


def test_the_stand_in_answers_vouchers_with_receipts_and_its_faults(tmp_path: Path) -> None:
    keys = VoucherKeys(private_hex=TREASURY, zhida_public_hexes={"zhida-sm2-1": sm2.public_of(ZHIDA)})
    sim = TreasuryStandIn(
        db_url=f"sqlite:///{tmp_path / 'sim.db'}", private_pem="", key_id="treasury-1", zhida_public_pems={},
        settle_delay_seconds=0, window_seconds=300, callback_backoff_seconds=1, callback_backoff_max_seconds=1,
        file_dir=tmp_path, voucher_keys=keys,
    )  # fmt: skip
    sim.create_schema()
    assert sim.vouchers is not None
    gateway = VoucherTreasuryGateway(
        tmp_path,
        signer=sm2.Sm2Signer(ZHIDA, "zhida-sm2-1"),
        treasury_verifiers={"treasury-sm2-1": sm2.Sm2Verifier(sm2.public_of(TREASURY))},
    )
    v = [f"ZD{n:012d}A01" for n in range(1, 6)]
    sim.faults.replace(
        FaultSettings(
            Rules=[
                FaultRule(Kind="error_5xx", VoucherNo=v[0]),
                FaultRule(Kind="timeout", VoucherNo=v[1]),
                FaultRule(Kind="fail", VoucherNo=v[2], Reason="收款账号不存在"),
                FaultRule(Kind="passive_return", VoucherNo=v[3], Reason="收款人户名不符"),
            ]
        )
    )
    gateway.submit(instruction(VoucherNo=v[0]))
    assert sim.vouchers.exchange() == 0  # busy: the file waits
    assert len(list((tmp_path / "vouchers").glob("*.xml"))) == 1
    sim.vouchers.exchange()
    assert gateway.query(v[0]) is not None and gateway.query(v[0]).Status == PaymentStatus.ACCEPTED
    gateway.submit(instruction(VoucherNo=v[1]))  # a request fault hits the whole file it names a voucher of
    sim.vouchers.exchange()
    gateway.submit_batch([instruction(VoucherNo=no) for no in v[2:]])
    sim.vouchers.exchange()
    acked = gateway.query_many(v)
    assert v[1] not in acked and all(acked[no].Status == PaymentStatus.ACCEPTED for no in (v[0], *v[2:]))
    for _ in range(2):  # settle, then the return falls due
        sim.ledger.settle_due()
        sim.vouchers.exchange()
    results = gateway.query_many(v)
    assert {no: r.Status for no, r in results.items()} == {
        v[0]: "paid", v[1]: "paid", v[2]: "failed", v[3]: "returned", v[4]: "paid",
    }  # fmt: skip
    assert results[v[2]].Reason == "收款账号不存在" and results[v[3]].ReturnType == "passive"
    assert results[v[3]].ReturnedAmt == instruction().PayAmt and results[v[0]].PaidAmt == instruction().PayAmt

    # A file signed by another key is set aside with its reason; nothing of it is paid.
    document = vouchers.build_payment_voucher(
        instruction(VoucherNo="ZD000000000099A01"), vou_date=date(2026, 12, 1), pay_acct_bank_name="国库"
    )
    forged = vouchers.build_file(
        [("5201", "ZD000000000099A01", "420500", 2026, document)], sm2.Sm2Signer(sm2.new_private_hex(), "zhida-sm2-1")
    )
    (tmp_path / "vouchers" / "forged.xml").write_bytes(forged)
    sim.vouchers.exchange()
    assert "签名验证失败" in (tmp_path / "vouchers" / "rejected" / "forged.xml.error.txt").read_text(encoding="utf-8")
    assert gateway.query("ZD000000000099A01") is None
    sim.engine.dispose()
