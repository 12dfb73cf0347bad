"""Archive imports and value history in bulk SQL: current values by USCC, set-based updates of the enterprise rows,
history rows, "as of" reads, and the re-matching of changed enterprises against listed items."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, exists, false, func, not_, or_, select
from sqlalchemy.orm import Session

from db import bulk
from db.models import (
    Alert,
    ArchiveImport,
    ArchivePull,
    ArchiveValue,
    Campaign,
    Case,
    Enterprise,
    FundItem,
    FundItemVersion,
    TagRule,
)
from db.repositories.campaigns.registry import condition_tree, register_reevaluation
from db.sql.conditions import compile_where
from schemas.conditions import Leaf, NotOf
from schemas.fund_items import FundItemConfig
from schemas.vocabulary import (
    AlertKind,
    AlertStatus,
    CampaignKind,
    CaseStatus,
    FundItemMode,
    FundItemStatus,
    ImportStatus,
    PullStatus,
    TagRuleKind,
)

JSON_FIELDS = frozenset({"tags", "rule_tags"})


def find_succeeded(*, session: Session, source: str, content_hash: str) -> ArchiveImport | None:
    """The earlier successful import of the same file for the same source, if any (re-import is a no-op)."""
    stmt = select(ArchiveImport).where(
        ArchiveImport.source == source,
        ArchiveImport.content_hash == content_hash,
        ArchiveImport.status == ImportStatus.SUCCEEDED,
    )
    return session.scalar(stmt.order_by(ArchiveImport.id).limit(1))


def add_import(*, session: Session, **values: Any) -> ArchiveImport:
    row = ArchiveImport(**values)
    session.add(row)
    session.flush()
    return row


def get_import(*, session: Session, import_id: int) -> ArchiveImport | None:
    return session.get(ArchiveImport, import_id)


def list_imports(*, session: Session, limit: int = 50) -> list[ArchiveImport]:
    return list(session.scalars(select(ArchiveImport).order_by(ArchiveImport.id.desc()).limit(limit)))


FULL_SCAN_AT = 20_000


def prepare_import(*, session: Session) -> None:
    """Before a large import: on SQLite, a page cache of up to 128 MB for this connection, so the changed pages of
    a 100,000-row import stay in memory until the commit instead of spilling to the WAL mid-transaction."""
    if not bulk.is_postgres(session):
        session.connection().exec_driver_sql("PRAGMA cache_size=-131072")


def current(*, session: Session, usccs: Sequence[str], fields: Sequence[str]) -> dict[str, tuple[int, dict[str, Any]]]:
    """uscc → (enterprise id, {field: current value}) for the registered ones among `usccs`."""
    cols = [getattr(Enterprise, f) for f in fields]
    out: dict[str, tuple[int, dict[str, Any]]] = {}
    if len(usccs) >= FULL_SCAN_AT:
        # A file about a large part of the archive: one scan costs less than many IN lists of bound USCCs.
        wanted = set(usccs)
        for row in session.execute(select(Enterprise.uscc, Enterprise.id, *cols)):
            if row[0] in wanted:
                out[row[0]] = (row[1], dict(zip(fields, row[2:], strict=True)))
        return out
    for chunk in bulk.chunks(list(usccs)):
        for row in session.execute(select(Enterprise.uscc, Enterprise.id, *cols).where(Enterprise.uscc.in_(chunk))):
            out[row[0]] = (row[1], dict(zip(fields, row[2:], strict=True)))
    return out


def _stored(pg: bool, field: str, value: Any) -> Any:
    """A value as the DBAPI stores it in the enterprise column (JSON as text, dates as ISO text on SQLite)."""
    if type(value) is int:
        return value
    if field in JSON_FIELDS:
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, date) and not pg:
        return value.isoformat()
    return value


def provenance_patch(field_names: Iterable[str], origin: dict[str, Any]) -> str:
    """The JSON merged into `enterprise.provenance` for values of `field_names` from one origin
    ({source, source_date, import_id | archive_change_id}): field → origin."""
    one = json.dumps(origin, ensure_ascii=False, default=str)
    return "{" + ",".join(f'"{n}":{one}' for n in field_names) + "}"


def update_enterprises(
    *,
    session: Session,
    updates: Sequence[tuple[int, dict[str, Any]]],
    moment: datetime,
    beat: bulk.Beat = bulk.no_beat,
    provenance: Sequence[str] | None = None,
) -> None:
    """Set the new values on the enterprise rows: one executemany UPDATE per set of changed fields. `provenance`
    (one JSON patch per update, see provenance_patch) is merged into each row's `provenance` in the same UPDATE."""
    pg = bulk.is_postgres(session)
    mark = "%s" if pg else "?"
    groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    stamp = moment if pg else bulk.sqlite_moment(moment)
    for i, (enterprise_id, values) in enumerate(updates):
        names = tuple(sorted(values))
        params = (*[_stored(pg, n, values[n]) for n in names], stamp, enterprise_id)
        if provenance is not None:
            params = (provenance[i], *params)
        groups.setdefault(names, []).append(params)
    connection = session.connection()
    merge = []
    if provenance is not None:
        merge = [
            f"\"provenance\" = coalesce(\"provenance\", '{{}}'::jsonb) || {mark}::jsonb"
            if pg
            else f"\"provenance\" = json_patch(coalesce(\"provenance\", '{{}}'), {mark})"
        ]
    for names, params in groups.items():
        sets = [f'"{n}" = {mark}::jsonb' if (pg and n in JSON_FIELDS) else f'"{n}" = {mark}' for n in names]
        sql = f'UPDATE "enterprise" SET {", ".join([*merge, *sets])}, "updated_at" = {mark} WHERE "id" = {mark}'
        for chunk in bulk.chunks(params):
            connection.exec_driver_sql(sql, list(chunk))
            beat()


