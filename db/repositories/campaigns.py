"""No-application campaigns in bulk SQL: match, freeze evidence, reserve, consent, publicity, finance, pay, settle.

Every function works on one batch of a campaign's cases selected by status, so a retried activity finds only
what is left to do. Case events keep their hash chain (one query for the batch's last hashes, one bulk
insert), budget entries keep the ledger's shape (reserve → commit | release, one line per case) and the
budget lines move by the batch's sums with a conditional UPDATE, so the CHECK constraints still hold.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, DateTime, String, and_, bindparam, exists, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from db.models import (
    BudgetEntry,
    BudgetLine,
    Campaign,
    CampaignTranche,
    Case,
    CaseEvent,
    Enterprise,
    FundItem,
    FundItemVersion,
    Notice,
    PaymentInstruction,
)
from db.repositories.cases import GENESIS
from db.repositories.payments import voucher_no
from db.sql.amounts import amount_expr
from db.sql.conditions import compile_where
from rules import sms_templates
from rules.amounts import parse_standard
from schemas.conditions import AllOf, AnyOf, Leaf, NotOf, parse_condition
from schemas.fields import FIELDS, FieldType
from schemas.fund_items import FundItemConfig

ACTOR = "system:campaign"
CLOSED = frozenset({"paid", "rejected", "payment_failed", "withdrawn", "budget_exhausted", "lapsed", "declined"})
BEFORE_FINANCE = ("reserved", "ready", "publicity")
CHUNK = 5000  # ids per IN list: far below SQLite's 32,766 variables

case_t = Case.__table__
event_t = CaseEvent.__table__
entry_t = BudgetEntry.__table__
line_t = BudgetLine.__table__
instr_t = PaymentInstruction.__table__
notice_t = Notice.__table__
ent_t = Enterprise.__table__


class BudgetMoved(Exception):
    """A budget line changed under the batch (a concurrent reservation); the retried activity recomputes."""


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


@lru_cache(maxsize=65536)
def _money(amount_fen: int) -> dict[str, str]:
    """大写金额 and figure for a notice; campaigns repeat the same amounts (floors, caps) thousands of times."""
    return sms_templates.money_params(amount_fen)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _raw_insert(session: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT many rows through the DBAPI's executemany: the ORM's per-row parameter processing is most of the
    cost at a hundred thousand rows. Values are converted as SQLAlchemy would store them (JSON as text on
    SQLite and JSONB on PostgreSQL, datetimes as SQLite's text format); every NOT NULL column without a server
    default must be given."""
    if not rows:
        return
    pg = _postgres(session)
    columns = list(rows[0])
    converters: list[Any] = []
    marks = []
    for name in columns:
        kind = table.c[name].type
        if isinstance(kind, JSON):
            converters.append(lambda v: None if v is None else json.dumps(v, ensure_ascii=False))
            marks.append("%s::jsonb" if pg else "?")
        elif isinstance(kind, DateTime) and not pg:
            converters.append(lambda v: None if v is None else v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"))
            marks.append("?")
        else:
            converters.append(None)
            marks.append("%s" if pg else "?")
    names = ", ".join(f'"{c}"' for c in columns)
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join(marks)})'
    params = [
        tuple(v if conv is None else conv(v) for conv, v in zip(converters, (r[c] for c in columns), strict=True))
        for r in rows
    ]
    session.connection().exec_driver_sql(sql, params)


# ---------------------------------------------------------------------------------------------- campaigns


def listing_workflow_id(code: str, version: int) -> str:
    """One campaign per listed version: a second listing of the same version finds the first."""
    return f"campaign:{code}:v{version}"


def register_listing(*, session: Session, item: FundItem, version: int, actor: str = "system") -> Campaign:
    """The campaign of a listed no-application version, created once; the API starts its workflow."""
    wid = listing_workflow_id(item.code, version)
    found = session.scalar(select(Campaign).where(Campaign.workflow_id == wid))
    if found:
        return found
    campaign = Campaign(
        workflow_id=wid, fund_item_id=item.id, fund_item_version=version, kind="listing", phase="pending", actor=actor
    )
    session.add(campaign)
    session.flush()
    return campaign


def register_reevaluation(*, session: Session, item: FundItem, enterprise_id: int, actor: str) -> Campaign | None:
    """A re-check of one enterprise for a listed no-application item; none when it already has a case."""
    if item.listed_version is None:
        return None
    if session.scalar(select(Case.id).where(Case.fund_item_id == item.id, Case.enterprise_id == enterprise_id)):
        return None
    open_one = session.scalar(
        select(Campaign).where(
            Campaign.fund_item_id == item.id,
            Campaign.kind == "reevaluation",
            Campaign.enterprise_id == enterprise_id,
            Campaign.finished_at.is_(None),
        )
    )
    if open_one:
        return open_one
    serial = int(session.scalar(select(func.count()).select_from(Campaign).where(Campaign.fund_item_id == item.id)))
    campaign = Campaign(
        workflow_id=f"{listing_workflow_id(item.code, item.listed_version)}:re:{enterprise_id}:{serial + 1}",
        fund_item_id=item.id,
        fund_item_version=item.listed_version,
        kind="reevaluation",
        enterprise_id=enterprise_id,
        phase="pending",
        actor=actor,
    )
    session.add(campaign)
    session.flush()
    return campaign


def reevaluate_enterprise(*, session: Session, enterprise_id: int, actor: str) -> list[Campaign]:
    """After an archive change: one re-evaluation per listed no-application item the enterprise now matches."""
    out = []
    items = session.scalars(select(FundItem).where(FundItem.mode == "no_application", FundItem.status == "listed"))
    for item in items:
        config = item_config(session=session, item=item)
        matches = session.scalar(
            select(Enterprise.id).where(Enterprise.id == enterprise_id, compile_where(_tree(config)))
        )
        if matches:
            campaign = register_reevaluation(session=session, item=item, enterprise_id=enterprise_id, actor=actor)
            if campaign:
                out.append(campaign)
    return out


def pending(*, session: Session, limit: int = 50) -> list[Campaign]:
    return list(session.scalars(select(Campaign).where(Campaign.phase == "pending").order_by(Campaign.id).limit(limit)))


def mark_started(*, session: Session, campaign_id: int) -> None:
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.phase == "pending")
        .values(phase="matching", started_at=_now())
    )


def get(*, session: Session, campaign_id: int) -> Campaign | None:
    return session.get(Campaign, campaign_id)


def for_item(*, session: Session, fund_item_id: int) -> list[Campaign]:
    return list(session.scalars(select(Campaign).where(Campaign.fund_item_id == fund_item_id).order_by(Campaign.id)))


def set_phase(*, session: Session, campaign_id: int, phase: str) -> None:
    values: dict[str, Any] = {"phase": phase}
    if phase == "done":
        values["finished_at"] = _now()
    session.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values))


