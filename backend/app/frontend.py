"""Serving the browser UI (frontend/) with a strict Content-Security-Policy.

Why a policy: answers and documents may contain HTML or script. The page sanitises
everything it renders, and this header is the second lock: even if something slipped
through, the browser refuses inline script, script from anywhere but this origin,
and plugins.
"""

from __future__ import annotations

from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'self'; form-action 'self'"
)

_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    # The files change with the repository, not with a build hash: always revalidate.
    (b"cache-control", b"no-cache"),
]


class FrontendFiles(StaticFiles):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + _HEADERS
            await send(message)

        await super().__call__(scope, receive, send_with_headers)
