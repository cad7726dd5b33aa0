"""GET /metrics for Prometheus: outside /api/v1 and open, like /healthz (it shows counts, never job contents)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

router = APIRouter(tags=["operations"])


@router.get("/metrics", name="metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Job counts, latencies and queue depth in the Prometheus text format."""
    # The classic 0.0.4 text format, which every Prometheus reads (apot's metric names need nothing newer).
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_PLAIN_0_0_4)
