"""The encrypted columns of personal data and the batched re-encryption a key rotation runs over them."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from db import crypto
from db.models import Case, CaseObjection, Enterprise, Notice, PaymentInstruction

# Every column that holds personal data encrypted at rest (db/crypto.py), by table.
ENCRYPTED: tuple[tuple[Table, str], ...] = (
    (Enterprise.__table__, "contact_phone_enc"),
    (Enterprise.__table__, "bank_account_enc"),
    (Case.__table__, "consent_acct_enc"),
    (PaymentInstruction.__table__, "payee_acct_no_enc"),
    (Notice.__table__, "phone_enc"),
    (CaseObjection.__table__, "objector_name_enc"),
    (CaseObjection.__table__, "id_number_enc"),
    (CaseObjection.__table__, "phone_enc"),
)


def _pending(table: Table, column: str, key_id: str):
    col = table.c[column]
    return col.is_not(None) & col.not_like(f"{key_id}:%")


def _under(table: Table, column: str, key_id: str):
    col = table.c[column]
    if key_id == crypto.LEGACY_ID:  # k0 also holds the values from before key ids (no prefix: a Fernet token has no ':')
        return col.is_not(None) & (col.like(f"{key_id}:%") | col.not_like("%:%"))
    return col.is_not(None) & col.like(f"{key_id}:%")


def count_under(*, session: Session, table: Table, column: str, key_id: str) -> int:
    """Values of the column encrypted under `key_id`."""
    return session.scalar(select(func.count()).select_from(table).where(_under(table, column, key_id))) or 0


def count_pending(*, session: Session, table: Table, column: str, key_id: str) -> int:
    """Values of the column not yet under `key_id`."""
    return session.scalar(select(func.count()).select_from(table).where(_pending(table, column, key_id))) or 0


def reencrypt_batch(
    *, session: Session, table: Table, column: str, keyring: str, after: int, limit: int,
    on_unreadable: Callable[[int], None],
) -> tuple[int, int]:  # fmt: skip
    """Re-encrypt up to `limit` values (ids above `after`) under the keyring's current key: (rows done, last id).
    A value under a key the keyring lacks is reported through `on_unreadable` and left as it is."""
    current = crypto.keyring(keyring)[0]
    pk, col = table.c.id, table.c[column]
    rows = session.execute(
        select(pk, col).where(_pending(table, column, current), pk > after).order_by(pk).limit(limit)
    ).all()
    updates = []
    for row_id, value in rows:
        try:
            updates.append({"row_id": row_id, "value": crypto.reencrypt(keyring, value)})
        except Exception:  # an unknown key or a damaged value: never lose it, say so
            on_unreadable(row_id)
    if updates:
        session.execute(update(table).where(pk == bindparam("row_id")).values({column: bindparam("value")}), updates)
    return len(rows), (rows[-1][0] if rows else after)
