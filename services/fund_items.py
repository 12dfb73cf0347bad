"""Use cases of fund items (政策资金事项): draft, edit, submit, list (上架), close, delist, versions.

Lifecycle: draft → submitted → listed → closed / delisted. Listing freezes the version it lists; editing a
listed (or closed, delisted) item adds version N+1 as a draft while the listed version stays what cases
use; listing again freezes the new version. Listing must happen at least 5 working days before the
application window opens (Yichang rules art. 20) unless the item is no_application; the check uses the
working-day calendar stored in the database and says when its result is provisional.

Every function scopes by the caller (services/scope.py): a department sees and changes only its own items, a
finance bureau reads the items of its region, an administrator everything. Services never commit: the request (or
the caller's transaction) is the unit of work.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from db.models import Department, FundItem, FundItemVersion, Policy
from db.repositories import calendar as calendar_repo
from db.repositories import fund_items as repo
from db.repositories import indicators
from rules.calendar import WorkCalendar
from schemas.fields import field_catalogue
from schemas.fund_items import (
    ApplicationWindow,
    BudgetLineOut,
    FundItemConfig,
    FundItemCreate,
    FundItemOut,
    FundItemSummary,
    FundItemVersionOut,
    ListingCheck,
    PolicyRef,
    VersionSummary,
    error_path,
    explain_errors,
)
from schemas.localtime import LOCAL_TZ
from schemas.principal import Principal
from schemas.vocabulary import AuditKind, DepartmentKind, FundItemMode, FundItemStatus, PolicyLevel, Role
from services import audit, scope
from services.calendar import weekday_zh
from services.errors import Conflict, Forbidden, Invalid, NotFound

LISTING_LEAD_WORKING_DAYS = 5  # Yichang rules art. 20


def today_local() -> date:
    """Today's local date (the calendar the rules count in)."""
    return datetime.now(LOCAL_TZ).date()


# ---------------------------------------------------------------------------------------------- the art. 20 check


def working_calendar(*, session: Session) -> WorkCalendar:
    """The stored working-day calendar, seeded from chinesecalendar when no year is loaded yet."""
    if not calendar_repo.loaded_years(session=session):
        calendar_repo.seed_from_chinese_calendar(session=session)
    return calendar_repo.load_calendar(session=session)


def listing_check(
    *,
    calendar: WorkCalendar,
    mode: str,
    window: ApplicationWindow | None,
    listing_date: date,
    previous_start: date | None = None,
) -> ListingCheck:
    """Whether listing on `listing_date` is at least 5 working days before the window opens.

    The latest listing day is the 5th working day before the start day (the start day not counted), so
    the guide is public on 5 working days before applications open. `previous_start` is the start day of
    the version listed before: when it is unchanged, the guide was already published in time.
    """
    if mode == FundItemMode.NO_APPLICATION or window is None:
        return ListingCheck(
            required=False,
            listing_date=listing_date,
            ok=True,
            note="免申即享事项无需企业申报，不适用“申报起始日5个工作日前上架”的要求（宜昌规则第二十条）",
        )
    start = window.start
    if previous_start is not None and previous_start == start:
        return ListingCheck(
            required=False,
            listing_date=listing_date,
            window_start=start,
            ok=True,
            note=f"申报起始日 {start} 与已上架版本相同，申报指南此前已按时公开，本次上架不再受5个工作日的限制",
        )
    latest = calendar.add_working_days(start, -LISTING_LEAD_WORKING_DAYS)
    # The 5th working day counted from the listing day itself; the window may open the day after it.
    fifth = calendar.add_working_days(listing_date - timedelta(days=1), LISTING_LEAD_WORKING_DAYS)
    earliest = fifth.due + timedelta(days=1)
    ok = listing_date <= latest.due
    provisional = latest.provisional or fifth.provisional
    if ok:
        note = (
            f"申报起始日 {start}（{weekday_zh(start)}）前第{LISTING_LEAD_WORKING_DAYS}个工作日为 {latest.due}，"
            f"{listing_date} 上架符合宜昌规则第二十条"
        )
    else:
        note = (
            f"须最迟于申报起始日前{LISTING_LEAD_WORKING_DAYS}个工作日上架（宜昌规则第二十条）：申报起始日 {start}"
            f"（{weekday_zh(start)}）的最迟上架日为 {latest.due}（{weekday_zh(latest.due)}），{listing_date} 已晚；"
            f"如今日上架，申报起始日最早可设为 {earliest}（{weekday_zh(earliest)}）"
        )
    if provisional:
        lo, hi = sorted((listing_date, max(start, earliest)))
        missing = [str(y) for y in range(lo.year, hi.year + 1) if not calendar.is_loaded(y)]
        note += (
            f"。注意：{'、'.join(missing)}年节假日安排尚未导入，工作日按周末推算，结果为暂定；"
            "导入国务院办公厅节假日通知后请复核"
        )
    return ListingCheck(
        required=True,
        listing_date=listing_date,
        window_start=start,
        latest_listing_date=latest.due,
        earliest_start_date=earliest,
        ok=ok,
        provisional=provisional,
        note=note,
    )


