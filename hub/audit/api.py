"""JSON API of the matrix audit (supervisors and admins) and of spokespersons."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlmodel import Session, col, select

from hub.audit import export, service
from hub.audit import spokespersons as people
from hub.audit.models import (
    AuditRunCreate,
    AuditRunPublic,
    SpokespersonCreate,
    SpokespersonPublic,
    SpokespersonUpdate,
)
from hub.auditlog import service as auditlog
from hub.config import Settings
from hub.orgs import service as orgs
from hub.orgs.models import Org
from hub.sqltypes import Id, utcnow
from hub.users.rules import Action
from hub.web.deps import Principal, PrincipalDep, SessionDep, SettingsDep, WhoDep

router = APIRouter(prefix="/api/v1/audits", tags=["matrix audit"])
spokespersons_router = APIRouter(prefix="/api/v1/orgs", tags=["spokespersons"])

AsOf = Annotated[
    str | None, Query(description="audit date YYYY-MM-DD (default: today)", examples=["2014-06-30"])
]
PolicyQuery = Annotated[
    str | None,
    Query(description="policy presets, comma-separated (default: GOVHUB_POLICY)"),
]


def _audit(
    session: Session, settings: Settings, as_of: str | None, policy: str | None
) -> tuple[service.MatrixAudit, tuple[str, ...]]:
    now = utcnow()
    day = service.parse_as_of(as_of, today=now.astimezone(settings.tz).date())
    chosen = service.resolve_policy(policy, settings)
    audit = service.run_audit(
        session=session,
        policy=chosen,
        as_of=day,
        tz=settings.tz,
        now=now,
        reach_days=settings.reach_days,
    )
    return audit, tuple(chosen.audit.platforms)


def require_matrix(session: Session, principal: Principal) -> None:
    """The matrix audit covers the whole matrix: only callers whose reach covers every root org
    (a supervisor at 省政府办公厅, the province's admin); one of 黔东南州 gets 403."""
    principal.require(Action.matrix_audit)
    for root in session.exec(select(Org).where(col(Org.parent_id).is_(None))).all():
        principal.require(Action.matrix_audit, root)


def _filename(audit: service.MatrixAudit, ext: str) -> str:
    return f"matrix-audit-{audit.result.as_of.isoformat()}.{ext}"


@router.get("/matrix", summary="Matrix coverage audit as of a date")
def matrix(
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    as_of: AsOf = None,
    policy: PolicyQuery = None,
) -> dict[str, Any]:
    """Findings with codes and plain-language text, per-account and per-org verdicts, roll-ups
    per prefecture and for the province."""
    require_matrix(session, principal)
    audit, _ = _audit(session, settings, as_of, policy)
    return service.audit_to_dict(audit)


@router.get("/matrix.xlsx", summary="Matrix audit as an Excel workbook")
def matrix_xlsx(
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    as_of: AsOf = None,
    policy: PolicyQuery = None,
) -> Response:
    require_matrix(session, principal)
    audit, platforms = _audit(session, settings, as_of, policy)
    return Response(
        export.to_xlsx(audit, platforms),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{_filename(audit, "xlsx")}"'},
    )


@router.get("/matrix.csv", summary="Matrix audit as CSV (UTF-8 with BOM, one row per org)")
def matrix_csv(
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    as_of: AsOf = None,
    policy: PolicyQuery = None,
) -> Response:
    require_matrix(session, principal)
    audit, _ = _audit(session, settings, as_of, policy)
    return Response(
        export.to_csv(audit),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_filename(audit, "csv")}"'},
    )


def _run_public(run: Any) -> AuditRunPublic:
    return AuditRunPublic(
        id=run.id,
        as_of=run.as_of,
        policy=run.policy,
        created_at=run.created_at,
        created_by=run.created_by,
        note=run.note,
        summary=run.summary,
    )


