"""JSON API for compliance clocks, the working-day calendar and recurring obligations.

Editors see and manage the clocks of their org subtree, supervisors read the whole matrix;
the calendar is changed by the administrator of the whole matrix (a root org's admin).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlmodel import Session, col, select

from hub.clocks import calendar, export, obligations, service
from hub.clocks.models import (
    CalendarOverrideCreate,
    CalendarOverridePublic,
    CalendarYearCreate,
    CalendarYearPublic,
    ClockCancel,
    ClockCreate,
    ClockPublic,
    ClockStop,
    ObligationPublic,
    ObligationRecordCreate,
    ObligationRecordPublic,
)
from hub.clocks.rules import ClockStatus, ObligationState
from hub.config import Settings
from hub.errors import NotFound
from hub.orgs import service as orgs
from hub.orgs.models import Org
from hub.sqltypes import Id, utcnow
from hub.users.rules import Action, scope_path
from hub.users.who import Who
from hub.web.deps import Principal, PrincipalDep, SessionDep, SettingsDep, WhoDep

router = APIRouter(prefix="/api/v1", tags=["clocks"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _one(session: Session, clock_id: int, settings: Settings) -> ClockPublic:
    clock = service.get_clock(session=session, clock_id=clock_id)
    org = orgs.get(session=session, org_id=clock.org_id)
    return service.to_public(
        session=session,
        rows=[(clock, org)],
        now=utcnow(),
        tz=settings.tz,
        policy=service.policy_in_force(settings),
    )[0]


def _org_filter(session: Session, principal: Principal, code: str | None) -> str | None:
    """The subtree path of the ``org`` query parameter (403 when outside the caller's scope)."""
    if code is None:
        return None
    org = orgs.get_by_code(session=session, code=code)
    principal.require(Action.clock_read, org)
    return org.path


def _require_calendar_admin(session: Session, principal: Principal) -> None:
    """The calendar is the whole matrix's: only an admin whose scope covers every root org."""
    roots = session.exec(select(Org).where(col(Org.parent_id).is_(None))).all()
    principal.require(Action.org_manage)
    for root in roots:
        principal.require(Action.org_manage, root)


@router.post(
    "/clocks",
    summary="Open a compliance clock",
    status_code=201,
    response_model=ClockPublic,
)
def create_clock(
    data: ClockCreate,
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
    settings: SettingsDep,
) -> ClockPublic:
    org = orgs.resolve_code(session=session, code=data.org_code)
    principal.require(Action.clock_manage, org)
    clock = service.create_clock(
        session=session,
        kind=data.kind,
        org=org,
        subject=data.subject,
        started_at=data.started_at,
        who=who,
        policy=service.policy_in_force(settings),
        tz=settings.tz,
    )
    session.commit()
    return _one(session, clock.id, settings)  # type: ignore[arg-type]


@router.get(
    "/clocks",
    summary="List clocks in my scope (soonest deadline first)",
    response_model=list[ClockPublic],
)
def list_clocks(
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    status: ClockStatus | None = None,
    org: Annotated[str | None, Query(description="org code: that org and its subtree")] = None,
    kind: str | None = None,
    post_id: Annotated[Id | None, Query(description="the clocks this post stops")] = None,
) -> list[ClockPublic]:
    principal.require(Action.clock_read)
    if post_id is not None:  # the post's reach first: 404 for a post the caller cannot see
        from hub.posts import service as posts

        posts.get(
            session=session,
            post_id=post_id,
            who=Who(principal.user, principal.actor),
        )
    now = utcnow()
    rows = service.list_clocks(
        session=session,
        now=now,
        scope_path=scope_path(principal.actor, Action.clock_read),
        org_path=_org_filter(session, principal, org),
        status=status,
        kind=kind,
        post_id=post_id,
    )
    return service.to_public(
        session=session,
        rows=rows,
        now=now,
        tz=settings.tz,
        policy=service.policy_in_force(settings),
    )


@router.get(
    "/clocks/summary.xlsx",
    summary="Monthly compliance summary (Excel)",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}, "description": "汇总 and 明细 sheets"}},
)
def summary_xlsx(
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    month: Annotated[str, Query(description="YYYY-MM (clocks started that month, local time)")],
    org: Annotated[str | None, Query(description="org code: that org and its subtree")] = None,
) -> Response:
    principal.require(Action.clock_read)
    org_path = _org_filter(session, principal, org)
    scope = scope_path(principal.actor, Action.clock_read)
    if org_path and org_path.startswith(scope):
        scope = org_path
    content = export.summary_xlsx(
        session=session,
        month=month,
        scope_path=scope,
        now=utcnow(),
        tz=settings.tz,
        policy=service.policy_in_force(settings),
    )
    return Response(
        content,
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="clocks-{month}.xlsx"'},
    )


@router.get("/clocks/{clock_id}", summary="One clock", response_model=ClockPublic)
def get_clock(
    clock_id: Id, principal: PrincipalDep, session: SessionDep, settings: SettingsDep
) -> ClockPublic:
    clock = service.get_clock(session=session, clock_id=clock_id)
    principal.reach(
        Action.clock_read,
        orgs.get(session=session, org_id=clock.org_id),
        NotFound("时限 %(clock_id)s 不存在", clock_id=clock_id),
    )
    return _one(session, clock_id, settings)


@router.post(
    "/clocks/{clock_id}/stop",
    summary="Stop a clock: the response was published (met or met late)",
    response_model=ClockPublic,
)
def stop_clock(
    clock_id: Id,
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
    settings: SettingsDep,
    data: ClockStop | None = None,
) -> ClockPublic:
    clock = service.get_clock(session=session, clock_id=clock_id)
    principal.reach(
        Action.clock_manage,
        orgs.get(session=session, org_id=clock.org_id),
        NotFound("时限 %(clock_id)s 不存在", clock_id=clock_id),
    )
    now = utcnow()
    service.stop_clock(
        session=session,
        clock=clock,
        stopped_at=(data.stopped_at if data and data.stopped_at else now),
        now=now,
        who=who,
    )
    session.commit()
    return _one(session, clock_id, settings)


