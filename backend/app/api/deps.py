"""Access to the Services object the app built at start-up."""

from __future__ import annotations

from fastapi import Request

from app.services import Services


def get_services(request: Request) -> Services:
    return request.app.state.services
