"""Uploading images (POST /api/v1/media) and serving them (GET /media/{path})."""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel

from hub.auditlog.service import record
from hub.errors import Forbidden, NotFound
from hub.media import rules
from hub.users.rules import Action
from hub.web.deps import PrincipalDep, SessionDep, SettingsDep

router = APIRouter(tags=["media"])

# the request may carry multipart framing around a 10 MB image (hub/web/app.py BodySizeLimit)
UPLOAD_BODY_MAX = rules.MAX_BYTES + 256 * 1024


class MediaPublic(BaseModel):
    path: str  # relative to GOVHUB_MEDIA_DIR: what PostCreate.images takes
    url: str  # where the hub serves it


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
) -> Response:
    if not (principal.allows(Action.post_write) or principal.allows(Action.live_run)):
        raise Forbidden(f"your role ({principal.user.role.value}) may not upload images")
    data = await file.read(rules.MAX_BYTES + 1)
    verdict = rules.judge(data, max_pixels=settings.media_max_pixels)
    if not verdict.ok:
        return JSONResponse({"detail": verdict.message}, status_code=verdict.status_code)
    name = f"{secrets.token_hex(16)}.{verdict.extension}"
    folder = Path(settings.media_dir) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    path = f"uploads/{name}"
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
    body = MediaPublic(path=path, url=f"/media/{path}")
    return JSONResponse(body.model_dump(), status_code=201)


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
        raise NotFound("no such image")
    return FileResponse(
        target,
        media_type=rules.CONTENT_TYPES[extension],
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "public, max-age=86400",
        },
    )
