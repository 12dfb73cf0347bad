"""The file channel end to end: Zhida writes pain.001, the stand-in answers with pain.002 and camt.054 files."""

from __future__ import annotations

from pathlib import Path

import xmlschema

from gateways import iso20022
from gateways.signing import public_pem
from gateways.treasury_files import FileTreasuryGateway
from standins.treasury import REASON_NO_ACCOUNT, REASON_RETURN_NAME, FaultRule, StandInAdmin, create_app, ledger_lines
from tests.gateways.test_treasury_sim import (
    TREASURY_KEY,
    TREASURY_KID,
    ZHIDA_KEY,
    ZHIDA_KID,
    Receiver,
    instruction,
    serving,
    wait_for,
)


def test_pain001_in_pain002_and_camt054_out(tmp_path: Path) -> None:
    folder = tmp_path / "exchange"
    app = create_app(
        db_url=f"sqlite:///{tmp_path / 'treasury.db'}",
        private_pem=TREASURY_KEY,
        key_id=TREASURY_KID,
        zhida_public_pems={ZHIDA_KID: public_pem(ZHIDA_KEY)},
        settle_delay_seconds=0.1,
        file_dir=folder,
    )
    receiver = Receiver()
    batch = [instruction(receiver, PayeeAcctName=f"宜昌第{n}科技有限公司") for n in range(5)]
    failing, returning = batch[1].VoucherNo, batch[2].VoucherNo
    gateway = FileTreasuryGateway(folder, initiating_party="宜昌市财政局")
    try:
        with serving(app) as url, StandInAdmin(url, ZHIDA_KEY, ZHIDA_KID) as admin:
            admin.set_faults(
                FaultRule(Kind="fail", VoucherNo=failing),
                FaultRule(Kind="passive_return", VoucherNo=returning, DelaySeconds=0.2),
            )
            items = gateway.submit_batch(batch)
            assert [i.Outcome for i in items] == ["accepted"] * 5

            def settled() -> dict | None:
                results = gateway.query_many([i.VoucherNo for i in batch])
                done = len(results) == 5 and results[returning].Status == "returned"
                return results if done and all(r.final for r in results.values()) else None

            results = wait_for(settled, timeout=10)
            # A resend over the file channel is answered from the reports, and the treasury pays once anyway.
            again = gateway.submit(batch[0])
            assert again == results[batch[0].VoucherNo]
            paid = [x for x in ledger_lines(app.state.sim.engine) if x["entry"] == "paid"]
    finally:
        receiver.close()

    assert (results[failing].Status, results[failing].PaidAmt, results[failing].Reason) == (
        "failed",
        0,
        REASON_NO_ACCOUNT,
    )
    back = results[returning]
    assert (back.Status, back.ReturnType, back.ReturnedAmt, back.Reason) == (
        "returned",
        "passive",
        batch[2].PayAmt,
        REASON_RETURN_NAME,
    )
    for instr in (batch[0], batch[3], batch[4]):
        result = results[instr.VoucherNo]
        assert (result.Status, result.PaidAmt) == ("paid", instr.PayAmt) and result.TreasuryRef.startswith("GK")
    assert sorted(x["voucher_no"] for x in paid) == sorted(i.VoucherNo for i in batch if i.VoucherNo != failing)
    # The one pain.001 written (the resend was answered from the reports) was taken in, and validates.
    [sent] = list((folder / "pain001" / "done").glob("*.xml"))
    xmlschema.XMLSchema(iso20022.XSD_DIR / "pain.001.001.03.xsd").validate(sent.read_text(encoding="utf-8"))
    assert not list((folder / "pain001").glob("*.xml"))

    reports = sorted((folder / "reports").glob("*.xml"))
    kinds = {p.name.split("-")[1] for p in reports}
    assert kinds == {"pain002", "camt054"}
    for report in reports:  # everything the treasury side wrote validates against the official schemas
        name = iso20022.CAMT054 if "-camt054-" in report.name else iso20022.PAIN002
        xmlschema.XMLSchema(iso20022.XSD_DIR / f"{name}.xsd").validate(report.read_text(encoding="utf-8"))


def test_an_invalid_file_is_set_aside_with_the_reason(tmp_path: Path) -> None:
    folder = tmp_path / "exchange"
    app = create_app(
        db_url=f"sqlite:///{tmp_path / 'treasury.db'}",
        private_pem=TREASURY_KEY,
        key_id=TREASURY_KID,
        zhida_public_pems={ZHIDA_KID: public_pem(ZHIDA_KEY)},
        file_dir=folder,
    )
    (folder / "pain001").mkdir(parents=True)
    (folder / "pain001" / "bad.xml").write_text("<Document/>", encoding="utf-8")
    with serving(app):
        error = wait_for(lambda: next((folder / "pain001" / "rejected").glob("*.error.txt"), None))
    assert "校验失败" in error.read_text(encoding="utf-8")
    assert (folder / "pain001" / "rejected" / "bad.xml").exists()
