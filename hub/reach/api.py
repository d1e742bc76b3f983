"""REST of reach: a post's copies with their readers' counts, an org's ranking over a period."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlmodel import Session, select

from hub.config import Settings
from hub.errors import Invalid, NotFound
from hub.orgs.models import Org
from hub.posts import service as posts
from hub.reach import rules, service
from hub.sqltypes import Id, utcnow
from hub.users.rules import Action
from hub.web.deps import Principal, PrincipalDep, SessionDep, SettingsDep, WhoDep

router = APIRouter(prefix="/api/v1", tags=["reach"])

DateQuery = Annotated[
    str | None, Query(max_length=20, description="YYYY-MM-DD", examples=["2026-11-01"])
]


def parse_day(value: str | None, name: str) -> date | None:
    """``YYYY-MM-DD`` (empty: none) or a 422 an editor understands."""
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(
            "日期格式应为 2026-11-01（%(name)s=%(value)r）", field=name, name=name, value=value
        ) from None


def resolve_period(since: str | None, until: str | None, settings: Settings) -> tuple[date, date]:
    today = utcnow().astimezone(settings.tz).date()
    try:
        return rules.period(
            parse_day(since, "since"),
            parse_day(until, "until"),
            today=today,
            default_days=settings.reach_days,
        )
    except ValueError as exc:
        raise Invalid(str(exc), field="since") from None


def org_in_reach(session: Session, principal: Principal, code: str) -> Org:
    """The org by code: 404 when it is missing or outside the caller's reach, 403 without the
    right to read it."""
    org = session.exec(select(Org).where(Org.code == code[:40])).first()
    missing = NotFound("机构 %(code)r 不存在", code=code)
    if org is None:
        raise NotFound("机构 %(code)r 不存在", field="code", code=code)
    principal.reach(Action.org_read, org, missing)
    return org


@router.get("/posts/{post_id}/reach", summary="Readers' counts of every copy of a post")
def post_reach(post_id: Id, who: WhoDep, session: SessionDep) -> dict[str, Any]:
    """Per channel (platform): each copy's latest totals and the day they are for, the
    channel's totals, and the post's totals. Count keys and labels come from the connectors."""
    post = posts.get(session=session, post_id=post_id, who=who)
    assert post.id is not None
    return service.post_reach(session=session, post_id=post.id)


@router.get("/orgs/{code}/reach", summary="Ranking of an org's accounts and sub-orgs by reach")
def org_reach(
    code: str,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    since: DateQuery = None,
    until: DateQuery = None,
    by: Annotated[
        str, Query(max_length=40, description="a count key (reads, reposts...) or total")
    ] = rules.TOTAL,
) -> dict[str, Any]:
    """What the org's accounts (its whole subtree) and its direct sub-orgs gained in
    ``[since, until]`` (default: the last ``GOVHUB_REACH_DAYS`` days), highest first."""
    org = org_in_reach(session, principal, code)
    start, end = resolve_period(since, until, settings)
    return service.org_reach(session=session, org=org, since=start, until=end, by=by)
