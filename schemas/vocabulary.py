"""The one vocabulary of Zhida: every status, event kind, stage, role and actor the code and the pages use.

Each concept is a `StrEnum` whose members carry their Chinese label (what users read) and, where it matters, whether
the value is final. Values are the strings stored in the database and in workflow histories, so renaming a value needs
a migration and a history re-record; adding one needs a label (tests/schemas/test_vocabulary.py checks both).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self


class Vocabulary(StrEnum):
    """A value with its Chinese label; `is_final` marks values after which nothing more happens."""

    label: str
    is_final: bool

    def __new__(cls, value: str, label: str, final: bool = False) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        member.is_final = final
        return member

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """Every stored value, in declaration order (for CHECK constraints and Literal-like validation)."""
        return tuple(m.value for m in cls)

    @classmethod
    def finals(cls) -> frozenset[Self]:
        """The final values."""
        return frozenset(m for m in cls if m.is_final)

    @classmethod
    def label_of(cls, value: str | None, default: str = "—") -> str:
        """The label of a stored value; an unknown value is shown as `default`, never as a code."""
        if value is None:
            return default
        try:
            return cls(value).label
        except ValueError:
            return default


class FundItemMode(Vocabulary):
    """How a fund item pays (兑付方式)."""

    NO_APPLICATION = "no_application", "免申即享"
    INSTANT = "instant", "即申即享"
    REVIEW = "review", "申报审批"


class FundItemStatus(Vocabulary):
    """The lifecycle of a fund item (上架/下架)."""

    DRAFT = "draft", "草稿"
    SUBMITTED = "submitted", "已提交"
    LISTED = "listed", "已上架"
    CLOSED = "closed", "已结束", True
    DELISTED = "delisted", "已下架", True


class PolicyLevel(Vocabulary):
    NATIONAL = "national", "国家级"
    PROVINCIAL = "provincial", "省级"
    CITY = "city", "市级"
    COUNTY = "county", "县级"


class CaseStatus(Vocabulary):
    """Where a case (办件) stands; the three modes share one set of statuses."""

    # Instant and review (申报)
    RECEIVED = "received", "已受理"
    COMPLETENESS = "completeness", "形式审查中"
    REVIEWING = "reviewing", "审核中"
    SUPPLEMENT = "supplement", "待企业补正"
    APPROVED = "approved", "审核通过"
    # No application (免申即享)
    MATCHED = "matched", "已匹配"
    CONSENT_PENDING = "consent_pending", "待企业确认"
    READY = "ready", "已确认"
    NO_ACCOUNT = "no_account", "缺少收款账户"
    # Shared
    RESERVED = "reserved", "额度已预留"
    PUBLICITY = "publicity", "公示中"
    OBJECTION = "objection", "异议核查中"
    OBJECTED = "objected", "异议处理中"
    FINANCE_REVIEW = "finance_review", "财政审核中"
    PAYING = "paying", "拨付中"
    AWAITING_CORRECTION = "awaiting_correction", "待更正收款账户"
    # Final
    PAID = "paid", "已拨付", True
    REJECTED = "rejected", "未通过", True
    PAYMENT_FAILED = "payment_failed", "拨付失败", True
    WITHDRAWN = "withdrawn", "已撤回", True
    REVOKED = "revoked", "已撤销", True
    REFUNDED = "refunded", "资金已退回", True
    BUDGET_EXHAUSTED = "budget_exhausted", "预算不足", True
    DECLINED = "declined", "企业放弃", True
    LAPSED = "lapsed", "逾期未确认", True


class EventKind(Vocabulary):
    """What happened to a case: one row of its hash-chained timeline."""

    RECEIVED = "received", "申报受理"
    APPROVED = "approved", "规则核验通过"
    REJECTED = "rejected", "不予通过"
    BUDGET_RESERVED = "budget_reserved", "预留资金额度"
    BUDGET_EXHAUSTED = "budget_exhausted", "预算额度不足"
    MATCHED = "matched", "数据比对匹配"
    CONSENT_REQUESTED = "consent_requested", "请企业确认意愿"
    CONSENT_CONFIRMED = "consent_confirmed", "企业确认领取"
    CONSENT_DECLINED = "consent_declined", "企业放弃领取"
    CONSENT_ON_FILE = "consent_on_file", "逾期按备案账户拨付"
    CONSENT_LAPSED = "consent_lapsed", "逾期未确认"
    NO_ACCOUNT = "no_account", "缺少收款账户"
    STAGE_OPENED = "stage_opened", "进入审核环节"
    STAGE_ESCALATED = "stage_escalated", "逾期上报"
    STAGE_REMINDER = "stage_reminder", "办理提醒"
    STAGE_TIMEOUT = "stage_timeout", "办理逾期"
    STAGE_ENTERPRISE_REMINDER = "stage_enterprise_reminder", "提醒企业办理"
    DECISION = "decision", "部门审核意见"
    SUPPLEMENT_REQUESTED = "supplement_requested", "退回补正"
    SUPPLEMENT_RECEIVED = "supplement_received", "企业已补正"
    PUBLICITY_STARTED = "publicity_started", "公示"
    OBJECTION_FILED = "objection_filed", "收到实名异议"
    OBJECTION_UPHELD = "objection_upheld", "异议成立"
    OBJECTION_DISMISSED = "objection_dismissed", "异议不成立"
    FINANCE_APPROVED = "finance_approved", "财政审核通过"
    FINANCE_REJECTED = "finance_rejected", "财政审核不通过"
    PAYMENT_SENT = "payment_sent", "发送支付指令"
    PAID = "paid", "国库支付成功"
    PAYMENT_FAILED = "payment_failed", "支付失败"
    CORRECTION_REQUESTED = "correction_requested", "通知更正收款账户"
    ACCOUNT_CORRECTED = "account_corrected", "企业已更正账户"
    BUDGET_DECISION = "budget_decision", "财政预算决定"
    REFUNDED = "refunded", "资金主动退回"
    WITHDRAWN = "withdrawn", "撤回申报"
    REVOKED = "revoked", "撤销办件"
    ARCHIVE_CHANGED = "archive_changed", "企业档案变更"
    DEADLINE_MOVED = "deadline_moved", "办理期限按节假日安排重算"


# Events recorded before the vocabulary was unified keep their stored kind (it is part of the hash chain); they read
# as the kind they were renamed to.
LEGACY_EVENT_KINDS: dict[str, EventKind] = {"objection_received": EventKind.OBJECTION_FILED}


def event_label(kind: str) -> str:
    """The label of a stored event kind, legacy names included."""
    legacy = LEGACY_EVENT_KINDS.get(kind)
    return legacy.label if legacy else EventKind.label_of(kind)


class StageKind(Vocabulary):
    """A stage of the review flow (审批环节)."""

    COMPLETENESS = "completeness", "形式审查"
    REVIEW = "review", "部门审核"
    FINANCE = "finance", "财政审核"


class TimeoutPolicy(Vocabulary):
    """What a stage does when its working-day deadline passes."""

    ESCALATE = "escalate", "逾期上报"
    AUTO_APPROVE = "auto_approve", "逾期视为同意"
    AUTO_REJECT = "auto_reject", "逾期视为不同意"
    WAIT = "wait", "逾期继续等待"


class JointMode(Vocabulary):
    """How several departments of one stage (联审) decide."""

    ALL = "all", "全部同意"
    ANY = "any", "任一同意"


class DecisionKind(Vocabulary):
    APPROVE = "approve", "同意"
    REJECT = "reject", "不同意"
    RETURN = "return", "退回补正"


class TaskStatus(Vocabulary):
    OPEN = "open", "待办"
    DONE = "done", "已办", True
    CLOSED = "closed", "环节已结束", True
    TIMED_OUT = "timed_out", "已逾期", True


class ObjectionStatus(Vocabulary):
    OPEN = "open", "核查中"
    UPHELD = "upheld", "异议成立", True
    DISMISSED = "dismissed", "异议不成立", True


class ConsentStatus(Vocabulary):
    """An enterprise's answer to a no-application consent request (意愿确认)."""

    PENDING = "pending", "待确认"
    CONFIRMED = "confirmed", "已确认", True
    DECLINED = "declined", "已放弃", True
    ON_FILE = "on_file", "按备案账户", True
    LAPSED = "lapsed", "逾期未确认", True


