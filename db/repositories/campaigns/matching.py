"""Matching in one INSERT … SELECT: the next slice of the archive becomes cases with frozen evidence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, func, insert, literal, select
from sqlalchemy.orm import Session

from db import bulk
from db.repositories import cases
from db.repositories.campaigns.common import case_t, ent_t, event, now
from db.repositories.campaigns.registry import Context, frozen_fields, matchable
from db.repositories.campaigns.reserving import plan_budget, reserve_rows
from schemas.fields import FIELDS, FieldType
from schemas.vocabulary import CampaignKind, CaseStatus, EventKind, FundItemMode, SystemActor


def _json_object(session: Session, pairs: Sequence[tuple[str, Any]]) -> Any:
    args: list[Any] = []
    for key, value in pairs:
        args += [literal(key, String), value]
    if bulk.is_postgres(session):
        return func.jsonb_build_object(*args)
    return func.json_object(*args)


def _frozen_value(session: Session, name: str) -> Any:
    column = ent_t.c[FIELDS[name].column]
    if FIELDS[name].type is FieldType.TAGS and not bulk.is_postgres(session):
        return func.json(column)  # SQLite keeps JSON as text: embed it as JSON, not as a string
    return column


def _frozen_origin(session: Session, name: str) -> Any:
    """The source, source date and import of the enterprise's value of `name` (enterprise.provenance, issue 18)."""
    if bulk.is_postgres(session):
        return ent_t.c.provenance.op("->")(literal(name, String))
    return func.json(func.json_extract(ent_t.c.provenance, f'$."{name}"'))


@dataclass
class MatchOut:
    """What one match batch did: the new cases, where the next batch starts, and the reservations made at once."""

    case_ids: list[int]
    last_enterprise_id: int
    done: bool
    reserved: int = 0
    exhausted: int = 0


def match_batch(
    *, session: Session, ctx: Context, after_enterprise_id: int, limit: int, beat: bulk.Beat = bulk.no_beat
) -> MatchOut:
    """Create the cases of the next `limit` enterprises (by id) the conditions select, with frozen evidence.

    One INSERT … SELECT; an enterprise that already has a case of this item (any campaign, any mode) is
    skipped, so a fund item never pays an enterprise twice. When the budget plan allows (enough budget, or pro
    rata), the new cases are reserved in the same transaction.
    """
    campaign, item, config = ctx.campaign, ctx.item, ctx.config
    if campaign.kind == CampaignKind.REEVALUATION:
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
    # Reserved at once (the usual plan): the rows are inserted as reserved, so no case row is written twice (each
    # UPDATE of a case also runs the cockpit's summary triggers); the few the budget cannot hold move on below.
    inserted = CaseStatus.MATCHED if ratio is None else CaseStatus.RESERVED
    amount, where = matchable(ctx)
    values = _json_object(session, [(name, _frozen_value(session, name)) for name in frozen_fields(config)])
    decided = now()
    evidence = _json_object(
        session,
        [
            ("kind", literal(FundItemMode.NO_APPLICATION.value, String)),
            ("campaign_id", literal(campaign.id)),
            ("fund_item_version", literal(campaign.fund_item_version)),
            ("decided_at", literal(decided.isoformat(), String)),
            ("amount_full_fen", amount),
            ("values", values),
            ("provenance", _json_object(session, [(n, _frozen_origin(session, n)) for n in frozen_fields(config)])),
        ],
    )
    source = select(
        literal(item.id),
        literal(campaign.fund_item_version),
        ent_t.c.id,
        literal(FundItemMode.NO_APPLICATION.value, String),
        literal(inserted.value, String),
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
        event(
            cid,
            None,
            CaseStatus.MATCHED,
            "matched",
            EventKind.MATCHED,
            reason="企业数据比对符合申报条件（免申即享，无需申报）",
            data={"amount_fen": int(amt), "campaign_id": campaign.id},
            actor=SystemActor.RULES,
        )
        for cid, amt in rows
    ]
    reserved = exhausted = 0
    moved: set[int] = set()
    if ratio is not None:  # the budget plan allows reserving at once: one pass, two events per case
        more, reserved, exhausted, _ = reserve_rows(
            session, ctx, [(c, int(a)) for c, a in rows], ratio, stop_in_order=False, stopped=False, beat=beat
        )
        events += more
        moved = {e.case_id for e in more if e.to_status != inserted}
    # The chain as before (matched, then reserved or budget_exhausted); only the cases not inserted with their last
    # status are updated.
    cases.record_many(session=session, beat=beat, events=[e for e in events if e.case_id not in moved], fresh=True,
                      move=False)  # fmt: skip
    cases.record_many(session=session, beat=beat, events=[e for e in events if e.case_id in moved], fresh=True)
    return MatchOut([cid for cid, _ in rows], int(high), done, reserved, exhausted)
