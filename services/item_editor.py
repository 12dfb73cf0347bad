"""The fund item editor's form (no JSON typed by anyone): the form's fields become the configuration the API takes,
amounts in yuan become fen and shares in percent become basis points, and the configuration is validated by the same
model with the same Chinese messages as the API (schemas.fund_items.explain_errors).

Only the typing of the form is checked here (a yuan amount that is not a number); every rule about the configuration
is the model's, so the page cannot accept what the API refuses nor word a refusal differently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from db.repositories import enterprises as enterprise_repo
from db.repositories import workbench as workbench_repo
from rules import sms_templates
from rules.amounts import compute_amount
from rules.condition_text import conditions_text as generated_text
from rules.conditions import evaluate, facts_of
from rules.money import parse_yuan, to_capitals
from schemas.conditions import Evaluation, parse_condition
from schemas.fields import FIELDS, FieldType
from schemas.fund_items import FundItemConfig, FundItemCreate, explain_errors
from schemas.principal import Principal
from schemas.standards import AmountResult
from schemas.vocabulary import FundItemMode, JointMode, TimeoutPolicy
from services import fund_items as fund_item_service
from services.errors import DomainError
from services.fund_items import working_calendar

LIST_OPS = {"in", "not_in", "has_any_tags", "has_all_tags"}
VALUE_SEPARATORS = re.compile(r"[,，、;；至]")
MONEY_SEPARATORS = re.compile(r"[，、;；至]|,\s+")
STAGE_COLUMNS = (
    "stage_key",
    "stage_name",
    "stage_departments",
    "stage_joint",
    "stage_days",
    "stage_timeout",
    "stage_escalate_to",
)


class Form:
    """The submitted form: one value per name, or the rows of repeated names (source_name, cond_field, …)."""

    def __init__(self, single: Mapping[str, str], multi: Mapping[str, Sequence[str]]) -> None:
        self.single = single
        self.multi = multi

    def get(self, name: str, default: str = "") -> str:
        return str(self.single.get(name, default) or "").strip()

    def rows(self, *names: str) -> list[dict[str, str]]:
        """The repeated fields as rows; a row left wholly empty is dropped (an unused blank row on the page)."""
        columns = [list(self.multi.get(n, [])) for n in names]
        count = max((len(c) for c in columns), default=0)
        out = []
        for i in range(count):
            row = {n: (c[i] if i < len(c) else "").strip() for n, c in zip(names, columns, strict=True)}
            if any(row.values()):
                out.append(row)
        return out


@dataclass
class Built:
    """The configuration from the form, and the form's own typing errors (loc and Chinese message)."""

    config: dict[str, Any]
    errors: list[dict[str, Any]] = field(default_factory=list)

    def typing_error(self, loc: tuple[str | int, ...], message: str) -> None:
        self.errors.append({"loc": ["config", *loc], "msg": message, "type": "form"})


def _fen(built: Built, loc: tuple[str | int, ...], label: str, text: str) -> int | None:
    if not text:
        return None
    try:
        return parse_yuan(text)
    except ValueError:
        built.typing_error(loc, f"{label}：“{text}”不是元金额，应为如 100,000.00 的数字")
        return None


def _percent_bp(built: Built, loc: tuple[str | int, ...], label: str, text: str) -> int | None:
    if not text:
        return None
    try:
        value = Decimal(text.removesuffix("%"))
    except InvalidOperation:
        built.typing_error(loc, f"{label}：“{text}”不是百分数，应为如 60 或 12.5 的数字")
        return None
    return int(value * 100)


def _int(text: str) -> int | str | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return text  # the model names the field and says it must be an integer


def _leaf_value(built: Built, loc: tuple[str | int, ...], name: str, op: str, text: str) -> Any:
    spec = FIELDS.get(name)
    # money keeps its thousands separators (20,000,000.00): values are parted by "，", "、", "至" or ", "
    separators = MONEY_SEPARATORS if spec is not None and spec.type == FieldType.MONEY_FEN else VALUE_SEPARATORS
    parts = [p.strip() for p in separators.split(text) if p.strip()]
    if op == "between":
        parts = parts[:2]
    one = op not in LIST_OPS and op != "between"
    if spec is None:
        return text
    if spec.type == FieldType.MONEY_FEN:
        values = [_fen(built, loc, spec.label, p) for p in parts]
    elif spec.type == FieldType.RATIO_BP:
        values = [_percent_bp(built, loc, spec.label, p) for p in parts]
    elif spec.type == FieldType.INT:
        values = [_int(p) for p in parts]
    elif spec.type == FieldType.ENUM:  # typed as the page shows them (小型, 失信) or as codes
        by_label = {label: value for value, label in spec.choices}
        values = [by_label.get(p, p) for p in parts]
    else:
        values = parts
    return (values[0] if values else None) if one else values


