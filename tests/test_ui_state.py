"""The app's Qt-free state (``ui/state.py``): view maths and session transitions, driven without widgets."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.test_layers import QT_MODULES, imported_modules
from ui.state import (
    MAX_ZOOM,
    MIN_ZOOM,
    Session,
    View,
    center_for_anchor,
    clamp_axis,
    clamp_zoom,
    image_offset,
    image_to_widget,
    pan_limits,
    photo_after,
    photo_to_open,
    stepped_zoom,
    widget_to_image,
)

STATE = Path(__file__).resolve().parent.parent / "ui" / "state.py"


# --- no Qt ------------------------------------------------------------------------------------------------------

def test_state_source_imports_no_qt() -> None:
    assert not imported_modules(STATE) & set(QT_MODULES)


def test_importing_the_state_loads_no_qt() -> None:
    code = (f"import sys\nimport ui.state\nbad = [m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}]\n"
            "print(bad)\nassert not bad\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=STATE.parent.parent)
    assert result.returncode == 0, result.stderr + result.stdout


# --- view maths ------------------------------------------------------------------------------------------------

def test_zoom_is_clamped_and_steps_land_on_100_percent() -> None:
    assert clamp_zoom(0.0) == MIN_ZOOM and clamp_zoom(1e6) == MAX_ZOOM and clamp_zoom(2) == 2.0
    assert stepped_zoom(0.9, 1.25) == 1.0 and stepped_zoom(1.1, 0.8) == 1.0
    assert stepped_zoom(2.0, 1.25) == pytest.approx(2.5)
    assert stepped_zoom(MAX_ZOOM, 1.25) == MAX_ZOOM


def test_pan_limits_keep_the_view_on_the_image() -> None:
    assert pan_limits(1000, 200) == (100, 900)
    assert pan_limits(100, 400) == (50, 50)  # the view is wider: centred
    assert pan_limits(0, 100) == (0, 0)
    assert clamp_axis(-50, 1000, 200) == 100 and clamp_axis(2000, 1000, 200) == 900
    assert clamp_axis(500, 1000, 200) == 500


def fitted_view(image: tuple[float, float] = (4000, 3000), viewport: tuple[float, float] = (800, 600)) -> View:
    view = View()
    view.set_viewport(viewport)
    view.set_image_size(image)
    return view


def test_fit_shows_the_whole_image_centred_and_follows_the_viewport() -> None:
    view = fitted_view()
    assert view.fitting and view.zoom == pytest.approx(0.2) and view.center == (2000, 1500)
    view.set_viewport((400, 600))
    assert view.zoom == pytest.approx(0.1) and view.center == (2000, 1500)  # still fitting: re-fitted
    view.set_view(zoom=1.0)
    assert not view.fitting
    view.set_viewport((800, 600))
    assert view.zoom == 1.0  # no longer fitting: the zoom stays
    view.fit()
    assert view.fitting and view.zoom == pytest.approx(0.2)


def test_fit_zoom_without_an_image_or_a_viewport_is_100_percent() -> None:
    assert View().fit_zoom() == 1.0
    view = View()
    view.set_image_size((100, 100))
    assert view.fit_zoom() == 1.0


def test_panning_stops_at_the_edges() -> None:
    view = fitted_view()
    view.set_view(zoom=1.0, center=(-500, 99999))
    assert view.center == (400, 2700)  # half the viewport from the left and bottom edges
    assert view.pan_limits() == ((400, 3600), (300, 2700))
    assert view.can_pan_horizontally()
    view.fit()
    assert not view.can_pan_horizontally()


@pytest.mark.parametrize("dpr", [1.0, 1.5, 2.0])
@pytest.mark.parametrize("anchor", [(10.0, 20.0), (400.0, 300.0), (733.0, 51.0)])
def test_zoom_about_a_point_keeps_that_point_under_it(dpr: float, anchor: tuple[float, float]) -> None:
    widget = (800 / dpr, 600 / dpr)
    view = fitted_view()
    view.set_view(zoom=0.5, center=(2000, 1500))
    before = widget_to_image(anchor, view.center, view.zoom, widget, dpr)
    view.zoom_about(2.0, anchor, widget, dpr)
    assert view.zoom == 2.0
    after = image_to_widget(before, view.center, view.zoom, widget, dpr)
    assert after[0] == pytest.approx(anchor[0], abs=0.5 / dpr + 1e-9)
    assert after[1] == pytest.approx(anchor[1], abs=0.5 / dpr + 1e-9)


def test_mappings_are_inverse_and_100_percent_is_pixel_exact() -> None:
    center, widget = (123.4, 56.7), (640.0, 480.0)
    offset = image_offset(center, 1.0, widget, 1.0)
    assert offset == (round(offset[0]), round(offset[1]))
    point = (17.25, 99.5)
    there = image_to_widget(point, center, 3.0, widget, 2.0)
    assert widget_to_image(there, center, 3.0, widget, 2.0) == pytest.approx(point)
    assert center_for_anchor((0, 0), (320, 240), 1.0, widget, 1.0) == (0, 0)


def test_changes_are_reported_once_each() -> None:
    calls: list[int] = []
    view = View(on_change=lambda: calls.append(1))
    view.set_viewport((800, 600))
    view.set_image_size((4000, 3000))
    count = len(calls)
    view.set_view(zoom=1.0)
    view.set_view(zoom=1.0)  # nothing changes: not reported again
    assert len(calls) == count + 1


# --- the session ------------------------------------------------------------------------------------------------

@dataclass
class Photo:
    path: str


@dataclass
class Result:
    path: str
    strength: str | None


def test_a_cancel_keeps_the_last_result_for_the_settings_it_was_made_with() -> None:
    session = Session()
    session.open(Photo("a.png"))
    session.start_denoise("auto")
    session.finish_denoise(Result("a.png", "auto"))
    session.start_denoise("fixed 40")
    assert session.denoising == "fixed 40" and session.strength == "fixed 40"
    kept = session.cancel_denoise()
    assert kept == Result("a.png", "auto") and session.result is kept
    assert session.result_strength() == "auto"  # what Save writes was made with auto, not with fixed 40
    assert not session.result_is_current() and session.denoising is None and session.has_result()


def test_a_cancel_before_any_result_leaves_nothing_to_save() -> None:
    session = Session()
    session.open(Photo("a.png"))
    session.start_denoise("auto")
    assert session.cancel_denoise() is None and not session.has_result()


def test_opening_another_photo_drops_the_result() -> None:
    session = Session()
    session.open(Photo("a.png"))
    session.start_denoise("auto")
    session.finish_denoise(Result("a.png", "auto"))
    assert session.result_is_current()
    session.open(Photo("b.png"))
    assert session.photo == Photo("b.png") and session.result is None and not session.has_result()
    assert session.strength == "auto"  # the strength asked for stays


def test_the_model_in_use_follows_loads_and_renames() -> None:
    session = Session()
    session.model_loaded("default")
    session.model_renamed("other", "x")
    assert session.model_name == "default"
    session.model_renamed("default", "mine")
    assert session.model_name == "mine"


# --- which photo of a folder's list opens ---------------------------------------------------------------------


def test_a_listing_opens_the_wanted_photo_else_keeps_the_open_one_else_the_first() -> None:
    listed = ["a", "b", "c"]
    assert photo_to_open(listed, wanted="c", open_now="b") == "c"
    assert photo_to_open(listed, wanted="elsewhere", open_now="b") == "b"  # re-listing keeps the open photo
    assert photo_to_open(listed, open_now="elsewhere") == "a"
    assert photo_to_open(listed, open_now="elsewhere", open_first=False) is None
    assert photo_to_open([], wanted="a") is None


def test_stepping_through_the_list_stops_at_either_end() -> None:
    listed = ["a", "b", "c"]
    assert [photo_after(listed, "b", 1), photo_after(listed, "b", -1)] == ["c", "a"]
    assert photo_after(listed, "c", 1) is None and photo_after(listed, "a", -1) is None
    assert photo_after(listed, "elsewhere", 1) == "a" and photo_after(listed, "elsewhere", -1) == "c"
    assert photo_after([], "a", 1) is None
