"""The Jinja2 environment of the Chinese pages, with one filter per vocabulary so labels never depend on the page."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates
from jinja2 import pass_context

from api.security import csrf_field, request_csrf_token
from rules.money import format_yuan
from schemas.localtime import format_deadline, format_local
from schemas.vocabulary import (
    AlertKind,
    AlertStatus,
    CampaignKind,
    CaseStatus,
    ConsentStatus,
    FinanceStatus,
    FundItemMode,
    FundItemStatus,
    NoticeCategory,
    NoticeStatus,
    PaymentStatus,
    PushKind,
    ReconLineType,
    ReconOutcome,
    ReconTrigger,
    Role,
    event_label,
    render_actor,
)

templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
FILTERS = {
    "yuan": lambda fen: "—" if fen is None else format_yuan(fen),
    "bj": format_local,  # stored in UTC, read in Beijing time
    "deadline": format_deadline,  # a due moment as its last day (and time unless it is midnight)
    "case_status": CaseStatus.label_of,
    "payment_status": PaymentStatus.label_of,
    "notice_status": NoticeStatus.label_of,
    "notice_category": NoticeCategory.label_of,
    "push_kind": PushKind.label_of,
    "item_status": FundItemStatus.label_of,
    "mode": FundItemMode.label_of,
    "recon_outcome": ReconOutcome.label_of,
    "alert_status": AlertStatus.label_of,
    "event_kind": event_label,
    "campaign_kind": CampaignKind.label_of,
    "consent_status": ConsentStatus.label_of,
    "finance_status": FinanceStatus.label_of,
    "recon_line_type": ReconLineType.label_of,
    "recon_trigger": ReconTrigger.label_of,
    "alert_kind": AlertKind.label_of,
    "role": Role.label_of,
    # Basis points as a percent with two decimals (1234 → 12.34%); working days (None → —).
    "percent": lambda bp: "—" if bp is None else f"{bp // 100}.{bp % 100:02d}%",
    "days": lambda d: "—" if d is None else f"{d:g} 个工作日",
    # {{ e.actor|actor(names) }}: names maps department codes and USCCs to names, looked up by the page's service.
    "actor": lambda value, names=None: render_actor(value, names=names),
    "filesize": lambda n: f"{n / 1048576:.1f} MB" if n >= 104858 else f"{max(1, round(n / 1024))} KB",
}
templates.env.filters.update(FILTERS)
# Templates compare with the vocabulary, never with literals: {% if r.mode == FundItemMode.INSTANT %}.
templates.env.globals.update(FundItemMode=FundItemMode, CaseStatus=CaseStatus)
templates.env.tests["matched"] = lambda outcome: outcome == ReconOutcome.MATCHED  # {% if l.outcome is matched %}
# {{ csrf_field() }} inside every form that posts: the token api/security.py checks.
templates.env.globals["csrf_field"] = pass_context(csrf_field)
# {{ csrf_token() }}: the same token for htmx, sent as X-CSRF-Token from <body hx-headers> in base.html.
templates.env.globals["csrf_token"] = pass_context(lambda context: request_csrf_token(context["request"]))