def config_from_form(form: Form) -> Built:
    """The configuration a filled-in editor stands for (what the API would be sent)."""
    built = Built({})
    c = built.config
    c["policy"] = {
        "doc_number": form.get("policy_doc_number"),
        "title": form.get("policy_title"),
        "level": form.get("policy_level"),
        "issuer": form.get("policy_issuer"),
    }
    if form.get("policy_published_on"):
        c["policy"]["published_on"] = form.get("policy_published_on")
    c["name"] = form.get("name")
    c["region"] = {"code": form.get("region_code", "420500"), "name": form.get("region_name", "宜昌市")}
    c["mode"] = form.get("mode")
    if form.get("window_start") or form.get("window_end"):
        c["window"] = {"start": form.get("window_start"), "end": form.get("window_end")}
    c["guide"] = {
        "policy_basis": form.get("guide_policy_basis"),
        "conditions_text": form.get("guide_conditions_text"),
        "standard_text": form.get("guide_standard_text"),
        "process": form.get("guide_process"),
        "notes": form.get("guide_notes"),
        "materials": [
            {"name": r["material_name"], "requirement": r["material_requirement"], "sample": r["material_sample"]}
            for r in form.rows("material_name", "material_requirement", "material_sample")
        ],
    }
    sources = []
    for i, r in enumerate(form.rows("source_name", "source_share")):
        share = _percent_bp(built, ("budget", "sources", i, "share_bp"), "分担比例", r["source_share"])
        sources.append({"name": r["source_name"], "share_bp": share})
    c["budget"] = {
        "year": _int(form.get("budget_year")),
        "total_fen": _fen(built, ("budget", "total_fen"), "预算总额", form.get("budget_total_yuan")),
        "sources": sources,
    }
    c["standard"] = standard_from_form(built, form)
    c["conditions"] = conditions_from_form(built, form)
    approval: dict[str, Any] = {
        "finance": {
            "department": form.get("finance_department"),
            "auto_when_quantified": form.get("finance_auto") == "on",
            "deadline_working_days": _int(form.get("finance_days", "5")),
        }
    }
    if form.get("reject_unmet") == "on":
        approval["reject_unmet_at_application"] = True
    if c["mode"] == FundItemMode.REVIEW:
        if form.get("completeness_department"):
            approval["completeness_check"] = {
                "department": form.get("completeness_department"),
                "deadline_working_days": _int(form.get("completeness_days", "2")),
            }
        approval["stages"] = [
            {
                "key": r["stage_key"],
                "name": r["stage_name"],
                "departments": [d.strip() for d in r["stage_departments"].replace("，", ",").split(",") if d.strip()],
                "joint_mode": r["stage_joint"] or JointMode.ALL.value,
                "deadline_working_days": _int(r["stage_days"]),
                "on_timeout": r["stage_timeout"] or TimeoutPolicy.ESCALATE.value,
                **({"escalate_to": r["stage_escalate_to"]} if r["stage_escalate_to"] else {}),
            }
            for r in form.rows(*STAGE_COLUMNS)
            # a blank row left on the page still posts its two selects: it is not a stage
            if any(r[name] for name in ("stage_key", "stage_name", "stage_departments", "stage_days"))
        ]
        if form.get("supplement_times"):
            approval["supplement"] = {
                "max_times": _int(form.get("supplement_times")),
                "enterprise_deadline_working_days": _int(form.get("supplement_days", "5")),
            }
        if form.get("publicity_days"):
            approval["publicity"] = {
                "working_days": _int(form.get("publicity_days")),
                "objection_department": form.get("objection_department") or None,
            }
    c["approval"] = approval
    c["service_officer"] = {
        "name": form.get("officer_name"),
        "phone": form.get("officer_phone"),
        "office": form.get("officer_office"),
    }
    return built


# -- the support standard -------------------------------------------------------------------------------------------

TIER_COLUMNS = ("tier_at_least", "tier_amount_yuan", "tier_rate_percent", "tier_label")
PART_COLUMNS = ("part_kind", "part_amount_yuan", "part_base", "part_rate_percent", "part_floor_yuan", "part_cap_yuan")


