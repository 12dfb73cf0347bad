"""Tags on enterprises (《宜昌市惠企服务平台运行规则》第二十七条): departments define them as conditions over archive
fields or as imported lists, see how many enterprises a tag would carry before saving it, and find them as the
`rule_tags` condition field. The page (/web/archive/tags) and the JSON API call the same services/archive.py."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from api.deps import SessionDep, allow
from api.pages import templates
from api.routers.web import error_page, signed_in
from schemas.archive import TagPreviewOut, TagRuleOut
from schemas.fields import OPERATOR_LABELS, field_catalogue
from schemas.vocabulary import Role, TagRuleKind
from services import archive, item_editor
from services.errors import DomainError, Forbidden
from services.scope import Scope

router = APIRouter(tags=["archive 企档"])
Tagger = Annotated[Scope, Depends(allow(Role.DEPARTMENT))]
Staff = Annotated[Scope, Depends(allow(Role.DEPARTMENT, Role.FINANCE))]
MAX_LIST_BYTES = 20 * 1024 * 1024
CONDITION_ROWS = 3
FIELD_LABELS = {"name": "标签名称", "kind": "标签类型", "condition": "条件", "file": "名单文件"}


class TagRuleIn(BaseModel):
    name: str = Field(min_length=1, max_length=40, description="标签名称，如“宜昌制造业小微企业”")
    kind: str = Field(TagRuleKind.RULE.value, description="rule：按档案字段条件；list：导入名单")
    condition: dict[str, Any] | None = Field(None, description="条件（与资金事项申报条件同一格式），不能引用 rule_tags")
    members: list[str] | None = Field(None, max_length=100_000, description="名单：统一社会信用代码列表（kind=list）")


def _members_file(members: list[str] | None) -> tuple[str, bytes] | None:
    return None if members is None else ("members.csv", ("uscc\n" + "\n".join(members)).encode())


def _draft(session: Any, scope: Scope, body: TagRuleIn) -> archive.TagDraft:
    return archive.check_tag_rule(session=session, scope=scope, name=body.name, kind=body.kind,
                                  condition=body.condition, list_file=_members_file(body.members))  # fmt: skip


@router.get("/api/v1/archive/tag-rules", response_model=list[TagRuleOut], summary="标签规则（《宜昌市惠企服务平台运行规则》第二十七条）")
def list_tag_rules(session: SessionDep, scope: Staff) -> list[dict[str, Any]]:
    """The tag rules the caller may see (a department its own; finance and administrators all) and how many
    enterprises carry each tag."""
    return [dataclasses.asdict(r) for r in archive.tag_rules(session=session, scope=scope)]


@router.post("/api/v1/archive/tag-rules", status_code=201, response_model=TagRuleOut,
             summary="定义标签（按条件或导入名单，立即为企业打标签）")  # fmt: skip
def create_tag_rule(body: TagRuleIn, session: SessionDep, scope: Tagger) -> dict[str, Any]:
    """A tag as a condition over archive fields (re-tagged when an import changes a field it uses) or as a list of
    USCCs; conditions of fund items use it as `rule_tags` (has_tag). Any error refuses the tag, naming the field."""
    rule = archive.store_tag_rule(session=session, scope=scope, draft=_draft(session, scope, body))
    return dataclasses.asdict(rule)


@router.post("/api/v1/archive/tag-rules/preview", response_model=TagPreviewOut,
             summary="预览标签：将有多少家企业带上此标签（不保存）")  # fmt: skip
def preview_tag_rule(body: TagRuleIn, session: SessionDep, scope: Tagger) -> dict[str, Any]:
    """Every error of the draft (each naming its field), and how many enterprises it would tag now when there is
    none; nothing is stored."""
    draft = _draft(session, scope, body)
    errors = [e for e in draft.errors if e["rule"] != "unique" or e["field"] != "name"]
    tagged = None if errors else archive.preview_tag_rule(session=session, scope=scope, draft=draft)
    return {"tagged": tagged, "errors": draft.errors}


# --- pages -----------------------------------------------------------------------------------------------------


def _tag_page_scope(request: Request) -> Scope | Response:
    scope = signed_in(request)
    if isinstance(scope, Scope) and scope.role not in archive.TAG_READERS:
        return error_page(request, Forbidden("企业不能查看标签规则", rule="role"))
    return scope


def _page(request: Request, session: Any, scope: Scope, **extra: Any) -> Response:
    values = extra.pop("values", {})
    rows = extra.pop("rows", None) or [{}] * CONDITION_ROWS
    rows = rows + [{}] * (CONDITION_ROWS - len(rows))
    context = {
        "principal": scope.principal,
        "rules": archive.tag_rules(session=session, scope=scope),
        "can_define": scope.role in archive.TAG_RULE_ROLES,
        "fields": [f for f in field_catalogue() if f["name"] != "rule_tags"],
        "v": values,
        "rows": rows,
        "kinds": list(TagRuleKind),
        "own_only": scope.role == Role.DEPARTMENT,
        "field_labels": FIELD_LABELS,
        "op_labels": OPERATOR_LABELS,
        **extra,
    }
    status = 422 if extra.get("errors") else 200
    return templates.TemplateResponse(request, "archive_tags.html", context, status_code=status)


@router.get("/web/archive/tags", response_class=HTMLResponse, include_in_schema=False)
def tags_page(request: Request, session: SessionDep, created: int | None = None) -> Response:
    scope = _tag_page_scope(request)
    if not isinstance(scope, Scope):
        return scope
    return _page(request, session, scope, created=created)


async def _form_draft(request: Request, session: Any, scope: Scope) -> tuple[archive.TagDraft, dict, list]:
    data = await request.form()
    single = {k: str(v) for k, v in data.items() if isinstance(v, str)}
    multi = {k: [str(x) for x in data.getlist(k) if isinstance(x, str)] for k in data}
    form = item_editor.Form(single, multi)
    rows = form.rows("cond_field", "cond_op", "cond_value")
    kind = form.get("kind", TagRuleKind.RULE) or TagRuleKind.RULE
    built = item_editor.Built(config={})
    leaves = [
        {"field": r["cond_field"], "op": r["cond_op"],
         "value": item_editor._leaf_value(built, i, r["cond_field"], r["cond_op"], r["cond_value"])}
        for i, r in enumerate(rows)
    ]  # fmt: skip
    upload = data.get("list_file")
    list_file = None
    if kind == TagRuleKind.LIST and upload is not None and not isinstance(upload, str) and upload.filename:
        content = await upload.read()
        list_file = (upload.filename, content[: MAX_LIST_BYTES + 1])
    draft = archive.check_tag_rule(
        session=session,
        scope=scope,
        name=form.get("name"),
        kind=kind,
        condition={"op": form.get("cond_group", "all") or "all", "items": leaves},
        list_file=list_file,
    )
    if list_file is not None and len(list_file[1]) > MAX_LIST_BYTES:
        draft.error("file", "名单文件超过 20 MB（文件大小规则）", "max_size")
    for e in built.errors:  # the form's own typing (a yuan amount that is not a number)
        draft.error("condition", e["msg"], "form")
    return draft, single, rows


@router.post("/web/archive/tags/preview", response_class=HTMLResponse, include_in_schema=False)
async def tags_preview(request: Request, session: SessionDep) -> Response:
    """The htmx preview: the errors by field, or how many enterprises the tag would carry now."""
    scope = _tag_page_scope(request)
    if not isinstance(scope, Scope):
        return scope
    try:
        draft, _, _ = await _form_draft(request, session, scope)
        errors = [e for e in draft.errors if e["rule"] != "unique" or e["field"] != "name"]
        tagged = None if errors else archive.preview_tag_rule(session=session, scope=scope, draft=draft)
    except DomainError as exc:
        return error_page(request, exc)
    context = {"errors": draft.errors, "tagged": tagged, "field_labels": FIELD_LABELS}
    return templates.TemplateResponse(request, "_archive_tag_preview.html", context)


@router.post("/web/archive/tags", response_class=HTMLResponse, include_in_schema=False)
async def tags_create(request: Request, session: SessionDep) -> Response:
    scope = _tag_page_scope(request)
    if not isinstance(scope, Scope):
        return scope
    try:
        draft, values, rows = await _form_draft(request, session, scope)
        if draft.errors:
            return _page(request, session, scope, errors=draft.errors, values=values, rows=rows)
        rule = archive.store_tag_rule(session=session, scope=scope, draft=draft)
    except DomainError as exc:
        return error_page(request, exc)
    return RedirectResponse(f"/web/archive/tags?created={rule.id}", status_code=303)
