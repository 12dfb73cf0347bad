"""A no-application campaign on the ISO 20022 file channel pays through pain.001 files, like a single case does:
the worker builds one treasury gateway from settings for cases and campaigns alike."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from cli.worker import build_worker
from db.models import PaymentInstruction
from db.session import transaction
from standins.treasury import create_app as create_treasury_app
from tests.campaigns.support import AMOUNT_FEN, add_enterprises
from tests.campaigns.test_campaign_stack import config, list_item, small_batches, wait_campaign
from tests.reconciliation.stack_support import admin
from tests.stack import Stack
from tests.support import ServerThread
from workflows.client import connect


async def test_a_campaign_on_the_file_channel_pays_through_pain001_files(bare_stack: Stack, tmp_path: Path) -> None:
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
    small_batches(bare_stack)
    code = "T-FILE-CAMPAIGN-001"
    with transaction(settings.db_url) as session:
        add_enterprises(session, settings.fernet_key(), 12, seed=41, region="420581")
    try:
        client = await connect(settings)
        async with build_worker(client, settings):
            list_item(bare_stack, code, config(budget_fen=20 * AMOUNT_FEN))
            progress = await wait_campaign(bare_stack, code, lambda p: p["finished"])
    finally:
        files_treasury.stop()

    assert progress["matched"] == 12 and progress["paid"] == 12 and progress["paid_fen"] == 12 * AMOUNT_FEN
    with transaction(settings.db_url) as session:
        rows = session.scalars(select(PaymentInstruction)).all()
        vouchers = {row.voucher_no for row in rows if row.status == "paid"}
        assert len(vouchers) == 12 and all(row.treasury_ref.startswith("GK") for row in rows)
    sent = "".join(path.read_text(encoding="utf-8") for path in (folder / "pain001" / "done").glob("*.xml"))
    assert all(f"<EndToEndId>{voucher}</EndToEndId>" in sent for voucher in vouchers)
    # Nothing went over HTTP: the stack's HTTP stand-in has paid nobody.
    with admin(bare_stack) as http_treasury:
        assert http_treasury.ledger().Accounts == []
