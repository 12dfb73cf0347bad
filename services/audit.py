"""The audit chain: recording what is not a case event (configuration changes, archive edits, decisions, sign-ins
and sign-outs, exports) and verifying every chain (each case's keyed event chain and the chain of audit records,
each against its anchored head). Records are written in the caller's transaction, so a change and its record commit
together or not at all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from db.repositories import audit, audit_once
from schemas.audit import AuditNote
from schemas.vocabulary import AuditKind, Role
from services.errors import Forbidden
from services.scope import Scope


def record(*, session: Session, kind: str, actor: str, subject: str, data: dict | None = None) -> None:
    """Append one audit record (kind from AuditKind; subject names what it is about, e.g. `fund_item:YC-…`)."""
    audit.append(session=session, kind=kind, actor=actor, subject=subject, data=data)


def record_note(*, session: Session, note: AuditNote) -> None:
    """The audit record a workflow step carries (a person's decision), written in the step's own transaction: the
    step writes it only with an effect that is new, so Temporal's retries write it once and a crash writes neither.
    Writing it after the workflow accepted the update, in a second transaction, could lose it to a crash between."""
    if note.once and not audit_once.claim(session=session, key=note.once):
        return  # written already (a retried step)
    record(session=session, kind=note.kind, actor=note.actor, subject=note.subject, data=note.data)


def record_decode(*, session: Session, scope: Scope, payloads: int, key_ids: list[str], namespace: str,
                  workflow_id: str | None) -> None:  # fmt: skip
    """An operator read workflow payloads in plaintext (the Temporal Web UI's codec endpoint): who, how many, under
    which keys, in which namespace and, when the caller says, for which workflow — never what they hold."""
    if scope.role != Role.ADMIN:
        raise Forbidden("只有平台管理员可以查看工作流载荷", rule="role")
    record(session=session, kind=AuditKind.PAYLOAD_DECODED, actor=scope.actor,
           subject=f"workflow:{workflow_id}" if workflow_id else f"namespace:{namespace}",
           data={"payloads": payloads, "decrypted": len(key_ids), "key_ids": sorted(set(key_ids)),
                 "namespace": namespace, "workflow_id": workflow_id})  # fmt: skip


@dataclass
class AuditReport:
    cases: int = 0
    broken: list[dict] = field(default_factory=list)
    records: int = 0

    @property
    def ok(self) -> bool:
        return not self.broken


def verify(*, session: Session, scope: Scope | None, progress: Callable[[int, int], None] | None = None) -> AuditReport:
    """Check every case's chain and the chain of audit records; `progress(done, total)` counts cases and records.
    `scope` None: the operator's command or the daily schedule."""
    if scope is not None and scope.role != Role.ADMIN:
        raise Forbidden("只有平台管理员可以校验审计链", rule="role")
    ids = audit.case_ids(session=session)
    records = audit.record_count(session=session)
    total = len(ids) + records
    report = AuditReport(cases=len(ids), records=records)
    done = 0
    for done, (_, broken) in enumerate(audit.verify_all(session=session, ids=ids), start=1):
        if broken is not None:
            report.broken.append({"case_id": broken.case_id, "seq": broken.seq, "problem": broken.problem})
        if progress is not None:
            progress(done, total)
    checked = done

    def step(n: int) -> None:
        nonlocal checked
        checked += n
        if progress is not None:
            progress(checked, total)

    broken = audit.verify_records(session=session, progress=step)
    if broken is not None:
        report.broken.append({"case_id": None, "seq": broken.seq, "problem": broken.problem})
    return report


def reanchor(*, session: Session, scope: Scope | None, actor: str) -> list[int]:
    """Anchor the case chains written before anchors existed (migration d5) whose keyed hashes hold; recorded as
    its own audit event. A chain whose hashes do not hold stays unanchored and keeps failing verification."""
    if scope is not None and scope.role != Role.ADMIN:
        raise Forbidden("只有平台管理员可以重新锚定审计链", rule="role")
    done = audit.reanchor_cases(session=session, ids=audit.unanchored_cases(session=session))
    record(session=session, kind=AuditKind.REANCHOR, actor=actor, subject="case_chain",
           data={"cases": len(done), "case_ids": done[:1000]})  # fmt: skip
    return done
