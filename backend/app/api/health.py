"""Liveness (/api/health) and readiness (/api/ready)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.api.deps import client_address
from app.errors import ApplianceError

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", summary="The backend process is up (anyone)")
async def health() -> dict:
    return {"status": "ok"}


def _is_instructor(request: Request) -> bool:
    try:
        return request.app.state.access.identify(request.headers.get("authorization"), request.cookies,
                                                 client_address(request)).is_instructor
    except Exception:  # a wrong key here is simply not the instructor
        return False


@router.get("/ready", summary="LLM reachable, database open, what is loaded (anyone; paths for the instructor)")
async def ready(request: Request) -> JSONResponse:
    """200 when the LLM server is up or busy answering and the database is open; 503 with
    the reason otherwise. `llm` says "up", "busy" (answering students: questions wait
    their turn) or "down". `calibration`: the relevance gate's thresholds and where they
    come from (a `warnings` entry when the embedder has no profile). Where the database and
    the LLM server live is shown to the instructor only."""
    instructor = _is_instructor(request)
    services = request.app.state.services
    if services is None:  # a Milvus server that has not answered yet: the backend keeps trying
        why = request.app.state.unavailable or "starting"
        return JSONResponse(status_code=503, content={
            "ready": False, "database_open": False,
            "problems": [f"database: {why}" if instructor else "database: not reachable"]})
    report: dict = {"embedding_model": services.settings.embedding.embedding_model,
                    "embedding_device": services.embedder.device,
                    "query_embedding_runtime": services.embedder.query_runtime,
                    "student_access": services.settings.access.student_access}
    if instructor:
        report["database"] = services.target.describe()
    problems = []
    try:
        report["chunks"] = await asyncio.to_thread(services.store.count)
        report["database_open"] = True
    except Exception as exc:  # any storage failure is "not ready", with its reason
        report["database_open"] = False
        problems.append(f"database: {exc}" if instructor else "database: not reachable")
    try:
        await services.conversations.ping()
    except ApplianceError as exc:  # a PostgreSQL server that is down: conversations cannot be kept
        problems.append(f"conversations: {exc}" if instructor else "conversations: not reachable")
    answering = request.app.state.access.answers.busy
    state, why = await services.llm.probe(busy=answering > 0)
    report["llm"] = state  # "busy": answering students, not down
    report["llm_reachable"] = state != "down"
    report["answers_in_progress"] = answering
    if why:
        problems.append(why)
    elif state == "busy":
        report["llm_model"] = services.llm.known_model
    else:
        try:
            report["llm_model"] = await services.llm.model_name()
        except ApplianceError as exc:
            problems.append(str(exc))
    if instructor:
        report["llm_url"] = services.llm.base_url
    report["llm_device"] = services.settings.llm.llm_device
    reranker = services.retriever.reranker
    calibration = services.retriever.calibration  # resolved when the course was built
    # the gate's thresholds and where they come from; a warning when the embedder has no profile
    report["calibration"] = calibration.to_dict()
    if calibration.warning:
        report["warnings"] = [calibration.warning]
    report["retrieval"] = services.settings.retrieval.retrieval_mode
    report["reranker"] = reranker.model_name if reranker else None  # None: off or not loadable
    report["ready"] = not problems
    if problems:
        report["problems"] = problems
    return JSONResponse(status_code=200 if not problems else 503, content=report)