def merge_provenance(*, session: Session, enterprise_id: int, patch: str) -> None:
    """Merge one provenance patch into an enterprise row (an administrator's edit)."""
    update_enterprises(session=session, updates=[(enterprise_id, {})], moment=datetime.now(UTC), provenance=[patch])


VALUE_COLUMNS = ("enterprise_id", "field", "value", "source", "source_date", "import_id", "archive_change_id",
                 "recorded_at")  # fmt: skip


def _json_text(value: Any) -> str:
    # ints are most values: their JSON text is their decimal text, without the encoder's overhead
    return str(value) if type(value) is int else json.dumps(value, ensure_ascii=False)


def add_values(*, session: Session, rows: Sequence[dict[str, Any]], beat: bulk.Beat = bulk.no_beat) -> None:
    """History rows (archive_value) in bulk: one executemany, the row tuples built here because the generic
    converter of db/bulk.py is most of the cost at a few hundred thousand values."""
    if not rows:
        return
    pg = bulk.is_postgres(session)
    marks = ", ".join(("%s::jsonb" if pg and c == "value" else "%s") if pg else "?" for c in VALUE_COLUMNS)
    sql = f'INSERT INTO "archive_value" ({", ".join(VALUE_COLUMNS)}) VALUES ({marks})'
    moment = (lambda m: m) if pg else bulk.sqlite_moment
    day = (lambda d: d) if pg else (lambda d: d.isoformat())
    stamps: dict[Any, Any] = {}
    connection = session.connection()
    for chunk in bulk.chunks(rows):
        params = []
        for r in chunk:
            at = r["recorded_at"]
            if at not in stamps:
                stamps[at] = moment(at)
            params.append((r["enterprise_id"], r["field"], _json_text(r["value"]), r["source"], day(r["source_date"]),
                           r.get("import_id"), r.get("archive_change_id"), stamps[at]))  # fmt: skip
        connection.exec_driver_sql(sql, params)
        beat()


def add_value_rows(
    *, session: Session, rows: Sequence[tuple[int, dict[str, Any], date]], source: str, import_id: int, moment: datetime
) -> None:
    """The history rows of one import, given per enterprise as (enterprise id, {field: new value}, source date): one
    executemany, the parameter tuples built in one pass (100,000 rows of a file write a few hundred thousand)."""
    if not rows:
        return
    pg = bulk.is_postgres(session)
    marks = ", ".join(("%s::jsonb" if c == "value" else "%s") if pg else "?" for c in VALUE_COLUMNS)
    sql = f'INSERT INTO "archive_value" ({", ".join(VALUE_COLUMNS)}) VALUES ({marks})'
    at = moment if pg else bulk.sqlite_moment(moment)
    days: dict[date, Any] = {}
    text = _json_text
    params = []
    append = params.append
    for enterprise_id, changed, day in rows:
        held = days.get(day)
        if held is None:
            held = days[day] = day if pg else day.isoformat()
        for name, value in changed.items():
            shown = str(value) if type(value) is int else text(value.isoformat() if isinstance(value, date) else value)
            append((enterprise_id, name, shown, source, held, import_id, None, at))
    connection = session.connection()
    for chunk in bulk.chunks(params, 50_000):
        connection.exec_driver_sql(sql, list(chunk))


