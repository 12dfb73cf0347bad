"""Cases and their hash-chained audit timeline (keyed and anchored: db/repositories/audit.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, insert, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db import bulk
from db.models import Case, CaseChainHead, CaseEvent
from db.repositories import audit
from db.repositories.audit import GENESIS
from schemas.vocabulary import CaseStatus


def get(*, session: Session, case_id: int) -> Case | None:
    return session.get(Case, case_id)


def get_by_item_and_enterprise(*, session: Session, fund_item_id: int, enterprise_id: int) -> Case | None:
    return session.scalar(select(Case).where(Case.fund_item_id == fund_item_id, Case.enterprise_id == enterprise_id))


def get_or_create(
    *,
    session: Session,
    fund_item_id: int,
    fund_item_version: int,
    enterprise_id: int,
    mode: str,
    workflow_id: str,
) -> tuple[Case, bool]:
    """The one case for (fund item, enterprise); a concurrent duplicate loses on the unique key."""
    existing = get_by_item_and_enterprise(session=session, fund_item_id=fund_item_id, enterprise_id=enterprise_id)
    if existing:
        return existing, False
    case = Case(
        fund_item_id=fund_item_id,
        fund_item_version=fund_item_version,
        enterprise_id=enterprise_id,
        mode=mode,
        status=CaseStatus.RECEIVED,
        workflow_id=workflow_id,
        paid_fen=0,
    )
    try:
        with session.begin_nested():
            session.add(case)
    except IntegrityError:
        existing = get_by_item_and_enterprise(session=session, fund_item_id=fund_item_id, enterprise_id=enterprise_id)
        assert existing is not None
        return existing, False
    return case, True


def list_for_enterprise(
    *, session: Session, enterprise_id: int, where: ColumnElement[bool] | None = None
) -> list[Case]:
    """An enterprise's cases, newest first; `where` narrows them (the caller's scope)."""
    stmt = select(Case).where(Case.enterprise_id == enterprise_id, where if where is not None else true())
    return list(session.scalars(stmt.order_by(Case.id.desc())))


def list_recent(
    *, session: Session, limit: int = 100, status: str | None = None, where: ColumnElement[bool] | None = None
) -> list[Case]:
    stmt = select(Case).where(where if where is not None else true()).order_by(Case.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(Case.status == status)
    return list(session.scalars(stmt))


def count_by_status(*, session: Session, where: ColumnElement[bool] | None = None) -> dict[str, int]:
    stmt = select(Case.status, func.count()).where(where if where is not None else true()).group_by(Case.status)
    return {status: n for status, n in session.execute(stmt)}


def events(*, session: Session, case_id: int) -> list[CaseEvent]:
    return list(session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)))


def event_hash(prev_hash: str, body: dict[str, Any], data_json: str | None = None) -> str:
    """The chain's one hash (db/repositories/audit.py): keyed, so editing an event and recomputing is detected."""
    return audit.chain_hash(prev_hash, body, data_json)


_hash_body = audit.hash_body


# The hot path's statements, built once: building a select() costs more than running it on SQLite, and a reused
# statement object also keeps its compiled form's cache key (an instant case appends four events).
_event_t = CaseEvent.__table__
_head_t = CaseChainHead.__table__
_EVENT_EXISTS = select(_event_t.c.id).where(
    _event_t.c.case_id == bindparam("case_id"), _event_t.c.key == bindparam("key")
)
_HEAD = select(_head_t.c.seq, _head_t.c.hash).where(_head_t.c.case_id == bindparam("case_id"))
_LOCK_CASE = select(Case.__table__.c.id).where(Case.__table__.c.id == bindparam("case_id")).with_for_update()
_INSERT_EVENT = insert(_event_t)


