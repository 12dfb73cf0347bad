"""Enterprises: registration (with the registration push), an enterprise's cases and notices as the caller may see
them, and archive edits, which only the owners of the data make and which every open case they touch records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from db import crypto
from db.models import Enterprise, Notice
from db.repositories import campaigns, cases, enterprises
from schemas.campaigns import EnterpriseUpdate
from schemas.cases import CaseOut, NoticeOut
from schemas.notices import EnterpriseRegister, EnterpriseRegistered
from schemas.portal import PayoutAccountIn, PayoutAccountOut
from schemas.vocabulary import ArchiveSource, AuditKind, EventKind, Role
from services import archive as archive_service
from services import audit
from services import cases as case_service
from services import notices as notice_service
from services.errors import Conflict, Forbidden, Invalid
from services.scope import Scope


def register(*, session: Session, scope: Scope, body: EnterpriseRegister, fernet_key: str) -> EnterpriseRegistered:
    """A new enterprise (by itself, or by the platform from registration data); Yichang rules art. 26: the listed
    fund items it matches are pushed to it by SMS at once (unless it refuses pushes)."""
    if scope.role not in (Role.ENTERPRISE, Role.ADMIN):
        raise Forbidden("只有企业本身或管理员可以登记企业", rule="role")
    if scope.role == Role.ENTERPRISE and scope.principal.subject != body.uscc:
        raise Forbidden("企业只能登记本企业（令牌的统一社会信用代码与 uscc 不符）", field="uscc")
    if enterprises.get_by_uscc(session=session, uscc=body.uscc) is not None:
        raise Conflict(f"uscc：企业 {body.uscc} 已登记", field="uscc")
    phone = body.contact_phone
    if body.payout_account is not None:
        check_account_name(body.payout_account, enterprise_name=body.name, field="payout_account.acct_name")
    enterprise = enterprises.add(
        session=session,
        enterprise=Enterprise(
            **body.model_dump(exclude={"contact_phone", "push_opt_out", "payout_account"}),
            contact_phone_enc=crypto.encrypt(fernet_key, phone) if phone else None,
            contact_phone_masked=crypto.mask_phone(phone) if phone else None,
            push_opt_out=body.push_opt_out,
            push_opted_out_at=datetime.now(UTC) if body.push_opt_out else None,
        ),
    )
    if body.payout_account is not None:
        _keep_account(enterprise, body.payout_account, fernet_key)
        session.flush()
    pushed = notice_service.push_on_registered(session=session, enterprise=enterprise, actor=scope.actor)
    return EnterpriseRegistered(
        id=enterprise.id,
        uscc=enterprise.uscc,
        name=enterprise.name,
        contact_phone_masked=enterprise.contact_phone_masked,
        push_opt_out=enterprise.push_opt_out,
        push=pushed.counts(),
    )


def notices_of(*, session: Session, scope: Scope, uscc: str) -> list[NoticeOut]:
    """An enterprise's notices as the caller may see them, newest first (phone numbers masked)."""
    enterprise = notice_service.enterprise_in_scope(session=session, scope=scope, uscc=uscc)
    found = notice_service.visible_notices(session=session, scope=scope, enterprise=enterprise)
    return [NoticeOut.model_validate(n, from_attributes=True) for n in found]


def cases_of(*, session: Session, scope: Scope, uscc: str) -> list[CaseOut]:
    """An enterprise's cases that the caller may see, newest first."""
    enterprise = notice_service.enterprise_in_scope(session=session, scope=scope, uscc=uscc)
    return case_service.for_enterprise(session=session, scope=scope, enterprise_id=enterprise.id)


@dataclass(frozen=True)
class EnterprisePage:
    enterprise: Enterprise
    cases: list[CaseOut]
    notices: list[Notice]


def page(*, session: Session, scope: Scope, uscc: str) -> EnterprisePage:
    """The enterprise page: its cases and notices as the caller may see them."""
    enterprise = notice_service.enterprise_in_scope(session=session, scope=scope, uscc=uscc)
    return EnterprisePage(
        enterprise,
        case_service.for_enterprise(session=session, scope=scope, enterprise_id=enterprise.id),
        notice_service.visible_notices(session=session, scope=scope, enterprise=enterprise),
    )


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, list | tuple) else value


