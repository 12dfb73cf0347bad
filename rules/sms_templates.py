"""SMS templates: one key per stage, its Chinese wording, variables (named for Alibaba, ordered for Tencent),
provider template ids and whether it is urgent (sent in quiet hours) or a marketing-type push (opt-out).

Money is named in 大写金额 (`amount_caps`) with the figure (`amount`); a deadline is a date (`deadline`,
e.g. 2026年12月31日). `stage_params` builds the money and date variables from fen and dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rules.money import format_yuan, to_capitals

SIGN_NAME = "惠企直达"
SIGN = f"【{SIGN_NAME}】"


@dataclass(frozen=True)
class SmsTemplate:
    key: str
    text: str
    params: tuple[str, ...]  # the variables in Tencent's order (Alibaba uses the names)
    free_text: tuple[str, ...] = ("enterprise", "item")  # may be shortened to fit a variable
    urgent: bool = False  # sent even in quiet hours
    marketing: bool = False  # a policy push: enterprises may opt out; case notices are never optional
    modes: tuple[str, ...] = ("no_application", "instant", "review")

    @property
    def aliyun_code(self) -> str:
        return f"SMS_ZHIDA_{self.key.upper()}"

    @property
    def tencent_id(self) -> str:
        return str(2_100_000 + sorted(TEMPLATES).index(self.key))

    def render(self, params: dict[str, object]) -> str:
        return SIGN + self.text.format(**params)


def _t(key: str, text: str, *params: str, **kw: object) -> SmsTemplate:
    return SmsTemplate(key, text, params, **kw)  # type: ignore[arg-type]


# The consent request; its last clause states the item's policy for enterprises that do not answer.
_CONSENT = (
    "{enterprise}：贵单位符合“{item}”免申即享条件，拟兑付{amount_caps}（{amount}），"
    "请于{deadline}前登录平台确认兑付意愿及收款账户，"
)

_ALL = [
    _t(
        "received",
        "{enterprise}：您申报的“{item}”已受理，办件编号{case_no}，系统正在自动核验，结果将短信告知。",
        "enterprise",
        "item",
        "case_no",
        modes=("instant",),
    ),
    _t(
        "received_review",
        "{enterprise}：您申报的“{item}”已受理，办件编号{case_no}，主管部门将在规定时限内审核，结果将短信告知。",
        "enterprise",
        "item",
        "case_no",
        modes=("review",),
    ),
    _t(
        "supplement_requested",
        "{enterprise}：您申报的“{item}”需补正材料：{reasons}。请于{deadline}前登录平台补正，逾期未补正视为撤回申报。",
        "enterprise",
        "item",
        "reasons",
        "deadline",
        free_text=("enterprise", "item", "reasons"),
        modes=("review",),
    ),
    _t(
        "approved",
        "{enterprise}：您申报的“{item}”已审核通过，核定金额{amount_caps}（{amount}），正在办理拨付。",
        "enterprise",
        "item",
        "amount_caps",
        "amount",
    ),
    _t(
        "rejected",
        "{enterprise}：您申报的“{item}”未通过审核，原因：{reasons}。如有疑问请联系{officer}。",
        "enterprise",
        "item",
        "reasons",
        "officer",
        free_text=("enterprise", "item", "reasons", "officer"),
        modes=("instant", "review"),
    ),
    _t(
        "case_withdrawn",
        "{enterprise}：您申报的“{item}”已撤回，原因：{reason}。如需办理请重新申报或联系{officer}。",
        "enterprise",
        "item",
        "reason",
        "officer",
        free_text=("enterprise", "item", "reason", "officer"),
        modes=("instant", "review"),
    ),
    _t(
        "case_revoked",
        "{enterprise}：您申报的“{item}”已被主管部门撤销，原因：{reason}。如有疑问请联系{officer}。",
        "enterprise",
        "item",
        "reason",
        "officer",
        free_text=("enterprise", "item", "reason", "officer"),
        modes=("instant", "review"),
    ),
    _t(
        "publicity_started",
        "{enterprise}：“{item}”拟兑付名单已公示，贵单位拟兑付{amount_caps}，公示期至{deadline}，期间可实名提出异议。",
        "enterprise",
        "item",
        "amount_caps",
        "deadline",
        modes=("no_application", "review"),
    ),
    _t(
        "objection_received",
        "{enterprise}：“{item}”公示期间收到涉及贵单位的实名异议，主管部门将于{deadline}前核查，核查期间暂缓拨付。",
        "enterprise",
        "item",
        "deadline",
        modes=("no_application", "review"),
    ),
    _t(
        "consent_requested",
        _CONSENT + "逾期视为放弃。",
        "enterprise",
        "item",
        "amount_caps",
        "amount",
        "deadline",
        modes=("no_application",),
    ),
    _t(
        "consent_requested_pay_on_file",
        _CONSENT + "逾期未确认的将按档案登记账户兑付。",
        "enterprise",
        "item",
        "amount_caps",
        "amount",
        "deadline",
        modes=("no_application",),
    ),
    _t(
        "deadline_reminder",
        "{enterprise}：您办理的“{item}”{task}将于{deadline}截止，请及时登录平台办理。",
        "enterprise",
        "item",
        "task",
        "deadline",
        free_text=("enterprise", "item", "task"),
    ),
    _t(
        "paid",
        "{enterprise}：“{item}”资金{amount_caps}（{amount}）已拨付至您尾号{acct_tail}的账户，请注意查收。",
        "enterprise",
        "item",
        "amount_caps",
        "amount",
        "acct_tail",
    ),
    _t(
        "payment_failed",
        "{enterprise}：“{item}”资金拨付未成功，原因：{reason}。请登录平台核对收款账户或联系{officer}。",
        "enterprise",
        "item",
        "reason",
        "officer",
        free_text=("enterprise", "item", "reason", "officer"),
        urgent=True,
    ),
    _t(
        "payment_returned",
        "{enterprise}：“{item}”资金{amount_caps}被银行退回，原因：{reason}。请于{deadline}前登录平台更正收款账户，"
        "逾期资金将退回财政。",
        "enterprise",
        "item",
        "amount_caps",
        "reason",
        "deadline",
        free_text=("enterprise", "item", "reason"),
        urgent=True,
    ),
    _t(
        # No instruction was ever sent (no account on file): nothing came back from a bank. While it waits the
        # reservation is released, so the notice says the money is paid again from what is left once it is filled in.
        "payment_no_account",
        "{enterprise}：“{item}”资金{amount_caps}尚未拨付，原因：贵单位未登记收款账户。请于{deadline}前登录平台填写收款账户；"
        "等待期间不保留资金额度，填写后按剩余额度重新拨付。",
        "enterprise",
        "item",
        "amount_caps",
        "deadline",
        urgent=True,
    ),
    _t(
        "policy_push_registered",
        "{enterprise}：欢迎使用惠企直达。根据贵单位信息已匹配{count}项惠企政策，如“{item}”，请登录平台查看。拒收请回复R",
        "enterprise",
        "count",
        "item",
        marketing=True,
    ),
    _t(
        "policy_push_listed",
        "{enterprise}：新上线政策资金事项“{item}”，贵单位可能符合条件，办理截止{deadline}，请登录平台查看。拒收请回复R",
        "enterprise",
        "item",
        "deadline",
        marketing=True,
    ),
    _t(
        "policy_push_listed_free",
        "{enterprise}：新上线免申即享政策资金事项“{item}”，贵单位可能符合条件，无需申报，兑付进展将短信告知。拒收请回复R",
        "enterprise",
        "item",
        marketing=True,
    ),
    _t(
        "policy_push_paid",
        "{enterprise}：“{item}”资金{amount_caps}已兑付。平台还为贵单位匹配了{count}项可享政策，请登录平台查看。拒收请回复R",
        "enterprise",
        "item",
        "amount_caps",
        "count",
        marketing=True,
    ),
]
TEMPLATES: dict[str, SmsTemplate] = {t.key: t for t in _ALL}
STAGES: tuple[str, ...] = tuple(TEMPLATES)
URGENT: frozenset[str] = frozenset(k for k, t in TEMPLATES.items() if t.urgent)
MARKETING: frozenset[str] = frozenset(k for k, t in TEMPLATES.items() if t.marketing)


def get(template_key: str) -> SmsTemplate:
    try:
        return TEMPLATES[template_key]
    except KeyError:
        raise KeyError(f"未知的短信模板 / unknown SMS template {template_key!r}") from None


def format_date(day: date) -> str:
    """A deadline as the notice states it: 2026年12月31日."""
    return f"{day.year}年{day.month}月{day.day}日"


def money_params(amount_fen: int) -> dict[str, str]:
    """{'amount_caps': '壹拾万元整', 'amount': '100,000.00元'}."""
    return {"amount_caps": to_capitals(amount_fen), "amount": format_yuan(amount_fen)}


def stage_params(*, amount_fen: int | None = None, deadline: date | None = None, **params: object) -> dict[str, str]:
    """Template variables with money in 大写金额 and the deadline as a date; other values as text."""
    out = {k: str(v) for k, v in params.items() if v is not None}
    if amount_fen is not None:
        out |= money_params(amount_fen)
    if deadline is not None:
        out["deadline"] = format_date(deadline)
    return out


def render_around(template_key: str, params: dict[str, object], slot: str = "enterprise") -> tuple[str, str]:
    """The text before and after one variable, the others filled in: bulk SQL puts each enterprise's name between."""
    marker = "\x00"
    text = get(template_key).render({**params, slot: marker})
    before, _, after = text.partition(marker)
    return before, after


def render(template_key: str, params: dict[str, object]) -> str:
    """The notice text as the enterprise reads it; a missing parameter is a programming error (KeyError)."""
    return get(template_key).render(params)


def template_ids(provider: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Provider template id per key: Alibaba SMS_… codes, Tencent numeric ids; settings override any of them."""
    overrides = overrides or {}
    ids = {}
    for key, tpl in TEMPLATES.items():
        default = tpl.aliyun_code if provider == "aliyun" else tpl.tencent_id if provider == "tencent" else key
        ids[key] = overrides.get(f"{provider}:{key}") or overrides.get(key) or default
    return ids
