"""GET /metrics: the Prometheus exposition of the database's figures (services/metrics.py), counts only.

Readable with the configured metrics token, or from this host when none is configured; not in the OpenAPI (it is
for the scraper, not for users)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import SessionDep, bearer_of
from services import metrics

router = APIRouter(tags=["operations 运维"])


@router.get("/metrics", include_in_schema=False)
def prometheus(request: Request, session: SessionDep) -> Response:
    token = request.app.state.settings.metrics_token
    metrics.admit(
        configured_token=token.get_secret_value() if token else None,
        presented=bearer_of(request),
        client_host=request.client.host if request.client else None,
    )
    return Response(metrics.exposition(session=session), media_type=metrics.CONTENT_TYPE)
