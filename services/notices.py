"""Notices (SMS) use cases. Placeholder in this branch: only `schedule_listing_push`, for the fund item listing path."""

from __future__ import annotations

from sqlalchemy.orm import Session


def schedule_listing_push(*, session: Session, fund_item_id: int, actor: str) -> None:
    """Record that the listing push of a fund item is due.

    PLACEHOLDER until the notices service lands: it still queues the push at once via push_on_listed; the real one
    only records the due push and leaves the sending to the SMS dispatcher.
    """
    from activities.notices import push_on_listed

    push_on_listed(session, fund_item_id, actor=actor)
