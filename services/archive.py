"""The enterprise archive (企档) fed by its data sources: imports (validated whole, stored whole or not at all,
idempotent by content hash), the owning-source rule for every edit, value history with "as of" reads, and the
re-matching of changed enterprises against listed items."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from db.models import ArchiveImport, Case, Enterprise
from db.repositories import archive as repo
from db.repositories import cases
from schemas import archive_rows
from schemas.archive_sources import SOURCES, foreign_fields, owner_of, source
from schemas.fields import FIELDS, FieldType
from schemas.localtime import LOCAL_TZ, local_date
from schemas.vocabulary import ArchiveSource, AuditKind, EventKind, ImportStatus, Role, TagRuleKind
from services import audit
from services import cases as case_service
from services import notices as notice_service
from services.errors import Conflict, Forbidden, Invalid, NotFound
from services.scope import Scope

# Called as validation and storing proceed: (stage label, done, total), for a progress bar.
Progress = Callable[[str, int, int], object]
IMPORTERS = (Role.ADMIN, Role.DEPARTMENT)


def _quiet(_stage: str, _done: int, _total: int) -> None:
    """The default Progress: nobody is watching."""


@dataclass
class ImportResult:
    id: int
    source: str
    source_label: str
    file_name: str
    status: str
    status_label: str
    rows: int
    changed_enterprises: int
    changed_values: int
    error_count: int
    reevaluations: int
    alerts: int
    duplicate: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, row: ArchiveImport, *, duplicate: bool = False, errors: int = 50) -> ImportResult:
        return cls(
            id=row.id,
            source=row.source,
            source_label=ArchiveSource.label_of(row.source),
            file_name=row.file_name,
            status=row.status,
            status_label=ImportStatus.label_of(row.status),
            rows=row.rows,
            changed_enterprises=row.changed_enterprises,
            changed_values=row.changed_values,
            error_count=row.error_count,
            reevaluations=row.reevaluations,
            alerts=row.alerts,
            duplicate=duplicate,
            errors=list(row.errors or [])[:errors],
        )


def sources() -> list[dict[str, Any]]:
    """Every data source with the fields it owns, its file columns and formats and its refresh cadence."""
    return [s.describe() for s in SOURCES.values()]


def importable(*, scope: Scope) -> list[Any]:
    """The sources the caller may import: all for an administrator, the ones it sends for a department."""
    if scope.role == Role.ADMIN:
        return list(SOURCES.values())
    mine = scope.department_code or scope.principal.subject
    return [s for s in SOURCES.values() if scope.role == Role.DEPARTMENT and s.department_code == mine]


def refuse_foreign(*, fields: list[str] | tuple[str, ...], by: str) -> None:
    """A field has one owning source: an edit naming another (a manual edit of a source's field too) is refused."""
    foreign = foreign_fields(fields, by)
    if foreign:
        owned = "、".join(f"{f}（{FIELDS[f].label}）由「{o.label}」维护" for f, o in foreign.items())
        raise Forbidden(
            f"字段 {owned}，「{ArchiveSource.label_of(by, by)}」不能修改（数据来源归属规则）",
            field=next(iter(foreign)),
            rule="owning_source",
        )


def _can_import(scope: Scope) -> None:
    if scope.role not in IMPORTERS:
        raise Forbidden("只有管理员和主管部门可以导入企档数据", rule="role")


def can_import_source(*, scope: Scope, src: Any) -> None:
    """Who may import (or pull) a source: an administrator any; a department only the sources it sends by
    configuration (`Source.department_code`); nobody else (docs/archive.md, "Who may import")."""
    _can_import(scope)
    if scope.role == Role.ADMIN:
        return
    mine = scope.department_code or scope.principal.subject
    if src.department_code != mine:
        raise Forbidden(
            f"数据来源「{src.label}」由{src.provider}报送，只有该部门和管理员可以导入（数据来源归属规则）",
            field="source",
            rule="source_owner",
        )


def import_file(
    *,
    session: Session,
    scope: Scope,
    source_name: str,
    file_name: str,
    data: bytes,
    source_date: date | None = None,
    progress: Progress = _quiet,
) -> ImportResult:
    """Import one file of a source: every row validated first; any error stores nothing but the failed import with
    its per-row report; the same file again (same content hash) changes nothing. A success updates the archive in
    bulk, keeps each changed value's history, records the change on open cases and re-matches listed items."""
    _can_import(scope)
    try:
        src = source(source_name)
    except ValueError as exc:
        raise Invalid(str(exc), field="source", rule="known_source") from None
    can_import_source(scope=scope, src=src)
    digest = hashlib.sha256(data).hexdigest()
    earlier = repo.find_succeeded(session=session, source=src.id, content_hash=digest)
    if earlier is not None:
        return ImportResult.of(earlier, duplicate=True)
    when = source_date or local_date(datetime.now(UTC))
    base = {
        "source": src.id.value,
        "file_name": file_name[:200],
        "content_hash": digest,
        "source_date": when,
        "actor": scope.actor,
    }
    try:
        fmt = archive_rows.detect_format(file_name)
        base["file_format"] = fmt
        header, raw = archive_rows.read_table(data, fmt)
        progress("校验", 0, len(raw))
        parsed = archive_rows.validate(header, raw, src)
    except archive_rows.FileError as exc:
        base.setdefault("file_format", "")
        failed = [archive_rows.RowError(1, "", "", str(exc)).as_dict()]
        return _failed(session=session, base=base, rows=0, errors=failed)
    progress("校验", len(raw), len(raw))
    fields = list(src.fields)
    repo.prepare_import(session=session)
    found = repo.current(session=session, usccs=[r[1] for r in parsed.rows], fields=fields)
    errors = [e.as_dict() for e in parsed.errors]
    for n, code, _, _ in parsed.rows:
        if code not in found:
            errors.append(
                archive_rows.RowError(n, "统一社会信用代码", code, "企业未在企档中登记（企业登记规则）").as_dict()
            )
    if errors:
        errors.sort(key=lambda e: e["row"])
        return _failed(session=session, base=base, rows=parsed.total, errors=errors)

    row = repo.add_import(
        session=session, **base, status=ImportStatus.SUCCEEDED, rows=parsed.total, errors=[], error_count=0
    )
    moment = datetime.now(UTC)
    updates: list[tuple[int, dict[str, Any]]] = []
    patches: list[str] = []  # per update: field → {source, source_date, import_id}, merged into enterprise.provenance
    patch_of: dict[tuple[tuple[str, ...], date], str] = {}
    history: list[dict[str, Any]] = []  # the tag rules' rows
    values_out: list[tuple[int, dict[str, Any], date]] = []  # (enterprise, changed values, source date)
    before: dict[int, dict[str, Any]] = {}  # enterprise → its values before the import (the timeline of open cases)
    changed_fields: set[str] = set()
    for _, code, day, values in parsed.rows:
        enterprise_id, now = found[code]
        # Values come parsed (ints, dates, sorted tag lists) and the database gives the same types back: plain !=.
        changed = {f: v for f, v in values.items() if now.get(f) != v}
        if not changed:
            continue
        updates.append((enterprise_id, changed))
        held = day or when
        key = (tuple(changed), held)
        if key not in patch_of:
            origin = {"source": src.id.value, "source_date": held.isoformat(), "import_id": row.id}
            patch_of[key] = repo.provenance_patch(changed, origin)
            changed_fields.update(changed)
        patches.append(patch_of[key])
        before[enterprise_id] = now
        values_out.append((enterprise_id, changed, held))
    total = len(updates)
    progress("写入", 0, total)
    done = 0

    def beat() -> None:
        nonlocal done
        done = min(total, done + 5000)
        progress("写入", done, total)

    repo.update_enterprises(session=session, updates=updates, moment=moment, beat=beat, provenance=patches)
    tag_changes: dict[int, dict[str, Any]] = {}
    retagged = _apply_tag_rules(
        session=session,
        enterprise_ids=[e for e, _ in updates],
        changed_fields=changed_fields,
        moment=moment,
        import_id=row.id,
        changes=tag_changes,
        history=history,
    )
    if retagged:
        changed_fields.add("rule_tags")
    repo.add_value_rows(session=session, rows=values_out, source=src.id.value, import_id=row.id, moment=moment)
    repo.add_values(session=session, rows=history)
    _record_on_open_cases(session=session, scope=scope, import_row=row, updates=updates, before=before,
                          tag_changes=tag_changes)  # fmt: skip
    registered, alerts = repo.rematch(
        session=session,
        enterprise_ids=[e for e, _ in updates],
        fields=changed_fields,
        import_id=row.id,
        actor=scope.actor,
    )
    row.changed_enterprises = total
    row.changed_values = sum(len(c) for _, c, _ in values_out) + len(history)
    row.reevaluations = registered
    row.alerts = alerts
    session.flush()
    # One record per import (the values themselves are in the value history, which the record's digest pins).
    audit.record(session=session, kind=AuditKind.ARCHIVE_EDIT, actor=scope.actor, subject=f"archive_import:{row.id}",
                 data={"source": src.id.value, "rows": parsed.total, "enterprises": total, "values": len(history),
                       "fields": sorted(changed_fields)})  # fmt: skip
    progress("写入", total, total)
    return ImportResult.of(row)


def _failed(*, session: Session, base: dict[str, Any], rows: int, errors: list[dict[str, Any]]) -> ImportResult:
    row = repo.add_import(
        session=session, **base, status=ImportStatus.FAILED, rows=rows, errors=errors, error_count=len(errors)
    )
    return ImportResult.of(row)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, list | tuple) else value


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else _plain(value)