def _rate_text(built: Built, loc: tuple[str | int, ...], text: str) -> str | None:
    """A rate typed in percent (3 or 2.5%) as the model's decimal string ("0.03")."""
    if not text:
        return None
    try:
        return str(Decimal(text.removesuffix("%")) / 100)
    except InvalidOperation:
        built.typing_error(loc, f"比例：“{text}”不是百分数，应为如 3 或 2.5 的数字")
        return None


def _in_unit(built: Built, loc: tuple[str | int, ...], base: str, label: str, text: str) -> Any:
    """A threshold typed in the base field's page unit: yuan for money, percent for ratios, a number otherwise."""
    spec = FIELDS.get(base)
    if spec is not None and spec.type == FieldType.MONEY_FEN:
        return _fen(built, loc, label, text)
    if spec is not None and spec.type == FieldType.RATIO_BP:
        return _percent_bp(built, loc, label, text)
    return _int(text)


def _dropped(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _rate_part(built: Built, loc: tuple[str | int, ...], base: str, rate: str, floor: str, cap: str) -> dict:
    return _dropped(
        {
            "kind": "rate",
            "base": base,
            "rate": _rate_text(built, (*loc, "rate"), rate),
            "floor_fen": _fen(built, (*loc, "floor_fen"), "最低金额", floor),
            "cap_fen": _fen(built, (*loc, "cap_fen"), "最高金额", cap),
        }
    )


def standard_from_form(built: Built, form: Form) -> dict[str, Any]:
    """The support standard: 定额, 按比例 (floor, cap), 阶梯 (tiers of an amount or a rate), 合计 (parts added, capped)
    or 评审核定; amounts typed in yuan, rates in percent, thresholds in the base field's unit."""
    kind = form.get("standard_kind")
    loc: tuple[str | int, ...] = ("standard",)
    if kind == "fixed":
        return _dropped({"kind": "fixed", "amount_fen": _fen(built, (*loc, "amount_fen"), "补助金额",
                                                            form.get("standard_amount_yuan"))})  # fmt: skip
    if kind == "rate":
        return _rate_part(built, loc, form.get("standard_base"), form.get("standard_rate_percent"),
                          form.get("standard_floor_yuan"), form.get("standard_cap_yuan"))  # fmt: skip
    if kind == "tiers":
        base = form.get("tiers_base")
        tiers = []
        for i, r in enumerate(form.rows(*TIER_COLUMNS)):
            at = (*loc, "tiers", i)
            tiers.append(
                _dropped(
                    {
                        "at_least": _in_unit(built, (*at, "at_least"), base, "档位门槛", r["tier_at_least"]),
                        "amount_fen": _fen(built, (*at, "amount_fen"), "档位金额", r["tier_amount_yuan"]),
                        "rate": _rate_text(built, (*at, "rate"), r["tier_rate_percent"]),
                        "label": r["tier_label"] or None,
                    }
                )
            )
        cap = _fen(built, (*loc, "cap_fen"), "最高金额", form.get("tiers_cap_yuan"))
        return _dropped({"kind": "tiers", "base": base, "tiers": tiers, "cap_fen": cap})
    if kind == "sum":
        parts = []
        for i, r in enumerate(form.rows(*PART_COLUMNS)):
            at = (*loc, "parts", i)
            if r["part_kind"] == "rate":
                parts.append(_rate_part(built, at, r["part_base"], r["part_rate_percent"], r["part_floor_yuan"],
                                        r["part_cap_yuan"]))  # fmt: skip
            else:
                amount = _fen(built, (*at, "amount_fen"), "定额部分金额", r["part_amount_yuan"])
                parts.append(_dropped({"kind": r["part_kind"] or "fixed", "amount_fen": amount}))
        cap = _fen(built, (*loc, "cap_fen"), "合计最高金额", form.get("sum_cap_yuan"))
        return _dropped({"kind": "sum", "parts": parts, "cap_fen": cap})
    return _dropped(
        {
            "kind": kind or "manual",
            "max_fen": _fen(built, (*loc, "max_fen"), "最高金额", form.get("standard_max_yuan")),
            "note": form.get("standard_note"),
        }
    )


def _rate_shown(part: Mapping[str, Any]) -> str:
    if part.get("rate") is not None:
        return f"{Decimal(str(part['rate'])) * 100:g}"
    return "" if part.get("rate_bp") is None else _percent(part["rate_bp"])


def standard_fields(standard: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, list[dict[str, str]]]]:
    """The editor's fields and rows of a stored standard (the inverse of standard_from_form)."""
    kind = standard.get("kind", "")
    v = {
        "standard_kind": kind,
        "standard_amount_yuan": _yuan(standard.get("amount_fen")) if kind == "fixed" else "",
        "standard_base": standard.get("base", "") if kind == "rate" else "",
        "standard_rate_percent": _rate_shown(standard) if kind == "rate" else "",
        "standard_floor_yuan": _yuan(standard.get("floor_fen")) if kind == "rate" else "",
        "standard_cap_yuan": _yuan(standard.get("cap_fen")) if kind == "rate" else "",
        "standard_max_yuan": _yuan(standard.get("max_fen")),
        "standard_note": standard.get("note", ""),
        "tiers_base": standard.get("base", "") if kind == "tiers" else "",
        "tiers_cap_yuan": _yuan(standard.get("cap_fen")) if kind == "tiers" else "",
        "sum_cap_yuan": _yuan(standard.get("cap_fen")) if kind == "sum" else "",
    }
    base = standard.get("base", "")
    tiers = [
        {
            "tier_at_least": _shown(base, t["at_least"]),
            "tier_amount_yuan": _yuan(t.get("amount_fen")),
            "tier_rate_percent": _rate_shown(t),
            "tier_label": t.get("label", ""),
        }
        for t in (standard.get("tiers") or [] if kind == "tiers" else [])
    ]
    parts = [
        {
            "part_kind": p["kind"],
            "part_amount_yuan": _yuan(p.get("amount_fen")),
            "part_base": p.get("base", ""),
            "part_rate_percent": _rate_shown(p),
            "part_floor_yuan": _yuan(p.get("floor_fen")),
            "part_cap_yuan": _yuan(p.get("cap_fen")),
        }
        for p in (standard.get("parts") or [] if kind == "sum" else [])
    ]
    return v, {"tier": tiers, "part": parts}


