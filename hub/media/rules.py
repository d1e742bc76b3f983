"""Uploaded images: what is accepted, judged by the bytes (Pillow), never by the file name."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

MAX_BYTES = 10 * 1024 * 1024
FORMATS = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "GIF": ("gif", "image/gif")}
CONTENT_TYPES = {ext: ctype for ext, ctype in FORMATS.values()}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    status_code: int = 200
    message: str = ""
    extension: str = ""
    content_type: str = ""


def judge(data: bytes, *, max_bytes: int = MAX_BYTES) -> Verdict:
    """Accept JPEG, PNG or GIF images up to ``max_bytes``; say why anything else is refused."""
    if len(data) > max_bytes:
        return Verdict(
            False,
            413,
            f"图片超过 {max_bytes // (1024 * 1024)} MB 上限（the image is larger than "
            f"{max_bytes // (1024 * 1024)} MB）",
        )
    if not data:
        return Verdict(False, 422, "文件为空（the file is empty）")
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format or ""
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        kind = ""
    if kind not in FORMATS:
        return Verdict(
            False,
            422,
            "只接受 JPEG、PNG、GIF 图片（only JPEG, PNG and GIF images are accepted）",
        )
    extension, content_type = FORMATS[kind]
    return Verdict(True, 200, "", extension, content_type)