# ---------------------------------------------------------------------------------------------- helpers


def _item(session: Session, caller: scope.Scope, code: str, *, lock: bool = False) -> FundItem:
    """The fund item if the caller may see it (else 404, as if it did not exist); writers lock its row so two
    edits of one item never interleave."""
    item = repo.get_by_code(session=session, code=code, lock=lock)
    if item is None:
        raise NotFound(f"资金事项 {code} 不存在", field="code")
    scope.require_item(session=session, scope=caller, fund_item_id=item.id, code=code)
    return item


def _owned(session: Session, principal: Principal, code: str) -> FundItem:
    """The fund item the caller changes: visible to it (404) and its own department's (403); the row is locked."""
    caller = scope.resolve(session=session, principal=principal)
    item = _item(session, caller, code, lock=True)
    _require_owner(session, caller, item)
    return item


def _department(session: Session, item: FundItem) -> Department:
    dept = repo.department(session=session, department_id=item.department_id)
    assert dept is not None
    return dept


def _require_owner(session: Session, caller: scope.Scope, item: FundItem) -> None:
    """Departments change only their own items; an administrator may change any."""
    try:
        scope.require_owner(scope=caller, fund_item=item)
    except Forbidden as exc:
        dept = _department(session, item)
        raise Forbidden(f"资金事项 {item.code} 由{dept.name}（{dept.code}）主管，本部门无权修改", field="code") from exc


def _latest(session: Session, item: FundItem) -> FundItemVersion:
    latest = repo.version(session=session, fund_item_id=item.id, number=item.current_version)
    if latest is None:
        raise Conflict(f"资金事项 {item.code} 缺少第 {item.current_version} 版配置", field="code")
    return latest


def parse_config(version: FundItemVersion, *, field: str = "config") -> FundItemConfig:
    """The stored configuration as a model; a version stored in an older format gives a clear Conflict."""
    try:
        return FundItemConfig.model_validate(version.config)
    except ValidationError as exc:
        problems = "；".join(
            f"{error_path(e['loc'])}：{e['msg']}" for e in explain_errors(exc.errors(include_url=False))[:5]
        )
        raise Conflict(
            f"第 {version.version} 版配置不符合当前配置格式，请编辑后重新保存：{problems}", field=field
        ) from exc


def _check_departments(session: Session, config: FundItemConfig, prefix: str) -> None:
    """Every department the configuration names is registered; the finance stage belongs to a finance bureau."""
    refs = config.department_refs()
    known = repo.departments_by_codes(session=session, codes=[code for _, code in refs])
    unknown = [(loc, code) for loc, code in refs if code not in known]
    if unknown:
        listed = "；".join(f"{error_path((prefix, *loc))}：部门编码“{code}”未登记" for loc, code in unknown)
        raise Invalid(f"配置中有未登记的部门：{listed}", field=error_path((prefix, *unknown[0][0])))
    finance = known[config.approval.finance.department]
    if finance.kind != DepartmentKind.FINANCE:
        raise Invalid(
            f"财政审核部门 approval.finance.department 须为财政部门，“{finance.name}”（{finance.code}）不是",
            field=f"{prefix}.approval.finance.department",
        )


