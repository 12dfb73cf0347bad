"""Campaign notices in bulk: one per case and stage, rendered once and queued through the notices repository."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db import bulk
from db.models import Notice
from db.repositories import notices
from db.repositories.campaigns.common import ent_t, now
from db.repositories.campaigns.registry import Context
from rules import sms_templates
from schemas.vocabulary import NoticeCategory, NoticeStatus

notice_t = Notice.__table__


def queue_notices(
    *,
    session: Session,
    ctx: Context,
    stage: str,
    template: str,
    rows: Sequence[tuple[int, int, dict[str, Any]]],
    beat: bulk.Beat = bulk.no_beat,
) -> int:
    """Bulk notices (case_id, enterprise_id, extra params) with dedupe keys case:{id}:{stage}."""
    if not rows:
        return 0
    info: dict[int, tuple[str, str | None, str | None]] = {}
    ent_ids = sorted({r[1] for r in rows})
    for chunk in bulk.chunks(ent_ids):
        for eid, name, enc, masked in session.execute(
            select(ent_t.c.id, ent_t.c.name, ent_t.c.contact_phone_enc, ent_t.c.contact_phone_masked).where(
                bulk.among(session, ent_t.c.id, chunk)
            )
        ).all():
            info[eid] = (name, enc, masked)
    keys = [f"case:{cid}:{stage}" for cid, _, _ in rows]
    existing: set[str] = set()
    for chunk in bulk.chunks(keys):
        existing |= set(
            session.scalars(select(notice_t.c.dedupe_key).where(bulk.among(session, notice_t.c.dedupe_key, chunk)))
        )
    created = now()
    out = []
    for (cid, eid, extra), key in zip(rows, keys, strict=True):
        if key in existing:
            continue
        name, enc, masked = info[eid]
        params = {"enterprise": name, "item": ctx.item.name} | {k: str(v) for k, v in extra.items()}
        out.append(
            {
                "dedupe_key": key,
                "enterprise_id": eid,
                "case_id": cid,
                "template_key": template,
                "params": params,
                "content": sms_templates.render(template, params),
                "phone_enc": enc,
                "phone_masked": masked,
                "status": NoticeStatus.QUEUED,
                "provider": "outbox",
                "category": NoticeCategory.CASE,
                "fund_item_id": ctx.item.id,
                "attempts": 0,
                "receipt_polls": 0,
                "created_at": created,
            }
        )
    notices.enqueue_many(session=session, beat=beat, rows=out)
    return len(out)