def history(*, session: Session, enterprise_id: int, field: str | None = None) -> list[ArchiveValue]:
    """Every recorded value of the enterprise (of one field), oldest first."""
    stmt = select(ArchiveValue).where(ArchiveValue.enterprise_id == enterprise_id)
    if field is not None:
        stmt = stmt.where(ArchiveValue.field == field)
    return list(session.scalars(stmt.order_by(ArchiveValue.recorded_at, ArchiveValue.id)))


def known_at(*, session: Session, enterprise_id: int, moment: datetime) -> dict[str, ArchiveValue]:
    """field → the value recorded last at or before `moment` (what the platform knew then)."""
    stmt = (
        select(ArchiveValue)
        .where(ArchiveValue.enterprise_id == enterprise_id, ArchiveValue.recorded_at <= moment)
        .order_by(ArchiveValue.recorded_at, ArchiveValue.id)
    )
    out: dict[str, ArchiveValue] = {}
    for row in session.scalars(stmt):
        out[row.field] = row
    return out


def latest(*, session: Session, enterprise_id: int) -> dict[str, ArchiveValue]:
    """field → its latest recorded value (source and date of the current facts)."""
    out: dict[str, ArchiveValue] = {}
    for row in history(session=session, enterprise_id=enterprise_id):
        out[row.field] = row
    return out


def open_cases_among(*, session: Session, enterprise_ids: set[int]) -> list[Case]:
    """The not-closed cases of any of the given enterprises: the open cases (far fewer than a city's enterprises)
    are listed first and only theirs loaded."""
    if not enterprise_ids:
        return []
    rows = session.execute(select(Case.id, Case.enterprise_id).where(Case.closed_at.is_(None)))
    ids = [case_id for case_id, enterprise_id in rows if enterprise_id in enterprise_ids]
    out: list[Case] = []
    for chunk in bulk.chunks(ids):
        out.extend(session.scalars(select(Case).where(Case.id.in_(chunk)).order_by(Case.id)))
    return out


def _fields(node: Any) -> set[str]:
    if isinstance(node, Leaf):
        return {node.field}
    if isinstance(node, NotOf):
        return _fields(node.item)
    return set().union(*(_fields(i) for i in node.items)) if node.items else set()


def listed_items_using(*, session: Session, fields: Iterable[str]) -> list[tuple[FundItem, Any]]:
    """Listed items whose conditions use any of `fields`, with their parsed condition trees."""
    wanted = set(fields)
    out = []
    stmt = (
        select(FundItem, FundItemVersion.config)
        .join(
            FundItemVersion,
            and_(FundItemVersion.fund_item_id == FundItem.id, FundItemVersion.version == FundItem.listed_version),
        )
        .where(FundItem.status == FundItemStatus.LISTED)
    )
    for item, config in session.execute(stmt):
        tree = condition_tree(FundItemConfig.model_validate(config))
        if _fields(tree) & wanted:
            out.append((item, tree))
    return out


def rematch(
    *, session: Session, enterprise_ids: Sequence[int], fields: Iterable[str], import_id: int, actor: str
) -> tuple[int, int]:
    """After an import changed `fields` of `enterprise_ids`: a re-evaluation for each enterprise that now meets a
    listed no-application item and has no case of it (registered once: an open one is reused, a case stops it),
    and an open alert for each paid case whose enterprise no longer meets its item (never a claw-back).
    Returns (re-evaluations registered, alerts raised)."""
    registered = alerts = 0
    for item, tree in listed_items_using(session=session, fields=fields):
        where = compile_where(tree)
        for chunk in bulk.chunks(list(enterprise_ids)):
            if item.mode == FundItemMode.NO_APPLICATION:
                has_case = exists().where(Case.fund_item_id == item.id, Case.enterprise_id == Enterprise.id)
                pending = exists().where(
                    Campaign.fund_item_id == item.id,
                    Campaign.kind == CampaignKind.REEVALUATION,
                    Campaign.enterprise_id == Enterprise.id,
                    Campaign.finished_at.is_(None),
                )
                stmt = select(Enterprise.id).where(Enterprise.id.in_(chunk), where, not_(has_case), not_(pending))
                for enterprise_id in session.scalars(stmt.order_by(Enterprise.id)):
                    if register_reevaluation(session=session, item=item, enterprise_id=enterprise_id, actor=actor):
                        registered += 1
            paid = (
                select(Case.id, Enterprise.uscc)
                .join(Enterprise, Enterprise.id == Case.enterprise_id)
                .where(
                    and_(Case.fund_item_id == item.id, Case.status == CaseStatus.PAID, Case.enterprise_id.in_(chunk)),
                    not_(where),
                )
            )
            rows = [
                {
                    "kind": AlertKind.ARCHIVE_INELIGIBLE.value,
                    "ref": f"case:{case_id}:import:{import_id}",
                    "message": f"企业 {uscc} 已获“{item.name}”拨付（办件 {case_id}），第 {import_id} 次数据导入后"
                    "不再符合申报条件：请复核，系统不会自动追回资金",
                    "status": AlertStatus.OPEN.value,
                }
                for case_id, uscc in session.execute(paid)
            ]
            if rows:
                bulk.insert_rows(session, Alert.__table__, rows, ignore_duplicates=True)
                alerts += len(rows)
    return registered, alerts


