"""The three policy pushes of the Yichang rules art. 26 (registration, listing, payout), the opt-out of pushes and
that case notices ignore it, through the API where a user would act.

The module gets its own database per backend with the demo data loaded (the API commits, and which enterprises a
listed item matches must not depend on what other tests left behind).
"""

from __future__ import annotations

import copy
import random
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from activities.notices import Dispatcher, expand_listing_pushes, push_paid_due
from api.app import create_app
from api.auth import mint
from api.routers.fund_items import listing_today
from cli.demo import DEMO_CONFIG, REVIEW_CONFIG, add_listed_item, ensure_demo
from db import crypto
from db.migrate import upgrade
from db.models import Case, Enterprise, Notice, PolicyPush
from db.session import engine_for, transaction
from gateways.sms import OutboxProvider
from schemas import uscc as uscc_rules
from services.notices import LISTING_PUSH_NOTE
from settings import Settings
from tests.conftest import _drop_postgres_database, _fresh_postgres_database

API = "/api/v1"


@pytest.fixture(scope="module")
def settings(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    folder: Path = tmp_path_factory.mktemp("pushes")
    name = None
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{folder / 'pushes.db'}"
    else:
        url, name = _fresh_postgres_database()
    upgrade(url)
    settings = Settings(data_dir=folder, database_url=url, jwt_secret="pushes-test-secret-" + "x" * 24)
    assert ensure_demo(settings)
    yield settings
    engine_for(url).dispose()
    if name:
        _drop_postgres_database(name)


@pytest.fixture(scope="module")
def client(settings: Settings) -> TestClient:
    app = create_app(settings)
    app.dependency_overrides[listing_today] = lambda: date(2026, 9, 1)
    return TestClient(app)


def auth(settings: Settings, role: str, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(settings.jwt_key(), role=role, subject=subject)}"}


_rng = random.Random(6)


def new_uscc() -> str:
    return uscc_rules.generate(_rng, "110105")


def add_enterprise(settings: Settings, tag: str, *, phone: str | None = "13911112222", opt_out: bool = False) -> int:
    """An enterprise outside Yichang (the demo items never match it) carrying the test's own tag."""
    uscc = new_uscc()
    with transaction(settings.db_url) as s:
        e = Enterprise(
            uscc=uscc, name=f"北京{tag}科技有限公司{uscc[-4:]}", region_code="110105", tags=[tag], credit_status="good",
            contact_phone_enc=crypto.encrypt(settings.fernet_key(), phone) if phone else None,
            contact_phone_masked=crypto.mask_phone(phone) if phone else None,
            push_opt_out=opt_out,
        )  # fmt: skip
        s.add(e)
        s.flush()
        return e.id


def notices_of(settings: Settings, enterprise_id: int) -> list[Notice]:
    with transaction(settings.db_url) as s:
        rows = list(s.scalars(select(Notice).where(Notice.enterprise_id == enterprise_id).order_by(Notice.id)))
        s.expunge_all()
        return rows


def ledger(settings: Settings, key: str) -> PolicyPush | None:
    with transaction(settings.db_url) as s:
        row = s.scalar(select(PolicyPush).where(PolicyPush.key == key))
        if row is not None:
            s.expunge(row)
        return row


def tagged_config(tag: str, base: dict = REVIEW_CONFIG, **changes: object) -> dict:
    config = copy.deepcopy(base)
    config["name"] = f"宜昌市测试政策资金事项{tag}"
    config["conditions"] = {"field": "tags", "op": "has_tag", "value": tag}
    config["window"] = {"start": "2026-10-12", "end": "2026-12-31"}
    config.update(changes)
    return config


def list_item(client: TestClient, settings: Settings, tag: str, *, push: bool = True) -> dict:
    """List a fund item for the tag; with `push`, the dispatcher's next round expands its listing push."""
    dept = auth(settings, "department", "YC-JXJ")
    code = f"T-{uuid.uuid4().hex[:10].upper()}"
    r = client.post(f"{API}/fund-items", json={"code": code, "config": tagged_config(tag)}, headers=dept)
    assert r.status_code == 201, r.text
    assert client.post(f"{API}/fund-items/{code}/submit", headers=dept).status_code == 200
    r = client.post(f"{API}/fund-items/{code}/list", headers=dept)
    assert r.status_code == 200, r.text
    if push:
        expand_listing_pushes(settings.db_url)
    return r.json()


def item_id(settings: Settings, code: str) -> int:
    from db.repositories import fund_items

    with transaction(settings.db_url) as s:
        return fund_items.get_by_code(session=s, code=code).id


def drain(settings: Settings) -> int:
    """Dispatch through the outbox until nothing is due; returns notices delivered."""
    dispatcher = Dispatcher(db_url=settings.db_url, fernet_key=settings.fernet_key(), provider=OutboxProvider())
    delivered = 0
    while (report := dispatcher.dispatch_due()).claimed:
        delivered += report.delivered
    return delivered


# -- after listing --------------------------------------------------------------------------------------------------


def test_listing_pushes_every_matched_enterprise_once(client: TestClient, settings: Settings) -> None:
    tag = f"标签{uuid.uuid4().hex[:6]}"
    reached = [add_enterprise(settings, tag, phone=f"1391111{i:04d}") for i in range(3)]
    refused = add_enterprise(settings, tag, opt_out=True)
    no_phone = add_enterprise(settings, tag, phone=None)
    other = add_enterprise(settings, f"别的{tag}")

    item = list_item(client, settings, tag, push=False)
    assert LISTING_PUSH_NOTE in item["notes"]
    fid = item_id(settings, item["code"])
    # Listing only records that the push is due: the dispatcher's round sends it, outside the listing request.
    assert all(notices_of(settings, e) == [] for e in reached)
    report = expand_listing_pushes(settings.db_url)
    assert (report.pushes, report.matched, report.queued, report.opted_out, report.no_phone) == (1, 5, 3, 1, 1)
    assert expand_listing_pushes(settings.db_url).pushes == 0  # expanded once
    for ent in reached:
        [n] = notices_of(settings, ent)
        assert (n.category, n.template_key, n.status, n.case_id, n.fund_item_id) == (
            "push", "policy_push_listed", "queued", None, fid)  # fmt: skip
        assert n.dedupe_key == f"push:listed:{fid}:{ent}"
        assert n.params["item"] == f"宜昌市测试政策资金事项{tag}" and n.params["deadline"] == "2026年12月31日"
        assert n.content == (f"【惠企直达】{n.params['enterprise']}：新上线政策资金事项“宜昌市测试政策资金事项{tag}”，"
                             "贵单位可能符合条件，办理截止2026年12月31日，请登录平台查看。拒收请回复R")  # fmt: skip
        assert n.phone_masked.startswith("139****") and crypto.decrypt(settings.fernet_key(), n.phone_enc)
    assert notices_of(settings, refused) == notices_of(settings, no_phone) == notices_of(settings, other) == []
    row = ledger(settings, f"listed:{fid}:v1")
    assert (row.matched, row.queued, row.opted_out, row.no_phone, row.actor) == (5, 3, 1, 1, "department:YC-JXJ")

    # Pushing again (or a later version) reaches only enterprises not pushed yet.
    late = add_enterprise(settings, tag, phone="13922223333")
    dept = auth(settings, "department", "YC-JXJ")
    r = client.post(f"{API}/pushes/listed/{fid}", headers=dept)
    assert r.status_code == 202 and r.json()["scheduled"] is True
    again = expand_listing_pushes(settings.db_url)
    assert (again.matched, again.queued, again.opted_out, again.no_phone) == (6, 1, 1, 1)
    assert all(len(notices_of(settings, e)) == 1 for e in [*reached, late])
    assert client.post(f"{API}/pushes/listed/{fid}", headers=auth(settings, "department", "YC-RSJ")).status_code == 404

    # The dispatcher sends them; the pages count them as pushes.
    assert drain(settings) >= 4
    stats = client.get(f"{API}/sms/stats", headers=auth(settings, "finance", "YC-CZJ")).json()["items"]
    mine = next(r for r in stats if r["fund_item_id"] == fid)
    assert (mine["pushes"], mine["case_notices"], mine["delivered"]) == (4, 0, 4)
    summary = client.get(f"{API}/pushes?fund_item_id={fid}", headers=dept).json()["kinds"]
    assert summary[1] == {"kind": "listed", "label": "上架后推送", "pushes": 1, "matched": 6, "queued": 4,
                          "opted_out": 1, "no_phone": 1}  # fmt: skip


def test_listing_push_scales_in_one_statement(client: TestClient, settings: Settings) -> None:
    """2,000 matched enterprises are queued by one dispatcher round after the listing (one INSERT … SELECT)."""
    tag = f"批量{uuid.uuid4().hex[:6]}"
    key = settings.fernet_key()
    phone_enc = crypto.encrypt(key, "13700001111")
    with transaction(settings.db_url) as s:
        s.execute(
            Enterprise.__table__.insert(),
            [{"uscc": new_uscc(), "name": f"批量企业{i}", "region_code": "110105", "tags": [tag],
              "contact_phone_enc": phone_enc, "contact_phone_masked": "137****1111"} for i in range(2000)],
        )  # fmt: skip
    started = datetime.now(UTC)
    item = list_item(client, settings, tag, push=False)
    assert LISTING_PUSH_NOTE in item["notes"]
    dispatcher = Dispatcher(db_url=settings.db_url, fernet_key=settings.fernet_key(), provider=OutboxProvider())
    assert dispatcher.run_round()["listing_pushes"]["queued"] == 2000
    assert (datetime.now(UTC) - started) < timedelta(seconds=20)
    with transaction(settings.db_url) as s:
        fid = item_id(settings, item["code"])
        keys = set(s.scalars(select(Notice.dedupe_key).where(Notice.fund_item_id == fid)))
    assert len(keys) == 2000


# -- after registration ---------------------------------------------------------------------------------------------


def test_registration_pushes_matched_listed_items(client: TestClient, settings: Settings) -> None:
    tag = f"注册{uuid.uuid4().hex[:6]}"
    list_item(client, settings, tag)
    admin = auth(settings, "admin", "ops")
    body = {"uscc": new_uscc(), "name": "北京新登记科技有限公司", "region_code": "110105", "tags": [tag],
            "contact_phone": "139 0000 1234"}  # fmt: skip
    r = client.post(f"{API}/enterprises", json=body, headers=admin)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["contact_phone_masked"] == "139****1234" and out["push"] == {"matched": 1, "queued": 1, "opted_out": 0,
                                                                          "no_phone": 0}  # fmt: skip
    [n] = notices_of(settings, out["id"])
    assert (n.category, n.template_key, n.dedupe_key) == (
        "push",
        "policy_push_registered",
        f"push:registered:{out['id']}",
    )
    assert n.content == (f"【惠企直达】北京新登记科技有限公司：欢迎使用惠企直达。根据贵单位信息已匹配1项惠企政策，"
                         f"如“宜昌市测试政策资金事项{tag}”，请登录平台查看。拒收请回复R")  # fmt: skip
    assert client.post(f"{API}/enterprises", json=body, headers=admin).status_code == 409

    # Registered refusing pushes: nothing is pushed, the ledger says why.
    refusing = body | {"uscc": new_uscc(), "push_opt_out": True}
    out = client.post(f"{API}/enterprises", json=refusing, headers=admin).json()
    assert out["push"] == {"matched": 1, "queued": 0, "opted_out": 1, "no_phone": 0}
    assert notices_of(settings, out["id"]) == []
    # Matching nothing: no push either.
    plain = body | {"uscc": new_uscc(), "tags": []}
    out = client.post(f"{API}/enterprises", json=plain, headers=admin).json()
    assert out["push"]["matched"] == 0 and notices_of(settings, out["id"]) == []
    # An enterprise registers itself only; bad input names the field.
    own = body | {"uscc": new_uscc()}
    assert (
        client.post(f"{API}/enterprises", json=own, headers=auth(settings, "enterprise", own["uscc"])).status_code
        == 201
    )
    other = body | {"uscc": new_uscc()}
    assert (
        client.post(f"{API}/enterprises", json=other, headers=auth(settings, "enterprise", own["uscc"])).status_code
        == 403
    )
    assert client.post(f"{API}/enterprises", json=other, headers=auth(settings, "enterprise", "X")).status_code == 403
    bad = client.post(f"{API}/enterprises", json=body | {"uscc": new_uscc(), "contact_phone": "0717-6222001"},
                      headers=admin)  # fmt: skip
    assert bad.status_code == 422 and bad.json()["error"]["errors"][0]["field"] == "contact_phone"
    assert "不是手机号码" in bad.json()["error"]["errors"][0]["message"]


# -- at payout ------------------------------------------------------------------------------------------------------


def _paid_case(settings: Settings, fund_item_id: int, enterprise_id: int, closed_at: datetime) -> int:
    with transaction(settings.db_url) as s:
        case = Case(fund_item_id=fund_item_id, fund_item_version=1, enterprise_id=enterprise_id, mode="instant",
                    status="paid", amount_fen=12_345_600, paid_fen=12_345_600,
                    workflow_id=f"payout:{fund_item_id}:{enterprise_id}", closed_at=closed_at)  # fmt: skip
        s.add(case)
        s.flush()
        return case.id


def test_payout_push_names_other_matched_policies_and_respects_opt_out(client: TestClient, settings: Settings) -> None:
    tag = f"兑付{uuid.uuid4().hex[:6]}"
    with transaction(settings.db_url) as s:
        paid_item = add_listed_item(session=s, code=f"P-{uuid.uuid4().hex[:10].upper()}", department_code="YC-JXJ",
                                    config=tagged_config(tag, DEMO_CONFIG, window={"start": "2026-04-01",
                                                                                   "end": "2027-03-31"}))  # fmt: skip
        other_cfg = tagged_config(tag, DEMO_CONFIG, window={"start": "2026-04-01", "end": "2027-03-31"})
        other_cfg["name"] = f"宜昌市另一项政策{tag}"
        other_cfg["policy"] = dict(other_cfg["policy"], doc_number=f"宜测〔2026〕{tag}号")
        add_listed_item(
            session=s, code=f"Q-{uuid.uuid4().hex[:10].upper()}", department_code="YC-JXJ", config=other_cfg
        )
        paid_item_id = paid_item.id
    now = datetime.now(UTC)
    fan = add_enterprise(settings, tag, phone="13633334444")
    refuser = add_enterprise(settings, tag, phone="13633335555")
    loner = add_enterprise(settings, f"单项{tag}")  # matches no other listed item
    fan_case = _paid_case(settings, paid_item_id, fan, now - timedelta(minutes=10))
    refuser_case = _paid_case(settings, paid_item_id, refuser, now - timedelta(minutes=10))
    loner_case = _paid_case(settings, paid_item_id, loner, now - timedelta(minutes=10))
    recent = add_enterprise(settings, tag, phone="13633336666")
    _paid_case(settings, paid_item_id, recent, now)  # paid just now: its own "paid" notice goes first

    # The enterprise opts out through the API; its case notices still go out.
    refuser_uscc = _uscc(settings, refuser)
    headers = auth(settings, "enterprise", refuser_uscc)
    r = client.put(f"{API}/enterprises/{refuser_uscc}/push-preference", json={"opt_out": True}, headers=headers)
    assert r.status_code == 200 and r.json()["push_opt_out"] is True and "办件进度通知" in r.json()["note"]
    assert client.put(f"{API}/enterprises/{refuser_uscc}/push-preference", json={"opt_out": False},
                      headers=auth(settings, "department", "YC-JXJ")).status_code == 403  # fmt: skip

    report = push_paid_due(settings.db_url, now=now, delay_seconds=300)
    assert (report.pushes, report.queued, report.opted_out, report.matched) == (3, 1, 1, 2)
    [n] = notices_of(settings, fan)
    assert (n.category, n.template_key, n.dedupe_key, n.case_id) == (
        "push",
        "policy_push_paid",
        f"push:paid:{fan_case}",
        None,
    )
    assert n.content == (f"【惠企直达】{n.params['enterprise']}：“宜昌市测试政策资金事项{tag}”资金壹拾贰万叁仟肆佰伍拾陆元整已兑付。"
                         "平台还为贵单位匹配了1项可享政策，请登录平台查看。拒收请回复R")  # fmt: skip
    assert notices_of(settings, refuser) == [] and ledger(settings, f"paid:{refuser_case}").opted_out == 1
    assert notices_of(settings, loner) == [] and ledger(settings, f"paid:{loner_case}").matched == 0
    assert notices_of(settings, recent) == []
    # Once per case: the next round queues nothing more; later the recent one gets its push.
    assert push_paid_due(settings.db_url, now=now, delay_seconds=300).pushes == 0
    assert push_paid_due(settings.db_url, now=now + timedelta(minutes=6), delay_seconds=300).queued == 1
    assert len(notices_of(settings, fan)) == 1 and len(notices_of(settings, recent)) == 1


def _uscc(settings: Settings, enterprise_id: int) -> str:
    with transaction(settings.db_url) as s:
        return s.get(Enterprise, enterprise_id).uscc


# -- opt-out never touches case notices -----------------------------------------------------------------------------


def test_opt_out_withdraws_pushes_but_never_case_notices(client: TestClient, settings: Settings) -> None:
    tag = f"退订{uuid.uuid4().hex[:6]}"
    ent = add_enterprise(settings, tag, phone="13544445555")
    uscc = _uscc(settings, ent)
    list_item(client, settings, tag)
    key = settings.fernet_key()
    with transaction(settings.db_url) as s:
        e = s.get(Enterprise, ent)
        for stage, category in (("received", "case"), ("approved", "case")):
            s.add(Notice(dedupe_key=f"case:t{ent}:{stage}", enterprise_id=ent, template_key=stage, category=category,
                         params={"enterprise": e.name, "item": "高企奖励", "case_no": "ZD0000000001",
                                 "amount_caps": "壹万元整", "amount": "10,000.00元"},
                         content=f"{stage} 通知", phone_enc=crypto.encrypt(key, "13544445555"), phone_masked=None,
                         status="queued"))  # fmt: skip
    headers = auth(settings, "enterprise", uscc)
    r = client.put(f"{API}/enterprises/{uscc}/push-preference", json={"opt_out": True}, headers=headers)
    assert r.json()["withdrawn"] == 1
    by_key = {n.template_key: n for n in notices_of(settings, ent)}
    assert by_key["policy_push_listed"].status == "cancelled"
    assert by_key["received"].status == by_key["approved"].status == "queued"

    # A push queued after the choice (a race with the listing) is withdrawn by the dispatcher, not sent.
    with transaction(settings.db_url) as s:
        s.get(Notice, by_key["policy_push_listed"].id).status = "queued"
    drain(settings)
    by_key = {n.template_key: n for n in notices_of(settings, ent)}
    assert by_key["policy_push_listed"].status == "cancelled" and "退订" in by_key["policy_push_listed"].fail_reason
    assert by_key["received"].status == by_key["approved"].status == "delivered"

    # Opting in again: pushes resume.
    r = client.put(f"{API}/enterprises/{uscc}/push-preference", json={"opt_out": False}, headers=headers)
    assert r.json() == {"uscc": uscc, "push_opt_out": False, "opted_out_at": None, "withdrawn": 0,
                        "note": "已开启政策推送短信：新上架且符合条件的政策将短信告知。"}  # fmt: skip
    rows = client.get(f"{API}/enterprises/{uscc}/notice-list", headers=headers).json()
    assert {(r["category_label"], r["status_label"]) for r in rows} == {("政策推送", "已撤回"), ("办件通知", "已送达")}
    assert all(r["phone_masked"] == "135****5555" for r in rows if r["category"] == "case")


# -- the department/finance page ------------------------------------------------------------------------------------


def test_statistics_page_splits_case_notices_and_pushes_and_lists_failures(
    client: TestClient, settings: Settings
) -> None:
    tag = f"统计{uuid.uuid4().hex[:6]}"
    ent = add_enterprise(settings, tag, phone="13455556666")
    item = list_item(client, settings, tag)
    fid = item_id(settings, item["code"])
    with transaction(settings.db_url) as s:
        s.add(Notice(dedupe_key=f"stat:{ent}", enterprise_id=ent, template_key="approved", params={}, category="case",
                     content="审核通过通知", phone_masked="134****6666", status="failed", fund_item_id=fid,
                     fail_reason="运营商回执：MK:0001（空号）"))  # fmt: skip

    def page(path: str, role: str, subject: str):
        token = mint(settings.jwt_key(), role=role, subject=subject)
        return client.get(path, headers={"Cookie": f"zhida_token={token}"})

    r = page("/web/sms", "finance", "YC-CZJ")
    assert r.status_code == 200 and "短信统计（按资金事项）" in r.text
    row = re.search(rf"<tr><td>{item['code']}</td>.*?</tr>", r.text, re.S).group(0)
    cells = re.findall(r"<td>(.*?)</td>", row, re.S)
    assert cells[2:10] == ["2", "1", "1", "1", "0", "0", "1", "0"]  # total, case, push, pending, sent, delivered…
    assert f'href="/web/sms/{fid}/failures"' in row
    assert "上架后推送" in r.text and "兑付时推送" in r.text  # the push ledger, finance sees all
    assert item["code"] not in page("/web/sms", "department", "YC-RSJ").text  # another department's item
    r = page(f"/web/sms/{fid}/failures", "department", "YC-JXJ")
    assert r.status_code == 200 and "134****6666" in r.text and "运营商回执：MK:0001（空号）" in r.text
    assert page(f"/web/sms/{fid}/failures", "department", "YC-RSJ").status_code == 404
    assert page("/web/sms", "enterprise", _uscc(settings, ent)).status_code == 403
    assert page("/web/sms", "department", "NOPE").status_code == 401
    only_push = client.get(f"{API}/sms/stats?category=push", headers=auth(settings, "finance", "YC-CZJ")).json()
    assert next(r for r in only_push["items"] if r["fund_item_id"] == fid)["total"] == 1
