"""Fund item configuration (政策资金事项配置): the versioned JSON a department fills in, and the API contracts.

One `FundItemConfig` is stored per version in `FundItemVersion.config` (`model_dump(mode="json")`); a case
pins the version it started with. It holds the policy reference, the guide of the Yichang rules art. 23,
the condition tree, the support standard, the budget and its funding sources, the approval flow, the
no-application options, SMS template overrides and the service officer. Every rule that spans fields is
checked here and reported at the field it concerns, in Chinese, with the rule's code as the error type,
so an API client can point at the exact input. `conditions`, `standard`, `pay_summary_code`,
`fund_source` and `officer` stay at the top level: the case activities read them from the stored JSON.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from schemas.codelists import code_list
from schemas.conditions import Condition
from schemas.fields import FIELDS, FieldType
from schemas.standards import Standard, is_fully_quantified
from schemas.vocabulary import FundItemMode, FundItemStatus, JointMode, NoticeStage, PolicyLevel, TimeoutPolicy

SORT_AMOUNT = "amount_fen"  # the computed amount, besides the registered fields, may order a shortfall
# Department stages wait for nobody: the finance stage alone keeps waiting after its deadline.
StageTimeoutPolicy = Literal[TimeoutPolicy.ESCALATE.value, TimeoutPolicy.AUTO_APPROVE.value, TimeoutPolicy.AUTO_REJECT.value]

TemplateKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,40}$", description="短信模板编号")]
DepartmentCode = Annotated[str, Field(min_length=1, max_length=32, description="部门编码（已登记的部门）")]
Fen = Annotated[int, Field(ge=0, le=2**63 - 1, strict=True, description="金额，整数分")]
WorkingDays = Annotated[int, Field(ge=1, le=60, strict=True, description="工作日数")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---------------------------------------------------------------------------------------------- rule errors


def rule_error(title: str, problems: Iterable[tuple[tuple[str | int, ...], str, str, Any]]) -> ValidationError:
    """One ValidationError from (loc, rule, message, input) problems; pydantic prefixes the outer locations."""
    return ValidationError.from_exception_data(
        title,
        [
            # No context is passed, so the message is used as is (braces in user text are safe).
            InitErrorDetails(type=PydanticCustomError(rule, message), loc=loc, input=value)
            for loc, rule, message, value in problems
        ],
    )


def _raise_if(title: str, problems: list[tuple[tuple[str | int, ...], str, str, Any]]) -> None:
    if problems:
        raise rule_error(title, problems)


# ---------------------------------------------------------------------------------------------- parts


class PolicyRef(_Model):
    """The policy the fund item implements (惠企政策)."""

    doc_number: str = Field(min_length=1, max_length=64, title="文号", examples=["宜经信发〔2026〕12号"])
    title: str = Field(min_length=1, max_length=300, title="政策名称")
    level: PolicyLevel = Field(
        title="政策层级", description="national 国家级 / provincial 省级 / city 市级 / county 县级"
    )
    issuer: str = Field(min_length=1, max_length=128, title="发文机关", examples=["宜昌市经济和信息化局"])
    issuer_code: DepartmentCode | None = Field(None, title="发文部门编码", description="发文机关为已登记部门时填写")
    published_on: date | None = Field(None, title="发布日期")


class Region(_Model):
    """The administrative division the fund belongs to (资金所属行政区划)."""

    code: str = Field(pattern=r"^\d{6}$", title="行政区划代码", examples=["420500"])
    name: str = Field(min_length=2, max_length=40, title="行政区划名称", examples=["宜昌市"])


class ApplicationWindow(_Model):
    """The application period (申报期), both days included."""

    start: date = Field(title="申报起始日")
    end: date = Field(title="申报截止日")

    @model_validator(mode="after")
    def _order(self) -> ApplicationWindow:
        if self.end < self.start:
            raise rule_error(
                "ApplicationWindow",
                [
                    (
                        ("end",),
                        "window_order",
                        f"申报截止日 end（{self.end}）早于申报起始日 start（{self.start}）：截止日不得早于起始日",
                        self.end.isoformat(),
                    )
                ],
            )
        return self


class Material(_Model):
    """One application material (申报材料): name, requirement and a sample (示范文本)."""

    name: str = Field(min_length=1, max_length=100, title="材料名称")
    requirement: str = Field(min_length=1, max_length=500, title="提交要求")
    sample: str = Field("", max_length=500, title="示范文本", description="示范文本的文件名或地址")
    required: bool = Field(True, title="是否必交")


class Guide(_Model):
    """The application guide (申报指南), with the contents the Yichang rules art. 23 require."""

    policy_basis: str = Field(min_length=1, max_length=2000, title="政策依据")
    conditions_text: str = Field(min_length=1, max_length=4000, title="申报条件（文字）")
    standard_text: str = Field(min_length=1, max_length=2000, title="扶持标准（文字）")
    materials: list[Material] = Field(default_factory=list, title="申报材料")
    process: str = Field(min_length=1, max_length=2000, title="申报流程", description="各环节、审核部门及审核时间")
    notes: str = Field("", max_length=2000, title="注意事项")


# The budget indicator (指标) fields of a funding source and the code list each is checked against.
INDICATOR_CODE_LISTS: dict[str, str] = {
    "budget_level": "budget_level",
    "exp_func_code": "exp_func",
    "gov_eco_code": "gov_eco",
    "dep_eco_code": "dep_eco",
    "fund_type_code": "fund_type",
}


class FundingSource(_Model):
    """One funding source (资金来源) and its share, e.g. 市级财政 60% (市区分担), with the budget indicator (指标) it
    draws on when one is recorded: the indicator's document number and its codes, each checked against its code list
    (schemas/codelists, sources stated there). The indicator fields are optional, so configurations without them stay
    valid; the voucher channel needs them."""

    name: str = Field(min_length=1, max_length=64, title="资金来源", examples=["市级财政"])
    share_bp: int = Field(gt=0, le=10000, strict=True, title="分担比例", description="基点，6000 即 60%")
    amount_fen: Fen | None = Field(None, title="分担金额", description="整数分；不填则按比例计算")
    indicator_no: str | None = Field(
        None, min_length=1, max_length=64, title="指标文号", examples=["宜财企指〔2026〕12号"]
    )
    budget_level: str | None = Field(None, title="预算级次", examples=["3"], description="1 中央 2 省 3 市 4 县（区） 5 乡（镇）")
    exp_func_code: str | None = Field(
        None, title="功能分类科目", examples=["2150806"], description="支出功能分类科目（ExpFuncCode）"
    )
    gov_eco_code: str | None = Field(None, title="政府经济分类", examples=["50799"], description="GovExpEcoCode")
    dep_eco_code: str | None = Field(None, title="部门经济分类", examples=["31299"], description="DepExpEcoCode")
    fund_type_code: str | None = Field(None, title="资金性质", examples=["1"], description="FundTypeCode")

    @model_validator(mode="after")
    def _codes(self) -> FundingSource:
        problems: list[tuple[tuple[str | int, ...], str, str, Any]] = []
        for field_name, key in INDICATOR_CODE_LISTS.items():
            code = getattr(self, field_name)
            if code is None:
                continue
            codes = code_list(key)
            if codes.name_of(code) is None:
                title = type(self).model_fields[field_name].title
                problems.append(
                    (
                        (field_name,),
                        "code_unknown",
                        f"资金来源“{self.name}”的{title} {field_name}“{code}”不在{codes.name}代码表中（{codes.source}）",
                        code,
                    )
                )
        _raise_if("FundingSource", problems)
        return self

    def indicator_names(self) -> dict[str, str]:
        """The indicator's codes as people read them: {title: "code name"}, for pages and vouchers."""
        out: dict[str, str] = {}
        if self.indicator_no:
            out["指标文号"] = self.indicator_no
        for field_name, key in INDICATOR_CODE_LISTS.items():
            code = getattr(self, field_name)
            if code is not None:
                out[type(self).model_fields[field_name].title or field_name] = f"{code} {code_list(key).name_of(code)}"
        return out