def item_config(*, session: Session, item: FundItem, version: int | None = None) -> FundItemConfig:
    number = version or item.listed_version or item.current_version
    row = session.scalar(
        select(FundItemVersion).where(FundItemVersion.fund_item_id == item.id, FundItemVersion.version == number)
    )
    assert row is not None, f"fund item {item.code} lacks version {number}"
    return FundItemConfig.model_validate(row.config)


@dataclass
class Context:
    """A campaign with its fund item and frozen configuration, loaded once per activity."""

    campaign: Campaign
    item: FundItem
    config: FundItemConfig

    @property
    def officer(self) -> str:
        return self.config.officer or "主管部门"


def context(*, session: Session, campaign_id: int) -> Context:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise LookupError(f"campaign {campaign_id} not found")
    item = session.get(FundItem, campaign.fund_item_id)
    assert item is not None
    return Context(campaign, item, item_config(session=session, item=item, version=campaign.fund_item_version))


def _tree(config: FundItemConfig) -> AllOf | AnyOf | NotOf | Leaf:
    cond = config.conditions
    return cond if isinstance(cond, AllOf | AnyOf | NotOf | Leaf) else parse_condition(cond)


def _leaf_fields(node: Any) -> set[str]:
    if isinstance(node, Leaf):
        return {node.field}
    if isinstance(node, NotOf):
        return _leaf_fields(node.item)
    return set().union(*(_leaf_fields(i) for i in node.items)) if node.items else set()


def _standard_fields(standard: Any) -> set[str]:
    out = set()
    base = getattr(standard, "base", None)
    if isinstance(base, str):
        out.add(base)
    for part in getattr(standard, "parts", None) or []:
        out |= _standard_fields(part)
    return out


def frozen_fields(config: FundItemConfig) -> list[str]:
    """The archive fields a decision rests on: the conditions', the standard's and the stated order's."""
    names = _leaf_fields(_tree(config)) | _standard_fields(parse_standard(config.standard.model_dump(mode="json")))
    shortfall = config.no_application.shortfall if config.no_application else None
    for key in shortfall.order_by if shortfall else []:
        if key.key in FIELDS:
            names.add(key.key)
    return sorted(names)


# ---------------------------------------------------------------------------------------------- events


@dataclass
class Event:
    case_id: int
    from_status: str | None
    to_status: str | None
    key: str
    kind: str
    reason: str | None = None
    data: dict[str, Any] | None = None
    actor: str = ACTOR


def _canonical(value: Any, cache: dict[Any, str]) -> str:
    """json.dumps(value) as cases.event_hash writes it (compact, sorted, not ASCII-escaped), cached per value."""
    key = value if isinstance(value, str | int | type(None)) else None
    if key is not None or value is None:
        found = cache.get(key)
        if found is None:
            found = cache[key] = json.dumps(value, ensure_ascii=False)
        return found
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def record_events(*, session: Session, events: Sequence[Event], fresh: bool = False, extra: dict | None = None) -> None:
    """Append one event per case and move each case to its `to_status`, keeping every case's hash chain.

    The hash is cases.event_hash over the same canonical JSON, written here without re-encoding the
    batch's repeated values, and the rows go in with one DBAPI executemany: events are most of a campaign's
    writes. `fresh`: the cases were created in this transaction and have no events yet. `extra`: more
    columns to set on every moved case.
    """
    if not events:
        return
    last: dict[int, tuple[int, str]] = {}
    if not fresh:
        ids = [e.case_id for e in events]
        for chunk in _chunks(ids):
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
            last.update({cid: (seq, h) for cid, seq, h in rows})
    created = _now()
    postgres = _postgres(session)
    stamp_value: Any = created if postgres else created.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    cache: dict[Any, str] = {}
    stamp = _canonical(created.isoformat(), cache)
    rows_out = []
    final: dict[int, str] = {}
    static: dict[tuple, tuple[str, str]] = {}
    for e in events:  # several events of one case follow each other in the chain
        seq, prev = last.get(e.case_id, (0, GENESIS))
        seq += 1
        data = None if e.data is None else _canonical(e.data, cache)
        fixed = (e.actor, e.from_status, e.key, e.kind, e.reason, e.to_status)
        parts = static.get(fixed)
        if parts is None:
            parts = static[fixed] = (
                f'{{"actor":{_canonical(e.actor, cache)},"case_id":',
                f',"from_status":{_canonical(e.from_status, cache)},"key":{_canonical(e.key, cache)},'
                f'"kind":{_canonical(e.kind, cache)},"reason":{_canonical(e.reason, cache)},"seq":',
            )
        to_status = _canonical(e.to_status, cache)
        body = f'{parts[0]}{e.case_id},"created_at":{stamp},"data":{data or "null"}{parts[1]}{seq},"to_status":{to_status}}}'
        digest = hashlib.sha256((prev + body).encode()).hexdigest()
        last[e.case_id] = (seq, digest)
        rows_out.append(
            (
                e.case_id,
                seq,
                e.key,
                e.kind,
                e.from_status,
                e.to_status,
                e.actor,
                e.reason,
                data,
                prev,
                digest,
                stamp_value,
            )
        )
        if e.to_status:
            final[e.case_id] = e.to_status
    moves: dict[str, list[int]] = defaultdict(list)
    for case_id, status in final.items():
        moves[status].append(case_id)
    mark = "%s" if postgres else "?"
    data_mark = "%s::jsonb" if postgres else "?"
    sql = (
        "INSERT INTO case_event (case_id, seq, key, kind, from_status, to_status, actor, reason, data, prev_hash, "
        f"hash, created_at) VALUES ({', '.join([mark] * 8)}, {data_mark}, {mark}, {mark}, {mark})"
    )
    session.connection().exec_driver_sql(sql, rows_out)
    for status, ids in moves.items():
        values: dict[str, Any] = {"status": status, "updated_at": created} | (extra or {})
        if status in CLOSED:
            values["closed_at"] = created
        for chunk in _chunks(ids):
            session.execute(update(case_t).where(case_t.c.id.in_(chunk)).values(**values))


# ---------------------------------------------------------------------------------------------- notices


