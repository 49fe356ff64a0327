"""Draw the app's icon as SVG and render it as PNGs of every size desktops ask for.

The picture: a rounded square split along the rising diagonal by a white line; above it the colours are noisy
(speckled with coloured grain), below it they are smooth. Both halves share one colour field: blue at the top
left, mauve to the right, cyan downwards, olive at the bottom right.

Writes ``resources/icons/denoiser.svg``, ``resources/icons/denoiser-N.png`` for N in :data:`ui.icon.ICON_SIZES`
(rendered from the SVG with Qt's own SVG renderer) and ``resources/icons/denoiser.png``, the 128-pixel one that
:func:`denoiser.resources.app_icon_path` names. The grain is seeded, so running it again writes the same SVG.

Run from the repository root: ``QT_QPA_PLATFORM=offscreen python packaging/linux/make_icons.py``.

Qt draws SVG Tiny 1.2, which has no filters, blend modes or clip paths, so everything is plain filled paths: a
colour that changes along both axes is two linear gradients (the second drawn part see-through), and the grain is
small squares cut to the upper half's outline here rather than by the renderer.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ICONS = ROOT / "resources" / "icons"

VIEW = 128.0
"""The drawing's coordinate range (a 128 x 128 view box, the size the first PNG icon was drawn at)."""
INSET, RADIUS = 4.0, 24.0
"""Margin around the rounded square, and its corner radius."""
LINE_WIDTH = 5.0
"""Width of the white line (and of the gap between the halves it covers)."""
LINE_OPACITY = 0.9
CELL = 2.0
"""Size of one grain square."""
GRAIN_ALPHAS = (0.04, 0.12, 0.20)
"""Opacities of the grain squares (one chosen at random per square)."""
SEED = 16

Rgb = tuple[float, float, float]
Point = tuple[float, float]


@dataclass(frozen=True)
class ColourField:
    """A colour that changes linearly across the drawing: ``origin + dx * x + dy * y`` per channel (0-255)."""

    origin: Rgb
    dx: Rgb
    dy: Rgb


SMOOTH = ColourField(origin=(39.0, 89.0, 199.0), dx=(0.946, 0.0, -0.625), dy=(0.0, 0.79, 0.0))
"""The colours of the first icon (measured on its smooth half)."""


def _hex(colour: Sequence[float]) -> str:
    return "#" + "".join(f"{round(min(255.0, max(0.0, c))):02x}" for c in colour)


