"""Contracts of application materials (申报材料): what the API answers about an uploaded file."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class MaterialOut(BaseModel):
    id: int
    case_id: int
    purpose: str = Field(description="application 申报材料 / supplement 补正材料")
    purpose_label: str
    file_name: str
    content_type: str = Field(description="按文件内容识别的类型：pdf / jpeg / png / ofd")
    content_type_label: str
    size_bytes: int
    sha256: str = Field(description="文件内容的 SHA-256（十六进制）")
    uploaded_by: str
    created_at: datetime
    href: str = Field(description="下载地址（API，须带令牌）")