def queue_notices(
    *,
    session: Session,
    ctx: Context,
    stage: str,
    template: str,
    rows: Sequence[tuple[int, int, dict[str, Any]]],
) -> int:
    """Bulk notices (case_id, enterprise_id, extra params) with dedupe keys case:{id}:{stage}."""
    if not rows:
        return 0
    info: dict[int, tuple[str, str | None, str | None]] = {}
    ent_ids = sorted({r[1] for r in rows})
    for chunk in _chunks(ent_ids):
        for eid, name, enc, masked in session.execute(
            select(ent_t.c.id, ent_t.c.name, ent_t.c.contact_phone_enc, ent_t.c.contact_phone_masked).where(
                ent_t.c.id.in_(chunk)
            )
        ).all():
            info[eid] = (name, enc, masked)
    keys = [f"case:{cid}:{stage}" for cid, _, _ in rows]
    existing: set[str] = set()
    for chunk in _chunks(keys):
        existing |= set(session.scalars(select(notice_t.c.dedupe_key).where(notice_t.c.dedupe_key.in_(chunk))))
    now = _now()
    out = []
    for (cid, eid, extra), key in zip(rows, keys, strict=True):
        if key in existing:
            continue
        name, enc, masked = info[eid]
        params = {"enterprise": name, "item": ctx.item.name} | {k: str(v) for k, v in extra.items()}
        out.append(
            {
                "dedupe_key": key,
                "enterprise_id": eid,
                "case_id": cid,
                "template_key": template,
                "params": params,
                "content": sms_templates.render(template, params),
                "phone_enc": enc,
                "phone_masked": masked,
                "status": "queued",
                "provider": "outbox",
                "fund_item_id": ctx.item.id,
                "created_at": now,
            }
        )
    _raw_insert(session, notice_t, out)
    return len(out)


# ---------------------------------------------------------------------------------------------- match


def _json_object(session: Session, pairs: Sequence[tuple[str, Any]]) -> Any:
    args: list[Any] = []
    for key, value in pairs:
        args += [literal(key, String), value]
    if session.get_bind().dialect.name == "postgresql":
        return func.jsonb_build_object(*args)
    return func.json_object(*args)


def _frozen_value(session: Session, name: str) -> Any:
    column = ent_t.c[FIELDS[name].column]
    if FIELDS[name].type is FieldType.TAGS and session.get_bind().dialect.name != "postgresql":
        return func.json(column)  # SQLite keeps JSON as text: embed it as JSON, not as a string
    return column


@dataclass
class MatchOut:
    case_ids: list[int]
    last_enterprise_id: int
    done: bool
    reserved: int = 0
    exhausted: int = 0


def match_batch(*, session: Session, ctx: Context, after_enterprise_id: int, limit: int) -> MatchOut:
    """Create the cases of the next `limit` enterprises (by id) the conditions select, with frozen evidence.

    One INSERT … SELECT; an enterprise that already has a case of this item (any campaign, any mode) is
    skipped, so a fund item never pays an enterprise twice. When the budget plan allows (enough budget, or pro
    rata), the new cases are reserved in the same transaction.
    """
    campaign, item, config = ctx.campaign, ctx.item, ctx.config
    if campaign.kind == "reevaluation":
        low, high, done = (campaign.enterprise_id or 0) - 1, campaign.enterprise_id or 0, True
    else:
        low = after_enterprise_id
        high = session.scalar(
            select(ent_t.c.id).where(ent_t.c.id > low).order_by(ent_t.c.id).offset(limit - 1).limit(1)
        )
        done = high is None
        if high is None:
            high = session.scalar(select(func.max(ent_t.c.id)).where(ent_t.c.id > low))
            if high is None:
                return MatchOut([], low, True)
    ratio = plan_budget(session=session, ctx=ctx)
    amount, where = _matchable(ctx)
    values = _json_object(session, [(name, _frozen_value(session, name)) for name in frozen_fields(config)])
    decided = _now()
    evidence = _json_object(
        session,
        [
            ("kind", literal("no_application", String)),
            ("campaign_id", literal(campaign.id)),
            ("fund_item_version", literal(campaign.fund_item_version)),
            ("decided_at", literal(decided.isoformat(), String)),
            ("amount_full_fen", amount),
            ("values", values),
        ],
    )
    source = select(
        literal(item.id),
        literal(campaign.fund_item_version),
        ent_t.c.id,
        literal("no_application", String),
        literal("matched", String),
        amount,
        literal(0),
        literal(f"case:{item.code}:", String) + ent_t.c.uscc,
        evidence,
        literal(campaign.id),
        literal(decided),
        literal(decided),
    ).where(ent_t.c.id > low, ent_t.c.id <= high, where)
    columns = [
        "fund_item_id",
        "fund_item_version",
        "enterprise_id",
        "mode",
        "status",
        "amount_fen",
        "paid_fen",
        "workflow_id",
        "evidence",
        "campaign_id",
        "created_at",
        "updated_at",
    ]
    rows = session.execute(
        insert(case_t).from_select(columns, source).returning(case_t.c.id, case_t.c.amount_fen)
    ).all()
    events = [
        Event(
            cid,
            None,
            "matched",
            "matched",
            "matched",
            reason="企业数据比对符合申报条件（免申即享，无需申报）",
            data={"amount_fen": int(amt), "campaign_id": campaign.id},
            actor="system:rules",
        )
        for cid, amt in rows
    ]
    reserved = exhausted = 0
    if ratio is not None:  # the budget plan allows reserving at once: one pass, two events per case
        more, reserved, exhausted, _ = _reserve_rows(
            session, ctx, [(c, int(a)) for c, a in rows], ratio, stop_in_order=False, stopped=False
        )
        events += more
    record_events(session=session, events=events, fresh=True)
    return MatchOut([cid for cid, _ in rows], int(high), done, reserved, exhausted)


# ---------------------------------------------------------------------------------------------- budget


def _lines(session: Session, fund_item_id: int) -> list[BudgetLine]:
    query = select(BudgetLine).where(BudgetLine.fund_item_id == fund_item_id).order_by(BudgetLine.id)
    return list(session.scalars(query.with_for_update()))


def _move_lines(session: Session, deltas: dict[int, tuple[int, int]]) -> None:
    """Add (reserved, committed) deltas to budget lines; a line that would overspend raises BudgetMoved."""
    for line_id, (reserved, committed) in deltas.items():
        if not reserved and not committed:
            continue
        result = session.execute(
            update(line_t)
            .where(
                line_t.c.id == line_id,
                line_t.c.reserved_fen + line_t.c.committed_fen + reserved + committed <= line_t.c.total_fen,
                line_t.c.reserved_fen + reserved >= 0,
            )
            .values(
                reserved_fen=line_t.c.reserved_fen + reserved,
                committed_fen=line_t.c.committed_fen + committed,
            )
        )
        if result.rowcount != 1:
            raise BudgetMoved(f"budget line {line_id} changed under the batch")


def available_fen(*, session: Session, fund_item_id: int) -> int:
    row = session.execute(
        select(func.coalesce(func.sum(line_t.c.total_fen - line_t.c.reserved_fen - line_t.c.committed_fen), 0)).where(
            line_t.c.fund_item_id == fund_item_id
        )
    ).scalar()
    return int(row or 0)


def _matchable(ctx: Context) -> tuple[Any, Any]:
    """(amount expression, WHERE clause) over `enterprise` for the campaign's enterprises without a case yet."""
    campaign, config = ctx.campaign, ctx.config
    amount = amount_expr(parse_standard(config.standard.model_dump(mode="json")))
    taken = exists().where(case_t.c.fund_item_id == ctx.item.id, case_t.c.enterprise_id == ent_t.c.id)
    where = and_(compile_where(_tree(config)), amount > 0, ~taken)
    if campaign.kind == "reevaluation":
        where = and_(where, ent_t.c.id == campaign.enterprise_id)
    return amount, where


