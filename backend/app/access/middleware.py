"""Checks every request passes before any route runs.

- Cross-site writes: a request that changes something (POST, PUT, PATCH, DELETE) from
  a page of another site is refused whatever cookies it carries, unless that site is
  in RAG_CORS_ORIGINS. A browser says where a request comes from (Sec-Fetch-Site,
  Origin) and a page cannot forge either; clients that send neither (curl, SDKs) are
  not browsers riding on someone's cookies, so they pass to the key checks.
- The student cookie: a browser without one gets a new random, signed id, so each
  student keeps their own conversations across reloads without an account.
- Upload size: refused from Content-Length before the body is read, and counted while
  it streams for requests that do not say their length.
"""

from __future__ import annotations

import json
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.access.control import STUDENT_COOKIE, AccessControl

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
STUDENT_COOKIE_AGE_S = 400 * 24 * 3600  # the longest browsers keep a cookie
UPLOAD_PATH = "/api/documents"


def headers_of(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def cookies_of(headers: dict[str, str]) -> dict[str, str]:
    raw = headers.get("cookie")
    if not raw:
        return {}
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header counts as no cookies
        return {}
    return {k: m.value for k, m in jar.items()}


def is_https(scope: Scope, headers: dict[str, str]) -> bool:
    return scope.get("scheme") == "https" or headers.get("x-forwarded-proto", "").split(",")[0].strip() == "https"


def cookie_header(name: str, value: str, max_age: int, secure: bool) -> tuple[bytes, bytes]:
    """HttpOnly (no script reads it), SameSite=Lax (not sent on other sites' requests that
    change things), Secure over HTTPS (Runpod's proxy)."""
    parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return b"set-cookie", "; ".join(parts).encode("latin-1")


def foreign_origin(method: str, headers: dict[str, str], allowed: set[str]) -> str | None:
    """The foreign origin a state-changing request comes from, or None if it may pass."""
    if method not in UNSAFE_METHODS:
        return None
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site in ("same-origin", "none"):
        return None
    origin = headers.get("origin")
    if origin is None:
        return "another site" if fetch_site in ("cross-site", "same-site") else None
    if origin.rstrip("/") in allowed:
        return None
    netloc = urlsplit(origin).netloc.lower() if origin != "null" else ""
    ours = {h.lower() for h in (headers.get("host"), headers.get("x-forwarded-host")) if h}
    return None if netloc and netloc in ours else origin


class AccessMiddleware:
    def __init__(self, app: ASGIApp, access: AccessControl):
        self.app = app
        self.access = access
        self.allowed_origins = {o.rstrip("/") for o in access.settings.access.cors_origins}
        self.upload_limit = access.settings.ingest.max_upload_mb * 1024 * 1024

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = headers_of(scope)
        method = scope["method"]
        origin = foreign_origin(method, headers, self.allowed_origins)
        if origin is not None:
            await _json(send, 403, f"Requests that change something are not accepted from {origin}.")
            return
        if method == "POST" and scope["path"].rstrip("/") == UPLOAD_PATH:
            declared = headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.upload_limit + 64 * 1024:
                await _json(send, 413, self._too_large())
                return
            receive = self._counting(receive)

        cookie = None
        if self.access.student_from_cookie(cookies_of(headers).get(STUDENT_COOKIE)) is None:
            cookie = cookie_header(STUDENT_COOKIE, self.access.new_student_cookie(), STUDENT_COOKIE_AGE_S,
                                   is_https(scope, headers))

        async def send_with_cookie(message: Message) -> None:
            if cookie and message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), cookie]
            await send(message)

        await self.app(scope, receive, send_with_cookie if cookie else send)

    def _too_large(self) -> str:
        return f"The file is larger than the {self.access.settings.ingest.max_upload_mb} MB limit."

    def _counting(self, receive: Receive) -> Receive:
        """Raise 413 inside the route's body parsing once the body passes the limit
        (the multipart envelope is allowed a little on top of the file itself)."""
        seen = 0
        limit = self.upload_limit + 64 * 1024

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, self._too_large())
            return message

        return counted


async def _json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