class PaymentStatus(Vocabulary):
    """A payment instruction (支付凭证) at the treasury."""

    CREATED = "created", "未发送"
    ACCEPTED = "accepted", "国库已受理"
    PAID = "paid", "已拨付", True
    FAILED = "failed", "支付失败", True
    RETURNED = "returned", "已退票", True


class ReturnKind(Vocabulary):
    """A bank return (退票): the bank sends it back, or the enterprise returns it."""

    PASSIVE = "passive", "被动退回"
    ACTIVE = "active", "主动退回"


class BudgetEntryKind(Vocabulary):
    """A budget ledger move (额度)."""

    RESERVE = "reserve", "预留"
    COMMIT = "commit", "支出"
    RELEASE = "release", "释放"
    RESTORE = "restore", "恢复额度"


class NoticeStatus(Vocabulary):
    """An SMS notice in the outbox."""

    QUEUED = "queued", "待发送"
    SENDING = "sending", "发送中"
    SENT = "sent", "已发送"
    DELIVERED = "delivered", "已送达", True
    FAILED = "failed", "发送失败", True
    CANCELLED = "cancelled", "已撤回", True


class NoticeCategory(Vocabulary):
    CASE = "case", "办件通知"
    PUSH = "push", "政策推送"


class NoticeStage(Vocabulary):
    """The stages of a case that send an SMS; a fund item may name its own template for each."""

    MATCHED = "matched", "政策匹配"
    CONSENT = "consent", "意愿确认"
    RECEIVED = "received", "申报受理"
    COMPLETENESS = "completeness", "形式审查"
    SUPPLEMENT = "supplement", "补正通知"
    REMINDER = "reminder", "办理提醒"
    APPROVED = "approved", "审核通过"
    REJECTED = "rejected", "未通过"
    PUBLICITY = "publicity", "公示"
    OBJECTION = "objection", "异议处理"
    FINANCE_APPROVED = "finance_approved", "财政审核"
    PAID = "paid", "拨付成功"
    PAYMENT_FAILED = "payment_failed", "拨付失败"
    RETURNED = "returned", "退票"
    ACCOUNT_CORRECTION = "account_correction", "账户更正"


