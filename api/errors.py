"""The API maps domain errors (services.errors) to one JSON shape: code, message and the fields with their rules."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unauthorized, Unavailable

__all__ = ["Conflict", "DomainError", "Forbidden", "Invalid", "NotFound", "Unauthorized", "Unavailable", "install"]


def error_body(code: str, message: str, errors: list[dict] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "errors": errors or []}}


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
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"], "rule": e["type"]}
            for e in exc.errors()
        ]
        summary = "；".join(f"{x['field']}: {x['message']}" for x in errors)
        return JSONResponse(error_body("invalid", f"请求参数有误：{summary}", errors), 422)
