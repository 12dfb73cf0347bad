"""Key rotation for personal data at rest (`zhida keys rotate`): a new key becomes current (new values are written
with it at once), then every encrypted column is re-encrypted in batches, one short transaction each.

Resumable and idempotent: the rotation's target is kept in keys/fernet/rotating until it completes, so a rerun after a
crash continues with the same key and skips every value already under it. Old keys stay in the keyring (readable)
during and after the rotation: processes started before it hold the old keyring until restarted (they read the keys
folder again when they meet a value under a key they lack). Values under a key the keyring lacks are counted and left
untouched, never lost. This is a maintenance job, not a request: it commits its own batches.

`zhida keys retire KEY_ID` takes an old key out of the keyring once no stored value uses it any more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from db import crypto
from db.repositories import keys as repo
from db.session import reading, transaction
from schemas.vocabulary import AuditKind
from services import audit
from services.errors import Conflict, NotFound
from settings import Settings


@dataclass
class RotationReport:
    key_id: str
    resumed: bool
    total: int = 0
    done: int = 0
    by_column: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unreadable


def _state(settings: Settings):
    return settings.keys_path / "fernet" / "rotating"


def start(*, settings: Settings) -> tuple[str, bool]:
    """The rotation's target key: the one of an unfinished rotation, or a new key made current now."""
    state = _state(settings)
    if state.exists():
        return state.read_text().strip(), True
    key_id = settings.new_fernet_key()
    state.write_text(key_id)
    state.chmod(0o600)
    settings.set_current_fernet_key(key_id)
    return key_id, False


def rotate(
    *,
    settings: Settings,
    actor: str,
    batch: int = 1000,
    on_total: Callable[[int], None] | None = None,
    on_batch: Callable[[str, int], None] | None = None,
) -> RotationReport:
    """Start (or resume) a rotation and re-encrypt everything; `on_batch(column, rows)` after each committed batch."""
    key_id, resumed = start(settings=settings)
    keyring = settings.fernet_key()
    report = RotationReport(key_id=key_id, resumed=resumed)
    with transaction(settings.db_url) as session:
        pending = {
            f"{t.name}.{c}": repo.count_pending(session=session, table=t, column=c, key_id=key_id)
            for t, c in repo.ENCRYPTED
        }
        report.total = sum(pending.values())
        # Recorded before the first value moves: a run killed half-way still leaves its trace (and its key ids).
        audit.record(session=session, kind=AuditKind.KEY_ROTATION, actor=actor, subject=f"fernet:{key_id}",
                     data={"phase": "started", "key_id": key_id, "key_ids": sorted(crypto.keyring(keyring)[1]),
                           "resumed": resumed, "pending": report.total})  # fmt: skip
    if on_total is not None:
        on_total(report.total)
    for table, column in repo.ENCRYPTED:
        name, after = f"{table.name}.{column}", 0
        while True:
            with transaction(settings.db_url) as session:
                rows, after = repo.reencrypt_batch(
                    session=session, table=table, column=column, keyring=keyring, after=after, limit=batch,
                    on_unreadable=lambda row_id, name=name: report.unreadable.append(f"{name}#{row_id}"),
                )  # fmt: skip
            if not rows:
                break
            report.done += rows
            report.by_column[name] = report.by_column.get(name, 0) + rows
            if on_batch is not None:
                on_batch(name, rows)
    with transaction(settings.db_url) as session:
        audit.record(session=session, kind=AuditKind.KEY_ROTATION, actor=actor, subject=f"fernet:{key_id}",
                     data={"phase": "finished", "key_id": key_id, "resumed": resumed, "rows": report.done,
                           "by_column": report.by_column, "unreadable": len(report.unreadable)})  # fmt: skip
    if report.ok:
        _state(settings).unlink(missing_ok=True)
    return report


@dataclass
class RetireReport:
    key_id: str
    already: bool = False
    moved_to: str | None = None
    checked: dict[str, int] = field(default_factory=dict)


def _columns() -> list[str]:
    return [f"{t.name}.{c}" for t, c in repo.ENCRYPTED]


def usage(*, settings: Settings) -> dict[str, dict[str, int]]:
    """Values per key id and column, for every key in the keyring and every retired one (`zhida keys status`)."""
    _, ring = crypto.keyring(settings.fernet_key())
    ids = sorted(set(ring) | settings.retired_fernet_keys(), key=lambda k: (len(k), k))
    with reading(settings.db_url) as session:
        return {k: {f"{t.name}.{c}": repo.count_under(session=session, table=t, column=c, key_id=k)
                    for t, c in repo.ENCRYPTED} for k in ids}  # fmt: skip


def retire(
    *, settings: Settings, key_id: str, actor: str, on_column: Callable[[str, int], None] | None = None
) -> RetireReport:
    """Retire a key of personal data at rest: refused while it is current, a rotation is unfinished, or any stored
    value still uses it (after `zhida keys rotate` none does); then it is no longer loaded (its file leaves the
    keyring for keys/fernet/retired/), recorded in the audit chain. `on_column(column, values)` per column checked.
    Run it after every process restarted since the rotation: one still holding the old keyring could write under the
    old key (on SQLite the check holds the write lock until the record commits; on PostgreSQL it does not)."""
    current, ring = crypto.keyring(settings.fernet_key())
    report = RetireReport(key_id=key_id)
    if key_id in settings.retired_fernet_keys():
        report.already = True
        return report
    if key_id not in ring:
        raise NotFound(f"密钥目录中没有密钥 {key_id}（现有：{'、'.join(sorted(ring))}）", field="key_id", rule="unknown_key")
    if key_id == current:
        raise Conflict(f"{key_id} 是当前密钥，新写入的值正用它加密，不能停用；先运行 zhida keys rotate 换用新密钥",
                       field="key_id", rule="current_key")  # fmt: skip
    if _state(settings).exists():
        raise Conflict(f"密钥轮换（目标 {_state(settings).read_text().strip()}）尚未完成，不能停用密钥；"
                       "先再次运行 zhida keys rotate 完成轮换", field="key_id", rule="rotation_unfinished")  # fmt: skip
    retired: list[Path | None] = []
    try:
        with transaction(settings.db_url) as session:
            for table, column in repo.ENCRYPTED:
                name = f"{table.name}.{column}"
                report.checked[name] = repo.count_under(session=session, table=table, column=column, key_id=key_id)
                if on_column is not None:
                    on_column(name, report.checked[name])
            left = {name: n for name, n in report.checked.items() if n}
            if left:
                where = "，".join(f"{name} {n} 个" for name, n in left.items())
                raise Conflict(f"仍有 {sum(left.values())} 个值使用密钥 {key_id}（{where}），不能停用；先运行 zhida "
                               "keys rotate 把它们重新加密到当前密钥", field="key_id", rule="key_in_use")  # fmt: skip
            audit.record(session=session, kind=AuditKind.KEY_RETIRED, actor=actor, subject=f"fernet:{key_id}",
                         data={"current": current, "checked": report.checked})  # fmt: skip
            session.flush()
            retired.append(settings.retire_fernet_key(key_id))  # committed with the record just below
    except Exception:
        if retired:
            settings.unretire_fernet_key(key_id, retired[0])  # no record, no retirement
        raise
    moved = retired[0]
    report.moved_to = str(moved) if moved else None
    return report
