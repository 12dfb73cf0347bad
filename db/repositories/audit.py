"""The keyed, anchored audit chain of case events.

Each event's hash is HMAC(key, previous hash + canonical JSON of the event): without the key, which lives in the
settings (ZHIDA_AUDIT_KEY, or data_dir/keys/audit.key for development) and never in the database, nobody can
recompute a chain after editing it. Each case's head (last seq and hash, with a MAC over both) is kept in its own
table, so deleting events — the last one included — leaves the head pointing past the chain.

The hash function is chosen by name (`ALGORITHM`), so a 国密 deployment can select HMAC-SM3 in one place.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Case, CaseChainHead, CaseEvent

GENESIS = "0" * 64
# The canonical JSON of a hash body; one encoder instance, since building one per event is most of json.dumps' cost.
_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
ALGORITHMS: dict[str, Callable[[bytes, bytes], str]] = {
    # hmac.digest is the one-shot form (the same HMAC-SHA256, without building an HMAC object per event)
    "hmac-sha256": lambda key, message: hmac.digest(key, message, "sha256").hex(),
}
ALGORITHM = "hmac-sha256"
_key: bytes | None = None


def use_key(key: bytes) -> None:
    """Set this process's audit key (tests; processes otherwise read it once from the settings)."""
    global _key
    _key = key


def _chain_key() -> bytes:
    global _key
    if _key is None:
        from settings import get_settings

        _key = get_settings().audit_chain_key()
    return _key


def mac(message: str) -> str:
    return ALGORITHMS[ALGORITHM](_chain_key(), message.encode())


def chain_hash(prev_hash: str, body: dict) -> str:
    """The one hash of the chain: keyed over the previous hash and the canonical JSON of the event."""
    return mac(prev_hash + _CANONICAL.encode(body))


def head_mac(case_id: int, seq: int, digest: str) -> str:
    return mac(f"head|{case_id}|{seq}|{digest}")


def anchor(*, session: Session, heads: dict[int, tuple[int, str]]) -> None:
    """Move each case's head to its new (seq, hash): one upsert per statement batch."""
    if not heads:
        return
    pg = session.get_bind().dialect.name == "postgresql"
    mark = "%s" if pg else "?"
    # One upsert through the DBAPI's executemany (the same on both engines); the ORM's per-row work is the cost here.
    sql = (
        f"INSERT INTO case_chain_head (case_id, seq, hash, mac) VALUES ({mark}, {mark}, {mark}, {mark}) "
        "ON CONFLICT (case_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac"
    )
    rows = [(c, s, h, head_mac(c, s, h)) for c, (s, h) in heads.items()]
    connection = session.connection()
    for start in range(0, len(rows), 5000):
        connection.exec_driver_sql(sql, rows[start : start + 5000])


def hash_body(e: CaseEvent) -> dict:
    created = e.created_at if e.created_at.tzinfo else e.created_at.replace(tzinfo=UTC)
    return {
        "case_id": e.case_id,
        "seq": e.seq,
        "key": e.key,
        "kind": e.kind,
        "from_status": e.from_status,
        "to_status": e.to_status,
        "actor": e.actor,
        "reason": e.reason,
        "data": e.data,
        "created_at": created.isoformat(),
    }


@dataclass(frozen=True)
class Break:
    """Where a case's chain does not hold, in Chinese."""

    case_id: int
    seq: int | None
    problem: str


def verify_case(*, session: Session, case_id: int) -> Break | None:
    """Recompute the case's chain and compare it with its anchored head; None when it holds."""
    prev, seq = GENESIS, 0
    for e in session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)):
        seq += 1
        if e.seq != seq:
            return Break(case_id, seq, f"第 {seq} 条事件缺失（序号跳到 {e.seq}）")
        if e.prev_hash != prev:
            return Break(case_id, e.seq, f"第 {e.seq} 条事件的前序哈希与上一条不符")
        if e.hash != chain_hash(prev, hash_body(e)):
            return Break(case_id, e.seq, f"第 {e.seq} 条事件的内容与其哈希不符（被修改或以其他密钥重算）")
        prev = e.hash
    head = session.get(CaseChainHead, case_id)
    if head is None:
        return Break(case_id, None, "缺少链头锚点") if seq else None
    if not hmac.compare_digest(head.mac, head_mac(case_id, head.seq, head.hash)):
        return Break(case_id, head.seq, "链头锚点的校验码不符（锚点被改写）")
    if (head.seq, head.hash) != (seq, prev):
        return Break(case_id, seq, f"事件链与锚点不符：锚点记录 {head.seq} 条，现存 {seq} 条（事件被删除或重算）")
    return None


def case_ids(*, session: Session) -> list[int]:
    """Every case with a chain or a head (a case whose events were all deleted still has its head)."""
    ids = set(session.scalars(select(CaseChainHead.case_id))) | set(session.scalars(select(Case.id)))
    return sorted(ids)


def verify_all(*, session: Session, ids: Iterable[int] | None = None) -> Iterator[tuple[int, Break | None]]:
    """(case id, break or None) for every case, in id order."""
    for case_id in ids if ids is not None else case_ids(session=session):
        yield case_id, verify_case(session=session, case_id=case_id)
