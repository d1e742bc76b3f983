"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from hub.db import get_engine
from hub.web.deps import SettingsDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    broker: str


@router.get("/healthz", summary="The process is up", response_model=Health)
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Database and broker are reachable",
    response_model=Readiness,
    responses={503: {"model": Readiness}},
)
def readyz(settings: SettingsDep) -> JSONResponse:
    from scheduler.app import broker_reachable

    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # any driver error means "not ready"
        database = f"{type(exc).__name__}: {exc}"
    broker_ok, broker = broker_reachable(settings)
    ready = database == "ok" and broker_ok
    body = Readiness(status="ok" if ready else "unavailable", database=database, broker=broker)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