# -- the condition tree ---------------------------------------------------------------------------------------------
#
# Every node of the tree is one row of the form, in document order: its id, its parent's id ("" for the root group),
# its kind (all / any / not for a group, leaf for a comparison) and, for a leaf, field, operator and value. A group
# posts empty field, operator and value so that the columns stay aligned. A `not` group holds what must not be the
# case: one item is negated as it is, several are "none of them" (not any).

COND_COLUMNS = ("cond_id", "cond_parent", "cond_kind", "cond_field", "cond_op", "cond_value")
GROUP_KINDS = ("all", "any", "not")
ROOT_ID = "root"


def cond_rows(form: Form) -> list[dict[str, str]]:
    """The posted condition rows; a form of the flat kind (leaves only, one group) is read as a root group."""
    if "cond_kind" in form.multi:
        return form.rows(*COND_COLUMNS)
    root = {"cond_id": ROOT_ID, "cond_parent": "", "cond_kind": form.get("cond_group", "all") or "all"}
    leaves = [
        {"cond_id": f"n{i}", "cond_parent": ROOT_ID, "cond_kind": "leaf", **r}
        for i, r in enumerate(form.rows("cond_field", "cond_op", "cond_value"), start=1)
    ]
    return [root | {"cond_field": "", "cond_op": "", "cond_value": ""}, *leaves]


@dataclass
class CondNode:
    """One node of the tree as the editor shows it (the template renders groups recursively)."""

    row: dict[str, str]
    children: list[CondNode] = field(default_factory=list)

    @property
    def is_group(self) -> bool:
        return self.row.get("cond_kind") in GROUP_KINDS


def cond_tree(rows: Sequence[Mapping[str, str]]) -> CondNode:
    """The rows as a tree under one root group; a row whose parent is unknown hangs under the root."""
    root: CondNode | None = None
    groups: dict[str, CondNode] = {}
    for raw in rows:
        row = {name: str(raw.get(name, "") or "") for name in COND_COLUMNS}
        node = CondNode(row)
        parent = groups.get(row["cond_parent"])
        if parent is None and root is None and node.is_group:
            root = node
        else:
            if root is None:
                root = CondNode({"cond_id": ROOT_ID, "cond_parent": "", "cond_kind": "all"})
                groups[ROOT_ID] = root
            (parent or root).children.append(node)
        if node.is_group:
            groups.setdefault(row["cond_id"], node)
    return root or CondNode({"cond_id": ROOT_ID, "cond_parent": "", "cond_kind": "all"})


def _blank(node: CondNode) -> bool:
    return not node.is_group and not (node.row["cond_field"] or node.row["cond_op"] or node.row["cond_value"])


