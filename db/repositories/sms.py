"""SQL for the SMS dispatcher and receipts: due notices, recent sends per phone, receipts, statistics."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import ColumnElement, and_, bindparam, case, func, or_, select, text, update
from sqlalchemy.orm import Session

from db.models import Case, Enterprise, FundItem, Notice, SmsReply
from schemas.vocabulary import NoticeCategory, NoticeStatus

ACTIVE = (NoticeStatus.SENDING, NoticeStatus.SENT, NoticeStatus.DELIVERED)


def claim_due(*, session: Session, now: datetime, limit: int) -> list[Notice]:
    """Queued notices whose time has come, and sending ones whose lease ran out (a dispatcher died).

    PostgreSQL locks them FOR UPDATE SKIP LOCKED so several dispatchers share the queue; SQLite's
    BEGIN IMMEDIATE already makes the claiming transaction exclusive.
    """
    stmt = (
        select(Notice)
        .where(
            Notice.status.in_((NoticeStatus.QUEUED, NoticeStatus.SENDING)),  # the partial index ix_notice_pending_id
            or_(
                and_(
                    Notice.status == NoticeStatus.QUEUED,
                    or_(Notice.next_attempt_at.is_(None), Notice.next_attempt_at <= now),
                ),
                and_(Notice.status == NoticeStatus.SENDING, Notice.next_attempt_at <= now),
            ),
        )
        .order_by(Notice.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


def extend_leases(*, session: Session, leases: list[tuple[int, int]], until: datetime) -> None:
    """Move the lease of notices still `sending` under the given attempt (id, attempts) to `until`, in one
    executemany; a notice another round or a receipt has moved on is left alone."""
    if not leases:
        return
    stmt = (
        update(Notice)
        .where(
            Notice.id == bindparam("nid"),
            Notice.status == NoticeStatus.SENDING,
            Notice.attempts == bindparam("attempt"),
        )
        .values(next_attempt_at=until)
        .execution_options(synchronize_session=False)
    )
    session.connection().execute(stmt, [{"nid": nid, "attempt": attempt} for nid, attempt in leases])


def receipts_due(*, session: Session, provider: str, now: datetime, limit: int) -> list[Notice]:
    """Sent notices of this provider still without a delivery report whose next receipt poll is due."""
    stmt = (
        select(Notice)
        .where(Notice.status == NoticeStatus.SENT, Notice.provider == provider, Notice.next_attempt_at <= now)
        .order_by(Notice.next_attempt_at, Notice.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


def opted_out(*, session: Session, enterprise_ids: set[int]) -> set[int]:
    """Which of these enterprises refuse marketing-type pushes."""
    if not enterprise_ids:
        return set()
    return set(
        session.scalars(
            select(Enterprise.id).where(Enterprise.id.in_(enterprise_ids), Enterprise.push_opt_out.is_(True))
        )
    )


def mark_delivered(*, session: Session, rows: list[dict], now: datetime, provider: str) -> None:
    """Settle notices delivered at once (the outbox) in one statement: rows of {id, provider_msg_id, phone_hash,
    phone_masked, fund_item_id}. PostgreSQL joins arrays (one round trip); SQLite runs an executemany in-process."""
    if not rows:
        return
    common = {"status": NoticeStatus.DELIVERED, "next_attempt_at": None, "sent_at": now, "delivered_at": now,
              "fail_reason": None, "provider": provider}  # fmt: skip
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                "UPDATE notice SET status = :status, attempts = notice.attempts + 1, next_attempt_at = NULL, "
                "sent_at = :sent_at, delivered_at = :delivered_at, fail_reason = NULL, provider = :provider, "
                "provider_msg_id = v.msg, phone_hash = v.hash, phone_masked = v.masked, fund_item_id = v.fid "
                "FROM unnest(CAST(:ids AS integer[]), CAST(:msgs AS varchar[]), CAST(:hashes AS varchar[]), "
                "CAST(:masks AS varchar[]), CAST(:fids AS integer[])) AS v(id, msg, hash, masked, fid) "
                "WHERE notice.id = v.id"
            ),
            {
                **common,
                "ids": [r["id"] for r in rows],
                "msgs": [r["provider_msg_id"] for r in rows],
                "hashes": [r["phone_hash"] for r in rows],
                "masks": [r["phone_masked"] for r in rows],
                "fids": [r["fund_item_id"] for r in rows],
            },
        )
        return
    # SQLite: the batch as one JSON parameter joined by json_each, one statement (an executemany spent most of
    # its time building per-row parameters in Python).
    table = Notice.__table__
    batch = json.dumps(
        [[r["id"], r["provider_msg_id"], r["phone_hash"], r["phone_masked"], r["fund_item_id"]] for r in rows]
    )
    stmt = text(
        "UPDATE notice SET status = :status, attempts = notice.attempts + 1, next_attempt_at = NULL, "
        "sent_at = :sent_at, delivered_at = :delivered_at, fail_reason = NULL, provider = :provider, "
        "provider_msg_id = v.msg, phone_hash = v.hash, phone_masked = v.masked, fund_item_id = v.fid "
        "FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS msg, "
        "json_extract(value, '$[2]') AS hash, json_extract(value, '$[3]') AS masked, "
        "json_extract(value, '$[4]') AS fid FROM json_each(:batch)) AS v WHERE notice.id = v.id"
    ).bindparams(
        bindparam("sent_at", type_=table.c.sent_at.type), bindparam("delivered_at", type_=table.c.delivered_at.type)
    )
    session.execute(stmt, {**common, "batch": batch})


def get_many(*, session: Session, notice_ids: list[int], lock: bool = False) -> dict[int, Notice]:
    """Notices by id in one query (row locks on PostgreSQL when `lock`)."""
    if not notice_ids:
        return {}
    stmt = select(Notice).where(Notice.id.in_(notice_ids))
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return {n.id: n for n in session.scalars(stmt)}


def recent_sends(*, session: Session, phone_hash: str, template_key: str | None, since: datetime) -> list[datetime]:
    """When this phone was sent to since `since` (for one template, or any when None)."""
    stmt = select(Notice.sent_at).where(
        Notice.phone_hash == phone_hash, Notice.sent_at >= since, Notice.status.in_(ACTIVE)
    )
    if template_key is not None:
        stmt = stmt.where(Notice.template_key == template_key)
    return [_aware(t) for t in session.scalars(stmt) if t is not None]


def get(*, session: Session, notice_id: int, lock: bool = False) -> Notice | None:
    stmt = select(Notice).where(Notice.id == notice_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def by_provider_msg_id(*, session: Session, provider: str, provider_msg_id: str) -> Notice | None:
    return session.scalar(
        select(Notice).where(Notice.provider == provider, Notice.provider_msg_id == provider_msg_id).limit(1)
    )


def stats(
    *,
    session: Session,
    department_id: int | None = None,
    category: str | None = None,
    items: ColumnElement[bool] | None = None,
) -> list[dict]:
    """Per fund item: notices queued, sent, delivered, failed, withdrawn (a notice counts under its own or its
    case's item), split into case notices and policy pushes; `category` keeps one of them."""
    item_id = func.coalesce(Notice.fund_item_id, Case.fund_item_id)
    stmt = (
        select(
            FundItem.id,
            FundItem.code,
            FundItem.name,
            func.count(Notice.id),
            func.sum(case((Notice.status.in_((NoticeStatus.QUEUED, NoticeStatus.SENDING)), 1), else_=0)),
            func.sum(case((Notice.status == NoticeStatus.SENT, 1), else_=0)),
            func.sum(case((Notice.status == NoticeStatus.DELIVERED, 1), else_=0)),
            func.sum(case((Notice.status == NoticeStatus.FAILED, 1), else_=0)),
            func.sum(case((Notice.status == NoticeStatus.CANCELLED, 1), else_=0)),
            func.sum(case((Notice.category == NoticeCategory.PUSH, 1), else_=0)),
        )
        .select_from(Notice)
        .outerjoin(Case, Case.id == Notice.case_id)
        .join(FundItem, FundItem.id == item_id)
        .group_by(FundItem.id, FundItem.code, FundItem.name)
        .order_by(FundItem.id)
    )
    if department_id is not None:
        stmt = stmt.where(FundItem.department_id == department_id)
    if category is not None:
        stmt = stmt.where(Notice.category == category)
    if items is not None:  # the fund items the caller may see
        stmt = stmt.where(items)
    return [
        {
            "fund_item_id": r[0],
            "fund_item_code": r[1],
            "fund_item_name": r[2],
            "total": int(r[3] or 0),
            "pending": int(r[4] or 0),
            "sent": int(r[5] or 0),
            "delivered": int(r[6] or 0),
            "failed": int(r[7] or 0),
            "cancelled": int(r[8] or 0),
            "case_notices": int(r[3] or 0) - int(r[9] or 0),
            "pushes": int(r[9] or 0),
        }
        for r in session.execute(stmt)
    ]


def failures(*, session: Session, fund_item_id: int, limit: int = 500) -> list[Notice]:
    item_id = func.coalesce(Notice.fund_item_id, Case.fund_item_id)
    return list(
        session.scalars(
            select(Notice)
            .outerjoin(Case, Case.id == Notice.case_id)
            .where(item_id == fund_item_id, Notice.status == NoticeStatus.FAILED)
            .order_by(Notice.id.desc())
            .limit(limit)
        )
    )


def _aware(t: datetime) -> datetime:
    from datetime import UTC

    return t if t.tzinfo else t.replace(tzinfo=UTC)


# -- replies (上行短信) ------------------------------------------------------------------------------------------


def record_reply(
    *,
    session: Session,
    provider: str,
    phone_hash: str,
    phone_masked: str,
    content: str,
    opt_out_word: str | None,
    sign_name: str | None,
    received_at: datetime | None,
) -> tuple[SmsReply, bool]:
    """Keep one reply; a provider pushing the same reply again (same phone, time and words) is kept once."""
    existing = session.scalar(
        select(SmsReply).where(
            SmsReply.provider == provider,
            SmsReply.phone_hash == phone_hash,
            SmsReply.content == content,
            SmsReply.received_at == received_at if received_at is not None else SmsReply.received_at.is_(None),
        )
    )
    if existing is not None:
        return existing, False
    reply = SmsReply(
        provider=provider,
        phone_hash=phone_hash,
        phone_masked=phone_masked,
        content=content[:500],
        opt_out_word=opt_out_word,
        sign_name=(sign_name or "")[:40] or None,
        received_at=received_at,
    )
    session.add(reply)
    session.flush()
    return reply, True


def opted_out_phones(*, session: Session, phone_hashes: set[str] | None) -> set[str]:
    """Which of these numbers (all when None) replied R / TD / 退订: pushes to them are cancelled."""
    stmt = select(SmsReply.phone_hash).where(SmsReply.opt_out_word.is_not(None)).distinct()
    if phone_hashes is not None:
        if not phone_hashes:
            return set()
        stmt = stmt.where(SmsReply.phone_hash.in_(phone_hashes))
    return set(session.scalars(stmt))


def cancel_queued_pushes(*, session: Session, phone_hash: str, reason: str) -> int:
    """Queued pushes already addressed to an opted-out number (their hash is set once a round looked at them)."""
    return session.execute(
        update(Notice)
        .where(
            Notice.phone_hash == phone_hash,
            Notice.category == NoticeCategory.PUSH,
            Notice.status == NoticeStatus.QUEUED,
        )
        .values(status=NoticeStatus.CANCELLED, next_attempt_at=None, fail_reason=reason)
    ).rowcount
