"""REST of notifications: one's own list, marking read, one's choices and robot. A user reaches
only their own notifications: another user's id answers 404, as if missing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlmodel import select

from hub.errors import NotFound
from hub.notify import rules, service
from hub.notify.models import NotificationPublic, PreferenceIn, WebhookIn, WebhookPublic
from hub.orgs.models import Org
from hub.sqltypes import Id, utcnow
from hub.users.rules import Action
from hub.web.deps import PrincipalDep, SessionDep, WhoDep

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


class Marked(BaseModel):
    marked: int
    unread: int


def _public(row: Any) -> NotificationPublic:
    return NotificationPublic(
        id=row.id,
        kind=row.kind,
        kind_label=rules.KIND_LABELS.get(rules.Kind(row.kind), row.kind),
        title=row.title,
        body=row.body,
        link=row.link,
        created_at=row.created_at,
        read_at=row.read_at,
    )


@router.get("", response_model=list[NotificationPublic])
def list_mine(
    session: SessionDep,
    principal: PrincipalDep,
    unread: Annotated[bool, Query()] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[NotificationPublic]:
    rows = service.listing(session, principal.user, unread_only=unread, limit=limit)
    return [_public(r) for r in rows]


@router.get("/unread-count")
def unread_count(session: SessionDep, principal: PrincipalDep) -> dict[str, int]:
    return {"unread": service.unread_count(session, principal.user.id or 0)}


@router.post("/{notification_id}/read", response_model=Marked)
def mark_one(notification_id: Id, session: SessionDep, principal: PrincipalDep) -> Marked:
    if service.own(session, principal.user, notification_id) is None:
        raise NotFound("通知 %(notification_id)s 不存在", notification_id=notification_id)
    marked = service.mark_read(session, principal.user, notification_id, utcnow())
    session.commit()
    return Marked(marked=marked, unread=service.unread_count(session, principal.user.id or 0))


@router.post("/read-all", response_model=Marked)
def mark_all(session: SessionDep, principal: PrincipalDep) -> Marked:
    marked = service.mark_read(session, principal.user, None, utcnow())
    session.commit()
    return Marked(marked=marked, unread=0)


@router.get("/preferences")
def get_preferences(session: SessionDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    return service.preferences(session, principal.user)


@router.put("/preferences")
def put_preferences(
    data: list[PreferenceIn], session: SessionDep, principal: PrincipalDep
) -> list[dict[str, Any]]:
    for choice in data[:100]:
        service.set_choice(session, principal.user, choice.kind, choice.channel, choice.enabled)
    session.commit()
    return service.preferences(session, principal.user)


@router.put("/robot", response_model=WebhookPublic)
def put_robot(data: WebhookIn, session: SessionDep, principal: PrincipalDep) -> WebhookPublic:
    """One's own group robot (an empty URL removes it)."""
    row = service.save_robot(
        session, flavor=data.flavor, url=data.url, secret=data.secret, user_id=principal.user.id
    )
    session.commit()
    return WebhookPublic(flavor=row.flavor, url=row.url, signed=bool(row.secret_encrypted))


def _org_in_reach(session: SessionDep, principal: PrincipalDep, code: str) -> Org:
    org = session.exec(select(Org).where(Org.code == code[:40])).first()
    missing = NotFound("机构 %(code)r 不存在", code=code)
    if org is None:
        raise NotFound("机构 %(code)r 不存在", field="code", code=code)
    principal.reach(Action.org_manage, org, missing)
    return org


@router.put("/org-robot/{code}", response_model=WebhookPublic)
def put_org_robot(
    code: str, data: WebhookIn, session: SessionDep, principal: PrincipalDep, who: WhoDep
) -> WebhookPublic:
    """An org's group robot, for its users without one of their own (admins of the org;
    audited as ``org.robot``)."""
    org = _org_in_reach(session, principal, code)
    row = service.set_org_robot(
        session, org=org, flavor=data.flavor, url=data.url, secret=data.secret, who=who
    )
    session.commit()
    return WebhookPublic(flavor=row.flavor, url=row.url, signed=bool(row.secret_encrypted))


class RobotTest(BaseModel):
    ok: bool
    detail: str


@router.post("/org-robot/{code}/test", response_model=RobotTest)
def test_org_robot(
    code: str, session: SessionDep, principal: PrincipalDep, who: WhoDep
) -> RobotTest:
    """Send a test message to the org's robot now (audited as ``org.robot_test``)."""
    org = _org_in_reach(session, principal, code)
    why = service.try_org_robot(session, org=org, who=who)
    session.commit()
    return RobotTest(ok=not why, detail=why or "测试消息已送达")
