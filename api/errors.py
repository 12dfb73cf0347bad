"""The API maps domain errors (services.errors) to one JSON shape: code, message and the fields with their rules."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unauthorized, Unavailable

__all__ = ["Conflict", "DomainError", "Forbidden", "Invalid", "NotFound", "Unauthorized", "Unavailable", "install"]


def error_body(code: str, message: str, errors: list[dict] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "errors": errors or []}}


# Chinese for pydantic's own rules (our validators already speak Chinese); {ctx} keys come from the error's ctx.
RULES_ZH = {
    "missing": "必填",
    "int_parsing": "必须是整数",
    "int_from_float": "必须是整数",
    "float_parsing": "必须是数字",
    "bool_parsing": "必须是 true 或 false",
    "date_parsing": "必须是 YYYY-MM-DD 格式的日期",
    "date_from_datetime_parsing": "必须是 YYYY-MM-DD 格式的日期",
    "string_type": "必须是文本",
    "string_too_short": "长度至少 {min_length} 个字符",
    "string_too_long": "长度至多 {max_length} 个字符",
    "string_pattern_mismatch": "格式不符（{pattern}）",
    "too_long": "至多 {max_length} 项",
    "too_short": "至少 {min_length} 项",
    "greater_than_equal": "不得小于 {ge}",
    "greater_than": "必须大于 {gt}",
    "less_than_equal": "不得大于 {le}",
    "less_than": "必须小于 {lt}",
    "literal_error": "取值必须是 {expected} 之一",
    "json_invalid": "不是合法的 JSON",
    "extra_forbidden": "不允许的字段",
}


def message_zh(error: dict) -> str:
    """The rule of a validation error in Chinese (our own validators' messages are kept as they are)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    template = RULES_ZH.get(error["type"])
    if template is None or not message.isascii():  # already Chinese (a model that words its own errors)
        return message
    try:
        return template.format(**(error.get("ctx") or {}))
    except (KeyError, IndexError):
        return template


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        errors = [{"field": exc.field, "message": exc.message}] if exc.field else []
        if errors and exc.rule:
            errors[0]["rule"] = exc.rule
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(error_body(exc.code, exc.message, errors), exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": message_zh(e), "rule": e["type"]}
            for e in exc.errors()
        ]
        summary = "；".join(f"{x['field']}: {x['message']}" for x in errors)
        return JSONResponse(error_body("invalid", f"请求参数有误：{summary}", errors), 422)
