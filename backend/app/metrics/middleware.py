"""Counts every HTTP request by its route's template, method and status.

A plain ASGI middleware (not BaseHTTPMiddleware, which buffers and costs a task per
request). The route is known only after routing, from the scope the router fills in;
the page's files count as one route, "frontend", and anything unmatched as "unmatched",
so a client probing random paths cannot grow the label set.
"""

from __future__ import annotations

import time

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics.registry import ApplianceMetrics


def route_label(scope: Scope) -> str:
    route = scope.get("route")
    if route is None:
        return "unmatched"
    if isinstance(route, Mount):
        return "frontend"
    return getattr(route, "path", "unmatched")


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: ApplianceMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes every handler

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = route_label(scope)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - started)
