"""Turn errors into short JSON messages a person can act on, never a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.errors import ApplianceError, ConfigurationError, StorageUnavailableError
from app.llm.client import LLMUnavailableError

log = logging.getLogger("app.api")


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return "The request body is not valid JSON."
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        if error.get("type") == "missing":
            message = "is required"
        parts.append(f"{where} {message}".strip() if where else message)
    return "; ".join(parts) or "Invalid request."


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return JSONResponse(status_code=422, content={"detail": _describe_validation(exc)})

    @app.exception_handler(LLMUnavailableError)
    async def _llm(request: Request, exc: LLMUnavailableError):
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(StorageUnavailableError)
    async def _storage(request: Request, exc: StorageUnavailableError):
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(ConfigurationError)
    async def _config(request: Request, exc: ConfigurationError):
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    @app.exception_handler(ApplianceError)
    async def _appliance(request: Request, exc: ApplianceError):
        return JSONResponse(status_code=400, content={"detail": str(exc)})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": "Internal error; the backend log has the details."})
