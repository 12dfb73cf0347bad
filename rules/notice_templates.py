"""SMS wording per stage (Chinese, with 大写金额 where money is named); rendering is pure."""

from __future__ import annotations

from rules import sms_templates

SIGN = "【惠企直达】"

TEMPLATES: dict[str, str] = {
    "received": "{enterprise}：您申报的“{item}”已受理，办件编号{case_no}，系统正在自动核验，结果将短信告知。",
    "approved": "{enterprise}：您申报的“{item}”已审核通过，核定金额{amount_caps}（{amount}），正在办理拨付。",
    "rejected": "{enterprise}：您申报的“{item}”未通过审核，原因：{reasons}。如有疑问请联系{officer}。",
    "paid": "{enterprise}：“{item}”资金{amount_caps}（{amount}）已拨付至您尾号{acct_tail}的账户，请注意查收。",
    "payment_failed": "{enterprise}：“{item}”资金拨付未成功，原因：{reason}。请登录平台核对收款账户或联系{officer}。",
}


def render(template_key: str, params: dict[str, str]) -> str:
    """The notice text as the enterprise reads it; a missing parameter is a programming error.

    Stages not listed here use the SMS template of the same key (rules.sms_templates), so every stage renders.
    """
    if template_key not in TEMPLATES:
        return sms_templates.render(template_key, params)
    return SIGN + TEMPLATES[template_key].format(**params)
