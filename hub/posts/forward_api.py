"""JSON API for matrix forwarding (矩阵联动)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from hub.delivery import service as engine
from hub.posts import forwarding, service
from hub.posts.models import ForwardStatus
from hub.sqltypes import Id, utcnow
from hub.users.rules import Action, scope_path
from hub.web.deps import PrincipalDep, SessionDep, WhoDep

router = APIRouter(prefix="/api/v1", tags=["forwarding"])


class OfferBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_codes: list[str] = Field(min_length=1)
    due_at: datetime | None = None


class AcceptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_ids: list[Id] = Field(min_length=1)


class DeclineBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500)


class ForwardingPublic(BaseModel):
    offer_id: int
    post_id: int
    org_code: str
    org_name: str
    status: ForwardStatus
    due_at: datetime | None
    decided_at: datetime | None
    on_time: bool | None
    account_ids: list[int]


def _public(rows: list[forwarding.ForwardingRow]) -> list[ForwardingPublic]:
    return [ForwardingPublic(**asdict(r)) for r in rows]


@router.post(
    "/posts/{post_id}/forward",
    summary="Offer an approved post to lower-level orgs (矩阵联动)",
    response_model=list[ForwardingPublic],
)
def offer(post_id: Id, body: OfferBody, who: WhoDep, session: SessionDep) -> list[ForwardingPublic]:
    post = service.get(session=session, post_id=post_id, who=who)
    forwarding.offer(
        session=session,
        who=who,
        post=post,
        org_codes=body.org_codes,
        due_at=body.due_at,
        now=utcnow(),
    )
    session.commit()
    return _public(
        forwarding.report(session=session, post_id=post_id, scope_path="/", now=utcnow())
    )


@router.get(
    "/posts/{post_id}/forwarding",
    summary="Who forwarded the post, and whether within the deadline",
    response_model=list[ForwardingPublic],
)
def post_forwarding(
    post_id: Id, principal: PrincipalDep, who: WhoDep, session: SessionDep
) -> list[ForwardingPublic]:
    service.get(session=session, post_id=post_id, who=who)
    return _public(
        forwarding.report(
            session=session,
            post_id=post_id,
            scope_path=scope_path(principal.actor, Action.post_read),
            now=utcnow(),
        )
    )


@router.get(
    "/forward-offers",
    summary="Forwarding offers to my orgs",
    response_model=list[ForwardingPublic],
)
def my_offers(
    principal: PrincipalDep, session: SessionDep, status: ForwardStatus | None = None
) -> list[ForwardingPublic]:
    principal.require(Action.post_read)
    rows = forwarding.report(
        session=session, post_id=None, scope_path=principal.actor.org_path, now=utcnow()
    )
    return _public([r for r in rows if status is None or r.status is status])


@router.post(
    "/forward-offers/{offer_id}/accept",
    summary="Accept: forward to my accounts",
    response_model=ForwardingPublic,
)
def accept(offer_id: Id, body: AcceptBody, who: WhoDep, session: SessionDep) -> ForwardingPublic:
    row, to_enqueue = forwarding.accept(
        session=session,
        who=who,
        offer_id=offer_id,
        account_ids=body.account_ids,
        now=utcnow(),
    )
    session.commit()
    engine.enqueue(to_enqueue)
    rows = forwarding.report(session=session, post_id=row.post_id, scope_path="/", now=utcnow())
    return _public([r for r in rows if r.offer_id == offer_id])[0]


@router.post(
    "/forward-offers/{offer_id}/decline",
    summary="Decline a forwarding offer",
    response_model=ForwardingPublic,
)
def decline(offer_id: Id, body: DeclineBody, who: WhoDep, session: SessionDep) -> ForwardingPublic:
    row = forwarding.decline(
        session=session,
        who=who,
        offer_id=offer_id,
        reason=body.reason,
        now=utcnow(),
    )
    session.commit()
    rows = forwarding.report(session=session, post_id=row.post_id, scope_path="/", now=utcnow())
    return _public([r for r in rows if r.offer_id == offer_id])[0]
