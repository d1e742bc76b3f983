"""Operator commands for posts and deliveries: `govhub posts ...`, `govhub deliveries ...`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

posts_app = typer.Typer(help="Posts (稿件) and their deliveries.", no_args_is_help=True)
deliveries_app = typer.Typer(help="Deliveries (投递): sweep, retry, cancel.", no_args_is_help=True)


@posts_app.command("list")
def list_posts(
    status: Annotated[str | None, typer.Option(help="draft, in_review, publishing ...")] = None,
    limit: int = 50,
) -> None:
    """Newest posts with their status and delivery counts."""
    from sqlmodel import col, select

    from hub.db import session_scope
    from hub.delivery.models import Delivery
    from hub.posts.models import Post, PostStatus

    with session_scope() as session:
        query = select(Post).order_by(col(Post.id).desc()).limit(limit)
        if status:
            query = query.where(Post.status == PostStatus(status))
        for post in session.exec(query).all():
            counts: dict[str, int] = {}
            for value in session.exec(
                select(Delivery.status).where(Delivery.post_id == post.id)
            ).all():
                counts[str(value)] = counts.get(str(value), 0) + 1
            summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"
            typer.echo(f"{post.id}\t{post.status.value}\t{post.title}\t{summary}")


@posts_app.command("show")
def show(post_id: int) -> None:
    """One post and every delivery (JSON)."""
    from sqlmodel import Session

    from hub.db import get_engine
    from hub.delivery.api import deliveries_of
    from hub.posts.models import Post

    with Session(get_engine()) as session:
        post = session.get(Post, post_id)
        if post is None:
            typer.secho(f"error: post {post_id} does not exist", fg="red", err=True)
            raise typer.Exit(1)
        rows = deliveries_of(session, [post_id]).get(post_id, [])
        typer.echo(
            json.dumps(
                {
                    "id": post.id,
                    "title": post.title,
                    "status": post.status.value,
                    "approved_version": post.approved_version,
                    "deliveries": [r.model_dump(mode="json") for r in rows],
                },
                ensure_ascii=False,
                indent=2,
            )
        )


@posts_app.command("release-due")
def release_due() -> None:
    """Claim scheduled posts whose time has come (what beat does every second)."""
    from hub.db import session_scope
    from hub.delivery import service as engine
    from hub.posts import service
    from hub.sqltypes import utcnow

    with session_scope() as session:
        to_enqueue, missed = service.release_due(session=session, now=utcnow())
    engine.enqueue(to_enqueue)
    typer.echo(f"{len(to_enqueue)} deliveries enqueued, {len(missed)} posts missed")


@deliveries_app.command("sweep")
def sweep() -> None:
    """Re-enqueue deliveries whose time came or whose lease ran out (what beat does)."""
    from hub.db import session_scope
    from hub.delivery import service
    from hub.sqltypes import utcnow

    with session_scope() as session:
        work = service.sweep(session=session, now=utcnow())
    service.enqueue(work["publish"])
    service.enqueue(work["poll"], task="delivery.poll")
    typer.echo(f"{len(work['publish'])} to publish, {len(work['poll'])} to poll")


def _manual(delivery_id: int, action: str, remote_url: str = "") -> None:
    from sqlmodel import select

    from hub.db import session_scope
    from hub.delivery import service as engine
    from hub.errors import HubError
    from hub.posts.service import delivery_action
    from hub.sqltypes import utcnow
    from hub.users.models import Role, User
    from hub.users.service import actor_of
    from hub.users.who import Who

    try:
        with session_scope() as session:
            admin = session.exec(select(User).where(User.role == Role.admin)).first()
            if admin is None:
                raise HubError("请先创建管理员用户（govhub users create --role admin）")
            who = Who(admin, actor_of(session=session, user=admin), "cli")
            _, enqueue = delivery_action(
                session=session,
                who=who,
                delivery_id=delivery_id,
                action=action,
                now=utcnow(),
                remote_url=remote_url,
            )
    except HubError as exc:
        typer.secho(f"error: {exc.message}", fg="red", err=True)
        raise typer.Exit(1) from exc
    engine.enqueue(enqueue)
    typer.echo(f"delivery {delivery_id}: {action.replace('_', ' ')} done")


@deliveries_app.command("retry")
def retry(delivery_id: int) -> None:
    """Send a failed, parked or cancelled delivery again."""
    _manual(delivery_id, "retry")


@deliveries_app.command("cancel")
def cancel(delivery_id: int) -> None:
    """Cancel a delivery that has not gone out."""
    _manual(delivery_id, "cancel")


@deliveries_app.command("mark-published")
def mark_published(delivery_id: int, remote_url: str) -> None:
    """Record a copy published by other means (after checking the platform by hand)."""
    _manual(delivery_id, "mark_published", remote_url)
