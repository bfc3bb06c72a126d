"""Turn errors into short JSON messages a person can act on, never a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.access.limits import TooMany
from app.conversations.store import NotYours
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


_STATUS = {
    LLMUnavailableError: 503,
    StorageUnavailableError: 503,
    ConfigurationError: 409,
    ApplianceError: 400,
}


def _plain(status: int):
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    return handler


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return JSONResponse(status_code=422, content={"detail": _describe_validation(exc)})

    @app.exception_handler(TooMany)
    async def _too_many(request: Request, exc: TooMany):
        return JSONResponse(status_code=429, content={"detail": str(exc)},
                            headers={"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(NotYours)
    async def _not_yours(request: Request, exc: NotYours):
        return JSONResponse(status_code=404, content={"detail": f"No conversation '{exc}'."})

    # Starlette uses the handler registered for the closest class in the MRO, so the
    # subclasses above win over ApplianceError.
    for error_type, status in _STATUS.items():
        app.add_exception_handler(error_type, _plain(status))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": "Internal error; the backend log has the details."})