def _record_on_open_cases(
    *,
    session: Session,
    scope: Scope,
    import_row: ArchiveImport,
    updates: list[tuple[int, dict[str, Any]]],
    before: dict[int, dict[str, Any]],
    tag_changes: dict[int, dict[str, Any]],
) -> None:
    """Every open case of a changed enterprise shows the change in its timeline, naming the import."""
    if not updates and not tag_changes:
        return
    label = ArchiveSource.label_of(import_row.source)
    changed_now = dict(updates)
    wanted = set(changed_now) | set(tag_changes)
    for case in repo.open_cases_among(session=session, enterprise_ids=wanted):
        e = case.enterprise_id
        now = before.get(e, {})
        changed = {f: {"from": _json(now.get(f)), "to": _json(v)} for f, v in changed_now.get(e, {}).items()}
        changed.update(tag_changes.get(e, {}))
        cases.record(
            session=session,
            case=case,
            key=f"archive_import:{import_row.id}",
            kind=EventKind.ARCHIVE_CHANGED,
            actor=scope.actor,
            reason=f"{label}数据导入（第 {import_row.id} 次）：变更 {', '.join(sorted(changed))}",
            data={"archive_import_id": import_row.id, "source": import_row.source, "changes": changed},
        )


def record_manual(
    *, session: Session, enterprise_id: int, source: str, changes: dict[str, Any], archive_change_id: int
) -> None:
    """History rows for an administrator's edit (made for the source that owns the fields), and the fields'
    provenance naming the change."""
    moment = datetime.now(UTC)
    origin = {"source": source, "source_date": local_date(moment).isoformat(), "archive_change_id": archive_change_id}
    repo.merge_provenance(session=session, enterprise_id=enterprise_id, patch=repo.provenance_patch(changes, origin))
    repo.add_values(
        session=session,
        rows=[
            {
                "enterprise_id": enterprise_id,
                "field": f,
                "value": _json(c["to"]),
                "source": source,
                "source_date": local_date(moment),
                "archive_change_id": archive_change_id,
                "recorded_at": moment,
            }
            for f, c in changes.items()
        ],
    )


