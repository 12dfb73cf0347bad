"""Which patches a case workflow runs with: read from the version in its input, not from a marker in its history.

`workflow.patched(name)` records a marker on first use and upserts the TemporalChangeVersion search attribute, which
the server validates against the namespace's search attributes. `zhida bench temporal-shapes`: the instant case's
commands cost the dev server 14.6 persistence requests per workflow, with two patches 24.5 (a bare two-activity
workflow: 23.4); `zhida bench instant-latency`: 25.1 per real case before, 17.2 after. A case started by this code
carries CASE_CODE_VERSION in its input: every patch made standard by that version is simply true for it, with no
marker and no upsert. A case started before (version 0 in its input) still asks `workflow.patched`, so its history
replays as recorded, markers and all.

A new patch is added the usual way (`patched(name, version)` with a name not listed below records its marker);
when it has become the only path, list it under the next version and raise CASE_CODE_VERSION.
"""

from __future__ import annotations

from temporalio import workflow

ACCEPT_AND_SEND = "accept-and-send"
SEND_LOCAL_FIRST = "send-payment-local-first"
SETTLE_WITH_RESULT = "settle-with-result"
REVIEW_ELIGIBILITY_AT_APPLICATION = "review-eligibility-at-application"
STAGE_TIMEOUT_WITHOUT_REMINDER = "stage-timeout-without-reminder"
PUBLICITY_DEADLINE_MOVES = "publicity-deadline-moves"

# The version the case starters put into CaseInput.code_version.
CASE_CODE_VERSION = 1
# Patch → the first code version in which every new case takes its patched path.
STANDARD_SINCE = {
    ACCEPT_AND_SEND: 1,
    SEND_LOCAL_FIRST: 1,
    SETTLE_WITH_RESULT: 1,
    REVIEW_ELIGIBILITY_AT_APPLICATION: 1,
    STAGE_TIMEOUT_WITHOUT_REMINDER: 1,
    PUBLICITY_DEADLINE_MOVES: 1,
}


def patched(patch: str, code_version: int) -> bool:
    """True when the case takes the patched path: always from the version that made it standard, otherwise as
    `workflow.patched` says (a marker in a recorded history, or a new one for a running case of an older version)."""
    since = STANDARD_SINCE.get(patch)
    if since is not None and code_version >= since:
        return True
    return workflow.patched(patch)