class PushKind(Vocabulary):
    """The three policy pushes (Yichang rules art. 26)."""

    REGISTERED = "registered", "注册后推送"
    LISTED = "listed", "上架后推送"
    PAID = "paid", "兑付时推送"


class CampaignKind(Vocabulary):
    LISTING = "listing", "上架比对"
    REEVALUATION = "reevaluation", "数据变更复核"


class FinanceStatus(Vocabulary):
    PENDING = "pending", "待财政审核"
    APPROVED = "approved", "财政已同意", True
    REJECTED = "rejected", "财政不同意", True


class ReconOutcome(Vocabulary):
    MATCHED = "matched", "一致"
    MISSING_OURS = "missing_ours", "我方缺失"
    MISSING_THEIRS = "missing_theirs", "国库缺失"
    AMOUNT_MISMATCH = "amount_mismatch", "金额不符"
    STATUS_MISMATCH = "status_mismatch", "状态不符"


class ReconRunStatus(Vocabulary):
    RUNNING = "running", "对账中"
    DONE = "done", "已完成", True


class AlertStatus(Vocabulary):
    OPEN = "open", "待处理"
    CLOSED = "closed", "已关闭", True


class Role(Vocabulary):
    """Who a signed-in caller is."""

    ENTERPRISE = "enterprise", "企业"
    DEPARTMENT = "department", "主管部门"
    FINANCE = "finance", "财政部门"
    ADMIN = "admin", "系统管理员"


class DepartmentKind(Vocabulary):
    POLICY = "policy", "政策主管部门"
    FINANCE = "finance", "财政部门"


class ActorKind(Vocabulary):
    """The part before the colon of a recorded actor (`system:rules`, `department:YC-JXJ`)."""

    SYSTEM = "system", "系统"
    ENTERPRISE = "enterprise", "企业"
    DEPARTMENT = "department", "主管部门"
    FINANCE = "finance", "财政部门"
    ADMIN = "admin", "系统管理员"