def record(
    *,
    session: Session,
    case: Case,
    key: str,
    kind: str,
    actor: str,
    to_status: str | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> bool:
    """Append an event and move the case to `to_status`; a retry with the same key changes nothing (False).

    The event is written with one Core INSERT (no ORM object, no flush of its own); the case's new status is an
    attribute of the loaded case, written when the unit of work flushes."""
    # Lock the case row so two writers cannot take the same sequence number. SQLite needs no row lock: every writer
    # took the database's one write lock at BEGIN (db/session.py), and the statement would be one more round trip.
    if bulk.is_postgres(session):
        session.execute(_LOCK_CASE, {"case_id": case.id})
    if session.execute(_EVENT_EXISTS, {"case_id": case.id, "key": key}).first() is not None:
        return False
    # The last link from the anchored head (a primary-key read of two columns, not an ORM load of the last event).
    head = session.execute(_HEAD, {"case_id": case.id}).first()
    last_seq, last_hash = head if head is not None else _last_links(session, [case.id]).get(case.id, (0, GENESIS))
    created = datetime.now(UTC).replace(microsecond=0)
    body = {
        "case_id": case.id,
        "seq": last_seq + 1,
        "key": key,
        "kind": kind,
        "from_status": case.status,
        "to_status": to_status,
        "actor": actor,
        "reason": reason,
        "data": data,
        "created_at": created.isoformat(),  # what audit.hash_body hashes (the same as record_many)
    }
    digest = event_hash(last_hash, body)
    session.execute(_INSERT_EVENT, body | {"created_at": created, "prev_hash": last_hash, "hash": digest})
    audit.anchor(session=session, heads={case.id: (last_seq + 1, digest)})
    if to_status:
        case.status = to_status
        if to_status in CaseStatus.finals():
            case.closed_at = created
        elif case.closed_at is not None:
            case.closed_at = None  # reopened, e.g. a paid case whose money came back
    return True


@dataclass
class NewEvent:
    """One event of a bulk append: the case, the move, and what `record` takes."""

    case_id: int
    from_status: str | None
    to_status: str | None
    key: str
    kind: str
    actor: str
    reason: str | None = None
    data: dict[str, Any] | None = None


def _last_links(session: Session, case_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
    """(last seq, last hash) of each case's timeline, for the cases that have one.

    Read from the anchored heads (one primary-key lookup per case; `record` and `record_many`, the only writers of
    events, move the head with every append); a case without a head (a chain older than the heads) falls back to
    its last event."""
    last: dict[int, tuple[int, str]] = {}
    wanted = sorted(set(case_ids))
    head_t = CaseChainHead.__table__
    for chunk in bulk.chunks(wanted):
        rows = session.execute(
            select(head_t.c.case_id, head_t.c.seq, head_t.c.hash).where(bulk.among(session, head_t.c.case_id, chunk))
        )
        last.update({cid: (seq, digest) for cid, seq, digest in rows})
    headless = [cid for cid in wanted if cid not in last]
    for chunk in bulk.chunks(headless):
        top = (
            select(CaseEvent.case_id, func.max(CaseEvent.seq).label("seq"))
            .where(CaseEvent.case_id.in_(chunk))
            .group_by(CaseEvent.case_id)
            .subquery()
        )
        rows = session.execute(
            select(CaseEvent.case_id, CaseEvent.seq, CaseEvent.hash).join(
                top, and_(CaseEvent.case_id == top.c.case_id, CaseEvent.seq == top.c.seq)
            )
        ).all()
        last.update({cid: (seq, digest) for cid, seq, digest in rows})
    return last


def record_many(
    *,
    session: Session,
    events: Sequence[NewEvent],
    fresh: bool = False,
    extra: dict[str, Any] | None = None,
    beat: bulk.Beat = bulk.no_beat,
    move: bool = True,
) -> None:
    """Append many events and move each case to its last `to_status`: `record` in bulk, with the same hash chain.

    Events of one case follow each other in the chain in the order given. Unlike `record` there is no key check:
    the callers select their cases by status, so a retried batch finds only what is left. `fresh`: the cases were
    created in this transaction and have no events yet. `extra`: more columns to set on every moved case (values or
    SQL expressions, e.g. a correlated subquery). `move=False`: the caller already wrote every case's last status
    (rows inserted with it), so no UPDATE is issued — each one costs the summary triggers' work per row. `beat` is
    called between chunks of the write.
    """
    if not events:
        return
    last = {} if fresh else _last_links(session, [e.case_id for e in events])
    created = datetime.now(UTC).replace(microsecond=0)
    stamp = created.isoformat()
    rows = []
    moves: dict[int, str] = {}
    for e in events:
        seq, prev = last.get(e.case_id, (0, GENESIS))
        seq += 1
        # The data is encoded once: its canonical JSON is hashed and stored (JSON text on SQLite, JSONB on PostgreSQL).
        data = None if e.data is None else bulk.Encoded(audit.encode(e.data))
        body = {
            "case_id": e.case_id,
            "seq": seq,
            "key": e.key,
            "kind": e.kind,
            "from_status": e.from_status,
            "to_status": e.to_status,
            "actor": e.actor,
            "reason": e.reason,
            "data": e.data,
            "created_at": stamp,
        }
        digest = event_hash(prev, body, data)
        last[e.case_id] = (seq, digest)
        body["data"], body["created_at"], body["prev_hash"], body["hash"] = data, created, prev, digest
        rows.append(body)
        if e.to_status and move:
            moves[e.case_id] = e.to_status
    beat()
    bulk.insert_rows(session, CaseEvent.__table__, rows, beat=beat)
    audit.anchor(session=session, heads=last)
    beat()
    by_status: dict[str, list[int]] = defaultdict(list)
    for case_id, status in moves.items():
        by_status[status].append(case_id)
    case_t = Case.__table__
    final = CaseStatus.finals()
    for status, ids in by_status.items():
        # closed_at follows the status both ways, as in `record`: a case that leaves a final status is open again
        values: dict[str, Any] = {
            "status": status,
            "updated_at": created,
            "closed_at": created if status in final else None,
        } | (extra or {})
        for chunk in bulk.chunks(ids):
            session.execute(update(case_t).where(bulk.among(session, case_t.c.id, chunk)).values(**values))
            beat()


def verify_chain(*, session: Session, case_id: int) -> bool:
    """Recompute every keyed hash of the case's timeline and check it against the case's anchored head."""
    return audit.verify_case(session=session, case_id=case_id) is None


def open_for_enterprise(*, session: Session, enterprise_id: int) -> list[Case]:
    """The enterprise's cases that are not closed (an archive change concerns them), oldest first."""
    stmt = select(Case).where(Case.enterprise_id == enterprise_id, Case.closed_at.is_(None)).order_by(Case.id)
    return list(session.scalars(stmt))


def fund_item_of(*, session: Session, case_id: int) -> int | None:
    """The fund item of a case, without loading the case."""
    return session.scalar(select(Case.fund_item_id).where(Case.id == case_id))