# --- reading: imports, facts with source and date, "as of" -----------------------------------------------------


def imports(*, session: Session, scope: Scope) -> list[ImportResult]:
    """Recent imports: an administrator sees all, a department its own."""
    _can_import(scope)
    rows = repo.list_imports(session=session)
    if scope.role != Role.ADMIN:
        rows = [r for r in rows if r.actor == scope.actor]
    return [ImportResult.of(r, errors=0) for r in rows]


def get_import(*, session: Session, scope: Scope, import_id: int) -> ArchiveImport:
    """One import (with its whole error report) if the caller may see it."""
    _can_import(scope)
    row = repo.get_import(session=session, import_id=import_id)
    if row is None or (scope.role != Role.ADMIN and row.actor != scope.actor):
        raise NotFound(f"数据导入 {import_id} 不存在", field="import_id", rule="in_scope")
    return row


def error_report(*, session: Session, scope: Scope, import_id: int) -> str:
    """The per-row error report of an import as CSV (Chinese headers, opens in Excel); an export, so audited (its
    rows quote the enterprises' submitted values)."""
    errors = list(get_import(session=session, scope=scope, import_id=import_id).errors)
    audit.record(session=session, kind=AuditKind.EXPORT, actor=scope.actor, subject=f"archive_import:{import_id}",
                 data={"export": "archive_errors_csv", "rows": len(errors)})  # fmt: skip
    return archive_rows.error_report_csv(errors)


