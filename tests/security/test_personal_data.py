"""Objectors' names are encrypted at rest; what pages and the API show is masked."""

from __future__ import annotations

import base64
import uuid

from sqlalchemy import text
from sqlalchemy.orm import Session

from db import crypto
from db.models import CaseObjection
from db.repositories import cases
from schemas.reviews import ObjectionBody
from schemas.vocabulary import CaseStatus, FundItemMode
from services import reviews
from tests.campaigns.support import AMOUNT_FEN, add_enterprises, add_item, item_config

KEY = base64.urlsafe_b64encode(b"personal-data-test-key-32-bytes!").decode()


def test_objector_names_are_encrypted_at_rest(session: Session) -> None:
    code = f"T-OBJ-{uuid.uuid4().hex[:6]}"
    item = add_item(session, code, item_config(budget_fen=10 * AMOUNT_FEN))
    [ent] = add_enterprises(session, KEY, 1, seed=3)
    case, _ = cases.get_or_create(session=session, fund_item_id=item.id, fund_item_version=1, enterprise_id=ent.id,
                                  mode=FundItemMode.REVIEW, workflow_id=f"case:{code}:{ent.uscc}")  # fmt: skip
    case.status = CaseStatus.PUBLICITY
    session.flush()
    body = ObjectionBody(name="欧阳娜娜", id_number="11010519491231002X", evidence="设备发票与实际不符")
    _, objection_id = reviews.store_objection(session=session, case_id=case.id, body=body, fernet_key=KEY)
    session.flush()
    row = session.execute(text("SELECT * FROM case_objection WHERE id = :id"), {"id": objection_id}).mappings().one()
    assert "欧阳娜娜" not in " ".join(str(v) for v in row.values())
    assert row["objector_name"] == "欧***"
    stored = session.get(CaseObjection, objection_id)
    assert crypto.decrypt(KEY, stored.objector_name_enc) == "欧阳娜娜"


def test_database_files_are_private(tmp_path) -> None:
    from db.migrate import upgrade
    from db.session import engine_for

    url = f"sqlite:///{tmp_path / 'private.db'}"
    upgrade(url)
    engine_for(url).dispose()
    assert (tmp_path / "private.db").stat().st_mode & 0o777 == 0o600