def _policy_for(session: Session, ref: PolicyRef, owner: Department, item: FundItem | None, prefix: str) -> Policy:
    """The policy record of `ref` (by 文号), created once; a differing title or level is refused,
    unless the record belongs only to this item, which is still being drafted."""
    existing = repo.policy_by_doc_number(session=session, doc_number=ref.doc_number)
    issuer = owner
    if ref.issuer_code:
        issuer = repo.department_by_code(session=session, code=ref.issuer_code) or owner
    if existing is None:
        return repo.add_policy(
            session=session,
            doc_number=ref.doc_number,
            title=ref.title,
            level=ref.level,
            department_id=issuer.id,
            published_on=ref.published_on,
        )
    if existing.title == ref.title and existing.level == ref.level:
        return existing
    own_draft = (
        item is not None
        and item.listed_version is None
        and item.policy_id == existing.id
        and repo.policy_users(session=session, policy_id=existing.id) == [item.id]
    )
    if own_draft:
        existing.title, existing.level, existing.published_on = ref.title, ref.level, ref.published_on
        existing.department_id = issuer.id
        return existing
    raise Conflict(
        f"文号 {ref.doc_number} 已登记为《{existing.title}》（{PolicyLevel.label_of(existing.level)}），"
        f"与填写的《{ref.title}》（{PolicyLevel.label_of(ref.level)}）不一致：同一文号只能对应一份政策",
        field=f"{prefix}.policy.title",
    )


def _raw_window(config: dict[str, Any]) -> ApplicationWindow | None:
    try:
        window = config.get("window")
        return ApplicationWindow.model_validate(window) if window else None
    except ValidationError:
        return None


def _summary_fields(session: Session, item: FundItem) -> dict[str, Any]:
    dept = _department(session, item)
    policy = repo.policy(session=session, policy_id=item.policy_id)
    latest = repo.version(session=session, fund_item_id=item.id, number=item.current_version)
    raw = latest.config if latest is not None and isinstance(latest.config, dict) else {}
    budget = raw.get("budget") if isinstance(raw.get("budget"), dict) else {}
    listed_before = item.listed_version is not None
    pending = item.current_version if listed_before and item.current_version != item.listed_version else None
    return {
        "code": item.code,
        "name": item.name,
        "mode": item.mode,
        "mode_label": FundItemMode.label_of(item.mode),
        "status": item.status,
        "status_label": FundItemStatus.label_of(item.status),
        "department_code": dept.code,
        "department_name": dept.name,
        "policy_doc_number": policy.doc_number if policy else "",
        "current_version": item.current_version,
        "listed_version": item.listed_version,
        "pending_version": pending,
        "window": _raw_window(raw),
        "budget_total_fen": int(budget.get("total_fen") or 0),
    }


def summary_view(*, session: Session, item: FundItem) -> FundItemSummary:
    return FundItemSummary(**_summary_fields(session, item))


def _version_out(item: FundItem, version: FundItemVersion, config: FundItemConfig) -> FundItemVersionOut:
    return FundItemVersionOut(
        version=version.version,
        frozen=version.frozen,
        listed=version.version == item.listed_version,
        created_at=version.created_at,
        finance_auto_approval=config.finance_auto_approval,
        config=config,
    )


def item_view(
    *, session: Session, item: FundItem, listing: ListingCheck | None = None, notes: Sequence[str] = ()
) -> FundItemOut:
    latest = _latest(session, item)
    config = parse_config(latest)
    lines = [
        BudgetLineOut(
            source=line.source,
            budget_year=line.budget_year,
            total_fen=line.total_fen,
            reserved_fen=line.reserved_fen,
            committed_fen=line.committed_fen,
        )
        for line in repo.budget_lines(session=session, fund_item_id=item.id)
    ]
    return FundItemOut(
        **_summary_fields(session, item),
        version=_version_out(item, latest, config),
        budget_lines=lines,
        listing=listing,
        notes=list(notes),
    )


# ---------------------------------------------------------------------------------------------- use cases