def update_archive(
    *, session: Session, scope: Scope, uscc: str, body: EnterpriseUpdate, source: str = "manual"
) -> dict[str, Any]:
    """Change archive data (a new qualification, tax data): only an administrator, and only for the source that owns
    every field changed (schemas/archive_sources.py; a manual edit of a source's field is refused); the change is kept
    with actor and source and in the value history, shows in the timeline of every open case of the enterprise, and
    open no-application items are re-checked for it."""
    if scope.role != Role.ADMIN:
        raise Forbidden("企业档案只能由管理员或数据共享平台维护", field="uscc", rule="archive_owner")
    if source not in ArchiveSource.values():
        raise Invalid(f"数据来源 {source!r} 不存在", field="source", rule="known_source")
    enterprise = notice_service.enterprise_in_scope(session=session, scope=scope, uscc=uscc)
    wanted = body.model_dump(exclude_unset=True, exclude_none=True)
    if not wanted:
        raise Invalid("没有要更新的字段", field="body")
    archive_service.refuse_foreign(fields=tuple(wanted), by=source)
    changes = {
        name: {"from": _plain(getattr(enterprise, name)), "to": _plain(value)}
        for name, value in wanted.items()
        if _plain(getattr(enterprise, name)) != _plain(value)
    }
    for name, value in wanted.items():
        setattr(enterprise, name, value)
    session.flush()
    if changes:
        change = enterprises.record_change(
            session=session, enterprise_id=enterprise.id, actor=scope.actor, source=source, changes=changes
        )
        archive_service.record_manual(
            session=session, enterprise_id=enterprise.id, source=source, changes=changes, archive_change_id=change.id
        )
        reason = f"{ArchiveSource.label_of(source, source)}：变更 {', '.join(sorted(changes))}"
        for case in cases.open_for_enterprise(session=session, enterprise_id=enterprise.id):
            cases.record(
                session=session,
                case=case,
                key=f"archive_changed:{change.id}",
                kind=EventKind.ARCHIVE_CHANGED,
                actor=scope.actor,
                reason=reason,
                data={"archive_change_id": change.id, "source": source, "changes": changes},
            )
    if changes:
        audit.record(session=session, kind=AuditKind.ARCHIVE_EDIT, actor=scope.actor,
                     subject=f"enterprise:{enterprise.id}", data={"source": source, "fields": sorted(changes),
                                                                  "archive_change_id": change.id})  # fmt: skip
    registered = campaigns.reevaluate_enterprise(session=session, enterprise_id=enterprise.id, actor=scope.actor)
    return {"uscc": uscc, "updated": sorted(wanted), "reevaluations": [c.workflow_id for c in registered]}


# -- the payout account (收款账户) -------------------------------------------------------------------------------------


def check_account_name(account: PayoutAccountIn, *, enterprise_name: str, field: str = "acct_name") -> None:
    """A subsidy is paid only to the enterprise's own account: 户名 must be its registered name, character for
    character (the treasury rejects a mismatch, and a different payee would be a diversion of funds)."""
    if account.acct_name != enterprise_name.strip():
        raise Invalid(
            f"{field}：户名“{account.acct_name}”与企业登记名称“{enterprise_name}”不一致，"
            "收款账户户名须与企业登记名称完全一致",
            field=field,
            rule="account_name_matches_enterprise",
        )


def _keep_account(enterprise: Enterprise, account: PayoutAccountIn, fernet_key: str) -> None:
    enterprise.bank_account_enc = crypto.encrypt(fernet_key, account.acct_no)
    enterprise.bank_account_masked = crypto.mask_account(account.acct_no)
    enterprise.bank_account_name = account.acct_name
    enterprise.bank_name = account.bank_name
    enterprise.bank_code = account.bank_code


def account_of(enterprise: Enterprise) -> PayoutAccountOut | None:
    """The payout account as pages show it (masked), or None when there is none."""
    if not enterprise.bank_account_enc:
        return None
    return PayoutAccountOut(
        acct_name=enterprise.bank_account_name,
        acct_no_masked=enterprise.bank_account_masked,
        bank_name=enterprise.bank_name,
        bank_code=enterprise.bank_code,
    )


def set_payout_account(
    *, session: Session, scope: Scope, uscc: str, body: PayoutAccountIn, fernet_key: str
) -> PayoutAccountOut:
    """The enterprise files or changes its own payout account (cases already paying keep the instruction they have;
    a case waiting for a corrected account is corrected on its own case page)."""
    if scope.role not in (Role.ENTERPRISE, Role.ADMIN):
        raise Forbidden("只有企业本身可以填写收款账户", rule="role")
    enterprise = notice_service.enterprise_in_scope(session=session, scope=scope, uscc=uscc)
    check_account_name(body, enterprise_name=enterprise.name)
    _keep_account(enterprise, body, fernet_key)
    session.flush()
    # The account itself stays out of the audit (it is personal data): who changed it, and the masked form.
    audit.record(session=session, kind=AuditKind.ARCHIVE_EDIT, actor=scope.actor, subject=f"enterprise:{enterprise.id}",
                 data={"field": "payout_account", "masked": enterprise.bank_account_masked})  # fmt: skip
    out = account_of(enterprise)
    assert out is not None
    return out