def _node_config(built: Built, node: CondNode, loc: tuple[str | int, ...]) -> dict[str, Any]:
    row = node.row
    if not node.is_group:
        value = _leaf_value(built, (*loc, "value"), row["cond_field"], row["cond_op"], row["cond_value"])
        return {"field": row["cond_field"], "op": row["cond_op"], "value": value}
    children = [child for child in node.children if not _blank(child)]
    kind = row["cond_kind"]
    if kind != "not":
        return {"op": kind, "items": [_node_config(built, c, (*loc, "items", i)) for i, c in enumerate(children)]}
    if len(children) == 1:
        return {"op": "not", "item": _node_config(built, children[0], (*loc, "item"))}
    if not children:
        built.typing_error(loc, "申报条件：“均不得满足”条件组中至少需要一个条件")
    inner = [_node_config(built, c, (*loc, "item", "items", i)) for i, c in enumerate(children)]
    return {"op": "not", "item": {"op": "any", "items": inner}}


def conditions_from_form(built: Built, form: Form) -> dict[str, Any]:
    """The condition tree the editor's rows stand for."""
    return _node_config(built, cond_tree(cond_rows(form)), ("conditions",))


def _tree_rows(node: Mapping[str, Any], parent: str, out: list[dict[str, str]]) -> None:
    node_id = ROOT_ID if not parent else f"n{len(out)}"
    if "field" in node:
        out.append(
            {"cond_id": node_id, "cond_parent": parent, "cond_kind": "leaf", "cond_field": node["field"],
             "cond_op": node["op"], "cond_value": _shown(node["field"], node.get("value"))}
        )  # fmt: skip
        return
    out.append({"cond_id": node_id, "cond_parent": parent, "cond_kind": node["op"],
                "cond_field": "", "cond_op": "", "cond_value": ""})  # fmt: skip
    if node["op"] == "not":
        inner = node["item"]
        items = inner["items"] if inner.get("op") == "any" else [inner]
    else:
        items = node.get("items", [])
    for item in items:
        _tree_rows(item, node_id, out)


def rows_from_conditions(conditions: Mapping[str, Any]) -> list[dict[str, str]]:
    """The editor's rows for a stored tree (the inverse of conditions_from_form); a lone leaf sits under `all`."""
    tree = conditions if conditions.get("op") in GROUP_KINDS else {"op": "all", "items": [conditions]}
    out: list[dict[str, str]] = []
    _tree_rows(tree, "", out)
    return out


def section_errors(built: Built, prefix: tuple[str, ...]) -> list[dict[str, Any]]:
    """The form's typing errors and the model's errors (the API's messages) under `prefix` of the configuration,
    without saving anything and without the database."""
    errors = [e for e in built.errors if tuple(e["loc"][1 : 1 + len(prefix)]) == prefix]
    try:
        FundItemConfig.model_validate(built.config)
    except ValidationError as exc:
        for e in explain_errors(exc.errors(include_url=False), FundItemConfig):
            if tuple(e["loc"][: len(prefix)]) == prefix:
                errors.append(e | {"loc": ["config", *e["loc"]]})
    return errors


def conditions_text(form: Form) -> tuple[str | None, list[str]]:
    """The guide's 申报条件 text from the form's condition tree (rules.condition_text), or the Chinese messages of
    what is wrong with the tree (the API's, for the same tree)."""
    built = config_from_form(form)
    errors = section_errors(built, ("conditions",))
    if errors:
        return None, [e["msg"] for e in errors]
    return generated_text(parse_condition(built.config["conditions"])), []


# -- the worked example and the SMS preview ---------------------------------------------------------------------------

EXAMPLE_SAMPLE = 20
OBJECTION_RULING_WORKING_DAYS = 5  # as activities.review rules an objection


@dataclass
class Example:
    """The support standard applied to one sample enterprise, with the working in yuan, and the conditions."""

    enterprises: list[tuple[str, str]]
    chosen: Any = None
    errors: list[str] = field(default_factory=list)
    amount: AmountResult | None = None
    capitals: str = ""
    facts: list[tuple[str, str]] = field(default_factory=list)
    conditions: Evaluation | None = None


def _region_prefix(code: str) -> str:
    prefix = code.strip()
    while len(prefix) > 2 and prefix.endswith("00"):
        prefix = prefix[:-2]
    return prefix if prefix.isdigit() else ""


def _bases(standard: Mapping[str, Any]) -> list[str]:
    names = [standard["base"]] if standard.get("base") else []
    for part in standard.get("parts") or []:
        names += _bases(part)
    return list(dict.fromkeys(n for n in names if n in FIELDS))