def _digest(config: Any) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(config, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def _audit(session: Session, principal: Principal, item: FundItem, kind: str, action: str, **data: Any) -> None:
    """A configuration change in the audit chain: who, which item, what (a version's digest, not its text)."""
    audit.record(session=session, kind=kind, actor=principal.actor, subject=f"fund_item:{item.code}",
                 data={"action": action, "status": item.status, **data})  # fmt: skip


def create_item(*, session: Session, principal: Principal, body: FundItemCreate) -> FundItemOut:
    """A new fund item in draft, version 1, owned by the creating department (an administrator names one)."""
    caller = scope.resolve(session=session, principal=principal)
    if caller.role == Role.DEPARTMENT:
        if body.department_code and body.department_code != caller.department_code:
            raise Forbidden(
                f"部门用户只能为本部门（{caller.department_code}）创建事项，不能为 {body.department_code} 创建",
                field="department_code",
            )
        owner_code = caller.department_code or ""
    elif caller.role == Role.ADMIN:
        if not body.department_code:
            raise Invalid("管理员创建事项须填写主管部门编码 department_code", field="department_code")
        owner_code = body.department_code
    else:
        raise Forbidden(f"{Role(caller.role).label}无权创建资金事项")
    if repo.get_by_code(session=session, code=body.code) is not None:
        raise Conflict(f"事项编码 {body.code} 已存在", field="code")
    owner = repo.department_by_code(session=session, code=owner_code)
    if owner is None:
        raise Invalid(f"主管部门编码“{owner_code}”未登记", field="department_code")
    if owner.kind != DepartmentKind.POLICY:
        raise Invalid(f"“{owner.name}”不是政策主管部门，不能主管资金事项", field="department_code")
    config = body.config
    _check_departments(session, config, "config")
    policy = _policy_for(session, config.policy, owner, None, "config")
    try:
        item = repo.create_draft(
            session=session,
            code=body.code,
            policy_id=policy.id,
            department_id=owner.id,
            name=config.name,
            mode=config.mode,
            config=config.to_json(),
        )
    except repo.DuplicateCode as exc:
        raise Conflict(f"事项编码 {body.code} 已存在", field="code") from exc
    _audit(session, principal, item, AuditKind.FUND_ITEM_CHANGED, "create", version=1)
    return item_view(session=session, item=item, notes=[f"已创建草稿（第 1 版），主管部门：{owner.name}"])


def save_draft(*, session: Session, principal: Principal, code: str, config: FundItemConfig) -> FundItemOut:
    """Edit the draft: replaces the unfrozen latest version, or starts version N+1 after a listed one."""
    item = _owned(session, principal, code)
    _latest(session, item)
    if item.listed_version is not None and config.mode != item.mode:
        raise Invalid(
            f"已上架过的事项不能变更兑付方式（{FundItemMode.label_of(item.mode)} → "
            f"{FundItemMode.label_of(config.mode)}）：在办办件按原方式办理；如需变更请新建事项",
            field="mode",
        )
    _check_departments(session, config, "config")
    owner = _department(session, item)
    notes: list[str] = []
    if item.listed_version is None:
        policy = _policy_for(session, config.policy, owner, item, "config")
        item.policy_id, item.name, item.mode = policy.id, config.name, config.mode
    else:
        _policy_for(session, config.policy, owner, item, "config")
    draft, new = repo.save_draft(session=session, item=item, config=config.to_json())
    if new:
        notes.append(
            f"已上架的第 {item.listed_version} 版保持不变，在办及新受理的办件继续使用；"
            f"本次修改形成第 {draft.version} 版草稿，上架后生效"
        )
    else:
        notes.append(f"已保存第 {draft.version} 版草稿")
    if item.status == FundItemStatus.SUBMITTED:
        repo.set_status(session=session, item=item, status=FundItemStatus.DRAFT)
        notes.append("事项已提交，修改后退回草稿，请重新提交")
    _audit(session, principal, item, AuditKind.FUND_ITEM_CHANGED, "save_draft", version=draft.version,
           config_digest=_digest(draft.config))  # fmt: skip
    return item_view(session=session, item=item, notes=notes)


def submit(*, session: Session, principal: Principal, code: str, today: date) -> FundItemOut:
    """draft → submitted; the response previews the listing deadline."""
    item = _owned(session, principal, code)
    if item.status == FundItemStatus.SUBMITTED:
        raise Conflict(f"资金事项 {code} 已提交，等待上架", field="status")
    if item.status != FundItemStatus.DRAFT:
        raise Conflict(
            f"资金事项 {code} 状态为{FundItemStatus.label_of(item.status)}，不能提交：只有草稿可以提交；"
            "已上架过的事项修改后直接上架新版本",
            field="status",
        )
    config = parse_config(_latest(session, item))
    _check_departments(session, config, "config")
    repo.set_status(session=session, item=item, status=FundItemStatus.SUBMITTED)
    check = listing_check(
        calendar=working_calendar(session=session), mode=config.mode, window=config.window, listing_date=today
    )
    notes = [f"第 {item.current_version} 版已提交"]
    if check.required and check.ok:
        notes.append(f"请最迟于 {check.latest_listing_date} 上架")
    elif check.required:
        notes.append("按今日计已来不及在申报起始日前5个工作日上架，请调整申报期后再上架")
    _audit(session, principal, item, AuditKind.FUND_ITEM_LIFECYCLE, "submit", version=item.current_version)
    return item_view(session=session, item=item, listing=check, notes=notes)


def list_item(*, session: Session, principal: Principal, code: str, today: date) -> FundItemOut:
    """上架: freeze the latest version and make it the one new cases use; budget lines follow its sources."""
    item = _owned(session, principal, code)
    if item.status == FundItemStatus.DRAFT:
        raise Conflict(f"资金事项 {code} 还是草稿：请先提交（submit）再上架", field="status")
    latest = _latest(session, item)
    if item.status == FundItemStatus.LISTED and latest.version == item.listed_version:
        raise Conflict(f"资金事项 {code} 已上架第 {item.listed_version} 版，没有待上架的新版本", field="status")
    config = parse_config(latest)
    _check_departments(session, config, "config")
    previous_start = None
    if item.listed_version is not None:
        previous = repo.version(session=session, fund_item_id=item.id, number=item.listed_version)
        window = _raw_window(previous.config) if previous else None
        previous_start = window.start if window else None
    check = listing_check(
        calendar=working_calendar(session=session),
        mode=config.mode,
        window=config.window,
        listing_date=today,
        previous_start=previous_start,
    )
    if not check.ok:
        raise Conflict(check.note, field="config.window.start")
    try:
        notes = repo.sync_budget_lines(
            session=session,
            fund_item_id=item.id,
            budget_year=config.budget.year,
            sources=[(s.name, s.amount_fen or 0) for s in config.budget.sources],
        )
        indicators.sync_budget(session=session, fund_item_id=item.id, budget=config.budget)
    except repo.BudgetBelowUsed as exc:
        raise Conflict(
            f"{exc}：已预留和拨付的资金不能调减，请调整预算 config.budget.sources", field="config.budget.sources"
        ) from exc
    before = item.listed_version
    policy = _policy_for(session, config.policy, _department(session, item), item, "config")
    repo.freeze_and_list(session=session, item=item, number=latest.version)
    item.name, item.policy_id = config.name, policy.id
    notes.insert(0, f"第 {latest.version} 版已上架并冻结，此后不可修改")
    if before is not None and before != latest.version:
        notes.append(f"此前第 {before} 版上受理的办件继续按第 {before} 版办理")
    if check.provisional:
        notes.append("上架时限按暂定工作日计算（所涉年份节假日安排尚未导入）")
    # Yichang rules art. 26: the newly listed item is pushed to every enterprise it matches, by the SMS dispatcher.
    from services.notices import LISTING_PUSH_NOTE, schedule_listing_push

    schedule_listing_push(session=session, fund_item_id=item.id, actor=principal.actor)
    notes.append(LISTING_PUSH_NOTE)
    if item.mode == FundItemMode.NO_APPLICATION:  # the campaign is registered here; the API's starter starts it
        from db.repositories.campaigns import register_listing

        campaign = register_listing(session=session, item=item, version=latest.version, actor=principal.actor)
        notes.append(f"已启动免申即享批量兑付（编号 {campaign.id}），系统将自动比对企业数据并兑付")
    _audit(session, principal, item, AuditKind.FUND_ITEM_LIFECYCLE, "list", version=latest.version,
           config_digest=_digest(latest.config))  # fmt: skip
    return item_view(session=session, item=item, listing=check, notes=notes)


def close(*, session: Session, principal: Principal, code: str, reason: str) -> FundItemOut:
    """listed → closed (结束受理): no new applications; cases under way go on with their version."""
    item = _owned(session, principal, code)
    if item.status != FundItemStatus.LISTED:
        raise Conflict(
            f"资金事项 {code} 状态为{FundItemStatus.label_of(item.status)}，只有已上架的事项可以结束受理",
            field="status",
        )
    repo.set_status(session=session, item=item, status=FundItemStatus.CLOSED)
    _audit(session, principal, item, AuditKind.FUND_ITEM_LIFECYCLE, "close", reason=reason)
    return item_view(session=session, item=item, notes=[f"已结束受理：{reason}；在办办件按原版本继续办理"])


def delist(*, session: Session, principal: Principal, code: str, reason: str) -> FundItemOut:
    """listed or closed → delisted (下架): taken off the platform; cases under way go on with their version."""
    item = _owned(session, principal, code)
    if item.status not in (FundItemStatus.LISTED, FundItemStatus.CLOSED):
        raise Conflict(
            f"资金事项 {code} 状态为{FundItemStatus.label_of(item.status)}，只有已上架或已结束的事项可以下架",
            field="status",
        )
    repo.set_status(session=session, item=item, status=FundItemStatus.DELISTED)
    _audit(session, principal, item, AuditKind.FUND_ITEM_LIFECYCLE, "delist", reason=reason)
    return item_view(session=session, item=item, notes=[f"已下架：{reason}；在办办件按原版本继续办理"])


def get_item(*, session: Session, principal: Principal, code: str) -> FundItemOut:
    """A fund item the caller may see, with its latest version and budget ledger."""
    caller = scope.resolve(session=session, principal=principal)
    return item_view(session=session, item=_item(session, caller, code))


def list_items(
    *,
    session: Session,
    principal: Principal,
    status: str | None = None,
    mode: str | None = None,
    department_code: str | None = None,
) -> list[FundItemSummary]:
    """The fund items the caller may see, filtered by status, mode and owning department."""
    caller = scope.resolve(session=session, principal=principal)
    department_id = None
    if department_code:
        dept = repo.department_by_code(session=session, code=department_code)
        if dept is None:
            return []
        department_id = dept.id
    items = repo.search_scoped(
        session=session, condition=scope.item_filter(caller), status=status, mode=mode, department_id=department_id
    )
    return [summary_view(session=session, item=item) for item in items]


def versions(*, session: Session, principal: Principal, code: str) -> list[VersionSummary]:
    """Every version of a fund item the caller may see, oldest first."""
    item = _item(session, scope.resolve(session=session, principal=principal), code)
    return [
        VersionSummary(
            version=v.version,
            frozen=v.frozen,
            listed=v.version == item.listed_version,
            created_at=v.created_at,
            name=str((v.config or {}).get("name", item.name)),
        )
        for v in repo.versions(session=session, fund_item_id=item.id)
    ]


def version(*, session: Session, principal: Principal, code: str, number: int) -> FundItemVersionOut:
    """One version's full configuration."""
    item = _item(session, scope.resolve(session=session, principal=principal), code)
    found = repo.version(session=session, fund_item_id=item.id, number=number)
    if found is None:
        raise NotFound(f"资金事项 {code} 没有第 {number} 版", field="version")
    return _version_out(item, found, parse_config(found))


def condition_fields(*, session: Session, principal: Principal) -> list[dict[str, Any]]:
    """The enterprise fields conditions may use (any known department)."""
    scope.resolve(session=session, principal=principal)
    return field_catalogue()