@dataclass(frozen=True)
class Fact:
    """One archive fact as users read it: the value, and which source said it, holding from when."""

    field: str
    label: str
    value: Any
    text: str
    source: str
    source_label: str
    source_date: date | None
    import_id: int | None
    recorded_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _fact(name: str, value: Any, row: Any) -> Fact:
    spec = FIELDS[name]
    src = row.source if row is not None else owner_of(name).value
    if spec.type is FieldType.DATE and isinstance(value, str):
        value = date.fromisoformat(value)
    return Fact(
        field=name,
        label=spec.label,
        value=value,
        text=spec.format(value) if value is not None else "（空）",
        source=src,
        source_label=ArchiveSource.label_of(src),
        source_date=row.source_date if row is not None else None,
        import_id=row.import_id if row is not None else None,
        recorded_at=row.recorded_at if row is not None else None,
    )


def facts_of(*, session: Session, enterprise: Enterprise) -> list[Fact]:
    """The enterprise's current facts with the source and source date of each (no date: recorded before history)."""
    rows = repo.latest(session=session, enterprise_id=enterprise.id)
    return [_fact(name, getattr(enterprise, spec.column), rows.get(name)) for name, spec in FIELDS.items()]


def facts(*, session: Session, scope: Scope, uscc: str) -> list[Fact]:
    """Current facts with source and date, as the caller may see them (an enterprise only its own)."""
    enterprise = notice_service.enterprise_in_scope(session=session, scope=scope, uscc=uscc)
    return facts_of(session=session, enterprise=enterprise)


def end_of_local_day(day: date) -> datetime:
    """The last moment of a Beijing day, in UTC: "what we knew on day D" includes everything recorded that day."""
    return datetime.combine(day + timedelta(days=1), time(), LOCAL_TZ).astimezone(UTC) - timedelta(microseconds=1)


def known_at(*, session: Session, enterprise_id: int, moment: datetime) -> list[Fact]:
    """What the archive knew at `moment`: for each field with history, the value recorded last by then."""
    rows = repo.known_at(session=session, enterprise_id=enterprise_id, moment=moment)
    return [_fact(name, row.value, row) for name, row in rows.items()]


def as_of(*, session: Session, scope: Scope, uscc: str, day: date) -> list[Fact]:
    """What the archive knew about the enterprise on Beijing day `day` (fields without history are left out)."""
    enterprise = notice_service.enterprise_in_scope(session=session, scope=scope, uscc=uscc)
    return known_at(session=session, enterprise_id=enterprise.id, moment=end_of_local_day(day))


def _evidence_fields(evidence: dict[str, Any]) -> list[str]:
    """The archive fields a case's frozen evidence holds: its values (campaigns) or its conditions' fields."""
    names = list(evidence.get("values") or {})
    for c in evidence.get("conditions") or []:
        if isinstance(c, dict) and c.get("field") in FIELDS and c["field"] not in names:
            names.append(c["field"])
    return names or list(evidence.get("provenance") or {})


