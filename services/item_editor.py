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
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from rules.condition_text import conditions_text as generated_text
from rules.money import parse_yuan
from schemas.conditions import parse_condition
from schemas.fields import FIELDS, FieldType
from schemas.fund_items import FundItemConfig, FundItemCreate, explain_errors
from schemas.principal import Principal
from schemas.vocabulary import FundItemMode, JointMode, TimeoutPolicy
from services import fund_items as fund_item_service
from services.errors import DomainError

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
    kind = form.get("standard_kind")
    if kind == "fixed":
        c["standard"] = {"kind": "fixed", "amount_fen": _fen(built, ("standard", "amount_fen"), "补助金额",
                                                              form.get("standard_amount_yuan"))}  # fmt: skip
    elif kind == "rate":
        rate = form.get("standard_rate_percent")
        try:
            rate_text = str(Decimal(rate.removesuffix("%")) / 100) if rate else None
        except InvalidOperation:
            built.typing_error(("standard", "rate"), f"比例：“{rate}”不是百分数，应为如 3 或 2.5 的数字")
            rate_text = None
        c["standard"] = {
            "kind": "rate",
            "base": form.get("standard_base"),
            "rate": rate_text,
            "floor_fen": _fen(built, ("standard", "floor_fen"), "最低金额", form.get("standard_floor_yuan")),
            "cap_fen": _fen(built, ("standard", "cap_fen"), "最高金额", form.get("standard_cap_yuan")),
        }
    else:
        c["standard"] = {
            "kind": kind or "manual",
            "max_fen": _fen(built, ("standard", "max_fen"), "最高金额", form.get("standard_max_yuan")),
            "note": form.get("standard_note"),
        }
    c["standard"] = {k: v for k, v in c["standard"].items() if v is not None}
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
        "standard_kind": standard.get("kind", ""),
        "standard_amount_yuan": _yuan(standard.get("amount_fen")),
        "standard_base": standard.get("base", ""),
        "standard_rate_percent": f"{Decimal(standard['rate']) * 100:g}" if standard.get("rate") else "",
        "standard_floor_yuan": _yuan(standard.get("floor_fen")),
        "standard_cap_yuan": _yuan(standard.get("cap_fen")),
        "standard_max_yuan": _yuan(standard.get("max_fen")),
        "standard_note": standard.get("note", ""),
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
    rows = {
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
