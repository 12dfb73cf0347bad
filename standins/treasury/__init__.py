"""The treasury stand-in (国库集中支付模拟): a separate process that plays the treasury and its bank.

It accepts signed instructions (JSON over HTTP, or ISO 20022 pain.001 files in a drop folder), settles them
after a delay, keeps a ledger of what it paid and what came back, produces a signed daily statement (对账单),
and calls back each instruction's NotifyUrl (when it has one) until a 2xx. Faults can be injected over HTTP
(`PUT /admin/faults`): timeouts, 5xx, duplicate and out-of-order callbacks, passive returns (退票), failed
lines inside a batch, statement gaps and amount errors; active returns (主动退回) are an admin action. All
state except the fault rules lives in its own database, so a restart resumes pending settlements, returns
and undelivered callbacks. Protocol: docs/treasury-protocol.md.

Modules: app (HTTP, signing, the background loops), ledger (instructions and money), callbacks, files
(the ISO 20022 channel), statement (对账单), faults and contracts (the fault rules), tables, admin (the client
tests and operators use).
"""

from standins.treasury.admin import StandInAdmin
from standins.treasury.app import TreasuryStandIn, create_app, serve
from standins.treasury.contracts import ActiveReturn, FaultRule, FaultSettings
from standins.treasury.ledger import REASON_ACTIVE_RETURN, REASON_NAME_MISMATCH, REASON_NO_ACCOUNT, REASON_RETURN_NAME
from standins.treasury.statement import STATEMENT_TZ
from standins.treasury.tables import ledger_lines

__all__ = [
    "REASON_ACTIVE_RETURN",
    "REASON_NAME_MISMATCH",
    "REASON_NO_ACCOUNT",
    "REASON_RETURN_NAME",
    "STATEMENT_TZ",
    "ActiveReturn",
    "FaultRule",
    "FaultSettings",
    "StandInAdmin",
    "TreasuryStandIn",
    "create_app",
    "ledger_lines",
    "serve",
]
