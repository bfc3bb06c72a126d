"""Liveness (/api/health) and readiness (/api/ready)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from app.api.deps import get_services
from app.errors import ApplianceError
from app.services import Services

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", summary="The backend process is up")
async def health() -> dict:
    return {"status": "ok"}


@router.get("/ready", summary="LLM reachable, database open, what is loaded")
async def ready(services: Services = Depends(get_services)) -> JSONResponse:
    """200 when the LLM answers and the database is open; 503 with the reason otherwise."""
    report: dict = {"embedding_model": services.settings.embedding_model,
                    "embedding_device": services.embedder.device,
                    "query_embedding_runtime": services.embedder.query_runtime,
                    "database": services.target.describe()}
    problems = []
    try:
        report["chunks"] = await asyncio.to_thread(services.store.count)
        report["database_open"] = True
    except Exception as exc:  # any storage failure is "not ready", with its reason
        report["database_open"] = False
        problems.append(f"database: {exc}")
    try:
        report["llm_models"] = await services.llm.list_models()
        report["llm_model"] = await services.llm.model_name()
        report["llm_reachable"] = True
    except ApplianceError as exc:
        report["llm_reachable"] = False
        problems.append(str(exc))
    report["llm_url"] = services.llm.base_url
    report["llm_device"] = services.settings.llm_device
    reranker = services.retriever.reranker
    report["retrieval"] = services.settings.retrieval_mode
    report["reranker"] = reranker.model_name if reranker else None  # None: off or not loadable
    report["ready"] = not problems
    if problems:
        report["problems"] = problems
    return JSONResponse(status_code=200 if not problems else 503, content=report)