def plan_budget(*, session: Session, ctx: Context) -> tuple[int, int] | None:
    """The ratio every amount is paid at, fixed once before matching: 1/1 when the budget covers every match,
    available ÷ total under pro rata, None when a short budget must be used up in the stated order (then the
    reservations wait until everything is matched). A re-evaluation uses the listing campaign's ratio, so a
    late enterprise is cut like the rest."""
    campaign = ctx.campaign
    if campaign.ratio_den is not None:  # 0/0 records "reserve in the stated order, after matching"
        return (int(campaign.ratio_num or 0), int(campaign.ratio_den)) if campaign.ratio_den else None
    shortfall = ctx.config.no_application.shortfall if ctx.config.no_application else None
    pro_rata = shortfall is not None and shortfall.policy == "pro_rata"
    if campaign.kind == "reevaluation" and pro_rata:
        listing = session.scalar(
            select(Campaign)
            .where(Campaign.fund_item_id == campaign.fund_item_id, Campaign.ratio_den > 0, Campaign.id != campaign.id)
            .order_by(Campaign.id.desc())
            .limit(1)
        )
        if listing is not None and listing.ratio_den:
            campaign.ratio_num, campaign.ratio_den = listing.ratio_num, listing.ratio_den
            session.flush()
            return int(listing.ratio_num or 0), int(listing.ratio_den)
    amount, where = _matchable(ctx)
    total = int(session.scalar(select(func.coalesce(func.sum(amount), 0)).where(where)) or 0)
    available = available_fen(session=session, fund_item_id=campaign.fund_item_id)
    ratio = (1, 1) if total <= available else (available, total) if pro_rata else (0, 0)
    campaign.ratio_num, campaign.ratio_den = ratio
    session.flush()
    return ratio if ratio[1] else None


def _reserve_rows(
    session: Session,
    ctx: Context,
    rows: Sequence[tuple[int, int]],
    ratio: tuple[int, int],
    *,
    stop_in_order: bool,
    stopped: bool,
) -> tuple[list[Event], int, int, int]:
    """Reserve (case, full amount) rows on the first line with room, cut by the ratio (rounded down to the fen,
    so the sum never exceeds the budget). stop_in_order: the first that does not fit stops the rest. Returns
    (events, reserved, exhausted, amount)."""
    num, den = ratio
    lines = _lines(session, ctx.campaign.fund_item_id)
    room = {line.id: line.total_fen - line.reserved_fen - line.committed_fen for line in lines}
    deltas: dict[int, tuple[int, int]] = {}
    entries, events, amounts = [], [], []
    exhausted: list[int] = []
    total = 0
    for cid, full in rows:
        amount = full if num >= den else full * num // den
        line_id = None
        if amount > 0 and not stopped:
            for lid, free in room.items():
                if free >= amount:
                    line_id = lid
                    break
        if line_id is None:
            exhausted.append(cid)
            stopped = stopped or stop_in_order
            continue
        room[line_id] -= amount
        deltas[line_id] = (deltas.get(line_id, (0, 0))[0] + amount, 0)
        total += amount
        entries.append(
            {"budget_line_id": line_id, "case_id": cid, "kind": "reserve", "attempt": 1, "amount_fen": amount}
        )
        if amount == full:
            events.append(Event(cid, "matched", "reserved", "reserve", "budget_reserved", data={"amount_fen": amount}))
        else:
            amounts.append({"cid": cid, "amt": amount})
            events.append(
                Event(
                    cid,
                    "matched",
                    "reserved",
                    "reserve",
                    "budget_reserved",
                    reason=f"按比例核减：核定 {full} 分 × {num}/{den}",
                    data={"amount_fen": amount, "amount_full_fen": full, "ratio": f"{num}/{den}"},
                )
            )
    _move_lines(session, deltas)
    _raw_insert(session, entry_t, entries)
    if amounts:
        session.execute(
            update(case_t).where(case_t.c.id == bindparam("cid")).values(amount_fen=bindparam("amt")), amounts
        )
    words = "按规定的兑付顺序，预算额度已用完" if stop_in_order else "预算额度不足，无法预留"
    events += [
        Event(
            cid,
            "matched",
            "budget_exhausted",
            "reserve",
            "budget_exhausted",
            reason=f"预算不足未能兑付：{words}",
            actor="system:budget",
        )
        for cid in exhausted
    ]
    for chunk in _chunks(exhausted):
        session.execute(update(case_t).where(case_t.c.id.in_(chunk)).values(outcome_reason="预算额度已用完，未能兑付"))
    return events, len(entries), len(exhausted), total


def _order(session: Session, ctx: Context) -> list[Any]:
    """The stated order of a short budget, on the frozen values; ties by USCC compared bytewise."""
    shortfall = ctx.config.no_application.shortfall if ctx.config.no_application else None
    terms: list[Any] = []
    for key in shortfall.order_by if shortfall and shortfall.policy == "stop_in_order" else []:
        if key.key == "amount_fen":
            column: Any = case_t.c.amount_fen
        else:
            element = case_t.c.evidence[("values", key.key)]
            numeric = FIELDS[key.key].is_numeric
            column = element.as_integer() if numeric else element.as_string()
        terms.append((column.desc() if key.direction == "desc" else column.asc()).nulls_last())
    uscc: Any = ent_t.c.uscc
    if session.get_bind().dialect.name == "postgresql":
        uscc = uscc.collate("C")
    return [*terms, uscc.asc()]


def reserve_batch(*, session: Session, ctx: Context, limit: int) -> tuple[int, int, int]:
    """Reserve the next `limit` matched cases in the stated order; returns (reserved, exhausted, amount).

    Cases are usually reserved as they are matched (see plan_budget); this is the stop_in_order path of a
    short budget: the first case the budget cannot hold stops the campaign's reservations, and it and every
    case after it are closed as budget_exhausted.
    """
    campaign = ctx.campaign
    shortfall = ctx.config.no_application.shortfall if ctx.config.no_application else None
    stop_in_order = shortfall is not None and shortfall.policy == "stop_in_order"
    ratio = plan_budget(session=session, ctx=ctx) or (1, 1)
    rows = session.execute(
        select(case_t.c.id, case_t.c.amount_fen)
        .join(ent_t, ent_t.c.id == case_t.c.enterprise_id)
        .where(case_t.c.campaign_id == campaign.id, case_t.c.status == "matched")
        .order_by(*_order(session, ctx))
        .limit(limit)
    ).all()
    if not rows:
        return 0, 0, 0
    stopped = stop_in_order and bool(
        session.scalar(
            select(case_t.c.id)
            .where(case_t.c.campaign_id == campaign.id, case_t.c.status == "budget_exhausted")
            .limit(1)
        )
    )
    events, reserved, exhausted, total = _reserve_rows(
        session, ctx, [(cid, amt) for cid, amt in rows], ratio, stop_in_order=stop_in_order, stopped=stopped
    )
    record_events(session=session, events=events)
    return reserved, exhausted, total


