"""Campaign rows: registering a listing or a re-evaluation, phases, and the frozen context a batch works in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session

from db.models import Campaign, Case, Enterprise, FundItem, FundItemVersion
from db.repositories.campaigns.common import case_t, ent_t, now
from db.sql.amounts import amount_expr
from db.sql.conditions import compile_where
from schemas.conditions import AllOf, AnyOf, Leaf, NotOf, parse_condition
from schemas.fields import FIELDS
from schemas.fund_items import FundItemConfig
from schemas.standards import parse_standard
from schemas.vocabulary import CampaignKind, FundItemMode, FundItemStatus


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
        workflow_id=wid,
        fund_item_id=item.id,
        fund_item_version=version,
        kind=CampaignKind.LISTING,
        phase="pending",
        actor=actor,
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
            Campaign.kind == CampaignKind.REEVALUATION,
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
        kind=CampaignKind.REEVALUATION,
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
    items = session.scalars(
        select(FundItem).where(FundItem.mode == FundItemMode.NO_APPLICATION, FundItem.status == FundItemStatus.LISTED)
    )
    for item in items:
        config = item_config(session=session, item=item)
        matches = session.scalar(
            select(Enterprise.id).where(Enterprise.id == enterprise_id, compile_where(condition_tree(config)))
        )
        if matches:
            campaign = register_reevaluation(session=session, item=item, enterprise_id=enterprise_id, actor=actor)
            if campaign:
                out.append(campaign)
    return out


def pending(*, session: Session, limit: int = 50) -> list[Campaign]:
    """Campaigns registered but not yet started (the starter loop picks them up)."""
    return list(session.scalars(select(Campaign).where(Campaign.phase == "pending").order_by(Campaign.id).limit(limit)))


def mark_started(*, session: Session, campaign_id: int) -> None:
    """pending → matching, once."""
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.phase == "pending")
        .values(phase="matching", started_at=now())
    )


def get(*, session: Session, campaign_id: int) -> Campaign | None:
    """The campaign row."""
    return session.get(Campaign, campaign_id)


def for_item(*, session: Session, fund_item_id: int) -> list[Campaign]:
    """Every campaign of a fund item, oldest first."""
    return list(session.scalars(select(Campaign).where(Campaign.fund_item_id == fund_item_id).order_by(Campaign.id)))


def set_phase(*, session: Session, campaign_id: int, phase: str) -> None:
    """Record the phase the workflow reached; `done` also stamps finished_at."""
    values: dict[str, Any] = {"phase": phase}
    if phase == "done":
        values["finished_at"] = now()
    session.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values))


def item_config(*, session: Session, item: FundItem, version: int | None = None) -> FundItemConfig:
    """The frozen configuration of a version of the fund item (by default the listed one)."""
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
    """The campaign, its fund item and frozen configuration; LookupError when there is no such campaign."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise LookupError(f"campaign {campaign_id} not found")
    item = session.get(FundItem, campaign.fund_item_id)
    assert item is not None
    return Context(campaign, item, item_config(session=session, item=item, version=campaign.fund_item_version))


def condition_tree(config: FundItemConfig) -> AllOf | AnyOf | NotOf | Leaf:
    """The eligibility conditions of a configuration as a parsed tree."""
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
    names = _leaf_fields(condition_tree(config)) | _standard_fields(
        parse_standard(config.standard.model_dump(mode="json"))
    )
    shortfall = config.no_application.shortfall if config.no_application else None
    for key in shortfall.order_by if shortfall else []:
        if key.key in FIELDS:
            names.add(key.key)
    return sorted(names)


def matchable(ctx: Context) -> tuple[Any, Any]:
    """(amount expression, WHERE clause) over `enterprise` for the campaign's enterprises without a case yet."""
    campaign, config = ctx.campaign, ctx.config
    amount = amount_expr(parse_standard(config.standard.model_dump(mode="json")))
    taken = exists().where(case_t.c.fund_item_id == ctx.item.id, case_t.c.enterprise_id == ent_t.c.id)
    where = and_(compile_where(condition_tree(config)), amount > 0, ~taken)
    if campaign.kind == CampaignKind.REEVALUATION:
        where = and_(where, ent_t.c.id == campaign.enterprise_id)
    return amount, where
