"""The voucher channel over the real stack (Temporal dev server, API over HTTP, the treasury stand-in speaking it):
an instant, a review and a campaign case paid by SM2-signed 财政直接支付凭证, a 退票回单 that starts the correction
loop, indicator balances equal to the ledger, every file valid against our XSD, and a reconciliation that matches."""

from __future__ import annotations

import asyncio
import base64
import copy
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cli.demo import REVIEW_CONFIG, add_listed_item, demo_enterprise_uscc
from cli.worker import build_worker, deliver_receipts_forever
from db.models import BudgetIndicator, PaymentInstruction
from db.session import transaction
from gateways import vouchers
from gateways.factory import build_gateways
from schemas.reconciliation import ReconSummary
from standins.treasury import STATEMENT_TZ, FaultRule, StandInAdmin
from standins.treasury import create_app as create_treasury_app
from standins.treasury.vouchers import VoucherKeys
from tests.campaigns.support import AMOUNT_FEN, add_enterprises
from tests.campaigns.test_campaign_stack import config as campaign_config
from tests.campaigns.test_campaign_stack import list_item, wait_campaign
from tests.reconciliation.stack_support import FINAL_CASE, apply, eligible_usccs
from tests.stack import Stack
from tests.support import ServerThread, eventually
from workflows.client import connect

REVIEW_CODE = "YC-2026-JSGZ-VCH"
CAMPAIGN_CODE = "T-VOUCHER-CAMPAIGN-001"
SOURCES = [
    {"name": "市级就业补助资金", "share_bp": 7000, "indicator_no": "宜财社指〔2026〕5号", "budget_level": "3",
     "exp_func_code": "2080799", "gov_eco_code": "50799", "dep_eco_code": "31299", "fund_type_code": "1"},
    {"name": "区级财政", "share_bp": 3000, "indicator_no": "伍财社指〔2026〕2号", "budget_level": "4",
     "exp_func_code": "2080799", "gov_eco_code": "50799", "dep_eco_code": "31299", "fund_type_code": "1"},
]  # fmt: skip


@pytest.fixture
def empty_db_url(tmp_path: Path) -> str:
    """This stack runs on SQLite only (the suite's time budget): the channel is the same code on either engine, and
    the indicator ledger it relies on is proven on both (tests/db/test_indicator_ledger.py)."""
    return f"sqlite:///{tmp_path / 'zhida.db'}"


def _post(stack: Stack, path: str, body: dict, headers: dict):
    return asyncio.to_thread(stack.http.post, path, json=body, headers=headers)


async def _pay_review(stack: Stack, admin: StandInAdmin) -> int:
    """A one-stage review case approved by the department and finance; its payment is returned (退票) later."""
    config = copy.deepcopy(REVIEW_CONFIG)
    config["approval"].pop("publicity")
    config["approval"].pop("completeness_check")
    config["approval"]["stages"] = config["approval"]["stages"][:1]
    with transaction(stack.settings.db_url) as session:
        add_listed_item(session=session, code=REVIEW_CODE, department_code="YC-JXJ", config=config)
    uscc = demo_enterprise_uscc()
    ent, jxj, czj = (
        stack.token(*who) for who in (("enterprise", uscc), ("department", "YC-JXJ"), ("finance", "YC-CZJ"))
    )
    case_id = (await _post(stack, "/api/v1/applications", {"fund_item_code": REVIEW_CODE, "uscc": uscc}, ent)).json()[
        "id"
    ]
    admin.set_faults(FaultRule(Kind="passive_return", VoucherNo=f"ZD{case_id:012d}A01", DelaySeconds=1.5))
    for stage, body in (("first_review", {"amount_fen": 880_001}), ("finance", {"comment": "同意"})):
        await eventually(
            lambda: stack.http.get(f"/api/v1/cases/{case_id}/progress", headers=ent).json(),
            lambda p, stage=stage: (p.get("stage") or {}).get("key") == stage,
            what=f"stage {stage}",
        )
        body = {"stage_key": stage, "decision": "approve", **body}
        r = await _post(stack, f"/api/v1/cases/{case_id}/decisions", body, jxj if stage == "first_review" else czj)
        assert r.status_code == 200, r.text
    return case_id


