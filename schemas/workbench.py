"""Contracts of the department workbench: the work list (待办) rows with names and the working days left."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from schemas.reviews import TaskOut


class TaskRow(TaskOut):
    """A task with what a reviewer needs to pick it: enterprise, fund item, and the working days left."""

    fund_item_code: str
    fund_item_name: str
    enterprise_name: str
    uscc: str
    case_status: str
    due_on: date | None = Field(None, description="办理期限的最后一日（北京时间）")
    working_days_left: int | None = Field(
        None, description="今天之后到期限最后一日的工作日数（按节假日安排计算；0 为今天到期，负数为已逾期）"
    )
    overdue: bool = Field(False, description="是否已过办理期限")
