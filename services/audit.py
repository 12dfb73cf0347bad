"""Verifying the audit chain: every case's keyed event chain against its anchored head (administrators)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from db.repositories import audit
from schemas.vocabulary import Role
from services.errors import Forbidden
from services.scope import Scope


@dataclass
class AuditReport:
    cases: int = 0
    broken: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.broken


def verify(*, session: Session, scope: Scope | None, progress: Callable[[int, int], None] | None = None) -> AuditReport:
    """Check every case's chain; `progress(done, total)` after each case. `scope` None: the operator's command."""
    if scope is not None and scope.role != Role.ADMIN:
        raise Forbidden("只有平台管理员可以校验审计链", rule="role")
    ids = audit.case_ids(session=session)
    report = AuditReport(cases=len(ids))
    for done, (_, broken) in enumerate(audit.verify_all(session=session, ids=ids), start=1):
        if broken is not None:
            report.broken.append({"case_id": broken.case_id, "seq": broken.seq, "problem": broken.problem})
        if progress is not None:
            progress(done, len(ids))
    return report
