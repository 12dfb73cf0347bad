"""The daily audit verification: every chain checked with the key; a failure raises an alert for the finance bureau
and the administrators (one per day, like a reconciliation mismatch)."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from db.repositories import reconciliation as alerts
from db.session import transaction
from schemas.audit import AuditCheckIn, AuditCheckOut
from schemas.localtime import local_date
from schemas.vocabulary import AlertKind
from services import audit, sessions


class AuditActivities:
    def __init__(self, *, db_url: str) -> None:
        self.db_url = db_url

    @activity.defn
    def verify_audit_chains(self, request: AuditCheckIn) -> AuditCheckOut:
        with transaction(self.db_url) as session:
            # Refused sign-ins suppressed in a minute no later refusal came after: their summary records, first.
            sessions.flush_refusals(session=session)
        with transaction(self.db_url) as session:
            report = audit.verify(session=session, scope=None)
            alert_id = None
            if not report.ok:
                first = report.broken[0]
                where = f"办件 {first['case_id']}" if first["case_id"] is not None else "审计记录"
                message = (f"审计链校验失败：{len(report.broken)} 处不符（{report.cases} 件办件，{report.records} 条审计"
                           f"记录）；首处：{where}，{first['problem']}。请用 zhida audit verify 查看全部")  # fmt: skip
                day = local_date(datetime.now(UTC)).isoformat()
                alert_id = alerts.raise_alert(
                    session=session, kind=AlertKind.AUDIT_BROKEN, ref=f"audit:{day}", message=message
                ).id
        return AuditCheckOut(ok=report.ok, cases=report.cases, records=report.records, broken=len(report.broken),
                             alert_id=alert_id)  # fmt: skip