class SystemActor(Vocabulary):
    """The automatic parts of Zhida that change cases, as users read them."""

    RULES = "system:rules", "系统自动核验"
    BUDGET = "system:budget", "预算额度管理"
    TREASURY = "system:treasury", "国库支付系统"
    WORKFLOW = "system:workflow", "兑付流程（系统）"
    TIMEOUT = "system:timeout", "逾期自动处理"
    AUTO = "system:auto", "系统自动审核"
    FINANCE = "system:finance", "财政自动审核"
    CAMPAIGN = "system:campaign", "免申即享比对（系统）"
    ARCHIVE = "system:archive", "企业档案数据"


def actor(kind: ActorKind, subject: str, officer: str = "") -> str:
    """The stored form of a person's actor: `department:YC-JXJ`, or `department:YC-JXJ:张三` with the officer."""
    return f"{kind.value}:{subject}:{officer}" if officer else f"{kind.value}:{subject}"


def split_actor(value: str) -> tuple[str, str]:
    """(kind, subject) of a stored actor; a bare value is a system actor."""
    kind, _, subject = value.partition(":")
    return (kind, subject) if subject else (ActorKind.SYSTEM.value, value)


def render_actor(value: str, *, names: dict[str, str] | None = None) -> str:
    """An actor as people read it: 系统自动核验, 宜昌市经济和信息化局（张三）, an enterprise's name; never a code.

    A person's actor may name the officer after a second colon (`department:YC-JXJ:张三`). `names` maps department
    codes and USCCs to their names (the caller looks them up); an unknown subject is shown by its role only, so no
    code leaks onto a page.
    """
    try:
        return SystemActor(value).label
    except ValueError:
        pass
    kind, subject = split_actor(value)
    if kind == ActorKind.SYSTEM:
        return "系统"
    subject, _, officer = subject.partition(":")
    who = (names or {}).get(subject) or ActorKind.label_of(kind, default="系统")
    return f"{who}（{officer}）" if officer else who


class Awaiting(Vocabulary):
    """What a running case waits for from someone outside the workflow (the `awaiting` of its progress)."""

    ACCOUNT_CORRECTION = "account_correction", "待企业更正收款账户"
    BUDGET_DECISION = "budget_decision", "待财政决定是否重新安排预算"
    SUPPLEMENT = "supplement", "待企业补正材料"
    OBJECTION_RULING = "objection_ruling", "待异议核查结论"


class ReconTrigger(Vocabulary):
    """What started a reconciliation run."""

    SCHEDULE = "schedule", "定时"
    MANUAL = "manual", "手工"


class ReturnHandling(Vocabulary):
    """What a bank return (退票) did to the budget of the returned attempt."""

    RESTORED = "restored", "同年度退回，恢复预算额度"
    BACK_TO_FINANCE = "back_to_finance", "跨年度退回，资金退回财政"
    RELEASED = "released", "未拨付，释放预留额度"
    RECORDED = "recorded", "已登记"


class ReconLineType(Vocabulary):
    """A line of a reconciliation run: a settlement (paid or failed), or a return as its own line."""

    SETTLE = "settle", "支付"
    RETURN = "return", "退回"


# The case status while a review stage of each kind is open.
STAGE_CASE_STATUS: dict[StageKind, CaseStatus] = {
    StageKind.COMPLETENESS: CaseStatus.COMPLETENESS,
    StageKind.REVIEW: CaseStatus.REVIEWING,
    StageKind.FINANCE: CaseStatus.FINANCE_REVIEW,
}


class AlertKind(Vocabulary):
    """What an alert for the finance bureau is about: one kind per reconciliation mismatch."""

    RECON_MISSING_OURS = "recon_missing_ours", "对账我方缺失"
    RECON_MISSING_THEIRS = "recon_missing_theirs", "对账国库缺失"
    RECON_AMOUNT_MISMATCH = "recon_amount_mismatch", "对账金额不符"
    RECON_STATUS_MISMATCH = "recon_status_mismatch", "对账状态不符"
    RECON_MATCHED = "recon_matched", "对账一致"
    ARCHIVE_INELIGIBLE = "archive_ineligible", "已拨付企业数据变更后不再符合条件"
    AUDIT_BROKEN = "audit_broken", "审计链校验失败"


