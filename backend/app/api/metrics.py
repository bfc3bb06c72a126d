"""GET /metrics (the backend's) and GET /metrics/llm (llama-server's own), in Prometheus'
text format. Instructor only: a scrape sends the instructor key as a bearer token
(Prometheus' `authorization` setting), so the public URL shows nothing to anyone else."""

from __future__ import annotations

import asyncio
import logging

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from app.api.deps import AccessDep, Instructor, ServicesDep
from app.metrics.registry import ApplianceMetrics

router = APIRouter(tags=["metrics"])
log = logging.getLogger(__name__)


def enabled_metrics(request: Request) -> ApplianceMetrics:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is None:
        raise HTTPException(404, "Metrics are off (RAG_METRICS_ENABLED=false).")
    return metrics


async def refresh(metrics: ApplianceMetrics, services, access) -> None:
    """The gauges read at scrape time: answer slots, the LLM server, chunks per course."""
    gate = access.answers
    metrics.answers_running.set(gate.busy)
    metrics.answers_queued.set(max(0, gate.admitted - gate.busy))
    state, _ = await services.llm.probe(busy=gate.busy > 0)
    metrics.llm_up.set(0 if state == "down" else 1)
    model = services.llm.known_model
    if model is None and state == "up":
        try:
            model = await services.llm.model_name()
        except Exception:  # the server went away between the two requests
            model = None
    if model:
        metrics.llm_model.clear()
        metrics.llm_model.labels(model).set(1)

    def counts() -> dict[str, int]:
        return {course.name: course.store.count() for course in services.courses.loaded()}

    try:
        for name, count in (await asyncio.to_thread(counts)).items():
            metrics.chunks.labels(name).set(count)
    except Exception as exc:  # the database is away: the other metrics still count
        log.warning("metrics: cannot count chunks (%s)", exc)


@router.get("/metrics", summary="The backend's metrics, Prometheus text format (instructor)",
            response_class=Response)
async def backend_metrics(request: Request, _: Instructor, services: ServicesDep, access: AccessDep) -> Response:
    metrics = enabled_metrics(request)
    await refresh(metrics, services, access)
    return Response(metrics.render(), media_type=metrics.content_type)


@router.get("/metrics/llm", summary="llama-server's own metrics, passed through (instructor)",
            response_class=Response)
async def llm_metrics(_: Instructor, services: ServicesDep) -> Response:
    """llama-server listens on 127.0.0.1 only; this passes its `/metrics` (started with
    `--metrics` by the startup script) to a scraper that can reach only the backend. 404
    when the LLM server has none (llama_cpp.server, or an external server without it)."""
    url = f"{services.llm.root_url}/metrics"
    try:
        response = await services.llm.http.get(url, timeout=5.0)
    except httpx.HTTPError:
        raise HTTPException(503, f"The LLM server at {services.llm.root_url} is not reachable.") from None
    if response.status_code != 200 or "# TYPE" not in response.text[:2000]:
        raise HTTPException(404, "The LLM server offers no Prometheus metrics (llama-server does when started "
                            "with --metrics; python -m llama_cpp.server does not).")
    return Response(response.content, media_type=response.headers.get("content-type", "text/plain"))
