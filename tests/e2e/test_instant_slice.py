"""The vertical slice: apply → rules → budget → treasury (real HTTP, signed) → paid, with notices."""

from __future__ import annotations

import random

from sqlalchemy import select

from cli.demo import DEMO_ITEM, demo_enterprise_uscc
from db.models import Enterprise
from db.repositories import budget, cases, fund_items
from db.session import reading, transaction
from tests.stack import Stack


async def test_instant_application_is_paid_once_with_notices(stack: Stack) -> None:
    uscc = demo_enterprise_uscc()
    headers = stack.token("enterprise", uscc)
    body = {"fund_item_code": DEMO_ITEM, "uscc": uscc}

    first = stack.http.post("/api/v1/applications", json=body, headers=headers)
    assert first.status_code == 201, first.text
    case = await stack.wait_status(first.json()["id"], {"paid", "rejected", "payment_failed"}, headers)

    assert case["status"] == "paid"
    assert case["amount_fen"] == case["paid_fen"] == 10_000_000
    kinds = [e["kind"] for e in case["events"]]
    assert kinds == ["received", "approved", "budget_reserved", "payment_sent", "paid"]
    assert [n["template_key"] for n in case["notices"]] == ["received", "approved", "paid"]
    paid_notice = case["notices"][-1]["content"]
    assert "壹拾万元整" in paid_notice and "100,000.00元" in paid_notice
    assert case["notices"][0]["phone_masked"].count("*") == 4
    assert len(case["payments"]) == 1 and case["payments"][0]["status"] == "paid"

    # A duplicate application returns the same case and never a second payment.
    again = stack.http.post("/api/v1/applications", json=body, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == case["id"]
    assert len(again.json()["payments"]) == 1

    with transaction(stack.settings.db_url) as session:
        item = fund_items.get_by_code(session=session, code=DEMO_ITEM)
        assert budget.totals(session=session, fund_item_id=item.id)["committed_fen"] == 10_000_000
        assert budget.totals(session=session, fund_item_id=item.id)["reserved_fen"] == 0
        assert cases.verify_chain(session=session, case_id=case["id"])

    # The treasury's own record agrees: paid exactly once.
    voucher = case["payments"][0]["voucher_no"]
    from gateways.treasury import HttpTreasuryGateway

    gateway = HttpTreasuryGateway(stack.treasury.url, stack.settings.zhida_private_pem(), stack.settings.signing_key_id)
    result = gateway.query(voucher)
    assert result is not None and result.Status == "paid" and result.PaidAmt == 10_000_000


async def test_ineligible_enterprise_is_rejected_with_unmet_conditions(stack: Stack) -> None:
    with transaction(stack.settings.db_url) as session:
        from sqlalchemy import select

        from db.models import Enterprise

        rows = session.scalars(select(Enterprise)).all()
        target = next(e for e in rows if "专精特新" not in (e.tags or []))
        uscc = target.uscc
    headers = stack.token("enterprise", uscc)
    response = stack.http.post(
        "/api/v1/applications", json={"fund_item_code": DEMO_ITEM, "uscc": uscc}, headers=headers
    )
    assert response.status_code == 201
    case = await stack.wait_status(response.json()["id"], {"rejected", "paid"}, headers)
    assert case["status"] == "rejected"
    assert "专精特新" in case["outcome_reason"]
    assert [n["template_key"] for n in case["notices"]] == ["received", "rejected"]
    assert case["payments"] == []


def test_bad_input_names_the_field(stack: Stack) -> None:
    uscc = demo_enterprise_uscc()
    headers = stack.token("enterprise", uscc)
    bad = "91420500MA4F0Q1X2" + ("A" if uscc[-1] != "A" else "B")
    r = stack.http.post("/api/v1/applications", json={"fund_item_code": DEMO_ITEM, "uscc": bad}, headers=headers)
    assert r.status_code in (403, 422)
    r = stack.http.post("/api/v1/applications", json={"fund_item_code": "NOPE", "uscc": uscc}, headers=headers)
    assert r.status_code == 404 and r.json()["error"]["errors"][0]["field"] == "fund_item_code"
    r = stack.http.post("/api/v1/applications", json={"uscc": uscc}, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["errors"][0]["field"] == "fund_item_code"
    r = stack.http.post("/api/v1/applications", json={"fund_item_code": DEMO_ITEM, "uscc": uscc})
    assert r.status_code == 401
    with reading(stack.settings.db_url) as session:
        another = session.scalar(select(Enterprise.uscc).where(Enterprise.uscc != uscc).limit(1))
    other = stack.token("enterprise", another)
    r = stack.http.post("/api/v1/applications", json={"fund_item_code": DEMO_ITEM, "uscc": uscc}, headers=other)
    assert r.status_code == 403  # an enterprise applies only for itself
    unknown = stack.token("enterprise", "91420500" + "".join(random.choices("0123456789", k=10)))
    r = stack.http.post("/api/v1/applications", json={"fund_item_code": DEMO_ITEM, "uscc": uscc}, headers=unknown)
    assert r.status_code == 401  # a valid token for an enterprise that is not in the archive


def test_readyz_reports_database_and_temporal(stack: Stack) -> None:
    r = stack.http.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"] == {"database": "ok", "temporal": "ok"}
