"""The enterprise side without Temporal: the policy calculator agrees with the dry run, applications outside the
window or without a payout account are refused before anything is created, and the payout account is checked."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.auth import mint
from cli.demo import DEMO_CONFIG, DEMO_ITEMS, add_listed_item, demo_enterprise_uscc, ensure_demo
from db.migrate import upgrade
from db.models import Case, Enterprise
from db.repositories import fund_items, matching
from db.session import engine_for, transaction
from rules.conditions import evaluate
from schemas.cases import ApplicationIn
from schemas.principal import Principal
from services import calculator
from services.cases import create_application, window_refusal
from services.errors import Conflict
from services.scope import Scope
from settings import Settings
from tests.conftest import _drop_postgres_database, _fresh_postgres_database
from tests.factories import clone_enterprise, fresh_uscc

LATE_ITEM = "YC-T-CALC-LATE"  # an instant item whose window opens next year


@pytest.fixture(scope="module")
def settings(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    folder: Path = tmp_path_factory.mktemp("calculator")
    name = None
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{folder / 'api.db'}"
    else:
        url, name = _fresh_postgres_database()
    upgrade(url)
    settings = Settings(data_dir=folder, database_url=url, jwt_secret="calculator-test-secret-" + "x" * 24)
    assert ensure_demo(settings)
    late = copy.deepcopy(DEMO_CONFIG) | {"name": "宜昌市2027年度专精特新企业奖励（测试，尚未开始申报）"}
    late["window"] = {"start": "2099-01-02", "end": "2099-03-31"}
    with transaction(url) as session:
        add_listed_item(session=session, code=LATE_ITEM, department_code="YC-JXJ", config=late)
    yield settings
    engine_for(url).dispose()
    if name:
        _drop_postgres_database(name)


@pytest.fixture(scope="module")
def client(settings: Settings) -> TestClient:
    app = create_app(settings)
    app.state.temporal = object()  # never called: every application here is refused before its workflow starts
    return TestClient(app)


def auth(settings: Settings, uscc: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(settings.jwt_key(), role='enterprise', subject=uscc)}"}


def test_the_calculator_agrees_with_the_dry_run_for_every_demo_enterprise(settings: Settings) -> None:
    with transaction(settings.db_url) as session:
        listed = fund_items.listed_items(session=session)
        assert len(listed) == len(DEMO_ITEMS) + 1
        selected = {
            item.code: set(
                matching.matched_ids(
                    session=session,
                    conditions=fund_items.version(
                        session=session, fund_item_id=item.id, number=item.listed_version
                    ).config["conditions"],
                )
            )
            for item in listed
        }
        configs = {
            item.code: fund_items.version(session=session, fund_item_id=item.id, number=item.listed_version).config
            for item in listed
        }
        everyone = list(session.scalars(select(Enterprise)))
        near_misses = 0
        for enterprise in everyone:
            out = calculator.calculate_for(session=session, enterprise=enterprise)
            assert {r.code for r in out.items} == set(selected)
            for row in out.items:
                assert row.matched == (enterprise.id in selected[row.code]), (enterprise.uscc, row.code)
                assert row.matched == (not row.shortfalls)
                # The calculator's short path explains exactly what the full evaluation marks as blocking.
                assert [s.text for s in row.shortfalls] == evaluate(configs[row.code]["conditions"], enterprise).unmet_texts()
                near_misses += len(row.shortfalls) == 1
            assert out.expected_total_fen == sum(r.amount_fen or 0 for r in out.items if r.matched)
        assert near_misses > 0


def test_a_near_miss_says_what_is_missing(settings: Settings) -> None:
    with transaction(settings.db_url) as session:
        demo = session.scalar(select(Enterprise).where(Enterprise.uscc == demo_enterprise_uscc()))
        plain = clone_enterprise(session, demo, tags=[])
        out = calculator.calculate_for(session=session, enterprise=plain)
        row = next(r for r in out.items if r.code == DEMO_CONFIG_CODE)
        assert not row.matched and row.amount_fen is None
        assert len(row.shortfalls) == 1 and "专精特新" in row.shortfalls[0].text, row.shortfalls
        session.rollback()


DEMO_CONFIG_CODE = DEMO_ITEMS[0][0]


def test_the_calendar_lists_open_items_by_closing_date_then_those_to_come(settings: Settings) -> None:
    with transaction(settings.db_url) as session:
        demo = session.scalar(select(Enterprise).where(Enterprise.uscc == demo_enterprise_uscc()))
        today = date(2026, 12, 1)
        rows = calculator.calendar(calculator.calculate_for(session=session, enterprise=demo, today=today).items, today)
    opened = [r for r in rows if r.open_now]
    assert [r.window_end for r in opened] == sorted(r.window_end for r in opened) and opened
    assert rows[-1].code == LATE_ITEM and not rows[-1].open_now
    assert all(r.days_left and r.days_left > 0 for r in opened)


def test_window_refusals_name_the_dates() -> None:
    window = (date(2026, 12, 8), date(2026, 12, 31))
    assert window_refusal(window, date(2026, 12, 8)) is None and window_refusal(window, date(2026, 12, 31)) is None
    early = window_refusal(window, date(2026, 12, 7))
    assert early and "尚未开始" in early and "2026年12月08日" in early and "2026年12月31日" in early
    late = window_refusal(window, date(2027, 1, 1))
    assert late and "已截止" in late and "2026年12月31日" in late


def test_an_application_outside_the_window_is_refused_in_local_dates(settings: Settings) -> None:
    uscc = demo_enterprise_uscc()
    scope = Scope(principal=Principal(role="admin", subject="admin"))
    body = ApplicationIn(fund_item_code=DEMO_CONFIG_CODE, uscc=uscc)
    with transaction(settings.db_url) as session:
        with pytest.raises(Conflict, match="申报已截止：申报期为 2026年04月01日 至 2027年03月31日") as refused:
            create_application(session=session, scope=scope, body=body, workflow_key=b"test", today=date(2027, 4, 1))
        assert refused.value.rule == "window"
        session.rollback()


def test_the_api_refuses_an_application_before_the_window_opens(client: TestClient, settings: Settings) -> None:
    uscc = demo_enterprise_uscc()
    r = client.post(
        "/api/v1/applications", json={"fund_item_code": LATE_ITEM, "uscc": uscc}, headers=auth(settings, uscc)
    )
    assert r.status_code == 409, r.text
    assert "申报尚未开始：申报期为 2099年01月02日 至 2099年03月31日" in r.text
    with transaction(settings.db_url) as session:
        assert session.scalar(select(Case).where(Case.workflow_id.contains(LATE_ITEM))) is None


def _register(client: TestClient, settings: Settings, **extra: object) -> tuple[str, object]:
    uscc = fresh_uscc("420502")
    body = {"uscc": uscc, "name": f"宜昌收款测试{uscc[-6:]}有限公司", "region_code": "420502", "tags": ["专精特新"]}
    body |= extra
    if callable(body.get("payout_account")):
        body["payout_account"] = body["payout_account"](body["name"])  # type: ignore[operator]
    return uscc, client.post("/api/v1/enterprises", json=body, headers=auth(settings, uscc))


def account(name: str) -> dict[str, str]:
    return {"acct_name": name, "acct_no": "6222020200112233", "bank_name": "中国工商银行宜昌分行", "bank_code": "102526000012"}


def test_registration_keeps_the_payout_account_encrypted_and_masked(client: TestClient, settings: Settings) -> None:
    uscc, r = _register(client, settings, payout_account=account)
    assert r.status_code == 201, r.text
    with transaction(settings.db_url) as session:
        e = session.scalar(select(Enterprise).where(Enterprise.uscc == uscc))
        assert e.bank_account_masked == "6222****2233" and "6222020200112233" not in (e.bank_account_enc or "")
        assert e.bank_code == "102526000012" and e.bank_account_name == e.name


def test_an_account_in_another_name_is_refused_naming_the_field_and_rule(client: TestClient, settings: Settings) -> None:
    _, r = _register(client, settings, payout_account=lambda name: account("别的公司"))
    assert r.status_code == 422, r.text
    error = r.json()
    assert "户名" in r.text and "企业登记名称" in r.text and "payout_account.acct_name" in r.text, error


def test_an_application_without_an_account_asks_for_it_before_anything_is_reserved(
    client: TestClient, settings: Settings
) -> None:
    uscc, r = _register(client, settings)
    assert r.status_code == 201, r.text
    r = client.post(
        "/api/v1/applications", json={"fund_item_code": DEMO_CONFIG_CODE, "uscc": uscc}, headers=auth(settings, uscc)
    )
    assert r.status_code == 409 and "请先填写收款账户" in r.text, r.text
    # Filed afterwards through the API, the account is masked in the answer; a wrong name is refused.
    bad = client.put(f"/api/v1/enterprises/{uscc}/payout-account", json=account("某公司"), headers=auth(settings, uscc))
    assert bad.status_code == 422 and "收款账户户名须与企业登记名称完全一致" in bad.text
    with transaction(settings.db_url) as session:
        name = session.scalar(select(Enterprise.name).where(Enterprise.uscc == uscc))
    ok = client.put(f"/api/v1/enterprises/{uscc}/payout-account", json=account(name), headers=auth(settings, uscc))
    assert ok.status_code == 200 and ok.json()["acct_no_masked"] == "6222****2233", ok.text


def test_the_calculator_api_is_the_enterprise_s_own(client: TestClient, settings: Settings) -> None:
    uscc = demo_enterprise_uscc()
    r = client.get(f"/api/v1/enterprises/{uscc}/calculator", headers=auth(settings, uscc))
    assert r.status_code == 200, r.text
    assert r.json()["matched"] >= 1 and any(i["code"] == DEMO_CONFIG_CODE and i["matched"] for i in r.json()["items"])
    other = fresh_uscc()
    assert client.get(f"/api/v1/enterprises/{other}/calculator", headers=auth(settings, uscc)).status_code in (401, 404)


def test_withdrawing_an_instant_case_is_refused_in_chinese(client: TestClient, settings: Settings) -> None:
    with transaction(settings.db_url) as session:
        demo = session.scalar(select(Enterprise).where(Enterprise.uscc == demo_enterprise_uscc()))
        uscc = clone_enterprise(session, demo).uscc  # with the demo's account: its own case, no other test's
        case, _ = create_application(
            session=session,
            scope=Scope(principal=Principal(role="enterprise", subject=uscc)),
            body=ApplicationIn(fund_item_code=DEMO_CONFIG_CODE, uscc=uscc),
            workflow_key=b"test",
        )
        case_id = case.id
    r = client.post(f"/api/v1/cases/{case_id}/withdraw", json={}, headers=auth(settings, uscc))
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["message"].startswith("即申即享办件提交后由系统即时核验并拨付，不能撤回")
    assert error["errors"][0]["rule"] == "withdraw_not_allowed" and "Update handler" not in r.text


def test_the_no_account_notice_says_there_is_no_account() -> None:
    from rules.sms_templates import TEMPLATES

    text = TEMPLATES["payment_no_account"].render(
        {"enterprise": "宜昌甲公司", "item": "某事项", "amount_caps": "壹万元整", "deadline": "2026年12月08日"}
    )
    assert "未登记收款账户" in text and "被银行退回" not in text and "不保留资金额度" in text


def _typed_in(facts: dict) -> dict[str, str]:
    """An enterprise's facts as a visitor would type them into the self-test (元, %, dates, tags)."""
    from schemas.fields import FIELDS, FieldType

    form = {}
    for name, value in facts.items():
        kind = FIELDS[name].type
        if value in (None, []):
            continue
        if kind is FieldType.MONEY_FEN or kind is FieldType.RATIO_BP:
            form[name] = f"{value // 100}.{value % 100:02d}"
        elif kind is FieldType.TAGS:
            form[name] = "、".join(value)
        else:
            form[name] = str(value)
    return form


