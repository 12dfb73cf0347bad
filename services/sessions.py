"""Signed-in sessions: a token signed out (logout) is on the denylist and refused until it would have expired; a
token's first use is an audit record (`zhida token` mints without a database, so its issue is recorded when the API
first sees it); refused sign-ins are audit records up to a limit per client address and minute, the rest counted
into one summary record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from db.repositories import audit_once, sign_in_throttle, tokens
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
    """Record a sign-in to the pages (method: token, identity service or the development list). When the session's
    token was not used before, this record is its first use too (role, subject, jti, issue and expiry, `first_use`),
    so the token gets no second record when the pages use it."""
    data: dict = {"method": method}
    if _claim_first_use(session=session, principal=principal):
        data |= {"first_use": True, **_token_facts(principal)}
    audit.record(session=session, kind=AuditKind.SIGN_IN, actor=principal.actor,
                 subject=f"session:{principal.token_id}", data=data)  # fmt: skip


# -- a token's first use -------------------------------------------------------------------------------------------

# The jtis this process has seen recorded (jti → expiry): the common request finds its token here and writes nothing.
# Bounded: past the bound the expired ones go, and if that is not enough all of them (the database still writes each
# record once; a forgotten jti costs one insert that finds its key).
_recorded: dict[str, int] = {}
RECORDED_CACHE_SIZE = 50_000
# Every this many first uses this process records, the keys of expired tokens are swept (the first one too).
SWEEP_EVERY = 100
_claims = 0


def first_use_recorded(principal: Principal) -> bool:
    """Whether this process knows the token's first use is recorded (or the token has no jti to record it by)."""
    return not principal.token_id or principal.token_id in _recorded


def remember_first_use(principal: Principal, *, now: float | None = None) -> None:
    """Call after the transaction that recorded the first use committed."""
    if not principal.token_id:
        return
    if len(_recorded) >= RECORDED_CACHE_SIZE:
        moment = int(now if now is not None else datetime.now(UTC).timestamp())
        for jti in [j for j, exp in _recorded.items() if exp < moment]:
            _recorded.pop(jti, None)
        if len(_recorded) >= RECORDED_CACHE_SIZE:
            _recorded.clear()
    _recorded[principal.token_id] = principal.expires_at


def forget_first_uses() -> None:
    """Empty this process's cache (tests: another process has not seen these tokens)."""
    _recorded.clear()


def _moment(seconds: int) -> str | None:
    return datetime.fromtimestamp(seconds, UTC).isoformat() if seconds else None


def _claim_first_use(*, session: Session, principal: Principal) -> bool:
    """Claim `token:<jti>` (insert-if-absent): True when this transaction is the token's first use."""
    if not principal.token_id:
        return False
    expires = datetime.fromtimestamp(principal.expires_at, UTC) if principal.expires_at else None
    if not audit_once.claim(session=session, key=f"token:{principal.token_id}", expires_at=expires):
        return False
    global _claims
    _claims += 1
    if _claims % SWEEP_EVERY == 1:  # now and then, not on every first use: the keys of expired tokens go
        audit_once.sweep(session=session)
    return True


def _token_facts(principal: Principal) -> dict:
    return {"role": principal.role.value, "subject": principal.subject, "jti": principal.token_id,
            "issued_at": _moment(principal.issued_at), "expires_at": _moment(principal.expires_at)}  # fmt: skip


def record_first_use(*, session: Session, principal: Principal) -> bool:
    """The audit record of a token's first use: subject, role, jti, issued-at and expiry — once per jti, whichever
    request or process gets there first (insert-if-absent of `token:<jti>`). True when this call wrote it."""
    if not _claim_first_use(session=session, principal=principal):
        return False
    audit.record(session=session, kind=AuditKind.TOKEN_FIRST_USED, actor=principal.actor,
                 subject=f"token:{principal.token_id}", data=_token_facts(principal))  # fmt: skip
    return True


# -- refused sign-ins -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """What became of a refused sign-in: recorded one by one, or only counted (the client is over its limit)."""

    recorded: bool
    limit: int
    retry_after: int  # seconds until the client's minute is over

    @property
    def message(self) -> str:
        return f"登录失败次数过多，请稍后再试（同一地址每分钟最多失败 {self.limit} 次，请 {self.retry_after} 秒后重试）"


def sign_in_refused(*, session: Session, actor: str, method: str, rule: str | None, client: str | None,
                    limit: int = 20, now: datetime | None = None) -> Refusal:  # fmt: skip
    """Record a refused sign-in (等保 2.0: failed logins are security events): who the token claimed to be, when it
    could be read at all (`anonymous` otherwise), why, and from where — never the token.

    At most `limit` records per client address and minute: beyond that the refusal is only counted (the caller answers
    429), and the count goes into one summary record (`sign_in_refused_suppressed`, data suppressed=k) once the
    minute is over — written by the next refused sign-in from anywhere, or by `flush_refusals` (the daily audit run).
    """
    moment = now or datetime.now(UTC)
    address = (client or "")[:64]
    window = int(moment.timestamp()) // 60
    counted = sign_in_throttle.count(session=session, client=address, window=window, limit=limit)
    flush_refusals(session=session, now=moment)
    retry_after = 60 - int(moment.timestamp()) % 60
    if counted.refused > limit:
        return Refusal(recorded=False, limit=limit, retry_after=retry_after)
    audit.record(session=session, kind=AuditKind.SIGN_IN_REFUSED, actor=actor, subject=f"login:{method}",
                 data={"rule": rule or "refused", "client": address})  # fmt: skip
    return Refusal(recorded=True, limit=limit, retry_after=retry_after)


def flush_refusals(*, session: Session, now: datetime | None = None) -> int:
    """Write the summary record of every ended minute in which refusals were suppressed; returns how many."""
    moment = now or datetime.now(UTC)
    written = 0
    for ended in sign_in_throttle.take_ended(session=session, before=int(moment.timestamp()) // 60):
        if not ended.suppressed:
            continue
        start = datetime.fromtimestamp(ended.window * 60, UTC)
        audit.record(session=session, kind=AuditKind.SIGN_IN_REFUSED_SUPPRESSED, actor="anonymous",
                     subject=f"client:{ended.client}",
                     data={"client": ended.client, "suppressed": ended.suppressed, "refused": ended.refused,
                           "recorded": ended.refused - ended.suppressed, "window_start": start.isoformat(),
                           "window_seconds": 60})  # fmt: skip
        written += 1
    return written


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
