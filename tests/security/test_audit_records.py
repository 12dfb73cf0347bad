"""The chain of audit records beyond case events (configuration, archive edits, decisions, sign-ins, exports):
keyed and anchored, so editing a record, deleting a middle or the last one, and recomputing the chain without the
key are all detected; the database itself refuses updates and deletes of records younger than the retention
(183 days); HMAC-SM3 under 国密; the daily command says so with its exit code; sign-ins and sign-outs, configuration
changes and exports are recorded by the use cases themselves."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from db.models import AuditHead, AuditRecord
from db.repositories import audit
from db.session import transaction
from schemas.vocabulary import AuditKind
from tests.security.conftest import World
from tests.support import drop_audit_guards


def _three(session: Session) -> list[AuditRecord]:
    return [
        audit.append(session=session, kind=AuditKind.SIGN_IN, actor="department:YC-JXJ", subject="session:a"),
        audit.append(
            session=session,
            kind=AuditKind.FUND_ITEM_LIFECYCLE,
            actor="department:YC-JXJ",
            subject="fund_item:T-1",
            data={"action": "list", "version": 2},
        ),
        audit.append(session=session, kind=AuditKind.EXPORT, actor="finance:YC-CZJ", subject="cockpit:budget"),
    ]


def _problem(session: Session) -> str | None:
    session.flush()
    session.expire_all()
    broken = audit.verify_records(session=session)
    return None if broken is None else broken.problem


def test_records_chain_and_anchor(session: Session) -> None:
    records = _three(session)
    assert _problem(session) is None
    head = session.get(AuditHead, audit.MAIN)
    assert (head.seq, head.hash) == (records[-1].seq, records[-1].hash)
    assert records[1].prev_hash == records[0].hash


def test_the_database_refuses_updates_and_young_deletes(session: Session) -> None:
    records = _three(session)
    for statement in (
        update(AuditRecord).where(AuditRecord.id == records[1].id).values(actor="admin:someone-else"),
        delete(AuditRecord).where(AuditRecord.id == records[2].id),
    ):
        with pytest.raises(DBAPIError, match=r"append-only|kept at least 183 days"), session.begin_nested():
            session.execute(statement)
    # A record past the retention may go (purging the oldest keeps the rest verifiable).
    old = AuditRecord(seq=10**12, kind=AuditKind.EXPORT, actor="x", subject="x", data={}, alg="hmac-sha256",
                      created_at=datetime.now(UTC) - timedelta(days=200), prev_hash="0", hash="0")  # fmt: skip
    session.add(old)
    session.flush()
    session.execute(delete(AuditRecord).where(AuditRecord.id == old.id))
    assert _problem(session) is None


@pytest.mark.parametrize("how", ["edit", "delete middle", "delete last", "recompute sha256", "recompute other key"])
def test_tampering_is_detected(session: Session, how: str) -> None:
    records = _three(session)
    drop_audit_guards(session)
    middle, last = records[1], records[2]
    if how == "edit":
        session.execute(update(AuditRecord).where(AuditRecord.id == middle.id).values(actor="admin:nobody"))
        assert "内容与其哈希不符" in _problem(session)
    elif how == "delete middle":
        session.execute(delete(AuditRecord).where(AuditRecord.id == middle.id))
        assert "缺失" in _problem(session) or "前序哈希" in _problem(session)
    elif how == "delete last":
        session.execute(delete(AuditRecord).where(AuditRecord.id == last.id))
        assert "与锚点不符" in _problem(session)
    else:

        def forged(message: str) -> str:
            if how == "recompute sha256":
                return hashlib.sha256(message.encode()).hexdigest()
            return hmac_other(message)

        canonical = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
        middle.actor = "admin:nobody"
        session.flush()
        prev = middle.prev_hash
        for r in (middle, last):
            r.prev_hash = prev
            r.hash = forged(prev + canonical.encode(audit.record_body(r)))
            prev = r.hash
        head = session.get(AuditHead, audit.MAIN)
        head.hash, head.mac = prev, forged(f"audit-head|{audit.MAIN}|{head.seq}|{prev}")
        assert "内容与其哈希不符" in _problem(session)


def hmac_other(message: str) -> str:
    return audit.ALGORITHMS["hmac-sha256"](b"attacker-guessed-key", message.encode())


def test_hmac_sm3_under_gm_and_both_algorithms_verify(session: Session) -> None:
    audit.append(session=session, kind=AuditKind.SIGN_OUT, actor="admin:ops", subject="session:b")
    audit.use_record_algorithm("hmac-sm3")
    try:
        record = audit.append(session=session, kind=AuditKind.SIGN_IN, actor="admin:ops", subject="session:c")
    finally:
        audit.use_record_algorithm(None)
    assert record.alg == "hmac-sm3" and record.hash == audit.record_hash("hmac-sm3", record.prev_hash,
                                                                          audit.record_body(record))  # fmt: skip
    assert _problem(session) is None


def test_use_cases_record_and_the_command_says_so(world: World, client, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.main import app
    from settings import get_settings

    def count(kind: str) -> int:
        with transaction(world.settings.db_url) as s:
            return s.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.kind == kind))

    before_in, before_out = count(AuditKind.SIGN_IN), count(AuditKind.SIGN_OUT)
    token = world.token("admin", "ops")
    from tests.api.scoping import csrf_headers

    signed_in = client.post("/web/login", data={"token": token}, headers=csrf_headers(world.settings.jwt_key()),
                            follow_redirects=False)  # fmt: skip
    assert signed_in.status_code == 303, signed_in.text
    assert client.post("/api/v1/sessions/logout", headers={"Authorization": f"Bearer {token}"}).status_code == 204
    assert (count(AuditKind.SIGN_IN), count(AuditKind.SIGN_OUT)) == (before_in + 1, before_out + 1)

    monkeypatch.setenv("ZHIDA_DATABASE_URL", world.settings.db_url)
    get_settings.cache_clear()
    try:
        good = CliRunner().invoke(app, ["audit", "verify"])
        assert good.exit_code == 0 and "条审计记录" in good.output, good.output
        with transaction(world.settings.db_url) as s:
            drop_audit_guards(s)
            last = s.scalar(select(func.max(AuditRecord.seq)))
            s.execute(delete(AuditRecord).where(AuditRecord.seq == last))
        bad = CliRunner().invoke(app, ["audit", "verify"])
        assert bad.exit_code == 1 and "审计记录" in bad.output and "审计链校验失败" in bad.output, bad.output
        report = client.get("/api/v1/audit/verify", headers=world.bearer()).json()
        assert report["ok"] is False and report["broken"][-1]["case_id"] is None
    finally:
        get_settings.cache_clear()


def test_reanchor_anchors_old_chains_that_hold_and_records_itself(session: Session) -> None:
    from db.models import CaseChainHead, CaseEvent
    from services import audit as audit_service
    from tests.security.test_audit_chain import _case_with_events

    good, bad = _case_with_events(session), _case_with_events(session)
    # Chains written before migration d5 have no head.
    session.execute(delete(CaseChainHead).where(CaseChainHead.case_id.in_([good, bad])))
    drop_audit_guards(session)
    session.execute(update(CaseEvent).where(CaseEvent.case_id == bad, CaseEvent.seq == 2).values(reason="改过"))
    session.flush()
    assert "缺少链头锚点" in audit.verify_case(session=session, case_id=good).problem
    done = audit_service.reanchor(session=session, scope=None, actor="admin:cli（张三）")
    session.expire_all()
    assert good in done and bad not in done
    assert audit.verify_case(session=session, case_id=good) is None
    assert audit.verify_case(session=session, case_id=bad) is not None  # tampering is not re-anchored
    last = session.scalar(select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1))
    assert last.kind == AuditKind.REANCHOR and good in last.data["case_ids"]


def test_refused_sign_ins_are_recorded_without_the_token(world: World, client) -> None:
    from tests.api.scoping import csrf_headers

    def refused() -> list[AuditRecord]:
        with transaction(world.settings.db_url) as s:
            return list(s.scalars(select(AuditRecord).where(AuditRecord.kind == AuditKind.SIGN_IN_REFUSED)
                                  .order_by(AuditRecord.seq)))  # fmt: skip

    before = len(refused())
    headers = csrf_headers(world.settings.jwt_key())
    forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.forged"
    assert client.post("/web/login", data={"token": forged}, headers=headers).status_code == 401
    unknown = world.token("department", "YC-NO-SUCH")
    assert client.post("/web/login", data={"token": unknown}, headers=headers).status_code == 401
    bad, stranger = refused()[before:]
    assert (bad.actor, bad.subject, bad.data["rule"]) == ("anonymous", "login:token", "token")
    assert (stranger.actor, stranger.data["rule"]) == ("department:YC-NO-SUCH", "known_department")
    assert bad.data["client"] and forged not in str(bad.data) and unknown not in str(stranger.data)