def case_provenance(*, session: Session, case: Case) -> dict[str, dict[str, Any]]:
    """For each fact in the case's frozen evidence: the source, source date and import (or manual change) that
    supplied it. Cases frozen since issue 18 carry it in the evidence (`frozen`: true); for older cases it is looked
    up in the history as it stood when the case was created (`frozen`: false; all null before history began)."""
    evidence = case.evidence if isinstance(case.evidence, dict) else {}
    frozen = evidence.get("provenance") or {}
    known: dict[str, Any] | None = None
    out: dict[str, dict[str, Any]] = {}
    for name in _evidence_fields(evidence):
        origin = frozen.get(name)
        if origin:
            src = origin.get("source")
            out[name] = {
                "label": FIELDS[name].label if name in FIELDS else name,
                "import_id": origin.get("import_id"),
                "archive_change_id": origin.get("archive_change_id"),
                "source": src,
                "source_label": ArchiveSource.label_of(src),
                "source_date": origin.get("source_date"),
                "frozen": True,
            }
            continue
        if known is None:
            known = repo.known_at(session=session, enterprise_id=case.enterprise_id, moment=case.created_at)
        row = known.get(name)
        out[name] = {
            "label": FIELDS[name].label if name in FIELDS else name,
            "import_id": row.import_id if row else None,
            "archive_change_id": row.archive_change_id if row else None,
            "source": row.source if row else None,
            "source_label": ArchiveSource.label_of(row.source if row else None),
            "source_date": row.source_date.isoformat() if row else None,
            "frozen": False,
        }
    return out


def provenance(*, session: Session, scope: Scope, case_id: int) -> dict[str, dict[str, Any]]:
    """`case_provenance` of a case the caller may see (one outside its scope is not found)."""
    return case_provenance(
        session=session, case=case_service.visible_case(session=session, scope=scope, case_id=case_id)
    )


# --- tag rules (Yichang rules art. 27) ---------------------------------------------------------------------------

TAG_RULE_ROLES = (Role.ADMIN, Role.DEPARTMENT)
TAG_READERS = (Role.ADMIN, Role.DEPARTMENT, Role.FINANCE)
MAX_LIST_MEMBERS = 100_000


@dataclass(frozen=True)
class TagRuleOut:
    id: int
    name: str
    kind: str
    kind_label: str
    condition: dict[str, Any] | None
    members: int
    department_code: str | None
    tagged: int


def _rule_trees(session: Session) -> list[tuple[str, Any]]:
    """(name, condition tree) of every rule, (name, list of USCCs) of every imported list."""
    from schemas.conditions import parse_condition

    return [
        (r.name, list(r.members or []) if r.kind == TagRuleKind.LIST else parse_condition(r.condition))
        for r in repo.tag_rules(session=session)
    ]


def _rule_fields(tree: Any) -> set[str]:
    return set() if isinstance(tree, list) else repo._fields(tree)


def _apply_tag_rules(
    *,
    session: Session,
    enterprise_ids: list[int] | None,
    changed_fields: set[str] | None,
    moment: datetime,
    import_id: int | None = None,
    changes: dict[int, dict[str, Any]] | None = None,
    history: list[dict[str, Any]] | None = None,
) -> int:
    """Recompute `rule_tags` of the given enterprises (None: all) from the tag rules, when a rule uses a changed field
    (None: always); each changed tag list is stored with its history. Returns how many enterprises changed."""
    trees = _rule_trees(session)
    if changed_fields is not None:
        trees = [(n, t) for n, t in trees if _rule_fields(t) & changed_fields]
    if not trees or enterprise_ids == []:
        return 0
    wanted = repo.rule_tags_wanted(session=session, rules=trees, enterprise_ids=enterprise_ids)
    updates = [(e, {"rule_tags": new}) for e, (now, new) in wanted.items() if sorted(now or []) != new]
    origin = {"source": ArchiveSource.TAG_RULES.value, "source_date": local_date(moment).isoformat(), "import_id": import_id}
    patch = repo.provenance_patch(["rule_tags"], origin)
    repo.update_enterprises(session=session, updates=updates, moment=moment, provenance=[patch] * len(updates))
    rows = [
        {
            "enterprise_id": e,
            "field": "rule_tags",
            "value": v["rule_tags"],
            "source": ArchiveSource.TAG_RULES.value,
            "source_date": local_date(moment),
            "import_id": import_id,
            "recorded_at": moment,
        }
        for e, v in updates
    ]
    if history is None:
        repo.add_values(session=session, rows=rows)
    else:
        history.extend(rows)
    if changes is not None:
        for e, v in updates:
            changes.setdefault(e, {})["rule_tags"] = {"from": wanted[e][0] or [], "to": v["rule_tags"]}
    return len(updates)


