"""Signed-in sessions: a token signed out (logout) is on the denylist and refused until it would have expired."""

from __future__ import annotations

from sqlalchemy.orm import Session

from db.repositories import tokens
from schemas.principal import Principal
from schemas.vocabulary import AuditKind
from services import audit
from services.errors import Unauthorized


def check_active(*, session: Session, principal: Principal) -> None:
    """Raises Unauthorized when the caller's token has been signed out."""
    if principal.token_id and tokens.is_revoked(session=session, jti=principal.token_id):
        raise Unauthorized("访问令牌已注销（已退出登录），请重新登录")


def sign_out(*, session: Session, principal: Principal) -> None:
    """Put the caller's token on the denylist; recorded in the audit chain."""
    if principal.token_id:
        tokens.revoke(session=session, jti=principal.token_id, expires_at=principal.expires_at)
    audit.record(session=session, kind=AuditKind.SIGN_OUT, actor=principal.actor,
                 subject=f"session:{principal.token_id}")  # fmt: skip


def sign_in(*, session: Session, principal: Principal, method: str) -> None:
    """Record a sign-in to the pages (method: token, identity service or the development list)."""
    audit.record(session=session, kind=AuditKind.SIGN_IN, actor=principal.actor,
                 subject=f"session:{principal.token_id}", data={"method": method})  # fmt: skip


def sign_in_refused(*, session: Session, actor: str, method: str, rule: str | None, client: str | None) -> None:
    """Record a refused sign-in (等保 2.0: failed logins are security events): who the token claimed to be, when it
    could be read at all (`anonymous` otherwise), why, and from where — never the token."""
    audit.record(session=session, kind=AuditKind.SIGN_IN_REFUSED, actor=actor, subject=f"login:{method}",
                 data={"rule": rule or "refused", "client": (client or "")[:64]})  # fmt: skip


def sign_in_choices(*, session: Session) -> list[dict]:
    """The development sign-in list: administrator, every department and finance bureau, the first enterprises —
    each with the role and subject its token will carry and a Chinese label."""
    from schemas.vocabulary import DepartmentKind, Role

    role_of = {
        DepartmentKind.FINANCE: Role.FINANCE,
        DepartmentKind.POLICY: Role.DEPARTMENT,
        "enterprise": Role.ENTERPRISE,
    }
    choices = [{"role": Role.ADMIN.value, "subject": "admin", "name": "平台管理员", "label": Role.ADMIN.label}]
    for kind, code, name in tokens.sign_in_identities(session=session):
        role = role_of.get(kind, Role.DEPARTMENT)
        choices.append({"role": role.value, "subject": code, "name": name, "label": f"{role.label} · {name}"})
    return choices
