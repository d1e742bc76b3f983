"""REST API of the delivery board (投递): retry, cancel or mark a delivery published by hand, every
call made for it, and a post's delivery state changes as they happen (Server-Sent Events).
Deliveries are reached through their post: the post's reach decides (hub.posts.service.get)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlmodel import Session, col, select
from sse_starlette.sse import EventSourceResponse

from hub.accounts.models import Account
from hub.db import get_engine
from hub.delivery import service as engine
from hub.delivery.models import Attempt, Delivery
from hub.errors import NotFound
from hub.posts import service
from hub.posts.models import (
    DeliveryPublic,
    Post,
)
from hub.sqltypes import Id, utcnow
from hub.users.who import Who
from hub.web.deps import SessionDep, WhoDep

router = APIRouter(prefix="/api/v1", tags=["deliveries"])


def deliveries_of(session: Session, post_ids: list[int]) -> dict[int, list[DeliveryPublic]]:
    rows = session.exec(
        select(Delivery, Account)
        .join(Account, col(Delivery.account_id) == col(Account.id))
        .where(col(Delivery.post_id).in_(post_ids))
        .order_by(col(Delivery.id))
    ).all()
    out: dict[int, list[DeliveryPublic]] = {}
    for delivery, account in rows:
        out.setdefault(delivery.post_id, []).append(
            DeliveryPublic(
                id=delivery.id,
                account_id=account.id,
                account_name=account.name,
                platform=account.platform.value,
                version=delivery.version,
                status=delivery.status.value,
                remote_id=delivery.remote_id,
                remote_url=delivery.remote_url,
                error=delivery.error,
                attempts=delivery.attempts,
                next_attempt_at=delivery.next_attempt_at,
                updated_at=delivery.updated_at,
                mode=delivery.mode or "publish",
                msg_data_id=delivery.msg_data_id,
            )
        )
    return out


class MarkPublishedBody(BaseModel):
    remote_url: str


def _delivery_action(
    delivery_id: int, action: str, who: Who, session: Session, remote_url: str = ""
) -> DeliveryPublic:
    delivery, enqueue = service.delivery_action(
        session=session,
        who=who,
        delivery_id=delivery_id,
        action=action,
        now=utcnow(),
        remote_url=remote_url,
    )
    session.commit()
    engine.enqueue(enqueue)
    return next(
        d
        for d in deliveries_of(session, [delivery.post_id])[delivery.post_id]
        if d.id == delivery_id
    )


@router.post(
    "/deliveries/{delivery_id}/retry", summary="Retry a delivery", response_model=DeliveryPublic
)
def retry(delivery_id: Id, who: WhoDep, session: SessionDep) -> DeliveryPublic:
    return _delivery_action(delivery_id, "retry", who, session)


@router.post(
    "/deliveries/{delivery_id}/cancel", summary="Cancel a delivery", response_model=DeliveryPublic
)
def cancel(delivery_id: Id, who: WhoDep, session: SessionDep) -> DeliveryPublic:
    return _delivery_action(delivery_id, "cancel", who, session)


@router.post(
    "/deliveries/{delivery_id}/mark-published",
    summary="Record a copy published by other means",
    response_model=DeliveryPublic,
)
def mark_published(
    delivery_id: Id,
    body: MarkPublishedBody,
    who: WhoDep,
    session: SessionDep,
) -> DeliveryPublic:
    return _delivery_action(delivery_id, "mark_published", who, session, body.remote_url)


class AttemptPublic(BaseModel):
    at: datetime
    action: str
    outcome: str
    http_status: int | None
    platform_code: str
    excerpt: str


@router.get(
    "/deliveries/{delivery_id}/attempts",
    summary="Every call made for a delivery",
    response_model=list[AttemptPublic],
)
def attempts(delivery_id: Id, who: WhoDep, session: SessionDep) -> list[AttemptPublic]:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound("投递 %(delivery_id)s 不存在", delivery_id=delivery_id)
    service.get(session=session, post_id=delivery.post_id, who=who)
    rows = session.exec(
        select(Attempt).where(Attempt.delivery_id == delivery_id).order_by(col(Attempt.id))
    ).all()
    return [AttemptPublic.model_validate(r, from_attributes=True) for r in rows]


def _snapshot(post_id: int) -> tuple[str, dict[str, Any]]:
    with Session(get_engine()) as session:
        post = session.get(Post, post_id)
        rows = deliveries_of(session, [post_id]).get(post_id, [])
        status = post.status.value if post else "gone"
    body = {"post_status": status, "deliveries": [r.model_dump(mode="json") for r in rows]}
    key = json.dumps([status] + [(r.id, r.status, r.updated_at.isoformat()) for r in rows])
    return key, body


@router.get(
    "/posts/{post_id}/events",
    summary="Delivery state changes as they happen (Server-Sent Events)",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(
    post_id: Id, request: Request, who: WhoDep, session: SessionDep
) -> EventSourceResponse:
    service.get(session=session, post_id=post_id, who=who)
    session.close()

    async def stream() -> AsyncIterator[dict[str, str]]:
        last = ""
        seq = 0
        while not await request.is_disconnected():
            key, body = await asyncio.to_thread(_snapshot, post_id)
            if key != last:
                last = key
                seq += 1
                yield {
                    "event": "deliveries",
                    "id": str(seq),
                    "data": json.dumps(body, ensure_ascii=False),
                }
                if body["post_status"] in ("published", "failed", "withdrawn", "missed", "gone"):
                    pending = [
                        d
                        for d in body["deliveries"]
                        if d["status"] in ("queued", "sending", "pending", "unconfirmed")
                    ]
                    if not pending:
                        yield {"event": "done", "data": body["post_status"]}
                        return
            await asyncio.sleep(0.5)

    return EventSourceResponse(stream(), ping=15)
