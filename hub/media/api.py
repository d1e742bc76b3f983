"""Uploading images (POST /api/v1/media) and serving them (GET /media/{path})."""

from __future__ import annotations

import secrets
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response

from hub.auditlog.service import record
from hub.errors import Forbidden, Invalid, NotFound
from hub.media import rules, service
from hub.media.models import MediaItem, MediaPage, MediaPublic, MediaUpdate
from hub.orgs import service as orgs
from hub.users.rules import Action, scope_path
from hub.web.deps import Principal, PrincipalDep, SessionDep, SettingsDep

router = APIRouter(tags=["media"])

# the request may carry multipart framing around a 10 MB image (hub/web/app.py BodySizeLimit)
UPLOAD_BODY_MAX = rules.MAX_BYTES + 256 * 1024


def _may_use(principal: Principal) -> bool:
    return principal.allows(Action.post_write) or principal.allows(Action.live_run)


@router.post(
    "/api/v1/media",
    summary="Upload an image (JPEG, PNG or GIF, at most 10 MB and GOVHUB_MEDIA_MAX_PIXELS)",
    status_code=201,
    response_model=MediaPublic,
    responses={
        413: {"description": "too large"},
        422: {"description": "not an image we take, too many pixels, or truncated"},
    },
)
async def upload(
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    file: UploadFile = File(...),
    alt: Annotated[str, Form(max_length=rules.ALT_MAX)] = "",
) -> Response:
    if not _may_use(principal):
        raise Forbidden("您的角色（%(role)s）不能上传图片", role=principal.user.role.value)
    data = await file.read(rules.MAX_BYTES + 1)
    verdict = rules.judge(data, max_pixels=settings.media_max_pixels)
    if not verdict.ok:
        return JSONResponse({"detail": verdict.message}, status_code=verdict.status_code)
    name = f"{secrets.token_hex(16)}.{verdict.extension}"
    folder = Path(settings.media_dir) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    path = f"uploads/{name}"
    org = orgs.get(session=session, org_id=principal.user.org_id)
    item = service.add(
        session=session,
        org=org,
        user=principal.user,
        path=path,
        data=data,
        verdict=verdict,
        original_name=file.filename or "",
        alt=alt,
    )
    record(
        session=session,
        actor_id=principal.user.id,
        actor_name=principal.user.username,
        action="media.upload",
        object_type="media",
        object_id=path,
        org_id=principal.user.org_id,
        summary=f"{verdict.content_type}, {len(data)} bytes",
    )
    session.commit()
    body = service.public(item, org.code, principal.user.display_name or principal.user.username)
    return JSONResponse(body.model_dump(mode="json"), status_code=201)


@router.get(
    "/api/v1/media",
    summary="The media library: images of the caller's org subtree, newest first",
    response_model=MediaPage,
)
def list_media(
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    q: Annotated[str, Query(max_length=100, description="part of the file name or alt text")] = "",
    since: Annotated[date | None, Query(description="uploaded on or after (YYYY-MM-DD)")] = None,
    until: Annotated[date | None, Query(description="uploaded on or before (YYYY-MM-DD)")] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 40,
) -> MediaPage:
    principal.require(Action.post_read)
    if since and until and since > until:
        raise Invalid("起始日期晚于结束日期（since is after until）", field="since")
    found = service.search(
        session=session,
        under_path=scope_path(principal.actor, Action.post_read),
        name=q,
        since=since,
        until=until,
        tz=settings.timezone,
        page=page,
        per_page=per_page,
    )
    items = [service.public(item, code, who) for item, code, who in found.items]
    return MediaPage(items=items, total=found.total, page=page, per_page=per_page)


@router.patch(
    "/api/v1/media/{media_id}",
    summary="Change an image's alt text (read out on public pages)",
    response_model=MediaPublic,
)
def update_media(
    media_id: int, data: MediaUpdate, principal: PrincipalDep, session: SessionDep
) -> MediaPublic:
    item = session.get(MediaItem, media_id)
    missing = NotFound("图片 %(media_id)s 不存在", media_id=media_id)
    if item is None:
        raise missing
    org = orgs.get(session=session, org_id=item.org_id)
    principal.reach(Action.post_write, org, missing)
    before = item.alt
    item.alt = rules.clean_alt(data.alt)
    session.add(item)
    record(
        session=session,
        actor_id=principal.user.id,
        actor_name=principal.user.username,
        action="media.alt",
        object_type="media",
        object_id=item.path,
        org_id=org.id,
        summary=f"替代文本：{before or '（无）'} → {item.alt or '（无）'}",
    )
    session.commit()
    session.refresh(item)
    return service.public(item, org.code)


@router.get("/media/{path:path}", include_in_schema=False)
def serve_media(path: str, settings: SettingsDep) -> Response:
    """Uploaded images, public (release-hall pages show them); nothing outside the media dir."""
    root = Path(settings.media_dir).resolve()
    target = (root / path).resolve()
    extension = target.suffix.lower().lstrip(".")
    if extension == "jpeg":
        extension = "jpg"
    if (
        not target.is_relative_to(root)
        or not target.is_file()
        or extension not in rules.CONTENT_TYPES
    ):
        raise NotFound("图片不存在")
    return FileResponse(
        target,
        media_type=rules.CONTENT_TYPES[extension],
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "public, max-age=86400",
        },
    )
