"""`/metrics` for Prometheus (see service.reporting.metrics for why every figure comes from
the database)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from service.reporting.metrics import MetricsExporter
from service.web.dependencies import DatabaseDep

router = APIRouter(tags=["health"])


def _exporter(request: Request, database: DatabaseDep) -> MetricsExporter:
    exporter: MetricsExporter | None = getattr(request.app.state, "metrics_exporter", None)
    if exporter is None or exporter.database is not database:
        exporter = MetricsExporter(database)
        request.app.state.metrics_exporter = exporter
    return exporter


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, database: DatabaseDep) -> Response:
    body = await _exporter(request, database).body()
    return Response(
        body, media_type=CONTENT_TYPE_PLAIN_0_0_4, headers={"Cache-Control": "no-store"}
    )
