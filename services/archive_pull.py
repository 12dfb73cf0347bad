"""Pulls from the data-sharing platform (政务数据共享交换平台) into the archive: every page of a source's dataset changed
after the last watermark is fetched first, checked against the agreed structure, and then imported through the same
pipeline as an uploaded file (validation, history, re-evaluation), in the caller's one transaction. A pull that
cannot be completed (timeout, a partial page, schema drift, refusal, a row that fails validation) stores nothing but
the failed pull with its Chinese reason, and the watermark stays where it was."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from db.models import ArchivePull
from db.repositories import archive as repo
from schemas import datashare
from schemas.archive_sources import SOURCES, source
from schemas.principal import Principal
from schemas.vocabulary import ImportStatus, PullFailure, PullStatus
from services import archive
from services.errors import Invalid
from services.scope import Scope

if TYPE_CHECKING:
    from gateways.datashare import DataShareClient

# What a scheduled pull acts as (recorded on its import and on the open cases it changes).
PULLER = Scope(principal=Principal(role="admin", subject="datashare"))


@dataclass(frozen=True)
class PullResult:
    id: int
    source: str
    dataset: str
    status: str
    status_label: str
    failure: str | None
    failure_label: str
    reason: str
    since: str
    watermark: str
    pages: int
    records: int
    import_id: int | None
    changed_values: int = 0
    reevaluations: int = 0
    alerts: int = 0
    retryable: bool = False

    @classmethod
    def of(cls, row: ArchivePull, imported: archive.ImportResult | None = None, *, retryable: bool = False):
        return cls(
            id=row.id,
            source=row.source,
            dataset=row.dataset,
            status=row.status,
            status_label=PullStatus.label_of(row.status),
            failure=row.failure,
            failure_label=PullFailure.label_of(row.failure, ""),
            reason=row.reason,
            since=row.since,
            watermark=row.watermark,
            pages=row.pages,
            records=row.records,
            import_id=row.import_id,
            changed_values=imported.changed_values if imported else 0,
            reevaluations=imported.reevaluations if imported else 0,
            alerts=imported.alerts if imported else 0,
            retryable=retryable,
        )


def pullable() -> list[str]:
    """The sources served by a dataset of the platform."""
    return [s.id.value for s in SOURCES.values() if s.dataset]


def pull(
    *,
    session: Session,
    scope: Scope,
    client: DataShareClient,
    source_name: str,
    trigger: str = "manual",
    progress: archive.Progress = archive._quiet,
) -> PullResult:
    """Pull the source's records changed since its last successful pull and import them whole, or store nothing but
    the failed pull (with its reason) and leave the watermark where it was."""
    from gateways.datashare import DataShareError

    try:
        src = source(source_name)
    except ValueError as exc:
        raise Invalid(str(exc), field="source", rule="known_source") from None
    archive.can_import_source(scope=scope, src=src)
    if not src.dataset:
        raise Invalid(f"数据来源「{src.label}」没有数据共享接口，只能导入文件", field="source", rule="pullable")
    since = repo.last_watermark(session=session, source=src.id.value)
    base = {"source": src.id.value, "dataset": src.dataset, "since": since, "trigger": trigger, "actor": scope.actor}

    def failed(kind: PullFailure, reason: str, *, retryable: bool = False, **more) -> PullResult:
        row = repo.add_pull(session=session, **base, status=PullStatus.FAILED, failure=kind, reason=reason, **more)
        return PullResult.of(row, retryable=retryable)

    progress("拉取", 0, 1)
    try:
        pulled = client.pull(src.dataset, since)
    except DataShareError as exc:
        return failed(PullFailure(exc.kind), exc.reason, retryable=exc.retryable)
    got = {"pages": pulled.pages, "records": len(pulled.records)}
    progress("拉取", 1, 1)
    problems = datashare.drift(pulled.records, src, dataset=src.dataset)
    if problems:
        return failed(
            PullFailure.SCHEMA_DRIFT, "；".join(problems) + "（接口结构变化：请与数据提供单位核对后再拉取）", **got
        )
    if not pulled.records:
        row = repo.add_pull(
            session=session, **base, status=PullStatus.SUCCEEDED, watermark=since, reason="没有新数据", **got
        )
        return PullResult.of(row)
    imported = archive.import_file(
        session=session,
        scope=scope,
        source_name=src.id.value,
        file_name=f"datashare-{src.dataset}-{pulled.watermark or 'all'}.json",
        data=datashare.as_import_file(pulled.records, src),
        progress=progress,
    )
    if imported.status == ImportStatus.FAILED:
        first = imported.errors[0] if imported.errors else {}
        reason = (
            f"{imported.error_count} 处数据校验错误，未导入任何数据（第 {imported.id} 次导入的错误报告）；"
            f"首个：第 {first.get('row', '?')} 条 {first.get('column', '')} {first.get('message', '')}"
        )
        return failed(PullFailure.INVALID_ROWS, reason, import_id=imported.id, **got)
    note = f"与第 {imported.id} 次导入内容相同，未作变更" if imported.duplicate else ""
    row = repo.add_pull(
        session=session,
        **base,
        status=PullStatus.SUCCEEDED,
        watermark=pulled.watermark or since,
        import_id=imported.id,
        reason=note,
        **got,
    )
    return PullResult.of(row, imported)


def pulls(*, session: Session, scope: Scope, source_name: str | None = None) -> list[PullResult]:
    """Recent pulls, newest first (administrators and the importing departments)."""
    archive._can_import(scope)
    return [PullResult.of(r) for r in repo.list_pulls(session=session, source=source_name)]