def _release(session: Session, case_ids: Sequence[int]) -> None:
    """Release the attempt-1 reservations of these cases (bulk budget.release)."""
    deltas: dict[int, tuple[int, int]] = {}
    out = []
    settled = entry_t.alias("settled")
    for chunk in _chunks(list(case_ids)):
        reserved = session.execute(
            select(entry_t.c.budget_line_id, entry_t.c.case_id, entry_t.c.amount_fen).where(
                entry_t.c.case_id.in_(chunk),
                entry_t.c.kind == "reserve",
                entry_t.c.attempt == 1,
                ~exists().where(
                    settled.c.case_id == entry_t.c.case_id,
                    settled.c.attempt == 1,
                    settled.c.kind.in_(("commit", "release")),
                ),
            )
        ).all()
        for line_id, cid, amt in reserved:
            r, c = deltas.get(line_id, (0, 0))
            deltas[line_id] = (r - amt, c)
            out.append({"budget_line_id": line_id, "case_id": cid, "kind": "release", "attempt": 1, "amount_fen": amt})
    _move_lines(session, deltas)
    _raw_insert(session, entry_t, out)


def _commit(session: Session, case_ids: Sequence[int]) -> None:
    """Commit the attempt-1 reservations of these cases (bulk budget.commit)."""
    deltas: dict[int, tuple[int, int]] = {}
    out = []
    for chunk in _chunks(list(case_ids)):
        for line_id, cid, amt in session.execute(
            select(entry_t.c.budget_line_id, entry_t.c.case_id, entry_t.c.amount_fen).where(
                entry_t.c.case_id.in_(chunk), entry_t.c.kind == "reserve", entry_t.c.attempt == 1
            )
        ).all():
            r, c = deltas.get(line_id, (0, 0))
            deltas[line_id] = (r - amt, c + amt)
            out.append({"budget_line_id": line_id, "case_id": cid, "kind": "commit", "attempt": 1, "amount_fen": amt})
    _move_lines(session, deltas)
    _raw_insert(session, entry_t, out)


# ---------------------------------------------------------------------------------------------- consent


def open_consent(*, session: Session, ctx: Context, deadline: date, due_at: datetime) -> tuple[date, datetime]:
    """Fix the consent deadline once (a retried activity keeps the first)."""
    campaign = ctx.campaign
    if campaign.consent_deadline is None:
        campaign.consent_deadline, campaign.consent_due_at = deadline, due_at
        campaign.phase = "consent"
        session.flush()
    due = campaign.consent_due_at
    assert due is not None and campaign.consent_deadline is not None
    return campaign.consent_deadline, due if due.tzinfo else due.replace(tzinfo=UTC)


def _selected(query: Any, case_ids: Sequence[int] | None) -> Any:
    return query.where(case_t.c.id.in_(case_ids)) if case_ids is not None else query


def consent_notify_batch(*, session: Session, ctx: Context, limit: int) -> int:
    """Reserved cases → consent_pending, each with its consent notice and deadline."""
    rows = session.execute(
        select(case_t.c.id, case_t.c.enterprise_id, case_t.c.amount_fen)
        .where(case_t.c.campaign_id == ctx.campaign.id, case_t.c.status == "reserved")
        .order_by(case_t.c.id)
        .limit(limit)
    ).all()
    if not rows:
        return 0
    deadline = ctx.campaign.consent_deadline
    assert deadline is not None
    consent = ctx.config.no_application.consent if ctx.config.no_application else None
    pay_on_file = bool(consent and consent.on_no_answer == "pay_on_file")
    policy = "按档案登记账户兑付" if pay_on_file else "视为放弃"
    events = [
        Event(
            cid,
            "reserved",
            "consent_pending",
            "consent_requested",
            "consent_requested",
            reason=f"请于 {deadline} 前确认兑付意愿及收款账户，逾期{policy}",
            data={"deadline": deadline.isoformat()},
        )
        for cid, _, _ in rows
    ]
    record_events(session=session, events=events, extra={"consent_status": "pending"})
    queue_notices(
        session=session,
        ctx=ctx,
        stage="consent",
        template="consent_requested_pay_on_file" if pay_on_file else "consent_requested",
        rows=[(cid, eid, _money(amt) | {"deadline": sms_templates.format_date(deadline)}) for cid, eid, amt in rows],
    )
    return len(rows)


def record_consent(
    *,
    session: Session,
    case: Case,
    accept: bool,
    actor: str,
    acct_enc: str | None = None,
    acct_masked: str | None = None,
    acct_name: str | None = None,
    bank_name: str | None = None,
    bank_code: str | None = None,
) -> None:
    """An enterprise's answer, recorded in the database; the next wave collects it."""
    from db.repositories import cases as cases_repo

    case.consent_status = "confirmed" if accept else "declined"
    case.consent_at = _now()
    if accept and acct_enc:
        case.consent_acct_enc, case.consent_acct_masked = acct_enc, acct_masked
        case.consent_acct_name, case.consent_bank_name, case.consent_bank_code = acct_name, bank_name, bank_code
    cases_repo.record(
        session=session,
        case=case,
        key="consent_answer",
        kind="consent_confirmed" if accept else "consent_declined",
        actor=actor,
        reason="企业确认兑付意愿" + ("及收款账户" if acct_enc else "") if accept else "企业放弃本次兑付",
        data={"acct_masked": acct_masked} if acct_masked else None,
    )


def collect_batch(*, session: Session, ctx: Context, final: bool, limit: int) -> tuple[int, int]:
    """One wave: confirmed cases become ready to pay; declined ones lapse; at the deadline the rest follow
    the configured policy (pay_on_file: ready with the account on file; lapse: closed, budget released).
    Returns (ready, lapsed)."""
    consent = ctx.config.no_application.consent if ctx.config.no_application else None
    pending_ok = final and consent is not None and consent.on_no_answer == "pay_on_file"
    answered = case_t.c.consent_status.in_(("confirmed", "declined"))
    rows = session.execute(
        select(case_t.c.id, case_t.c.consent_status)
        .where(
            case_t.c.campaign_id == ctx.campaign.id,
            case_t.c.status == "consent_pending",
            answered if not final else literal(True),
        )
        .order_by(case_t.c.id)
        .limit(limit)
    ).all()
    ready, lapsed, release = [], [], []
    for cid, answer in rows:
        if answer == "confirmed":
            ready.append(Event(cid, "consent_pending", "ready", "consent_collected", "consent_confirmed"))
        elif answer == "declined":
            lapsed.append(
                Event(
                    cid,
                    "consent_pending",
                    "declined",
                    "consent_collected",
                    "consent_declined",
                    reason="企业放弃本次兑付，额度释放",
                )
            )
            release.append(cid)
        elif pending_ok:
            ready.append(
                Event(
                    cid,
                    "consent_pending",
                    "ready",
                    "consent_collected",
                    "consent_on_file",
                    reason="逾期未确认，按企业档案登记的账户兑付",
                )
            )
        else:
            lapsed.append(
                Event(
                    cid,
                    "consent_pending",
                    "lapsed",
                    "consent_collected",
                    "consent_lapsed",
                    reason="逾期未确认，视为放弃，额度释放",
                )
            )
            release.append(cid)
    on_file = [e for e in ready if e.kind == "consent_on_file"]
    record_events(session=session, events=[e for e in ready if e.kind != "consent_on_file"])
    record_events(session=session, events=on_file, extra={"consent_status": "on_file"})
    lapsed_pending = [e for e in lapsed if e.to_status == "lapsed"]
    record_events(session=session, events=lapsed_pending, extra={"consent_status": "lapsed"})
    record_events(session=session, events=[e for e in lapsed if e.to_status != "lapsed"])
    _release(session, release)
    return len(ready), len(lapsed)


