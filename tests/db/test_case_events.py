"""One hash chain whichever path wrote it: `cases.record` and `cases.record_many`, interleaved, on both engines."""

from __future__ import annotations

from itertools import pairwise

from sqlalchemy.orm import Session

from db.models import Case
from db.repositories import cases
from schemas.vocabulary import CaseStatus, EventKind, FundItemMode, SystemActor
from tests.campaigns.support import AMOUNT_FEN, add_enterprises, add_item, item_config
from tests.support import drop_audit_guards

KEY = "Y2FzZS1ldmVudHMtY2hhaW4tdGVzdC1rZXktMzJieXQ="


def _cases(session: Session, n: int) -> list[Case]:
    item = add_item(session, "T-CHAIN-001", item_config(budget_fen=100 * AMOUNT_FEN))
    out = []
    for ent in add_enterprises(session, KEY, n, seed=7):
        case, _ = cases.get_or_create(
            session=session,
            fund_item_id=item.id,
            fund_item_version=1,
            enterprise_id=ent.id,
            mode=FundItemMode.NO_APPLICATION,
            workflow_id=f"case:T-CHAIN-001:{ent.uscc}",
        )
        out.append(case)
    session.flush()
    return out


def test_record_and_record_many_write_one_chain(session: Session) -> None:
    first, second = _cases(session, 2)
    cases.record(
        session=session,
        case=first,
        key="one",
        kind=EventKind.MATCHED,
        actor=SystemActor.RULES,
        to_status=CaseStatus.MATCHED,
        data={"amount_fen": AMOUNT_FEN, "名称": "中文"},
    )
    cases.record_many(
        session=session,
        events=[
            cases.NewEvent(
                first.id,
                CaseStatus.MATCHED,
                CaseStatus.RESERVED,
                "two",
                EventKind.BUDGET_RESERVED,
                SystemActor.CAMPAIGN,
                data={"amount_fen": AMOUNT_FEN, "ratio": "1/1"},
            ),
            cases.NewEvent(
                second.id,
                CaseStatus.RECEIVED,
                CaseStatus.MATCHED,
                "one",
                EventKind.MATCHED,
                SystemActor.RULES,
                reason="企业数据比对符合申报条件",
            ),
            cases.NewEvent(
                first.id,
                CaseStatus.RESERVED,
                CaseStatus.LAPSED,
                "three",
                EventKind.CONSENT_LAPSED,
                SystemActor.CAMPAIGN,
                reason="逾期未确认",
            ),
        ],
    )
    session.expire_all()
    assert first.status == CaseStatus.LAPSED and first.closed_at is not None
    cases.record(
        session=session,
        case=first,
        key="four",
        kind=EventKind.REVOKED,
        actor=SystemActor.WORKFLOW,
        to_status=CaseStatus.RESERVED,
        reason="重新开启",
    )
    assert first.closed_at is None
    cases.record_many(
        session=session,
        events=[
            cases.NewEvent(
                first.id,
                CaseStatus.RESERVED,
                CaseStatus.PAID,
                "five",
                EventKind.PAID,
                SystemActor.TREASURY,
                data={"voucher_no": "ZD1"},
            )
        ],
    )
    session.expire_all()
    timeline = cases.events(session=session, case_id=first.id)
    assert [e.key for e in timeline] == ["one", "two", "three", "four", "five"]
    assert [e.seq for e in timeline] == [1, 2, 3, 4, 5]
    assert all(e.prev_hash == p.hash for p, e in pairwise(timeline))
    assert cases.verify_chain(session=session, case_id=first.id)
    assert cases.verify_chain(session=session, case_id=second.id)
    assert first.status == CaseStatus.PAID and first.closed_at is not None


def test_record_many_leaves_final_status_open_again_when_a_case_moves_on(session: Session) -> None:
    (case,) = _cases(session, 1)
    cases.record(
        session=session,
        case=case,
        key="lapse",
        kind=EventKind.CONSENT_LAPSED,
        actor=SystemActor.CAMPAIGN,
        to_status=CaseStatus.LAPSED,
    )
    assert case.closed_at is not None
    cases.record_many(
        session=session,
        events=[
            cases.NewEvent(
                case.id,
                CaseStatus.LAPSED,
                CaseStatus.READY,
                "reopen",
                EventKind.CONSENT_CONFIRMED,
                SystemActor.CAMPAIGN,
            )
        ],
    )
    session.expire_all()
    assert case.status == CaseStatus.READY and case.closed_at is None
    assert cases.verify_chain(session=session, case_id=case.id)


def test_a_tampered_bulk_event_breaks_the_chain(session: Session) -> None:
    (case,) = _cases(session, 1)
    cases.record_many(
        session=session,
        events=[
            cases.NewEvent(
                case.id,
                CaseStatus.RECEIVED,
                CaseStatus.MATCHED,
                "m",
                EventKind.MATCHED,
                SystemActor.RULES,
                data={"amount_fen": 5},
            )
        ],
    )
    session.expire_all()
    (event,) = cases.events(session=session, case_id=case.id)
    drop_audit_guards(session)  # the database refuses the edit; an attacker with DDL rights drops the guard first
    event.data = {"amount_fen": 6}
    session.flush()
    assert not cases.verify_chain(session=session, case_id=case.id)