class CampaignPhase(Vocabulary):
    """Where a no-application campaign stands: the stored phases and the workflow's own step names."""

    PENDING = "pending", "待启动"
    MATCHING = "matching", "数据比对"
    MATCH = "match", "数据比对"
    RESERVING = "reserving", "预留额度"
    RESERVE = "reserve", "预留额度"
    CONSENT = "consent", "意愿确认"
    WAVE = "wave", "意愿确认"
    PAYING = "paying", "审核拨付"
    TRANCHE = "tranche", "审核拨付"
    DONE = "done", "已完成", True


class ArchiveSource(Vocabulary):
    """Who owns an archive field (schemas/archive_sources.py says which): a data source, or an administrator."""

    MANUAL = "manual", "管理员维护"
    MARKET = "market", "市场监管企业登记"
    TAX = "tax", "税务年度纳税"
    SOCIAL = "social", "人社社保参保"
    TECH = "tech", "科技资质名单"
    CREDIT = "credit", "信用红黑名单"
    TAG_RULES = "tag_rules", "部门标签规则"


class ImportStatus(Vocabulary):
    """How an archive import ended: everything stored, or nothing (a row failed validation)."""

    SUCCEEDED = "succeeded", "已导入", True
    FAILED = "failed", "未导入（有错误行）", True


class PullStatus(Vocabulary):
    """How a pull from the data-sharing platform ended: its records imported (or none new), or nothing stored."""

    SUCCEEDED = "succeeded", "已拉取", True
    FAILED = "failed", "拉取失败（未导入）", True


class PullFailure(Vocabulary):
    """Why a pull from the data-sharing platform stored nothing."""

    TIMEOUT = "timeout", "平台超时或不可用"
    PARTIAL_PAGE = "partial_page", "分页不完整"
    SCHEMA_DRIFT = "schema_drift", "接口结构变化"
    REFUSED = "refused", "平台拒绝请求"
    INVALID_ROWS = "invalid_rows", "数据校验未通过"


class TagRuleKind(Vocabulary):
    """How a department's tag finds its enterprises: a condition over archive fields, or an imported list."""

    RULE = "rule", "按档案字段条件"
    LIST = "list", "导入名单"


class MaterialType(Vocabulary):
    """The type of an uploaded application material, as its content shows it (magic bytes), never its file name."""

    PDF = "pdf", "PDF 文档"
    JPEG = "jpeg", "JPEG 图片"
    PNG = "png", "PNG 图片"
    OFD = "ofd", "OFD 版式文件"


class MaterialPurpose(Vocabulary):
    """Why a material was uploaded: with the application, or in answer to a 补正 request."""

    APPLICATION = "application", "申报材料"
    SUPPLEMENT = "supplement", "补正材料"


class AuditKind(Vocabulary):
    """What an audit record (beyond case events) is about: configuration, archive edits, decisions, sign-ins,
    exports, and the audit's own maintenance."""

    SIGN_IN = "sign_in", "登录"
    SIGN_OUT = "sign_out", "退出登录"
    FUND_ITEM_CHANGED = "fund_item_changed", "资金事项配置变更"
    FUND_ITEM_LIFECYCLE = "fund_item_lifecycle", "资金事项状态变更"
    ARCHIVE_EDIT = "archive_edit", "企业档案变更"
    DECISION = "decision", "审核决定"
    ALERT_CLOSED = "alert_closed", "告警关闭"
    EXPORT = "export", "数据导出"
    REANCHOR = "reanchor", "审计链重新锚定"
    KEY_ROTATION = "key_rotation", "密钥轮换"
    PAYLOAD_DECODED = "payload_decoded", "工作流载荷解密查看"
    KEY_RETIRED = "key_retired", "密钥停用"
    SIGN_IN_REFUSED = "sign_in_refused", "登录被拒绝"
    CALENDAR_IMPORTED = "calendar_imported", "节假日安排导入"
    TOKEN_FIRST_USED = "token_first_used", "令牌首次使用"
    PUSH_PREFERENCE_CHANGED = "push_preference_changed", "政策推送设置变更"
    PUSH_LISTED_AGAIN = "push_listed_again", "重新推送上架事项"
    CAMPAIGN_COLLECT_NOW = "campaign_collect_now", "立即收集意愿确认"
    SIGN_IN_REFUSED_SUPPRESSED = "sign_in_refused_suppressed", "登录被拒绝（超出限额未逐条记录）"
