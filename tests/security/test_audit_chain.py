"""The audit chain proves itself: editing an event, deleting a middle or the last event, and recomputing the chain
(without the audit key) are all detected — by the repository check, `zhida audit verify` and the admin endpoint."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from db.models import CaseChainHead, CaseEvent
from db.repositories import audit, cases
from db.session import transaction
from schemas.vocabulary import CaseStatus, EventKind, FundItemMode, SystemActor
from tests.campaigns.support import AMOUNT_FEN, add_enterprises, add_item, item_config
from tests.security.conftest import DEPT, World
from tests.support import drop_audit_guards

KEY = "Y2FzZS1ldmVudHMtY2hhaW4tdGVzdC1rZXktMzJieXQ="
STEPS = [("matched", EventKind.MATCHED, CaseStatus.MATCHED), ("reserved", EventKind.BUDGET_RESERVED, CaseStatus.RESERVED),
         ("paid", EventKind.PAID, CaseStatus.PAID)]  # fmt: skip


def _case_with_events(session: Session) -> int:
    code = f"T-AUDIT-{uuid.uuid4().hex[:6]}"
    item = add_item(session, code, item_config(budget_fen=10 * AMOUNT_FEN))
    # The USCC follows from the seed: with a thousand seeds two enterprises of one database drew the same one
    # (uq_enterprise_uscc in a CI run on PostgreSQL); a billion makes that negligible.
    [ent] = add_enterprises(session, KEY, 1, seed=uuid.uuid4().int % 10**9)
    case, _ = cases.get_or_create(session=session, fund_item_id=item.id, fund_item_version=1, enterprise_id=ent.id,
                                  mode=FundItemMode.NO_APPLICATION, workflow_id=f"case:{code}:{ent.uscc}")  # fmt: skip
    for key, kind, status in STEPS[:2]:
        cases.record(session=session, case=case, key=key, kind=kind, actor=SystemActor.RULES, to_status=status,
                     reason="依规则")  # fmt: skip
    key, kind, status = STEPS[2]
    cases.record_many(session=session, events=[cases.NewEvent(case.id, case.status, status, key, kind,
                                                              SystemActor.TREASURY)])  # fmt: skip
    session.flush()
    return case.id


def _event(session: Session, case_id: int, seq: int) -> CaseEvent:
    return session.scalar(select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.seq == seq))


def _problem(session: Session, case_id: int) -> str | None:
    session.expire_all()
    broken = audit.verify_case(session=session, case_id=case_id)
    return None if broken is None else broken.problem


def test_an_untouched_chain_holds(session: Session) -> None:
    case_id = _case_with_events(session)
    assert _problem(session, case_id) is None
    head = session.get(CaseChainHead, case_id)
    assert (head.seq, head.hash) == (3, _event(session, case_id, 3).hash)


def test_editing_an_event_is_detected(session: Session) -> None:
    case_id = _case_with_events(session)
    drop_audit_guards(session)  # the database refuses the edit (tests/security/test_case_event_guard.py)
    _event(session, case_id, 2).reason = "改过的理由"
    session.flush()
    assert "内容与其哈希不符" in _problem(session, case_id)


def test_deleting_a_middle_event_is_detected(session: Session) -> None:
    case_id = _case_with_events(session)
    drop_audit_guards(session)
    session.execute(delete(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.seq == 2))
    assert "缺失" in _problem(session, case_id)


def test_deleting_the_last_event_is_detected(session: Session) -> None:
    case_id = _case_with_events(session)
    drop_audit_guards(session)
    session.execute(delete(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.seq == 3))
    assert "锚点记录 3 条，现存 2 条" in _problem(session, case_id)


@pytest.mark.parametrize("how", ["sha256", "another key"])
def test_recomputing_the_chain_and_its_head_without_the_key_is_detected(session: Session, how: str) -> None:
    case_id = _case_with_events(session)
    drop_audit_guards(session)
    _event(session, case_id, 2).reason = "改过的理由"
    session.flush()

    def forged(message: str) -> str:
        if how == "sha256":  # the old, unkeyed chain: anyone could recompute it
            return hashlib.sha256(message.encode()).hexdigest()
        return audit.ALGORITHMS[audit.ALGORITHM](b"attacker-guessed-key", message.encode())

    canonical = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    prev = audit.GENESIS
    for seq in (1, 2, 3):
        event = _event(session, case_id, seq)
        event.prev_hash = prev
        event.hash = forged(prev + canonical.encode(audit.hash_body(event)))
        prev = event.hash
    session.execute(update(CaseChainHead).where(CaseChainHead.case_id == case_id)
                    .values(hash=prev, mac=forged(f"head|{case_id}|3|{prev}")))  # fmt: skip
    session.flush()
    assert "内容与其哈希不符" in _problem(session, case_id)
    # Rewriting only the head (e.g. after deleting the last event) fails its MAC.
    session.execute(update(CaseChainHead).where(CaseChainHead.case_id == case_id).values(seq=2))
    assert _problem(session, case_id) is not None


def test_the_command_and_the_admin_endpoint_say_so(world: World, client, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.main import app
    from settings import get_settings

    with transaction(world.settings.db_url) as s:
        case_id = _case_with_events(s)
    monkeypatch.setenv("ZHIDA_DATABASE_URL", world.settings.db_url)
    get_settings.cache_clear()
    try:
        good = CliRunner().invoke(app, ["audit", "verify"])
        assert good.exit_code == 0 and "审计链完好" in good.output, good.output
        assert client.get("/api/v1/audit/verify", headers=world.bearer()).json()["ok"] is True
        assert client.get("/api/v1/audit/verify", headers=world.bearer("department", DEPT)).status_code == 403
        with transaction(world.settings.db_url) as s:
            drop_audit_guards(s)
            s.execute(delete(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.seq == 3))
        bad = CliRunner().invoke(app, ["audit", "verify"])
        assert bad.exit_code == 1 and f"办件 {case_id}" in bad.output and "审计链校验失败" in bad.output
        report = client.get("/api/v1/audit/verify", headers=world.bearer()).json()
        assert report["ok"] is False and report["broken"][0]["case_id"] == case_id
    finally:
        get_settings.cache_clear()
