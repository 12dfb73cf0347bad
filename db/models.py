"""ORM models of the core records. Money is integer fen (BigInteger) everywhere."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from schemas.vocabulary import (
    AlertStatus,
    ArchiveSource,
    AuditKind,
    BudgetEntryKind,
    CampaignKind,
    CaseStatus,
    ConsentStatus,
    DepartmentKind,
    EventKind,
    FinanceStatus,
    FundItemMode,
    FundItemStatus,
    ImportStatus,
    MaterialPurpose,
    MaterialType,
    NoticeCategory,
    NoticeStatus,
    ObjectionStatus,
    PaymentStatus,
    PullFailure,
    PullStatus,
    PushKind,
    ReconOutcome,
    ReconRunStatus,
    ReturnKind,
    TagRuleKind,
    TaskStatus,
    Vocabulary,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# JSONB on PostgreSQL so tag containment compiles to @> and can be indexed.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UtcDateTime(TypeDecorator):
    """A moment stored in UTC and always read back with its offset.

    SQLite keeps no time zone, so without this its rows come back naive while PostgreSQL's come back aware; the API
    would then print times without an offset and comparisons would depend on the engine.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def result_processor(self, dialect, coltype):
        """On SQLite, the stored text through datetime.fromisoformat (C) rather than SQLAlchemy's regular expression:
        a quarter of the cost, and an export reads three moments a row. Anything it cannot read goes the usual way."""
        usual = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or usual is None:
            return usual

        def process(value):
            if value.__class__ is str:
                try:
                    moment = datetime.fromisoformat(value)
                except ValueError:
                    return usual(value)
                return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
            return usual(value)

        return process


def _now() -> UtcDateTime:
    return UtcDateTime()


def one_of(column: str, vocabulary: type[Vocabulary], *, nullable: bool = False) -> str:
    """The CHECK expression that keeps a column within its vocabulary."""
    values = ",".join(f"'{v}'" for v in vocabulary.values())
    return f"{column} IS NULL OR {column} IN ({values})" if nullable else f"{column} IN ({values})"


class Department(Base):
    """A policy department (主管部门) or a finance bureau (财政局)."""

    __tablename__ = "department"
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    region_code: Mapped[str] = mapped_column(String(12))
    kind: Mapped[str] = mapped_column(String(16), default=DepartmentKind.POLICY)
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class Enterprise(Base):
    """An enterprise archive record (企档); personal data columns are encrypted at rest."""

    __tablename__ = "enterprise"
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    industry_code: Mapped[str] = mapped_column(String(8), default="")  # GB/T 4754
    size_class: Mapped[str] = mapped_column(String(8), default="small")  # large|medium|small|micro
    registered_on: Mapped[date | None] = mapped_column(Date)
    employees: Mapped[int | None] = mapped_column(Integer)
    revenue_fen: Mapped[int | None] = mapped_column(BigInteger)
    tax_paid_fen: Mapped[int | None] = mapped_column(BigInteger)
    rd_ratio_bp: Mapped[int | None] = mapped_column(Integer)  # R&D/revenue in basis points
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    rule_tags: Mapped[list[str] | None] = mapped_column(JSONType)  # kept by the tag rules (services/archive.py)
    # field → {source, source_date, import_id | archive_change_id} of its current value, kept by imports and edits:
    # a case freezes it with its evidence, so each fact names the import that supplied it (issue 18).
    provenance: Mapped[dict | None] = mapped_column(JSONType)
    credit_status: Mapped[str] = mapped_column(String(16), default="good")  # good|warning|dishonest
    contact_phone_enc: Mapped[str | None] = mapped_column(Text)
    contact_phone_masked: Mapped[str | None] = mapped_column(String(16))
    bank_account_enc: Mapped[str | None] = mapped_column(Text)
    bank_account_masked: Mapped[str | None] = mapped_column(String(40))
    bank_account_name: Mapped[str | None] = mapped_column(String(200))
    bank_name: Mapped[str | None] = mapped_column(String(200))
    bank_code: Mapped[str | None] = mapped_column(String(16))  # 联行号
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now(), onupdate=func.now())
    # Policy pushes (issue 6): an enterprise may refuse marketing-type pushes, never case notices.
    push_opt_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    push_opted_out_at: Mapped[datetime | None] = mapped_column(_now())


class Policy(Base):
    """A published policy document (惠企政策)."""

    __tablename__ = "policy"
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    doc_number: Mapped[str] = mapped_column(String(64), unique=True)  # 文号
    title: Mapped[str] = mapped_column(String(300))
    level: Mapped[str] = mapped_column(String(16))  # national|provincial|city|county
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    published_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class FundItem(Base):
    """A fund item (政策资金事项): the smallest payable unit; its configuration lives in versions."""

    __tablename__ = "fund_item"
    __table_args__ = (
        CheckConstraint(one_of("mode", FundItemMode), name="mode"),
        CheckConstraint(one_of("status", FundItemStatus), name="status"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policy.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    name: Mapped[str] = mapped_column(String(300))
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=FundItemStatus.DRAFT)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    listed_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now(), onupdate=func.now())


