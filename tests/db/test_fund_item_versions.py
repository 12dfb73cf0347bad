"""Fund item lifecycle and versions: draft → submitted → listed → closed/delisted, frozen versions, pinned cases,
and the 5-working-day listing rule (Yichang rules art. 20) on the calendar stored in the database."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy.orm import Session

from api.auth import Principal
from db.migrate import upgrade
from db.models import Enterprise
from db.repositories import budget, cases, enterprises
from db.repositories import calendar as calendar_repo
from db.repositories import fund_items as repo
from db.session import transaction
from rules.amounts import compute_amount
from rules.calendar import WorkCalendar
from schemas import uscc as uscc_rules
from schemas.cases import ApplicationIn
from schemas.fund_items import (
    EXAMPLE_INSTANT,
    EXAMPLE_NO_APPLICATION,
    EXAMPLE_REVIEW,
    ApplicationWindow,
    FundItemConfig,
    FundItemCreate,
)
from services import fund_items as service
from services.cases import create_application
from services.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from services.scope import Scope

DEPARTMENTS = [("T-JXJ", "测试经信局", "policy"), ("T-CZJ", "测试财政局", "finance"), ("T-FGW", "测试发改委", "policy"),
               ("T-SJJ", "测试数据局", "policy"), ("T-RSJ", "测试人社局", "policy")]  # fmt: skip
JXJ = Principal(role="department", subject="T-JXJ")
ADMIN = Principal(role="admin", subject="ops")
WINDOW = {"start": "2026-10-12", "end": "2026-12-31"}  # a Monday right after National Day 2026
IN_TIME = date(2026, 9, 29)  # the 5th working day before 2026-10-12 (10-01..10-07 off, 10-10 worked)


@pytest.fixture
def world(session: Session) -> Iterator[Session]:
    calendar_repo.seed_from_chinese_calendar(session=session)
    for code, name, kind in DEPARTMENTS:
        if repo.department_by_code(session=session, code=code) is None:
            repo.add_department(session=session, code=code, name=name, region_code="420500", kind=kind)
    yield session


def config(base: dict[str, Any] = EXAMPLE_REVIEW, **changes: Any) -> FundItemConfig:
    """An example configuration moved to the test departments, a policy of its own, and `changes`."""
    data = json.loads(json.dumps(base).replace('"YC-', '"T-'))
    data["policy"]["doc_number"] = f"测试〔2026〕{uuid.uuid4().hex[:8]}号"
    data.setdefault("window", None)
    if base is not EXAMPLE_NO_APPLICATION:
        data["window"] = WINDOW
    data.update(changes)
    return FundItemConfig.model_validate(data)


def new_code() -> str:
    return f"T-{uuid.uuid4().hex[:8].upper()}"


def create(session: Session, cfg: FundItemConfig | None = None, principal: Principal = JXJ) -> str:
    code = new_code()
    service.create_item(session=session, principal=principal, body=FundItemCreate(code=code, config=cfg or config()))
    return code


def listed(session: Session, cfg: FundItemConfig | None = None, today: date = IN_TIME) -> str:
    code = create(session, cfg)
    service.submit(session=session, principal=JXJ, code=code, today=today)
    service.list_item(session=session, principal=JXJ, code=code, today=today)
    return code


def refused(session: Session, error: type[DomainError], call: Callable[[], Any]) -> DomainError:
    """The call fails with `error`; whatever it wrote is rolled back with a savepoint."""
    with pytest.raises(error) as info, session.begin_nested():
        call()
    return info.value


# ---------------------------------------------------------------- lifecycle


def test_draft_submit_list_close_delist(world: Session) -> None:
    s = world
    code = create(s)
    item = repo.get_by_code(session=s, code=code)
    assert item and (item.status, item.current_version, item.listed_version) == ("draft", 1, None)
    assert repo.version(session=s, fund_item_id=item.id, number=1).frozen is False

    # Editing a draft replaces version 1: still one version.
    out = service.save_draft(session=s, principal=JXJ, code=code, config=config(name="宜昌市技术改造补贴（修订）"))
    assert out.current_version == 1 and out.name == "宜昌市技术改造补贴（修订）"
    assert len(repo.versions(session=s, fund_item_id=item.id)) == 1

    out = service.submit(session=s, principal=JXJ, code=code, today=date(2026, 9, 1))
    assert out.status == "submitted"
    assert out.listing and out.listing.ok and out.listing.latest_listing_date == IN_TIME
    assert "请最迟于 2026-09-29 上架" in out.notes

    out = service.list_item(session=s, principal=JXJ, code=code, today=IN_TIME)
    assert (out.status, out.listed_version, out.pending_version) == ("listed", 1, None)
    assert out.version.frozen and out.version.listed
    assert out.listing and out.listing.ok and not out.listing.provisional
    # Budget lines come from the funding sources (市级 60% / 区级 40%).
    assert [(b.source, b.total_fen, b.budget_year) for b in out.budget_lines] == [
        ("市级财政", 1_200_000_000, 2026),
        ("区级财政", 800_000_000, 2026),
    ]
    assert budget.totals(session=s, fund_item_id=item.id)["total_fen"] == 2_000_000_000

    out = service.close(session=s, principal=JXJ, code=code, reason="申报期结束")
    assert out.status == "closed"
    out = service.delist(session=s, principal=JXJ, code=code, reason="政策执行期满")
    assert out.status == "delisted" and "在办办件按原版本继续办理" in out.notes[0]


def test_illegal_transitions_are_refused_with_the_status_named(world: Session) -> None:
    s = world
    code = create(s)
    assert (
        refused(s, Conflict, lambda: service.list_item(session=s, principal=JXJ, code=code, today=IN_TIME)).field
        == "status"
    )
    assert (
        refused(s, Conflict, lambda: service.delist(session=s, principal=JXJ, code=code, reason="测试")).field
        == "status"
    )
    assert (
        refused(s, Conflict, lambda: service.close(session=s, principal=JXJ, code=code, reason="测试")).field
        == "status"
    )
    service.submit(session=s, principal=JXJ, code=code, today=IN_TIME)
    err = refused(s, Conflict, lambda: service.submit(session=s, principal=JXJ, code=code, today=IN_TIME))
    assert "已提交" in err.message
    service.list_item(session=s, principal=JXJ, code=code, today=IN_TIME)
    err = refused(s, Conflict, lambda: service.list_item(session=s, principal=JXJ, code=code, today=IN_TIME))
    assert "没有待上架的新版本" in err.message
    err = refused(s, Conflict, lambda: service.submit(session=s, principal=JXJ, code=code, today=IN_TIME))
    assert "只有草稿可以提交" in err.message
    service.delist(session=s, principal=JXJ, code=code, reason="测试")
    err = refused(s, Conflict, lambda: service.close(session=s, principal=JXJ, code=code, reason="测试"))
    assert "只有已上架的事项可以结束受理" in err.message
    # A delisted item can be listed again (its start day unchanged: no 5-day limit).
    out = service.list_item(session=s, principal=JXJ, code=code, today=date(2026, 11, 2))
    assert out.status == "listed" and out.listed_version == 1 and out.listing and not out.listing.required


def test_editing_a_submitted_item_returns_it_to_draft(world: Session) -> None:
    s = world
    code = create(s)
    service.submit(session=s, principal=JXJ, code=code, today=IN_TIME)
    out = service.save_draft(session=s, principal=JXJ, code=code, config=config())
    assert out.status == "draft" and out.current_version == 1
    assert "事项已提交，修改后退回草稿，请重新提交" in out.notes


# ---------------------------------------------------------------- versions


def test_editing_a_listed_item_creates_the_next_version_and_keeps_the_listed_one(world: Session) -> None:
    s = world
    code = listed(s)
    item = repo.get_by_code(session=s, code=code)
    v1_config = dict(repo.version(session=s, fund_item_id=item.id, number=1).config)

    changed = config(budget={**EXAMPLE_REVIEW["budget"], "total_fen": 3_000_000_000})
    out = service.save_draft(session=s, principal=JXJ, code=code, config=changed)
    assert (out.status, out.current_version, out.listed_version, out.pending_version) == ("listed", 2, 1, 2)
    assert not out.version.frozen and not out.version.listed
    assert "已上架的第 1 版保持不变" in out.notes[0]
    assert repo.version(session=s, fund_item_id=item.id, number=1).config == v1_config

    # A second edit replaces the unfrozen version 2; no version 3.
    service.save_draft(session=s, principal=JXJ, code=code, config=changed)
    assert [v.version for v in service.versions(session=s, principal=JXJ, code=code)] == [1, 2]

    out = service.list_item(session=s, principal=JXJ, code=code, today=date(2026, 10, 20))
    assert (out.listed_version, out.pending_version) == (2, None)
    assert out.listing and not out.listing.required  # the window start did not move
    assert "预算额度已调整：市级财政 由 12,000,000.00元 调整为 18,000,000.00元" in out.notes
    assert "此前第 1 版上受理的办件继续按第 1 版办理" in out.notes
    summary = [(v.version, v.frozen, v.listed) for v in service.versions(session=s, principal=JXJ, code=code)]
    assert summary == [(1, True, False), (2, True, True)]
    assert service.version(session=s, principal=JXJ, code=code, number=1).config.budget.total_fen == 2_000_000_000


def test_frozen_versions_are_immutable_in_the_repository(world: Session) -> None:
    s = world
    code = listed(s)
    item = repo.get_by_code(session=s, code=code)
    v1 = repo.version(session=s, fund_item_id=item.id, number=1)
    original = dict(v1.config)
    with pytest.raises(repo.FrozenVersion):
        repo.update_config(session=s, draft=v1, config={**original, "name": "改名"})
    for change in (
        lambda: setattr(v1, "config", {**original, "name": "改名"}),
        lambda: setattr(v1, "frozen", False),
        lambda: setattr(v1, "version", 9),
        lambda: s.delete(v1),
    ):
        with pytest.raises(repo.FrozenVersion), s.begin_nested():
            change()
            s.flush()
    s.expire_all()
    assert repo.version(session=s, fund_item_id=item.id, number=1).config == original


def test_a_case_pinned_to_version_1_still_reads_version_1(world: Session) -> None:
    s = world
    code = listed(s, config(EXAMPLE_INSTANT, window={"start": "2026-04-01", "end": "2027-03-31"}), date(2026, 3, 20))
    item = repo.get_by_code(session=s, code=code)

    def apply(seed: int) -> Any:
        uscc = uscc_rules.generate(random.Random(seed), "420502")
        ent = enterprises.add(
            session=s,
            enterprise=Enterprise(
                uscc=uscc, name=f"宜昌测试企业{seed}", region_code="420502", tags=["专精特新"], bank_account_enc="x"
            ),
        )
        case, created = create_application(
            session=s,
            scope=Scope(principal=Principal(role="enterprise", subject=uscc)),
            body=ApplicationIn(fund_item_code=code, uscc=uscc),
            workflow_key=b"test",
        )
        assert created
        return case, ent

    first, ent1 = apply(1)
    assert first.fund_item_version == 1
    # The department raises the award to 20万 while the first case is under way.
    raised = config(EXAMPLE_INSTANT, window={"start": "2026-04-01", "end": "2027-03-31"},
                    standard={"kind": "fixed", "amount_fen": 20_000_000})  # fmt: skip
    service.save_draft(session=s, principal=JXJ, code=code, config=raised)
    service.list_item(session=s, principal=JXJ, code=code, today=date(2026, 5, 6))
    second, ent2 = apply(2)
    assert (second.fund_item_version, item.listed_version) == (2, 2)

    # What the case activities read (CaseActivities._load): the version the case pinned.
    s.expire_all()
    pinned = repo.version(
        session=s, fund_item_id=item.id, number=cases.get(session=s, case_id=first.id).fund_item_version
    )
    assert compute_amount(pinned.config["standard"], ent1).amount_fen == 10_000_000
    newer = repo.version(session=s, fund_item_id=item.id, number=second.fund_item_version)
    assert compute_amount(newer.config["standard"], ent2).amount_fen == 20_000_000


def test_mode_cannot_change_once_listed(world: Session) -> None:
    s = world
    code = listed(s)
    err = refused(s, Invalid, lambda: service.save_draft(session=s, principal=JXJ, code=code, config=config(
        EXAMPLE_INSTANT)))  # fmt: skip
    assert err.field == "mode" and "不能变更兑付方式" in err.message
    # A draft never listed may still change its mode.
    draft = create(s)
    out = service.save_draft(session=s, principal=JXJ, code=draft, config=config(EXAMPLE_INSTANT))
    assert out.mode == "instant"


def test_budget_cannot_fall_below_what_is_reserved(world: Session) -> None:
    s = world
    code = listed(s)
    item = repo.get_by_code(session=s, code=code)
    ent = enterprises.add(
        session=s, enterprise=Enterprise(uscc=uuid.uuid4().hex[:18].upper(), name="企业", region_code="420502")
    )
    case, _ = cases.get_or_create(session=s, fund_item_id=item.id, fund_item_version=1, enterprise_id=ent.id,
                                  mode="review", workflow_id=f"t:{uuid.uuid4().hex}")  # fmt: skip
    budget.reserve(session=s, fund_item_id=item.id, case_id=case.id, amount_fen=1_100_000_000)
    smaller = config(budget={**EXAMPLE_REVIEW["budget"], "total_fen": 1_000_000_000})
    service.save_draft(session=s, principal=JXJ, code=code, config=smaller)
    err = refused(s, Conflict, lambda: service.list_item(session=s, principal=JXJ, code=code, today=date(2026, 11, 2)))
    assert err.field == "config.budget.sources" and "已预留及拨付 11,000,000.00元" in err.message
    item = repo.get_by_code(session=s, code=code)
    assert item.listed_version == 1 and budget.totals(session=s, fund_item_id=item.id)["total_fen"] == 2_000_000_000


# ---------------------------------------------------------------- checks against the registry


def test_unknown_and_wrong_kind_departments_are_named(world: Session) -> None:
    s = world
    stages = json.loads(json.dumps(EXAMPLE_REVIEW["approval"]).replace('"YC-', '"T-'))
    stages["stages"][1]["departments"] = ["T-CZJ", "T-NOPE"]
    err = refused(s, Invalid, lambda: create(s, config(approval=stages)))
    assert err.field == "config.approval.stages.1.departments.1" and "“T-NOPE”未登记" in err.message
    stages = json.loads(json.dumps(EXAMPLE_REVIEW["approval"]).replace('"YC-', '"T-'))
    stages["finance"]["department"] = "T-FGW"
    err = refused(s, Invalid, lambda: create(s, config(approval=stages)))
    assert err.field == "config.approval.finance.department" and "须为财政部门" in err.message


def test_departments_write_only_their_own_items(world: Session) -> None:
    s = world
    code = create(s)
    other = Principal(role="department", subject="T-RSJ")
    err = refused(s, NotFound, lambda: service.submit(session=s, principal=other, code=code, today=IN_TIME))
    assert err.field == "code"  # another department's item reads as unknown: no probing
    refused(s, Forbidden, lambda: service.create_item(
        session=s, principal=other, body=FundItemCreate(code=new_code(), department_code="T-JXJ", config=config())))  # fmt: skip
    assert refused(s, Invalid, lambda: create(s, principal=ADMIN)).field == "department_code"
    out = service.create_item(
        session=s, principal=ADMIN, body=FundItemCreate(code=new_code(), department_code="T-RSJ", config=config())
    )
    assert out.department_code == "T-RSJ"
    service.submit(session=s, principal=ADMIN, code=code, today=IN_TIME)  # an administrator may act for any


def test_one_doc_number_is_one_policy(world: Session) -> None:
    s = world
    first = config()
    create(s, first)
    clash = first.model_copy(update={"policy": first.policy.model_copy(update={"title": "另一份政策"})})
    err = refused(s, Conflict, lambda: create(s, clash))
    assert err.field == "config.policy.title" and "同一文号只能对应一份政策" in err.message
    create(s, first)  # the same policy for a second fund item is fine


# ---------------------------------------------------------------- the 5-working-day listing rule


def test_listing_rule_counts_the_national_day_holiday() -> None:
    window = ApplicationWindow(start=date(2026, 10, 12), end=date(2026, 12, 31))
    cal = WorkCalendar.from_chinese_calendar()
    ok = service.listing_check(calendar=cal, mode="review", window=window, listing_date=IN_TIME)
    assert (ok.ok, ok.latest_listing_date, ok.provisional) == (True, IN_TIME, False)
    late = service.listing_check(calendar=cal, mode="review", window=window, listing_date=date(2026, 9, 30))
    assert not late.ok
    assert (late.latest_listing_date, late.earliest_start_date) == (date(2026, 9, 29), date(2026, 10, 13))
    assert "最迟上架日为 2026-09-29（星期二）" in late.note and "最早可设为 2026-10-13（星期二）" in late.note
    # Weekends alone would have allowed 09-30: the holiday week is what makes it late.
    weekends_only = WorkCalendar({}, {}, range(2004, 2027))
    assert service.listing_check(
        calendar=weekends_only, mode="review", window=window, listing_date=date(2026, 9, 30)
    ).ok
    # No application, no window: the rule does not apply.
    free = service.listing_check(calendar=cal, mode="no_application", window=None, listing_date=date(2026, 12, 31))
    assert free.ok and not free.required


def test_listing_too_late_is_refused_with_the_earliest_start(world: Session) -> None:
    s = world
    code = create(s)
    service.submit(session=s, principal=JXJ, code=code, today=date(2026, 9, 30))
    err = refused(s, Conflict, lambda: service.list_item(session=s, principal=JXJ, code=code, today=date(2026, 9, 30)))
    assert err.field == "config.window.start"
    assert "宜昌规则第二十条" in err.message and "申报起始日最早可设为 2026-10-13" in err.message
    assert repo.get_by_code(session=s, code=code).status == "submitted"
    # Moving the window as the error says makes it listable the same day.
    service.save_draft(
        session=s, principal=JXJ, code=code, config=config(window={"start": "2026-10-13", "end": "2026-12-31"})
    )
    service.submit(session=s, principal=JXJ, code=code, today=date(2026, 9, 30))
    assert service.list_item(session=s, principal=JXJ, code=code, today=date(2026, 9, 30)).status == "listed"


def test_listing_rule_in_a_year_without_holiday_data_is_provisional(world: Session) -> None:
    s = world
    assert not calendar_repo.load_calendar(session=s).is_loaded(2027)
    code = create(s, config(window={"start": "2027-01-11", "end": "2027-03-31"}))
    service.submit(session=s, principal=JXJ, code=code, today=date(2026, 12, 30))
    out = service.list_item(session=s, principal=JXJ, code=code, today=date(2026, 12, 30))
    assert out.listing and out.listing.ok and out.listing.provisional
    assert out.listing.latest_listing_date == date(2027, 1, 4)
    assert "2027年节假日安排尚未导入" in out.listing.note
    assert "上架时限按暂定工作日计算（所涉年份节假日安排尚未导入）" in out.notes
    late = create(s, config(window={"start": "2027-01-11", "end": "2027-03-31"}))
    service.submit(session=s, principal=JXJ, code=late, today=date(2027, 1, 6))
    err = refused(s, Conflict, lambda: service.list_item(session=s, principal=JXJ, code=late, today=date(2027, 1, 6)))
    assert "为暂定" in err.message and "最早可设为 2027-01-13" in err.message


def test_no_application_items_list_without_the_rule(world: Session) -> None:
    s = world
    code = listed(s, config(EXAMPLE_NO_APPLICATION), today=date(2026, 12, 31))
    out = service.get_item(session=s, principal=JXJ, code=code)
    assert out.status == "listed" and out.version.finance_auto_approval
    assert [(b.source, b.total_fen) for b in out.budget_lines] == [("市级财政", 500_000_000)]


def test_calendar_is_seeded_when_empty(empty_db_url: str) -> None:
    upgrade(empty_db_url)  # a database of its own: the shared one may already hold holiday data
    with transaction(empty_db_url) as session:
        assert calendar_repo.loaded_years(session=session) == []
        cal = service.working_calendar(session=session)
        assert cal.is_loaded(2026) and not cal.is_workday(date(2026, 10, 1))


def test_a_code_taken_concurrently_is_a_clear_error(world: Session) -> None:
    s = world
    code = create(s)
    item = repo.get_by_code(session=s, code=code, lock=True)
    fields = {"policy_id": item.policy_id, "department_id": item.department_id, "name": "x", "mode": "review"}
    with pytest.raises(repo.DuplicateCode):
        repo.create_draft(session=s, code=code, config={}, **fields)
    assert repo.get_by_code(session=s, code=code).status == "draft"  # the session goes on