def alerts_of_import(*, session: Session, import_id: int) -> list[Alert]:
    stmt = select(Alert).where(Alert.kind == AlertKind.ARCHIVE_INELIGIBLE, Alert.ref.like(f"%:import:{import_id}"))
    return list(session.scalars(stmt.order_by(Alert.id)))


# --- tag rules ---------------------------------------------------------------------------------------------------


def tag_rules(*, session: Session) -> list[TagRule]:
    return list(session.scalars(select(TagRule).order_by(TagRule.id)))


def add_tag_rule(
    *,
    session: Session,
    name: str,
    condition: dict,
    department_code: str | None,
    actor: str,
    kind: str = TagRuleKind.RULE,
    members: list[str] | None = None,
) -> TagRule:
    rule = TagRule(name=name, condition=condition, department_code=department_code, actor=actor, kind=kind,
                   members=members)  # fmt: skip
    session.add(rule)
    session.flush()
    return rule


def tag_rule_by_name(*, session: Session, name: str) -> TagRule | None:
    return session.scalar(select(TagRule).where(TagRule.name == name))


def rule_tags_wanted(
    *, session: Session, rules: Sequence[tuple[str, Any]], enterprise_ids: Sequence[int] | None
) -> dict[int, tuple[list[str] | None, list[str]]]:
    """enterprise id → (its rule tags now, the tags its rules give it), for the given enterprises (None: all)."""
    names = {name for name, _ in rules}
    scopes = [None] if enterprise_ids is None else list(bulk.chunks(list(enterprise_ids)))
    out: dict[int, tuple[list[str] | None, list[str]]] = {}
    for chunk in scopes:
        narrow = (lambda stmt: stmt) if chunk is None else (lambda stmt, c=chunk: stmt.where(Enterprise.id.in_(c)))
        given: dict[int, set[str]] = {}
        for name, tree in rules:
            for enterprise_id in session.scalars(narrow(select(Enterprise.id).where(_selects(tree)))):
                given.setdefault(enterprise_id, set()).add(name)
        for enterprise_id, now in session.execute(narrow(select(Enterprise.id, Enterprise.rule_tags))):
            kept = [t for t in (now or []) if t not in names]  # a tag whose rule is gone stays until it is recomputed
            out[enterprise_id] = (now, sorted({*kept, *given.get(enterprise_id, set())}))
    return out


def _selects(rule: Any) -> Any:
    """The WHERE clause of a tag: its condition tree compiled, or membership of its list of USCCs."""
    if isinstance(rule, list):
        return or_(false(), *(Enterprise.uscc.in_(chunk) for chunk in bulk.chunks(rule)))
    return compile_where(rule)


def count_matching(*, session: Session, rule: Any) -> int:
    """How many enterprises a tag (condition tree or list of USCCs) would select now."""
    return int(session.scalar(select(func.count()).select_from(Enterprise).where(_selects(rule))) or 0)


def count_tagged(*, session: Session, name: str) -> int:
    """How many enterprises carry a rule tag."""
    from db.sql.conditions import compile_where as where

    leaf = {"field": "rule_tags", "op": "has_tag", "value": name}
    return int(session.scalar(select(func.count()).select_from(Enterprise).where(where(leaf))) or 0)


# --- pulls from the data-sharing platform ------------------------------------------------------------------------


def add_pull(*, session: Session, **values: Any) -> ArchivePull:
    row = ArchivePull(**values)
    session.add(row)
    session.flush()
    return row


def last_watermark(*, session: Session, source: str) -> str:
    """The watermark of the source's last successful pull ("" before the first: pull everything)."""
    stmt = (
        select(ArchivePull.watermark)
        .where(ArchivePull.source == source, ArchivePull.status == PullStatus.SUCCEEDED)
        .order_by(ArchivePull.id.desc())
        .limit(1)
    )
    return session.scalar(stmt) or ""


def list_pulls(*, session: Session, source: str | None = None, limit: int = 50) -> list[ArchivePull]:
    stmt = select(ArchivePull).order_by(ArchivePull.id.desc()).limit(limit)
    if source is not None:
        stmt = stmt.where(ArchivePull.source == source)
    return list(session.scalars(stmt))
