"""Archive activities: one pull of a source's dataset from the data-sharing platform, imported in one transaction.

A pull that failed on something that passes (timeout, a partial page) is recorded and raised as retryable; one that
needs people (schema drift, a refusal, rows that fail validation) is recorded and raised as non-retryable, so the
scheduled run shows as failed in Temporal as well as in the pull list: never swallowed.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from db.session import transaction
from gateways.datashare import DataShareClient
from schemas.datashare import PullRequest, PullSummary
from schemas.vocabulary import PullStatus
from services import archive_pull

# Failures a retry cannot mend: the workflow fails at once with the Chinese reason.
NON_RETRYABLE = ["DataShareSchemaDrift", "DataShareRefused", "DataShareInvalidRows", "DataShareNotConfigured"]
_ERROR_TYPES = {"schema_drift": "DataShareSchemaDrift", "refused": "DataShareRefused",
                "invalid_rows": "DataShareInvalidRows", "timeout": "DataShareUnavailable",
                "partial_page": "DataSharePartial"}  # fmt: skip


class ArchiveActivities:
    def __init__(self, *, db_url: str, datashare: DataShareClient | None) -> None:
        self.db_url = db_url
        self.datashare = datashare

    @activity.defn
    def pull_source(self, request: PullRequest) -> PullSummary:
        if self.datashare is None:
            raise ApplicationError("未配置数据共享平台（ZHIDA_DATASHARE_URL）", type="DataShareNotConfigured",
                                   non_retryable=True)  # fmt: skip
        with transaction(self.db_url) as session:
            result = archive_pull.pull(
                session=session,
                scope=archive_pull.PULLER,
                client=self.datashare,
                source_name=request.source,
                trigger=request.trigger,
            )
        summary = PullSummary(pull_id=result.id, source=result.source, status=result.status, records=result.records,
                              import_id=result.import_id, watermark=result.watermark, reason=result.reason)  # fmt: skip
        if result.status == PullStatus.FAILED:
            kind = _ERROR_TYPES.get(result.failure or "", "DataShareError")
            raise ApplicationError(f"第 {result.id} 次拉取失败：{result.reason}", summary.model_dump(), type=kind,
                                   non_retryable=not result.retryable)  # fmt: skip
        return summary
