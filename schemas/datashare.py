"""The data-sharing platform's records (政务数据共享交换平台, docs/datashare-protocol.md): the page every answer
carries, the JSON type each field of a source's dataset is agreed to have, and the check that a pull's records still
match that agreement (schema drift: a renamed, missing, new or retyped field), in Chinese.

Pure: the HTTP client is gateways/datashare.py, the stand-in standins/datashare/, the import services/archive_pull.py.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from schemas.archive_sources import DATE_COLUMN, USCC_COLUMN, Column, Parse, Source

# Each record also carries when the platform last changed it: the watermark of incremental pulls.
UPDATED_AT = "updated_at"
MAX_PAGE_SIZE = 2000

# The JSON type of a field, by how its file column is parsed. Amounts and percents travel as decimal strings
# ("12345.67"), never as binary floats.
JSON_TYPES: dict[str, str] = {
    Parse.TEXT: "string",
    Parse.REGION: "string",
    Parse.INDUSTRY: "string",
    Parse.DATE: "string",
    Parse.INT: "integer",
    Parse.YUAN: "string",
    Parse.PERCENT: "string",
    Parse.ENUM: "string",
    Parse.TAGS: "array",
}
TYPE_LABELS = {"string": "字符串", "integer": "整数", "array": "数组", "number": "数值", "boolean": "布尔值",
               "object": "对象", "null": "空值"}  # fmt: skip


class Page(BaseModel):
    """One page of a dataset's records changed after `since` (exclusive), ordered by (updated_at, uscc)."""

    dataset: str
    since: str = ""
    page: int = Field(ge=1)
    page_size: int = Field(ge=1, le=MAX_PAGE_SIZE)
    total: int = Field(ge=0)  # records changed after `since`, over all pages
    count: int = Field(ge=0)  # records on this page, as the platform says
    records: list[dict[str, Any]]
    watermark: str = ""  # the largest updated_at over all pages (the next pull's `since`)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def columns(src: Source) -> tuple[Column, ...]:
    """The fields of a source's dataset record, besides `updated_at`."""
    return (USCC_COLUMN, *src.columns, DATE_COLUMN)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def drift(records: list[dict[str, Any]], src: Source, *, dataset: str) -> list[str]:
    """What in the records breaks the agreed structure of the dataset, one Chinese sentence per kind of break (each
    naming the field and the first record that shows it); empty when every record fits."""
    agreed = {c.key: c for c in columns(src)}
    required = {c.key for c in columns(src) if c.required}
    missing: dict[str, int] = {}
    unknown: dict[str, int] = {}
    retyped: dict[str, tuple[int, str]] = {}
    for n, record in enumerate(records, start=1):
        keys = set(record) - {UPDATED_AT}
        for key in required - keys:
            missing.setdefault(key, n)
        for key in keys - set(agreed):
            unknown.setdefault(key, n)
        for key in keys & set(agreed):
            found = json_type(record[key])
            want = JSON_TYPES[agreed[key].parse]
            if found != want and not (found == "null" and not agreed[key].required):
                retyped.setdefault(key, (n, found))
        if UPDATED_AT not in record or not isinstance(record[UPDATED_AT], str):
            missing.setdefault(UPDATED_AT, n)
    out = []
    where = f"数据集 {dataset}（{src.label}）"
    if missing:
        out.append(
            f"{where}缺少约定字段："
            + "、".join(
                f"{k}（{agreed[k].header if k in agreed else '更新时间'}，自第 {n} 条起）" for k, n in missing.items()
            )
        )
    if unknown:
        out.append(f"{where}出现未约定字段：" + "、".join(f"{k}（自第 {n} 条起）" for k, n in unknown.items()))
    if retyped:
        out.append(
            f"{where}字段类型改变："
            + "、".join(
                f"{k}（{agreed[k].header}）应为{TYPE_LABELS[JSON_TYPES[agreed[k].parse]]}，"
                f"第 {n} 条为{TYPE_LABELS.get(found, found)}"
                for k, (n, found) in retyped.items()
            )
        )
    return out


def _cell(value: Any) -> Any:
    return "；".join(value) if isinstance(value, list) else value


def as_import_file(records: list[dict[str, Any]], src: Source) -> bytes:
    """The records as the JSON import file the archive import validates (the same rules as an uploaded file); the
    platform's `updated_at` is left out, so the same records make the same file (the same content hash)."""
    keys = [c.key for c in columns(src)]
    rows = [{k: _cell(r[k]) for k in keys if k in r} for r in records]
    return json.dumps({"rows": rows}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- the pull workflow's input and result (Temporal payloads: ids and counts, no personal data) -------------------


class PullRequest(BaseModel):
    source: str
    trigger: str = "schedule"  # schedule | manual


class PullSummary(BaseModel):
    pull_id: int
    source: str
    status: str
    records: int = 0
    import_id: int | None = None
    watermark: str = ""
    reason: str = ""
