"""JSON API for an org's review chain (三审三校): read it, set it, remove it (admins)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from hub.auditlog.service import audit
from hub.errors import NotFound
from hub.orgs import service as orgs
from hub.posts import chains
from hub.posts.models import ReviewChainIn, ReviewChainPublic
from hub.sqltypes import utcnow
from hub.users.rules import Action
from hub.web.deps import PrincipalDep, SessionDep, WhoDep

router = APIRouter(prefix="/api/v1/orgs", tags=["review chains"])


@router.get(
    "/{code}/review-chain",
    summary="The org's review levels (one level when none is configured)",
    response_model=ReviewChainPublic,
)
def get_chain(code: str, principal: PrincipalDep, session: SessionDep) -> ReviewChainPublic:
    org = orgs.get_by_code(session=session, code=code)
    principal.reach(Action.post_read, org, NotFound("机构 %(code)s 不存在", code=code))
    return chains.to_public(session, org, chains.chain_of(session, org.id))  # type: ignore[arg-type]


@router.put(
    "/{code}/review-chain",
    summary="Set the org's review levels (1-3) and its emergency fast path",
    response_model=ReviewChainPublic,
)
def put_chain(
    code: str,
    data: ReviewChainIn,
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
) -> ReviewChainPublic:
    org = orgs.get_by_code(session=session, code=code)
    principal.reach(Action.org_manage, org, NotFound("机构 %(code)s 不存在", code=code))
    chain = chains.save(session=session, org=org, data=data, by=principal.user, now=utcnow())
    audit(
        session,
        who,
        "review_chain.set",
        "org",
        org.id,
        org_id=org.id,
        summary=" → ".join(str(lv["name"]) for lv in chain.levels)
        + f"；紧急稿件：{chain.emergency.value}",
    )
    session.commit()
    return chains.to_public(session, org, chain)


@router.delete(
    "/{code}/review-chain",
    summary="Remove the org's chain (back to one approval)",
    status_code=204,
)
def delete_chain(code: str, principal: PrincipalDep, who: WhoDep, session: SessionDep) -> Response:
    org = orgs.get_by_code(session=session, code=code)
    principal.reach(Action.org_manage, org, NotFound("机构 %(code)s 不存在", code=code))
    if chains.remove(session=session, org=org):
        audit(
            session,
            who,
            "review_chain.remove",
            "org",
            org.id,
            org_id=org.id,
            summary="恢复一级审核",
        )
        session.commit()
    return Response(status_code=204)
