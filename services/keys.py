"""Key rotation for personal data at rest (`zhida keys rotate`): a new key becomes current (new values are written
with it at once), then every encrypted column is re-encrypted in batches, one short transaction each.

Resumable and idempotent: the rotation's target is kept in keys/fernet/rotating until it completes, so a rerun after a
crash continues with the same key and skips every value already under it. Old keys stay in the keyring (readable)
during and after the rotation: processes started before it hold the old keyring until restarted (they read the keys
folder again when they meet a value under a key they lack). Values under a key the keyring lacks are counted and left
untouched, never lost. This is a maintenance job, not a request: it commits its own batches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from db.repositories import keys as repo
from db.session import transaction
from schemas.vocabulary import AuditKind
from services import audit
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
                     data={"resumed": resumed, "rows": report.done, "unreadable": len(report.unreadable)})  # fmt: skip
    if report.ok:
        _state(settings).unlink(missing_ok=True)
    return report
