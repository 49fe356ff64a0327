"""How responsive the window stays while a 12-megapixel photo is denoised on the CPU.

Run: ``QT_QPA_PLATFORM=offscreen python benchmarks/gui_responsiveness.py [--width 4240 --height 2832]``.
A 5 ms timer ticks on the GUI thread while the window opens and denoises a synthetic noisy photo with the
bundled model; the script prints the longest gap between ticks (the worst freeze a user would feel), the
99th percentile, the time to the first (preview) result, and the time to the full result.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from PySide6.QtCore import QElapsedTimer, QSettings, QTimer
from PySide6.QtWidgets import QApplication

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@contextlib.contextmanager
def window_beside_a_photo(width: int, height: int, model: str) -> Iterator[tuple[QApplication, Any, Path]]:
    """A shown main window (fresh settings, ``model`` loaded) and a synthetic noisy photo of ``width`` x
    ``height`` to open in it, both gone afterwards: what the GUI benchmarks measure on."""
    from benchmarks.tiled_memory import synthetic_photo
    from ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "big.png"
        PILImage.fromarray(synthetic_photo(width, height, 20.0)).save(photo, compress_level=1)
        settings = QSettings(str(Path(folder) / "settings.ini"), QSettings.Format.IniFormat)
        settings.setValue("model", model)
        window = MainWindow(settings=settings)
        window.resize(1400, 900)
        window.show()
        while window.model is None:
            app.processEvents()
            time.sleep(0.01)
        try:
            yield app, window, photo
        finally:
            window.close()


def main() -> None:
    """Open, denoise, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=4240)
    parser.add_argument("--height", type=int, default=2832)
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    with window_beside_a_photo(args.width, args.height, args.model) as (app, window, photo):
        gaps: list[float] = []
        clock = QElapsedTimer()
        clock.start()
        last = [clock.nsecsElapsed()]

        def tick() -> None:
            now = clock.nsecsElapsed()
            gaps.append((now - last[0]) / 1e6)
            last[0] = now

        timer = QTimer()
        timer.setInterval(5)
        timer.timeout.connect(tick)
        timer.start()
        started = time.perf_counter()
        first_result = None
        window.open_photo(photo)
        while window.outcome is None:
            app.processEvents()
            if first_result is None and window.viewer.has_result():
                first_result = time.perf_counter() - started
            time.sleep(0.001)
        full = time.perf_counter() - started
        timer.stop()
    ticks = np.array(gaps[1:])
    megapixels = args.width * args.height / 1e6
    print(f"photo {args.width}x{args.height} ({megapixels:.1f} MP), model {args.model}, CPU")
    print(f"GUI event-loop gaps: longest {ticks.max():.0f} ms, 99th percentile {np.percentile(ticks, 99):.0f} ms, "
          f"median {np.median(ticks):.1f} ms over {len(ticks)} ticks")
    print(f"first result on screen after {first_result or full:.1f} s (read + estimate + preview); "
          f"full result after {full:.1f} s")


if __name__ == "__main__":
    main()
