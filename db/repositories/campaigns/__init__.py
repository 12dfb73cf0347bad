"""No-application campaigns in bulk SQL: match, freeze evidence, reserve, consent, publicity, finance, pay, settle.

Every batch function works on one batch of a campaign's cases selected by status, so a retried activity finds only
what is left to do. The writes go through the repositories that own them, in their bulk form: case events through
`cases.record_many` (the same hash chain as `cases.record`), the ledger through `budget.reserve_many`,
`commit_many` and `release_many` (budget lines move by the batch's sums under the conditional UPDATE, so the CHECK
constraints still hold), instructions through `payments.create_many` and notices through `notices.enqueue_many`.
"""

from db.repositories.budget import BudgetMoved
from db.repositories.campaigns.consent import collect_batch, consent_notify_batch, open_consent, record_consent
from db.repositories.campaigns.matching import MatchOut, match_batch
from db.repositories.campaigns.objections import file_objection, rule_objection
from db.repositories.campaigns.payment import (
    Payer,
    accepted_vouchers,
    create_instructions,
    open_payments,
    settle_batch,
    unsent,
)
from db.repositories.campaigns.progress import case_status_counts, cases_page, progress_counts
from db.repositories.campaigns.registry import (
    Context,
    context,
    for_item,
    frozen_fields,
    get,
    item_config,
    listing_workflow_id,
    mark_started,
    pending,
    reevaluate_enterprise,
    register_listing,
    register_reevaluation,
    set_phase,
)
from db.repositories.campaigns.reserving import plan_budget, reserve_batch
from db.repositories.campaigns.tranches import (
    finance_batch,
    finance_event,
    objected,
    open_tranche,
    publicity_batch,
    record_finance,
    set_publicity,
    tranche,
    tranches,
)

__all__ = [
    "BudgetMoved",
    "Context",
    "MatchOut",
    "Payer",
    "accepted_vouchers",
    "case_status_counts",
    "cases_page",
    "collect_batch",
    "consent_notify_batch",
    "context",
    "create_instructions",
    "file_objection",
    "finance_batch",
    "finance_event",
    "for_item",
    "frozen_fields",
    "get",
    "item_config",
    "listing_workflow_id",
    "mark_started",
    "match_batch",
    "objected",
    "open_consent",
    "open_payments",
    "open_tranche",
    "pending",
    "plan_budget",
    "progress_counts",
    "publicity_batch",
    "record_consent",
    "record_finance",
    "reevaluate_enterprise",
    "register_listing",
    "register_reevaluation",
    "reserve_batch",
    "rule_objection",
    "set_phase",
    "set_publicity",
    "settle_batch",
    "tranche",
    "tranches",
    "unsent",
]