@router.post("/runs", summary="Run an audit and save it", status_code=201)
def save_run(
    data: AuditRunCreate,
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
    settings: SettingsDep,
) -> AuditRunPublic:
    require_matrix(session, principal)
    audit, _ = _audit(
        session, settings, data.as_of.isoformat() if data.as_of else None, data.policy
    )
    run = service.save_run(
        session=session, audit=audit, created_by=principal.user.username, note=data.note
    )
    province = audit.result.province
    auditlog.audit(
        session,
        who,
        "matrix_audit.save",
        "audit_run",
        run.id,
        summary=f"截至{audit.result.as_of.isoformat()}的矩阵检查：覆盖率{province.coverage_pct}%，"
        f"问题{len(audit.result.findings)}项",
    )
    session.commit()
    return _run_public(run)


@router.get("/runs", summary="Saved audits, newest first")
def list_runs(principal: PrincipalDep, session: SessionDep) -> list[AuditRunPublic]:
    require_matrix(session, principal)
    return [_run_public(run) for run in service.list_runs(session=session)]


@router.get("/runs/{run_id}", summary="One saved audit, in full")
def get_run(run_id: Id, principal: PrincipalDep, session: SessionDep) -> dict[str, Any]:
    require_matrix(session, principal)
    run = service.get_run(session=session, run_id=run_id)
    return {**_run_public(run).model_dump(mode="json"), "result": run.result}


@router.get("/compare", summary="What improved and what regressed between two saved audits")
def compare_runs(
    principal: PrincipalDep,
    session: SessionDep,
    from_id: Annotated[Id, Query(alias="from", description="the older run's id")],
    to_id: Annotated[Id, Query(alias="to", description="the newer run's id")],
) -> dict[str, Any]:
    require_matrix(session, principal)
    return service.compare_runs(session=session, from_id=from_id, to_id=to_id)


# --- Spokespersons ---------------------------------------------------------------------------


@spokespersons_router.get("/{code}/spokespersons", summary="An org's spokespersons")
def list_spokespersons(
    code: str, principal: PrincipalDep, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """Current spokesperson and assistant, the filing status of the latest change, history."""
    principal.require(Action.org_read)
    org = orgs.get_by_code(session=session, code=code)
    today = utcnow().astimezone(settings.tz).date()
    policy = service.resolve_policy(None, settings)
    return people.overview(session=session, org=org, policy=policy, today=today, tz=settings.tz)


@spokespersons_router.post(
    "/{code}/spokespersons", summary="Appoint a spokesperson or assistant", status_code=201
)
def appoint_spokesperson(
    code: str,
    data: SpokespersonCreate,
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
) -> SpokespersonPublic:
    org = orgs.get_by_code(session=session, code=code)
    principal.require(Action.spokesperson_manage, org)
    person = people.appoint(session=session, org=org, data=data)
    auditlog.audit(
        session,
        who,
        "spokesperson.appoint",
        "spokesperson",
        person.id,
        org_id=org.id,
        summary=f"{org.name} {data.role.value}「{person.name}」自{data.appointed_on}起任职",
    )
    session.commit()
    return SpokespersonPublic.model_validate(person)


@spokespersons_router.patch(
    "/{code}/spokespersons/{person_id}",
    summary="Record filing, publication or the end of an appointment",
)
def update_spokesperson(
    code: str,
    person_id: Id,
    data: SpokespersonUpdate,
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
) -> SpokespersonPublic:
    org = orgs.get_by_code(session=session, code=code)
    principal.require(Action.spokesperson_manage, org)
    person = people.get(session=session, org=org, person_id=person_id)
    changed = people.update(session=session, person=person, data=data)
    if changed:
        auditlog.audit(
            session,
            who,
            "spokesperson.update",
            "spokesperson",
            person.id,
            org_id=org.id,
            summary=f"{org.name}「{person.name}」changed: " + ", ".join(changed),
        )
    session.commit()
    return SpokespersonPublic.model_validate(person)
