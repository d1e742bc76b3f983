"""JSON API for organisations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hub.orgs import service
from hub.orgs.models import OrgLevel, OrgPublic
from hub.users.rules import Action
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
