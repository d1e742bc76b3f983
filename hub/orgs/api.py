"""JSON API for organisations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from hub.auditlog.service import record
from hub.errors import Invalid, NotFound
from hub.media.models import MediaItem
from hub.orgs import service
from hub.orgs.models import Org, OrgLevel, OrgPublic
from hub.users.rules import Action, sees
from hub.web.deps import PrincipalDep, SessionDep

router = APIRouter(prefix="/api/v1/orgs", tags=["orgs"])


@router.get("", summary="List organisations", response_model=list[OrgPublic])
def list_orgs(
    principal: PrincipalDep,
    session: SessionDep,
    level: OrgLevel | None = None,
    parent: Annotated[str | None, Query(description="direct children of this code")] = None,
    under: Annotated[str | None, Query(description="the whole subtree below this code")] = None,
    livelihood: bool | None = None,
    q: Annotated[str | None, Query(description="name contains / code starts with")] = None,
) -> list[OrgPublic]:
    principal.require(Action.org_read)
    orgs = service.list_orgs(
        session=session,
        level=level,
        parent_code=parent,
        under_code=under,
        livelihood=livelihood,
        q=q,
    )
    return service.to_public(session=session, orgs=orgs)


@router.get("/{code}", summary="One organisation by its code", response_model=OrgPublic)
def get_org(code: str, principal: PrincipalDep, session: SessionDep) -> OrgPublic:
    principal.require(Action.org_read)
    org = service.get_by_code(session=session, code=code)
    return service.to_public(session=session, orgs=[org])[0]


class DefaultCover(BaseModel):
    media_id: int | None = None  # an image of the media library; None: no default cover


@router.put(
    "/{code}/default-cover",
    summary="Set the image a copy takes as its cover when its platform needs one and the post "
    "has none (admins)",
    response_model=OrgPublic,
)
def set_default_cover(
    code: str, data: DefaultCover, principal: PrincipalDep, session: SessionDep
) -> OrgPublic:
    org = service.get_by_code(session=session, code=code)
    principal.reach(Action.org_manage, org, NotFound("机构 %(code)s 不存在", code=code))
    path = ""
    if data.media_id is not None:
        item = session.get(MediaItem, data.media_id)
        owner = session.get(Org, item.org_id) if item is not None else None
        if item is None or owner is None or not sees(principal.actor, owner.path):
            raise Invalid(
                "媒体库中没有这张图片（no such image in the media library）", field="media_id"
            )
        path = item.path
    before = org.default_cover
    org.default_cover = path
    session.add(org)
    record(
        session=session,
        actor_id=principal.user.id,
        actor_name=principal.user.username,
        action="org.default_cover",
        object_type="org",
        object_id=org.code,
        org_id=org.id,
        summary=f"默认封面：{before or '（无）'} → {path or '（无）'}",
    )
    session.commit()
    session.refresh(org)
    return service.to_public(session=session, orgs=[org])[0]
