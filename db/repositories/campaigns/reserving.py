"""Budget for a campaign: the ratio fixed before matching, and reservations placed on the lines in bulk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from db import bulk
from db.models import Campaign
from db.repositories import budget, cases
from db.repositories.campaigns.common import case_t, ent_t, event
from db.repositories.campaigns.registry import Context, matchable
from schemas.fields import FIELDS
from schemas.vocabulary import CampaignKind, CaseStatus, EventKind, SystemActor


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
    if campaign.kind == CampaignKind.REEVALUATION and pro_rata:
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
    amount, where = matchable(ctx)
    total = int(session.scalar(select(func.coalesce(func.sum(amount), 0)).where(where)) or 0)
    available = budget.totals(session=session, fund_item_id=campaign.fund_item_id)["available_fen"]
    ratio = (1, 1) if total <= available else (available, total) if pro_rata else (0, 0)
    campaign.ratio_num, campaign.ratio_den = ratio
    session.flush()
    return ratio if ratio[1] else None


def reserve_rows(
    session: Session,
    ctx: Context,
    rows: Sequence[tuple[int, int]],
    ratio: tuple[int, int],
    *,
    stop_in_order: bool,
    stopped: bool,
    beat: bulk.Beat = bulk.no_beat,
) -> tuple[list[cases.NewEvent], int, int, int]:
    """Reserve (case, full amount) rows on the first line with room, cut by the ratio (rounded down to the fen,
    so the sum never exceeds the budget). stop_in_order: the first that does not fit stops the rest. Returns
    (events, reserved, exhausted, amount)."""
    num, den = ratio
    lines = budget.locked_lines(session=session, fund_item_id=ctx.campaign.fund_item_id)
    room = {line.id: line.total_fen - line.reserved_fen - line.committed_fen for line in lines}
    entries: list[tuple[int, int, int]] = []
    events: list[cases.NewEvent] = []
    amounts: list[dict[str, int]] = []
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
        total += amount
        entries.append((line_id, cid, amount))
        if amount == full:
            events.append(
                event(
                    cid,
                    CaseStatus.MATCHED,
                    CaseStatus.RESERVED,
                    "reserve",
                    EventKind.BUDGET_RESERVED,
                    data={"amount_fen": amount},
                )
            )
        else:
            amounts.append({"cid": cid, "amt": amount})
            events.append(
                event(
                    cid,
                    CaseStatus.MATCHED,
                    CaseStatus.RESERVED,
                    "reserve",
                    EventKind.BUDGET_RESERVED,
                    reason=f"按比例核减：核定 {full} 分 × {num}/{den}",
                    data={"amount_fen": amount, "amount_full_fen": full, "ratio": f"{num}/{den}"},
                )
            )
    budget.reserve_many(session=session, beat=beat, reservations=entries)
    if amounts:
        session.execute(
            update(case_t).where(case_t.c.id == bindparam("cid")).values(amount_fen=bindparam("amt")), amounts
        )
    words = "按规定的兑付顺序，预算额度已用完" if stop_in_order else "预算额度不足，无法预留"
    events += [
        event(
            cid,
            CaseStatus.MATCHED,
            CaseStatus.BUDGET_EXHAUSTED,
            "reserve",
            EventKind.BUDGET_EXHAUSTED,
            reason=f"预算不足未能兑付：{words}",
            actor=SystemActor.BUDGET,
        )
        for cid in exhausted
    ]
    for chunk in bulk.chunks(exhausted):
        session.execute(update(case_t).where(case_t.c.id.in_(chunk)).values(outcome_reason="预算额度已用完，未能兑付"))
    return events, len(entries), len(exhausted), total


def stated_order(session: Session, ctx: Context) -> list[Any]:
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
    if bulk.is_postgres(session):
        uscc = uscc.collate("C")
    return [*terms, uscc.asc()]


def reserve_batch(
    *, session: Session, ctx: Context, limit: int, beat: bulk.Beat = bulk.no_beat
) -> tuple[int, int, int]:
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
        .where(case_t.c.campaign_id == campaign.id, case_t.c.status == CaseStatus.MATCHED)
        .order_by(*stated_order(session, ctx))
        .limit(limit)
    ).all()
    if not rows:
        return 0, 0, 0
    stopped = stop_in_order and bool(
        session.scalar(
            select(case_t.c.id)
            .where(case_t.c.campaign_id == campaign.id, case_t.c.status == CaseStatus.BUDGET_EXHAUSTED)
            .limit(1)
        )
    )
    events, reserved, exhausted, total = reserve_rows(
        session, ctx, [(cid, amt) for cid, amt in rows], ratio, stop_in_order=stop_in_order, stopped=stopped, beat=beat
    )
    cases.record_many(session=session, beat=beat, events=events)
    return reserved, exhausted, total
