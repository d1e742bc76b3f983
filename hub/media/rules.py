"""Uploaded images: what is accepted, judged by the bytes (Pillow), never by the file name."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageSequence, UnidentifiedImageError

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # GOVHUB_MEDIA_MAX_PIXELS: width x height, summed over every frame
FORMATS = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "GIF": ("gif", "image/gif")}
CONTENT_TYPES = {ext: ctype for ext, ctype in FORMATS.values()}
ALT_MAX = 200  # alt text: a sentence, not a caption


@dataclass(frozen=True)
class Verdict:
    ok: bool
    status_code: int = 200
    message: str = ""
    extension: str = ""
    content_type: str = ""
    width: int = 0
    height: int = 0


def judge(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> Verdict:
    """Accept JPEG, PNG or GIF images up to ``max_bytes`` and ``max_pixels``; say why not.

    The declared size is read from the header (Pillow opens lazily) and checked before a single
    pixel is decoded, so a 48 KB PNG declaring 20000 x 20000 costs nothing; then the image is
    decoded (one frame at a time, at most ``max_pixels`` in all) so a truncated file is refused
    here rather than when a worker sends it.
    """
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image:
            kind = image.format or ""
            width, height = int(image.width), int(image.height)
            if kind not in FORMATS:
                return _not_an_image()
            pixels = declared_pixels(image)
            if pixels > max_pixels:
                return _too_many_pixels(image.width, image.height, pixels, max_pixels)
            for frame in ImageSequence.Iterator(image):
                frame.load()
    except Image.DecompressionBombError:
        # Pillow's own ceiling (MAX_IMAGE_PIXELS x 2) is above ours unless ours was raised.
        return _too_many_pixels(0, 0, 0, max_pixels)
    except (UnidentifiedImageError, SyntaxError, ValueError):
        return _not_an_image()
    except (OSError, EOFError):  # "image file is truncated", a broken chunk, a bad frame
        return Verdict(
            False,
            422,
            "图片文件不完整或已损坏，请重新导出后上传（the image is truncated or damaged）",
        )
    extension, content_type = FORMATS[kind]
    return Verdict(True, 200, "", extension, content_type, width, height)


def declared_pixels(image: Image.Image) -> int:
    """Width x height x frames, from the header alone (no pixel is decoded)."""
    frames = int(getattr(image, "n_frames", 1) or 1)
    return int(image.width) * int(image.height) * frames


def _not_an_image() -> Verdict:
    return Verdict(
        False,
        422,
        "只接受 JPEG、PNG、GIF 图片（only JPEG, PNG and GIF images are accepted）",
    )


def _too_many_pixels(width: int, height: int, pixels: int, max_pixels: int) -> Verdict:
    limit = f"{max_pixels / 1_000_000:g}"
    size = f"（{width}×{height}，共 {pixels / 1_000_000:.1f} 百万像素）" if pixels else ""
    return Verdict(
        False,
        422,
        f"图片像素过多{size}，上限 {limit} 百万像素（所有帧合计），请缩小后再上传"
        f"（the image has more than {limit} million pixels）",
    )


def clean_alt(text: str) -> str:
    """Alt text as stored: one line, no surrounding blanks (a screen reader reads it out)."""
    return " ".join(text.split())


def search_term(text: str) -> str:
    """A name search as typed, made safe for LIKE (``%`` and ``_`` match themselves)."""
    cleaned = text.strip()
    return cleaned.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