async def test_instant_review_and_campaign_paid_by_vouchers_and_reconciled(bare_stack: Stack, tmp_path: Path) -> None:
    folder = tmp_path / "treasury-files"
    stand_in = ServerThread(
        create_treasury_app(
            db_url=f"sqlite:///{tmp_path / 'voucher-treasury.db'}",
            private_pem=bare_stack.settings.treasury_private_pem(),
            key_id=bare_stack.settings.treasury_signing_key_id,
            zhida_public_pems={bare_stack.settings.signing_key_id: bare_stack.settings.zhida_public_pem()},
            settle_delay_seconds=0.2,
            file_dir=folder,
            voucher_keys=VoucherKeys.from_settings(bare_stack.settings),
        )
    ).start()
    settings = bare_stack.settings.model_copy(
        update={"treasury_channel": "voucher", "treasury_file_dir": folder, "treasury_url": stand_in.url}
    )
    admin = StandInAdmin(stand_in.url, settings.zhida_private_pem(), settings.signing_key_id)
    # One batch of each kind, polled often: the campaign is the longest of the three runs.
    bare_stack.api.server.config.app.state.campaign_options = {"poll_seconds": 0.2}
    with transaction(settings.db_url) as session:
        add_enterprises(session, settings.fernet_key(), 5, seed=43, region="420581")
    campaign = campaign_config(budget_fen=20 * AMOUNT_FEN)
    campaign["budget"]["sources"] = SOURCES
    gateways = build_gateways(settings)
    try:
        client = await connect(settings)
        receipts = asyncio.create_task(deliver_receipts_forever(settings, client, gateways, every_seconds=0.2))
        async with build_worker(client, settings, gateways=gateways):
            list_item(bare_stack, CAMPAIGN_CODE, campaign)  # the longest of the three runs meanwhile
            [uscc] = eligible_usccs(bare_stack, 1)
            instant = apply(bare_stack, uscc)
            review = await _pay_review(bare_stack, admin)
            case = await bare_stack.wait_status(instant, FINAL_CASE, bare_stack.token("enterprise", uscc))
            assert case["status"] == "paid" and case["paid_fen"] == 10_000_000
            progress = await wait_campaign(bare_stack, CAMPAIGN_CODE, lambda p: p["finished"])
            assert progress["paid"] == 5 and progress["paid_fen"] == 5 * AMOUNT_FEN
            # The 退票回单 reaches a closed case: the correction loop asks the enterprise for a corrected account.
            ent = bare_stack.token("enterprise", demo_enterprise_uscc())
            returned = await bare_stack.wait_status(review, {"awaiting_correction"}, ent, timeout=60)
            assert returned["paid_fen"] == 0
            today = datetime.now(STATEMENT_TZ).date()
            finance = bare_stack.token("finance", "YC-CZJ")
            started = bare_stack.http.post(
                "/api/v1/reconciliation/runs", json={"statement_date": today.isoformat()}, headers=finance
            )
            assert started.status_code == 202, started.text
            handle = client.get_workflow_handle(started.json()["workflow_id"], result_type=ReconSummary)
            summary = await handle.result()
        receipts.cancel()
    finally:
        admin.close()
        stand_in.stop()

    # Reconciliation: every statement line (7 payments and the return) matches ours.
    assert summary.statement_lines == 8 and summary.matched == 8
    assert (summary.missing_ours, summary.missing_theirs, summary.amount_mismatch, summary.status_mismatch) == (
        0,
        0,
        0,
        0,
    )
    # The indicators hold exactly what stayed paid (the returned review payment gave its parts back).
    with transaction(settings.db_url) as session:
        drawn = session.scalar(select(func.sum(BudgetIndicator.drawn_fen)))
        paid = session.scalar(
            select(func.sum(PaymentInstruction.paid_amt_fen)).where(PaymentInstruction.status == "paid")
        )
        statuses = sorted(session.scalars(select(PaymentInstruction.status)))
    assert drawn == paid == 10_000_000 + 5 * AMOUNT_FEN and statuses == ["paid"] * 6 + ["returned"]

    # Every file both sides wrote is valid against our XSD (envelope and each document in it); every signature was
    # verified by its reader: the stand-in set no voucher file aside, Zhida no receipt file.
    assert not list((folder / "vouchers" / "rejected").glob("*")) and not (folder / "receipts" / "rejected").exists()
    sent = [vouchers.parse_payment_voucher(doc) for doc in _documents(folder / "vouchers" / "done")]
    assert len(sent) == 7
    by_amount = {v.PayAmt: v for v in sent}
    assert [(d.Source, d.Amt) for d in by_amount[880_001].Details or []] == [
        ("市级财政", 528_001),
        ("区级财政", 352_000),
    ]
    assert {len(v.Details or []) for v in sent if v.PayAmt == AMOUNT_FEN} == {2}
    kinds = [vouchers.parse_receipt(doc).vt_code for doc in _documents(folder / "receipts")]
    assert sorted(set(kinds)) == [vouchers.VT_ACK, vouchers.VT_RECEIPT, vouchers.VT_RETURN]
    assert kinds.count(vouchers.VT_RECEIPT) == 7 and kinds.count(vouchers.VT_RETURN) == 1


def _documents(folder: Path) -> list[bytes]:
    """The documents of every MOF file in `folder`, each file and document checked against our XSD (GBK)."""
    out = []
    for path in sorted(folder.glob("*.xml")):
        data = path.read_bytes()
        assert re.match(rb'<\?xml version="1.0" encoding="GBK"\?>', data)
        root = ET.fromstring(vouchers.validate("envelope", data))
        out += [base64.b64decode(body.findtext("Voucher") or "") for body in root.iter("VoucherBody")]
    return out
