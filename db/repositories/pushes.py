"""SQL of the three policy pushes (Yichang rules art. 26): which listed fund items an enterprise matches, the bulk
push to every enterprise a listed item matches (one INSERT … SELECT), paid cases still owed their push, and the
push ledger (`policy_push`) that records what each push matched, queued and left out (opt-out, no phone).

Pushes are marketing-type notices (category `push`): enterprises that opted out and enterprises without a mobile
number are left out here; the dispatcher checks the opt-out again before sending.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from db.models import Case, Enterprise, FundItem, FundItemVersion, ListingPushDue, Notice, PolicyPush
from db.repositories.notices import insert_ignoring_duplicates
from db.sql.conditions import compile_where
from schemas.conditions import parse_condition
from schemas.vocabulary import CaseStatus, FundItemStatus, NoticeCategory, NoticeStatus, PushKind

OPTED_OUT_REASON = "企业已退订政策推送"
SQLITE_COMPOUND_LIMIT = 400  # SQLite allows 500 SELECTs in one UNION ALL


@dataclass(frozen=True)
class ListedItem:
    """A listed fund item with the conditions and window of its listed version."""

    id: int
    code: str
    name: str
    mode: str
    version: int
    conditions: Mapping[str, Any]
    window_end: date | None


@dataclass
class PushCounts:
    matched: int = 0
    queued: int = 0
    opted_out: int = 0
    no_phone: int = 0


def listed_items(*, session: Session, fund_item_id: int | None = None) -> list[ListedItem]:
    """Listed fund items (or one of them) with their listed configuration, in id order."""
    stmt = (
        select(FundItem.id, FundItem.code, FundItem.name, FundItem.mode, FundItem.listed_version, FundItemVersion.config)
        .join(
            FundItemVersion,
            and_(FundItemVersion.fund_item_id == FundItem.id, FundItemVersion.version == FundItem.listed_version),
        )
        .where(FundItem.status == FundItemStatus.LISTED)
        .order_by(FundItem.id)
    )
    if fund_item_id is not None:
        stmt = stmt.where(FundItem.id == fund_item_id)
    out = []
    for row in session.execute(stmt):
        config = row.config or {}
        window = config.get("window") or {}
        end = date.fromisoformat(window["end"]) if window.get("end") else None
        out.append(ListedItem(row.id, row.code, row.name, row.mode, row.listed_version, config["conditions"], end))
    return out


def _where(item: ListedItem) -> ColumnElement[bool]:
    return compile_where(parse_condition(item.conditions))


def matching_items(
    *, session: Session, enterprise_ids: Sequence[int], items: Sequence[ListedItem], exclude_cased: bool = True
) -> dict[int, list[int]]:
    """For each enterprise, the ids of the given items whose compiled conditions it meets (in the items' order);
    with `exclude_cased`, items it already has a case for are left out. One UNION ALL per few hundred items."""
    if not enterprise_ids or not items:
        return {}
    batch = select(Enterprise.id).where(Enterprise.id.in_(list(enterprise_ids))).cte("batch")
    found: dict[int, set[int]] = {}
    for start in range(0, len(items), SQLITE_COMPOUND_LIMIT):
        selects = []
        for item in items[start : start + SQLITE_COMPOUND_LIMIT]:
            q = (
                select(Enterprise.id.label("enterprise_id"), literal(item.id, Integer).label("fund_item_id"))
                .join(batch, batch.c.id == Enterprise.id)
                .where(_where(item))
            )
            if exclude_cased:
                q = q.where(~exists().where(Case.fund_item_id == item.id, Case.enterprise_id == Enterprise.id))
            selects.append(q)
        for enterprise_id, fund_item_id in session.execute(union_all(*selects)):
            found.setdefault(enterprise_id, set()).add(fund_item_id)
    order = {item.id: i for i, item in enumerate(items)}
    return {e: sorted(ids, key=order.__getitem__) for e, ids in found.items()}


def _text(value: object) -> ColumnElement[str]:
    return cast(literal(str(value)), String)


def _json_object(session: Session, pairs: Sequence[tuple[str, ColumnElement[Any]]]) -> ColumnElement[Any]:
    """A JSON object built by the database (json_object on SQLite, jsonb_build_object on PostgreSQL)."""
    fn = func.jsonb_build_object if session.get_bind().dialect.name == "postgresql" else func.json_object
    args: list[ColumnElement[Any]] = []
    for key, value in pairs:
        args += [_text(key), value]
    return fn(*args)


def count_matched(*, session: Session, item: ListedItem) -> PushCounts:
    """How many enterprises the item matches, and how many of them refused pushes or have no mobile number."""
    row = session.execute(
        select(
            func.count(),
            func.sum(case((Enterprise.push_opt_out.is_(True), 1), else_=0)),
            func.sum(case((Enterprise.contact_phone_enc.is_(None), 1), else_=0)),
        ).where(_where(item))
    ).one()
    return PushCounts(matched=int(row[0] or 0), opted_out=int(row[1] or 0), no_phone=int(row[2] or 0))


def queue_for_matched(
    *,
    session: Session,
    item: ListedItem,
    template_key: str,
    params: Mapping[str, str],
    text_around_name: tuple[str, str],
    dedupe_prefix: str,
) -> int:
    """One INSERT … SELECT: a push to every enterprise the item matches (not opted out, with a phone), the
    enterprise's name in the text and the parameters; existing dedupe keys are skipped. Returns rows queued."""
    before, after = text_around_name
    params_json = _json_object(session, [("enterprise", Enterprise.name), *((k, _text(v)) for k, v in params.items())])
    columns = {
        "dedupe_key": _text(dedupe_prefix) + cast(Enterprise.id, String),
        "enterprise_id": Enterprise.id,
        "template_key": _text(template_key),
        "params": params_json,
        "content": _text(before) + Enterprise.name + _text(after),
        "phone_enc": Enterprise.contact_phone_enc,
        "phone_masked": Enterprise.contact_phone_masked,
        "status": _text(NoticeStatus.QUEUED),
        "provider": _text("outbox"),
        "fund_item_id": literal(item.id, Integer),
        "category": _text(NoticeCategory.PUSH),
        "attempts": literal(0, Integer),
        "receipt_polls": literal(0, Integer),
    }
    source = select(*columns.values()).where(
        _where(item), Enterprise.push_opt_out.is_(False), Enterprise.contact_phone_enc.is_not(None)
    )
    insert = insert_ignoring_duplicates(session, Notice.__table__)
    statement = insert.from_select(list(columns), source)
    result = session.execute(statement, execution_options={"preserve_rowcount": True})  # else -1 on psycopg
    return max(0, int(result.rowcount or 0))


def record(*, session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Ledger rows (key, kind, fund_item_id, enterprise_id, case_id, matched, queued, opted_out, no_phone, actor);
    a key already recorded is left as it is."""
    if not rows:
        return
    defaults = {"fund_item_id": None, "enterprise_id": None, "case_id": None, "matched": 0, "queued": 0,
                "opted_out": 0, "no_phone": 0, "actor": "system"}  # fmt: skip
    session.execute(insert_ignoring_duplicates(session, PolicyPush.__table__), [defaults | r for r in rows])


def recorded(*, session: Session, key: str) -> PolicyPush | None:
    return session.scalar(select(PolicyPush).where(PolicyPush.key == key))


@dataclass(frozen=True)
class PaidCase:
    case_id: int
    enterprise_id: int
    fund_item_id: int
    paid_fen: int
    item_name: str
    enterprise_name: str
    phone_enc: str | None
    phone_masked: str | None
    opted_out: bool


def paid_cases_due(*, session: Session, paid_before: datetime, limit: int) -> list[PaidCase]:
    """Paid cases (closed at or before `paid_before`) that have no payout push on the ledger yet, oldest first."""
    stmt = (
        select(
            Case.id,
            Case.enterprise_id,
            Case.fund_item_id,
            func.coalesce(func.nullif(Case.paid_fen, 0), Case.amount_fen, 0),
            FundItem.name,
            Enterprise.name,
            Enterprise.contact_phone_enc,
            Enterprise.contact_phone_masked,
            Enterprise.push_opt_out,
        )
        .join(FundItem, FundItem.id == Case.fund_item_id)
        .join(Enterprise, Enterprise.id == Case.enterprise_id)
        .where(
            Case.status == CaseStatus.PAID,
            func.coalesce(Case.closed_at, Case.updated_at) <= paid_before,
            ~exists().where(PolicyPush.case_id == Case.id, PolicyPush.kind == PushKind.PAID),
        )
        .order_by(Case.id)
        .limit(limit)
    )
    return [PaidCase(*row) for row in session.execute(stmt)]


def summary(
    *, session: Session, fund_item_id: int | None = None, items: ColumnElement[bool] | None = None
) -> dict[str, dict[str, int]]:
    """Per kind: pushes recorded, enterprises matched, notices queued, left out for opt-out or no phone; `items`
    keeps the pushes of the fund items that satisfy it (the caller's scope)."""
    stmt = select(
        PolicyPush.kind,
        func.count(),
        func.sum(PolicyPush.matched),
        func.sum(PolicyPush.queued),
        func.sum(PolicyPush.opted_out),
        func.sum(PolicyPush.no_phone),
    ).group_by(PolicyPush.kind)
    if fund_item_id is not None:
        stmt = stmt.where(PolicyPush.fund_item_id == fund_item_id)
    if items is not None:
        stmt = stmt.where(PolicyPush.fund_item_id.in_(select(FundItem.id).where(items)))
    return {
        kind: {
            "pushes": int(n),
            "matched": int(m or 0),
            "queued": int(q or 0),
            "opted_out": int(o or 0),
            "no_phone": int(p or 0),
        }
        for kind, n, m, q, o, p in session.execute(stmt)
    }


def set_opt_out(*, session: Session, enterprise: Enterprise, opt_out: bool, now: datetime) -> bool:
    """Record the enterprise's choice; True when it changed."""
    if bool(enterprise.push_opt_out) == opt_out:
        return False
    enterprise.push_opt_out = opt_out
    enterprise.push_opted_out_at = now if opt_out else None
    if opt_out:  # pushes still waiting are withdrawn; case notices are never touched
        session.execute(
            update(Notice)
            .where(Notice.enterprise_id == enterprise.id, Notice.category == NoticeCategory.PUSH, Notice.status == NoticeStatus.QUEUED)
            .values(status=NoticeStatus.CANCELLED, next_attempt_at=None, fail_reason=OPTED_OUT_REASON)
        )
    session.flush()
    return True


def schedule_listing(*, session: Session, fund_item_id: int, actor: str) -> ListingPushDue:
    """Record that the item's listing push is due; one pending row per item is enough."""
    pending = session.scalar(
        select(ListingPushDue).where(ListingPushDue.fund_item_id == fund_item_id, ListingPushDue.done_at.is_(None))
    )
    if pending is not None:
        return pending
    due = ListingPushDue(fund_item_id=fund_item_id, actor=actor)
    session.add(due)
    session.flush()
    return due


def listing_due(*, session: Session, limit: int = 20) -> list[ListingPushDue]:
    """Listing pushes not expanded yet, oldest first; PostgreSQL skips rows another dispatcher holds."""
    stmt = select(ListingPushDue).where(ListingPushDue.done_at.is_(None)).order_by(ListingPushDue.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


def any_listing_due(*, session: Session) -> bool:
    """Whether a listing push waits to be expanded (a cheap read before taking the write lock)."""
    return session.scalar(select(ListingPushDue.id).where(ListingPushDue.done_at.is_(None)).limit(1)) is not None