class Budget(_Model):
    """The budget (预算) of the fund item: its total and the funding sources' shares, summing to the total."""

    year: int = Field(ge=2000, le=2100, strict=True, title="预算年度")
    total_fen: int = Field(gt=0, le=2**63 - 1, strict=True, title="预算总额", description="整数分")
    sources: list[FundingSource] = Field(min_length=1, title="资金来源")

    @model_validator(mode="after")
    def _shares(self) -> Budget:
        problems: list[tuple[tuple[str | int, ...], str, str, Any]] = []
        seen: dict[str, int] = {}
        for i, source in enumerate(self.sources):
            if source.name in seen:
                problems.append(
                    (
                        ("sources", i, "name"),
                        "source_duplicate",
                        f"资金来源 sources[{i}].name“{source.name}”与 sources[{seen[source.name]}] 重复：每个来源只能出现一次",
                        source.name,
                    )
                )
            seen.setdefault(source.name, i)
        shares = sum(s.share_bp for s in self.sources)
        if shares != 10000:
            problems.append(
                (
                    ("sources",),
                    "shares_sum",
                    f"资金来源 budget.sources 的分担比例 share_bp 合计须为 10000（100%），实际为 {shares}（{shares / 100:g}%）",
                    [s.share_bp for s in self.sources],
                )
            )
        _raise_if("Budget", problems)
        # Amounts left out follow the shares; the last one left out takes the rounding remainder.
        tolerance = len(self.sources)  # fen: the rounding of n shares can move each amount by < n fen
        missing = [s for s in self.sources if s.amount_fen is None]
        for source in missing:
            source.amount_fen = self.total_fen * source.share_bp // 10000
        remainder = self.total_fen - sum(s.amount_fen or 0 for s in self.sources)
        if missing and 0 <= remainder < tolerance:
            missing[-1].amount_fen = (missing[-1].amount_fen or 0) + remainder
        for i, source in enumerate(self.sources):
            exact = self.total_fen * source.share_bp / 10000
            if abs((source.amount_fen or 0) - exact) >= tolerance:
                problems.append(
                    (
                        ("sources", i, "amount_fen"),
                        "amount_share",
                        f"资金来源 sources[{i}]“{source.name}”的分担金额 amount_fen={source.amount_fen} 分与分担比例 "
                        f"{source.share_bp / 100:g}% 不符：按预算总额 {self.total_fen} 分应为约 {round(exact)} 分",
                        source.amount_fen,
                    )
                )
        total = sum(s.amount_fen or 0 for s in self.sources)
        if not problems and total != self.total_fen:
            problems.append(
                (
                    ("sources",),
                    "amounts_sum",
                    f"资金来源 budget.sources 的分担金额合计 {total} 分不等于预算总额 total_fen={self.total_fen} 分",
                    [s.amount_fen for s in self.sources],
                )
            )
        _raise_if("Budget", problems)
        return self