class FundItemVersion(Base):
    """One immutable-once-frozen configuration of a fund item; cases pin a version."""

    __tablename__ = "fund_item_version"
    __table_args__ = (UniqueConstraint("fund_item_id", "version", name="uq_fund_item_version_item_version"),)
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    fund_item_id: Mapped[int] = mapped_column(ForeignKey("fund_item.id"))
    version: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict] = mapped_column(JSONType)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class BudgetLine(Base):
    """A budget quota (额度) of a fund item from one funding source; the CHECKs forbid overspending."""

    __tablename__ = "budget_line"
    __table_args__ = (
        UniqueConstraint("fund_item_id", "source", name="uq_budget_line_item_source"),
        CheckConstraint("reserved_fen >= 0 AND committed_fen >= 0", name="non_negative"),
        CheckConstraint("reserved_fen + committed_fen <= total_fen", name="within_total"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    fund_item_id: Mapped[int] = mapped_column(ForeignKey("fund_item.id"))
    source: Mapped[str] = mapped_column(String(64), default="市级财政")
    budget_year: Mapped[int] = mapped_column(Integer)
    total_fen: Mapped[int] = mapped_column(BigInteger)
    reserved_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    committed_fen: Mapped[int] = mapped_column(BigInteger, default=0)


class Case(Base):
    """A case (办件): one enterprise × one fund item, from match or application to paid/closed."""

    __tablename__ = "case"
    __table_args__ = (
        UniqueConstraint("fund_item_id", "enterprise_id", name="uq_case_item_enterprise"),
        CheckConstraint(one_of("status", CaseStatus), name="status"),
        CheckConstraint(one_of("mode", FundItemMode), name="mode"),
        CheckConstraint(one_of("consent_status", ConsentStatus, nullable=True), name="consent_status"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    fund_item_id: Mapped[int] = mapped_column(ForeignKey("fund_item.id"))
    fund_item_version: Mapped[int] = mapped_column(Integer)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"), index=True)
    mode: Mapped[str] = mapped_column(String(16))
    # No index of its own: ix_case_status_id (status, id) serves every lookup by status (on SQLite it is the same
    # index, every index ending in the rowid), and each one costs a b-tree delete and insert per status change.
    status: Mapped[str] = mapped_column(String(24))
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    workflow_id: Mapped[str] = mapped_column(String(120), unique=True)
    outcome_reason: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[dict | None] = mapped_column(JSONType)  # condition values the decision used
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now(), onupdate=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(_now())
    # No-application campaigns (issue 7): the campaign and wave (tranche) that pay the case, and the consent
    # (意愿确认): pending | confirmed | declined | on_file | lapsed, with the account the enterprise confirmed.
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id"))
    tranche: Mapped[int | None] = mapped_column(Integer)
    consent_status: Mapped[str | None] = mapped_column(String(16))
    consent_at: Mapped[datetime | None] = mapped_column(_now())
    consent_acct_enc: Mapped[str | None] = mapped_column(Text)
    consent_acct_masked: Mapped[str | None] = mapped_column(String(40))
    consent_acct_name: Mapped[str | None] = mapped_column(String(200))
    consent_bank_name: Mapped[str | None] = mapped_column(String(200))
    consent_bank_code: Mapped[str | None] = mapped_column(String(16))


class CaseEvent(Base):
    """One state change of a case (audit timeline), hash-chained per case; `key` makes retries idempotent."""

    __tablename__ = "case_event"
    __table_args__ = (
        UniqueConstraint("case_id", "seq", name="uq_case_event_case_seq"),
        UniqueConstraint("case_id", "key", name="uq_case_event_case_key"),
        # Stored kinds are part of the hash chain, so the legacy names recorded before the vocabulary was unified stay.
        CheckConstraint(one_of("kind", EventKind) + " OR kind IN ('objection_received')", name="kind"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"))
    seq: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict | None] = mapped_column(JSONType)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(_now())


class BudgetEntry(Base):
    """Budget ledger entry: reserve → commit, or reserve → release; unique per case, kind and attempt."""

    __tablename__ = "budget_entry"
    __table_args__ = (
        CheckConstraint(one_of("kind", BudgetEntryKind), name="kind"),
        UniqueConstraint("budget_line_id", "case_id", "kind", "attempt", name="uq_budget_entry_case_kind"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    budget_line_id: Mapped[int] = mapped_column(ForeignKey("budget_line.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class BudgetIndicator(Base):
    """A budget indicator line (指标): one funding source of a fund item, its document number and share (市区分担), and
    what payments drew from it; `total_fen - drawn_fen` is its balance. Payments draw their parts (rules/indicators)
    when their budget is committed and a same-year return gives them back (indicator_entry holds each move)."""

    __tablename__ = "budget_indicator"
    __table_args__ = (
        UniqueConstraint("fund_item_id", "source", name="uq_budget_indicator_item_source"),
        CheckConstraint("drawn_fen >= 0", name="drawn_non_negative"),
        CheckConstraint("share_bp >= 0 AND share_bp <= 10000", name="share_range"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    fund_item_id: Mapped[int] = mapped_column(ForeignKey("fund_item.id"), index=True)
    source: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)  # order in the configuration: the rounding rule's tie-break
    indicator_no: Mapped[str | None] = mapped_column(String(64))
    budget_year: Mapped[int] = mapped_column(Integer)
    share_bp: Mapped[int] = mapped_column(Integer)  # 0 once the source left the configuration
    total_fen: Mapped[int] = mapped_column(BigInteger)
    drawn_fen: Mapped[int] = mapped_column(BigInteger, default=0)


class IndicatorEntry(Base):
    """One move of an indicator: a payment's part drawn (commit) or given back by a same-year return (restore)."""

    __tablename__ = "indicator_entry"
    __table_args__ = (
        CheckConstraint(one_of("kind", BudgetEntryKind), name="kind"),
        UniqueConstraint("indicator_id", "case_id", "kind", "attempt", name="uq_indicator_entry_case_kind"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    indicator_id: Mapped[int] = mapped_column(ForeignKey("budget_indicator.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class PaymentInstruction(Base):
    """A payment instruction (支付凭证) to the treasury; VoucherNo is deterministic and unique."""

    __tablename__ = "payment_instruction"
    __table_args__ = (
        UniqueConstraint("case_id", "attempt", name="uq_payment_instruction_case_attempt"),
        Index("ix_payment_instruction_status", "status"),
        CheckConstraint(one_of("status", PaymentStatus), name="status"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    voucher_no: Mapped[str] = mapped_column(String(40), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    adm_div_code: Mapped[str] = mapped_column(String(12))
    st_year: Mapped[int] = mapped_column(Integer)
    pay_acct_no: Mapped[str] = mapped_column(String(40))
    payee_acct_no_enc: Mapped[str] = mapped_column(Text)
    payee_acct_no_masked: Mapped[str] = mapped_column(String(40))
    payee_acct_name: Mapped[str] = mapped_column(String(200))
    payee_acct_bank_name: Mapped[str] = mapped_column(String(200))
    payee_acct_bank_no: Mapped[str] = mapped_column(String(16))
    pay_amt_fen: Mapped[int] = mapped_column(BigInteger)
    pay_summary_code: Mapped[str] = mapped_column(String(16))
    fund_source: Mapped[str] = mapped_column(String(64))
    # created | accepted | paid | failed | returned
    status: Mapped[str] = mapped_column(String(16), default=PaymentStatus.CREATED)
    paid_amt_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    fail_reason: Mapped[str | None] = mapped_column(Text)
    treasury_ref: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    accepted_at: Mapped[datetime | None] = mapped_column(_now())
    settled_at: Mapped[datetime | None] = mapped_column(_now())
    # Returns (issue 5): the money came back after `paid` — passive (退票, the bank) or active (the payee).
    returned_at: Mapped[datetime | None] = mapped_column(_now())
    return_kind: Mapped[str | None] = mapped_column(String(16))  # passive | active
    return_reason: Mapped[str | None] = mapped_column(Text)
    returned_amt_fen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Notice(Base):
    """An SMS notice in the outbox; `dedupe_key` gives one notice per case stage."""

    __tablename__ = "notice"
    __table_args__ = (
        Index("ix_notice_status_next_attempt", "status", "next_attempt_at"),
        Index("ix_notice_phone_hash_sent", "phone_hash", "sent_at"),
        # Issue 6: the dispatcher's queue in id order, without walking the notices already settled.
        Index(
            "ix_notice_pending_id",
            "id",
            postgresql_where=text("status IN ('queued', 'sending')"),
            sqlite_where=text("status IN ('queued', 'sending')"),
        ),
        CheckConstraint(one_of("status", NoticeStatus), name="status"),
        CheckConstraint(one_of("category", NoticeCategory), name="category"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), index=True)
    template_key: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict] = mapped_column(JSONType)
    content: Mapped[str] = mapped_column(Text)
    phone_enc: Mapped[str | None] = mapped_column(Text)
    phone_masked: Mapped[str | None] = mapped_column(String(16))
    # queued | sending | sent | delivered | failed
    status: Mapped[str] = mapped_column(String(16), default=NoticeStatus.QUEUED)
    provider: Mapped[str] = mapped_column(String(16), default="outbox")
    provider_msg_id: Mapped[str | None] = mapped_column(String(64))
    fail_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(_now())
    # Dispatcher (issue 6): tries so far, when the next try (or the end of a sending lease) is due,
    # a keyed hash of the E.164 number for per-phone rate limits, the fund item for statistics.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(_now())
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    fund_item_id: Mapped[int | None] = mapped_column(ForeignKey("fund_item.id"), index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(_now())
    receipt_code: Mapped[str | None] = mapped_column(String(64))
    # Issue 6: case notice or marketing-type policy push (statistics split them); receipt polls so far
    # (a `sent` notice's next_attempt_at is when its receipt is polled next).
    category: Mapped[str] = mapped_column(
        String(8), default=NoticeCategory.CASE, server_default=NoticeCategory.CASE.value
    )
    receipt_polls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class CalendarDay(Base):
    """A day whose working status differs from the weekend rule: holiday (休) or make-up workday (班)."""

    __tablename__ = "calendar_day"
    # Columns
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(40), default="")


class CalendarYear(Base):
    """A year whose holiday data is loaded; deadlines in other years are provisional (weekends only)."""

    __tablename__ = "calendar_year"
    # Columns
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    loaded_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


# --- Review workflows (issue 4): department tasks, objections ------------------------------------------------


class CaseTask(Base):
    """A department's work item on a case stage (待办): one per case, stage, round and department."""

    __tablename__ = "case_task"
    __table_args__ = (
        UniqueConstraint("case_id", "stage_key", "round", "department_code", name="uq_case_task_stage_department"),
        Index("ix_case_task_department_status", "department_code", "status"),
        CheckConstraint(one_of("status", TaskStatus), name="status"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    stage_key: Mapped[str] = mapped_column(String(32))
    stage_name: Mapped[str] = mapped_column(String(40))
    round: Mapped[int] = mapped_column(Integer, default=1)
    department_code: Mapped[str] = mapped_column(String(32))
    # open | done | closed (stage ended without this department) | timed_out
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.OPEN)
    due_at: Mapped[datetime | None] = mapped_column(_now())
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    # What the deadline was counted from, so a provisional one can be recomputed once the year is imported.
    start_day: Mapped[date | None] = mapped_column(Date)
    working_days: Mapped[int | None] = mapped_column(Integer)
    remind_days: Mapped[int | None] = mapped_column(Integer)
    reminded_at: Mapped[datetime | None] = mapped_column(_now())
    decision: Mapped[str | None] = mapped_column(String(16))  # approve | reject | return | uphold | dismiss
    actor: Mapped[str | None] = mapped_column(String(80))
    comment: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(_now())
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class CaseObjection(Base):
    """A real-name objection (实名异议) filed during publicity; name, ID number and phone are encrypted at rest."""

    __tablename__ = "case_objection"
    __table_args__ = (CheckConstraint(one_of("status", ObjectionStatus), name="status"),)
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    objector_name: Mapped[str] = mapped_column(String(60))  # masked (张*), as pages show it
    objector_name_enc: Mapped[str | None] = mapped_column(Text)  # the full name, encrypted
    id_number_enc: Mapped[str] = mapped_column(Text)
    id_number_masked: Mapped[str] = mapped_column(String(24))
    phone_enc: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ObjectionStatus.OPEN)
    ruling_department: Mapped[str | None] = mapped_column(String(32))
    ruling_actor: Mapped[str | None] = mapped_column(String(80))
    ruling_comment: Mapped[str | None] = mapped_column(Text)
    ruled_at: Mapped[datetime | None] = mapped_column(_now())
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class PaymentReturn(Base):
    """A payment that came back (退票): passive (bank) or active (payee), and how the budget was handled."""

    __tablename__ = "payment_return"
    __table_args__ = (
        UniqueConstraint("voucher_no", "kind", name="uq_payment_return_voucher_kind"),
        CheckConstraint(one_of("kind", ReturnKind), name="kind"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    voucher_no: Mapped[str] = mapped_column(String(40), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    returned_on: Mapped[date] = mapped_column(Date)
    budget_year: Mapped[int] = mapped_column(Integer)
    cross_year: Mapped[bool] = mapped_column(Boolean, default=False)
    # restored (same year, quota back) | released (never committed) | back_to_finance (cross year) | recorded
    handling: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


# --- Treasury (issue 5): returns, reconciliation, alerts -----------------------------------------------------


class ReconRun(Base):
    """One reconciliation (对账) of a treasury daily statement against our instructions."""

    __tablename__ = "recon_run"
    __table_args__ = (CheckConstraint(one_of("status", ReconRunStatus), name="status"),)
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    # Idempotency key of the run (the workflow run id, or "manual:…"): an activity retry finds its run.
    run_key: Mapped[str] = mapped_column(String(120), unique=True)
    statement_date: Mapped[date] = mapped_column(Date, index=True)
    trigger: Mapped[str] = mapped_column(String(16), default="schedule")  # schedule | manual
    status: Mapped[str] = mapped_column(String(16), default=ReconRunStatus.RUNNING)
    statement_lines: Mapped[int] = mapped_column(Integer, default=0)
    matched: Mapped[int] = mapped_column(Integer, default=0)
    missing_ours: Mapped[int] = mapped_column(Integer, default=0)
    missing_theirs: Mapped[int] = mapped_column(Integer, default=0)
    amount_mismatch: Mapped[int] = mapped_column(Integer, default=0)
    status_mismatch: Mapped[int] = mapped_column(Integer, default=0)
    their_paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    their_returned_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    our_paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    our_returned_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(_now())


class ReconLine(Base):
    """One matched or mismatched line of a reconciliation run."""

    __tablename__ = "recon_line"
    __table_args__ = (
        CheckConstraint(one_of("outcome", ReconOutcome), name="outcome"),
        UniqueConstraint("run_id", "voucher_no", "line_type", name="uq_recon_line_run_voucher_type"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("recon_run.id"), index=True)
    voucher_no: Mapped[str] = mapped_column(String(40), index=True)
    line_type: Mapped[str] = mapped_column(String(16))  # settle | return
    outcome: Mapped[str] = mapped_column(String(20))
    our_status: Mapped[str | None] = mapped_column(String(16))
    their_status: Mapped[str | None] = mapped_column(String(16))
    our_amt_fen: Mapped[int | None] = mapped_column(BigInteger)
    their_amt_fen: Mapped[int | None] = mapped_column(BigInteger)
    treasury_ref: Mapped[str | None] = mapped_column(String(64))
    settled_at: Mapped[datetime | None] = mapped_column(_now())
    note: Mapped[str] = mapped_column(Text, default="")


class Alert(Base):
    """Something finance must look at (e.g. a reconciliation mismatch); one per kind and reference."""

    __tablename__ = "alert"
    __table_args__ = (
        CheckConstraint(one_of("status", AlertStatus), name="status"),
        UniqueConstraint("kind", "ref", name="uq_alert_kind_ref"),
        Index("ix_alert_status_created", "status", "created_at"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    ref: Mapped[str] = mapped_column(String(120))
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=AlertStatus.OPEN)
    recon_run_id: Mapped[int | None] = mapped_column(ForeignKey("recon_run.id"))
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(_now())
    closed_by: Mapped[str | None] = mapped_column(String(80))
    close_note: Mapped[str | None] = mapped_column(Text)


# --- Policy pushes (issue 6) ---------------------------------------------------------------------------------


class PolicyPush(Base):
    """One policy push of the Yichang rules art. 26 (after registration, after listing, at payout): what matched,
    what was queued and why the rest was not; `key` makes each push happen once."""

    __tablename__ = "policy_push"
    __table_args__ = (CheckConstraint(one_of("kind", PushKind), name="kind"),)
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)  # registered:{ent} | listed:{item} | paid:{case}
    kind: Mapped[str] = mapped_column(String(16))
    fund_item_id: Mapped[int | None] = mapped_column(ForeignKey("fund_item.id"), index=True)
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprise.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), index=True)
    matched: Mapped[int] = mapped_column(Integer, default=0)
    queued: Mapped[int] = mapped_column(Integer, default=0)
    opted_out: Mapped[int] = mapped_column(Integer, default=0)
    no_phone: Mapped[int] = mapped_column(Integer, default=0)
    actor: Mapped[str] = mapped_column(String(80), default="system")
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


# --- No-application campaigns (issue 7) ----------------------------------------------------------------------


class Campaign(Base):
    """A no-application campaign (免申即享批量兑付): one listed version of a fund item, or one re-evaluation."""

    __tablename__ = "campaign"
    __table_args__ = (CheckConstraint(one_of("kind", CampaignKind), name="kind"),)
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(160), unique=True)
    fund_item_id: Mapped[int] = mapped_column(ForeignKey("fund_item.id"), index=True)
    fund_item_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), default=CampaignKind.LISTING)
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprise.id"))  # a re-evaluation's enterprise
    # pending (workflow not started yet) | matching | reserving | consent | paying | done
    phase: Mapped[str] = mapped_column(String(16), default="pending")
    # budget plan, fixed before matching: 1/1 (enough), available/total (pro rata, 按比例核减), 0/0 (stated order)
    ratio_num: Mapped[int | None] = mapped_column(BigInteger)
    ratio_den: Mapped[int | None] = mapped_column(BigInteger)
    consent_deadline: Mapped[date | None] = mapped_column(Date)
    consent_due_at: Mapped[datetime | None] = mapped_column(_now())
    actor: Mapped[str] = mapped_column(String(80), default="system")
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(_now())
    finished_at: Mapped[datetime | None] = mapped_column(_now())


class CampaignTranche(Base):
    """One wave of a campaign paid together: its publicity period and the one finance decision on its totals."""

    __tablename__ = "campaign_tranche"
    __table_args__ = (
        UniqueConstraint("campaign_id", "number", name="uq_campaign_tranche_number"),
        CheckConstraint(one_of("finance_status", FinanceStatus), name="finance_status"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    number: Mapped[int] = mapped_column(Integer)
    cases: Mapped[int] = mapped_column(Integer, default=0)
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    publicity_until: Mapped[date | None] = mapped_column(Date)
    publicity_due_at: Mapped[datetime | None] = mapped_column(_now())
    finance_status: Mapped[str] = mapped_column(String(16), default=FinanceStatus.PENDING)
    finance_actor: Mapped[str | None] = mapped_column(String(80))
    finance_note: Mapped[str | None] = mapped_column(Text)
    finance_at: Mapped[datetime | None] = mapped_column(_now())
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


# Campaign batches select a campaign's cases by status.
Index("ix_case_campaign_status", Case.campaign_id, Case.status)


# --- Archive changes and deferred listing pushes ------------------------------------------------------------------


class ArchiveChange(Base):
    """One change of an enterprise's archive data: who made it, from where, and each field's old and new value."""

    __tablename__ = "archive_change"
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"), index=True)
    actor: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(32))  # manual (an administrator's edit) | data_sharing (the import)
    changes: Mapped[dict] = mapped_column(JSON)  # {field: {"from": old, "to": new}}
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class ListingPushDue(Base):
    """A listing push (上架后推送) that is due: listing records it, the SMS dispatcher round expands it to every matched
    enterprise in its own transaction, so the listing request never waits for the bulk insert."""

    __tablename__ = "listing_push_due"
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    fund_item_id: Mapped[int] = mapped_column(ForeignKey("fund_item.id"), index=True)
    actor: Mapped[str] = mapped_column(String(80), default="system")
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    done_at: Mapped[datetime | None] = mapped_column(_now(), index=True)


# --- Replies from phones (上行短信) -----------------------------------------------------------------------------------


class SmsReply(Base):
    """A reply from a phone, kept as the record of an opt-out: when (the carrier's time and ours), how (provider and
    the words written). Pushes are not sent to a number with an opt-out reply; case notices always are."""

    __tablename__ = "sms_reply"
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    phone_masked: Mapped[str] = mapped_column(String(20))
    content: Mapped[str] = mapped_column(String(500))
    opt_out_word: Mapped[str | None] = mapped_column(String(8))  # R | TD | 退订, None for any other reply
    sign_name: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[datetime | None] = mapped_column(_now())
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


# --- Archive sources, imports and value history -------------------------------------------------------------------


class ArchiveImport(Base):
    """One import of a data source's file: kept whether it succeeded or not, so its error report can be downloaded;
    a failed import changed nothing. A file already imported (same source and content hash) is not imported again."""

    __tablename__ = "archive_import"
    __table_args__ = (
        CheckConstraint(one_of("source", ArchiveSource), name="source"),
        CheckConstraint(one_of("status", ImportStatus), name="status"),
        Index("ix_archive_import_source_hash", "source", "content_hash"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    file_name: Mapped[str] = mapped_column(String(200))
    file_format: Mapped[str] = mapped_column(String(8))
    content_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the file's bytes
    source_date: Mapped[date] = mapped_column(Date)  # the day the source's values hold from (unless a row says)
    status: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    changed_enterprises: Mapped[int] = mapped_column(Integer, default=0)
    changed_values: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list] = mapped_column(JSON, default=list)  # [{row, column, value, message}]
    reevaluations: Mapped[int] = mapped_column(Integer, default=0)
    alerts: Mapped[int] = mapped_column(Integer, default=0)
    actor: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class ArchiveValue(Base):
    """One value an archive field took: from which source, holding from which day (source date), learned when
    (recorded_at) and through which import or manual change. The rows of a field, in recorded order, answer
    \"what did we know about this enterprise on day D\"."""

    __tablename__ = "archive_value"
    __table_args__ = (
        CheckConstraint(one_of("source", ArchiveSource), name="source"),
        Index("ix_archive_value_enterprise_field", "enterprise_id", "field", "recorded_at"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"))
    field: Mapped[str] = mapped_column(String(32))
    value: Mapped[object] = mapped_column(JSON, nullable=True)
    source: Mapped[str] = mapped_column(String(16))
    source_date: Mapped[date] = mapped_column(Date)
    # Not indexed: nothing looks values up by import, and every import writes hundreds of thousands of them (#18).
    import_id: Mapped[int | None] = mapped_column(ForeignKey("archive_import.id"))
    archive_change_id: Mapped[int | None] = mapped_column(ForeignKey("archive_change.id"))
    recorded_at: Mapped[datetime] = mapped_column(_now())


class TagRule(Base):
    """A tag (Yichang rules art. 27) that a department defines as a condition over archive fields; every enterprise
    meeting it carries the tag in `enterprise.rule_tags`, a condition field like any other."""

    __tablename__ = "tag_rule"
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    condition: Mapped[dict] = mapped_column(JSON)
    department_code: Mapped[str | None] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    # A rule's enterprises meet `condition`; a list's are its `members` (USCCs imported from a file).
    kind: Mapped[str] = mapped_column(String(8), default=TagRuleKind.RULE, server_default=TagRuleKind.RULE.value)
    members: Mapped[list | None] = mapped_column(JSON)
    __table_args__ = (CheckConstraint(one_of("kind", TagRuleKind), name="kind"),)


class ArchivePull(Base):
    """One pull of a source's dataset from the data-sharing platform (政务数据共享交换平台): after which watermark,
    how many pages and records, the import that stored them, or why nothing was stored. The watermark of the last
    successful pull is where the next one starts."""

    __tablename__ = "archive_pull"
    __table_args__ = (
        CheckConstraint(one_of("source", ArchiveSource), name="source"),
        CheckConstraint(one_of("status", PullStatus), name="status"),
        CheckConstraint(one_of("failure", PullFailure, nullable=True), name="failure"),
        Index("ix_archive_pull_source_status", "source", "status", "id"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    dataset: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    failure: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[str] = mapped_column(String(40), default="")  # watermark the pull started after
    watermark: Mapped[str] = mapped_column(String(40), default="")  # where the next pull starts (success only)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    records: Mapped[int] = mapped_column(Integer, default=0)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("archive_import.id"))
    trigger: Mapped[str] = mapped_column(String(16), default="manual")
    actor: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


# --- Finance cockpit: payouts made outside Zhida (奖补汇聚) ---------------------------------------------------------


class ExternalPayout(Base):
    """A subsidy paid outside Zhida (another system, a paper process), imported to stand beside Zhida's own payouts and
    to count in the duplicate-benefit check; `row_key` (a hash of the row's facts) keeps a re-import from doubling it."""

    __tablename__ = "external_payout"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="positive_amount"),
        Index("ix_external_payout_uscc_purpose", "uscc", "purpose"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    row_key: Mapped[str] = mapped_column(String(64), unique=True)
    uscc: Mapped[str] = mapped_column(String(18))
    enterprise_name: Mapped[str] = mapped_column(String(200))
    item_name: Mapped[str] = mapped_column(String(300))
    purpose: Mapped[str] = mapped_column(String(100))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    paid_on: Mapped[date] = mapped_column(Date)
    department_name: Mapped[str] = mapped_column(String(128))
    region_code: Mapped[str] = mapped_column(String(12))  # the region of the finance bureau that imported it
    source_document: Mapped[str] = mapped_column(String(200))  # 拨付文件或凭证号
    batch: Mapped[str] = mapped_column(String(64), index=True)
    imported_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


# --- Trust: revoked tokens and the audit chain's anchors --------------------------------------------------------


class RevokedToken(Base):
    """A token signed out before its expiry (logout, or an administrator's revocation): refused until it expires."""

    __tablename__ = "revoked_token"
    # Columns
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(_now(), index=True)
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class CaseChainHead(Base):
    """The anchor of a case's event chain, kept apart from the events: the last sequence number and hash, and a MAC
    over both. Deleting the last event (or any) leaves the head pointing past the chain; rewriting the head needs
    the audit key, which the database never holds."""

    __tablename__ = "case_chain_head"
    # Columns
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))


# --- Enterprise portal: application materials -------------------------------------------------------------------


class CaseMaterial(Base):
    """One file an enterprise uploaded to its case (with the application, or answering a 补正): its bytes live in the
    material store (gateways/storage.py) under `storage_key`; the type was told from the content, and the SHA-256
    lets anyone check the file they open is the one that was submitted."""

    __tablename__ = "case_material"
    __table_args__ = (
        CheckConstraint(one_of("content_type", MaterialType), name="content_type"),
        CheckConstraint(one_of("purpose", MaterialPurpose), name="purpose"),
        CheckConstraint("size_bytes > 0", name="positive_size"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    file_name: Mapped[str] = mapped_column(String(120))
    content_type: Mapped[str] = mapped_column(String(8))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200))
    uploaded_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class AuditRecord(Base):
    """One record of the audit chain beyond case events (configuration, archive edits, decisions, sign-ins and
    sign-outs, exports): append-only (the database refuses updates, and deletes of records younger than the
    retention), each hashed with a keyed HMAC over the previous record's hash, anchored in `audit_head`."""

    __tablename__ = "audit_record"
    __table_args__ = (CheckConstraint(one_of("kind", AuditKind), name="kind"),)
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(200), index=True)
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(_now(), index=True)
    # hmac-sha256 or hmac-sm3 (ZHIDA_CRYPTO=gm); each record names its own, so switching keeps old records valid.
    alg: Mapped[str] = mapped_column(String(16))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The anchor of a chain of audit records (one row per chain): the last seq and hash with a MAC over both."""

    __tablename__ = "audit_head"
    # Columns
    chain: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))


class AuditOnce(Base):
    """The keys of audit records written at most once (a token's first use `token:<jti>`, a campaign's collect-now
    request `collect:<id>`): inserted if absent in the record's own transaction, so concurrent requests and retried
    activities write the record once. A key with an expiry (a token's) is swept after it: the token is refused by
    then, so its first use cannot come again."""

    __tablename__ = "audit_once"
    # Columns
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    expires_at: Mapped[datetime | None] = mapped_column(_now(), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class SignInThrottle(Base):
    """Refused sign-ins per client address and minute (`window`: minutes since the epoch): the first
    `sign_in_refused_per_minute` are audit records, the rest are only counted here (`suppressed`) and written as one
    summary record once the minute is over. Shared by every API process (the database holds it)."""

    __tablename__ = "sign_in_throttle"
    # Columns
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    suppressed: Mapped[int] = mapped_column(Integer, default=0)


# --- Finance cockpit: summaries kept by database triggers in the writing transaction (#14) ------------------------
# The triggers are in migrations/versions/2026-12-01-1103_cockpit_summaries.py; db/repositories/cockpit_summaries.py
# reads these tables and rebuilds them. `source` is '' for a case without a reservation (no funding source yet).


class CockpitCaseSummary(Base):
    """Cases, approved and paid fen per fund item, enterprise region, case status and funding source."""

    __tablename__ = "cockpit_case_summary"
    __table_args__ = (
        UniqueConstraint("fund_item_id", "region_code", "status", "source", name="uq_cockpit_case_summary_key"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    fund_item_id: Mapped[int] = mapped_column(Integer)
    region_code: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(24))
    source: Mapped[str] = mapped_column(String(64))
    cases: Mapped[int] = mapped_column(BigInteger)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    paid_fen: Mapped[int] = mapped_column(BigInteger)


class CockpitPaidMonth(Base):
    """Payments settled as paid and their fen per fund item, region, funding source and local (Beijing) month."""

    __tablename__ = "cockpit_paid_month"
    __table_args__ = (
        UniqueConstraint("fund_item_id", "region_code", "source", "month", name="uq_cockpit_paid_month_key"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    fund_item_id: Mapped[int] = mapped_column(Integer)
    region_code: Mapped[str] = mapped_column(String(12))
    source: Mapped[str] = mapped_column(String(64))
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM, '' when the payment has no settlement moment
    payments: Mapped[int] = mapped_column(BigInteger)
    paid_fen: Mapped[int] = mapped_column(BigInteger)


class CockpitPaidDays(Base):
    """Paid cases per fund item, region, funding source and working days from application (or match) to paid."""

    __tablename__ = "cockpit_paid_days"
    __table_args__ = (
        UniqueConstraint("fund_item_id", "region_code", "source", "days", name="uq_cockpit_paid_days_key"),
    )
    # Columns
    id: Mapped[int] = mapped_column(primary_key=True)
    fund_item_id: Mapped[int] = mapped_column(Integer)
    region_code: Mapped[str] = mapped_column(String(12))
    source: Mapped[str] = mapped_column(String(64))
    days: Mapped[int] = mapped_column(Integer)
    cases: Mapped[int] = mapped_column(BigInteger)


class CockpitSummaryState(Base):
    """Whether a summary can be read: `stale` once the working-day calendar changed under the paid-days histogram
    (the next read rebuilds it), and the local offset (hours) the triggers cut days and months with."""

    __tablename__ = "cockpit_summary_state"
    # Columns
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    stale: Mapped[bool] = mapped_column(Boolean)
    offset_hours: Mapped[int] = mapped_column(Integer)


# PostgreSQL folds each transaction's shares of the summaries at commit, from these insert-only tables (migration
# 2026-12-01-1201_cockpit_speed.py): summary row locks are then held only from the fold to the commit, taken in key
# order. SQLite (one writer at a time) adds to the summaries in its triggers and leaves these tables empty.
def _delta_table(name: str, *keys: Column, sums: tuple[str, ...]) -> Table:
    return Table(
        f"{name}_delta",
        Base.metadata,
        Column("txid", BigInteger, nullable=False),
        *keys,
        *(Column(s, BigInteger, nullable=False) for s in sums),
        Index(f"ix_{name}_delta_txid", "txid"),
    )


cockpit_case_summary_delta = _delta_table(
    "cockpit_case_summary",
    Column("fund_item_id", Integer, nullable=False),
    Column("region_code", String(12), nullable=False),
    Column("status", String(24), nullable=False),
    Column("source", String(64), nullable=False),
    sums=("cases", "amount_fen", "paid_fen"),
)
cockpit_paid_days_delta = _delta_table(
    "cockpit_paid_days",
    Column("fund_item_id", Integer, nullable=False),
    Column("region_code", String(12), nullable=False),
    Column("source", String(64), nullable=False),
    Column("days", Integer, nullable=False),
    sums=("cases",),
)
cockpit_paid_month_delta = _delta_table(
    "cockpit_paid_month",
    Column("fund_item_id", Integer, nullable=False),
    Column("region_code", String(12), nullable=False),
    Column("source", String(64), nullable=False),
    Column("month", String(7), nullable=False),
    sums=("payments", "paid_fen"),
)
cockpit_delta_mark = Table("cockpit_delta_mark", Base.metadata, Column("txid", BigInteger, primary_key=True))

# The cockpit's figures still counted from the cases: the newest cases of one status (returns waiting for correction),
# and the stages past their deadline (open by due moment, or timed out).
Index("ix_case_status_id", Case.status, Case.id)
Index("ix_case_task_status_due", CaseTask.status, CaseTask.due_at, CaseTask.case_id, CaseTask.department_code)