def sample_enterprise(*, session: Session, form: Form, uscc: str = "") -> tuple[list[tuple[str, str]], Any]:
    """The sample enterprises of the item's region (the first ones on file) and the one chosen (the first)."""
    sample = workbench_repo.enterprise_sample(
        session=session, region_prefix=_region_prefix(form.get("region_code")), limit=EXAMPLE_SAMPLE
    )
    chosen = next((e for e in sample if e.uscc == uscc), None)
    if chosen is None and uscc:
        chosen = enterprise_repo.get_by_uscc(session=session, uscc=uscc)
    return [(e.uscc, e.name) for e in sample], chosen or (sample[0] if sample else None)


def worked_example(*, session: Session, principal: Principal, form: Form, uscc: str = "") -> Example:
    """The amount the form's standard gives a chosen sample enterprise, worked in yuan (rules.amounts, as the case
    activities compute it), with its 大写金额, the base values used and how it fares on the conditions."""
    enterprises, chosen = sample_enterprise(session=session, form=form, uscc=uscc)
    example = Example(enterprises=enterprises, chosen=chosen)
    built = config_from_form(form)
    errors = section_errors(built, ("standard",))
    if errors:
        example.errors = [e["msg"] for e in errors]
        return example
    if chosen is None:
        example.errors = ["企业档案中没有本区划的企业，无法测算"]
        return example
    standard = built.config["standard"]
    facts = facts_of(chosen)
    example.amount = compute_amount(standard, facts)
    example.capitals = to_capitals(example.amount.amount_fen)
    example.facts = [
        (FIELDS[n].label, "暂无数据" if facts.get(n) is None else FIELDS[n].format(facts[n])) for n in _bases(standard)
    ]
    if not section_errors(built, ("conditions",)):
        example.conditions = evaluate(built.config["conditions"], facts)
    return example


# The stages an item's notices are sent at, as the preview names them (template keys of rules.sms_templates).
SMS_STAGE_TITLES = {
    "received": "申报受理（即申即享）",
    "received_review": "申报受理（申报审批）",
    "supplement_requested": "退回补正",
    "approved": "审核通过",
    "rejected": "未通过（含不足之处）",
    "case_withdrawn": "撤回",
    "case_revoked": "撤销",
    "publicity_started": "公示",
    "objection_received": "收到异议",
    "consent_requested": "意愿确认（逾期视为放弃）",
    "consent_requested_pay_on_file": "意愿确认（逾期按档案账户兑付）",
    "deadline_reminder": "办理期限提醒",
    "paid": "拨付成功",
    "payment_failed": "拨付失败",
    "payment_returned": "退票",
    "payment_no_account": "未登记收款账户",
    "policy_push_registered": "注册后政策推送",
    "policy_push_listed": "上架后政策推送",
    "policy_push_listed_free": "上架后政策推送（免申即享）",
    "policy_push_paid": "兑付后政策推送",
}


@dataclass(frozen=True)
class SmsPreview:
    key: str
    title: str
    text: str
    length: int


def _working_days(form: Form, name: str, default: int) -> int:
    value = _int(form.get(name)) if form.get(name) else default
    return value if isinstance(value, int) and 0 < value <= 60 else default


def _sample_shortfall(session: Session, form: Form, built: Built) -> list[str]:
    """The 不足之处 of the first sample enterprise the form's conditions refuse (real wording for the rejection)."""
    if section_errors(built, ("conditions",)):
        return []
    sample = workbench_repo.enterprise_sample(
        session=session, region_prefix=_region_prefix(form.get("region_code")), limit=EXAMPLE_SAMPLE * 5
    )
    tree = parse_condition(built.config["conditions"])
    for enterprise in sample:
        result = evaluate(tree, enterprise)
        if not result.eligible:
            return result.unmet_texts()[:2]
    return []


