"""JSON API for posts, their review workflow, deliveries and live delivery events (SSE)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlmodel import Session, col, select

from hub.delivery import service as engine
from hub.delivery.api import deliveries_of
from hub.orgs import service as orgs
from hub.orgs.models import Org
from hub.posts import chains, service
from hub.posts.models import (
    CorrectBody,
    Post,
    PostCreate,
    PostPublic,
    PostStatus,
    PostUpdate,
    ReasonBody,
)
from hub.proofread.rules import Severity
from hub.sqltypes import MAX_INT, Id, utcnow
from hub.users.models import User
from hub.users.rules import Action, scope_path
from hub.web.deps import PrincipalDep, SessionDep, WhoDep

router = APIRouter(prefix="/api/v1", tags=["posts"])


def to_public(
    session: Session, post: Post, *, with_deliveries: bool = True, with_review: bool = True
) -> PostPublic:
    version = service.version_of(session, post)
    org = orgs.get(session=session, org_id=post.org_id)
    author = session.get(User, post.author_id)
    cosign = [orgs.get(session=session, org_id=i).code for i in post.cosign_org_ids]
    return PostPublic(
        id=post.id,
        org_code=org.code,
        author=author.username if author else "",
        title=version.title,
        body=version.body,
        summary=version.summary,
        urgency=post.urgency,
        status=post.status,
        version=post.current_version,
        approved_version=post.approved_version,
        content_hash=version.content_hash,
        scheduled_at=post.scheduled_at,
        target_account_ids=post.target_account_ids,
        target_groups=post.target_groups,
        cosign_org_codes=cosign,
        wechat_modes=post.wechat_modes,
        wechat_comments=post.wechat_comments,
        reason=post.reason,
        link=version.link,
        created_at=post.created_at,
        updated_at=post.updated_at,
        event_at=post.event_at,
        review=chains.describe(session, post) if with_review else None,
        deliveries=deliveries_of(session, [post.id]).get(post.id, []) if with_deliveries else [],  # type: ignore[arg-type,list-item]
    )


@router.post("/posts", summary="Draft a post", status_code=201, response_model=PostPublic)
def create_post(data: PostCreate, who: WhoDep, session: SessionDep) -> PostPublic:
    post = service.create(session=session, who=who, data=data, now=utcnow())
    session.commit()
    return to_public(session, post)


@router.get("/posts", summary="Posts in my scope", response_model=list[PostPublic])
def list_posts(
    principal: PrincipalDep,
    session: SessionDep,
    status: PostStatus | None = None,
    org: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> list[PostPublic]:
    principal.require(Action.post_read)
    query = (
        select(Post)
        .join(Org, col(Post.org_id) == col(Org.id))
        .where(col(Org.path).startswith(scope_path(principal.actor, Action.post_read)))
    )
    if status is not None:
        query = query.where(Post.status == status)
    if org:
        query = query.where(Org.code == org)
    posts = session.exec(query.order_by(col(Post.id).desc()).offset(offset).limit(limit)).all()
    return [to_public(session, p, with_deliveries=False, with_review=False) for p in posts]


@router.get("/posts/{post_id}", summary="One post with its deliveries", response_model=PostPublic)
def get_post(post_id: Id, who: WhoDep, session: SessionDep) -> PostPublic:
    post = service.get(session=session, post_id=post_id, who=who)
    return to_public(session, post)


@router.patch("/posts/{post_id}", summary="Edit a post (a new version)", response_model=PostPublic)
def update_post(post_id: Id, data: PostUpdate, who: WhoDep, session: SessionDep) -> PostPublic:
    post = service.get(session=session, post_id=post_id, who=who)
    service.update_post(session=session, who=who, post=post, data=data, now=utcnow())
    session.commit()
    return to_public(session, post)


class ProblemPublic(BaseModel):
    code: str
    message: str
    field: str
    blocking: bool
    # proofreading hits (code ``proofread.<category>``) also say what and where
    category: str = ""
    severity: str = ""
    text: str = ""
    start: int | None = None
    end: int | None = None
    suggestion: str = ""


class ChannelPreviewPublic(BaseModel):
    platform: str
    text: str
    title: str
    html: str
    digest: str
    link: str
    # the pictures the channel sends with this rendition (public URLs), e.g. a status's one picture
    images: list[str] = []
    # the cover the channel sends (a post's first image, else the org's default cover), if any
    cover: str = ""
    problems: list[ProblemPublic]


@router.get(
    "/posts/{post_id}/preview",
    summary="Every channel's rendition and its problems",
    response_model=list[ChannelPreviewPublic],
)
def preview(post_id: Id, who: WhoDep, session: SessionDep) -> list[ChannelPreviewPublic]:
    post = service.get(session=session, post_id=post_id, who=who)
    return [
        ChannelPreviewPublic(
            platform=p.platform,
            text=p.rendition.text,
            title=p.rendition.title,
            html=p.rendition.html,
            digest=p.rendition.digest,
            link=p.rendition.link,
            images=[i.url for i in p.rendition.images],
            cover=p.rendition.cover.url if p.rendition.cover is not None else "",
            problems=[
                ProblemPublic(code=x.code, message=x.message, field=x.field, blocking=x.blocking)
                for x in p.problems
            ]
            + [
                ProblemPublic(
                    code=f"proofread.{h.category.value}",
                    message=h.describe(),
                    field=h.field,
                    blocking=h.severity is Severity.block,
                    category=h.category.value,
                    severity=h.severity.value,
                    text=h.text,
                    start=h.start,
                    end=h.end,
                    suggestion=h.suggestion,
                )
                for h in p.hits
            ],
        )
        for p in service.preview(session=session, post=post)
    ]


@router.post("/posts/{post_id}/submit", summary="Submit for review", response_model=PostPublic)
def submit(post_id: Id, who: WhoDep, session: SessionDep) -> PostPublic:
    post = service.get(session=session, post_id=post_id, who=who)
    service.submit(session=session, who=who, post=post, now=utcnow())
    session.commit()
    return to_public(session, post)


class CommentBody(BaseModel):
    comment: str = ""


class AcknowledgeItem(BaseModel):
    text: str = PydanticField(min_length=1, max_length=200)
    reason: str = PydanticField(default="", max_length=1000)


class ApproveBody(BaseModel):
    comment: str = ""
    # proofreading warnings let through: each hit's text with the reviewer's reason
    acknowledge: list[AcknowledgeItem] = PydanticField(default_factory=list, max_length=200)


@router.post(
    "/posts/{post_id}/approve", summary="Approve the current version", response_model=PostPublic
)
def approve(
    post_id: Id,
    who: WhoDep,
    session: SessionDep,
    body: ApproveBody | None = None,
) -> PostPublic:
    post = service.get(session=session, post_id=post_id, who=who)
    _, to_enqueue = service.approve(
        session=session,
        who=who,
        post=post,
        now=utcnow(),
        comment=body.comment if body else "",
        acknowledge={a.text: a.reason for a in body.acknowledge} if body else {},
    )
    session.commit()
    engine.enqueue(to_enqueue)
    return to_public(session, post)


@router.post("/posts/{post_id}/reject", summary="Reject with a reason", response_model=PostPublic)
def reject(post_id: Id, body: ReasonBody, who: WhoDep, session: SessionDep) -> PostPublic:
    post = service.get(session=session, post_id=post_id, who=who)
    service.reject(session=session, who=who, post=post, reason=body.reason, now=utcnow())
    session.commit()
    return to_public(session, post)


@router.post(
    "/posts/{post_id}/cosign", summary="Co-sign (会签) as a named org", response_model=PostPublic
)
def cosign(
    post_id: Id,
    who: WhoDep,
    session: SessionDep,
    body: CommentBody | None = None,
) -> PostPublic:
    post = service.get(session=session, post_id=post_id, who=who)  # 404 unless in reach or named
    service.cosign(
        session=session, who=who, post=post, now=utcnow(), comment=body.comment if body else ""
    )
    session.commit()
    return to_public(session, post)


@router.post(
    "/posts/{post_id}/withdraw", summary="Withdraw every published copy", response_model=PostPublic
)
def withdraw(post_id: Id, body: ReasonBody, who: WhoDep, session: SessionDep) -> PostPublic:
    post = service.get(session=session, post_id=post_id, who=who)
    ids = service.withdraw(session=session, who=who, post=post, reason=body.reason, now=utcnow())
    session.commit()
    engine.enqueue(ids, task="delivery.withdraw")
    return to_public(session, post)


@router.post(
    "/posts/{post_id}/correct",
    summary="Correct with a visible note (reviewed again)",
    response_model=PostPublic,
)
def correct(post_id: Id, body: CorrectBody, who: WhoDep, session: SessionDep) -> PostPublic:
    post = service.get(session=session, post_id=post_id, who=who)
    service.correct(
        session=session,
        who=who,
        post=post,
        note=body.note,
        title=body.title,
        body=body.body,
        summary=body.summary,
        now=utcnow(),
    )
    session.commit()
    return to_public(session, post)