@dataclass
class TagDraft:
    """A tag rule as checked before it is stored: its condition tree or its members, and the errors found (each
    naming the field: name, condition, file or a row of the list)."""

    name: str
    kind: str
    tree: Any = None
    members: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def error(self, field_name: str, message: str, rule: str = "") -> None:
        self.errors.append({"field": field_name, "message": message, "rule": rule})


def _can_tag(scope: Scope) -> None:
    if scope.role not in TAG_RULE_ROLES:
        raise Forbidden("只有管理员和主管部门可以定义标签规则", rule="role")


def check_tag_rule(
    *,
    session: Session,
    scope: Scope,
    name: str,
    kind: str = TagRuleKind.RULE,
    condition: dict[str, Any] | None = None,
    list_file: tuple[str, bytes] | None = None,
) -> TagDraft:
    """Every rule a tag must meet, all errors collected: a name of 1–40 characters not yet used; for a rule, a valid
    condition (the same model and Chinese messages as fund item conditions) not using rule_tags itself; for a list,
    a file (CSV, Excel or JSON with a 统一社会信用代码 column) of valid, registered, distinct USCCs."""
    from pydantic import BaseModel, ValidationError

    from schemas.conditions import Condition
    from schemas.fund_items import explain_errors

    _can_tag(scope)
    draft = TagDraft(name=(name or "").strip(), kind=kind)
    if not 1 <= len(draft.name) <= 40:
        draft.error("name", "标签名称应为 1–40 个字（长度规则）", "length")
    elif repo.tag_rule_by_name(session=session, name=draft.name) is not None:
        draft.error("name", f"标签“{draft.name}”已存在，请换一个名称（唯一规则）", "unique")
    if kind not in TagRuleKind.values():
        draft.error("kind", "标签类型应为“按档案字段条件”或“导入名单”（枚举规则）", "enum")
        return draft
    if kind == TagRuleKind.RULE:

        class _Tag(BaseModel):
            conditions: Condition

        try:
            draft.tree = _Tag.model_validate({"conditions": condition}).conditions
        except ValidationError as exc:
            for e in explain_errors(exc.errors(include_url=False), root=_Tag):
                draft.error("condition", e["msg"], e.get("type", ""))
            return draft
        if "rule_tags" in repo._fields(draft.tree):
            draft.error("condition", "标签规则的条件不能引用规则标签本身（rule_tags，防止循环）", "no_recursion")
        return draft
    if list_file is None or not list_file[1]:
        draft.error("file", "请选择名单文件（CSV、Excel 或 JSON，含“统一社会信用代码”列）（必填规则）", "required")
        return draft
    _read_members(session, draft, *list_file)
    return draft


