"""Contracts of the department workbench: the work list (待办) rows with names and the working days left."""

from __future__ import annotations

from pydantic import Field

from schemas.reviews import TaskOut


class TaskRow(TaskOut):
    """A task with what a reviewer needs to pick it: enterprise, fund item, and the working days left."""

    fund_item_code: str
    fund_item_name: str
    enterprise_name: str
    uscc: str
    case_status: str
    working_days_left: int | None = Field(
        None, description="距办理期限的剩余工作日（按节假日安排计算；负数为已逾期的工作日数）"
    )
    overdue: bool = Field(False, description="是否已过办理期限")
