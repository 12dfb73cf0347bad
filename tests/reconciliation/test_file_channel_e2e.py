"""An instant case paid over the ISO 20022 file channel: pain.001 out, pain.002 back, the workflow polls."""

from __future__ import annotations

from pathlib import Path

import xmlschema

from cli.worker import build_worker
from gateways import iso20022
from standins.treasury import create_app as create_treasury_app
from tests.reconciliation.stack_support import FINAL_CASE, apply, eligible_usccs, instructions
from tests.stack import Stack
from tests.support import ServerThread
from workflows.client import connect


async def test_instant_case_paid_through_pain001_files(bare_stack: Stack, tmp_path: Path) -> None:
    folder = tmp_path / "treasury-files"
    settings = bare_stack.settings.model_copy(update={"treasury_channel": "file", "treasury_file_dir": folder})
    files_treasury = ServerThread(
        create_treasury_app(
            db_url=f"sqlite:///{tmp_path / 'file-treasury.db'}",
            private_pem=settings.treasury_private_pem(),
            key_id=settings.treasury_signing_key_id,
            zhida_public_pems={settings.signing_key_id: settings.zhida_public_pem()},
            settle_delay_seconds=0.2,
            file_dir=folder,
        )
    ).start()
    try:
        client = await connect(settings)
        async with build_worker(client, settings):
            [uscc] = eligible_usccs(bare_stack, 1)
            case_id = apply(bare_stack, uscc)
            case = await bare_stack.wait_status(case_id, FINAL_CASE, bare_stack.token("enterprise", uscc))
    finally:
        files_treasury.stop()
    assert case["status"] == "paid" and case["paid_fen"] == 10_000_000
    [instruction] = instructions(bare_stack)
    assert instruction.status == "paid" and instruction.treasury_ref.startswith("GK")
    [sent] = list((folder / "pain001" / "done").glob("*.xml"))
    document = sent.read_text(encoding="utf-8")
    xmlschema.XMLSchema(iso20022.XSD_DIR / "pain.001.001.03.xsd").validate(document)
    assert f"<EndToEndId>{instruction.voucher_no}</EndToEndId>" in document
    assert '<InstdAmt Ccy="CNY">100000.00</InstdAmt>' in document
    assert f"<Nm>{instruction.payee_acct_name}</Nm>" in document
