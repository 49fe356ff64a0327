"""The ``denoiser-gui`` entry point: a window over the engine (the full viewer lands with the GUI issue).

Until then it shows the bundled model and sample images and points to the command line, so the GUI script
installs and starts everywhere the CLI does.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QVBoxLayout, QWidget

from denoiser.modelstore import describe, list_models
from denoiser.resources import sample_images_dir


class PlaceholderWindow(QMainWindow):
    """Lists the available models and samples and says how to denoise from the command line."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Denoiser")
        models = list_models()
        samples = sorted(p.name for p in sample_images_dir().glob("*") if p.suffix.lower() in (".png", ".jpg"))
        lines = [
            "<h2>Denoiser</h2>",
            "<p>The photo viewer is on its way. Meanwhile, denoise from a terminal:</p>",
            "<pre>denoiser denoise PHOTO_OR_FOLDER -o OUTPUT_FOLDER</pre>",
            "<p><b>Models</b><br>" + "<br>".join(describe(m) for m in models) + "</p>",
            f"<p><b>Sample images</b> ({sample_images_dir()})<br>" + "<br>".join(samples) + "</p>",
        ]
        self.text = QLabel("".join(lines))
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setWordWrap(True)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.text)
        self.setCentralWidget(central)
        self.resize(640, 420)


def main(argv: Sequence[str] | None = None) -> int:
    """Open the window and run the event loop; returns the exit status."""
    app = QApplication.instance() or QApplication(list(argv if argv is not None else sys.argv))
    window = PlaceholderWindow()
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
