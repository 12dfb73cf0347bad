"""Answers of the enterprise archive API (企档): data sources, imports with their per-row errors, facts with their
source and date, a case's provenance, and tag rules. Declared so clients and the schemathesis run check every field."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field


class SourceFieldOut(BaseModel):
    field: str
    label: str


class SourceColumnOut(BaseModel):
    key: str
    header: str = Field(description="文件中的列名（中文）")
    parse: str
    required: bool


class ArchiveSourceOut(BaseModel):
    """One data source: the fields it owns (a field has one owner), its file columns, formats and cadence."""

    id: str
    label: str
    provider: str
    cadence: str
    cadence_label: str
    formats: list[str]
    fields: list[SourceFieldOut]
    columns: list[SourceColumnOut]
    tags: list[str]
    department_code: str = Field(description="报送此来源的部门（空：平台自有）")
    dataset: str = Field(description="政务数据共享交换平台的数据集（空：只经文件导入）")


class RowErrorOut(BaseModel):
    row: int = Field(description="行号（表头为第 1 行；JSON 为第 n 个对象）")
    column: str
    value: str
    message: str


class ImportOut(BaseModel):
    id: int
    source: str
    source_label: str
    file_name: str
    status: str
    status_label: str
    rows: int
    changed_enterprises: int
    changed_values: int
    error_count: int
    reevaluations: int
    alerts: int
    duplicate: bool = Field(description="同一文件（内容哈希相同）已导入过")
    errors: list[RowErrorOut] = Field(description="逐行错误（至多 50 条；完整报告见 errors.csv）")


class FactOut(BaseModel):
    field: str
    label: str
    value: int | date | str | list[str] | None = Field(description="字段的值（类型见条件字段目录）；未知为空")
    text: str = Field(description="值的中文写法")
    source: str
    source_label: str
    source_date: date | None = Field(description="数据日期；为空：记录早于数据历史")
    import_id: int | None
    recorded_at: datetime | None


class ProvenanceOut(BaseModel):
    label: str
    import_id: int | None
    archive_change_id: int | None
    source: str | None
    source_label: str
    source_date: date | None
    frozen: bool = Field(description="来源随办件证据冻结（否：按办件创建时的数据历史查得）")


class TagRuleOut(BaseModel):
    id: int
    name: str
    kind: str
    kind_label: str
    condition: dict[str, Any] | None = Field(description="条件树（按名单的标签为空）")
    members: int = Field(description="名单中的企业数（按条件的标签为 0）")
    department_code: str | None
    tagged: int = Field(description="现带此标签的企业数")


class FieldErrorOut(BaseModel):
    field: str
    message: str
    rule: str


class TagPreviewOut(BaseModel):
    tagged: int | None = Field(description="现在将带上此标签的企业数（有错误时为空）")
    errors: list[FieldErrorOut]
