"""Helpers for end-to-end runs on the embedded stack (tests.stack): eligible enterprises, applications, ledgers."""

from __future__ import annotations

from sqlalchemy import select

from cli.demo import DEMO_ITEM
from db.models import Enterprise, PaymentInstruction
from db.session import transaction
from standins.treasury import StandInAdmin
from tests.stack import Stack

FINAL_CASE = {"paid", "payment_failed", "rejected", "awaiting_correction"}


def eligible_usccs(stack: Stack, n: int) -> list[str]:
    """Demo enterprises that pass the instant item's rules (tagged 专精特新, good credit)."""
    with transaction(stack.settings.db_url) as session:
        rows = session.scalars(select(Enterprise).order_by(Enterprise.id)).all()
        usccs = [e.uscc for e in rows if "专精特新" in (e.tags or []) and e.credit_status != "dishonest"]
    assert len(usccs) >= n, f"only {len(usccs)} eligible demo enterprises"
    return usccs[:n]


def apply(stack: Stack, uscc: str) -> int:
    response = stack.http.post(
        "/api/v1/applications",
        json={"fund_item_code": DEMO_ITEM, "uscc": uscc},
        headers=stack.token("enterprise", uscc),
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def admin(stack: Stack) -> StandInAdmin:
    return StandInAdmin(stack.treasury.url, stack.settings.zhida_private_pem(), stack.settings.signing_key_id)


def instructions(stack: Stack) -> list[PaymentInstruction]:
    with transaction(stack.settings.db_url) as session:
        rows = session.scalars(select(PaymentInstruction).order_by(PaymentInstruction.id)).all()
        session.expunge_all()
        return list(rows)
