"""What an editor uploading an image is told: JPEG, PNG and GIF are accepted (judged by the bytes,
never the file name); anything else, too large, too many pixels or damaged is refused in words."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from hub.media.rules import CONTENT_TYPES, judge


def image_bytes(fmt: str, size: tuple[int, int] = (8, 6), frames: int = 1) -> bytes:
    buffer = io.BytesIO()
    images = [Image.new("RGB", size, (i * 40 % 256, 0, 0)) for i in range(frames)]
    if frames > 1:
        images[0].save(buffer, fmt, save_all=True, append_images=images[1:])
    else:
        images[0].save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "extension", "content_type"),
    [("JPEG", "jpg", "image/jpeg"), ("PNG", "png", "image/png"), ("GIF", "gif", "image/gif")],
)
def test_jpeg_png_and_gif_are_accepted(fmt: str, extension: str, content_type: str) -> None:
    verdict = judge(image_bytes(fmt))
    assert verdict.ok and verdict.status_code == 200 and verdict.message == ""
    assert (verdict.extension, verdict.content_type) == (extension, content_type)
    assert CONTENT_TYPES[extension] == content_type


def test_an_animated_gif_is_accepted() -> None:
    assert judge(image_bytes("GIF", frames=3)).ok


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "WEBP"])
def test_other_image_formats_are_refused(fmt: str) -> None:
    verdict = judge(image_bytes(fmt))
    assert not verdict.ok and verdict.status_code == 422
    assert "只接受 JPEG、PNG、GIF 图片" in verdict.message


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.7 not an image", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"\x89PNG\r\n"],
)
def test_files_that_are_not_images_are_refused(data: bytes) -> None:
    verdict = judge(data)
    assert not verdict.ok and verdict.status_code == 422
    assert "只接受" in verdict.message


def test_an_empty_file_is_refused() -> None:
    verdict = judge(b"")
    assert (verdict.ok, verdict.status_code) == (False, 422)
    assert "文件为空" in verdict.message


def test_a_file_over_the_size_limit_is_refused_before_it_is_read() -> None:
    verdict = judge(b"\xff" * (2 * 1024 * 1024 + 1), max_bytes=2 * 1024 * 1024)
    assert (verdict.ok, verdict.status_code) == (False, 413)
    assert "2 MB" in verdict.message
    assert judge(image_bytes("PNG"), max_bytes=2 * 1024 * 1024).ok


def test_an_image_with_too_many_pixels_is_refused_with_its_size() -> None:
    verdict = judge(image_bytes("PNG", size=(300, 200)), max_pixels=50_000)
    assert (verdict.ok, verdict.status_code) == (False, 422)
    assert "300×200" in verdict.message and "上限 0.05 百万像素" in verdict.message
    assert judge(image_bytes("PNG", size=(300, 200)), max_pixels=60_000).ok


def test_every_frame_of_an_animation_counts_towards_the_pixel_limit() -> None:
    three_frames = image_bytes("GIF", size=(100, 100), frames=3)
    assert judge(three_frames, max_pixels=30_000).ok
    refused = judge(three_frames, max_pixels=29_999)
    assert not refused.ok and "所有帧合计" in refused.message


def test_a_truncated_image_is_refused_as_damaged() -> None:
    whole = image_bytes("JPEG", size=(64, 64))
    verdict = judge(whole[: len(whole) // 2])
    assert (verdict.ok, verdict.status_code) == (False, 422)
    assert "不完整或已损坏" in verdict.message


def test_the_file_name_plays_no_part() -> None:
    """judge sees only bytes: a PNG is a PNG whatever it was called, and text is never one."""
    assert judge(image_bytes("PNG")).extension == "png"
    assert not judge(b"hello.jpg").ok