class PayerAccount(_Model):
    """The paying account (付款账户, usually the finance bureau's 零余额账户)."""

    acct_no: str = Field(pattern=r"^\d{8,40}$", title="付款账号")
    acct_name: str = Field(min_length=1, max_length=200, title="付款账户名称")
    bank_name: str = Field("", max_length=200, title="开户银行")


class Stage(_Model):
    """One department stage of the approval flow: one department, or several reviewing in parallel (联审)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key": "joint_review",
                    "name": "联合审核",
                    "departments": ["YC-CZJ", "YC-FGW"],
                    "joint_mode": "all",
                    "deadline_working_days": 10,
                    "remind_before_working_days": 2,
                    "on_timeout": "escalate",
                    "escalate_to": "YC-JXJ",
                }
            ]
        }
    )

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", title="环节编码", examples=["first_review"])
    name: str = Field(min_length=1, max_length=40, title="环节名称", examples=["初审"])
    departments: list[DepartmentCode] = Field(min_length=1, title="审核部门", description="多个部门即联审，并行办理")
    joint_mode: JointMode = Field(
        JointMode.ALL, title="联审方式", description="all：全部部门同意才通过；any：任一部门同意即通过"
    )
    deadline_working_days: WorkingDays = Field(title="办理时限（工作日）")
    remind_before_working_days: int = Field(
        1, ge=0, le=59, strict=True, title="提前提醒（工作日）", description="截止前几个工作日提醒，0 为不提醒"
    )
    on_timeout: StageTimeoutPolicy = Field(
        TimeoutPolicy.ESCALATE.value,
        title="逾期处理",
        description="escalate 上报 escalate_to 部门 / auto_approve 视为同意 / auto_reject 视为不同意",
    )
    escalate_to: DepartmentCode | None = Field(None, title="上报部门")
    sms_template: TemplateKey | None = Field(None, title="短信模板", description="本环节办理提醒短信的模板编号")

    @model_validator(mode="after")
    def _rules(self) -> Stage:
        problems: list[tuple[tuple[str | int, ...], str, str, Any]] = []
        seen: set[str] = set()
        for i, code in enumerate(self.departments):
            if code in seen:
                problems.append(
                    (("departments", i), "stage_department_duplicate", f"审核部门 departments[{i}]“{code}”重复", code)
                )
            seen.add(code)
        if self.remind_before_working_days >= self.deadline_working_days:
            problems.append(
                (
                    ("remind_before_working_days",),
                    "reminder_before_deadline",
                    f"环节“{self.name}”的提前提醒 remind_before_working_days={self.remind_before_working_days} "
                    f"须小于办理时限 deadline_working_days={self.deadline_working_days}",
                    self.remind_before_working_days,
                )
            )
        if self.on_timeout == TimeoutPolicy.ESCALATE and not self.escalate_to:
            problems.append(
                (
                    ("escalate_to",),
                    "escalate_needs_target",
                    f"环节“{self.name}”的逾期处理为上报（on_timeout=escalate），须填写上报部门 escalate_to",
                    None,
                )
            )
        if self.on_timeout != TimeoutPolicy.ESCALATE and self.escalate_to:
            problems.append(
                (
                    ("escalate_to",),
                    "escalate_target_unused",
                    f"环节“{self.name}”的逾期处理为 {self.on_timeout}（{TimeoutPolicy(self.on_timeout).label}），"
                    "不应填写上报部门 escalate_to",
                    self.escalate_to,
                )
            )
        if self.escalate_to and self.escalate_to in self.departments:
            problems.append(
                (
                    ("escalate_to",),
                    "escalate_to_self",
                    f"环节“{self.name}”的上报部门 escalate_to“{self.escalate_to}”是本环节的审核部门，应上报其他部门",
                    self.escalate_to,
                )
            )
        _raise_if("Stage", problems)
        return self


class CompletenessCheck(_Model):
    """形式审查: a department checks the materials are complete before the review stages."""

    department: DepartmentCode = Field(title="形式审查部门")
    deadline_working_days: WorkingDays = Field(2, title="办理时限（工作日）")


class Supplement(_Model):
    """补正: how often a case may go back to the enterprise, and how long it has to answer."""

    max_times: int = Field(1, ge=1, le=5, strict=True, title="补正次数上限")
    enterprise_deadline_working_days: WorkingDays = Field(5, title="企业补正时限（工作日）")


class Publicity(_Model):
    """公示: the public notice before payment, with real-name objections (实名异议)."""

    working_days: int = Field(5, ge=1, le=30, strict=True, title="公示期（工作日）")
    objections_allowed: bool = Field(True, title="接受异议")
    objection_department: DepartmentCode | None = Field(
        None, title="异议受理部门", description="不填则由事项主管部门受理"
    )


class FinanceApproval(_Model):
    """Finance approval (财政审核): automatic when the standard is fully quantified (即时审批即时兑付)."""

    department: DepartmentCode = Field(title="财政部门", examples=["YC-CZJ"])
    auto_when_quantified: bool = Field(
        True, title="量化标准自动审核", description="扶持标准完全量化时由系统自动审核通过"
    )
    deadline_working_days: WorkingDays = Field(5, title="人工审核时限（工作日）")


class ApprovalFlow(_Model):
    """The approval flow (审批流程): optional completeness check, ordered department stages, supplement,
    publicity and finance approval."""

    completeness_check: CompletenessCheck | None = Field(None, title="形式审查")
    stages: list[Stage] = Field(default_factory=list, title="审核环节", description="按顺序办理")
    supplement: Supplement | None = Field(None, title="补正")
    publicity: Publicity | None = Field(None, title="公示")
    finance: FinanceApproval = Field(title="财政审核")
    reject_unmet_at_application: bool = Field(
        False,
        title="量化条件不满足即时不予通过",
        description="申报审批事项：申报到达时按企业档案核验量化申报条件，明确不满足的即时不予通过，"
        "短信告知不足之处；缺少数据无法判断的仍交部门审核",
    )

    @model_validator(mode="after")
    def _keys(self) -> ApprovalFlow:
        problems: list[tuple[tuple[str | int, ...], str, str, Any]] = []
        seen: dict[str, int] = {}
        for i, stage in enumerate(self.stages):
            if stage.key in seen:
                problems.append(
                    (
                        ("stages", i, "key"),
                        "stage_key_duplicate",
                        f"审核环节 stages[{i}] 的环节编码 key“{stage.key}”与 stages[{seen[stage.key]}] 重复",
                        stage.key,
                    )
                )
            seen.setdefault(stage.key, i)
        _raise_if("ApprovalFlow", problems)
        return self


class Consent(_Model):
    """意愿确认 (no_application): the enterprise confirms it wants the money and its account."""

    deadline_working_days: WorkingDays = Field(10, title="确认时限（工作日）")
    on_no_answer: Literal["pay_on_file", "lapse"] = Field(
        title="逾期未确认", description="pay_on_file 按档案账户兑付 / lapse 视为放弃"
    )


class SortKey(_Model):
    """One key of the stated order in which a short budget is used up."""

    key: str = Field(title="排序依据", description=f"{SORT_AMOUNT}（核定金额）或数值、日期类条件字段")
    direction: Literal["asc", "desc"] = Field("asc", title="方向")

    @model_validator(mode="after")
    def _known(self) -> SortKey:
        spec = FIELDS.get(self.key)
        if self.key != SORT_AMOUNT and (spec is None or not (spec.is_numeric or spec.type is FieldType.DATE)):
            allowed = [SORT_AMOUNT] + [n for n, s in FIELDS.items() if s.is_numeric or s.type is FieldType.DATE]
            raise rule_error(
                "SortKey",
                [
                    (
                        ("key",),
                        "sort_key_unknown",
                        f"排序依据 key={self.key!r} 无效；可用：{'、'.join(allowed)}",
                        self.key,
                    )
                ],
            )
        return self


class Shortfall(_Model):
    """What happens when the matched amounts exceed the budget (预算不足时)."""

    policy: Literal["stop_in_order", "pro_rata"] = Field(
        title="不足时处理", description="stop_in_order 按规定顺序兑付至用完 / pro_rata 全部按比例核减"
    )
    order_by: list[SortKey] = Field(
        default_factory=list, title="兑付顺序", description="stop_in_order 时必填；并列时按统一社会信用代码排序"
    )

    @model_validator(mode="after")
    def _order(self) -> Shortfall:
        if self.policy == "stop_in_order" and not self.order_by:
            raise rule_error(
                "Shortfall",
                [
                    (
                        ("order_by",),
                        "shortfall_order_required",
                        "预算不足时按顺序兑付（policy=stop_in_order）须写明兑付顺序 order_by",
                        [],
                    )
                ],
            )
        if self.policy == "pro_rata" and self.order_by:
            raise rule_error(
                "Shortfall",
                [
                    (
                        ("order_by",),
                        "shortfall_order_unused",
                        "按比例核减（policy=pro_rata）不使用兑付顺序 order_by，请删除",
                        [k.model_dump() for k in self.order_by],
                    )
                ],
            )
        return self


class NoApplicationOptions(_Model):
    """Options of a no-application (免申即享) item."""

    consent: Consent | None = Field(None, title="意愿确认", description="不填则无需企业确认")
    shortfall: Shortfall = Field(title="预算不足时处理")


class ServiceOfficer(_Model):
    """The policy service officer (政策服务专员) enterprises can call."""

    name: str = Field(min_length=1, max_length=40, title="姓名")
    phone: str = Field(pattern=r"^[0-9][0-9\-]{6,19}$", title="联系电话", examples=["0717-6222001"])
    office: str = Field("", max_length=80, title="科室", examples=["市经信局中小企业科"])


# ---------------------------------------------------------------------------------------------- the config

EXAMPLE_STANDARD: dict[str, Any] = {"kind": "fixed", "amount_fen": 10_000_000}

EXAMPLE_INSTANT: dict[str, Any] = {
    "policy": {
        "doc_number": "宜经信发〔2026〕12号",
        "title": "宜昌市支持专精特新中小企业高质量发展若干措施",
        "level": "city",
        "issuer": "宜昌市经济和信息化局",
        "issuer_code": "YC-JXJ",
        "published_on": "2026-03-18",
    },
    "name": "宜昌市2026年度专精特新中小企业一次性奖励（即申即享）",
    "region": {"code": "420500", "name": "宜昌市"},
    "mode": "instant",
    "window": {"start": "2026-04-01", "end": "2027-03-31"},
    "guide": {
        "policy_basis": "《宜昌市支持专精特新中小企业高质量发展若干措施》（宜经信发〔2026〕12号）第三条",
        "conditions_text": "1. 注册地在宜昌市；2. 为有效期内的省级以上专精特新中小企业；3. 未被列入严重失信主体名单。",
        "standard_text": "一次性奖励10万元。",
        "materials": [],
        "process": "企业在线申报 → 系统自动核验 → 即时审批 → 国库直达拨付，全程1个工作日。",
        "notes": "同一企业只能享受一次；请确保收款账户为企业基本户。",
    },
    "conditions": {
        "op": "all",
        "items": [
            {"field": "tags", "op": "has_tag", "value": "专精特新"},
            {"field": "region_code", "op": "prefix", "value": "4205"},
            {"field": "credit_status", "op": "ne", "value": "dishonest"},
        ],
    },
    "standard": EXAMPLE_STANDARD,
    "budget": {"year": 2026, "total_fen": 500_000_000, "sources": [{"name": "市级财政", "share_bp": 10000}]},
    "pay_summary_code": "30307",
    "approval": {"finance": {"department": "YC-CZJ", "auto_when_quantified": True}},
    "service_officer": {"name": "王敏", "phone": "0717-6222001", "office": "市经信局中小企业科"},
}

EXAMPLE_REVIEW: dict[str, Any] = {
    **EXAMPLE_INSTANT,
    "name": "宜昌市2026年度工业企业技术改造补贴（申报审批）",
    "mode": "review",
    "window": {"start": "2026-11-02", "end": "2027-01-29"},
    "guide": {
        **EXAMPLE_INSTANT["guide"],
        "standard_text": "按经审核确认的设备投资额的8%给予补贴，单个项目最高200万元。",
        "materials": [{"name": "技术改造项目备案证", "requirement": "加盖公章的扫描件", "sample": "备案证样本.pdf"}],
        "process": "企业申报 → 市经信局初审（5个工作日）→ 市财政局、市发改委联审（10个工作日）→ 公示5个工作日 → 财政审核 → 拨付。",
    },
    "standard": {"kind": "manual", "max_fen": 200_000_000, "note": "按设备投资额的8%核定，最高200万元"},
    "budget": {
        "year": 2026,
        "total_fen": 2_000_000_000,
        "sources": [{"name": "市级财政", "share_bp": 6000}, {"name": "区级财政", "share_bp": 4000}],
    },
    "approval": {
        "stages": [
            {
                "key": "first_review",
                "name": "初审",
                "departments": ["YC-JXJ"],
                "deadline_working_days": 5,
                "on_timeout": "auto_reject",
            },
            {
                "key": "joint_review",
                "name": "联合审核",
                "departments": ["YC-CZJ", "YC-FGW"],
                "joint_mode": "all",
                "deadline_working_days": 10,
                "remind_before_working_days": 2,
                "on_timeout": "escalate",
                "escalate_to": "YC-JXJ",
            },
        ],
        "supplement": {"max_times": 1, "enterprise_deadline_working_days": 5},
        "publicity": {"working_days": 5, "objections_allowed": True},
        "finance": {"department": "YC-CZJ", "auto_when_quantified": True},
    },
}

EXAMPLE_NO_APPLICATION: dict[str, Any] = {
    **EXAMPLE_INSTANT,
    "name": "宜昌市2026年度中小微企业稳岗补贴（免申即享）",
    "mode": "no_application",
    "window": None,
    "guide": {
        **EXAMPLE_INSTANT["guide"],
        "standard_text": "按上年度纳税额的3%给予补贴，最低1万元，最高20万元。",
        "process": "系统比对企业数据 → 核定金额 → 企业意愿确认（10个工作日）→ 财政审核 → 拨付。",
    },
    "conditions": {
        "op": "all",
        "items": [
            {"field": "region_code", "op": "prefix", "value": "4205"},
            {"field": "employees", "op": "ge", "value": 10},
            {"field": "credit_status", "op": "eq", "value": "good"},
        ],
    },
    "standard": {"kind": "rate", "base": "tax_paid_fen", "rate": "0.03", "floor_fen": 1_000_000, "cap_fen": 20_000_000},
    "no_application": {
        "consent": {"deadline_working_days": 10, "on_no_answer": "pay_on_file"},
        "shortfall": {"policy": "stop_in_order", "order_by": [{"key": "employees", "direction": "desc"}]},
    },
}


class FundItemConfig(_Model):
    """The whole configuration of one fund item version (政策资金事项配置), stored as JSON and frozen on listing."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_INSTANT]})

    schema_version: Literal[1] = Field(1, title="配置格式版本")
    policy: PolicyRef = Field(title="政策依据文件")
    name: str = Field(
        min_length=4,
        max_length=300,
        title="事项名称",
        description="须写明所属行政区划和颗粒化资金内容（宜昌规则第二十三条）",
    )
    region: Region = Field(title="所属行政区划")
    mode: FundItemMode = Field(title="兑付方式", description="no_application 免申即享 / instant 即申即享 / review 申报审批")
    window: ApplicationWindow | None = Field(None, title="申报期", description="即申即享、申报审批必填")
    guide: Guide = Field(title="申报指南")
    conditions: Condition = Field(title="申报条件（条件树）")
    standard: Standard = Field(title="扶持标准", examples=[EXAMPLE_STANDARD])
    budget: Budget = Field(title="预算")
    payer: PayerAccount | None = Field(None, title="付款账户", description="不填则用系统配置的财政零余额账户")
    pay_summary_code: str = Field("30307", pattern=r"^\d{3,16}$", title="支付摘要代码（PaySummaryCode）")
    fund_source: str | None = Field(
        None, min_length=1, max_length=64, title="支付凭证资金来源", description="不填则取第一个资金来源"
    )
    approval: ApprovalFlow = Field(title="审批流程")
    no_application: NoApplicationOptions | None = Field(None, title="免申即享选项", description="仅免申即享事项填写")
    sms_templates: dict[NoticeStage, TemplateKey] = Field(
        default_factory=dict, title="短信模板", description='按环节覆盖默认短信模板，如 {"paid": "SMS_1234567"}'
    )
    service_officer: ServiceOfficer = Field(title="政策服务专员")
    officer: str | None = Field(
        None, max_length=160, title="服务专员（显示）", description="短信中的联系方式，不填则由服务专员生成"
    )

    @model_validator(mode="after")
    def _rules(self) -> FundItemConfig:
        problems = list(self._problems())
        _raise_if("FundItemConfig", problems)
        if self.fund_source is None:
            self.fund_source = self.budget.sources[0].name
        if self.officer is None:
            o = self.service_officer
            self.officer = f"{o.office}{o.name} {o.phone}"
        return self

    def _problems(self) -> Iterable[tuple[tuple[str | int, ...], str, str, Any]]:
        mode, flow, label = self.mode, self.approval, self.mode.label
        if self.region.name not in self.name:
            yield (
                ("name",),
                "name_region",
                f"事项名称 name 须写明所属行政区划“{self.region.name}”（宜昌规则第二十三条：政策资金名称应明确资金所属行政区划）",
                self.name,
            )
        if mode != FundItemMode.NO_APPLICATION and self.window is None:
            yield (("window",), "window_required", f"{label}事项须填写申报期 window（start、end）", None)
        if mode in (FundItemMode.INSTANT, FundItemMode.NO_APPLICATION):
            if flow.stages:
                yield (
                    ("approval", "stages"),
                    f"{mode.value}_no_stages",
                    f"{label}事项不设部门审核环节：approval.stages 须为空（实有 {len(flow.stages)} 个环节）；"
                    "需要部门审核的请选择申报审批（review）",
                    [s.key for s in flow.stages],
                )
            if flow.completeness_check is not None:
                yield (
                    ("approval", "completeness_check"),
                    f"{mode.value}_no_completeness_check",
                    f"{label}事项没有申报材料的形式审查：approval.completeness_check 须为空",
                    flow.completeness_check.model_dump(),
                )
            if flow.supplement is not None:
                yield (
                    ("approval", "supplement"),
                    f"{mode.value}_no_supplement",
                    f"{label}事项不退回补正：approval.supplement 须为空",
                    flow.supplement.model_dump(),
                )
            if not is_fully_quantified(self.standard):
                yield (
                    ("standard",),
                    "standard_not_quantified",
                    f"{label}事项的扶持标准 standard 须完全量化（金额由企业数据算出），不能含人工确定（manual）部分",
                    self.standard.model_dump(mode="json"),
                )
        if mode == FundItemMode.INSTANT:
            if flow.publicity is not None:
                yield (
                    ("approval", "publicity"),
                    "instant_no_publicity",
                    "即申即享事项即时审批即时兑付，不设公示：approval.publicity 须为空；需要公示的请选择申报审批（review）",
                    flow.publicity.model_dump(),
                )
            if not flow.finance.auto_when_quantified:
                yield (
                    ("approval", "finance", "auto_when_quantified"),
                    "instant_finance_auto",
                    "即申即享事项须由财政自动审核：approval.finance.auto_when_quantified 须为 true",
                    False,
                )
        if mode == FundItemMode.REVIEW:
            if not flow.stages:
                yield (
                    ("approval", "stages"),
                    "review_needs_stages",
                    "申报审批事项至少需要一个部门审核环节：approval.stages 不能为空",
                    [],
                )
            if not self.guide.materials:
                yield (
                    ("guide", "materials"),
                    "review_needs_materials",
                    "申报审批事项须列明申报材料 guide.materials（名称、提交要求、示范文本，宜昌规则第二十三条）",
                    [],
                )
        if mode != FundItemMode.REVIEW and flow.reject_unmet_at_application:
            yield (
                ("approval", "reject_unmet_at_application"),
                f"{mode.value}_no_reject_at_application",
                f"{label}事项由规则自动核验，不设“量化条件不满足即时不予通过”：approval.reject_unmet_at_application "
                "仅适用于申报审批（review）事项",
                True,
            )
        if mode == FundItemMode.NO_APPLICATION and self.no_application is None:
            yield (
                ("no_application",),
                "no_application_options_required",
                "免申即享事项须填写 no_application（意愿确认、预算不足时处理）",
                None,
            )
        if mode != FundItemMode.NO_APPLICATION and self.no_application is not None:
            yield (
                ("no_application",),
                "no_application_options_unused",
                f"{label}事项不使用免申即享选项：no_application 须为空",
                self.no_application.model_dump(),
            )

    # -- helpers -------------------------------------------------------------------------------------------

    @property
    def finance_auto_approval(self) -> bool:
        """Whether finance approves automatically: configured so, and the standard is fully quantified."""
        return self.approval.finance.auto_when_quantified and is_fully_quantified(self.standard)

    def department_refs(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Every department code the configuration names, with its location, for checking against the registry."""
        refs: list[tuple[tuple[str | int, ...], str]] = []
        if self.policy.issuer_code:
            refs.append((("policy", "issuer_code"), self.policy.issuer_code))
        flow = self.approval
        if flow.completeness_check:
            refs.append((("approval", "completeness_check", "department"), flow.completeness_check.department))
        for i, stage in enumerate(flow.stages):
            refs += [(("approval", "stages", i, "departments", j), code) for j, code in enumerate(stage.departments)]
            if stage.escalate_to:
                refs.append((("approval", "stages", i, "escalate_to"), stage.escalate_to))
        if flow.publicity and flow.publicity.objection_department:
            refs.append((("approval", "publicity", "objection_department"), flow.publicity.objection_department))
        refs.append((("approval", "finance", "department"), flow.finance.department))
        return refs

    def to_json(self) -> dict[str, Any]:
        """The JSON stored in FundItemVersion.config (dates as YYYY-MM-DD, rates as decimal strings)."""
        return self.model_dump(mode="json")


# ---------------------------------------------------------------------------------------------- API contracts


class FundItemCreate(_Model):
    """A new fund item: its code and the first draft of its configuration."""

    code: str = Field(pattern=r"^[A-Z0-9][A-Z0-9\-]{2,39}$", title="事项编码", examples=["YC-2026-JSGZ-001"])
    department_code: DepartmentCode | None = Field(
        None, title="主管部门编码", description="部门用户不填（即本部门）；管理员须填写"
    )
    config: FundItemConfig = Field(title="事项配置")


class DelistIn(_Model):
    """Why a fund item is taken down (下架) or closed (结束受理)."""

    reason: str = Field(min_length=2, max_length=500, title="原因", examples=["政策已废止"])


class ListingCheck(BaseModel):
    """The Yichang rules art. 20 check: listed at least 5 working days before the application window opens."""

    required: bool = Field(description="是否适用（免申即享事项及申报起始日未变的再次上架不适用）")
    listing_date: date = Field(description="上架日期（北京时间）")
    window_start: date | None = Field(None, description="申报起始日")
    latest_listing_date: date | None = Field(None, description="最迟上架日期：申报起始日前第5个工作日")
    earliest_start_date: date | None = Field(None, description="按上架日期计算，申报起始日最早可设为")
    ok: bool
    provisional: bool = Field(False, description="所涉年份的节假日数据尚未导入，按周末推算，结果为暂定")
    note: str = Field(description="中文说明")


class BudgetLineOut(BaseModel):
    source: str
    budget_year: int
    total_fen: int
    reserved_fen: int
    committed_fen: int


class FundItemSummary(BaseModel):
    """One fund item in a list."""

    code: str
    name: str
    mode: FundItemMode
    mode_label: str
    status: FundItemStatus
    status_label: str
    department_code: str
    department_name: str
    policy_doc_number: str
    current_version: int = Field(description="最新版本（可能是未上架的草稿）")
    listed_version: int | None = Field(description="办件使用的已上架版本")
    pending_version: int | None = Field(description="已上架后修改形成、尚未上架的新版本")
    window: ApplicationWindow | None = None
    budget_total_fen: int


class FundItemVersionOut(BaseModel):
    """One version of a fund item's configuration."""

    version: int
    frozen: bool = Field(description="上架即冻结，冻结后不可修改")
    listed: bool = Field(description="是否为当前上架版本")
    created_at: datetime | None
    finance_auto_approval: bool = Field(description="财政是否自动审核（配置允许且扶持标准完全量化）")
    config: FundItemConfig


class FundItemOut(FundItemSummary):
    """A fund item with its latest configuration, its budget ledger and what the last operation noted."""

    version: FundItemVersionOut = Field(description="最新版本")
    budget_lines: list[BudgetLineOut] = Field(default_factory=list, description="预算额度台账（上架时生成）")
    listing: ListingCheck | None = Field(None, description="上架时限检查（提交、上架时给出）")
    notes: list[str] = Field(default_factory=list, description="本次操作的提示")


class VersionSummary(BaseModel):
    version: int
    frozen: bool
    listed: bool
    created_at: datetime | None
    name: str


# ---------------------------------------------------------------------------------------------- error wording

_BUILTIN_MESSAGES: dict[str, str] = {
    "missing": "缺少必填项",
    "extra_forbidden": "不认识的字段（请检查拼写）",
    "string_type": "必须是文本",
    "string_pattern_mismatch": "格式不正确，须符合 {pattern}",
    "string_too_short": "至少 {min_length} 个字",
    "string_too_long": "最多 {max_length} 个字",
    "int_type": "必须是整数",
    "int_parsing": "必须是整数",
    "int_from_float": "必须是整数",
    "bool_type": "必须是 true 或 false",
    "bool_parsing": "必须是 true 或 false",
    "greater_than": "必须大于 {gt}",
    "greater_than_equal": "不能小于 {ge}",
    "less_than": "必须小于 {lt}",
    "less_than_equal": "不能大于 {le}",
    "date_type": "必须是 YYYY-MM-DD 格式的日期",
    "date_parsing": "必须是 YYYY-MM-DD 格式的日期",
    "date_from_datetime_parsing": "必须是 YYYY-MM-DD 格式的日期",
    "date_from_datetime_inexact": "必须是日期，不能带时间",
    "list_type": "必须是列表",
    "too_short": "至少需要 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "dict_type": "必须是对象",
    "model_type": "必须是对象",
    "model_attributes_type": "必须是对象",
    "literal_error": "取值必须是 {expected} 之一",
    "enum": "取值必须是 {expected} 之一",
    "union_tag_invalid": "类型 {tag} 无效，应为 {expected_tags} 之一",
    "union_tag_not_found": "缺少类型字段 {discriminator}",
    "json_invalid": "JSON 格式错误",
}


def _unwrap(tp: Any) -> Any:
    """The model or container inside Optional[...] / Annotated[...]."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return None
            tp = args[0]
        else:
            return tp


def field_label(root: type[BaseModel], loc: Sequence[str | int]) -> str | None:
    """The Chinese title of the field at `loc` below `root`, when the path runs through plain models."""
    tp: Any = root
    label = None
    for part in loc:
        tp = _unwrap(tp)
        if tp is None:
            return None
        if isinstance(part, int):
            if typing.get_origin(tp) is not list:
                return None
            tp = typing.get_args(tp)[0]
            continue
        if isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            info = tp.model_fields[part]
            label, tp = info.title, info.annotation
        else:
            return None
    return label


def error_path(loc: Sequence[str | int]) -> str:
    return ".".join(str(p) for p in loc)


def explain_error(error: Mapping[str, Any], root: type[BaseModel] = FundItemConfig) -> str:
    """A pydantic error in Chinese, naming the field (title and path) and the rule broken."""
    loc = [p for p in error.get("loc", ()) if p != "body"]
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    msg = str(error.get("msg", ""))
    if kind in ("value_error", "assertion_error"):
        # Condition and standard errors already name their field in Chinese.
        return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    template = _BUILTIN_MESSAGES.get(kind)
    if template is None:
        return msg  # our own rules (named error types) say the field and the rule themselves
    try:
        text = template.format(**{k: v for k, v in ctx.items()})
    except (KeyError, IndexError):
        text = template
    path = error_path(loc)
    label = field_label(root, loc)
    where = f"{label}（{path}）" if label else path
    return f"{where}：{text}（规则：{kind}）" if where else f"{text}（规则：{kind}）"


def explain_errors(errors: Iterable[Mapping[str, Any]], root: type[BaseModel] = FundItemConfig) -> list[dict[str, Any]]:
    """Pydantic errors with Chinese messages, in the shape FastAPI reports them (loc, msg, type)."""
    out = []
    for error in errors:
        item = {k: v for k, v in error.items() if k in ("loc", "type", "input", "ctx")}
        item["msg"] = explain_error(error, root)
        item.setdefault("ctx", {})
        item["ctx"] = {k: str(v) for k, v in (item["ctx"] or {}).items()}
        out.append(item)
    return out


class ConfigInvalid(ValueError):
    """A configuration failed validation; `errors` lists each field, rule and Chinese message."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("\n".join(f"{error_path(e['loc'])}：{e['msg']}" for e in errors))


def validate_config(data: Mapping[str, Any] | FundItemConfig) -> FundItemConfig:
    """A FundItemConfig from JSON-like data, or ConfigInvalid with Chinese messages (for CLI and demo data)."""
    if isinstance(data, FundItemConfig):
        return data
    try:
        return FundItemConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigInvalid(explain_errors(exc.errors(include_url=False))) from exc