# ---------------------------------------------------------------------------------------------- tranches


def open_tranche(*, session: Session, ctx: Context, number: int) -> CampaignTranche:
    """The wave `number`: every case ready to pay and not yet in a wave joins it; totals fixed once."""
    found = session.scalar(
        select(CampaignTranche).where(CampaignTranche.campaign_id == ctx.campaign.id, CampaignTranche.number == number)
    )
    if found:
        return found
    status = "ready" if ctx.config.no_application and ctx.config.no_application.consent else "reserved"
    session.execute(
        update(case_t)
        .where(case_t.c.campaign_id == ctx.campaign.id, case_t.c.status == status, case_t.c.tranche.is_(None))
        .values(tranche=number)
    )
    count, amount = session.execute(
        select(func.count(), func.coalesce(func.sum(case_t.c.amount_fen), 0)).where(
            case_t.c.campaign_id == ctx.campaign.id, case_t.c.tranche == number
        )
    ).one()
    tranche = CampaignTranche(
        campaign_id=ctx.campaign.id, number=number, cases=int(count), amount_fen=int(amount), finance_status="pending"
    )
    session.add(tranche)
    ctx.campaign.phase = "paying"
    session.flush()
    return tranche


def tranche(*, session: Session, campaign_id: int, number: int) -> CampaignTranche | None:
    return session.scalar(
        select(CampaignTranche).where(CampaignTranche.campaign_id == campaign_id, CampaignTranche.number == number)
    )


def tranches(*, session: Session, campaign_id: int) -> list[CampaignTranche]:
    return list(
        session.scalars(
            select(CampaignTranche).where(CampaignTranche.campaign_id == campaign_id).order_by(CampaignTranche.number)
        )
    )


def set_publicity(*, session: Session, row: CampaignTranche, until: date, due_at: datetime) -> CampaignTranche:
    if row.publicity_until is None:
        row.publicity_until, row.publicity_due_at = until, due_at
        session.flush()
    return row


def publicity_batch(*, session: Session, ctx: Context, row: CampaignTranche, limit: int) -> int:
    """Cases of the wave go on the publicity list (公示), each told its amount and the end of the period."""
    rows = session.execute(
        select(case_t.c.id, case_t.c.enterprise_id, case_t.c.amount_fen, case_t.c.status)
        .where(
            case_t.c.campaign_id == ctx.campaign.id,
            case_t.c.tranche == row.number,
            case_t.c.status.in_(("reserved", "ready")),
        )
        .order_by(case_t.c.id)
        .limit(limit)
    ).all()
    until = row.publicity_until
    assert until is not None
    events = [
        Event(
            cid,
            st,
            "publicity",
            "publicity",
            "publicity_started",
            reason=f"拟兑付名单公示至 {until}",
            data={"until": until.isoformat(), "tranche": row.number},
        )
        for cid, _, _, st in rows
    ]
    record_events(session=session, events=events)
    queue_notices(
        session=session,
        ctx=ctx,
        stage="publicity",
        template="publicity_started",
        rows=[(cid, eid, _money(amt) | {"deadline": sms_templates.format_date(until)}) for cid, eid, amt, _ in rows],
    )
    return len(rows)


def objected(*, session: Session, campaign_id: int, number: int) -> list[int]:
    return list(
        session.scalars(
            select(case_t.c.id).where(
                case_t.c.campaign_id == campaign_id, case_t.c.tranche == number, case_t.c.status == "objected"
            )
        )
    )


def record_finance(*, session: Session, row: CampaignTranche, approve: bool, actor: str, note: str) -> CampaignTranche:
    """The one finance decision of a wave; a repeated call keeps the first decision."""
    if row.finance_status == "pending":
        row.finance_status = "approved" if approve else "rejected"
        row.finance_actor, row.finance_note, row.finance_at = actor, note, _now()
        session.flush()
    return row


def finance_batch(*, session: Session, ctx: Context, row: CampaignTranche, limit: int, case_ids=None) -> int:
    """Apply the wave's finance decision to its cases: approved (to be paid) or rejected (budget released)."""
    query = select(case_t.c.id, case_t.c.status).where(
        case_t.c.campaign_id == ctx.campaign.id, case_t.c.tranche == row.number, case_t.c.status.in_(BEFORE_FINANCE)
    )
    rows = session.execute(_selected(query, case_ids).order_by(case_t.c.id).limit(limit)).all()
    record_events(session=session, events=[finance_event(row, cid, st) for cid, st in rows])
    if row.finance_status != "approved":
        _release(session, [cid for cid, _ in rows])
    return len(rows)


def finance_event(row: CampaignTranche, case_id: int, status: str) -> Event:
    """The wave's decision as one case's event (with the wave's totals the decision was made on)."""
    approve = row.finance_status == "approved"
    actor = row.finance_actor or "system:finance"
    words = "财政审核通过（标准完全量化，自动审核）" if actor == "system:auto" else "财政审核通过"
    return Event(
        case_id,
        status,
        "approved" if approve else "rejected",
        "finance",
        "finance_approved" if approve else "finance_rejected",
        reason=words if approve else f"财政审核不予拨付：{row.finance_note or ''}",
        data={"tranche": row.number, "tranche_cases": row.cases, "tranche_amount_fen": row.amount_fen},
        actor=actor,
    )


# ---------------------------------------------------------------------------------------------- payment


@dataclass
class Payer:
    adm_div_code: str
    pay_acct_no: str
    pay_acct_name: str
    st_year: int


@dataclass
class Outgoing:
    """An instruction to send, with the decrypted account supplied by the caller."""

    voucher_no: str
    case_id: int
    acct_enc: str
    fields: dict[str, Any] = field(default_factory=dict)


