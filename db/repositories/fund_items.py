"""Fund items, their versions, departments and policies.

A version's configuration is immutable once frozen (listed): `save_draft` refuses it, and an ORM hook
refuses any flush that would change or delete a frozen version, whoever holds the session.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, event, func, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import BudgetLine, Department, FundItem, FundItemVersion, Policy
from rules.money import format_yuan
from schemas.vocabulary import DepartmentKind, FundItemStatus


class FrozenVersion(Exception):
    """A frozen (listed) fund item version was about to change."""

    def __init__(self, fund_item_id: int, number: int) -> None:
        super().__init__(f"资金事项 {fund_item_id} 的第 {number} 版已上架冻结，不可修改；修改请形成新版本")
        self.fund_item_id = fund_item_id
        self.number = number


class DuplicateCode(Exception):
    """Another fund item took the code first."""


class BudgetBelowUsed(Exception):
    """A funding source's new total is below what is already reserved or paid from it."""

    def __init__(self, source: str, used_fen: int, total_fen: int) -> None:
        super().__init__(f"资金来源“{source}”已预留及拨付 {format_yuan(used_fen)}，新额度 {format_yuan(total_fen)} 不足")
        self.source = source
        self.used_fen = used_fen
        self.total_fen = total_fen


def _stored_frozen(connection: Connection, target: FundItemVersion) -> bool:
    """The frozen flag as stored: the object's own may be changed or expired, the row is the truth."""
    return bool(connection.scalar(select(FundItemVersion.frozen).where(FundItemVersion.id == target.id)))


@event.listens_for(FundItemVersion, "before_update")
def _refuse_frozen_update(_mapper: Any, connection: Connection, target: FundItemVersion) -> None:
    if not _stored_frozen(connection, target):
        return
    state = inspect(target)
    for name in ("config", "frozen", "version", "fund_item_id"):
        history = state.attrs[name].history
        # An assignment of an equal value is no change; an unknown old value counts as one.
        if history.added and list(history.added) != list(history.deleted):
            raise FrozenVersion(target.fund_item_id, target.version)


@event.listens_for(FundItemVersion, "before_delete")
def _refuse_frozen_delete(_mapper: Any, connection: Connection, target: FundItemVersion) -> None:
    if _stored_frozen(connection, target):
        raise FrozenVersion(target.fund_item_id, target.version)


# ---------------------------------------------------------------------------------------------- reads


def get_by_code(*, session: Session, code: str, lock: bool = False) -> FundItem | None:
    """The fund item; `lock` holds its row (FOR UPDATE on PostgreSQL) so concurrent edits of it queue up."""
    query = select(FundItem).where(FundItem.code == code)
    if lock:
        query = query.with_for_update()
    return session.scalar(query)


def get(*, session: Session, fund_item_id: int) -> FundItem | None:
    return session.get(FundItem, fund_item_id)


def version(*, session: Session, fund_item_id: int, number: int) -> FundItemVersion | None:
    return session.scalar(
        select(FundItemVersion).where(FundItemVersion.fund_item_id == fund_item_id, FundItemVersion.version == number)
    )


def versions(*, session: Session, fund_item_id: int) -> list[FundItemVersion]:
    return list(
        session.scalars(
            select(FundItemVersion)
            .where(FundItemVersion.fund_item_id == fund_item_id)
            .order_by(FundItemVersion.version)
        )
    )


def search(
    *,
    session: Session,
    status: str | None = None,
    mode: str | None = None,
    department_id: int | None = None,
) -> list[FundItem]:
    """Fund items filtered by status, mode and owning department, oldest first."""
    query = select(FundItem).order_by(FundItem.id)
    if status:
        query = query.where(FundItem.status == status)
    if mode:
        query = query.where(FundItem.mode == mode)
    if department_id is not None:
        query = query.where(FundItem.department_id == department_id)
    return list(session.scalars(query))


def count(*, session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(FundItem)) or 0)


# ---------------------------------------------------------------------------------------------- departments, policies


def add_department(*, session: Session, code: str, name: str, region_code: str, kind: str = DepartmentKind.POLICY) -> Department:
    dept = Department(code=code, name=name, region_code=region_code, kind=kind)
    session.add(dept)
    session.flush()
    return dept


def department_by_code(*, session: Session, code: str) -> Department | None:
    return session.scalar(select(Department).where(Department.code == code))


