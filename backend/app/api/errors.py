"""Turn errors into short JSON messages a person can act on, never a stack trace.

Under /api: `{"detail": message}`. Under /v1 (the OpenAI-compatible routes): OpenAI's
shape, `{"error": {"message", "type", "param", "code"}}`, which OpenAI's SDKs read, and
a validation error is 400 there, as OpenAI answers it.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.access.limits import TooMany
from app.conversations.store import NotYours
from app.errors import ApplianceError, ConfigurationError, StorageUnavailableError
from app.llm.client import LLMUnavailableError
from app.openai_api.responses import error_body, error_type

log = logging.getLogger("app.api")

OPENAI_PREFIX = "/v1/"


class OpenAIError(HTTPException):
    """An HTTP error with OpenAI's `code` (e.g. "model_not_found"), for the /v1 routes."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None):
        super().__init__(status, message)
        self.code, self.param = code, param


def error_response(request: Request, status: int, message: str, headers: dict | None = None,
                   code: str | None = None, param: str | None = None) -> JSONResponse:
    """The error in the shape the route's clients read."""
    if request.url.path.startswith(OPENAI_PREFIX):
        if status == 422:
            status = 400
        if code is None and status == 401:
            code = "invalid_api_key"
        return JSONResponse(status_code=status, content=error_body(message, error_type(status), code, param),
                            headers=headers)
    return JSONResponse(status_code=status, content={"detail": message}, headers=headers)


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
        return error_response(request, status, str(exc))

    return handler


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if not request.url.path.startswith(OPENAI_PREFIX):  # FastAPI's own shape, detail as given
            return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail},
                                headers=getattr(exc, "headers", None))
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        return error_response(request, exc.status_code, message, headers=getattr(exc, "headers", None),
                              code=getattr(exc, "code", None), param=getattr(exc, "param", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return error_response(request, 422, _describe_validation(exc))

    @app.exception_handler(TooMany)
    async def _too_many(request: Request, exc: TooMany):
        return error_response(request, 429, str(exc), headers={"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(NotYours)
    async def _not_yours(request: Request, exc: NotYours):
        return error_response(request, 404, f"No conversation '{exc}'.")

    # Starlette uses the handler registered for the closest class in the MRO, so the
    # subclasses above win over ApplianceError.
    for error_class, status in _STATUS.items():
        app.add_exception_handler(error_class, _plain(status))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "Internal error; the backend log has the details.")
