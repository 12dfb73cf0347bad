"""The keyed, anchored audit chain of case events.

Each event's hash is HMAC(key, previous hash + canonical JSON of the event): without the key, which lives in the
settings (ZHIDA_AUDIT_KEY, or data_dir/keys/audit.key for development) and never in the database, nobody can
recompute a chain after editing it. Each case's head (last seq and hash, with a MAC over both) is kept in its own
table, so deleting events — the last one included — leaves the head pointing past the chain.

The hash function is chosen by name (`ALGORITHM`), so a 国密 deployment can select HMAC-SM3 in one place.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import chain

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import AuditHead, AuditRecord, Case, CaseChainHead, CaseEvent
from db.sql.insert import insert_for

GENESIS = "0" * 64
# The canonical JSON of a hash body; one encoder instance, since building one per event is most of json.dumps' cost.
_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
# The keyed hash states of each (digest, key): HMAC's inner and outer hashes after the padded key (RFC 2104).
_PADDED: dict[tuple[str, bytes], tuple[hashlib._Hash, hashlib._Hash]] = {}


def _hmac_hex(digest: str) -> Callable[[bytes, bytes], str]:
    """HMAC-`digest` as hex, the same bytes as hmac.digest: the padded key is hashed once per key and each message
    continues copies of those two states. hmac.digest looks the algorithm up in OpenSSL on every call, which cost
    twice the hashing itself at the four to seven MACs a campaign case takes."""

    def mac_hex(key: bytes, message: bytes) -> str:
        states = _PADDED.get((digest, key))
        if states is None:
            block = hashlib.new(digest).block_size
            padded = (hashlib.new(digest, key).digest() if len(key) > block else key).ljust(block, b"\0")
            states = (hashlib.new(digest, bytes(b ^ 0x36 for b in padded)),
                      hashlib.new(digest, bytes(b ^ 0x5C for b in padded)))  # fmt: skip
            if len(_PADDED) > 16:
                _PADDED.clear()
            _PADDED[(digest, key)] = states
        inner, outer = states[0].copy(), states[1].copy()
        inner.update(message)
        outer.update(inner.digest())
        return outer.hexdigest()

    return mac_hex


ALGORITHMS: dict[str, Callable[[bytes, bytes], str]] = {
    "hmac-sha256": _hmac_hex("sha256"),
    "hmac-sm3": _hmac_hex("sm3"),  # 国密 (GB/T 32905)
}
ALGORITHM = "hmac-sha256"
_key: bytes | None = None
# The algorithm new audit records are written with (each record names its own): None = from the settings.
_record_alg: str | None = None


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


def chain_hash(prev_hash: str, body: dict, data_json: str | None = None) -> str:
    """The one hash of the chain: keyed over the previous hash and the canonical JSON of the event (`data_json`: the
    body's data already encoded by `encode`, see `canonical`)."""
    return mac(prev_hash + canonical(body, data_json))


def encode(value: object) -> str:
    """The canonical JSON of one value (an event's data): sorted keys, no spaces, UTF-8 as is."""
    return _CANONICAL.encode(value)


# A case event's hash body: these keys, in the sorted order the canonical JSON writes them.
_EVENT_KEYS = ("actor", "case_id", "created_at", "data", "from_status", "key", "kind", "reason", "seq", "to_status")
_EVENT_KEY_SET = frozenset(_EVENT_KEYS)


@lru_cache(maxsize=4096)
def _fragment(value: str | None) -> str:
    """The canonical JSON of one string (or null); a batch repeats the same actors, kinds, reasons and moments."""
    return _CANONICAL.encode(value)


def canonical(body: dict, data_json: str | None = None) -> str:
    """The canonical JSON of a hash body (sorted keys, no spaces, UTF-8 as is).

    A case event's body is written from cached fragments — the same text `_CANONICAL.encode` gives (a test holds
    them equal), at a third of the cost per event, which a campaign pays for half a million events; any other body
    goes through the encoder. `data_json`, when given, is `encode(body["data"])` done by the caller (who stores the
    same text), so the data is encoded once."""
    if body.keys() != _EVENT_KEY_SET:
        return _CANONICAL.encode(body)
    case_id, seq, data = body["case_id"], body["seq"], body["data"]
    if type(case_id) is not int or type(seq) is not int:
        return _CANONICAL.encode(body)
    try:
        strings = [_fragment(body[k]) for k in ("actor", "created_at", "from_status", "key", "kind", "reason",
                                                "to_status")]  # fmt: skip
    except TypeError:  # a value that is not a string (unhashable, or cached under another type): the general way
        return _CANONICAL.encode(body)
    if any(s[0] != '"' and s != "null" for s in strings):
        return _CANONICAL.encode(body)
    actor, created, from_status, key, kind, reason, to_status = strings
    encoded = "null" if data is None else data_json if data_json is not None else _CANONICAL.encode(data)
    return (
        f'{{"actor":{actor},"case_id":{case_id},"created_at":{created},"data":{encoded},"from_status":{from_status},'
        f'"key":{key},"kind":{kind},"reason":{reason},"seq":{seq},"to_status":{to_status}}}'
    )


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
    if pg:
        for start in range(0, len(rows), 5000):
            connection.exec_driver_sql(sql, rows[start : start + 5000])
        return
    # SQLite: 500 heads per statement (one statement start instead of one per head; each case appears once).
    values = f"VALUES ({mark}, {mark}, {mark}, {mark})"
    head, _, tail = sql.partition(values)
    for start in range(0, len(rows), 500):
        part = rows[start : start + 500]
        many = head + "VALUES " + ", ".join([f"({mark}, {mark}, {mark}, {mark})"] * len(part)) + tail
        connection.exec_driver_sql(many, tuple(chain.from_iterable(part)))


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


# -- the chain of audit records beyond case events (configuration, archive, decisions, sign-ins, exports) -----------

MAIN = "main"
# Records are kept at least this long (等保 2.0 三级: six months); the database refuses to delete younger ones.
RETENTION_DAYS = 183


def use_record_algorithm(name: str | None) -> None:
    """Set the algorithm of new records (tests; processes read it from ZHIDA_CRYPTO)."""
    global _record_alg
    _record_alg = name


def record_algorithm() -> str:
    global _record_alg
    if _record_alg is None:
        from settings import get_settings

        _record_alg = "hmac-sm3" if get_settings().crypto == "gm" else "hmac-sha256"
    return _record_alg


def record_body(r: AuditRecord) -> dict:
    created = r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC)
    return {"seq": r.seq, "kind": r.kind, "actor": r.actor, "subject": r.subject, "data": r.data,
            "created_at": created.isoformat(), "alg": r.alg}  # fmt: skip