def department(*, session: Session, department_id: int) -> Department | None:
    return session.get(Department, department_id)


def departments_by_codes(*, session: Session, codes: Iterable[str]) -> dict[str, Department]:
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    return {d.code: d for d in session.scalars(select(Department).where(Department.code.in_(wanted)))}


def add_policy(*, session: Session, **fields: Any) -> Policy:
    policy = Policy(**fields)
    session.add(policy)
    session.flush()
    return policy


def policy(*, session: Session, policy_id: int) -> Policy | None:
    return session.get(Policy, policy_id)


def policy_users(*, session: Session, policy_id: int) -> list[int]:
    """Ids of the fund items that implement the policy."""
    return list(session.scalars(select(FundItem.id).where(FundItem.policy_id == policy_id).order_by(FundItem.id)))


def policy_by_doc_number(*, session: Session, doc_number: str) -> Policy | None:
    return session.scalar(select(Policy).where(Policy.doc_number == doc_number))


# ---------------------------------------------------------------------------------------------- lifecycle


def add_listed(
    *,
    session: Session,
    code: str,
    policy_id: int,
    department_id: int,
    name: str,
    mode: str,
    config: dict[str, Any],
) -> FundItem:
    """A fund item listed (上架) with its first configuration frozen."""
    item = FundItem(
        code=code,
        policy_id=policy_id,
        department_id=department_id,
        name=name,
        mode=mode,
        status=FundItemStatus.LISTED,
        current_version=1,
        listed_version=1,
    )
    session.add(item)
    session.flush()
    session.add(FundItemVersion(fund_item_id=item.id, version=1, config=config, frozen=True))
    session.flush()
    return item


def create_draft(
    *,
    session: Session,
    code: str,
    policy_id: int,
    department_id: int,
    name: str,
    mode: str,
    config: dict[str, Any],
) -> FundItem:
    """A new fund item in draft with version 1, not frozen."""
    item = FundItem(
        code=code,
        policy_id=policy_id,
        department_id=department_id,
        name=name,
        mode=mode,
        status=FundItemStatus.DRAFT,
        current_version=1,
        listed_version=None,
    )
    try:
        with session.begin_nested():  # a concurrent creation with the same code loses here, not at commit
            session.add(item)
            session.flush()
    except IntegrityError as exc:
        raise DuplicateCode(code) from exc
    session.add(FundItemVersion(fund_item_id=item.id, version=1, config=config, frozen=False))
    session.flush()
    return item


def current(*, session: Session, item: FundItem) -> FundItemVersion:
    found = version(session=session, fund_item_id=item.id, number=item.current_version)
    assert found is not None, f"fund item {item.code} lacks its version {item.current_version}"
    return found


def update_config(*, session: Session, draft: FundItemVersion, config: dict[str, Any]) -> FundItemVersion:
    """Replace the configuration of an unfrozen version; a frozen one raises FrozenVersion."""
    if draft.frozen:
        raise FrozenVersion(draft.fund_item_id, draft.version)
    draft.config = config
    session.flush()
    return draft


def save_draft(*, session: Session, item: FundItem, config: dict[str, Any]) -> tuple[FundItemVersion, bool]:
    """Store an edited configuration: replaces the unfrozen latest version, or adds version N+1 after a frozen one.

    Returns the draft version and whether it is new. The listed version is never touched, so running
    cases keep reading the configuration they started with.
    """
    latest = current(session=session, item=item)
    if not latest.frozen:
        return update_config(session=session, draft=latest, config=config), False
    draft = FundItemVersion(fund_item_id=item.id, version=latest.version + 1, config=config, frozen=False)
    session.add(draft)
    item.current_version = draft.version
    session.flush()
    return draft, True


def set_status(*, session: Session, item: FundItem, status: str) -> FundItem:
    item.status = status
    session.flush()
    return item


def freeze_and_list(*, session: Session, item: FundItem, number: int) -> FundItemVersion:
    """Freeze version `number` and make it the listed version (上架); freezing twice is harmless."""
    listed = version(session=session, fund_item_id=item.id, number=number)
    assert listed is not None
    listed.frozen = True
    item.listed_version = number
    item.status = FundItemStatus.LISTED
    session.flush()
    return listed


