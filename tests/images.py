"""Hand-made image files for hostile-input tests: tiny files declaring huge sizes."""

from __future__ import annotations

import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, *, bit_depth: int = 1, colour: int = 0) -> bytes:
    """A real, valid PNG of ``width`` x ``height`` black pixels: a few KB of zlib'd zeros."""
    row = 1 + (width * bit_depth + 7) // 8
    compressor = zlib.compressobj(9)
    blank = b"\0" * (row * 256)
    idat = b"".join(compressor.compress(blank) for _ in range(height // 256))
    idat += compressor.compress(b"\0" * row * (height % 256)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def tiny_gif_declaring(width: int, height: int) -> bytes:
    """29 bytes: a GIF whose logical screen and only frame claim ``width`` x ``height``."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
    frame = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0)
    data = screen + frame + b"\x02\x02\x44\x01\x00;"
    assert len(data) == 29
    return data


def press_photo(width: int = 1600, height: int = 1000, *, noise: float = 8.0) -> bytes:
    """A photo-like JPEG the size of a press photo (~285 KB at 1600 x 1000): colour gradients
    plus Gaussian grain, which JPEG cannot squeeze to nothing (a flat colour would be 20 KB)."""
    import io

    from PIL import Image, ImageChops

    grain = Image.effect_noise((width, height), noise)
    ramp = Image.linear_gradient("L").resize((width, height))
    ring = Image.radial_gradient("L").resize((width, height))
    base = Image.merge("RGB", (ramp, ring, ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    grains = Image.merge(
        "RGB",
        (grain, grain.rotate(180), grain.transpose(Image.Transpose.FLIP_TOP_BOTTOM)),
    )
    buffer = io.BytesIO()
    ImageChops.add(base, grains, scale=1.0, offset=-128).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()
