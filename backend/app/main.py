"""The FastAPI application: `uvicorn app.main:app` from backend/.

Start-up builds the services once (database, embedder, LLM client, history);
routes live in app/api/. OpenAPI docs are at /docs.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from app.api import chat, conversations, documents, errors, health
from app.settings import Settings, get_settings


def create_app(settings: Settings | None = None, services=None, embedder=None) -> FastAPI:
    """Build the app; tests pass their own settings, an already loaded embedder, or a
    ready Services object."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from app.services import build_services

        built = services or build_services(settings or get_settings(), embedder=embedder)
        app.state.services = built
        try:
            yield
        finally:
            if services is None:
                await built.aclose()

    app = FastAPI(
        title="Course RAG appliance",
        version="0.1.0",
        description="Answers questions from ingested course materials, with page-level citations.",
        lifespan=lifespan,
    )
    errors.install(app)
    for module in (health, chat, conversations, documents):
        app.include_router(module.router)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        # The browser UI is not built yet; until then the front page is the API docs.
        return RedirectResponse("/docs")

    return app


logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app()
