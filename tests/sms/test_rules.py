"""Pure SMS rules: templates for every stage, parameter validation, phones, rate limits, quiet hours."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from rules import notice_templates, sms_templates
from rules.sms import (
    PhoneError,
    QuietHours,
    RateLimits,
    TemplateParamError,
    backoff,
    check_param,
    next_allowed,
    parse_phone,
    provider_params,
    quiet_until,
)

PARAMS = sms_templates.stage_params(
    enterprise="宜昌市某某科技有限公司",
    item="高新技术企业认定奖励",
    case_no="C20260001",
    reasons="缺少近三年财务审计报告",
    reason="收款账户户名与开户名不符",
    officer="市科技局",
    task="材料补正",
    count=3,
    acct_tail="1234",
    amount_fen=10_000_000,
    deadline=date(2026, 12, 31),
)


@pytest.mark.parametrize("key", sms_templates.STAGES)
def test_every_stage_renders_and_validates(key: str) -> None:
    tpl = sms_templates.get(key)
    text = sms_templates.render(key, PARAMS)
    assert text.startswith("【惠企直达】宜昌市某某科技有限公司")
    assert "{" not in text
    if "amount_caps" in tpl.params:
        assert "壹拾万元整" in text
    if "deadline" in tpl.params:
        assert "2026年12月31日" in text
    if tpl.marketing:
        assert text.endswith("拒收请回复R")
    params = provider_params(key, tpl.params, PARAMS, free_text=tpl.free_text)
    assert list(params) == list(tpl.params)  # Tencent's order; only the template's own variables


def test_every_mode_has_its_stages() -> None:
    required = {
        "received", "supplement_requested", "approved", "rejected", "publicity_started", "objection_received",
        "paid", "payment_returned", "deadline_reminder", "consent_requested", "policy_push_registered",
        "policy_push_listed", "policy_push_paid",
    }  # fmt: skip
    assert required <= set(sms_templates.STAGES)
    for mode in ("no_application", "instant", "review"):
        assert {"paid", "payment_returned"} <= {k for k, t in sms_templates.TEMPLATES.items() if mode in t.modes}
    assert {"payment_failed", "payment_returned", "payment_no_account"} == sms_templates.URGENT


def test_existing_keys_keep_their_wording() -> None:
    for key in notice_templates.TEMPLATES:
        assert sms_templates.render(key, PARAMS) == notice_templates.render(key, PARAMS)


def test_provider_template_ids_and_overrides() -> None:
    ali = sms_templates.template_ids("aliyun", {"aliyun:paid": "SMS_46218001"})
    assert ali["paid"] == "SMS_46218001" and ali["received"] == "SMS_ZHIDA_RECEIVED"
    tx = sms_templates.template_ids("tencent")
    assert len(set(tx.values())) == len(tx) and all(v.isdigit() for v in tx.values())


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "不能为空"),
        ("x" * 36, "超过 35"),
        ("请访问 https://evil.example.com", "网址"),
        ("详见www.abc.cn", "网址"),
        ("【伪造签名】", "不允许的字符"),
        ("换行\n注入", "不允许的字符"),
        ("表情😀", "不允许的字符"),
        (123, "应为文本"),
    ],
)
def test_bad_parameter_values(value: object, fragment: str) -> None:
    assert fragment in (check_param(value) or "")


def test_validation_names_fields_and_shortens_free_text() -> None:
    tpl = sms_templates.get("rejected")
    long = dict(PARAMS, reasons="；".join(["研发费用占比不足百分之三"] * 5))
    out = provider_params("rejected", tpl.params, long, free_text=tpl.free_text)
    assert len(out["reasons"]) <= 35 and out["reasons"].endswith("等")
    with pytest.raises(TemplateParamError) as err:
        provider_params("paid", sms_templates.get("paid").params, dict(PARAMS, acct_tail="http://x.cn", amount=""))
    assert set(err.value.errors) == {"acct_tail", "amount"}
    with pytest.raises(TemplateParamError) as err:
        provider_params("paid", ("enterprise", "missing"), PARAMS)
    assert err.value.errors == {"missing": "缺少参数"}


def test_phone_numbers() -> None:
    phone = parse_phone("１３８ ００１３ ８０００")
    assert (phone.e164, phone.national, phone.masked) == ("+8613800138000", "13800138000", "138****8000")
    assert parse_phone("+86-199-0000-1111").e164 == "+8619900001111"
    for bad in ("010-12345678", "12345", "+1 650 253 0000", "", "abc"):
        with pytest.raises(PhoneError) as err:
            parse_phone(bad)
        assert "0013" not in str(err.value)


def test_rate_limits_per_minute_hour_day() -> None:
    now = datetime(2026, 5, 6, 10, 0, tzinfo=UTC)
    limits = RateLimits(per_minute=1, per_hour=5, per_day=10)
    assert next_allowed([], now, limits) is None
    assert next_allowed([now - timedelta(seconds=20)], now, limits) == now + timedelta(seconds=40)
    five = [now - timedelta(minutes=m) for m in (2, 10, 20, 30, 50)]
    assert next_allowed(five, now, limits) == now + timedelta(minutes=10)
    ten = [now - timedelta(hours=h) for h in (2, 3, 4, 5, 6, 7, 8, 9, 10, 23)]
    assert next_allowed(ten, now, limits) == now + timedelta(hours=1)
    assert next_allowed(ten, now, RateLimits(per_minute=1, per_hour=5, per_day=0)) is None


def test_quiet_hours_shanghai() -> None:
    quiet = QuietHours.parse("22:00", "08:00", "Asia/Shanghai")
    noon = datetime(2026, 5, 6, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
    assert quiet_until(noon, quiet) is None
    late = datetime(2026, 5, 6, 15, 30, tzinfo=UTC)  # 23:30
    early = datetime(2026, 5, 6, 21, 0, tzinfo=UTC)  # 05:00 next day
    expected = datetime(2026, 5, 7, 0, 0, tzinfo=UTC)  # 08:00 on 7 May
    assert quiet_until(late, quiet) == expected == quiet_until(early, quiet)
    assert quiet_until(datetime(2026, 5, 7, 0, 0, tzinfo=UTC), quiet) is None  # 08:00 sharp
    assert quiet_until(late, QuietHours.parse("00:00", "00:00")) is None
    day = QuietHours.parse("12:00", "14:00")
    assert quiet_until(datetime(2026, 5, 6, 5, 0, tzinfo=UTC), day) == datetime(2026, 5, 6, 6, 0, tzinfo=UTC)


def test_backoff_doubles_and_caps() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff(20).total_seconds() == 3600


def test_every_stage_the_code_notifies_has_a_template() -> None:
    """A stage added to the case activities, workflows or services without an SMS template would fail at dispatch: catch it."""
    root = Path(__file__).resolve().parents[2]
    used: set[str] = set()
    for path in [*root.glob("activities/*.py"), *root.glob("workflows/*.py"), *root.glob("services/*.py")]:
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r'_notify\(\s*(?:[^"(),]+,\s*){4}"([a-z_]+)"', text))  # the stage is the 5th argument
        used |= set(re.findall(r'template_key"?\s*[=:]\s*"([a-z_]+)"', text))
    assert {"received", "approved", "rejected", "paid", "policy_push_registered", "policy_push_paid"} <= used
    assert used <= set(sms_templates.STAGES), used - set(sms_templates.STAGES)


@pytest.mark.parametrize("key", sms_templates.STAGES)
def test_page_text_is_the_sms_text(key: str) -> None:
    """What the enterprise reads on its notice page is what the SMS says."""
    assert notice_templates.render(key, PARAMS) == sms_templates.render(key, PARAMS)


def test_bulk_rendering_puts_the_name_between() -> None:
    params = sms_templates.stage_params(item="高新技术企业认定奖励", deadline=date(2026, 12, 31))
    before, after = sms_templates.render_around("policy_push_listed", params)
    assert before + "宜昌某公司" + after == sms_templates.render(
        "policy_push_listed", params | {"enterprise": "宜昌某公司"}
    )
    assert before == "【惠企直达】" and after.endswith("办理截止2026年12月31日，请登录平台查看。拒收请回复R")


def test_wording_follows_the_mode_and_the_no_answer_policy() -> None:
    review = sms_templates.render("received_review", PARAMS)
    assert "主管部门将在规定时限内审核" in review and "自动核验" not in review
    on_file = sms_templates.render("consent_requested_pay_on_file", PARAMS)
    assert "按档案登记账户兑付" in on_file and "视为放弃" not in on_file
    assert "逾期视为放弃" in sms_templates.render("consent_requested", PARAMS)