def create_instructions(
    *,
    session: Session,
    ctx: Context,
    payer: Payer,
    limit: int,
    case_ids: Sequence[int] | None = None,
    approved_tranche: CampaignTranche | None = None,
) -> tuple[int, int]:
    """Approved cases → paying, each with its attempt-1 instruction (deterministic VoucherNo).

    With `approved_tranche` (a wave finance approved), its cases still before finance get the approval
    event in the same pass. The account is the one the enterprise confirmed, else the one on file; a case
    with neither waits in no_account for its correction. Returns (instructions created, cases without one).
    """
    wanted = case_t.c.status == "approved"
    if approved_tranche is not None and approved_tranche.finance_status == "approved":
        wanted = or_(wanted, and_(case_t.c.tranche == approved_tranche.number, case_t.c.status.in_(BEFORE_FINANCE)))
    query = (
        select(
            case_t.c.id,
            case_t.c.status,
            case_t.c.amount_fen,
            case_t.c.consent_acct_enc,
            case_t.c.consent_acct_masked,
            case_t.c.consent_acct_name,
            case_t.c.consent_bank_name,
            case_t.c.consent_bank_code,
            ent_t.c.name,
            ent_t.c.bank_account_enc,
            ent_t.c.bank_account_masked,
            ent_t.c.bank_account_name,
            ent_t.c.bank_name,
            ent_t.c.bank_code,
        )
        .join(ent_t, ent_t.c.id == case_t.c.enterprise_id)
        .where(case_t.c.campaign_id == ctx.campaign.id, wanted)
    )
    rows = session.execute(_selected(query, case_ids).order_by(case_t.c.id).limit(limit)).all()
    instructions, sent, missing = [], [], []
    config = ctx.config
    now = _now()
    for r in rows:
        if r.status != "approved":
            assert approved_tranche is not None
            (sent if (r.consent_acct_enc or r.bank_account_enc) else missing).append(
                finance_event(approved_tranche, r.id, r.status)
            )
        own = r.consent_acct_enc is not None
        enc = r.consent_acct_enc if own else r.bank_account_enc
        if not enc:
            missing.append(
                Event(
                    r.id,
                    "approved",
                    "no_account",
                    "no_account",
                    "no_account",
                    reason="企业未登记收款账户，待企业补充账户后拨付",
                )
            )
            continue
        voucher = voucher_no(case_id=r.id, attempt=1)
        instructions.append(
            {
                "voucher_no": voucher,
                "case_id": r.id,
                "attempt": 1,
                "adm_div_code": payer.adm_div_code,
                "st_year": payer.st_year,
                "pay_acct_no": config.payer.acct_no if config.payer else payer.pay_acct_no,
                "payee_acct_no_enc": enc,
                "payee_acct_no_masked": (r.consent_acct_masked if own else r.bank_account_masked) or "****",
                "payee_acct_name": (r.consent_acct_name if own else r.bank_account_name) or r.name,
                "payee_acct_bank_name": (r.consent_bank_name if own else r.bank_name) or "",
                "payee_acct_bank_no": (r.consent_bank_code if own else r.bank_code) or "",
                "pay_amt_fen": r.amount_fen,
                "pay_summary_code": config.pay_summary_code,
                "fund_source": config.fund_source or config.budget.sources[0].name,
                "status": "created",
                "paid_amt_fen": 0,
                "created_at": now,
            }
        )
        sent.append(Event(r.id, "approved", "paying", "paying:1", "payment_sent", data={"voucher_no": voucher}))
    _raw_insert(session, instr_t, instructions)
    record_events(session=session, events=sent)
    record_events(session=session, events=missing)
    return len(instructions), len(missing)