def sms_preview(*, session: Session, principal: Principal, form: Form, uscc: str = "", today: date) -> list[SmsPreview]:
    """Every SMS the item's enterprises may get, in the item's mode, as the dispatcher would send it
    (rules.sms_templates.render, the same templates and variables as the case activities): the sample enterprise,
    the amount its standard gives in 大写金额, deadlines in working days from today (Beijing time), and the 不足之处
    of a sample enterprise the conditions refuse for the rejection."""
    example = worked_example(session=session, principal=principal, form=form, uscc=uscc)
    mode = form.get("mode")
    built = config_from_form(form)
    amount = example.amount.amount_fen if example.amount and example.amount.amount_fen else 0
    if not amount:  # a standard not yet filled in: the fixed or the highest amount typed, else a round figure
        amount = built.config["standard"].get("amount_fen") or built.config["standard"].get("max_fen") or 10_000_000
    officer = built.config.get("service_officer", {})
    name = example.chosen.name if example.chosen is not None else "宜昌市示例科技有限公司"
    calendar = working_calendar(session=session)

    def due(days: int) -> date:
        return calendar.add_working_days(today, days).due

    window_end = built.config.get("window", {}).get("end", "")
    try:
        listed_deadline = date.fromisoformat(window_end)
    except ValueError:
        listed_deadline = due(20)
    deadlines = {
        "supplement_requested": due(_working_days(form, "supplement_days", 5)),
        "publicity_started": due(_working_days(form, "publicity_days", 5)),
        "objection_received": due(OBJECTION_RULING_WORKING_DAYS),
        "policy_push_listed": listed_deadline,
    }
    params = {
        "enterprise": name,
        "item": form.get("name") or "（事项名称）",
        "case_no": "ZD0000000001",
        "reasons": "；".join(_sample_shortfall(session, form, built)) or "（不符合的申报条件及差距）",
        "reason": "收款账户户名与开户名称不一致",
        "officer": f"{officer.get('name', '')} {officer.get('phone', '')}".strip() or "政策服务专员",
        "task": "补正材料",
        "acct_tail": "6688",
        "count": "3",
    } | sms_templates.money_params(amount)
    # the listing push: a dated one for items enterprises apply to, the "no need to apply" one for 免申即享
    listed = "policy_push_listed_free" if mode == FundItemMode.NO_APPLICATION else "policy_push_listed"
    out = []
    for key, template in sms_templates.TEMPLATES.items():
        if mode not in template.modes or (key.startswith("policy_push_listed") and key != listed):
            continue
        deadline = deadlines.get(key, due(5))
        text = sms_templates.render(key, params | {"deadline": sms_templates.format_date(deadline)})
        out.append(SmsPreview(key, SMS_STAGE_TITLES.get(key, key), text, len(text)))
    return out


# -- live validation --------------------------------------------------------------------------------------------------

# The editor's sections and the configuration paths whose errors each shows.
SECTIONS: dict[str, tuple[str, ...]] = {
    "item": ("code", "config.policy", "config.name", "config.region", "config.mode", "department_code"),
    "window": ("config.window",),
    "guide": ("config.guide",),
    "budget": ("config.budget", "config.fund_source"),
    "standard": ("config.standard",),
    "conditions": ("config.conditions",),
    "approval": ("config.approval", "config.no_application"),
    "officer": ("config.service_officer", "config.officer"),
}


def in_section(errors: Sequence[Mapping[str, Any]], section: str) -> list[Mapping[str, Any]]:
    """The errors a section shows: those under its paths (an unknown section shows none)."""
    prefixes = SECTIONS.get(section, ())
    return [e for e in errors if ".".join(str(p) for p in e["loc"]).startswith(prefixes)]


def check(*, session: Session, principal: Principal, form: Form, code: str | None = None) -> list[dict[str, Any]]:
    """Everything a save would refuse, field by field, with the API's messages, saving nothing: the form's typing,
    then the save itself (the model and the registry checks) in a savepoint that is always rolled back."""
    built = config_from_form(form)
    if built.errors:
        return built.errors
    savepoint = session.begin_nested()
    try:
        saved = _save(session=session, principal=principal, form=form, code=code, config=built.config)
    finally:
        savepoint.rollback()
    return saved.errors


@dataclass
class Saved:
    """What the editor did: the saved item's code and notes, or the errors to show next to the fields."""

    code: str | None = None
    notes: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def save(*, session: Session, principal: Principal, form: Form, code: str | None = None) -> Saved:
    """Create the item (no code yet) or save its draft; refused with the API's Chinese messages, field by field."""
    built = config_from_form(form)
    if built.errors:
        return Saved(errors=built.errors)
    # a savepoint: a refused save leaves nothing behind (a policy row made before the refusal, say)
    savepoint = session.begin_nested()
    saved = _save(session=session, principal=principal, form=form, code=code, config=built.config)
    if saved.errors:
        savepoint.rollback()
    else:
        savepoint.commit()
    return saved


def _save(*, session: Session, principal: Principal, form: Form, code: str | None, config: dict[str, Any]) -> Saved:
    built = Built(config)
    try:
        if code is None:
            body = FundItemCreate.model_validate({"code": form.get("code"), "config": built.config})
            out = fund_item_service.create_item(session=session, principal=principal, body=body)
        else:
            config = FundItemConfig.model_validate(built.config)
            out = fund_item_service.save_draft(session=session, principal=principal, code=code, config=config)
    except ValidationError as exc:
        root = FundItemCreate if code is None else FundItemConfig
        errors = explain_errors(exc.errors(include_url=False), root)
        if code is not None:  # the API's draft body is the configuration itself; the page names it under config
            errors = [e | {"loc": ["config", *e["loc"]]} for e in errors]
        return Saved(errors=errors)
    except DomainError as exc:
        return Saved(errors=[{"loc": [exc.field or ""], "msg": exc.message, "type": exc.rule or exc.code}])
    return Saved(code=out.code, notes=list(out.notes))