def _fmt(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def two_gradients(field: ColourField) -> tuple[float, tuple[Rgb, Rgb], tuple[Rgb, Rgb]]:
    """``(opacity, (x-gradient start, end), (y-gradient start, end))``: an opaque gradient along x with the
    y-gradient drawn over it at ``opacity`` shows exactly ``field``, ``(1 - opacity) * gx(x) + opacity * gy(y)``.

    Each channel's change along x must fit in 0-255 at weight ``1 - opacity``, its change along y at weight
    ``opacity``; the opacity is taken midway between the least each needs, and each channel's constant part is
    split between the two gradients so that both stay within 0-255 (ValueError when they cannot).
    """
    need_x = max(abs(d) * VIEW for d in field.dx) / 255.0
    need_y = max(abs(d) * VIEW for d in field.dy) / 255.0
    if need_x + need_y > 1.0:
        raise ValueError("the colour field changes too much for two gradients")
    opacity = (need_y + 1.0 - need_x) / 2.0
    keep = 1.0 - opacity
    x_start, x_end, y_start, y_end = [], [], [], []
    for c0, dx, dy in zip(field.origin, field.dx, field.dy, strict=True):
        sx, sy = dx * VIEW / keep, dy * VIEW / opacity  # each gradient's change from one side to the other
        # gx = a + sx * x / VIEW and gy = b + sy * y / VIEW with keep * a + opacity * b = c0, both within 0-255
        b_low, b_high = max(0.0, -sy), min(255.0, 255.0 - sy)
        low = max(0.0, -sx, (c0 - opacity * b_high) / keep)
        high = min(255.0, 255.0 - sx, (c0 - opacity * b_low) / keep)
        if low > high + 1e-9:
            raise ValueError("no pair of gradients stays within 0-255")
        a = (low + high) / 2.0
        b = (c0 - keep * a) / opacity
        x_start.append(a)
        x_end.append(a + sx)
        y_start.append(b)
        y_end.append(b + sy)
    return opacity, (_rgb(x_start), _rgb(x_end)), (_rgb(y_start), _rgb(y_end))


def _rgb(values: Sequence[float]) -> Rgb:
    red, green, blue = values
    return red, green, blue


def _grain_mean(alphas: Sequence[float]) -> float:
    return sum(alphas) / len(alphas)


def _compensated(field: ColourField, mean_alpha: float, grain_mean: float = 127.5) -> ColourField:
    """The field to paint under the grain so that, on average, grain over it shows ``field``: grain of opacity
    a and mean colour m turns a colour c into ``(1 - a) c + a m``, so paint ``(c - a m) / (1 - a)``."""
    keep = 1.0 - mean_alpha
    return ColourField(origin=_rgb([(c - mean_alpha * grain_mean) / keep for c in field.origin]),
                       dx=_rgb([d / keep for d in field.dx]), dy=_rgb([d / keep for d in field.dy]))


def _largest_compensation(field: ColourField, mean_alpha: float) -> float:
    """The largest share (0-1) of the grain's fading that two gradients can make up for."""
    share = 1.0
    while share > 0.0:
        try:
            two_gradients(_compensated(field, mean_alpha * share))
            return share
        except ValueError:
            share = round(share - 0.05, 2)
    return 0.0


# --- the outline ----------------------------------------------------------------------------------------------------

_LOW, _HIGH = INSET, VIEW - INSET
_NEAR, _FAR = INSET + RADIUS, VIEW - INSET - RADIUS
_HALF_GAP = LINE_WIDTH / 2.0 * math.sqrt(2.0)
"""How far the halves' edges lie from the diagonal x + y = VIEW, measured as a change of x + y."""


def _arc_point(centre: Point, level: float, first_angle: float) -> Point:
    """Where x + y == ``level`` crosses the quarter circle about ``centre`` that runs clockwise on screen from
    ``first_angle`` (radians, y pointing down) for a quarter turn."""
    # x + y = cx + cy + r (cos t + sin t) = cx + cy + r sqrt(2) sin(t + pi / 4)
    turn = math.asin((level - centre[0] - centre[1]) / (RADIUS * math.sqrt(2.0)))
    for angle in (turn - math.pi / 4, 3 * math.pi / 4 - turn):
        angle = first_angle + (angle - first_angle) % (2 * math.pi)
        if angle <= first_angle + math.pi / 2 + 1e-9:
            return centre[0] + RADIUS * math.cos(angle), centre[1] + RADIUS * math.sin(angle)
    raise ValueError(f"x + y = {level} does not cross that corner")


_TOP_RIGHT = (_FAR, _NEAR)
_BOTTOM_LEFT = (_NEAR, _FAR)


def _corner_points(level: float) -> tuple[Point, Point]:
    """Where x + y == level crosses the top-right and the bottom-left corners."""
    return _arc_point(_TOP_RIGHT, level, -math.pi / 2), _arc_point(_BOTTOM_LEFT, level, math.pi / 2)


def _p(point: Point) -> str:
    return f"{_fmt(point[0])} {_fmt(point[1])}"


def upper_half_path() -> str:
    """The noisy half: the rounded square above the line's gap, drawn clockwise."""
    top_right, bottom_left = _corner_points(VIEW - _HALF_GAP)
    arc = f"A{_fmt(RADIUS)} {_fmt(RADIUS)} 0 0 1 "
    return (f"M{_p((_NEAR, _LOW))}H{_fmt(_FAR)}{arc}{_p(top_right)}L{_p(bottom_left)}{arc}{_p((_LOW, _FAR))}"
            f"V{_fmt(_NEAR)}{arc}{_p((_NEAR, _LOW))}Z")


def lower_half_path() -> str:
    """The smooth half: the rounded square below the line's gap, drawn clockwise."""
    top_right, bottom_left = _corner_points(VIEW + _HALF_GAP)
    arc = f"A{_fmt(RADIUS)} {_fmt(RADIUS)} 0 0 1 "
    return (f"M{_p(top_right)}{arc}{_p((_HIGH, _NEAR))}V{_fmt(_FAR)}{arc}{_p((_FAR, _HIGH))}H{_fmt(_NEAR)}"
            f"{arc}{_p(bottom_left)}L{_p(top_right)}Z")


def line_path(overlap: float = 0.5) -> str:
    """The white line across the gap, ``overlap`` wider on each side so that no background shows at its edges."""
    spread = _HALF_GAP + overlap * math.sqrt(2.0)
    upper_right, upper_left = _corner_points(VIEW - spread)
    lower_right, lower_left = _corner_points(VIEW + spread)
    arc = f"A{_fmt(RADIUS)} {_fmt(RADIUS)} 0 0 1 "
    return f"M{_p(upper_right)}{arc}{_p(lower_right)}L{_p(lower_left)}{arc}{_p(upper_left)}Z"


def _upper_outline(steps: int = 32) -> list[Point]:
    """The noisy half as a convex polygon (its corners as many short edges), clockwise on screen."""
    level = VIEW - _HALF_GAP
    top_right, bottom_left = _corner_points(level)

    def arc(centre: Point, start: float, end: float) -> list[Point]:
        return [(centre[0] + RADIUS * math.cos(start + (end - start) * i / steps),
                 centre[1] + RADIUS * math.sin(start + (end - start) * i / steps)) for i in range(steps + 1)]

    def angle(centre: Point, point: Point) -> float:
        return math.atan2(point[1] - centre[1], point[0] - centre[0])

    tr_end = angle(_TOP_RIGHT, top_right)
    bl_start = angle(_BOTTOM_LEFT, bottom_left)
    return (arc((_NEAR, _NEAR), math.pi, 1.5 * math.pi) + arc(_TOP_RIGHT, -math.pi / 2, tr_end)
            + arc(_BOTTOM_LEFT, bl_start, math.pi))


def _clip(polygon: list[Point], outline: list[Point]) -> list[Point]:
    """``polygon`` cut to the convex, clockwise-on-screen ``outline`` (Sutherland and Hodgman)."""
    result = polygon
    for (ax, ay), (bx, by) in zip(outline, outline[1:] + outline[:1], strict=True):
        if not result:
            break

        def inside(p: Point, ax: float = ax, ay: float = ay, bx: float = bx, by: float = by) -> bool:
            return (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) >= 0.0

        def cross(p: Point, q: Point, ax: float = ax, ay: float = ay, bx: float = bx, by: float = by) -> Point:
            dx, dy = q[0] - p[0], q[1] - p[1]
            ex, ey = bx - ax, by - ay
            t = (ex * (ay - p[1]) - ey * (ax - p[0])) / (ex * dy - ey * dx)
            return p[0] + t * dx, p[1] + t * dy

        points, result = result, []
        for i, current in enumerate(points):
            previous = points[i - 1]
            if inside(current):
                if not inside(previous):
                    result.append(cross(previous, current))
                result.append(current)
            elif inside(previous):
                result.append(cross(previous, current))
    return [point for i, point in enumerate(result) if math.dist(point, result[i - 1]) > 1e-6]


def _area(polygon: list[Point]) -> float:
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1],
                                                                   strict=True))) / 2.0