def test_the_self_test_answers_as_the_calculator_for_the_same_facts(settings: Settings) -> None:
    """政策自测 reads typed-in facts into the calculator's facts and evaluates them with the calculator's own rows."""
    from rules.conditions import facts_of
    from rules.self_test import parse_facts

    with transaction(settings.db_url) as session:
        for enterprise in list(session.scalars(select(Enterprise)))[:6]:
            facts, errors = parse_facts(_typed_in(facts_of(enterprise)))
            assert errors == {} and facts == facts_of(enterprise)
            mine = calculator.calculate_for(session=session, enterprise=enterprise)
            typed = calculator.self_test(session=session, facts=facts)
            assert [(r.code, r.matched, r.amount_fen, [s.text for s in r.shortfalls]) for r in typed.items] == [
                (r.code, r.matched, r.amount_fen, [s.text for s in r.shortfalls]) for r in mine.items
            ]
            assert typed.expected_total_fen == mine.expected_total_fen


def test_the_self_test_page_is_open_to_anyone_and_bounds_its_input(client: TestClient, settings: Settings) -> None:
    from schemas.fields import FIELDS

    client.cookies.clear()
    page = client.get("/web/self-test")
    assert page.status_code == 200 and all(spec.label in page.text for spec in FIELDS.values())
    assert "专精特新" in page.text  # a tag the listed items ask about is offered as a choice
    with transaction(settings.db_url) as session:
        demo = session.scalar(select(Enterprise).where(Enterprise.uscc == demo_enterprise_uscc()))
        from rules.conditions import facts_of

        form = _typed_in(facts_of(demo)) | {"tags": ""}
    answer = client.get("/web/self-test", params=form)
    assert answer.status_code == 200 and 'id="self-test-result"' in answer.text
    assert "不足之处" in answer.text and "专精特新" in answer.text  # the tag it lacks now, named
    bad = client.get("/web/self-test", params={"employees": "-3", "revenue_fen": "12.345", "rd_ratio_bp": "120",
                                                "registered_on": "1800-01-01", "size_class": "巨型",
                                                "tags": "、".join(f"标签{i}" for i in range(30)),
                                                "region_code": "110101", "industry_code": "C\u202e"})  # fmt: skip
    assert bad.status_code == 422 and 'id="self-test-result"' not in bad.text
    for text in ("从业人数：须为 0 至", "营业收入：须为数字，最多两位小数", "研发投入占比：须在 0 至 100% 之间",
                 "成立日期：日期须在 1900-01-01", "企业规模：须为", "资质标签：至多 20 个", "不在本平台服务范围内",
                 "所属行业：不得包含控制字符"):  # fmt: skip
        assert text in bad.text, text


def test_my_enterprise_shows_region_and_industry_by_name(client: TestClient, settings: Settings) -> None:
    from schemas.regions import industry_name, region_name

    with transaction(settings.db_url) as session:
        demo = session.scalar(select(Enterprise).where(Enterprise.uscc == demo_enterprise_uscc()))
        region, industry = demo.region_code, demo.industry_code
    assert region and industry
    client.cookies.clear()
    token = mint(settings.jwt_key(), role="enterprise", subject=demo_enterprise_uscc())
    page = client.get("/web/me/enterprise", headers={"Cookie": f"zhida_token={token}"})
    assert page.status_code == 200
    facts = page.text[page.text.index('id="facts"'):page.text.index("</dl>")]
    assert region_name(region) in facts and industry_name(industry) in facts
    assert region not in facts and industry not in facts  # names, never codes