def _yuan(fen: Any) -> str:
    return "" if fen is None else f"{Decimal(int(fen)) / 100:,.2f}"


def _percent(bp: Any) -> str:
    return "" if bp is None else f"{Decimal(int(bp)) / 100:g}"


def _shown(name: str, value: Any) -> str:
    """A stored leaf value as the form shows it (yuan for money, percent for ratios, lists comma-separated)."""
    spec = FIELDS.get(name)
    values = value if isinstance(value, list) else [value]
    if spec is not None and spec.type == FieldType.MONEY_FEN:
        values = [_yuan(v) for v in values]
    elif spec is not None and spec.type == FieldType.RATIO_BP:
        values = [_percent(v) for v in values]
    elif spec is not None and spec.type == FieldType.ENUM:
        values = [dict(spec.choices).get(v, v) for v in values]
    return ", ".join(str(v) for v in values)


def form_from_config(config: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, list[dict[str, str]]]]:
    """The editor's fields and rows for a stored configuration (the inverse of config_from_form)."""
    policy, window, guide = config.get("policy", {}), config.get("window") or {}, config.get("guide", {})
    budget, standard, approval = config.get("budget", {}), config.get("standard", {}), config.get("approval", {})
    finance, officer = approval.get("finance") or {}, config.get("service_officer", {})
    v = {
        "mode": config.get("mode", ""),
        "name": config.get("name", ""),
        "policy_doc_number": policy.get("doc_number", ""),
        "policy_title": policy.get("title", ""),
        "policy_level": policy.get("level", ""),
        "policy_issuer": policy.get("issuer", ""),
        "policy_published_on": policy.get("published_on") or "",
        "region_code": config.get("region", {}).get("code", ""),
        "region_name": config.get("region", {}).get("name", ""),
        "window_start": window.get("start", ""),
        "window_end": window.get("end", ""),
        "budget_year": str(budget.get("year", "")),
        "budget_total_yuan": _yuan(budget.get("total_fen")),
        "finance_department": finance.get("department", ""),
        "finance_days": str(finance.get("deadline_working_days", "")),
        "finance_auto": "on" if finance.get("auto_when_quantified") else "",
        "reject_unmet": "on" if approval.get("reject_unmet_at_application") else "",
        "officer_name": officer.get("name", ""),
        "officer_phone": officer.get("phone", ""),
        "officer_office": officer.get("office", ""),
    }
    v |= {
        f"guide_{k}": guide.get(k, "") for k in ("policy_basis", "conditions_text", "standard_text", "process", "notes")
    }
    completeness = approval.get("completeness_check") or {}
    supplement, publicity = approval.get("supplement") or {}, approval.get("publicity") or {}
    v |= {
        "completeness_department": completeness.get("department", ""),
        "completeness_days": str(completeness.get("deadline_working_days", "")),
        "supplement_times": str(supplement.get("max_times", "")),
        "supplement_days": str(supplement.get("enterprise_deadline_working_days", "")),
        "publicity_days": str(publicity.get("working_days", "")),
        "objection_department": publicity.get("objection_department") or "",
    }
    standard_values, standard_rows = standard_fields(standard)
    v |= standard_values
    rows = standard_rows | {
        "source": [
            {"source_name": s["name"], "source_share": _percent(s["share_bp"])} for s in budget.get("sources", [])
        ],
        "cond": rows_from_conditions(config.get("conditions") or {"op": "all", "items": []}),
        "stage": [
            {
                "stage_key": s["key"],
                "stage_name": s["name"],
                "stage_departments": ", ".join(s["departments"]),
                "stage_joint": s.get("joint_mode", JointMode.ALL.value),
                "stage_days": str(s.get("deadline_working_days", "")),
                "stage_timeout": s.get("on_timeout", TimeoutPolicy.ESCALATE.value),
                "stage_escalate_to": s.get("escalate_to") or "",
            }
            for s in approval.get("stages", [])
        ],
        "material": [
            {
                "material_name": m["name"],
                "material_requirement": m["requirement"],
                "material_sample": m.get("sample", ""),
            }
            for m in guide.get("materials", [])
        ],
    }
    return v, {k: r or [{}] for k, r in rows.items()}
