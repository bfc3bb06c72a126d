"""The FastAPI application: `uvicorn app.main:app` from backend/.

Start-up builds the services once (database, embedder, LLM client, history);
routes live in app/api/. OpenAPI docs are at /docs. The browser UI (frontend/,
plain files, no build step) is served at / on the same port, because a Runpod
pod exposes few ports and its HTTPS proxy then needs no extra set-up.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.access.control import AccessControl
from app.access.middleware import AccessMiddleware
from app.api import access, chat, conversations, courses, documents, errors, feedback, health, insight, metrics, openai
from app.frontend import FrontendFiles
from app.metrics.middleware import RequestMetrics
from app.metrics.registry import ApplianceMetrics
from app.errors import StorageUnavailableError
from app.settings import Settings, get_settings

log = logging.getLogger("app")


def create_app(settings: Settings | None = None, services=None, embedder=None) -> FastAPI:
    """Build the app; tests pass their own settings, an already loaded embedder, or a
    ready Services object."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from app.services import build_services

        resolved_settings = settings or get_settings()

        def serve(built) -> None:
            app.state.services = built
            app.state.unavailable = None
            if app.state.metrics is not None:
                built.jobs.report_listeners.append(app.state.metrics.observe_ingest)
            built.start()

        waiting = None
        if services is not None:
            serve(services)
        else:
            try:
                serve(build_services(resolved_settings, embedder=embedder))
            except StorageUnavailableError as exc:
                if resolved_settings.storage.milvus_is_local_file:
                    raise  # a file this machine cannot open will not open by waiting
                # A Milvus server that is down (or not up yet): serve 503s that say so, and
                # keep trying; the backend is whole as soon as the server answers.
                log.error("%s Retrying every %.0f s.", exc, resolved_settings.storage.milvus_retry_s)
                app.state.unavailable = str(exc)
                waiting = asyncio.create_task(_build_when_reachable(app, resolved_settings, embedder, serve))
        try:
            yield
        finally:
            if waiting is not None:
                waiting.cancel()
            if services is None and app.state.services is not None:
                await app.state.services.aclose()

    app = FastAPI(
        title="Course RAG appliance",
        version="0.1.0",
        description="Answers questions from ingested course materials, with page-level citations.",
        lifespan=lifespan,
    )
    resolved = settings or get_settings()
    app.state.services = None
    app.state.unavailable = None  # why there are no services yet (a Milvus server not reachable)
    app.state.access = AccessControl(resolved)
    app.state.access.prepare()
    errors.install(app)
    for module in (health, access, courses, chat, conversations, feedback, insight, documents, openai, metrics):
        app.include_router(module.router)
    app.add_middleware(AccessMiddleware, access=app.state.access)
    app.state.metrics = ApplianceMetrics() if resolved.appliance.metrics_enabled else None
    if app.state.metrics is not None:  # outermost: it sees every request, refused ones too
        app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    if resolved.access.cors_origins:  # other sites' pages, by name only; same origin needs no CORS
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=resolved.access.cors_origins, allow_credentials=True,
                           allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])

    frontend = resolved.appliance.frontend_path
    if (frontend / "index.html").is_file():
        # Mounted last, so every /api route and /docs wins over a file of the same name.
        app.mount("/", FrontendFiles(directory=frontend, html=True), name="frontend")
    else:
        logging.getLogger("app").warning("No browser UI at %s; serving the API only.", frontend)

    return app


async def _build_when_reachable(app: FastAPI, settings: Settings, embedder, serve) -> None:
    """Build the services again every `milvus_retry_s` seconds until the server answers."""
    from app.services import build_services

    while True:
        await asyncio.sleep(settings.storage.milvus_retry_s)
        try:
            built = await asyncio.to_thread(build_services, settings, embedder)
        except StorageUnavailableError as exc:
            app.state.unavailable = str(exc)
            continue
        serve(built)
        log.info("Milvus at %s answers; the backend is ready.", settings.storage.milvus_uri)
        return


logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app()
