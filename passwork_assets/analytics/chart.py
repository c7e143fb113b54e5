"""A small bar chart as a PNG, written with zlib alone, for materialization metadata.

The Dagster UI shows Markdown metadata with `data:image/png;base64,...` images inline (the pattern of
Dagster's own tutorial). A plotting library would be a heavy dependency for one chart of a few bars, so the
PNG is drawn here: one bar per value, green up, red down, from a shared zero line. Labels stay in the
table next to the chart, in the same order.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Sequence

RGB = tuple[int, int, int]
_BACKGROUND: RGB = (255, 255, 255)
_AXIS: RGB = (120, 120, 120)
_UP: RGB = (46, 139, 87)
_DOWN: RGB = (200, 55, 55)


def _png(width: int, height: int, pixels: list[bytearray]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(row) for row in pixels)  # filter type 0 (none) per scanline
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def bar_chart_png(values: Sequence[float], *, width: int = 360, bar_height: int = 14, gap: int = 6) -> bytes:
    """Horizontal bars for `values` (top to bottom), scaled to the largest magnitude, as PNG bytes."""
    count = max(len(values), 1)
    height = gap + count * (bar_height + gap)
    pixels = [bytearray(_BACKGROUND * width) for _ in range(height)]
    largest = max((abs(v) for v in values), default=0.0) or 1.0
    has_negative = any(v < 0 for v in values)
    has_positive = any(v > 0 for v in values)
    zero_x = width // 2 if has_negative and has_positive else (width - 10 if has_negative else 10)
    span = (width // 2 - 10) if has_negative and has_positive else (width - 20)

    def fill(x0: int, x1: int, y0: int, y1: int, colour: RGB) -> None:
        for y in range(max(y0, 0), min(y1, height)):
            row = pixels[y]
            for x in range(max(x0, 0), min(x1, width)):
                row[3 * x : 3 * x + 3] = bytes(colour)

    for index, value in enumerate(values):
        top = gap + index * (bar_height + gap)
        length = max(int(round(abs(value) / largest * span)), 1 if value else 0)
        if value >= 0:
            fill(zero_x, zero_x + length, top, top + bar_height, _UP)
        else:
            fill(zero_x - length, zero_x, top, top + bar_height, _DOWN)
    fill(zero_x, zero_x + 1, 0, height, _AXIS)
    return _png(width, height, pixels)


def markdown_image(png: bytes, alt: str) -> str:
    """Markdown that shows `png` inline in the Dagster UI."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