def record_hash(alg: str, prev_hash: str, body: dict) -> str:
    return ALGORITHMS[alg](_chain_key(), (prev_hash + _CANONICAL.encode(body)).encode())


def audit_head_mac(chain: str, seq: int, digest: str) -> str:
    return mac(f"audit-head|{chain}|{seq}|{digest}")


def _locked_head(session: Session, chain: str) -> AuditHead:
    """The chain's head, locked for this transaction (PostgreSQL: FOR UPDATE; SQLite writers are serial)."""
    query = select(AuditHead).where(AuditHead.chain == chain).with_for_update()
    head = session.scalars(query).one_or_none()
    if head is None:
        row = {"chain": chain, "seq": 0, "hash": GENESIS, "mac": audit_head_mac(chain, 0, GENESIS)}
        session.execute(insert_for(session, AuditHead).values(**row).on_conflict_do_nothing(index_elements=["chain"]))
        head = session.scalars(query.execution_options(populate_existing=True)).one()
    return head


def append(*, session: Session, kind: str, actor: str, subject: str, data: dict | None = None,
           chain: str = MAIN) -> AuditRecord:  # fmt: skip
    """Append one record to the chain and move its anchor, in the caller's transaction."""
    head = _locked_head(session, chain)
    alg = record_algorithm()
    record = AuditRecord(seq=head.seq + 1, kind=kind, actor=actor[:200], subject=subject[:200], data=data or {},
                         created_at=datetime.now(UTC), alg=alg, prev_hash=head.hash)  # fmt: skip
    record.hash = record_hash(alg, head.hash, record_body(record))
    session.add(record)
    head.seq, head.hash, head.mac = record.seq, record.hash, audit_head_mac(chain, record.seq, record.hash)
    session.flush()
    return record