def budget_lines(*, session: Session, fund_item_id: int) -> list[BudgetLine]:
    return list(
        session.scalars(select(BudgetLine).where(BudgetLine.fund_item_id == fund_item_id).order_by(BudgetLine.id))
    )


def sync_budget_lines(
    *, session: Session, fund_item_id: int, budget_year: int, sources: Sequence[tuple[str, int]]
) -> list[str]:
    """Make the budget ledger carry each (source, total): add missing lines, change totals of existing ones.

    A total may not fall below what is reserved and paid from the line (BudgetBelowUsed); the conditional
    UPDATE and the table's CHECK make that safe against concurrent reservations. Returns what changed, in
    Chinese, for the caller's response; a line whose source left the configuration is kept as it is.
    """
    notes: list[str] = []
    existing = {line.source: line for line in budget_lines(session=session, fund_item_id=fund_item_id)}
    for source, total in sources:
        line = existing.get(source)
        if line is None:
            session.add(
                BudgetLine(
                    fund_item_id=fund_item_id,
                    source=source,
                    budget_year=budget_year,
                    total_fen=total,
                    reserved_fen=0,
                    committed_fen=0,
                )
            )
            notes.append(f"已建立预算额度：{source} {format_yuan(total)}")
            continue
        before = line.total_fen
        if before == total:
            continue
        result = session.execute(
            update(BudgetLine)
            .where(BudgetLine.id == line.id, BudgetLine.reserved_fen + BudgetLine.committed_fen <= total)
            .values(total_fen=total)
            .execution_options(synchronize_session=False)
        )
        session.refresh(line)
        if result.rowcount != 1:
            raise BudgetBelowUsed(source, line.reserved_fen + line.committed_fen, total)
        notes.append(f"预算额度已调整：{source} 由 {format_yuan(before)} 调整为 {format_yuan(total)}")
    for source in sorted(set(existing) - {s for s, _ in sources}):
        notes.append(f"资金来源“{source}”已不在本版本中，原预算额度保留不变")
    session.flush()
    return notes


def search_scoped(
    *,
    session: Session,
    condition: ColumnElement[bool],
    status: str | None = None,
    mode: str | None = None,
    department_id: int | None = None,
) -> list[FundItem]:
    """Fund items within a scope condition (services/scope.py), filtered as `search` does, oldest first."""
    query = select(FundItem).where(condition).order_by(FundItem.id)
    if status:
        query = query.where(FundItem.status == status)
    if mode:
        query = query.where(FundItem.mode == mode)
    if department_id is not None:
        query = query.where(FundItem.department_id == department_id)
    return list(session.scalars(query))


def budget_total(*, session: Session, fund_item_id: int) -> int | None:
    """The sum of the item's budget lines, None when it has none."""
    total = session.scalar(select(func.sum(BudgetLine.total_fen)).where(BudgetLine.fund_item_id == fund_item_id))
    return None if total is None else int(total)


# -- the enterprise side: listed items and their pinned configurations -------------------------------------------


def listed_items(*, session: Session) -> list[Any]:
    """Every listed fund item as a light row (id, code, name, mode, listed_version, current_version,
    department_name), in id order: policies for an enterprise (no ORM objects: a page reads a thousand)."""
    query = (
        select(
            FundItem.id,
            FundItem.code,
            FundItem.name,
            FundItem.mode,
            FundItem.listed_version,
            FundItem.current_version,
            Department.name.label("department_name"),
        )
        .join(Department, Department.id == FundItem.department_id)
        .where(FundItem.status == FundItemStatus.LISTED)
        .order_by(FundItem.id)
    )
    return list(session.execute(query).all())


def configs_of(*, session: Session, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], dict[str, Any]]:
    """The stored configurations of (fund item id, version) pairs, in one query."""
    wanted = set(keys)
    if not wanted:
        return {}
    ids = sorted({item_id for item_id, _ in wanted})
    query = select(FundItemVersion.fund_item_id, FundItemVersion.version, FundItemVersion.config).where(
        FundItemVersion.fund_item_id.in_(ids)
    )
    return {(i, v): c for i, v, c in session.execute(query).all() if (i, v) in wanted}


def database_key(*, session: Session) -> str:
    """Which database the session reads (caches of frozen versions are per database: ids repeat across databases)."""
    return session.get_bind().url.render_as_string(hide_password=True)
