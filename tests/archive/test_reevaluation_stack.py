"""On the whole stack: a social-security import that lifts an enterprise over a listed no-application item's head-count
condition pays it exactly once (a re-evaluation campaign through the existing path); importing again pays nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from db.models import Campaign, Case, PaymentInstruction
from db.repositories import fund_items
from db.session import transaction
from tests.campaigns.support import AMOUNT_FEN, add_enterprises, item_config
from tests.campaigns.test_campaign_stack import list_item, small_batches, wait_campaign
from tests.stack import Stack

REGION = "420527"  # 秭归县: no other campaign test's enterprises live here


def _import(stack: Stack, body: str, name: str) -> dict:
    admin = stack.token("admin", "ops")
    r = stack.http.post("/api/v1/archive/imports", params={"source": "social", "file_name": name},
                        content=body.encode(), headers=admin)  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()


async def test_an_import_pays_a_newly_eligible_enterprise_exactly_once(stack: Stack) -> None:
    small_batches(stack)
    code = "T18-E2E-RE-001"
    with transaction(stack.settings.db_url) as session:
        people = add_enterprises(session, stack.settings.fernet_key(), 3, seed=18, region=REGION)
        people[2].employees = 5  # below the 10-employee condition
        late = people[2].uscc
    list_item(stack, code, item_config(budget_fen=10 * AMOUNT_FEN, region=REGION))
    first = await wait_campaign(stack, code, lambda p: p["finished"])
    assert first["paid"] == 2
    done = _import(stack, f"uscc,employees\n{late},50\n", "social-1.csv")
    assert done["status"] == "succeeded" and done["reevaluations"] >= 1, done
    second = await wait_campaign(stack, code, lambda p: p["kind"] == "reevaluation" and p["finished"])
    assert second["matched"] == 1 and second["paid"] == 1
    assert _import(stack, f"uscc,employees\n{late},50\n", "social-1-again.csv")["duplicate"] is True
    later = _import(stack, f"uscc,employees\n{late},60\n", "social-2.csv")
    assert later["status"] == "succeeded"
    with transaction(stack.settings.db_url) as session:
        item = fund_items.get_by_code(session=session, code=code)
        assert session.scalar(select(func.count()).select_from(Campaign).where(Campaign.fund_item_id == item.id)) == 2
        paid = select(func.count()).select_from(PaymentInstruction).join(Case).where(Case.fund_item_id == item.id)
        assert session.scalar(paid) == 3
