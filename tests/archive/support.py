"""Archive import test helpers: callers, and files of each format built from rows."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from schemas.principal import Principal
from services.scope import Scope

ADMIN = Scope(principal=Principal(role="admin", subject="ops"))
DEPT = Scope(principal=Principal(role="department", subject="YC-KJJ"), department_code="YC-KJJ")
ENTERPRISE = Scope(principal=Principal(role="enterprise", subject="x"))


def csv_bytes(header: list[str], rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def xlsx_bytes(header: list[str], rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def json_bytes(header: list[str], rows: list[list[Any]]) -> bytes:
    return json.dumps([dict(zip(header, r, strict=True)) for r in rows], ensure_ascii=False).encode("utf-8")