def record_count(*, session: Session) -> int:
    from sqlalchemy import func

    return session.scalar(select(func.count()).select_from(AuditRecord)) or 0


def verify_records(
    *, session: Session, chain: str = MAIN, progress: Callable[[int], None] | None = None, batch: int = 2000
) -> Break | None:
    """Recompute the chain of audit records and compare it with its anchor; None when it holds. Records older than
    the retention may have been purged from the front: the chain then starts at the first kept record, whose
    predecessor hash it carries (deleting younger ones is refused by the database and detected here)."""
    prev: str | None = None
    seq = None
    last_seq = 0
    while True:
        rows = list(session.scalars(
            select(AuditRecord).where(AuditRecord.seq > last_seq).order_by(AuditRecord.seq).limit(batch)
        ))  # fmt: skip
        if not rows:
            break
        for r in rows:
            if seq is None:
                seq = r.seq
                prev = r.prev_hash
                oldest = r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC)
                if r.seq != 1 and oldest > datetime.now(UTC) - timedelta(days=RETENTION_DAYS):
                    return Break(0, 1, f"审计记录第 1–{r.seq - 1} 条缺失（未到保存期限即被删除）")
                if r.seq == 1 and r.prev_hash != GENESIS:
                    return Break(0, 1, "审计记录第 1 条的前序哈希不是起点")
            elif r.seq != seq:
                return Break(0, seq, f"审计记录第 {seq} 条缺失（序号跳到 {r.seq}）")
            if r.prev_hash != prev:
                return Break(0, r.seq, f"审计记录第 {r.seq} 条的前序哈希与上一条不符")
            if r.alg not in ALGORITHMS or r.hash != record_hash(r.alg, prev, record_body(r)):
                return Break(0, r.seq, f"审计记录第 {r.seq} 条的内容与其哈希不符（被修改或以其他密钥重算）")
            prev = r.hash
            seq += 1
        last_seq = rows[-1].seq
        if progress is not None:
            progress(len(rows))
    count = 0 if seq is None else seq - 1
    head = session.get(AuditHead, chain)
    if head is None:
        return Break(0, None, "审计记录缺少链头锚点") if count else None
    if not hmac.compare_digest(head.mac, audit_head_mac(chain, head.seq, head.hash)):
        return Break(0, head.seq, "审计记录链头锚点的校验码不符（锚点被改写）")
    if head.seq != count or (count and head.hash != prev):
        return Break(0, count, f"审计记录与锚点不符：锚点记录到第 {head.seq} 条，现存到第 {count} 条（记录被删除或重算）")
    return None


def reanchor_cases(*, session: Session, ids: Iterable[int]) -> list[int]:
    """Re-anchor case chains written before heads existed (migration d5): recompute each chain with the key and
    anchor it where its hashes hold; a chain whose hashes do not hold is left alone (that is tampering, not age)."""
    done: list[int] = []
    for case_id in ids:
        if session.get(CaseChainHead, case_id) is not None:
            continue
        prev, seq, ok = GENESIS, 0, True
        for e in session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)):
            seq += 1
            if e.seq != seq or e.prev_hash != prev or e.hash != chain_hash(prev, hash_body(e)):
                ok = False
                break
            prev = e.hash
        if ok and seq:
            anchor(session=session, heads={case_id: (seq, prev)})
            done.append(case_id)
    return done


def unanchored_cases(*, session: Session) -> list[int]:
    """Cases with events but no head (written before migration d5)."""
    anchored = select(CaseChainHead.case_id)
    return sorted(set(session.scalars(select(CaseEvent.case_id).where(CaseEvent.case_id.not_in(anchored)).distinct())))