def unsent(
    *, session: Session, campaign_id: int, limit: int, case_ids: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """Instructions of the campaign created but not yet accepted by the treasury (attempt 1)."""
    query = (
        select(instr_t)
        .join(case_t, case_t.c.id == instr_t.c.case_id)
        .where(case_t.c.campaign_id == campaign_id, instr_t.c.attempt == 1, instr_t.c.status == "created")
    )
    return [dict(r) for r in session.execute(_selected(query, case_ids).order_by(instr_t.c.id).limit(limit)).mappings()]


def mark_accepted(*, session: Session, accepted: Sequence[tuple[str, str | None]]) -> None:
    """Instructions the treasury accepted (its reference comes again with the final result)."""
    vouchers = [v for v, _ in accepted]
    now = _now()
    for chunk in _chunks(vouchers):
        session.execute(
            update(instr_t)
            .where(instr_t.c.voucher_no.in_(chunk), instr_t.c.status == "created")
            .values(status="accepted", accepted_at=now)
        )


def accepted_vouchers(
    *, session: Session, campaign_id: int, limit: int, case_ids: Sequence[int] | None = None
) -> list[str]:
    query = (
        select(instr_t.c.voucher_no)
        .join(case_t, case_t.c.id == instr_t.c.case_id)
        .where(case_t.c.campaign_id == campaign_id, instr_t.c.attempt == 1, instr_t.c.status == "accepted")
    )
    return list(session.scalars(_selected(query, case_ids).order_by(instr_t.c.id).limit(limit)))


def store_results(*, session: Session, results: Sequence[Any]) -> int:
    """Final treasury results in bulk; a result already stored stays (first one wins)."""
    final = [r for r in results if r.Status in ("paid", "failed", "returned")]
    if not final:
        return 0
    pg = _postgres(session)
    mark = "%s" if pg else "?"

    def when(r: Any) -> Any:
        at = r.SettledAt or _now()
        return at if pg else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    sql = (
        f"UPDATE payment_instruction SET status = {mark}, paid_amt_fen = {mark}, fail_reason = {mark}, "
        f"treasury_ref = {mark}, settled_at = {mark} "
        f"WHERE voucher_no = {mark} AND status IN ('created', 'accepted')"
    )
    session.connection().exec_driver_sql(
        sql, [(r.Status, r.PaidAmt, r.Reason or None, r.TreasuryRef or None, when(r), r.VoucherNo) for r in final]
    )
    return len(final)


def settle_batch(
    *, session: Session, ctx: Context, limit: int, case_ids: Sequence[int] | None = None
) -> tuple[list[tuple[int, int]], list[tuple[int, str]]]:
    """Paying cases whose instruction is final: paid (budget committed, paid notice) or payment_failed
    (notice; the reservation stays for the correction loop). Returns ([(case, paid fen)], [(case, voucher)])."""
    query = (
        select(
            case_t.c.id,
            case_t.c.enterprise_id,
            instr_t.c.voucher_no,
            instr_t.c.status,
            instr_t.c.paid_amt_fen,
            instr_t.c.fail_reason,
            instr_t.c.payee_acct_no_masked,
        )
        .join(instr_t, and_(instr_t.c.case_id == case_t.c.id, instr_t.c.attempt == 1))
        .where(
            case_t.c.campaign_id == ctx.campaign.id,
            case_t.c.status == "paying",
            instr_t.c.status.in_(("paid", "failed", "returned")),
        )
    )
    rows = session.execute(_selected(query, case_ids).order_by(case_t.c.id).limit(limit)).all()
    paid = [r for r in rows if r.status == "paid"]
    failed = [r for r in rows if r.status != "paid"]
    _commit(session, [r.id for r in paid])
    paid_amount = (
        select(instr_t.c.paid_amt_fen).where(instr_t.c.case_id == case_t.c.id, instr_t.c.attempt == 1).scalar_subquery()
    )
    for chunk in _chunks([r.id for r in paid]):
        session.execute(update(case_t).where(case_t.c.id.in_(chunk)).values(paid_fen=paid_amount))
    if failed:
        session.execute(
            update(case_t).where(case_t.c.id == bindparam("cid")).values(outcome_reason=bindparam("why")),
            [{"cid": r.id, "why": r.fail_reason or "银行退回"} for r in failed],
        )
    record_events(
        session=session,
        events=[
            Event(
                r.id,
                "paying",
                "paid",
                "paid",
                "paid",
                reason="国库支付成功",
                actor="system:treasury",
                data={"voucher_no": r.voucher_no, "paid_amt_fen": r.paid_amt_fen},
            )
            for r in paid
        ]
        + [
            Event(
                r.id,
                "paying",
                "payment_failed",
                "payment_failed",
                "payment_failed",
                reason=r.fail_reason,
                actor="system:treasury",
                data={"voucher_no": r.voucher_no},
            )
            for r in failed
        ],
    )
    queue_notices(
        session=session,
        ctx=ctx,
        stage="paid",
        template="paid",
        rows=[
            (r.id, r.enterprise_id, _money(r.paid_amt_fen) | {"acct_tail": r.payee_acct_no_masked[-4:]}) for r in paid
        ],
    )
    queue_notices(
        session=session,
        ctx=ctx,
        stage="payment_failed",
        template="payment_failed",
        rows=[(r.id, r.enterprise_id, {"reason": r.fail_reason or "银行退回", "officer": ctx.officer}) for r in failed],
    )
    return [(r.id, r.paid_amt_fen) for r in paid], [(r.id, r.voucher_no) for r in failed]


def open_payments(*, session: Session, campaign_id: int, case_ids: Sequence[int] | None = None) -> int:
    query = (
        select(func.count())
        .select_from(case_t)
        .where(case_t.c.campaign_id == campaign_id, case_t.c.status.in_(("approved", "paying")))
    )
    return int(session.scalar(_selected(query, case_ids)) or 0)


# ---------------------------------------------------------------------------------------------- objections


def file_objection(*, session: Session, case: Case, objector_name: str, reason: str, actor: str) -> None:
    """An objection during publicity takes the case off the wave until a department rules on it."""
    from db.repositories import cases as cases_repo

    cases_repo.record(
        session=session,
        case=case,
        key="objection",
        kind="objection_filed",
        actor=actor,
        to_status="objected",
        reason=f"收到实名异议（{objector_name[0]}**）：{reason}",
    )


def rule_objection(*, session: Session, ctx: Context, case: Case, upheld: bool, actor: str, reason: str) -> str:
    """Upheld: the case is rejected and its budget released. Dismissed: it rejoins its wave, or, when the
    wave's finance decision is already made, follows that decision. Returns the case's new status."""
    from db.repositories import cases as cases_repo

    if case.status != "objected":
        return case.status
    row = tranche(session=session, campaign_id=ctx.campaign.id, number=case.tranche or 0)
    if upheld:
        to = "rejected"
    elif row is None or row.finance_status == "pending":
        to = "publicity"
    else:
        to = "approved" if row.finance_status == "approved" else "rejected"
    case.outcome_reason = reason if to == "rejected" else None
    cases_repo.record(
        session=session,
        case=case,
        key="objection_ruling",
        kind="objection_upheld" if upheld else "objection_dismissed",
        actor=actor,
        to_status=to,
        reason=reason,
    )
    if to == "rejected":
        _release(session, [case.id])
    return to


# ---------------------------------------------------------------------------------------------- progress


def progress_counts(*, session: Session, campaign_id: int) -> dict[str, int]:
    """Cases of the campaign by status, with the reserved and paid amounts (the database's answer)."""
    rows = session.execute(
        select(
            case_t.c.status,
            func.count(),
            func.coalesce(func.sum(case_t.c.amount_fen), 0),
            func.coalesce(func.sum(case_t.c.paid_fen), 0),
        )
        .where(case_t.c.campaign_id == campaign_id)
        .group_by(case_t.c.status)
    ).all()
    by = {status: (int(n), int(amount), int(paid)) for status, n, amount, paid in rows}

    def n(*statuses: str) -> int:
        return sum(by.get(s, (0, 0, 0))[0] for s in statuses)

    reserved_statuses = [s for s in by if s not in ("matched", "budget_exhausted")]
    first = (
        select(instr_t.c.status, func.count())
        .join(case_t, case_t.c.id == instr_t.c.case_id)
        .where(case_t.c.campaign_id == campaign_id, instr_t.c.attempt == 1)
        .group_by(instr_t.c.status)
    )
    by_instruction = {status: int(count) for status, count in session.execute(first)}
    instructed = sum(by_instruction.values())
    # a failed first attempt counts as failed whatever its correction loop has done since
    failed = by_instruction.get("failed", 0) + by_instruction.get("returned", 0) + n("no_account")
    return {
        "matched": sum(v[0] for v in by.values()),
        "reserved": n(*reserved_statuses),
        "exhausted": n("budget_exhausted"),
        "consent_pending": n("consent_pending"),
        "lapsed": n("lapsed", "declined"),
        "awaiting_finance": n(*BEFORE_FINANCE),
        "objected": n("objected"),
        "instructed": instructed,
        "paid": n("paid"),
        "failed": failed,
        "amount_reserved_fen": sum(by.get(s, (0, 0, 0))[1] for s in reserved_statuses),
        "paid_fen": sum(v[2] for v in by.values()),
    }


def case_status_counts(*, session: Session, campaign_id: int) -> dict[str, int]:
    rows = session.execute(
        select(case_t.c.status, func.count()).where(case_t.c.campaign_id == campaign_id).group_by(case_t.c.status)
    )
    return {s: int(n) for s, n in rows}


def cases_page(*, session: Session, campaign_id: int, status: str | None = None, limit: int = 50) -> list[Any]:
    query = (
        select(case_t.c.id, case_t.c.status, case_t.c.amount_fen, case_t.c.paid_fen, ent_t.c.uscc, ent_t.c.name)
        .join(ent_t, ent_t.c.id == case_t.c.enterprise_id)
        .where(case_t.c.campaign_id == campaign_id)
        .order_by(case_t.c.id)
        .limit(limit)
    )
    if status:
        query = query.where(case_t.c.status == status)
    return list(session.execute(query).all())