@router.post(
    "/clocks/{clock_id}/cancel",
    summary="Cancel a clock opened by mistake (with a reason)",
    response_model=ClockPublic,
)
def cancel_clock(
    clock_id: Id,
    data: ClockCancel,
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
    settings: SettingsDep,
) -> ClockPublic:
    clock = service.get_clock(session=session, clock_id=clock_id)
    principal.reach(
        Action.clock_manage,
        orgs.get(session=session, org_id=clock.org_id),
        NotFound("时限 %(clock_id)s 不存在", clock_id=clock_id),
    )
    service.cancel_clock(
        session=session,
        clock=clock,
        reason=data.reason,
        now=utcnow(),
        who=who,
    )
    session.commit()
    return _one(session, clock_id, settings)


# -- the working-day calendar -------------------------------------------------------------------


@router.get(
    "/calendar-overrides",
    summary="The administrator's working-day overrides",
    response_model=list[CalendarOverridePublic],
)
def list_overrides(principal: PrincipalDep, session: SessionDep) -> list[CalendarOverridePublic]:
    principal.require(Action.clock_read)
    return [
        CalendarOverridePublic(date=o.day, is_workday=o.is_workday, note=o.note)
        for o in calendar.list_overrides(session=session)
    ]


@router.post(
    "/calendar-overrides",
    summary="Declare a day a working day or a day off (re-dates running clocks)",
    status_code=201,
    response_model=CalendarOverridePublic,
)
def set_override(
    data: CalendarOverrideCreate,
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
    settings: SettingsDep,
) -> CalendarOverridePublic:
    _require_calendar_admin(session, principal)
    override, redated = calendar.set_override(
        session=session,
        day=data.date,
        is_workday=data.is_workday,
        note=data.note,
        who=who,
        policy=service.policy_in_force(settings),
        tz=settings.tz,
    )
    session.commit()
    return CalendarOverridePublic(
        date=override.day,
        is_workday=override.is_workday,
        note=override.note,
        clocks_redated=redated,
    )


@router.delete(
    "/calendar-overrides/{day}",
    summary="Remove an override (the official calendar applies again; re-dates running clocks)",
    response_model=CalendarOverridePublic,
)
def delete_override(
    day: date,
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
    settings: SettingsDep,
) -> CalendarOverridePublic:
    _require_calendar_admin(session, principal)
    removed, redated = calendar.delete_override(
        session=session,
        day=day,
        who=who,
        policy=service.policy_in_force(settings),
        tz=settings.tz,
    )
    session.commit()
    return CalendarOverridePublic(
        date=removed.day, is_workday=removed.is_workday, note=removed.note, clocks_redated=redated
    )


@router.get(
    "/calendar-years",
    summary="Years whose holiday arrangement the administrator entered in full",
    response_model=list[CalendarYearPublic],
)
def list_years(principal: PrincipalDep, session: SessionDep) -> list[CalendarYearPublic]:
    principal.require(Action.clock_read)
    return [
        CalendarYearPublic(year=y.year, note=y.note) for y in calendar.list_years(session=session)
    ]


@router.post(
    "/calendar-years",
    summary="Confirm a year's arrangement (its deadlines stop being provisional)",
    status_code=201,
    response_model=CalendarYearPublic,
)
def confirm_year(
    data: CalendarYearCreate,
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
    settings: SettingsDep,
) -> CalendarYearPublic:
    _require_calendar_admin(session, principal)
    entry, redated = calendar.confirm_year(
        session=session,
        year=data.year,
        note=data.note,
        who=who,
        policy=service.policy_in_force(settings),
        tz=settings.tz,
    )
    session.commit()
    return CalendarYearPublic(year=entry.year, note=entry.note, clocks_redated=redated)


# -- recurring obligations ----------------------------------------------------------------------


@router.get(
    "/obligations",
    summary="Recurring obligations (press conferences, releases, reports) in my scope",
    response_model=list[ObligationPublic],
)
def list_obligations(
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    status: ObligationState | None = None,
    org: Annotated[str | None, Query(description="org code: that org and its subtree")] = None,
    kind: str | None = None,
    period: Annotated[str | None, Query(description="2026-10, 2026-Q4 or 2026")] = None,
) -> list[ObligationPublic]:
    principal.require(Action.clock_read)
    rows = obligations.list_obligations(
        session=session,
        scope_path=scope_path(principal.actor, Action.clock_read),
        org_path=_org_filter(session, principal, org),
        status=status,
        kind=kind,
        period=period,
    )
    policy = service.policy_in_force(settings)
    return [obligations.obligation_public(o, owner, policy, settings.tz) for o, owner in rows]


@router.post(
    "/obligation-records",
    summary="Record a press conference, a spokesperson's release or a self-inspection report",
    status_code=201,
    response_model=ObligationRecordPublic,
)
def add_obligation_record(
    data: ObligationRecordCreate,
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
    settings: SettingsDep,
) -> ObligationRecordPublic:
    org = orgs.resolve_code(session=session, code=data.org_code)
    principal.require(Action.clock_manage, org)
    entry = obligations.add_obligation_record(
        session=session,
        kind=data.kind,
        org=org,
        held_on=data.held_on,
        title=data.title,
        url=data.url,
        who=who,
        today=utcnow().astimezone(settings.tz).date(),
        policy=service.policy_in_force(settings),
        tz=settings.tz,
    )
    session.commit()
    return obligations.record_public(entry, org)