def grain() -> dict[tuple[str, float], list[str]]:
    """The grain squares of the noisy half, as path pieces grouped by (colour, opacity)."""
    rng = random.Random(SEED)
    outline = _upper_outline()
    corners = [(r, g, b) for r in (0, 255) for g in (0, 255) for b in (0, 255)]
    groups: dict[tuple[str, float], list[str]] = {}
    count = round((_HIGH - _LOW) / CELL)
    for row in range(count):
        for column in range(count):
            x, y = _LOW + column * CELL, _LOW + row * CELL
            colour, alpha = rng.choice(corners), rng.choice(GRAIN_ALPHAS)  # drawn for every cell: a stable pattern
            square = [(x, y), (x + CELL, y), (x + CELL, y + CELL), (x, y + CELL)]
            piece = _clip(square, outline)
            if len(piece) < 3 or _area(piece) < 0.01:
                continue
            if piece == square:
                text = f"M{_p((x, y))}h{_fmt(CELL)}v{_fmt(CELL)}h-{_fmt(CELL)}z"
            else:
                text = "M" + "L".join(_p(p) for p in piece) + "z"
            groups.setdefault((_hex(colour), alpha), []).append(text)
    return groups


def svg_text() -> str:
    """The whole icon as an SVG document."""
    mean_alpha = _grain_mean(GRAIN_ALPHAS)
    noisy_field = _compensated(SMOOTH, mean_alpha * _largest_compensation(SMOOTH, mean_alpha))
    defs, layers = [], []
    for name, field, path in (("noisy", noisy_field, upper_half_path()), ("smooth", SMOOTH, lower_half_path())):
        opacity, (x0, x1), (y0, y1) = two_gradients(field)
        defs.append(f'<linearGradient id="{name}-x" gradientUnits="userSpaceOnUse" x1="0" y1="0" x2="128" y2="0">'
                    f'<stop offset="0" stop-color="{_hex(x0)}"/><stop offset="1" stop-color="{_hex(x1)}"/>'
                    "</linearGradient>")
        defs.append(f'<linearGradient id="{name}-y" gradientUnits="userSpaceOnUse" x1="0" y1="0" x2="0" y2="128">'
                    f'<stop offset="0" stop-color="{_hex(y0)}"/><stop offset="1" stop-color="{_hex(y1)}"/>'
                    "</linearGradient>")
        layers.append(f'<path d="{path}" fill="url(#{name}-x)"/>')
        layers.append(f'<path d="{path}" fill="url(#{name}-y)" fill-opacity="{_fmt(opacity)}"/>')
        if name == "noisy":
            layers.append('<g id="grain">')
            for (colour, alpha), pieces in sorted(grain().items()):
                layers.append(f'<path fill="{colour}" fill-opacity="{_fmt(alpha)}" d="{"".join(pieces)}"/>')
            layers.append("</g>")
    layers.append(f'<path d="{line_path()}" fill="#ffffff" fill-opacity="{_fmt(LINE_OPACITY)}"/>')
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny" width="128" height="128"'
        ' viewBox="0 0 128 128">',
        "<title>Denoiser</title>",
        "<!-- Made by packaging/linux/make_icons.py: edit that and run it again rather than this file. -->",
        "<defs>", *defs, "</defs>", *layers, "</svg>", ""])


def render(svg: Path, size: int, out: Path) -> None:
    """Render ``svg`` at ``size`` x ``size`` pixels to the PNG ``out`` with Qt's SVG renderer."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"Qt cannot read {svg}")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    if not image.save(str(out), "PNG"):
        raise OSError(f"could not write {out}")


def main() -> int:
    """Write the SVG and its PNG renderings into ``resources/icons``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    from PySide6.QtGui import QGuiApplication

    from ui.icon import ICON_SIZES

    _app = QGuiApplication.instance() or QGuiApplication([])  # painting on a QImage wants an application
    svg = ICONS / "denoiser.svg"
    svg.write_text(svg_text(), encoding="utf-8")
    for size in ICON_SIZES:
        render(svg, size, ICONS / f"denoiser-{size}.png")
    shutil.copyfile(ICONS / "denoiser-128.png", ICONS / "denoiser.png")
    print(f"wrote {svg.relative_to(ROOT)} and {len(ICON_SIZES)} PNG sizes ({', '.join(map(str, ICON_SIZES))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
