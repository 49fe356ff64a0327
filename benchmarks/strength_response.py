"""How soon a strength or detail change shows on screen: the quick pass (screen scale, or the visible region when
zoomed in) before the full pass.

Run: ``QT_QPA_PLATFORM=offscreen python benchmarks/strength_response.py [--width 4240 --height 2832] [--zoom 1]
[--control detail]``. The window opens a synthetic noisy photo with the bundled model and waits for the whole
result; then the strength amount (or, with ``--control detail``, the detail) is changed the way a slider drag's
release changes it, a few times, and the script prints, for each change, the time until the first new result is
on screen (the viewer's images replaced) and until the full result is in. ``--zoom 1`` shows 100 % first (the
quick pass is then the visible region); the default is fit (screen scale).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
from PySide6.QtWidgets import QApplication

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _wait(app: QApplication, done: Any, timeout: float) -> float:
    """Process events until ``done()``; the seconds it took (raises TimeoutError past ``timeout``)."""
    started = time.perf_counter()
    while not done():
        app.processEvents()
        if time.perf_counter() - started > timeout:
            raise TimeoutError("no result in time")
        time.sleep(0.001)
    return time.perf_counter() - started


def main() -> None:
    """Open, denoise, change the strength, measure, print."""
    from benchmarks.gui_responsiveness import window_beside_a_photo

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=4240)
    parser.add_argument("--height", type=int, default=2832)
    parser.add_argument("--model", default="default")
    parser.add_argument("--zoom", type=float, default=None, help="zoom (1 = 100 %%) before the changes; default fit")
    parser.add_argument("--changes", type=int, default=3)
    parser.add_argument("--control", default="strength",
                        help="strength, detail, or both (strength,detail) in one run")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    with window_beside_a_photo(args.width, args.height, args.model) as (app, window, photo):
        window.open_photo(photo)
        first = _wait(app, lambda: window.outcome is not None and not window.bridge.is_busy("model", "denoise")
                      and not window.bridge.is_busy("display"), args.timeout)
        if args.zoom is not None:
            window.viewer.set_zoom(args.zoom)
        shown: list[float] = []
        original_set_result = window.viewer.set_result

        def set_result(*a: Any, **k: Any) -> Any:
            shown.append(time.perf_counter())
            return original_set_result(*a, **k)

        window.viewer.set_result = set_result  # type: ignore[method-assign]
        panel = window.panel
        figures: dict[str, tuple[list[float], list[float]]] = {}
        for control in args.control.split(","):
            quick, full = figures.setdefault(control, ([], []))
            for change in range(args.changes):
                shown.clear()
                started = time.perf_counter()
                if control == "detail":
                    panel.detail_slider.setValue(30 if change % 2 == 0 else 10)  # re-composes, no denoise
                    _wait(app, lambda: bool(shown), args.timeout)
                    quick.append(shown[0] - started)
                    _wait(app, lambda: not window.bridge.is_busy("display"), args.timeout)
                    full.append(shown[-1] - started)
                    continue
                before = window.outcome
                panel.strength_slider.setValue(80 if change % 2 == 0 else 120)  # Auto's amount, in %
                started = time.perf_counter()
                panel.strength_changed.emit()  # what a drag's release emits
                _wait(app, lambda: bool(shown), args.timeout)
                quick.append(shown[0] - started)
                _wait(app, lambda b=before: window.outcome is not b and not window.bridge.is_busy("model", "denoise")
                      and not window.bridge.is_busy("display") and len(shown) >= 2, args.timeout)
                full.append(shown[-1] - started)
    megapixels = args.width * args.height / 1e6
    where = "fit (screen-scale quick pass)" if args.zoom is None else f"zoom {args.zoom:g} (visible-region quick pass)"
    print(f"photo {args.width}x{args.height} ({megapixels:.1f} MP), model {args.model}, CPU, view {where}")
    print(f"first result after opening: {first:.1f} s")
    for control, (quick, full) in figures.items():
        print(f"{control} change -> first new result on screen: median {np.median(quick):.2f} s, "
              f"worst {max(quick):.2f} s over {len(quick)} changes ({', '.join(f'{q:.2f}' for q in quick)})")
        print(f"{control} change -> full result on screen: median {np.median(full):.1f} s")


if __name__ == "__main__":
    main()
