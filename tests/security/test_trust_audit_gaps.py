"""The audit's last gaps (#15): a token's first use (minted by `zhida token` without a database) is recorded once
per jti, under concurrent requests and across processes; push-preference changes, "push listed again" and a
campaign's collect-now are recorded with their effect; a key rotation leaves a trace when it starts; refused
sign-ins beyond a limit per client and minute answer 429 and are counted into one summary record."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from api.auth import decode, mint
from api.deps import note_first_use
from db.models import AuditRecord, Department, FundItem, Policy, SignInThrottle
from db.session import transaction
from schemas.audit import AuditNote
from schemas.vocabulary import AuditKind, FundItemStatus
from services import audit as audit_service
from services import keys, sessions
from settings import Settings
from tests.api.scoping import csrf_headers
from tests.security.conftest import DEPT, World, client_for
from tests.support import audit_records


def _kinds(db_url: str, kind: str) -> list[AuditRecord]:
    with transaction(db_url) as s:
        return list(s.scalars(select(AuditRecord).where(AuditRecord.kind == kind).order_by(AuditRecord.seq)))


# -- 1. a token's first use ----------------------------------------------------------------------------------------


def test_a_cli_token_is_recorded_once_at_its_first_use(world: World, client, monkeypatch) -> None:
    from cli.main import app
    from settings import get_settings

    monkeypatch.setenv("ZHIDA_DATA_DIR", str(world.settings.data_dir))
    monkeypatch.setenv("ZHIDA_DATABASE_URL", world.settings.db_url)
    monkeypatch.setenv("ZHIDA_JWT_SECRET", world.settings.jwt_key())
    get_settings.cache_clear()
    try:
        helped = CliRunner().invoke(app, ["token", "--help"])
        minted = CliRunner().invoke(app, ["token", "--role", "department", "--subject", DEPT, "--name", "李四"])
    finally:
        get_settings.cache_clear()
    assert "first" in helped.output and "accepts it" in helped.output, helped.output
    assert minted.exit_code == 0, minted.output
    token = minted.output.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    subject = f"token:{claims['jti']}"
    assert audit_records(world.settings.db_url, subject) == []  # minting wrote nothing

    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(3):
        assert client.get("/api/v1/pushes", headers=headers).status_code in (200, 403)
    sessions.forget_first_uses()  # another API process, which has not seen the token
    assert client.get("/api/v1/pushes", headers=headers).status_code in (200, 403)

    [(kind, actor, data)] = audit_records(world.settings.db_url, subject)
    assert kind == AuditKind.TOKEN_FIRST_USED and actor.startswith(f"department:{DEPT}")
    assert data == {"role": "department", "subject": DEPT, "jti": claims["jti"],
                    "issued_at": datetime.fromtimestamp(claims["iat"], UTC).isoformat(),
                    "expires_at": datetime.fromtimestamp(claims["exp"], UTC).isoformat()}  # fmt: skip
    assert token not in str(data)


def test_a_sign_in_is_its_tokens_first_use(world: World, client) -> None:
    """Signing in to the pages writes one record, the sign-in, which names the token's first use; the pages' later
    requests with it write nothing more. A token used at the API before signs in without `first_use`."""
    headers = csrf_headers(world.settings.jwt_key())
    fresh, used = world.token("department", DEPT), world.token("department", DEPT)
    assert client.get("/api/v1/pushes", headers={"Authorization": f"Bearer {used}"}).status_code == 403
    for token in (fresh, used):
        jti = jwt.decode(token, options={"verify_signature": False})["jti"]
        assert client.post("/web/login", data={"token": token}, headers=headers).status_code == 303
        page = client_for(world.settings)
        page.cookies.set("zhida_token", token)
        assert page.get("/web/").status_code == 200
        [(kind, _, data)] = audit_records(world.settings.db_url, f"session:{jti}")
        assert kind == AuditKind.SIGN_IN
        if token == fresh:
            assert audit_records(world.settings.db_url, f"token:{jti}") == []
            assert data["first_use"] is True and (data["jti"], data["role"], data["subject"]) == (jti, "department", DEPT)
        else:
            assert [k for k, _, _ in audit_records(world.settings.db_url, f"token:{jti}")] == [AuditKind.TOKEN_FIRST_USED]
            assert "first_use" not in data


def test_a_refused_token_is_not_recorded_as_used(world: World, client) -> None:
    token = world.token("department", "YC-NO-SUCH-DEPT")
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert client.get("/api/v1/pushes", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert audit_records(world.settings.db_url, f"token:{jti}") == []


def test_first_use_is_recorded_once_under_concurrent_requests(module_db_url: str) -> None:
    settings = Settings(database_url=module_db_url, jwt_secret="first-use-secret-" + "x" * 24)
    with transaction(module_db_url) as s:
        s.add(Department(code="YC-FIRST-USE", name="测试局", region_code="420500"))
    principal = decode(settings.jwt_key(), mint(settings.jwt_key(), role="department", subject="YC-FIRST-USE"))
    start, errors = threading.Barrier(6), []

    def use() -> None:
        try:
            start.wait()
            note_first_use(module_db_url, principal)
        except Exception as exc:  # the test reports it
            errors.append(exc)

    sessions.forget_first_uses()
    threads = [threading.Thread(target=use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [k for k, _, _ in audit_records(module_db_url, f"token:{principal.token_id}")] == [AuditKind.TOKEN_FIRST_USED]
    # The common request: known in this process, no transaction at all.
    assert sessions.first_use_recorded(principal)


# -- 2. push preference, push listed again -------------------------------------------------------------------------


def test_push_preference_changes_are_recorded_with_the_change(world: World, client) -> None:
    owner = world.bearer("enterprise", world.uscc)
    url = f"/api/v1/enterprises/{world.uscc}/push-preference"
    subject = f"enterprise:{world.uscc}"
    before = len(audit_records(world.settings.db_url, subject))
    assert client.put(url, json={"opt_out": True}, headers=owner).status_code == 200
    assert client.put(url, json={"opt_out": True}, headers=owner).status_code == 200  # no change: no record
    assert client.put(url, json={"opt_out": False}, headers=world.bearer()).status_code == 200  # an administrator
    records = audit_records(world.settings.db_url, subject)[before:]
    assert [(k, a.split("（")[0], d["push_opt_out"]) for k, a, d in records] == [
        (AuditKind.PUSH_PREFERENCE_CHANGED, f"enterprise:{world.uscc}", {"from": False, "to": True}),
        (AuditKind.PUSH_PREFERENCE_CHANGED, "admin:ops", {"from": True, "to": False}),
    ]


def test_push_listed_again_is_recorded(world: World, client) -> None:
    with transaction(world.settings.db_url) as s:
        dept = s.scalar(select(Department).where(Department.code == DEPT))
        policy = Policy(doc_number="宜经信发〔2026〕T1号", title="政策", level="city", department_id=dept.id)
        s.add(policy)
        s.flush()
        item = FundItem(code="T-TRUST-PUSH", policy_id=policy.id, department_id=dept.id, name="测试事项",
                        mode="instant", status=FundItemStatus.LISTED, listed_version=1)  # fmt: skip
        s.add(item)
        s.flush()
        fund_item_id = item.id
    r = client.post(f"/api/v1/pushes/listed/{fund_item_id}", headers=world.bearer("department", DEPT))
    assert r.status_code == 202, r.text
    [(kind, actor, data)] = audit_records(world.settings.db_url, "fund_item:T-TRUST-PUSH")
    assert kind == AuditKind.PUSH_LISTED_AGAIN and actor.startswith(f"department:{DEPT}")
    assert data == {"fund_item_id": fund_item_id, "code": "T-TRUST-PUSH", "listed_version": 1}


# -- 2. collect now: the note written once, with its effect ----------------------------------------------------------


def test_a_collect_now_note_is_written_once_even_when_its_step_is_retried(module_db_url: str) -> None:
    note = AuditNote(kind=AuditKind.CAMPAIGN_COLLECT_NOW, actor="department:YC-JXJ（王五）", subject="campaign:77",
                     data={"campaign_id": 77}, once="collect:campaign-77:abc")  # fmt: skip
    for _ in range(2):  # the step retried after its first run committed
        with transaction(module_db_url) as s:
            audit_service.record_note(session=s, note=note)
    assert [k for k, _, _ in audit_records(module_db_url, "campaign:77")] == [AuditKind.CAMPAIGN_COLLECT_NOW]


# -- 3. key rotation: a trace at the start ---------------------------------------------------------------------------


def test_an_interrupted_rotation_leaves_its_start_in_the_audit(tmp_path) -> None:
    from db.models import Base
    from db.session import engine_for
    from tests.security.test_key_rotation import _seed

    url = f"sqlite:///{tmp_path / 'rotate.db'}"
    Base.metadata.create_all(engine_for(url))  # the tables are all it needs
    settings = Settings(data_dir=tmp_path, keys_dir=tmp_path / "keys", database_url=url)
    _seed(settings)

    class Killed(Exception):
        pass

    def kill(column: str, rows: int) -> None:
        raise Killed

    with pytest.raises(Killed):
        keys.rotate(settings=settings, actor="admin:cli（张三）", batch=5, on_batch=kill)
    [started] = _kinds(url, AuditKind.KEY_ROTATION)
    assert started.actor == "admin:cli（张三）" and started.subject == "fernet:k1"
    assert {k: started.data[k] for k in ("phase", "key_id", "key_ids", "resumed")} == {
        "phase": "started", "key_id": "k1", "key_ids": ["k0", "k1"], "resumed": False}  # fmt: skip
    assert started.data["pending"] > 0

    report = keys.rotate(settings=settings, actor="admin:cli（张三）", batch=5)
    assert report.ok
    phases = [(r.data["phase"], r.data["resumed"]) for r in _kinds(url, AuditKind.KEY_ROTATION)]
    assert phases == [("started", False), ("started", True), ("finished", True)]
    finished = _kinds(url, AuditKind.KEY_ROTATION)[-1].data
    assert finished["rows"] == report.done and finished["by_column"] == report.by_column


# -- 4. refused sign-ins: a limit per client and minute, with a summary ----------------------------------------------


def test_refused_sign_ins_over_the_limit_answer_429_and_are_summed_up(world: World) -> None:
    settings = world.settings.model_copy(update={"sign_in_refused_per_minute": 3})
    client = client_for(settings)
    headers = csrf_headers(settings.jwt_key())
    with transaction(settings.db_url) as s:
        s.query(SignInThrottle).delete()
    before = len(_kinds(settings.db_url, AuditKind.SIGN_IN_REFUSED))
    answers = [client.post("/web/login", data={"token": f"forged.{i}.x"}, headers=headers) for i in range(5)]
    assert [r.status_code for r in answers] == [401, 401, 401, 429, 429]
    assert "登录失败次数过多，请稍后再试" in answers[-1].text and "每分钟最多失败 3 次" in answers[-1].text
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
    assert len(_kinds(settings.db_url, AuditKind.SIGN_IN_REFUSED)) == before + 3  # the two over the limit: counted

    # A correct sign-in from the same address is not held up by the limit.
    token = world.token("department", DEPT)
    assert client.post("/web/login", data={"token": token}, headers=headers).status_code == 303

    # The minute ends: the next refused sign-in (from anywhere) writes the summary first, then its own record.
    with transaction(settings.db_url) as s:
        for row in s.scalars(select(SignInThrottle)):
            row.window -= 1
    assert client.post("/web/login", data={"token": "forged.again"}, headers=headers).status_code == 401
    [summary] = _kinds(settings.db_url, AuditKind.SIGN_IN_REFUSED_SUPPRESSED)
    assert summary.subject == "client:testclient" and summary.actor == "anonymous"
    assert (summary.data["suppressed"], summary.data["refused"], summary.data["recorded"]) == (2, 5, 3)
    refused = _kinds(settings.db_url, AuditKind.SIGN_IN_REFUSED)
    assert len(refused) == before + 4 and refused[-1].seq > summary.seq


def test_the_summary_is_written_when_no_refusal_follows(module_db_url: str) -> None:
    """Several API processes share the count (the database holds it); the daily audit run writes a summary that no
    later refusal wrote."""
    t0 = datetime(2026, 12, 1, 9, 0, 5, tzinfo=UTC)
    for i in range(4):  # two "processes": each its own transaction, one count
        with transaction(module_db_url) as s:
            out = sessions.sign_in_refused(session=s, actor="anonymous", method="token", rule="token",
                                           client="10.0.0.9", limit=2, now=t0 + timedelta(seconds=i))  # fmt: skip
        assert out.recorded == (i < 2)
    with transaction(module_db_url) as s:
        assert sessions.flush_refusals(session=s, now=t0 + timedelta(seconds=30)) == 0  # the minute is not over
    from activities.audit import AuditActivities
    from schemas.audit import AuditCheckIn

    with transaction(module_db_url) as s:
        assert sessions.flush_refusals(session=s, now=t0 + timedelta(minutes=1)) == 1
    AuditActivities(db_url=module_db_url).verify_audit_chains(AuditCheckIn())  # nothing left to sum up
    [(kind, _, data)] = audit_records(module_db_url, "client:10.0.0.9")
    assert kind == AuditKind.SIGN_IN_REFUSED_SUPPRESSED and data["suppressed"] == 2
    assert data["window_start"] == "2026-12-01T09:00:00+00:00"
