"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from hub.web.deps import SettingsDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    """``"ok"`` for each part, or what is wrong with it."""

    status: str
    database: str
    migrations: str
    broker: str
    worker: str
    beat: str


@router.get("/healthz", summary="The process is up", response_model=Health)
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Everything publishing needs: database at its migrations' head, broker, worker and "
    "beat heartbeats within two intervals (503 naming what failed)",
    response_model=Readiness,
    responses={503: {"model": Readiness}},
)
def readyz(settings: SettingsDep) -> JSONResponse:
    from hub.system import readiness

    checks = readiness(settings)
    ready = all(value == "ok" for value in checks.values())
    body = Readiness(status="ok" if ready else "unavailable", **checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