def _read_members(session: Session, draft: TagDraft, file_name: str, data: bytes) -> None:
    try:
        header, raw = archive_rows.read_table(data, archive_rows.detect_format(file_name))
    except archive_rows.FileError as exc:
        draft.error("file", str(exc), "file")
        return
    names = [h.strip() for h in header]
    at = next((i for i, h in enumerate(names) if h in ("统一社会信用代码", "uscc")), None)
    if at is None:
        draft.error("file", "名单文件缺少“统一社会信用代码”（uscc）列（表头规则）", "header")
        return
    seen: dict[str, int] = {}
    for n, row in enumerate(raw, start=2):
        cell = archive_rows._text(row[at]) if at < len(row) else ""
        if not cell:
            continue
        try:
            code = archive_rows.check_uscc(cell)
        except ValueError as exc:
            draft.error(f"第{n}行", f"统一社会信用代码 {cell}：{str(exc).split(' / ')[0]}", "uscc")
            continue
        if code in seen:
            draft.error(f"第{n}行", f"统一社会信用代码 {cell} 与第{seen[code]}行重复", "unique")
            continue
        seen[code] = n
    if not seen and not draft.errors:
        draft.error("file", "名单为空：至少需要一家企业（必填规则）", "required")
    if len(seen) > MAX_LIST_MEMBERS:
        draft.error("file", f"名单超过 {MAX_LIST_MEMBERS} 家企业（数量规则）", "max_size")
    known = repo.current(session=session, usccs=list(seen), fields=[])
    for code, n in seen.items():
        if code not in known:
            draft.error(f"第{n}行", f"统一社会信用代码 {code} 的企业未在企档中登记（企业登记规则）", "registered")
    draft.members = sorted(seen)


def _refuse_draft(draft: TagDraft) -> None:
    if draft.errors:
        first = draft.errors[0]
        more = f"（另有 {len(draft.errors) - 1} 处错误）" if len(draft.errors) > 1 else ""
        error = Conflict if first["rule"] == "unique" and first["field"] == "name" else Invalid
        raise error(f"{first['field']}：{first['message']}{more}", field=first["field"], rule=first["rule"] or None)


def preview_tag_rule(*, session: Session, scope: Scope, draft: TagDraft) -> int:
    """How many enterprises the checked tag would carry now (nothing stored)."""
    _can_tag(scope)
    return repo.count_matching(session=session, rule=draft.members if draft.kind == TagRuleKind.LIST else draft.tree)


def create_tag_rule(
    *,
    session: Session,
    scope: Scope,
    name: str,
    condition: dict[str, Any] | None = None,
    kind: str = TagRuleKind.RULE,
    list_file: tuple[str, bytes] | None = None,
) -> TagRuleOut:
    """A department's tag, as a condition over archive fields or as an imported list of enterprises: every enterprise
    meeting it is tagged at once, and (for a rule) re-tagged whenever an import changes a field the rule uses;
    `rule_tags` is then a condition field. Any error refuses the whole tag (Invalid names the first)."""
    draft = check_tag_rule(session=session, scope=scope, name=name, kind=kind, condition=condition,
                           list_file=list_file)  # fmt: skip
    return store_tag_rule(session=session, scope=scope, draft=draft)


def store_tag_rule(*, session: Session, scope: Scope, draft: TagDraft) -> TagRuleOut:
    """Store a checked draft (no errors) and tag every enterprise it selects."""
    from schemas.conditions import dump_condition

    _refuse_draft(draft)
    is_list = draft.kind == TagRuleKind.LIST
    rule = repo.add_tag_rule(
        session=session,
        name=draft.name,
        condition={} if is_list else dump_condition(draft.tree),
        department_code=scope.department_code,
        actor=scope.actor,
        kind=draft.kind,
        members=draft.members if is_list else None,
    )
    _apply_tag_rules(session=session, enterprise_ids=None, changed_fields=None, moment=datetime.now(UTC))
    return _rule_out(session, rule)


def _rule_out(session: Session, rule: Any) -> TagRuleOut:
    return TagRuleOut(
        id=rule.id,
        name=rule.name,
        kind=rule.kind,
        kind_label=TagRuleKind.label_of(rule.kind),
        condition=None if rule.kind == TagRuleKind.LIST else rule.condition,
        members=len(rule.members or []),
        department_code=rule.department_code,
        tagged=repo.count_tagged(session=session, name=rule.name),
    )


def tag_rules(*, session: Session, scope: Scope) -> list[TagRuleOut]:
    """The tag rules the caller may see, with how many enterprises carry each tag: a department its own, finance
    and administrators all; enterprises none."""
    if scope.role not in TAG_READERS:
        raise Forbidden("企业不能查看标签规则", rule="role")
    rows = repo.tag_rules(session=session)
    if scope.role == Role.DEPARTMENT:
        rows = [r for r in rows if r.department_code == scope.department_code]
    return [_rule_out(session, r) for r in rows]
