"""The app's state without Qt: the view maths (fit, clamp, zoom about a point, pan limits), the session (the
open photo, the model, the last result and the settings it was made with, the strength asked for) and which photo
of a folder's list to open (after a listing, and stepping to the next or previous one).

Plain Python and numpy, no PySide6 (a test checks), so tests drive it without widgets; the viewer and the main
window keep their Qt objects in step with it, as napari's ``Camera`` model sits under its Qt view.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

MIN_ZOOM = 0.02
MAX_ZOOM = 32.0
ZOOM_STEP = 1.25
"""Per wheel notch and per +/- key press."""

Point = tuple[float, float]
Size = tuple[float, float]


def clamp_zoom(zoom: float) -> float:
    """``zoom`` kept within [MIN_ZOOM, MAX_ZOOM]."""
    return min(max(float(zoom), MIN_ZOOM), MAX_ZOOM)


def stepped_zoom(zoom: float, factor: float) -> float:
    """``zoom * factor``, landing exactly on 100 % when the step crosses it (the level photographers check at)."""
    new = zoom * factor
    if zoom < 1.0 < new or zoom > 1.0 > new:
        return 1.0
    return clamp_zoom(new)


def pan_limits(image_extent: float, view_extent: float) -> tuple[float, float]:
    """The lowest and highest view centre along one axis that leave no empty band beyond an image edge
    (both the image's middle when the view is wider than the image)."""
    if image_extent <= 0:
        return 0.0, 0.0
    if view_extent <= 0:
        return 0.0, image_extent
    if view_extent >= image_extent:
        return image_extent / 2, image_extent / 2
    half = view_extent / 2
    return half, image_extent - half


def clamp_axis(center: float, image_extent: float, view_extent: float) -> float:
    """Keep the view on the image: centred when it fits, otherwise no empty band beyond an edge."""
    low, high = pan_limits(image_extent, view_extent)
    return min(max(center, low), high)


def half_size(widget_size: Size, dpr: float) -> Point:
    """Half a widget's size in device pixels, as whole numbers, so that two panes of equal size get the same
    offsets whatever their parity."""
    return float(round(widget_size[0] * dpr) // 2), float(round(widget_size[1] * dpr) // 2)


def image_offset(center: Point, zoom: float, widget_size: Size, dpr: float) -> Point:
    """Where image point (0, 0) lands in widget (logical) coordinates, snapped to a whole device pixel so that
    100 % is pixel-exact."""
    half_w, half_h = half_size(widget_size, dpr)
    return (math.floor(half_w - center[0] * zoom + 0.5) / dpr, math.floor(half_h - center[1] * zoom + 0.5) / dpr)


def widget_to_image(point: Point, center: Point, zoom: float, widget_size: Size, dpr: float) -> Point:
    """Image coordinates of a widget point (may lie outside the image)."""
    offset, scale = image_offset(center, zoom, widget_size, dpr), zoom / dpr
    return (point[0] - offset[0]) / scale, (point[1] - offset[1]) / scale


def image_to_widget(point: Point, center: Point, zoom: float, widget_size: Size, dpr: float) -> Point:
    """Widget coordinates of an image point."""
    offset, scale = image_offset(center, zoom, widget_size, dpr), zoom / dpr
    return offset[0] + point[0] * scale, offset[1] + point[1] * scale


def center_for_anchor(image_point: Point, anchor: Point, zoom: float, widget_size: Size, dpr: float) -> Point:
    """The view centre at ``zoom`` that puts ``image_point`` under ``anchor`` (widget coordinates), within half a
    device pixel (offsets are measured from the same whole half size :func:`image_offset` uses)."""
    scale = clamp_zoom(zoom) / dpr
    half_w, half_h = half_size(widget_size, dpr)
    return (image_point[0] - (anchor[0] - half_w / dpr) / scale, image_point[1] - (anchor[1] - half_h / dpr) / scale)


class View:
    """Zoom and pan of the viewer, shared by its panes so that they stay locked together.

    ``zoom`` is device pixels per image pixel (1.0 = 100 %); ``center`` is the image point at the middle of the
    view. The view knows the image size and the viewport size (device pixels) so that it can fit the image and
    keep the view on it. While ``fitting`` (after :meth:`fit`, until the user zooms or pans) a new viewport size
    re-fits, so resizing the window keeps the whole photo in view. ``on_change`` is called after each change.
    """

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self.zoom = 1.0
        self.center: Point = (0.0, 0.0)
        self.image_size: Size = (0.0, 0.0)
        self.viewport: Size = (0.0, 0.0)
        self.fitting = True
        self.on_change = on_change

    def has_image(self) -> bool:
        """Whether there is an image of some size to look at."""
        return self.image_size[0] > 0 and self.image_size[1] > 0

    def set_view(self, zoom: float | None = None, center: Point | None = None) -> None:
        """Zoom and/or pan as the user asked (leaves fit mode); zoom is clamped and the view kept on the image."""
        left_fit, self.fitting = self.fitting, False
        # Leaving fit mode is news (the zoom readout drops its "fit") even when zoom and centre stay.
        self._apply(self.zoom if zoom is None else zoom, self.center if center is None else center, force=left_fit)

    def zoom_about(self, zoom: float, anchor: Point, widget_size: Size, dpr: float = 1.0) -> None:
        """Zoom so that the image point under ``anchor`` (coordinates of a pane of ``widget_size``) stays there."""
        point = widget_to_image(anchor, self.center, self.zoom, widget_size, dpr)
        zoom = clamp_zoom(zoom)
        self.set_view(zoom, center_for_anchor(point, anchor, zoom, widget_size, dpr))

    def fit(self) -> None:
        """Show the whole image, centred, and keep doing so when the viewport changes size."""
        entered_fit, self.fitting = not self.fitting, True
        self._apply(self.fit_zoom(), (self.image_size[0] / 2, self.image_size[1] / 2), force=entered_fit)

    def fit_zoom(self) -> float:
        """The zoom at which the whole image just fits the viewport (1.0 when either is empty)."""
        if not self.has_image() or self.viewport[0] <= 0 or self.viewport[1] <= 0:
            return 1.0
        return clamp_zoom(min(self.viewport[0] / self.image_size[0], self.viewport[1] / self.image_size[1]))

    def pan_limits(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The (lowest, highest) view centre along x and along y at the current zoom."""
        return (pan_limits(self.image_size[0], self.viewport[0] / self.zoom),
                pan_limits(self.image_size[1], self.viewport[1] / self.zoom))

    def can_pan_horizontally(self) -> bool:
        """Whether the image is wider than the view at the current zoom (Left/Right then pan)."""
        return self.has_image() and self.image_size[0] * self.zoom > self.viewport[0] + 0.5

    def set_image_size(self, size: Size) -> None:
        """A new image: fit it (which always reports a change)."""
        self.image_size = (float(size[0]), float(size[1]))
        self.fit()

    def set_viewport(self, size: Size) -> None:
        """The view's size in device pixels changed: re-fit or re-clamp, and report a change."""
        size = (float(size[0]), float(size[1]))
        if size == self.viewport:
            return
        self.viewport = size
        if self.fitting:
            self._apply(self.fit_zoom(), (self.image_size[0] / 2, self.image_size[1] / 2), force=True)
        else:
            # The visible region changed even when zoom and centre did not: listeners must hear of it.
            self._apply(self.zoom, self.center, force=True)

    def _apply(self, zoom: float, center: Point, force: bool = False) -> None:
        zoom = clamp_zoom(zoom)
        center = (clamp_axis(float(center[0]), self.image_size[0], self.viewport[0] / zoom),
                  clamp_axis(float(center[1]), self.image_size[1], self.viewport[1] / zoom))
        if not force and zoom == self.zoom and center == self.center:
            return
        self.zoom, self.center = zoom, center
        if self.on_change is not None:
            self.on_change()


def photo_to_open(paths: Sequence[Any], wanted: Any = None, open_now: Any = None, open_first: bool = True) -> Any:
    """Which photo a folder's listing ``paths`` opens: ``wanted`` when listed; else the photo open now when
    listed (re-listing its folder keeps it open); else, with ``open_first``, the first one. None: none."""
    if wanted is not None and wanted in paths:
        return wanted
    if open_now is not None and open_now in paths:
        return open_now
    return paths[0] if paths and open_first else None


def photo_after(paths: Sequence[Any], current: Any, delta: int) -> Any:
    """The photo ``delta`` places after (negative: before) ``current`` in ``paths``. From a photo not in the
    list, stepping forward gives the first and back the last; past either end, None."""
    if not paths:
        return None
    if current in paths:
        index = list(paths).index(current) + delta
    else:
        index = 0 if delta > 0 else len(paths) - 1
    return paths[index] if 0 <= index < len(paths) else None


@dataclass
class Session:
    """What the window works on: the open photo, the model in use, the last result and the strength it was made
    with, and the strength asked for now. Photos and results are the window's own objects (anything with a
    ``path``; a result may carry the ``strength`` it was made with)."""

    photo: Any = None
    """The open photo (None before one is read)."""
    model_name: str | None = None
    """The model in use (loaded), not merely chosen."""
    result: Any = None
    """The last finished result for :attr:`photo`: what is on screen once no job runs, and what Save writes."""
    strength: Any = None
    """The strength the controls ask for now (a result may have been made with another)."""
    denoising: Any = None
    """The strength a running denoise was started with (None when none runs)."""

    def open(self, photo: Any) -> None:
        """A photo was read: it becomes the open one, and the result of the previous photo is dropped."""
        self.photo, self.result, self.denoising = photo, None, None

    def model_loaded(self, name: str) -> None:
        """Model ``name`` is now the one in use."""
        self.model_name = name

    def model_renamed(self, old: str, new: str) -> None:
        """A library model was renamed: the model in use follows its new name."""
        if self.model_name == old:
            self.model_name = new

    def start_denoise(self, strength: Any) -> None:
        """A denoise of the open photo started with ``strength``; the last result stays until it finishes."""
        self.strength = self.denoising = strength

    def finish_denoise(self, result: Any) -> None:
        """A denoise finished: its result is the last result (for the settings it was made with)."""
        self.result, self.denoising = result, None

    def cancel_denoise(self) -> Any:
        """The running denoise was cancelled: the last result (made with its own settings) stays, and is what
        is shown and saved. Returns it (None: nothing to show or save)."""
        self.denoising = None
        return self.result

    def result_strength(self) -> Any:
        """The strength the last result was made with (None without a result, or for one not made here)."""
        return getattr(self.result, "strength", None)

    def result_is_current(self) -> bool:
        """Whether the last result was made with the strength asked for now (no need to denoise again)."""
        return self.result is not None and self.result_strength() == self.strength

    def has_result(self) -> bool:
        """Whether there is a result to show and save."""
        return self.photo is not None and self.result is not None
