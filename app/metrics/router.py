"""GET /metrics for the api process (Prometheus text format)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.metrics import exposition
from app.metrics.database import DatabaseGauges
from app.runtime import Runtime, runtime_of

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (bearer METRICS_TOKEN when configured)",
    response_class=Response,
    responses={
        200: {"content": {exposition.CONTENT_TYPE: {}}, "description": "Prometheus text"},
        401: {"description": "METRICS_TOKEN is configured and the bearer token is missing"},
    },
)
async def metrics(request: Request) -> Response:
    runtime = runtime_of(request)
    if not exposition.allowed(request.headers.get("authorization"), runtime.settings.metrics_token):
        return Response(
            "missing or invalid bearer token\n",
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
            media_type="text/plain",
        )
    await _gauges(request, runtime).refresh()
    return Response(exposition.render(), media_type=exposition.CONTENT_TYPE)


def _gauges(request: Request, runtime: Runtime) -> DatabaseGauges:
    # One per app (process), made on the first scrape: the lifespan need not know about it.
    gauges: DatabaseGauges | None = getattr(request.app.state, "database_gauges", None)
    if gauges is None:
        gauges = DatabaseGauges(runtime.engine, interval_s=runtime.settings.metrics_refresh_seconds)
        request.app.state.database_gauges = gauges
    return gauges
